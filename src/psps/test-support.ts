// Test helpers of the psps room: a small schema in the contract's conventions (P2, OB, IN),
// batches of it as CSV files or as batch FITS files with manifests, and row generators.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Header, writeFits } from '../fits/index.ts';
import { columnInfo, memoryTable, type ColumnInfo, type ColumnType, type Table } from '../table/index.ts';
import type { Archive } from './archive.ts';
import { defaultPartition, keyTableName } from './key-probe.ts';

const FIELD = (name: string, datatype: string, extra = '', values = '') =>
  `      <FIELD name="${name}" datatype="${datatype}"${extra}>${values}</FIELD>`;
const NULL = (v: string) => `<VALUES null="${v}"/>`;
const RANGE = (min: number, max: number, nullText?: string) =>
  `<VALUES${nullText !== undefined ? ` null="${nullText}"` : ''}><MIN value="${min}" inclusive="yes"/><MAX value="${max}" inclusive="yes"/></VALUES>`;
const PARAM = (name: string, value: string) => `      <PARAM name="${name}" datatype="char" arraysize="*" value="${value}"/>`;

function votable(tables: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
  <RESOURCE>
${tables.join('\n')}
  </RESOURCE>
</VOTABLE>
`;
}

function table(name: string, params: string[], fields: string[]): string {
  return `    <TABLE name="${name}">\n${params.join('\n')}\n${fields.join('\n')}\n    </TABLE>`;
}

const OBJECT_STUB = table('ObjectThin', [PARAM('primaryKey', 'objID'), PARAM('merge', 'keep')], [
  FIELD('objID', 'long'),
  FIELD('ra', 'double', ' unit="deg"', RANGE(0, 360)),
  FIELD('dec', 'double', ' unit="deg"', RANGE(-90, 90)),
]);

/** The test schema files (IN, OB, P2), by file name. */
export const TEST_SCHEMA: Readonly<Record<string, string>> = {
  'IN.xml': votable([
    table('Filter', [PARAM('primaryKey', 'filterID'), PARAM('merge', 'replace')], [
      FIELD('filterID', 'unsignedByte', '', RANGE(1, 5)),
      FIELD('filterType', 'char', ' arraysize="2*"'),
    ]),
  ]),
  'OB.xml': votable([
    table('ObjectThin', [PARAM('primaryKey', 'objID'), PARAM('merge', 'replace')], [
      FIELD('objID', 'long'),
      FIELD('ra', 'double', ' unit="deg"', RANGE(0, 360)),
      FIELD('dec', 'double', ' unit="deg"', RANGE(-90, 90)),
      FIELD('nDetections', 'short', '', NULL('-999')),
      FIELD('qualityFlag', 'unsignedByte', '', NULL('0')),
    ]),
    table('MeanObject', [PARAM('primaryKey', 'objID'), PARAM('references', 'objID ObjectThin.objID'), PARAM('merge', 'replace')], [
      FIELD('objID', 'long'),
      FIELD('gMeanPSFMag', 'float', ' unit="mag"', NULL('-999')),
    ]),
  ]),
  'P2.xml': votable([
    table('FrameMeta', [PARAM('primaryKey', 'frameID')], [
      FIELD('frameID', 'long'),
      FIELD('expTime', 'float', ' unit="s"', NULL('-999')),
      FIELD('filterID', 'unsignedByte', '', RANGE(1, 5)),
    ]),
    table('Detection', [PARAM('primaryKey', 'detectID'), PARAM('references', 'frameID FrameMeta.frameID; objID ObjectThin.objID')], [
      FIELD('detectID', 'long'),
      FIELD('frameID', 'long'),
      FIELD('objID', 'long'),
      FIELD('ra', 'double', ' unit="deg"', RANGE(0, 360)),
      FIELD('dec', 'double', ' unit="deg"', RANGE(-90, 90)),
      FIELD('psfFlux', 'float', ' unit="Jy"', NULL('-999')),
      FIELD('infoFlag', 'int', '', NULL('0')),
      FIELD('filterID', 'unsignedByte', '', RANGE(1, 5, '255')),
    ]),
    OBJECT_STUB,
  ]),
};

/** Writes the test schema files into `dir` (created). */
export async function writeTestSchema(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(TEST_SCHEMA)) await writeFile(join(dir, name), text);
  return dir;
}

/** Column types of the test schema's FIELD datatypes, for building tables. */
const TYPE_OF: Record<string, ColumnType> = { long: 'int64', int: 'int32', short: 'int16', unsignedByte: 'uint8', float: 'float32', double: 'float64', char: 'string', boolean: 'boolean' };

/** The rows of one table of a test batch, column by column. */
export interface TestTable {
  readonly name: string;
  readonly columns: readonly { name: string; datatype: string; values: readonly (number | bigint | string)[] }[];
}

/** A P2 batch of one frame: `n` detections of `n` objects (stubs carried along). */
export function p2Batch(frameID: number, n: number, options: { firstDetect?: number; firstObj?: number; badRa?: number[] } = {}): TestTable[] {
  const d0 = options.firstDetect ?? frameID * 100_000;
  const o0 = options.firstObj ?? frameID * 100_000;
  const ra = Array.from({ length: n }, (_, i) => 10 + (i % 1000) * 0.001);
  const dec = Array.from({ length: n }, (_, i) => -5 + Math.floor(i / 1000) * 0.001);
  for (const i of options.badRa ?? []) ra[i] = 400 + i;
  return [
    { name: 'FrameMeta', columns: [
      { name: 'frameID', datatype: 'long', values: [BigInt(frameID)] },
      { name: 'expTime', datatype: 'float', values: [30] },
      { name: 'filterID', datatype: 'unsignedByte', values: [2] },
    ] },
    { name: 'Detection', columns: [
      { name: 'detectID', datatype: 'long', values: Array.from({ length: n }, (_, i) => BigInt(d0 + i)) },
      { name: 'frameID', datatype: 'long', values: Array.from({ length: n }, () => BigInt(frameID)) },
      { name: 'objID', datatype: 'long', values: Array.from({ length: n }, (_, i) => BigInt(o0 + i)) },
      { name: 'ra', datatype: 'double', values: ra },
      { name: 'dec', datatype: 'double', values: dec },
      { name: 'psfFlux', datatype: 'float', values: Array.from({ length: n }, (_, i) => (i % 7 === 0 ? -999 : 1e-6 * (i + 1))) },
      { name: 'infoFlag', datatype: 'int', values: Array.from({ length: n }, (_, i) => i % 3) },
      { name: 'filterID', datatype: 'unsignedByte', values: Array.from({ length: n }, () => 2) },
    ] },
    { name: 'ObjectThin', columns: [
      { name: 'objID', datatype: 'long', values: Array.from({ length: n }, (_, i) => BigInt(o0 + i)) },
      { name: 'ra', datatype: 'double', values: ra.map((r) => Math.min(r, 359)) },
      { name: 'dec', datatype: 'double', values: dec },
    ] },
  ];
}

/** An OB batch: full ObjectThin rows and MeanObject rows for objects `first..first+n-1`. */
export function obBatch(first: number, n: number): TestTable[] {
  const ids = Array.from({ length: n }, (_, i) => BigInt(first + i));
  return [
    { name: 'ObjectThin', columns: [
      { name: 'objID', datatype: 'long', values: ids },
      { name: 'ra', datatype: 'double', values: ids.map((_, i) => 10 + (i % 1000) * 0.001) },
      { name: 'dec', datatype: 'double', values: ids.map((_, i) => -5 + Math.floor(i / 1000) * 0.001) },
      { name: 'nDetections', datatype: 'short', values: ids.map(() => 3) },
      { name: 'qualityFlag', datatype: 'unsignedByte', values: ids.map(() => 1) },
    ] },
    { name: 'MeanObject', columns: [
      { name: 'objID', datatype: 'long', values: ids },
      { name: 'gMeanPSFMag', datatype: 'float', values: ids.map((_, i) => 18 + (i % 50) * 0.1) },
    ] },
  ];
}

function csvValue(v: number | bigint | string): string {
  if (typeof v === 'string') return /[",\n]/.test(v) || v === '' ? `"${v.replaceAll('"', '""')}"` : v;
  return String(v);
}

