// FITS -> CSV, as `ipp fits convert X.fits Y.csv` does it (FitsFile + writeCsv to a file),
// against `stilts tcopy in=X.fits#1 out=Y.csv ofmt=csv`. Both outputs are checked: the same
// header, the same number of lines, and the same values on sampled lines.
//
//   node bench/fits-to-csv.ts [rows=2000000] [runs=2] [--threads=N] [--no-raw]
//
// Target: at least 5x faster than STILTS. Besides wall-clock seconds it prints the CPU
// seconds of both (all threads; STILTS's from the kernel's account of the child), which a
// machine shared with other work disturbs much less. --threads fixes writeCsv's formatting
// threads (by default it chooses by the load average).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { FitsFile } from '../src/fits/index.ts';
import { fitsRawRows } from '../src/fits/csv-rows.ts';
import { writeCsv } from '../src/table/csv-writer.ts';
import { BENCH_DIR, benchFits, check, mb, report, target } from './lib.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const rows = Number(args[0] ?? 2_000_000);
const runs = Number(args[1] ?? 2);
const threadsArg = process.argv.find((a) => a.startsWith('--threads='));
const threads = threadsArg === undefined ? undefined : Number(threadsArg.slice('--threads='.length));
// --no-raw: threads format the table's decoded batches instead of reading the rows themselves
const useRaw = !process.argv.includes('--no-raw');
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

/**
 * Before each timed run (untimed): the run's output file is removed and dirty pages are
 * flushed, so that no run pays for replacing the previous run's 455 MB (freeing its page
 * cache, its pending writeback) — ours and STILTS alike start from a fresh output.
 */
function settle(output: string): void {
  rmSync(output, { force: true });
  spawnSync('sync');
}

/** CPU seconds (user + system) of this process so far, all threads. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Runs STILTS under GNU time: wall-clock and CPU seconds (user + system) of the child. */
function timeStilts(argv: string[]): { seconds: number; cpu: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', 'stilts', ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`stilts ${argv.join(' ')} failed: ${r.stderr}`);
  const [user, sys] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, cpu: user + sys };
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
  let oursCpu = Infinity;
  let ours = Infinity;
  for (let run = 0; run < runs; run++) {
    settle(oursCsv);
    const t0 = performance.now();
    const c0 = cpuSeconds();
    const file = await FitsFile.open(path);
    try {
      const rawRows = useRaw ? fitsRawRows(file, 1, path) : undefined;
      await writeCsv(file.table(1), oursCsv, { ...(threads === undefined ? {} : { threads }), ...(rawRows ? { rawRows } : {}) });
    } finally {
      await file.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds() - c0;
    console.log(`  ours, run ${run + 1}: ${seconds.toFixed(3)} s, ${cpu.toFixed(3)} CPU-s (load average ${loadavg()[0].toFixed(2)})`);
    oursCpu = Math.min(oursCpu, cpu);
    ours = Math.min(ours, seconds);
  }
  const loadAfter = loadavg()[0];
  settle(stiltsCsv);
  const stiltsRun = timeStilts(['tcopy', `in=${path}#1`, `out=${stiltsCsv}`, 'ofmt=csv']);
  const stilts = stiltsRun.seconds;
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
  const mode = threads === undefined ? `writeCsv chose its threads (worker threads when the load is at most ${availableParallelism()}, inline otherwise)` : `writeCsv threads = ${threads}`;
  console.log(`FITS -> CSV, ${rows} rows x 20 columns: ours ${ours.toFixed(3)} s (best of ${runs}, ${mb(size).toFixed(0)} MB of CSV, ${(rows / ours / 1e6).toFixed(2)} M rows/s), stilts tcopy ${stilts.toFixed(3)} s; ${sample.size} sampled lines agree; load average ${load.toFixed(2)} before ours, ${loadAfter.toFixed(2)} before STILTS; ${mode}`);
  report('FITS -> CSV', ours, 'stilts tcopy', stilts);
  console.log(`FITS -> CSV, CPU seconds (all threads): ours ${oursCpu.toFixed(3)} s (least of ${runs}), stilts tcopy ${stiltsRun.cpu.toFixed(2)} s, ratio ${(stiltsRun.cpu / oursCpu).toFixed(2)}x`);
  target('at least 5x faster than STILTS', stilts / ours >= 5);
} finally {
  await rm(oursCsv, { force: true });
  await rm(stiltsCsv, { force: true });
}
