// Simulator throughput: detections written per second by `simulateSurvey` (every smf and
// cmf with its truth, the true-object table and survey.json, from nothing), against a peer
// that writes the same number of rows of the same columns: numpy draws the values (one
// vectorised call per column, none of the simulator's model) and astropy writes them as
// chip-sized tables (bench/peers/numpy_detections.py).
//
//   node bench/sim-throughput.ts [exposures=12] [stacks=4] [density=1]
//
// Target: at least 2 million detections written per second on one core. Both wall-clock and
// CPU seconds are printed (CPU seconds include the threads that write the files).
import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CMF_PS1_V5, simulateSurvey } from '../src/sim/index.ts';
import { BENCH_DIR, check, mb, reportRate, runPeer, target } from './lib.ts';

const exposures = Number(process.argv[2] ?? 12);
const stacks = Number(process.argv[3] ?? 4);
const density = Number(process.argv[4] ?? 1);
const peerOut = join(BENCH_DIR, 'sim-peer.fits');
// The simulator alone (into memory-backed /dev/shm when the machine has it), and the same
// survey onto the bench directory's disk, whose write speed may bound the rate.
const places = [
  ...(existsSync('/dev/shm') ? [{ label: 'to /dev/shm (tmpfs)', dir: join('/dev/shm', `ipp-bench-sim-${process.pid}`) }] : []),
  { label: 'to disk (tmp/bench)', dir: join(BENCH_DIR, 'sim-survey') },
];

let best = 0;
let detections = 0;
for (const place of places) {
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { manifest, stats } = await simulateSurvey({ out: place.dir, exposures, stacks, density, seed: 1 });
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(cpu0);
    const cpu = (c.user + c.system) / 1e6;
    const t = manifest.totals;
    detections = t.detections + t.stack_detections;
    check(detections > 0, 'the survey has detections');
    let smfBytes = 0;
    for (const e of manifest.exposures) smfBytes += (await stat(join(place.dir, e.smf))).size;
    console.log(`sim survey ${place.label}: ${exposures} exposures, ${stacks} stacks, density ${density}: ${detections} detections (${t.detections} in smf, ${t.stack_detections} in cmf), ${manifest.sky.n_objects} true objects, ${mb(t.bytes).toFixed(0)} MB written (${mb(smfBytes).toFixed(0)} MB of smf)`);
    console.log(`  ${seconds.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU (all threads); ${(detections / seconds / 1e3).toFixed(0)} k detections/s, ${(detections / cpu / 1e3).toFixed(0)} k per CPU second, ${(mb(smfBytes) / seconds).toFixed(0)} MB/s of smf; sky: ${stats.tilesGenerated} tiles, ${stats.objectsGenerated} objects generated`);
    best = Math.max(best, detections / seconds);
  } finally {
    await rm(place.dir, { recursive: true, force: true });
  }
}
try {
  const peer = runPeer<{ seconds: number; bytes: number; rows: number }>('numpy_detections.py', [
    String(detections), peerOut, CMF_PS1_V5.fields.map((f) => `${f.name}:${f.type}`).join(','),
  ]);
  reportRate('detections written per second (best place, wall)', best / 1e3, 'numpy+astropy', peer.rows / peer.seconds / 1e3, 'k/s');
  target('at least 2 million detections per second', best >= 2e6);
} finally {
  await rm(peerOut, { force: true });
}
