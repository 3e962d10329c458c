// Simulator throughput: detections written per second by `simulateSurvey` (every smf and
// cmf with its truth, the true-object table and survey.json, from nothing), against a peer
// that writes the same number of rows of the same columns: numpy draws the values (one
// vectorised call per column, none of the simulator's model) and astropy writes them as
// chip-sized tables (bench/peers/numpy_detections.py).
//
//   node bench/sim-throughput.ts [exposures=12] [stacks=4] [density=1]
//   node bench/sim-throughput.ts --stages [exposures=12] [density=1]
//
// --stages times the exposures' stages alone, in CPU time (nothing written): generating the
// sky tiles, gathering the objects onto the chips, sorting them by chip, measuring (the
// detection rows and truth rows encoded), recording first detections, and the data sums,
// in nanoseconds per smf detection; what a whole survey costs beyond them (headers, files,
// writes, stacks, collection) is the rest of its CPU time.
//
// Target: at least 2 million detections written per second on one core. Both wall-clock and
// CPU seconds are printed (CPU seconds include the threads that write the files; the system
// part is mostly the kernel copying the files). Each place is measured twice, the second
// time with the code compiled.
import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { CMF_PS1_V5, CHIPS, TRUTH_LAYOUT, resolveSurveyOptions, simulateSurvey } from '../src/sim/index.ts';
import { maxRows, measureChip } from '../src/sim/detections.ts';
import { sumWords } from '../src/fits/index.ts';
import { Random, hashSeed, hashText } from '../src/sim/random.ts';
import { exposureTiles } from '../src/sim/footprint.ts';
import { SkyModel } from '../src/sim/sky-model.ts';
import { WriterState, chipConditions, gatherExposure } from '../src/sim/smf-writer.ts';
import { planSurvey } from '../src/sim/survey-plan.ts';
import { expiringTiles } from '../src/sim/survey.ts';
import { TruthObjects } from '../src/sim/truth.ts';

let systemSeconds = 0;
/** CPU seconds (all threads) since `from`; the system part is added to `systemSeconds`. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(from);
  systemSeconds += c.system / 1e6;
  return (c.user + c.system) / 1e6;
}

/** Times the stages of a survey's exposures as writeExposure runs them, without writing; prints ns per detection. */
async function stageTimes(exposures: number, density: number): Promise<void> {
  systemSeconds = 0;
  const config = resolveSurveyOptions({ out: join(BENCH_DIR, 'unused'), exposures, stacks: 0, density, seed: 1 });
  const t: Record<string, number> = { plan: 0, sky: 0, gather: 0, sort: 0, measure: 0, truth: 0, checksum: 0 };
  let c0 = process.cpuUsage();
  const plan = planSurvey(config);
  t.plan += cpuSince(c0);
  const scratch = await mkdtemp(join('/dev/shm', 'ipp-bench-stages-'));
  const sky = new SkyModel({ seed: config.seed, density: config.density, mdPatch: plan.mdPatch, limitsFor: plan.tileLimits });
  const objects = new TruthObjects(join(scratch, 'objects.rows'));
  const state = new WriterState(sky, config.seed, objects);
  let detections = 0;
  try {
    const byPointing = [...plan.exposures].sort((a, b) =>
      Math.round(a.dec) - Math.round(b.dec) || Math.round(a.ra) - Math.round(b.ra) || a.index - b.index);
    const expiring = expiringTiles(byPointing, plan.stacks);
    for (let p = 0; p < byPointing.length; p++) {
      const e = byPointing[p];
      c0 = process.cpuUsage();
      sky.drop(expiring[p]);
      sky.recycle();
      for (const id of exposureTiles(e.ra, e.dec)) sky.tile(id);
      t.sky += cpuSince(c0);
      c0 = process.cpuUsage();
      const tiles = gatherExposure(state, e);
      t.gather += cpuSince(c0);
      c0 = process.cpuUsage();
      const starts = state.sorted.sortByChip(state.gathered, CHIPS.length);
      t.sort += cpuSince(c0);
      for (let ci = 0; ci < CHIPS.length; ci++) {
        const chip = CHIPS[ci];
        const cond = chipConditions(state.seed, e, chip, starts[ci + 1] - starts[ci]);
        const room = maxRows(starts[ci + 1] - starts[ci], cond);
        const rows = state.rows.next(room * CMF_PS1_V5.rowBytes);
        const truth = state.truth.next(room * TRUTH_LAYOUT.rowBytes);
        c0 = process.cpuUsage();
        const rng = new Random(hashSeed(state.seed, hashText('measure'), e.expId, chip.index));
        const r = measureChip(CMF_PS1_V5, cond, state.sorted, starts[ci], starts[ci + 1], rng, rows, truth, state.measure);
        t.measure += cpuSince(c0);
        c0 = process.cpuUsage();
        objects.addFirstDetections(tiles, state.sorted.srcTile, state.sorted.srcIndex, r.selected, r.selected.length);
        await objects.flushIfLarge();
        t.truth += cpuSince(c0);
        c0 = process.cpuUsage();
        sumWords(rows.subarray(0, r.rows * CMF_PS1_V5.rowBytes));
        sumWords(truth.subarray(0, r.rows * TRUTH_LAYOUT.rowBytes));
        t.checksum += cpuSince(c0);
        detections += r.rows;
      }
    }
  } finally {
    await objects.abandon();
    await rm(scratch, { recursive: true, force: true });
  }
  let total = 0;
  console.log(`stages of ${exposures} exposures (density ${density}, nothing written), CPU per smf detection:`);
  for (const [stage, seconds] of Object.entries(t)) {
    total += seconds;
    console.log(`  ${stage.padEnd(9)} ${seconds.toFixed(3)} s CPU, ${((seconds * 1e9) / detections).toFixed(0).padStart(4)} ns/detection`);
  }
  console.log(`  all       ${total.toFixed(3)} s CPU (${systemSeconds.toFixed(3)} s system), ${((total * 1e9) / detections).toFixed(0).padStart(4)} ns/detection; ${detections} smf detections; sky: ${sky.generated} tiles, ${sky.generatedObjects} objects`);
  // The target's budget beside the stages: what they cost before anything is written, and
  // what would be left if the largest of them cost nothing.
  const perDet = (seconds: number) => (seconds * 1e9) / detections;
  const [largest, largestSeconds] = Object.entries(t).reduce((a, b) => (b[1] > a[1] ? b : a));
  console.log(`  budget at 2 M detections/s on one core: 500 ns/detection; these stages alone are ${(perDet(total) / 500).toFixed(2)}x it, `
    + `and without the largest (${largest}, ${(100 * largestSeconds / total).toFixed(0)}%) still ${perDet(total - largestSeconds).toFixed(0)} ns`);
}
import { BENCH_DIR, check, mb, reportRate, runPeer, target } from './lib.ts';

if (process.argv[2] === '--stages') {
  // Twice: the first run pays for compiling the code.
  for (let run = 0; run < 2; run++) await stageTimes(Number(process.argv[3] ?? 12), Number(process.argv[4] ?? 1));
  process.exit(0);
}
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
// Each place twice: the first survey of the process also pays for compiling the code.
for (const place of [...places, ...places]) {
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
    console.log(`  ${seconds.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU (all threads, ${(c.system / 1e6).toFixed(2)} s system); ${(detections / seconds / 1e3).toFixed(0)} k detections/s, ${(detections / cpu / 1e3).toFixed(0)} k per CPU second, ${(mb(smfBytes) / seconds).toFixed(0)} MB/s of smf; sky: ${stats.tilesGenerated} tiles, ${stats.objectsGenerated} objects generated`);
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
