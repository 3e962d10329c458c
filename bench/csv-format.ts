// CSV hot path: float formatting approaches (values/s), then FITS -> CSV against STILTS.
//
//   node bench/csv-format.ts [rows=2000000] [--micro-only]
//
// The FITS -> CSV ratio is STILTS's time over ours on the same 20-column bench table.
import { rm } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { BENCH_COLUMNS, BENCH_DIR, benchTable, report, rng, timeCommand, timeIt } from './lib.ts';
import { CsvEncoder, writeCsv } from '../src/table/csv-writer.ts';
import type { ColumnBatch } from '../src/table/index.ts';
import { writeFloat32At, writeFloat64At } from '../src/table/format-number.ts';
import { FitsFile, writeFits } from '../src/fits/index.ts';

const rows = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2_000_000);
const microOnly = process.argv.includes('--micro-only');

function micro(): void {
  const n = 1_000_000;
  const next = rng(7);
  const f32 = new Float32Array(n);
  const f64 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    f32[i] = next() * 10 ** Math.floor(next() * 8 - 4);
    f64[i] = next() * 360;
  }
  const out = new Uint8Array(n * 34);
  const rate = (name: string, fn: () => number) => {
    fn();
    const t0 = performance.now();
    const check = fn();
    const s = (performance.now() - t0) / 1000;
    console.log(`${name.padEnd(44)} ${(n / s / 1e6).toFixed(2).padStart(7)} M values/s  (${check})`);
  };
  console.log(`float formatting, ${n} values each:`);
  rate('float32 shortest, ours (writeFloat32At)', () => {
    let p = 0;
    for (let i = 0; i < n; i++) p = writeFloat32At(out, p, f32, i);
    return p;
  });
  rate('float32 shortest, toPrecision(1..9) search', () => {
    let len = 0;
    for (let i = 0; i < n; i++) {
      const v = f32[i];
      let s = '';
      for (let p = 1; p <= 9; p++) {
        s = v.toPrecision(p);
        if (Math.fround(Number(s)) === v) break;
      }
      len += s.length;
    }
    return len;
  });
  rate('float32 fixed 9 digits, toPrecision(9)', () => {
    let len = 0;
    for (let i = 0; i < n; i++) len += f32[i].toPrecision(9).length;
    return len;
  });
  rate('float64 shortest, ours (writeFloat64At)', () => {
    let p = 0;
    for (let i = 0; i < n; i++) p = writeFloat64At(out, p, f64, i);
    return p;
  });
  rate('float64 shortest, String(v) + latin1 write', () => {
    const b = Buffer.from(out.buffer);
    let p = 0;
    for (let i = 0; i < n; i++) p += b.write(String(f64[i]), p, 'latin1');
    return p;
  });
}

// The row encoder alone (no file, no table source) on the 20-column bench table.
async function encodeOnly(): Promise<void> {
  const n = 200_000;
  const batches: ColumnBatch[] = [];
  for await (const b of benchTable(n).batches()) batches.push(b);
  const encoder = new CsvEncoder(BENCH_COLUMNS);
  const out = new Uint8Array(1 << 22);
  const result = new Int32Array(2);
  const pass = () => {
    for (const b of batches) {
      encoder.setBatch(b);
      for (let row = 0; row < b.rowCount; row = result[0]) encoder.encode(row, out, 0, result);
    }
  };
  pass();
  const s = await timeIt(pass, 3);
  console.log(`${'CSV rows of the 20-column bench table'.padEnd(44)} ${(n / s / 1e6).toFixed(2).padStart(7)} M rows/s`);
  // Each column alone (one-column encoders): where a row's time goes, column by column.
  for (let c = 0; c < BENCH_COLUMNS.length; c++) {
    const one = new CsvEncoder([BENCH_COLUMNS[c]]);
    const single = batches.map((b) => ({ rowCount: b.rowCount, columns: [b.columns[c]] }));
    const passOne = () => {
      for (const b of single) {
        one.setBatch(b);
        for (let row = 0; row < b.rowCount; row = result[0]) one.encode(row, out, 0, result);
      }
    };
    passOne();
    const t = await timeIt(passOne, 3);
    console.log(`  ${`${BENCH_COLUMNS[c].name} (${BENCH_COLUMNS[c].type})`.padEnd(42)} ${(t / n * 1e9).toFixed(1).padStart(7)} ns/row`);
  }
}

async function endToEnd(): Promise<void> {
  const fits = join(BENCH_DIR, `csv-bench-${rows}.fits`);
  const oursCsv = join(BENCH_DIR, 'csv-bench-ours.csv');
  const stiltsCsv = join(BENCH_DIR, 'csv-bench-stilts.csv');
  await writeFits(fits, [{ table: benchTable(rows) }], { checksum: false });
  const fitsToCsv = (threads: number) => timeIt(async () => {
    const file = await FitsFile.open(fits);
    await writeCsv(file.table(1), oursCsv, { threads });
    await file.close();
  }, 2);
  const inline = await fitsToCsv(0);
  const cores = Math.min(4, availableParallelism());
  const threaded = await fitsToCsv(cores);
  console.log(`FITS -> CSV on this thread: ${inline.toFixed(3)} s; with ${cores} formatting threads: ${threaded.toFixed(3)} s (load average ${loadavg()[0].toFixed(2)} on ${availableParallelism()} cores)`);
  const stilts = Math.min(...[0, 1].map(() => timeCommand('stilts', ['tcopy', `in=${fits}#1`, `out=${stiltsCsv}`, 'ofmt=csv']).seconds));
  report(`FITS -> CSV, ${rows} rows x 20 columns`, Math.min(inline, threaded), 'stilts tcopy', stilts);
  await rm(oursCsv, { force: true });
  await rm(stiltsCsv, { force: true });
}

micro();
await encodeOnly();
if (!microOnly) await endToEnd();
