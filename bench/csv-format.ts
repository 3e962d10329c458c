// CSV hot path: float formatting approaches (values/s), then FITS -> CSV against STILTS.
//
//   node bench/csv-format.ts [rows=2000000] [--micro-only]
//
// The FITS -> CSV ratio is STILTS's time over ours on the same 20-column bench table.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_DIR, benchTable, report, rng, timeCommand, timeIt } from './lib.ts';
import { writeCsv } from '../src/table/csv-writer.ts';
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

async function endToEnd(): Promise<void> {
  const fits = join(BENCH_DIR, `csv-bench-${rows}.fits`);
  const oursCsv = join(BENCH_DIR, 'csv-bench-ours.csv');
  const stiltsCsv = join(BENCH_DIR, 'csv-bench-stilts.csv');
  await writeFits(fits, [{ table: benchTable(rows) }], { checksum: false });
  const memory = await timeIt(() => writeCsv(benchTable(rows), oursCsv), 1);
  console.log(`generated table -> CSV (generation included): ${memory.toFixed(3)} s, ${(rows / memory / 1e6).toFixed(2)} M rows/s`);
  const ours = await timeIt(async () => {
    const file = await FitsFile.open(fits);
    await writeCsv(file.table(1), oursCsv);
    await file.close();
  }, 2);
  const stilts = timeCommand('stilts', ['tcopy', `in=${fits}#1`, `out=${stiltsCsv}`, 'ofmt=csv']).seconds;
  report(`FITS -> CSV, ${rows} rows x 20 columns`, ours, 'stilts tcopy', stilts);
  await rm(oursCsv, { force: true });
  await rm(stiltsCsv, { force: true });
}

micro();
if (!microOnly) await endToEnd();
