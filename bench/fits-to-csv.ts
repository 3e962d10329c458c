// FITS -> CSV, as `ipp fits convert X.fits Y.csv` does it (FitsFile + writeCsv to a file),
// against `stilts tcopy in=X.fits#1 out=Y.csv ofmt=csv`. Both outputs are checked: the same
// header, the same number of lines, and the same values on sampled lines.
//
//   node bench/fits-to-csv.ts [rows=2000000] [runs=2]
//
// Target: at least 5x faster than STILTS.
import { open, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { FitsFile } from '../src/fits/index.ts';
import { writeCsv } from '../src/table/csv-writer.ts';
import { BENCH_DIR, benchFits, check, mb, report, target, timeCommand, timeIt } from './lib.ts';

const rows = Number(process.argv[2] ?? 2_000_000);
const runs = Number(process.argv[3] ?? 2);
const path = await benchFits(rows);
const oursCsv = join(BENCH_DIR, 'to-csv-ours.csv');
const stiltsCsv = join(BENCH_DIR, 'to-csv-stilts.csv');

/** Counts the lines of a file and keeps the text of the lines asked for (0 = the header). */
async function scanLines(file: string, wanted: ReadonlySet<number>): Promise<{ lines: number; picked: Map<number, string> }> {
  const handle = await open(file, 'r');
  const picked = new Map<number, string>();
  const buf = Buffer.allocUnsafe(1 << 22);
  let line = 0;
  let partial = '';
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      let from = 0;
      for (let nl = buf.indexOf(10, 0); nl >= 0 && nl < bytesRead; nl = buf.indexOf(10, nl + 1)) {
        if (wanted.has(line)) picked.set(line, partial + buf.toString('latin1', from, nl));
        partial = '';
        line++;
        from = nl + 1;
      }
      if (wanted.has(line)) partial += buf.toString('latin1', from, bytesRead);
    }
  } finally {
    await handle.close();
  }
  return { lines: line, picked };
}

/** Two CSV fields hold the same value: equal text, or numbers equal to float32 precision. */
function sameField(a: string, b: string): boolean {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (a === '' || b === '' || Number.isNaN(x) || Number.isNaN(y)) return false;
  return Math.abs(x - y) <= 1e-6 * Math.max(Math.abs(x), Math.abs(y));
}

try {
  // writeCsv formats on worker threads only when the machine is not busy (see its defaultThreads).
  const load = loadavg()[0];
  const ours = await timeIt(async () => {
    const file = await FitsFile.open(path);
    try {
      await writeCsv(file.table(1), oursCsv);
    } finally {
      await file.close();
    }
  }, runs);
  const stilts = timeCommand('stilts', ['tcopy', `in=${path}#1`, `out=${stiltsCsv}`, 'ofmt=csv']).seconds;
  const sample = new Set([0, 1, 2, Math.floor(rows / 3), Math.floor(rows / 2) + 1, rows - 1, rows]);
  const a = await scanLines(oursCsv, sample);
  const b = await scanLines(stiltsCsv, sample);
  check(a.lines === rows + 1, `our CSV has ${a.lines} lines, expected ${rows + 1}`);
  check(b.lines === a.lines, `STILTS wrote ${b.lines} lines, we wrote ${a.lines}`);
  for (const n of sample) {
    const fa = (a.picked.get(n) ?? '').split(',');
    const fb = (b.picked.get(n) ?? '').split(',');
    check(fa.length === 20 && fb.length === 20, `line ${n}: ${fa.length} and ${fb.length} fields`);
    fa.forEach((f, i) => check(sameField(f, fb[i]), `line ${n}, field ${i + 1}: ours "${f}", STILTS "${fb[i]}"`));
  }
  const size = (await stat(oursCsv)).size;
  console.log(`FITS -> CSV, ${rows} rows x 20 columns: ours ${ours.toFixed(3)} s (best of ${runs}, ${mb(size).toFixed(0)} MB of CSV, ${(rows / ours / 1e6).toFixed(2)} M rows/s), stilts tcopy ${stilts.toFixed(3)} s; ${sample.size} sampled lines agree; load average ${load.toFixed(2)} just before (writeCsv formats on worker threads when it is at most ${availableParallelism() - 0.5}, inline otherwise)`);
  report('FITS -> CSV', ours, 'stilts tcopy', stilts);
  target('at least 5x faster than STILTS', stilts / ours >= 5);
} finally {
  await rm(oursCsv, { force: true });
  await rm(stiltsCsv, { force: true });
}
