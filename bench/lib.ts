// Shared pieces of the benchmarks: timing, peers run as child processes, the bench table.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { columnInfo, type ColumnBatch, type ColumnInfo, type Table } from '../src/table/index.ts';

/** Where benchmarks keep generated files (ignored by git). */
export const BENCH_DIR = fileURLToPath(new URL('../tmp/bench/', import.meta.url));
mkdirSync(BENCH_DIR, { recursive: true });

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

/** A small deterministic random generator (mulberry32), so every run writes the same table. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
