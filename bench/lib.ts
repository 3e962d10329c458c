// Shared pieces of the benchmarks: timing, peers run as child processes, the bench table
// and its cached FITS files, per-column sums that touch every value.
import './usage.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FitsFile, fitsTable, writeCompressedFits, writeFits } from '../src/fits/index.ts';
import { columnInfo, type ColumnBatch, type ColumnInfo, type ColumnValues, type Table } from '../src/table/index.ts';
import { mulberry32 } from '../src/common/index.ts';
import { openDatabase } from '../src/db/index.ts';
import { randomBytes } from 'node:crypto';

/** Where benchmarks keep generated files (ignored by git). */
export const BENCH_DIR = fileURLToPath(new URL('../tmp/bench/', import.meta.url));
mkdirSync(BENCH_DIR, { recursive: true });

/**
 * Runs `fn` with the URL of a database made for it on the PostgreSQL server `adminUrl`
 * names (`prefix` and a random suffix), dropped afterwards whatever happens.
 */
export async function withScratchDatabase<T>(adminUrl: string, prefix: string, fn: (url: string) => Promise<T>): Promise<T> {
  const admin = await openDatabase(adminUrl, { maxConnections: 1 });
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  try {
    await admin.exec(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return await fn(url.toString());
  } finally {
    await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.close();
  }
}

/** Seconds taken by an async function (best of `runs`). */
export async function timeIt(fn: () => Promise<unknown> | unknown, runs = 1): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** Runs a command, returns its wall-clock seconds and stdout; throws if it fails. */
export function timeCommand(cmd: string, args: string[]): { seconds: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

/** Prints one result line: what, ours, the peer's, and the ratio (peer / ours: >1 means we are faster). */
export function report(name: string, ours: number, peerName: string, peer: number, unit = 's'): void {
  const ratio = peer / ours;
  console.log(`${name}: ours ${ours.toFixed(3)} ${unit}, ${peerName} ${peer.toFixed(3)} ${unit}, ratio ${ratio.toFixed(2)}x ${ratio >= 1 ? 'faster' : 'slower'}`);
}

/** As {@link report} for rates (MB/s and the like), where more is better: the ratio is ours / peer. */
export function reportRate(name: string, ours: number, peerName: string, peer: number, unit = 'MB/s'): void {
  const ratio = ours / peer;
  console.log(`${name}: ours ${ours.toFixed(1)} ${unit}, ${peerName} ${peer.toFixed(1)} ${unit}, ratio ${ratio.toFixed(2)}x ${ratio >= 1 ? 'faster' : 'slower'}`);
}

/** Prints whether a target was met; missing one is news, not a failure of the script. */
export function target(what: string, met: boolean): void {
  console.log(`  target ${what}: ${met ? 'met' : 'MISSED'}`);
}

/** Throws (failing the script) when a check of the results does not hold. */
export function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
}

/** The Python with astropy (the one on PATH may lack it). */
export const PYTHON = '/usr/bin/python3';

/** Where the peer scripts are. */
export const PEERS = fileURLToPath(new URL('./peers/', import.meta.url));

/** Runs a peer script that prints one JSON object on its last line; returns that object. */
export function runPeer<T>(script: string, args: string[]): T {
  const { stdout } = timeCommand(PYTHON, [join(PEERS, script), ...args]);
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}

/** Megabytes (10^6 bytes), the unit of every rate printed. */
export function mb(bytes: number): number {
  return bytes / 1e6;
}

/** Bytes of every file under a directory. */
export function dirBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);
}

