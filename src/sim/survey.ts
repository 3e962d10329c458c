// `simulateSurvey`: plans a survey, writes every smf and cmf with its truth, the true-object
// table and survey.json, all into a sibling directory `DIR.incomplete-XXXXXXXX` that is
// renamed to DIR only when everything is written. A failed or interrupted run removes its
// directory; a run that was killed leaves one behind, which the next run removes.
import { randomUUID } from 'node:crypto';
import { access, constants, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { noProgress } from '../common/index.ts';
import { stackTiles, writeStack } from './cmf-writer.ts';
import type { DefectKind, DefectRecord } from './defects.ts';
import { SimError } from './errors.ts';
import { CHIPS, CHIP_NX, CHIP_NY, PIXEL_SCALE } from './focal-plane.ts';
import {
  MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, type ManifestExposure, type ManifestStack, type SurveyManifest,
} from './manifest.ts';
import { Random, hashSeed, hashText } from './random.ts';
import { exposureTiles } from './footprint.ts';
import { SkyModel } from './sky-model.ts';
import { WriterState, writeExposure } from './smf-writer.ts';
import { resolveSurveyOptions, type SurveyConfig, type SurveyOptions } from './survey-options.ts';
import { planSurvey, type PlannedExposure, type PlannedStack } from './survey-plan.ts';
import { SKYCELL_PIXELS, SKYCELL_SCALE, TESS_ID } from './tessellation.ts';
import { TruthObjects } from './truth.ts';

/** What a finished survey is: where it is, its manifest, and how much sky was generated. */
export interface SurveyResult {
  readonly dir: string;
  readonly manifest: SurveyManifest;
  /** Sky tiles and objects generated (regenerations after the cache dropped a tile included). */
  readonly stats: { readonly tilesGenerated: number; readonly objectsGenerated: number };
}

const INCOMPLETE = '.incomplete-';
const MARKER = '.incomplete';

/** Which exposures get which defects: distinct exposures, chosen by the seed. */
export function assignDefects(config: SurveyConfig, exposures: readonly PlannedExposure[]): Map<number, DefectKind[]> {
  const order = new Random(hashSeed(config.seed, hashText('defects'))).shuffle(exposures.map((e) => e.index));
  const out = new Map<number, DefectKind[]>();
  let next = 0;
  for (const d of config.defects) {
    for (let i = 0; i < d.count; i++) {
      const idx = order[next++];
      out.set(idx, [...(out.get(idx) ?? []), d.kind]);
    }
  }
  return out;
}

/**
 * For each exposure in writing order, the sky tiles that no exposure from it on (and no
 * stack) reads: those the previous exposure was the last to read. Dropping them before it
 * keeps the cache for tiles still to be read, so fewer are generated twice.
 */
export function expiringTiles(order: readonly PlannedExposure[], stacks: readonly PlannedStack[]): number[][] {
  const last = new Map<number, number>();
  order.forEach((e, p) => {
    for (const id of exposureTiles(e.ra, e.dec)) last.set(id, p);
  });
  for (const s of stacks) for (const id of stackTiles(s)) last.delete(id);
  const out: number[][] = order.map(() => []);
  for (const [id, p] of last) if (p + 1 < order.length) out[p + 1].push(id);
  return out;
}

async function isSurvey(dir: string): Promise<boolean> {
  try {
    const text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
    return (JSON.parse(text) as { format?: unknown }).format === MANIFEST_FORMAT;
  } catch {
    return false;
  }
}

/** Checks where the survey goes, before anything is written; returns the absolute path. */
async function checkOutput(config: SurveyConfig): Promise<string> {
  const final = resolve(config.out);
  const parent = dirname(final);
  try {
    const s = await stat(parent);
    if (!s.isDirectory()) throw new Error('not a directory');
    await access(parent, constants.W_OK);
  } catch (error) {
    throw new SimError('sim_unwritable', `cannot write the survey into ${parent} (${(error as Error).message}); give --out a path in a directory you can write`, { cause: error });
  }
  let existing;
  try {
    existing = await stat(final);
  } catch {
    return final;
  }
  if (!existing.isDirectory()) {
    throw new SimError('sim_out_exists', `${final} exists and is not a directory; remove it or choose another --out`);
  }
  if (config.force || (await isSurvey(final)) || (await readdir(final)).length === 0) return final;
  throw new SimError('sim_out_exists', `${final} exists and is not a simulated survey (no ${MANIFEST_FILE}); choose another --out, or pass --force to replace it`);
}

/** Removes directories left by killed runs for the same output (`DIR.incomplete-*`). */
async function removeLeftovers(final: string): Promise<void> {
  const parent = dirname(final);
  const prefix = `${basename(final)}${INCOMPLETE}`;
  for (const name of await readdir(parent)) {
    if (name.startsWith(prefix)) await rm(join(parent, name), { recursive: true, force: true });
  }
}

/**
 * Simulates a survey (see the room's README): same options, byte-identical files. Throws a
 * SimError for bad options (before touching the disk) and leaves nothing at `out` when it
 * fails or is aborted.
 */
export async function simulateSurvey(options: SurveyOptions): Promise<SurveyResult> {
  const config = resolveSurveyOptions(options);
  const signal = options.signal;
  const progress = options.progress ?? noProgress;
  const plan = planSurvey(config);
  const final = await checkOutput(config);
  await removeLeftovers(final);
  const work = `${final}${INCOMPLETE}${randomUUID().slice(0, 8)}`;
  try {
    await mkdir(work);
  } catch (error) {
    throw new SimError('sim_unwritable', `cannot create ${work} (${(error as Error).message}); give --out a path in a directory you can write`, { cause: error });
  }
  let objects: TruthObjects | undefined;
  try {
    await writeFile(join(work, MARKER), 'an unfinished survey: "ipp sim survey" removes it when it runs again\n');
    for (const sub of ['smf', 'cmf', 'truth']) await mkdir(join(work, sub));
    const sky = new SkyModel({ seed: config.seed, density: config.density, mdPatch: plan.mdPatch, limitsFor: plan.tileLimits });
    objects = new TruthObjects(join(work, 'truth', '.objects.rows'));
    const state = new WriterState(sky, config.seed, objects);
    const defectsOf = assignDefects(config, plan.exposures);
    const exposures: ManifestExposure[] = [];
    const stacks: ManifestStack[] = [];
    const defects: DefectRecord[] = [];
    let bytes = 0;
    let spurious = 0;
    let done = 0;
    // Exposures are written grouped by pointing, so that those sharing sky tiles follow each
    // other while the tiles are cached (nothing written depends on this order but the order
    // of the true-object table).
    const byPointing = [...plan.exposures].sort((a, b) =>
      Math.round(a.dec) - Math.round(b.dec) || Math.round(a.ra) - Math.round(b.ra) || a.index - b.index);
    const written = new Map<number, ManifestExposure>();
    const expiring = expiringTiles(byPointing, plan.stacks);
    for (let p = 0; p < byPointing.length; p++) {
      const e = byPointing[p];
      signal?.throwIfAborted();
      sky.drop(expiring[p]);
      const r = await writeExposure(state, work, e, defectsOf.get(e.index) ?? [], signal);
      written.set(e.index, r.manifest);
      defects.push(...r.defects);
      bytes += r.bytes;
      spurious += r.spurious;
      progress.update(++done);
    }
    for (const e of plan.exposures) exposures.push(written.get(e.index)!);
    for (const s of plan.stacks) {
      signal?.throwIfAborted();
      const r = await writeStack(state, work, s);
      stacks.push(r.manifest);
      bytes += r.bytes;
      spurious += r.spurious;
      progress.update(++done);
    }
    const objectsPath = 'truth/objects.fits';
    await objects.finish(join(work, objectsPath));
    const nObjects = objects.count;
    bytes += (await stat(join(work, objectsPath))).size;
    const manifest: SurveyManifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      seed: config.seed,
      arguments: {
        exposures: config.exposures,
        stacks: config.stacks,
        ra: config.ra,
        dec: config.dec,
        seed: config.seed,
        filters: config.filters.join(''),
        density: config.density,
        inject_defects: config.defects.map((d) => ({ kind: d.kind, count: d.count })),
        first_exp_id: config.firstExpId,
        first_stack_id: config.firstStackId,
      },
      camera: { name: 'GPC1', pixel_scale: PIXEL_SCALE, chip_nx: CHIP_NX, chip_ny: CHIP_NY, chips: CHIPS.map((c) => c.name) },
      sky: { md_patch: plan.mdPatch, density: config.density, objects: objectsPath, n_objects: nObjects },
      tessellation: { tess_id: TESS_ID, skycell_scale: SKYCELL_SCALE, skycell_pixels: SKYCELL_PIXELS },
      exposures,
      stacks,
      defects,
      totals: {
        detections: exposures.reduce((n, e) => n + e.n_detections, 0),
        stack_detections: stacks.reduce((n, s) => n + s.n_detections, 0),
        spurious,
        bytes,
      },
    };
    await writeFile(join(work, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(join(work, MARKER));
    signal?.throwIfAborted();
    const old = await moveIntoPlace(work, final);
    if (options.record) {
      try {
        await options.record(final, manifest);
      } catch (error) {
        await putBack(final, old);
        throw error;
      }
    }
    if (old) await rm(old, { recursive: true, force: true });
    progress.finish();
    return { dir: final, manifest, stats: { tilesGenerated: sky.generated, objectsGenerated: sky.generatedObjects } };
  } catch (error) {
    await objects?.abandon();
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Renames the finished directory to its place; an old survey there is renamed aside, and its
 * new name returned (the caller deletes it, or puts it back with {@link putBack}).
 */
async function moveIntoPlace(work: string, final: string): Promise<string | undefined> {
  let old: string | undefined;
  try {
    await stat(final);
    old = `${final}${INCOMPLETE}old-${randomUUID().slice(0, 8)}`;
    await rename(final, old);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SimError('sim_cannot_replace', `cannot move the old ${final} aside (${(error as Error).message})`, { cause: error });
    }
    old = undefined;
  }
  try {
    await rename(work, final);
  } catch (error) {
    if (old) await rename(old, final).catch(() => {});
    throw new SimError('sim_cannot_replace', `cannot rename ${work} to ${final} (${(error as Error).message})`, { cause: error });
  }
  return old;
}

/** Removes the new survey at `final` and renames the old one (if any) back. */
async function putBack(final: string, old: string | undefined): Promise<void> {
  await rm(final, { recursive: true, force: true });
  if (old) await rename(old, final);
}
