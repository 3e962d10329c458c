// Reading a FITS table column by column, every value touched (a sum per column), against
// astropy doing the same (bench/peers/astropy_read.py) on the same file.
//
//   node bench/fits-read.ts [rows=2000000] [runs=3]
//
// Target: at least as fast as astropy.
import { statSync } from 'node:fs';
import { benchFits, check, close, mb, reportRate, runPeer, sumFits, target, timeIt } from './lib.ts';

const rows = Number(process.argv[2] ?? 2_000_000);
const runs = Number(process.argv[3] ?? 3);
const path = await benchFits(rows);
const bytes = statSync(path).size;

let ours = { rows: 0, total: 0 };
const oursSeconds = await timeIt(async () => { ours = await sumFits(path); }, runs);
let peerSeconds = Infinity;
let peerTotal = NaN;
for (let i = 0; i < runs; i++) {
  const r = runPeer<{ seconds: number; checksum: number }>('astropy_read.py', [path, '1']);
  peerSeconds = Math.min(peerSeconds, r.seconds);
  peerTotal = r.checksum;
}
check(ours.rows === rows, `read ${ours.rows} rows, expected ${rows}`);
check(close(ours.total, peerTotal), `sum of every value: ours ${ours.total}, astropy ${peerTotal}`);
console.log(`FITS read, ${rows} rows x 20 columns (${mb(bytes).toFixed(0)} MB), every value summed; best of ${runs}: ours ${oursSeconds.toFixed(3)} s, astropy ${peerSeconds.toFixed(3)} s; sums agree`);
reportRate('FITS column read', mb(bytes) / oursSeconds, 'astropy', mb(bytes) / peerSeconds);
target('at least as fast as astropy', oursSeconds <= peerSeconds);