/** A seeded generator of numbers in [0, 1), so every run writes the same table. */
export function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** The benchmark table's 20 columns: a detection table of mixed types, like a P2 batch's Detection. */
export const BENCH_COLUMNS: ColumnInfo[] = [
  columnInfo('objID', 'int64'),
  columnInfo('detectID', 'int64'),
  columnInfo('ippObjID', 'int64'),
  columnInfo('imageID', 'int32'),
  columnInfo('ra', 'float64', { unit: 'deg' }),
  columnInfo('dec', 'float64', { unit: 'deg' }),
  columnInfo('raErr', 'float32', { unit: 'arcsec' }),
  columnInfo('decErr', 'float32', { unit: 'arcsec' }),
  columnInfo('psfFlux', 'float32', { unit: 'Jy' }),
  columnInfo('psfFluxErr', 'float32', { unit: 'Jy' }),
  columnInfo('apFlux', 'float32', { unit: 'Jy' }),
  columnInfo('apFluxErr', 'float32', { unit: 'Jy' }),
  columnInfo('sky', 'float32'),
  columnInfo('psfQf', 'float32'),
  columnInfo('obsTime', 'float64', { unit: 'd' }),
  columnInfo('infoFlag', 'int32'),
  columnInfo('infoFlag2', 'int16'),
  columnInfo('filterID', 'uint8'),
  columnInfo('zoneID', 'int32'),
  columnInfo('dvoRegionID', 'int16', { nullValue: -1 }),
];

/** A re-iterable table of `rows` generated rows (same values on every pass). */
export function benchTable(rows: number, batchRows = 65536): Table {
  return {
    name: 'Detection',
    columns: BENCH_COLUMNS,
    rowCount: rows,
    async *batches() {
      const next = rng(42);
      for (let start = 0; start < rows; start += batchRows) {
        const n = Math.min(batchRows, rows - start);
        yield makeBatch(n, start, next);
      }
    },
  };
}

function makeBatch(n: number, start: number, next: () => number): ColumnBatch {
  const i64 = (f: (i: number) => bigint) => BigInt64Array.from({ length: n }, (_, i) => f(i));
  const f64 = (f: () => number) => Float64Array.from({ length: n }, f);
  const f32 = (f: () => number) => Float32Array.from({ length: n }, f);
  const i32 = (f: (i: number) => number) => Int32Array.from({ length: n }, (_, i) => f(i));
  const i16 = (f: () => number) => Int16Array.from({ length: n }, f);
  return {
    rowCount: n,
    columns: [
      { values: i64((i) => 100000000000000000n + BigInt(start + i) * 7919n) },
      { values: i64((i) => BigInt(start + i)) },
      { values: i64((i) => BigInt((start + i) * 3)) },
      { values: i32((i) => 1000000 + ((start + i) >> 10)) },
      { values: f64(() => next() * 360) },
      { values: f64(() => next() * 180 - 90) },
      { values: f32(() => next() * 0.1) },
      { values: f32(() => next() * 0.1) },
      { values: f32(() => next() * 1e-3) },
      { values: f32(() => next() * 1e-5) },
      { values: f32(() => next() * 1e-3) },
      { values: f32(() => next() * 1e-5) },
      { values: f32(() => next() * 100) },
      { values: f32(() => next()) },
      { values: f64(() => 55000 + next() * 3000) },
      { values: i32(() => Math.floor(next() * 2 ** 31)) },
      { values: i16(() => Math.floor(next() * 32767)) },
      { values: Uint8Array.from({ length: n }, () => 1 + Math.floor(next() * 5)) },
      { values: i32(() => Math.floor(next() * 21600)) },
      { values: i16(() => (next() < 0.01 ? -1 : Math.floor(next() * 30000))) },
    ],
  };
}

// The cache is keyed by a version so that a change to the table above cannot reuse old files.
const CACHE_VERSION = 1;

