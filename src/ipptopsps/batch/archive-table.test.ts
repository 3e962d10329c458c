import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PSPS_SCHEMA_DIR } from '../../common/index.ts';
import { columnInfo, type ColumnType } from '../../table/index.ts';
import { readTableSchemas, type SchemaColumn, type SchemaValue, type TableSchema, type TableReference } from '../../votable/index.ts';
import { IppToPspsError } from '../errors.ts';
import { TablePart, checkReferences, missingRequired, validateTable, type ArchiveTable } from './archive-table.ts';

function column(name: string, type: ColumnType, extra: Partial<SchemaColumn> & { defaultValue?: SchemaValue } = {}): SchemaColumn {
  return { ...columnInfo(name, type), required: extra.defaultValue === undefined, ...extra };
}

const obj = (columns: SchemaColumn[], references: TableReference[] = [], name = 'T'): TableSchema => ({
  name, columns, primaryKey: [columns[0].name], references, merge: 'insert',
});

const DET = obj([
  column('detID', 'int64'),
  column('objID', 'int64', { min: 0 }),
  column('mag', 'float32', { min: 0, max: 30, maxInclusive: false, defaultValue: -999 }),
  column('ra', 'float64', { min: 0, max: 360 }),
  column('flag', 'int16', { min: 0, defaultValue: 0 }),
  column('survey', 'uint8', { min: 1, max: 2 }),
], [{ column: 'objID', table: 'Obj', targetColumn: 'objID' }], 'Det');
const OBJ = obj([column('objID', 'int64'), column('zone', 'int32', { defaultValue: -1 })], [], 'Obj');

function part(s: TableSchema, det: bigint[], fill: (p: TablePart) => void): TablePart {
  const p = new TablePart(s, det.length, { file: 'f.smf', hdu: 'XY01.psf', describeRow: (i) => `row ${i + 1} (det ${det[i]})` });
  p.putBig(s.columns[0].name, BigInt64Array.from(det));
  fill(p);
  return p;
}

function det(ids: bigint[], objs: bigint[], extra: (p: TablePart) => void = () => {}): TablePart {
  return part(DET, ids, (p) => {
    p.putBig('objID', BigInt64Array.from(objs));
    p.put('mag', Float32Array.from(ids, (_, i) => 10 + i));
    p.put('ra', Float64Array.from(ids, (_, i) => i));
    p.fill('survey', 1);
    extra(p);
  });
}

