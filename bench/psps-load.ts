// Archive load rate: a P2 batch of the real schema (schema/psps/P2.xml: FrameMeta, 60
// ImageMeta, N Detection rows of 58 columns, N ObjectThin stubs) as CSV files and as the
// batch FITS file, through the ODM's steps (stage → validate → merge) into an empty archive,
// in rows per second, each step timed. SQLite: chunked INSERTs from the CSV, INSERT ...
// SELECT merge. PostgreSQL, twice: from the CSV files (text COPY) and from the FITS file
// (binary COPY, the ODM's path when the DXLayer hands the FITS file over; the target applies
// to it) into plain tables (the default: the merge copies the rows in) and into tables
// partitioned by batch (staging builds the archive's key and indexes on its two connections
// once the rows are committed, the merge attaches the staging tables as the batch's
// partitions). Peers in the same run: PostgreSQL's own `psql \copy` of
// the same CSV files into bare tables, and SQLite's `sqlite3 .import`, which load without
// any checking, keys, indexes or merge (psql runs the tables one after the other; ours loads
// two at once on PostgreSQL, as the ODM does).
//   node bench/psps-load.ts [detections=300000] [--pg URL] [--no-sqlite] [--warm W]
// --warm W: the FITS runs into PostgreSQL first merge W batches of the same size (keys apart;
// a partitioned archive compacted after each, as the ODM does), untimed, so the timed batch
// goes into a live archive rather than an empty one.
// --shared P (with --warm): object IDs interleave across all the batches instead of lying
// apart, as those of overlapping fields do, so every partition holds keys in the timed
// batch's range and is looked up (the worst case for a partitioned archive), and P% of the
// timed batch's ObjectThin stubs are in the archive already (merged by a warm batch).
// PostgreSQL runs when --pg or IPP_TEST_PG_URL names a server (a throw-away database).
// With --compact B (PostgreSQL only; instead of the runs above): B P2 batches of
// `detections` rows each (keys apart) loaded from CSV into an archive partitioned by batch,
// then `ipp archive compact`'s compactArchive with K (--k, default 16): its rows/s against
// PostgreSQL's bare copy of the same tables (CREATE TABLE AS SELECT), the partitions per
// table, and a cone search's and a key look-up's time (median of 21) with
// one partition per batch and after compaction.
//   node bench/psps-load.ts 20000 --compact 256 [--k 16]
// With --odm B (PostgreSQL only; instead of the runs above): B P2 batches (keys apart) handed
// to a running ODM (src/psps/odm.ts) as the DXLayer hands them over (CSV files and the batch
// FITS file), into an archive partitioned by batch, in rows/s from the first hand-over to the
// last merge: with the ODM's second lane loading the next batch while the one before merges
// (the default on PostgreSQL) against the same ODM with one lane (the peer), each into a new
// database, to the last merge. The ODM compacts after merges as it does by default (K = 16):
// while batches wait, only once a level holds 32 partitions; the folds put off run after the
// last merge, timed apart. With --shared P, every batch's first P% of object stubs are of the same
// objects (visits of one field, a survey's steady state), the rest new.
//   node bench/psps-load.ts 300000 --odm 8 [--shared 90]
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import os from 'node:os';
import { PSPS_SCHEMA_DIR } from '../src/common/index.ts';
import { openDatabase } from '../src/db/index.ts';
import {
  batchSchemaOf, compactArchive, coneSearch, mergeBatch, Odm, openArchive, ProblemList, PSPS_MIGRATIONS, readArchiveSchema, stageBatch, validateBatch,
  type ArchiveColumn, type ArchiveTable, type BatchSchema, type StageSource,
} from '../src/psps/index.ts';
import { Header, writeFits } from '../src/fits/index.ts';
import { columnInfo, readCsv, type ColumnType } from '../src/table/index.ts';
import { BENCH_DIR, check, reportRate, rng, target, withScratchDatabase } from './lib.ts';