/** Writes the tables of a batch as CSV files in `dir`; returns the hand-over's table list. */
export async function writeBatchCsv(dir: string, tables: readonly TestTable[]): Promise<{ name: string; path: string }[]> {
  await mkdir(dir, { recursive: true });
  const out: { name: string; path: string }[] = [];
  for (const t of tables) {
    const n = t.columns[0].values.length;
    const lines = [t.columns.map((c) => c.name).join(',')];
    for (let r = 0; r < n; r++) lines.push(t.columns.map((c) => csvValue(c.values[r])).join(','));
    const path = join(dir, `${t.name}.csv`);
    await writeFile(path, `${lines.join('\n')}\n`);
    out.push({ name: t.name, path });
  }
  return out;
}

function toTable(t: TestTable): Table {
  const infos: ColumnInfo[] = t.columns.map((c) => columnInfo(c.name, TYPE_OF[c.datatype], c.datatype === 'char' ? { width: Math.max(1, ...c.values.map((v) => String(v).length)) } : {}));
  const n = t.columns[0].values.length;
  const columns = t.columns.map((c, i) => {
    const type = infos[i].type;
    if (type === 'string') return { values: c.values.map(String) };
    if (type === 'int64') return { values: BigInt64Array.from(c.values.map((v) => BigInt(v))) };
    const Ctor = { int32: Int32Array, int16: Int16Array, uint8: Uint8Array, float32: Float32Array, float64: Float64Array, boolean: Uint8Array }[type as 'int32'];
    return { values: Ctor.from(c.values.map(Number)) };
  });
  return memoryTable(infos, [{ rowCount: n, columns }], { name: t.name });
}

