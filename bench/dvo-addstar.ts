// addstar throughput on a simulated survey (12 GPC1 exposures with a medium-deep patch, 4
// stacks, real object counts): detections stored per second of wall clock and per CPU second,
// the time of each phase, and, as the peer measured in the same run, reading and checking the
// same catalogues alone (the floor under any ingest). Then the association against the truth:
// completeness and purity for isolated stars and for the dense patch.
import { join } from 'node:path';
import { readCatalogue, PhotcodeTable, defaultPhotcodes } from '../src/dvo/index.ts';
import { checkAssociation } from '../src/dvo/truth-check.ts';
import { BENCH_DIR, check, dirBytes, target } from './lib.ts';
import { benchSurvey, buildDvo, catalogues } from './dvo-lib.ts';

const survey = await benchSurvey();
const files = catalogues(survey.dir, survey.manifest);
const photcodes = new PhotcodeTable(defaultPhotcodes());
let t0 = performance.now();
let read = 0;
for (const f of files) read += (await readCatalogue(f, photcodes)).detections.length;
const readSeconds = (performance.now() - t0) / 1000;

const timings: Record<string, number> = {};
const cpuTimings: Record<string, number> = {};
const sysTimings: Record<string, number> = {};
const db = join(BENCH_DIR, 'dvo-addstar-db');
const cpu0 = process.cpuUsage();
t0 = performance.now();
const result = await buildDvo(db, survey, { timings, cpuTimings, sysTimings });
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
check(result.files.every((f) => f.status === 'ingested'), 'every catalogue ingested');
check(result.detections === read, `${result.detections} measures stored for ${read} detections read`);
const rate = result.detections / seconds;
console.log(`addstar: ${result.detections} detections (${result.newObjects} objects, ${result.regionsWritten} regions) in ${seconds.toFixed(2)} s: ${(rate / 1e6).toFixed(3)} M det/s wall, ${(result.detections / cpuSeconds / 1e6).toFixed(3)} M det/s per CPU second`);
console.log(`  phases (s): ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`).join(', ')}`);
console.log(`  phases (CPU s, all threads): ${Object.entries(cpuTimings).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`).join(', ')}`);
console.log(`  of which the kernel's (system CPU s): ${Object.entries(sysTimings).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`).join(', ')}`);
console.log(`  peer: reading and checking the catalogues alone ${readSeconds.toFixed(2)} s (${(read / readSeconds / 1e6).toFixed(3)} M det/s); addstar takes ${(seconds / readSeconds).toFixed(2)}x that`);
// The target's budget beside the two phases any ingest has, reading the catalogues and
// writing the region files (whose PS1_V5 layouts fix their bytes), before any matching.
const ioSeconds = ((cpuTimings.read ?? 0) + (cpuTimings.write ?? 0)) / 1000;
console.log(`  budget at 1 M detections/s per core: ${(result.detections / 1e6).toFixed(2)} CPU s; the read and write phases alone take ${ioSeconds.toFixed(2)} (${(ioSeconds / (result.detections / 1e6)).toFixed(2)}x it), writing ${(dirBytes(db) / 1e9).toFixed(2)} GB`);
target('1 M detections/s per core', result.detections / cpuSeconds >= 1e6);
// --no-truth: the speed figures only (the association check takes longer than the ingest).
if (process.argv.includes('--no-truth')) process.exit(0);

const m = survey.manifest;
const sources = [
  ...m.exposures.flatMap((e) => e.chips.map((c) => ({ imageId: c.image_id, truthFile: join(survey.dir, e.truth), table: `${c.class_id}.truth` }))),
  ...m.stacks.map((s) => ({ imageId: s.image_id, truthFile: join(survey.dir, s.truth), table: 'SkyChip.truth' })),
];
const truth = await checkAssociation({ dvo: db, objectsFile: join(survey.dir, m.sky.objects), sources, patch: m.sky.md_patch });
check(truth.unknown === 0, 'every measure has a truth row');
const line = (name: string, f: typeof truth.all): void => {
  console.log(`  ${name}: ${f.trueObjects} true objects, ${f.detections} detections: completeness ${(100 * f.completeness).toFixed(3)}%, purity ${(100 * f.purity).toFixed(3)}% (${f.split} split, ${f.merged} merged)`);
};
console.log('association against the truth (match radius 1"):');
line('isolated stars', truth.isolatedStars);
line('dense patch', truth.patch!);
line('everything', truth.all);
target('isolated stars ≥ 99.5% complete and pure', truth.isolatedStars.completeness >= 0.995 && truth.isolatedStars.purity >= 0.995);