const argv = process.argv.slice(2);
const pgAt = argv.indexOf('--pg');
let pgUrl = process.env.IPP_TEST_PG_URL;
if (pgAt >= 0) {
  pgUrl = argv[pgAt + 1];
  if (!pgUrl) throw new Error('--pg needs a postgres:// URL');
  argv.splice(pgAt, 2);
}
function takeOption(name: string): number | undefined {
  const at = argv.indexOf(name);
  if (at < 0) return undefined;
  const v = Number(argv[at + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a whole number`);
  argv.splice(at, 2);
  return v;
}
const compactBatches = takeOption('--compact');
const odmBatches = takeOption('--odm');
const warmBatches = takeOption('--warm') ?? 0;
const compactK = takeOption('--k') ?? 16;
const sharedPercent = takeOption('--shared');
if (sharedPercent !== undefined && (sharedPercent > 100 || (warmBatches === 0 && odmBatches === undefined))) throw new Error('--shared needs a percentage (1-100) and --warm or --odm');
const skipSqlite = argv.includes('--no-sqlite');
if (skipSqlite) argv.splice(argv.indexOf('--no-sqlite'), 1);
const N = Number(argv[0] ?? 300_000);
const BATCH = 'B00000001';
// (interleaved object IDs depend on the number of batches: files of their own)
const variant = sharedPercent === undefined ? '' : `-w${warmBatches}-s${sharedPercent}`;
const dir = join(BENCH_DIR, 'psps', `p2-${N}${variant}`);
const sharedRows = Math.round((N * (sharedPercent ?? 0)) / 100);

// One value of a column for row r: keys unique, references pointing at rows of the batch,
// values inside declared ranges.
// (`b`: the batch's number, which moves its keys apart from other batches')
function value(table: string, c: ArchiveColumn, r: number, random: () => number, b = 0): string {
  const n = c.name;
  if (n === 'frameID') return String(4242 + b);
  if (n === 'imageID') return String(424200 + b * 100 + (table === 'ImageMeta' ? r : r % 60) + 1);
  if (n === 'ccdID') return String((r % 60) + 1);
  if (n === 'objID') {
    if (sharedPercent === undefined) return String(100_000_000_000 + b * N + r);
    // --odm --shared: every batch sees the same objects in its first rows (visits of one field)
    if (odmBatches !== undefined) return String(100_000_000_000 + (r < sharedRows ? r : b * N + r));
    // --shared: the first rows of the timed batch (0) are batch 1's objects
    return String(100_000_000_000 + r * (warmBatches + 1) + (b === 0 && r < sharedRows ? 1 : b));
  }
  if (n === 'detectID') return String(5_000_000_000 + b * N + r);
  if (n === 'ra') return (10 + random() * 0.4).toFixed(7);
  if (n === 'dec') return (-5 + random() * 0.4).toFixed(7);
  if (n === 'filterID') return '2';
  const lo = c.min?.value;
  const hi = c.max?.value;
  switch (c.datatype) {
    case 'char': return c.width ? 'x'.repeat(Math.min(4, c.width)) : 'x';
    case 'boolean': return 'true';
    case 'float': case 'double': {
      const a = lo ?? 0;
      const b = hi ?? a + 100;
      return (a + (b - a) * random()).toPrecision(c.datatype === 'float' ? 7 : 15);
    }
    default: {
      const a = lo ?? 0;
      const b = Math.min(hi ?? a + 1000, a + 1000, c.datatype === 'unsignedByte' ? 255 : 30000);
      return String(Math.floor(a + (b - a) * random()));
    }
  }
}

async function writeTable(t: ArchiveTable, rows: number, path: string, b = 0): Promise<void> {
  const random = rng(t.name.length * 7919 + rows + b);
  const out = createWriteStream(path);
  out.write(`${t.columns.map((c) => c.name).join(',')}\n`);
  let chunk: string[] = [];
  for (let r = 0; r < rows; r++) {
    chunk.push(t.columns.map((c) => value(t.name, c, r, random, b)).join(','));
    if (chunk.length === 5000 || r === rows - 1) {
      if (!out.write(`${chunk.join('\n')}\n`)) await once(out, 'drain');
      chunk = [];
    }
  }
  out.end();
  await once(out, 'finish');
}

function rowsOf(t: ArchiveTable): number {
  return t.name === 'FrameMeta' ? 1 : t.name === 'ImageMeta' ? 60 : N;
}

const schema = await readArchiveSchema(PSPS_SCHEMA_DIR);
const p2: BatchSchema = batchSchemaOf(schema, 'P2');
if (compactBatches !== undefined) {
  await compactBench(compactBatches);
  process.exit(0);
}
const total = p2.tables.reduce((n, t) => n + rowsOf(t), 0);
const csv = (t: ArchiveTable) => join(dir, `${t.name}.csv`);
if (!existsSync(join(dir, 'done'))) {
  mkdirSync(dir, { recursive: true });
  console.log(`writing a P2 batch of ${total.toLocaleString()} rows (${p2.tables.map((t) => `${t.name} ${rowsOf(t)}`).join(', ')}) to ${dir}`);
  for (const t of p2.tables) await writeTable(t, rowsOf(t), csv(t));
  createWriteStream(join(dir, 'done')).end();
}
// The same batch as the FITS file the DXLayer receives (one binary table per archive table),
// written from the CSV files
const FITS_TYPE: Record<ArchiveColumn['datatype'], ColumnType> = {
  long: 'int64', int: 'int32', short: 'int16', unsignedByte: 'uint8', float: 'float32', double: 'float64', char: 'string', boolean: 'boolean',
};
async function writeBatchFits(csvDir: string, out: string, batch: string): Promise<void> {
  if (existsSync(out)) return;
  const hdus = [];
  for (const t of p2.tables) {
    const schema = t.columns.map((c) => columnInfo(c.name, FITS_TYPE[c.datatype], c.datatype === 'char' ? { width: c.width ?? 16 } : {}));
    hdus.push({ table: await readCsv(join(csvDir, `${t.name}.csv`), { schema }), header: new Header().set('EXTNAME', t.name) });
  }
  await writeFits(`${out}.part`, hdus, { primaryHeader: new Header().set('BATCH', batch).set('BATCHTYP', 'P2'), checksum: false });
  renameSync(`${out}.part`, out);
}
const fits = join(dir, 'batch.fits');
await writeBatchFits(dir, fits, BATCH);
if (odmBatches !== undefined) {
  await odmBench(odmBatches);
  process.exit(0);
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; P2 batch of ${total.toLocaleString()} rows (Detection ${p2.tables.find((t) => t.name === 'Detection')!.columns.length} columns)${pgUrl ? `; PostgreSQL server: wal_level=${await walLevel(pgUrl)}` : ''}`);

// The server's wal_level: minimal writes no WAL for a table filled in the transaction that
// creates it (the partitioned layout's staging tables and their indexes), replica does.
async function walLevel(url: string): Promise<string> {
  const db = await openDatabase(url);
  try {
    return (await db.get<{ w: string }>("SELECT current_setting('wal_level') AS w"))?.w ?? '?';
  } finally {
    await db.close();
  }
}

/**
 * The CSV files of batch number `b` (keys apart from every other batch's, or with --shared as
 * its description says), written once under tmp/bench/psps/<kind>-N.
 */
async function batchDir(b: number): Promise<string> {
  const kind = sharedPercent === undefined ? 'compact' : odmBatches !== undefined ? `odm-s${sharedPercent}` : `compact-w${warmBatches}`;
  const at = join(BENCH_DIR, 'psps', `${kind}-${N}`, `b${b}`);
  if (!existsSync(join(at, 'done'))) {
    mkdirSync(at, { recursive: true });
    for (const t of p2.tables) await writeTable(t, rowsOf(t), join(at, `${t.name}.csv`), b);
    createWriteStream(join(at, 'done')).end();
  }
  return at;
}

/** Stages, validates and merges the batch into the archive at `url`; returns rows/s and the phases. */
async function ours(url: string, source: StageSource = {}, partitionByBatch = false, warm = 0): Promise<{ rate: number; phases: string }> {
  const archive = await openArchive(url, { partitionByBatch });
  try {
    // --warm: batches of the same size (keys apart) merged first, untimed, as the ODM would
    // (a partitioned archive compacted after each merge), so the timed batch meets a live archive
    for (let b = 1; b <= warm; b++) {
      const warmDir = await batchDir(b);
      const name = `W${String(b).padStart(8, '0')}`;
      const problems = new ProblemList(20);
      await stageBatch(archive, name, p2, p2.tables.map((t) => ({ name: t.name, path: join(warmDir, `${t.name}.csv`) })), problems);
      check(problems.total === 0 && (await validateBatch(archive, name, p2)).total === 0, `warm batch ${name} loads cleanly`);
      await mergeBatch(archive, name, 1, p2);
      if (partitionByBatch) await compactArchive(archive, {});
    }
    const t0 = performance.now();
    const problems = new ProblemList(20);
    await stageBatch(archive, BATCH, p2, p2.tables.map((t) => ({ name: t.name, path: csv(t) })), problems, undefined, source);
    check(problems.total === 0, `staging found problems: ${problems.reasons().join('; ')}`);
    const t1 = performance.now();
    const found = await validateBatch(archive, BATCH, p2);
    check(found.total === 0, `validation found problems: ${found.reasons().join('; ')}`);
    const t2 = performance.now();
    const merged = await mergeBatch(archive, BATCH, 1, p2);
    const t3 = performance.now();
    check(merged.rows.Detection === N, `merged ${merged.rows.Detection} detections, not ${N}`);
    const stubs = N - (warm > 0 ? sharedRows : 0);
    check(merged.rows.ObjectThin === stubs, `merged ${merged.rows.ObjectThin} object stubs, not ${stubs}`);
    const n = await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection');
    check(Number(n?.n) === N * (warm + 1), 'the archive holds every detection');
    const s = (a: number, b: number) => ((b - a) / 1000).toFixed(2);
    const r = (a: number, b: number) => Math.round(total / ((b - a) / 1000)).toLocaleString();
    return {
      rate: total / ((t3 - t0) / 1000),
      phases: `${source.fits ? 'FITS, binary COPY' : archive.dialect.engine === 'postgres' ? 'CSV, text COPY' : 'CSV, INSERT'}${archive.partitioned.size > 0 ? ', partitioned by batch' : ''}${warm > 0 ? `, after ${warm} batches${sharedPercent === undefined ? '' : `, object IDs interleaved, ${sharedPercent}% shared`}` : ''}: stage ${s(t0, t1)} s (${r(t0, t1)} rows/s), validate ${s(t1, t2)} s, merge ${s(t2, t3)} s; ${os.loadavg()[0].toFixed(1)} load`,
    };
  } finally {
    await archive.close();
  }
}

function ddl(t: ArchiveTable, pg: boolean): string {
  const type = (c: ArchiveColumn) => ({ long: 'BIGINT', int: 'INTEGER', short: 'SMALLINT', unsignedByte: 'SMALLINT', float: 'REAL', double: pg ? 'DOUBLE PRECISION' : 'REAL', char: 'TEXT', boolean: pg ? 'BOOLEAN' : 'INTEGER' })[c.datatype];
  return `CREATE TABLE ${t.name} (${t.columns.map((c) => `${c.name} ${type(c)}`).join(', ')})`;
}

// SQLite
if (!skipSqlite) {
  const file = join(BENCH_DIR, 'psps', `archive-${process.pid}.db`);
  const peerFile = join(BENCH_DIR, 'psps', `peer-${process.pid}.db`);
  try {
    const { rate, phases } = await ours(`sqlite:${file}`);
    const script = [...p2.tables.map((t) => `${ddl(t, false)};`), ...p2.tables.map((t) => `.import --csv --skip 1 ${csv(t)} ${t.name}`)].join('\n');
    const t0 = performance.now();
    const r = spawnSync('sqlite3', [peerFile], { input: script, encoding: 'utf8' });
    const peerRate = total / ((performance.now() - t0) / 1000);
    check(r.status === 0, `sqlite3 .import failed: ${r.stderr}`);
    reportRate(`SQLite archive load (${phases})`, rate, 'sqlite3 .import (no checks, no keys)', peerRate, 'rows/s');
  } finally {
    for (const f of [file, peerFile]) for (const x of ['', '-wal', '-shm']) rmSync(`${f}${x}`, { force: true });
  }
}

// PostgreSQL
if (!pgUrl) {
  console.log('PostgreSQL: skipped (no --pg URL and no IPP_TEST_PG_URL)');
} else {
  // each run into a database of its own
  const scratch = <T>(fn: (url: string) => Promise<T>) => withScratchDatabase(pgUrl, 'ipp_bench_psps', fn);
  const text = await scratch((url) => ours(url));
  console.log(`PostgreSQL archive load (${text.phases}): ${Math.round(text.rate).toLocaleString()} rows/s`);
  const { rate, phases } = await scratch((url) => ours(url, { fits }, false, warmBatches));
  const byBatch = await scratch((url) => ours(url, { fits }, true, warmBatches));
  const peerRate = await scratch(async (url) => {
    const peerDb = await openDatabase(url, {});
    for (const t of p2.tables) await peerDb.exec(ddl(t, true));
    await peerDb.close();
    const script = p2.tables.map((t) => `\\copy ${t.name} FROM '${csv(t)}' WITH (FORMAT csv, HEADER true)`).join('\n');
    const t0 = performance.now();
    const r = spawnSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', url], { input: script, encoding: 'utf8' });
    check(r.status === 0, `psql \\copy failed: ${r.stderr}`);
    return total / ((performance.now() - t0) / 1000);
  });
  reportRate(`PostgreSQL archive load (${phases})`, rate, 'psql \\copy (no checks, no keys)', peerRate, 'rows/s');
  target('>= 300,000 rows/s into PostgreSQL (plain tables, the default)', rate >= 300_000);
  reportRate(`PostgreSQL archive load (${byBatch.phases})`, byBatch.rate, 'psql \\copy (no checks, no keys)', peerRate, 'rows/s');
  target('>= 300,000 rows/s into PostgreSQL (partitioned by batch, ipp archive init --partition-by-batch)', byBatch.rate >= 300_000);
}

// The median of 21 runs of a query, in milliseconds.
async function medianMs(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[10];
}

// --compact: many batches into a partitioned archive, then compaction (see the file comment).
async function compactBench(batches: number): Promise<void> {
  if (!pgUrl) throw new Error('--compact needs PostgreSQL (--pg URL or IPP_TEST_PG_URL)');
  const perBatch = p2.tables.reduce((n, t) => n + rowsOf(t), 0);
  const base = join(BENCH_DIR, 'psps', `compact-${N}`);
  await withScratchDatabase(pgUrl, 'ipp_bench_compact', async (url) => {
    const archive = await openArchive(url, { partitionByBatch: true });
    try {
      // (16 more batches are loaded after the compaction)
      const more = 16;
      for (let b = 0; b < batches + more; b++) await batchDir(b);
      const loadOne = async (b: number): Promise<number> => {
        const t = performance.now();
        const dir = join(base, `b${b}`);
        const batch = `B${String(b + 1).padStart(8, '0')}`;
        const problems = new ProblemList(20);
        await stageBatch(archive, batch, p2, p2.tables.map((t) => ({ name: t.name, path: join(dir, `${t.name}.csv`) })), problems);
        check(problems.total === 0, `staging found problems: ${problems.reasons().join('; ')}`);
        const found = await validateBatch(archive, batch, p2);
        check(found.total === 0, `validation found problems: ${found.reasons().join('; ')}`);
        await mergeBatch(archive, batch, 1, p2);
        return (performance.now() - t) / 1000;
      };
      const t0 = performance.now();
      const times: number[] = [];
      for (let b = 0; b < batches; b++) times.push(await loadOne(b));
      const loadS = (performance.now() - t0) / 1000;
      const rate = (s: number[]) => Math.round((s.length * perBatch) / s.reduce((a, x) => a + x, 0)).toLocaleString();
      const total = Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n);
      check(total === batches * N, `the archive holds ${total} detections, not ${batches * N}`);
      console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${batches} P2 batches of ${perBatch.toLocaleString()} rows loaded from CSV into an archive partitioned by batch in ${loadS.toFixed(1)} s (${Math.round((batches * perBatch) / loadS).toLocaleString()} rows/s, one batch at a time: the first ${Math.min(more, batches)} ${rate(times.slice(0, more))} rows/s, the last ${Math.min(more, batches)} ${rate(times.slice(-more))} rows/s)`);
      // a cone of about 2 and one of about 50 detections of each batch's 0.4 x 0.4 degree field, and one key
      const radius = (perBatch: number) => Math.sqrt((perBatch / N) * 0.16 / Math.PI);
      const small = () => coneSearch(archive, 10.2, -4.8, radius(2), { table: 'Detection' });
      const cone = () => coneSearch(archive, 10.2, -4.8, radius(50), { table: 'Detection' });
      const key = () => archive.db.get('SELECT * FROM Detection WHERE detectID = ?', [5_000_000_000 + Math.floor(batches / 2) * N + 7]);
      const hits = (await cone()).length;
      const smallHits = (await small()).length;
      const smallBefore = await medianMs(small);
      const coneBefore = await medianMs(cone);
      const keyBefore = await medianMs(key);
      const t1 = performance.now();
      const result = await compactArchive(archive, { batchesPerPartition: compactK });
      const compactS = (performance.now() - t1) / 1000;
      const rewritten = result.folds.reduce((n, f) => n + f.rows, 0);
      check((await cone()).length === hits, 'the cone finds the same detections after compaction');
      check(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n) === total, 'compaction kept every detection');
      const smallAfter = await medianMs(small);
      const coneAfter = await medianMs(cone);
      const keyAfter = await medianMs(key);
      const counts = Object.entries(result.partitions).filter(([, c]) => c.before > 0).map(([t, c]) => `${t} ${c.before} -> ${c.after}`).join(', ');
      console.log(`compaction, K = ${compactK}: ${result.folds.length} folds, ${rewritten.toLocaleString()} rows rewritten in ${compactS.toFixed(1)} s (${Math.round(rewritten / compactS).toLocaleString()} rows/s); partitions: ${counts}; ${os.loadavg()[0].toFixed(1)} load`);
      // The peer: the same tables' rows copied once by PostgreSQL alone (CREATE TABLE AS SELECT:
      // no order, no key, no index), the least any rewrite of them costs.
      const folded = [...new Set(result.folds.map((f) => f.table))];
      let copied = 0;
      let peerS = 0;
      for (const t of folded) {
        copied += Number((await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM ${t}`))?.n);
        const t2 = performance.now();
        await archive.db.exec(`CREATE TABLE ipp_bench_peer_${t} AS SELECT * FROM ${t}`);
        peerS += (performance.now() - t2) / 1000;
        await archive.db.exec(`DROP TABLE ipp_bench_peer_${t}`);
      }
      reportRate('compaction (rows rewritten with their key and indexes, in key order)', rewritten / compactS, 'CREATE TABLE AS SELECT of the same tables (no key, no index)', copied / peerS, 'rows/s');
      const before = `with ${result.partitions.Detection.before} partitions`;
      const after = `with ${result.partitions.Detection.after}`;
      const next: number[] = [];
      for (let b = batches; b < batches + more; b++) next.push(await loadOne(b));
      console.log(`${more} batches more after compaction: ${rate(next)} rows/s (stage, validate, merge)`);
      console.log(`cone search (Detection, ${(radius(2) * 3600).toFixed(1)}", ${smallHits} rows): ${smallBefore.toFixed(2)} ms ${before}, ${smallAfter.toFixed(2)} ms ${after}; (${(radius(50) * 3600).toFixed(1)}", ${hits} rows): ${coneBefore.toFixed(2)} ms, ${coneAfter.toFixed(2)} ms; key look-up (detectID): ${keyBefore.toFixed(2)} ms, ${keyAfter.toFixed(2)} ms`);
    } finally {
      await archive.close();
    }
  });
}

