// Peak memory of `ipp fits convert` on a large file: FITS -> CSV and FITS -> tile-compressed
// FITS, each in a child process measured by GNU time (`/usr/bin/time -v`, maximum resident
// set size). The input (20M rows of the bench table, about 2 GB by default) is generated
// by our writer from batches made on the fly, so it is never held in memory either; all
// the large files are deleted at the end.
//
//   node bench/convert-rss.ts [rows=20000000]
//
// Target: below 300 MB for FITS -> CSV.
import { open, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FitsFile, writeFits } from '../src/fits/index.ts';
import { BENCH_DIR, benchTable, check, mb, measureRss, target } from './lib.ts';

const rows = Number(process.argv[2] ?? 20_000_000);
const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const childCsv = fileURLToPath(new URL('./csv-child.ts', import.meta.url));
const input = join(BENCH_DIR, `rss-${rows}.fits`);
const csv = join(BENCH_DIR, `rss-${rows}.csv`);
const packed = join(BENCH_DIR, `rss-${rows}-auto.fits`);

async function countLines(path: string): Promise<number> {
  const handle = await open(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 22);
  let lines = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return lines;
      for (let i = buf.indexOf(10); i >= 0 && i < bytesRead; i = buf.indexOf(10, i + 1)) lines++;
    }
  } finally {
    await handle.close();
  }
}

try {
  let t0 = performance.now();
  await writeFits(input, [{ table: benchTable(rows) }]);
  const inputBytes = (await stat(input)).size;
  console.log(`generated ${rows} rows, ${mb(inputBytes).toFixed(0)} MB of FITS in ${((performance.now() - t0) / 1000).toFixed(1)} s; peak RSS of this process so far ${mb(process.resourceUsage().maxRSS * 1024).toFixed(0)} MB`);

  // writeCsv formats on worker threads only when the machine is not busy, and threads cost
  // memory: the load just before hints at which way this run went.
  const load = loadavg()[0];
  const toCsv = measureRss(process.execPath, [cli, 'fits', 'convert', input, csv, '-q']);
  t0 = performance.now();
  const lines = await countLines(csv);
  check(lines === rows + 1, `the CSV has ${lines} lines, expected ${rows + 1}`);
  const csvBytes = (await stat(csv)).size;
  console.log(`(counted ${lines} lines of CSV in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  await rm(csv, { force: true });
  console.log(`FITS -> CSV, ${rows} rows (${mb(inputBytes).toFixed(0)} MB -> ${mb(csvBytes).toFixed(0)} MB): peak RSS ${mb(toCsv.maxRss).toFixed(0)} MB, ${toCsv.seconds.toFixed(1)} s (${(rows / toCsv.seconds / 1e6).toFixed(2)} M rows/s); load average ${load.toFixed(2)} just before (writeCsv formats on worker threads when it is at most ${availableParallelism()}, inline otherwise; it reads the load itself when it starts)`);
  target('peak RSS below 300 MB', toCsv.maxRss < 300e6);

  // The same conversion with writeCsv's formatting threads fixed (0 = inline, 2 = one per core).
  for (const threads of [0, 2]) {
    const r = measureRss(process.execPath, [childCsv, input, csv, String(threads)]);
    await rm(csv, { force: true });
    console.log(`FITS -> CSV with writeCsv threads = ${threads}: peak RSS ${mb(r.maxRss).toFixed(0)} MB, ${r.seconds.toFixed(1)} s`);
    target(`peak RSS below 300 MB with ${threads} threads`, r.maxRss < 300e6);
  }

  const toFz = measureRss(process.execPath, [cli, 'fits', 'convert', input, packed, '--compress', 'auto', '-q']);
  const f = await FitsFile.open(packed);
  const kind = f.hdus[1]?.kind;
  const back = f.hdus[1]?.rows;
  await f.close();
  check(kind === 'compressed-table' && back === rows, `the compressed file holds a compressed table of ${rows} rows (found ${kind} of ${back})`);
  const packedBytes = (await stat(packed)).size;
  console.log(`FITS -> tile-compressed FITS (auto), ${rows} rows (${mb(inputBytes).toFixed(0)} MB -> ${mb(packedBytes).toFixed(0)} MB): peak RSS ${mb(toFz.maxRss).toFixed(0)} MB, ${toFz.seconds.toFixed(1)} s`);
} finally {
  for (const p of [input, csv, packed]) await rm(p, { force: true });
}