function fails(f: () => void, code: string, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof IppToPspsError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

const notes = (): { warnings: string[] } => ({ warnings: [] });

test('validateTable: ranges (default allowed, exclusive bound), missing required values, in written and in constant columns', () => {
  validateTable({ schema: DET, parts: [det([1n, 2n], [5n, 6n], (p) => p.put('mag', Float32Array.of(NaN, 3)))] }, notes()); // NaN mag: the default
  fails(() => validateTable({ schema: DET, parts: [det([1n, 2n, 3n], [5n, 6n, 7n], (p) => p.put('mag', Float32Array.of(1, 30, 2)))] }, notes()),
    'batch_out_of_range', /f\.smf: XY01\.psf: table Det: column mag: row 2 \(det 2\): 30 is outside the declared range \[0\.\.30\)/);
  fails(() => validateTable({ schema: DET, parts: [det([1n, 2n], [5n, 6n], (p) => p.fill('survey', 3))] }, notes()),
    'batch_out_of_range', /column survey: row 1 \(det 1\): 3 is outside/);
  fails(() => validateTable({ schema: DET, parts: [det([1n, 2n], [5n, -6n])] }, notes()),
    'batch_out_of_range', /column objID: row 2 \(det 2\): -6 is outside/);
  fails(() => validateTable({ schema: DET, parts: [det([1n, 2n], [5n, 6n], (p) => p.put('ra', Float64Array.of(1, NaN)))] }, notes()),
    'batch_missing_value', /column ra: row 2 \(det 2\): the value is missing/);
  fails(() => validateTable({ schema: DET, parts: [det([1n, 2n], [5n, 6n], (p) => p.fill('ra', undefined))] }, notes()),
    'batch_missing_value', /column ra: row 1 \(det 1\)/);
  const p = det([1n, 2n, 3n], [5n, 6n, 7n], (q) => { q.fill('ra', undefined); q.put('mag', Float32Array.of(1, NaN, 2)); });
  assert.deepEqual(missingRequired(p), { mask: Uint8Array.of(1, 1, 1), count: 3, first: { column: 'ra', row: 0 } });
});

test('validateTable: duplicate keys, shown by order or found by hashing: equal rows discarded, different rows fail', () => {
  // Parts each sorted and apart: no duplicates.
  const apart: ArchiveTable = { schema: DET, parts: [det([10n, 11n], [1n, 1n]), det([1n, 2n, 3n], [1n, 1n, 1n])] };
  const n = notes();
  validateTable(apart, n);
  assert.deepEqual(n.warnings, []);
  // Overlapping parts and an unsorted part: an equal row is discarded (the later one).
  const t: ArchiveTable = { schema: DET, parts: [det([3n, 1n, 2n], [1n, 1n, 1n]), det([5n, 1n], [1n, 1n])] };
  const w = notes();
  validateTable(t, w);
  assert.deepEqual(w.warnings, ['table Det: 1 duplicate row discarded (same key, same values)']);
  assert.deepEqual(t.parts.map((p) => [...p.values(0) as BigInt64Array]), [[3n, 1n, 2n], [5n]]);
  assert.ok(t.parts[1].isConstant(5), 'a filtered part keeps its constant columns');
  assert.deepEqual([...t.parts[1].values(5) as Uint8Array], [1]);
  // Same key, another value: fails naming both rows.
  const bad: ArchiveTable = { schema: DET, parts: [det([1n, 2n], [1n, 1n]), det([2n], [9n])] };
  fails(() => validateTable(bad, notes()), 'batch_duplicate_key', /column detID: row 1 \(det 2\): key 2 repeats .*row 2 \(det 2\) with different values/);
});

test('checkReferences: every objID a key of the target table, found by sorted walk; the first missing one named', () => {
  const objs: ArchiveTable = { schema: OBJ, parts: [part(OBJ, [7n, 5n], () => {}), part(OBJ, [6n, -2n], () => {})] };
  checkReferences([{ schema: DET, parts: [det([1n, 2n, 3n], [5n, 6n, 5n]), det([4n], [-2n]), det([8n, 9n], [7n, 7n])] }, objs]);
  fails(() => checkReferences([{ schema: DET, parts: [det([1n, 2n], [5n, 6n]), det([3n, 4n], [8n, 4n])] }, objs]),
    'batch_bad_reference', /table Det: column objID: row 1 \(det 3\): 8 is not a Obj\.objID of the batch/);
  // A constant column (here the objID every row of a part shares) is looked up once.
  const same = det([1n, 2n], [0n, 0n]);
  same.fill('objID', 6n);
  checkReferences([{ schema: DET, parts: [same] }, objs]);
  same.fill('objID', 4n);
  fails(() => checkReferences([{ schema: DET, parts: [same] }, objs]), 'batch_bad_reference', /row 1 \(det 1\): 4 is not/);
});

test('TablePart.put: an array of the column\'s type with nothing missing is taken as it is, and left alone by later writes', () => {
  const s = obj([column('id', 'int64'), column('mag', 'float32', { defaultValue: -999 }), column('n', 'int32', { defaultValue: -1 })]);
  const p = new TablePart(s, 3, { file: 'f' });
  const mag = Float32Array.of(1, 2, 3);
  const flags = Uint32Array.of(1, 0xffffffff, 7);
  p.put('mag', mag);
  p.put('n', flags);
  assert.equal(p.values(1), mag, 'taken without a copy');
  assert.deepEqual([...p.values(2) as Int32Array], [1, -1, 7], 'uint32 bits as int32, as a copy gives them');
  p.put('mag', Float32Array.of(4, 5, 6));
  assert.deepEqual([...mag], [1, 2, 3], 'a later put writes a new array');
  assert.deepEqual([...p.values(1) as Float32Array], [4, 5, 6]);
  p.put('n', flags);
  (p.column('n')!.values as Int32Array)[0] = 99;
  assert.deepEqual([...flags], [1, 0xffffffff, 7], 'column() hands out a copy of a taken array');
  // A missing value is replaced by the default in a copy; the array given is not touched.
  const withNaN = Float32Array.of(1, NaN, 3);
  p.put('mag', withNaN);
  assert.notEqual(p.values(1), withNaN);
  assert.deepEqual([...p.values(1) as Float32Array], [1, -999, 3]);
  assert.ok(Number.isNaN(withNaN[1]));
  const ids = BigInt64Array.of(5n, 6n, 7n);
  p.putBig('id', ids);
  assert.equal(p.values(0), ids, 'IDs taken without a copy');
  p.putBig('id', BigInt64Array.of(8n, 9n, 10n));
  assert.deepEqual([...ids], [5n, 6n, 7n], 'and left alone by a later put');
});

test('StackToImage (ST.xml): key (stackImageID, imageID) unique, a repeated row discarded; every stackImageID is the batch\'s StackMeta', async () => {
  const st = await readTableSchemas(join(PSPS_SCHEMA_DIR, 'ST.xml'));
  const toImage = st.find((t) => t.name === 'StackToImage')!;
  const meta = st.find((t) => t.name === 'StackMeta')!;
  assert.deepEqual(toImage.primaryKey, ['stackImageID', 'imageID']);
  const inputs = (stack: bigint, images: bigint[]): TablePart => {
    const p = new TablePart(toImage, images.length, { file: 'x.cmf', hdu: 'gpc1 inputs', describeRow: (i) => `row ${i + 1} (imageID ${images[i]})` });
    p.fill('stackImageID', stack);
    p.putBig('imageID', BigInt64Array.from(images));
    return p;
  };
  const metaPart = new TablePart(meta, 1, { file: 'x.cmf' });
  metaPart.fill('stackImageID', 7);
  metaPart.fill('filterID', 2);
  const stackMeta: ArchiveTable = { schema: meta, parts: [metaPart] };
  const n = notes();
  const good: ArchiveTable = { schema: toImage, parts: [inputs(7n, [10000133n, 10000134n, 10000133n])] };
  validateTable(good, n);
  assert.equal(good.parts[0].rows, 2);
  assert.match(n.warnings.join(), /StackToImage: 1 duplicate row discarded/);
  checkReferences([stackMeta, good]);
  const other: ArchiveTable = { schema: toImage, parts: [inputs(8n, [10000133n])] };
  validateTable(other, notes());
  fails(() => checkReferences([stackMeta, other]), 'batch_bad_reference', /table StackToImage: column stackImageID: row 1 \(imageID 10000133\): 8 is not a StackMeta\.stackImageID of the batch/);
  fails(() => validateTable({ schema: toImage, parts: [inputs(7n, [-5n])] }, notes()), 'batch_out_of_range', /column imageID: row 1 \(imageID -5\)/);
});