// --odm: batches through a running ODM, with and without its second lane (see the file comment).
async function odmBench(batches: number): Promise<void> {
  if (!pgUrl) throw new Error('--odm needs PostgreSQL (--pg URL or IPP_TEST_PG_URL)');
  const dirs: string[] = [];
  for (let b = 1; b <= batches; b++) {
    const at = await batchDir(b);
    await writeBatchFits(at, join(at, 'batch.fits'), `O${String(b).padStart(8, '0')}`);
    dirs.push(at);
  }
  const rows = total * batches;
  const run = (stageAhead: boolean) => withScratchDatabase(pgUrl!, 'ipp_bench_odm', async (url): Promise<{ rate: number; phases: string }> => {
    const archive = await openArchive(url, { partitionByBatch: true });
    const db = await openDatabase(url, { migrations: [PSPS_MIGRATIONS] });
    const odm = await Odm.start({ db, archive, stageAhead });
    try {
      const started = Date.now();
      for (const [i, at] of dirs.entries()) {
        await odm.submit({
          name: `O${String(i + 1).padStart(8, '0')}`, product: 'PSPS_bench', type: 'P2', md5: String(i + 1).padStart(32, '0'), dir: at,
          fits: join(at, 'batch.fits'), tables: p2.tables.map((t) => ({ name: t.name, path: join(at, `${t.name}.csv`) })),
        });
      }
      await odm.idle();
      // the rate is to the last merge; folds the ODM put off while batches waited run after it
      const idle = (Date.now() - started) / 1000;
      const last = await db.get<{ m: string }>('SELECT max(merged_at) AS m FROM odm_batch');
      const seconds = (Date.parse(String(last?.m)) - started) / 1000;
      const states = await odm.counts();
      check(states.merged === batches, `every batch merged (${JSON.stringify(states)})`);
      const n = await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection');
      check(Number(n?.n) === N * batches, 'the archive holds every detection');
      return {
        rate: rows / seconds,
        phases: `${batches} batches of ${total.toLocaleString()} rows${sharedPercent === undefined ? '' : `, ${sharedPercent}% of the object stubs shared`} merged in ${seconds.toFixed(1)} s${idle - seconds >= 0.5 ? `, folds done ${(idle - seconds).toFixed(1)} s after` : ''}`,
      };
    } finally {
      await odm.close();
      await db.close();
      await archive.close();
    }
  });
  const one = await run(false);
  const two = await run(true);
  reportRate(`ODM, archive partitioned by batch, loading the next batch while the one before merges (${two.phases}; wal_level=${await walLevel(pgUrl)}; ${os.loadavg()[0].toFixed(1)} load)`,
    two.rate, `the same ODM with one lane (${one.phases})`, one.rate, 'rows/s');
  target('>= 300,000 rows/s into PostgreSQL (the ODM over many batches)', two.rate >= 300_000);
}