/** The bench table written by our writer to tmp/bench (written once, then reused). */
export async function benchFits(rows: number): Promise<string> {
  const path = join(BENCH_DIR, `bench-v${CACHE_VERSION}-${rows}.fits`);
  // writeFits renames a complete file into place, so one that exists is whole.
  if (!existsSync(path)) {
    const t0 = performance.now();
    await writeFits(path, [{ table: benchTable(rows) }]);
    console.log(`(wrote ${path}: ${mb(statSync(path).size).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return path;
}

/** A tile-compressed copy (algorithm `auto`) of the bench table, made from the plain file. */
export async function benchCompressedFits(rows: number): Promise<string> {
  const path = join(BENCH_DIR, `bench-v${CACHE_VERSION}-${rows}-auto.fits`);
  if (!existsSync(path)) {
    const plain = await benchFits(rows);
    const t0 = performance.now();
    const file = await FitsFile.open(plain);
    try {
      await writeCompressedFits(path, [{ table: file.table(1), compress: { algorithm: 'auto' } }]);
    } finally {
      await file.close();
    }
    console.log(`(wrote ${path}: ${mb(statSync(path).size).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return path;
}

// One loop per array type: a single loop over every kind of typed array would be
// megamorphic and several times slower than the reading it is meant to measure.
function sumF64(a: Float64Array): number { let s = 0; for (let i = 0; i < a.length; i++) { const v = a[i]; if (v === v) s += v; } return s; }
function sumF32(a: Float32Array): number { let s = 0; for (let i = 0; i < a.length; i++) { const v = a[i]; if (v === v) s += v; } return s; }
function sumI32(a: Int32Array): number { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
function sumU32(a: Uint32Array): number { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
function sumI16(a: Int16Array): number { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
function sumU16(a: Uint16Array): number { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
function sumI8(a: Int8Array): number { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
function sumU8(a: Uint8Array): number { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
// Two 32-bit words per value: every value is read without making a bigint of it.
function sumWords(words: Uint32Array, signed: boolean): number {
  let s = 0;
  if (signed) for (let i = 0; i < words.length; i += 2) s += (words[i + 1] | 0) * 4294967296 + words[i];
  else for (let i = 0; i < words.length; i += 2) s += words[i + 1] * 4294967296 + words[i];
  return s;
}

/** The sum of a column's values as float64, NaN left out (what the astropy peer computes). */
export function sumValues(values: ColumnValues): number {
  if (Array.isArray(values)) {
    let s = 0;
    for (const v of values) s += v.length;
    return s;
  }
  if (values instanceof Float64Array) return sumF64(values);
  if (values instanceof Float32Array) return sumF32(values);
  if (values instanceof Int32Array) return sumI32(values);
  if (values instanceof Uint32Array) return sumU32(values);
  if (values instanceof Int16Array) return sumI16(values);
  if (values instanceof Uint16Array) return sumU16(values);
  if (values instanceof Int8Array) return sumI8(values);
  if (values instanceof Uint8Array) return sumU8(values);
  return sumWords(new Uint32Array(values.buffer, values.byteOffset, values.length * 2), values instanceof BigInt64Array);
}

/** Reads every column of a table, summing each; returns the rows and the total of the sums. */
export async function sumTable(table: Table): Promise<{ rows: number; sums: number[]; total: number }> {
  const sums = table.columns.map(() => 0);
  let rows = 0;
  for await (const batch of table.batches()) {
    rows += batch.rowCount;
    for (let c = 0; c < batch.columns.length; c++) sums[c] += sumValues(batch.columns[c].values);
  }
  return { rows, sums, total: sums.reduce((a, b) => a + b, 0) };
}

/** Opens a FITS file and sums every column of HDU 1 (plain or tile-compressed). */
export async function sumFits(path: string): Promise<{ rows: number; sums: number[]; total: number }> {
  const file = await FitsFile.open(path);
  try {
    return await sumTable(fitsTable(file, 1));
  } finally {
    await file.close();
  }
}

/** True when two totals agree to `tolerance` (relative): sums in another order differ in the last bits. */
export function close(a: number, b: number, tolerance = 1e-9): boolean {
  return Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b), 1);
}

/** Runs a command under GNU time; returns its peak resident memory (bytes) and wall-clock seconds. */
export function measureRss(cmd: string, args: string[]): { maxRss: number; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no "Maximum resident set size" in the output of /usr/bin/time -v: ${r.stderr.slice(-500)}`);
  return { maxRss: Number(m[1]) * 1024, seconds };
}
