// Writing a table held in memory to FITS: our writeFits against astropy writing the same
// columns from numpy arrays (bench/peers/astropy_write.py), both with and without
// CHECKSUM/DATASUM, in MB/s of file written.
//
//   node bench/fits-write.ts [rows=2000000] [runs=2]
//
// Target: at least 300 MB/s (with checksums, as files are written by default).
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FitsFile, writeFits } from '../src/fits/index.ts';
import { memoryTable, type ColumnBatch, type Table } from '../src/table/index.ts';
import { BENCH_DIR, benchFits, check, close, mb, reportRate, runPeer, sumFits, target, timeIt } from './lib.ts';

const rows = Number(process.argv[2] ?? 2_000_000);
const runs = Number(process.argv[3] ?? 2);
const source = await benchFits(rows);

// The table in memory, in the reader's batches: every column of every row, read once before the clock starts.
const file = await FitsFile.open(source);
const read = file.table(1);
const batches: ColumnBatch[] = [];
for await (const b of read.batches()) batches.push(b);
const table: Table = memoryTable(read.columns, batches, { name: 'Detection' });
await file.close();
const expected = await sumFits(source);

const out = join(BENCH_DIR, 'write-ours.fits');
const peerOut = join(BENCH_DIR, 'write-astropy.fits');
try {
  for (const checksum of [true, false]) {
    const seconds = await timeIt(() => writeFits(out, [{ table }], { checksum }), runs);
    const bytes = (await stat(out)).size;
    const back = await sumFits(out);
    check(back.rows === rows && close(back.total, expected.total), `our file reads back the same (${back.rows} rows, sum ${back.total} vs ${expected.total})`);
    let peer = Infinity;
    let peerBytes = 0;
    for (let i = 0; i < runs; i++) {
      const r = runPeer<{ seconds: number; bytes: number }>('astropy_write.py', [source, peerOut, checksum ? '1' : '0']);
      peer = Math.min(peer, r.seconds);
      peerBytes = r.bytes;
    }
    const label = checksum ? 'with checksums' : 'no checksums';
    console.log(`FITS write ${label}, ${rows} rows x 20 columns from memory, best of ${runs}: ours ${seconds.toFixed(3)} s (${mb(bytes).toFixed(0)} MB), astropy ${peer.toFixed(3)} s (${mb(peerBytes).toFixed(0)} MB)`);
    reportRate(`FITS write, ${label}`, mb(bytes) / seconds, 'astropy', mb(peerBytes) / peer);
    if (checksum) target('at least 300 MB/s', mb(bytes) / seconds >= 300);
  }
} finally {
  await rm(out, { force: true });
  await rm(peerOut, { force: true });
}
