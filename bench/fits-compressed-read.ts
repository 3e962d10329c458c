// Reading a tile-compressed table (our writer, algorithm `auto`), every value touched, in
// MB/s of uncompressed table data, against cfitsio's funpack restoring the plain file
// followed by astropy reading it (bench/peers/astropy_read.py): the way to read such a file
// with those tools. funpack alone is printed too.
//
//   node bench/fits-compressed-read.ts [rows=2000000] [runs=3]
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FitsFile } from '../src/fits/index.ts';
import {
  BENCH_DIR, benchCompressedFits, benchFits, check, close, mb, reportRate, runPeer, sumFits, timeCommand, timeIt,
} from './lib.ts';

const rows = Number(process.argv[2] ?? 2_000_000);
const runs = Number(process.argv[3] ?? 3);
const plain = await benchFits(rows);
const packed = await benchCompressedFits(rows);
const unpacked = join(BENCH_DIR, 'compressed-read-funpack.fits');

const file = await FitsFile.open(plain);
const dataBytes = file.hdus[1].dataBytes;
await file.close();
const packedBytes = (await stat(packed)).size;
const expected = await sumFits(plain);

try {
  let ours = { rows: 0, total: 0 };
  const oursSeconds = await timeIt(async () => { ours = await sumFits(packed); }, runs);
  check(ours.rows === rows && close(ours.total, expected.total), `compressed file reads back the table (${ours.rows} rows, sum ${ours.total} vs ${expected.total})`);
  let funpack = Infinity;
  let both = Infinity;
  for (let i = 0; i < runs; i++) {
    await rm(unpacked, { force: true });
    const f = timeCommand('funpack', ['-O', unpacked, packed]).seconds;
    const r = runPeer<{ seconds: number; checksum: number }>('astropy_read.py', [unpacked, '1']);
    check(close(r.checksum, expected.total), `funpack + astropy sum ${r.checksum} vs ${expected.total}`);
    funpack = Math.min(funpack, f);
    both = Math.min(both, f + r.seconds);
  }
  console.log(`tile-compressed read, ${rows} rows x 20 columns (${mb(dataBytes).toFixed(0)} MB of table in ${mb(packedBytes).toFixed(0)} MB), every value summed, best of ${runs}: ours ${oursSeconds.toFixed(3)} s, funpack ${funpack.toFixed(3)} s, funpack + astropy ${both.toFixed(3)} s; sums agree`);
  reportRate('compressed read', mb(dataBytes) / oursSeconds, 'funpack + astropy read', mb(dataBytes) / both);
  reportRate('compressed read', mb(dataBytes) / oursSeconds, 'funpack alone', mb(dataBytes) / funpack);
} finally {
  await rm(unpacked, { force: true });
}