/** Writes a batch FITS file and its manifest as the contract lays them out; returns their paths. */
export async function writeBatchFits(dir: string, name: string, type: string, tables: readonly TestTable[], product = 'PSPS_test'): Promise<{ fits: string; manifest: string; md5: string }> {
  await mkdir(dir, { recursive: true });
  const fits = join(dir, `${name}.fits`);
  const primary = new Header().set('BATCH', name).set('BATCHTYP', type).set('CONFIG', 'test').set('SRCID', 0)
    .set('SCHEMA', `${type}.xml`).set('DATE', new Date().toISOString().slice(0, 19));
  await writeFits(fits, tables.map((t) => ({ table: toTable(t), header: new Header().set('EXTNAME', t.name) })), { primaryHeader: primary });
  const bytes = await readFile(fits);
  const md5 = createHash('md5').update(bytes).digest('hex');
  const manifest = join(dir, `${name}.manifest.json`);
  await writeFile(manifest, JSON.stringify({
    format: 'ipptopsps-batch', version: 1, batch: name, type, config: 'test', product, created: new Date().toISOString(),
    source: { kind: 'camRun', id: 0, paths: [] }, schema: { file: `${type}.xml`, md5: '' },
    tables: tables.map((t) => ({ name: t.name, rows: t.columns[0].values.length })),
    files: [{ name: `${name}.fits`, bytes: bytes.length, md5 }],
  }, null, 2));
  return { fits, manifest, md5 };
}

/** Asserts that a table's key table holds exactly the keys of its batch partitions (PostgreSQL, partitioned by batch). */
export async function keyTableAgrees(archive: Archive, table: string, key: string): Promise<void> {
  const inTable = await archive.db.all<{ k: string }>(`SELECT ${key}::text AS k FROM ${keyTableName(table)} ORDER BY ${key}`);
  const byHand = await defaultPartition(archive.db, table);
  const inParts = await archive.db.all<{ k: string }>(
    `SELECT DISTINCT ${key}::text AS k, ${key} FROM ${table}${byHand === undefined ? '' : ` WHERE tableoid <> '${byHand}'::regclass`} ORDER BY ${key}`);
  assert.deepEqual(inTable.map((r) => r.k), inParts.map((r) => r.k), `${keyTableName(table)} holds the keys of ${table}'s batch partitions`);
}
