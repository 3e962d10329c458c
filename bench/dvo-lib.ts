// Shared pieces of the DVO benchmarks: a simulated survey (cached under tmp/bench/) and the
// DVO database built from it.
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addstar, type AddstarOptions, type AddstarResult } from '../src/dvo/index.ts';
import { readSurveyManifest, simulateSurvey, type SurveyManifest } from '../src/sim/index.ts';
import { BENCH_DIR } from './lib.ts';

/** The survey of the DVO benchmarks: the default sky box with its medium-deep patch, real counts. */
export const SURVEY_OPTIONS = { exposures: 12, stacks: 4, density: 1, seed: 11 } as const;

/** The survey directory (simulated once, then reused). */
export async function benchSurvey(): Promise<{ dir: string; manifest: SurveyManifest }> {
  const dir = join(BENCH_DIR, 'dvo-survey');
  const stamp = join(BENCH_DIR, 'dvo-survey.args.json');
  const want = JSON.stringify(SURVEY_OPTIONS);
  if (existsSync(join(dir, 'survey.json')) && existsSync(stamp) && (await readFile(stamp, 'utf8')) === want) {
    // A survey written by an older simulator is made again.
    const manifest = await readSurveyManifest(dir).catch(() => undefined);
    if (manifest) return { dir, manifest };
  }
  const t0 = performance.now();
  const { manifest } = await simulateSurvey({ out: dir, ...SURVEY_OPTIONS, force: true });
  await writeFile(stamp, want);
  console.log(`simulated ${manifest.exposures.length} exposures, ${manifest.stacks.length} stacks, ${manifest.totals.detections + manifest.totals.stack_detections} detections in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { dir, manifest };
}

/** The catalogue files of a survey: every smf, then every cmf. */
export function catalogues(dir: string, m: SurveyManifest): string[] {
  return [...m.exposures.map((e) => join(dir, e.smf)), ...m.stacks.map((s) => join(dir, s.cmf))];
}

/** Regions sized so that the medium-deep patch spreads over several of them. */
export const MAX_OBJECTS = 60_000;

/**
 * A fresh DVO database of the whole survey at `dir` (ingested in one addstar call;
 * tile-compressed tables with `compress`); addstar's phase timings go where `timings` says.
 */
export async function buildDvo(
  dir: string, survey: { dir: string; manifest: SurveyManifest }, options: Pick<AddstarOptions, 'timings' | 'cpuTimings' | 'sysTimings'> & { compress?: boolean } = {},
): Promise<AddstarResult> {
  const { compress = false, ...timings } = options;
  await rm(dir, { recursive: true, force: true });
  return addstar(dir, catalogues(survey.dir, survey.manifest), { create: { maxObjects: MAX_OBJECTS, compress }, ...timings });
}

/** The benchmarks' DVO database (tile-compressed with `compress`), built when missing. */
export async function benchDvo(survey: { dir: string; manifest: SurveyManifest }, compress = false): Promise<string> {
  const name = compress ? 'dvo-db-compressed' : 'dvo-db';
  const dir = join(BENCH_DIR, name);
  const stamp = join(BENCH_DIR, `${name}.args.json`);
  const want = JSON.stringify({ ...SURVEY_OPTIONS, MAX_OBJECTS, partition: 2, compress });
  const surveyStamp = (await stat(join(survey.dir, 'survey.json'))).mtimeMs;
  const want2 = `${want}|${surveyStamp}`;
  if (existsSync(join(dir, 'SkyTable.fits')) && existsSync(stamp) && (await readFile(stamp, 'utf8')) === want2) return dir;
  await buildDvo(dir, survey, { compress });
  await writeFile(stamp, want2);
  return dir;
}
