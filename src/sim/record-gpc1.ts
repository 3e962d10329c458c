// The processing-database rows the pipeline would have written for a simulated survey:
// registration, chip → camera → fake → warp for every exposure (camProcessedExp naming the
// smf), and stack → staticsky → skycal for every stack (skycalResult naming the cmf). All of
// it in one transaction: a survey is recorded whole or not at all.
import { resolve } from 'node:path';
import { transactionScope, type Database } from '../db/index.ts';
import {
  advance, defineRun, listRuns, mapSkyCells, recordComponents, registerExposures,
  type ComponentRecord, type ExposureSpec, type StageName,
} from '../gpc1/index.ts';
import { SimError } from './errors.ts';
import type { ManifestExposure, ManifestWcs, SurveyManifest } from './manifest.ts';
import type { SurveyConfig } from './survey-options.ts';
import { planSurvey } from './survey-plan.ts';
import { parseSkycellName, skycell, skycellAt } from './tessellation.ts';
import { pixelToSky, skyToPixel, type TanWcs } from './wcs.ts';

/** How the survey's runs are labelled in gpc1. */
export interface RecordOptions {
  /** The processing label of every run (default {@link defaultSurveyLabel}). */
  readonly label?: string;
  readonly dataGroup?: string;
  readonly distGroup?: string;
}

/** What {@link recordSurveyInGpc1} wrote. */
export interface RecordResult {
  readonly label: string;
  readonly exposures: number;
  readonly runs: Readonly<Record<'chip' | 'camera' | 'fake' | 'warp' | 'stack' | 'staticsky' | 'skycal', number>>;
}

const MJD_UNIX_EPOCH = 40587;

/** The gpc1 label of a survey's runs when none is given: `sim.<seed>`. */
export function defaultSurveyLabel(seed: number): string {
  return `sim.${seed}`;
}

/** Writes the gpc1 rows of the survey in `dir` (its manifest already read); returns the counts. */
export async function recordSurveyInGpc1(
  db: Database, dir: string, manifest: SurveyManifest, options: RecordOptions = {},
): Promise<RecordResult> {
  const label = options.label ?? defaultSurveyLabel(manifest.seed);
  const common = { label, data_group: options.dataGroup ?? label, dist_group: options.distGroup ?? null };
  const tessId = manifest.tessellation.tess_id;
  const path = (relative: string): string => resolve(dir, relative);

  return db.transaction(async (tx) => {
    const g = transactionScope(tx, db.url);
    const step = async (stage: StageName, records: ComponentRecord[]): Promise<void> => {
      await recordComponents(g, stage, records);
      await advance(g, { stage, label });
    };
    const runsOf = async (stage: StageName, input: string): Promise<Map<number, number>> =>
      new Map((await listRuns(g, { stage, label })).map((r) => [Number(r.row[input]), r.id]));

    // Registration and chips.
    const exposures = manifest.exposures;
    await registerExposures(g, exposures.map((e) => exposureSpec(e, manifest, label, tessId)));
    const byExp = new Map(exposures.map((e) => [e.exp_id, e]));
    await defineRun(g, 'chip', { ...common, exp_ids: exposures.map((e) => e.exp_id), end_stage: 'warp', tess_id: tessId });
    const chipRuns = await runsOf('chip', 'exp_id');
    await step('chip', [...chipRuns].flatMap(([expId, chipId]) => {
      const chips = new Map(byExp.get(expId)!.chips.map((c) => [c.class_id, c]));
      return manifest.camera.chips.map((classId) => {
        const c = chips.get(classId);
        return {
          id: chipId, component: classId,
          ...(c ? { n_stars: c.n_detections, fwhm_major: c.fwhm_maj, fwhm_minor: c.fwhm_min, bg: c.sky, bg_stdev: c.sky_sigma } : {}),
        };
      });
    }));

    // Camera: one smf per exposure.
    const camRuns = await runsOf('camera', 'chip_id');
    const expOfChip = new Map([...chipRuns].map(([expId, chipId]) => [chipId, expId]));
    await step('camera', [...camRuns].map(([chipId, camId]) => {
      const e = byExp.get(expOfChip.get(chipId)!)!;
      const sum = (f: (c: ManifestExposure['chips'][number]) => number): number => e.chips.reduce((s, c) => s + f(c), 0);
      const n = Math.max(1, e.chips.length);
      const astromSigma = sum((c) => c.astrom_sigma) / n;
      return {
        id: camId, path_base: path(e.smf), zpt_obs: e.zpt_obs, zpt_stdev: e.zpt_err,
        fwhm_major: sum((c) => c.fwhm_maj) / n, fwhm_minor: sum((c) => c.fwhm_min) / n,
        sigma_ra: astromSigma, sigma_dec: astromSigma,
        bg: sum((c) => c.sky) / n, bg_stdev: sum((c) => c.sky_sigma) / n,
        n_stars: e.n_detections, n_astrom: sum((c) => c.n_astrom),
      };
    }));

    // Fake: a pass-through per chip.
    const fakeRuns = await runsOf('fake', 'cam_id');
    await step('fake', [...fakeRuns].flatMap(([, fakeId]) => manifest.camera.chips.map((classId) => ({ id: fakeId, component: classId }))));

    // Warp: the skycells of the stacks an exposure feeds, else the skycell under its boresight.
    const warpRuns = await runsOf('warp', 'fake_id');
    const chipOfCam = new Map([...camRuns].map(([chipId, camId]) => [camId, chipId]));
    const expOfFake = new Map([...fakeRuns].map(([camId, fakeId]) => [fakeId, expOfChip.get(chipOfCam.get(camId)!)!]));
    const warpOfExp = new Map<number, number>();
    const skycellsOf = new Map<number, Set<string>>();
    for (const s of manifest.stacks) {
      for (const expId of s.input_exp_ids) {
        if (!skycellsOf.has(expId)) skycellsOf.set(expId, new Set());
        skycellsOf.get(expId)!.add(s.skycell);
      }
    }
    // Each skycell is mapped with the chips whose footprint overlaps it (the chips the warp
    // resamples onto it, which is what StackToImage reports for a stack).
    const warpRecords: ComponentRecord[] = [];
    for (const [fakeId, warpId] of warpRuns) {
      const e = byExp.get(expOfFake.get(fakeId)!)!;
      warpOfExp.set(e.exp_id, warpId);
      const cells = [...skycellsOf.get(e.exp_id) ?? [skycellAt(e.ra, e.dec).name]].sort();
      const entries = cells.flatMap((skycell_id) => {
        const chips = chipsOverlapping(e, skycell_id);
        if (chips.length === 0) {
          throw new SimError('sim_no_overlap', `exposure ${e.exp_id}: no chip of its smf overlaps ${skycell_id}; its warp cannot be mapped to that skycell`);
        }
        return chips.map((class_id) => ({ skycell_id, class_id }));
      });
      await mapSkyCells(g, warpId, entries);
      warpRecords.push(...cells.map((skycell_id) => ({ id: warpId, component: skycell_id })));
    }
    await step('warp', warpRecords);

    // Stacks, then staticsky per skycell, then skycal per stack (its result names the cmf).
    // Each stack run keeps the stack_id its cmf carries (STACK_ID, IMAGEID).
    const stackIds = new Map<number, number>();
    for (const s of manifest.stacks) {
      const [stackId] = await defineRun(g, 'stack', {
        ...common, skycell_id: s.skycell, tess_id: s.tess_id, filter: s.filter_id, stack_id: s.stack_id,
        warp_ids: s.input_exp_ids.map((x) => warpOfExp.get(x)!).filter((x) => x !== undefined),
      });
      stackIds.set(s.stack_id, stackId!);
    }
    await step('stack', manifest.stacks.map((s) => ({ id: stackIds.get(s.stack_id)!, mjd_obs: s.mjd_obs, sources: s.n_detections })));
    const bySkycell = new Map<string, SurveyManifest['stacks'][number][]>();
    for (const s of manifest.stacks) bySkycell.set(s.skycell, [...bySkycell.get(s.skycell) ?? [], s]);
    const skyOfStack = new Map<number, number>();
    const skyRecords: ComponentRecord[] = [];
    for (const stacks of bySkycell.values()) {
      const [skyId] = await defineRun(g, 'staticsky', { ...common, stack_ids: stacks.map((s) => stackIds.get(s.stack_id)!) });
      for (const s of stacks) skyOfStack.set(s.stack_id, skyId!);
      // The simulator writes the calibrated catalogues (skycal's, one per stack) and no
      // staticsky catalogue of its own, so staticsky names no file: addstar takes the skycal runs.
      skyRecords.push({ id: skyId!, num_inputs: stacks.length, sources: stacks.reduce((n, s) => n + s.n_detections, 0) });
    }
    await step('staticsky', skyRecords);
    const skycalRecords: ComponentRecord[] = [];
    for (const s of manifest.stacks) {
      const [skycalId] = await defineRun(g, 'skycal', { ...common, sky_id: skyOfStack.get(s.stack_id)!, stack_ids: [stackIds.get(s.stack_id)!] });
      skycalRecords.push({
        id: skycalId!, path_base: path(s.cmf), zpt_obs: s.zpt, zpt_stdev: s.zpt_err,
        fwhm_major: s.fwhm, fwhm_minor: s.fwhm, n_detections: s.n_detections,
      });
    }
    await step('skycal', skycalRecords);

    return {
      label,
      exposures: exposures.length,
      runs: {
        chip: chipRuns.size, camera: camRuns.size, fake: fakeRuns.size, warp: warpRuns.size,
        stack: stackIds.size, staticsky: bySkycell.size, skycal: skycalRecords.length,
      },
    };
  });
}

/**
 * What a survey's exposures or stacks would take of what gpc1 already holds (exp_ids,
 * exposure names, stack_ids), each with the first free --first-exp-id / --first-stack-id;
 * empty when nothing clashes. Asked before anything is simulated.
 */
export async function surveyIdClashes(db: Database, config: SurveyConfig): Promise<string[]> {
  const plan = planSurvey(config);
  const expIds = plan.exposures.map((e) => e.expId);
  const names = plan.exposures.map((e) => e.expName);
  const taken: string[] = [];
  const clash = await db.get<{ n: number; low: number; high: number }>(
    'SELECT count(*) AS n, min(exp_id) AS low, max(exp_id) AS high FROM rawExp WHERE exp_id BETWEEN ? AND ?', [expIds[0], expIds[expIds.length - 1]]);
  let named = 0;
  for (let i = 0; i < names.length; i += 500) {
    const part = names.slice(i, i + 500);
    const r = await db.get<{ n: number }>(
      `SELECT count(*) AS n FROM rawExp WHERE camera = 'GPC1' AND telescope = 'PS1' AND exp_name IN (${part.map(() => '?').join(', ')})`, part);
    named += Number(r?.n ?? 0);
  }
  const clashes = Number(clash?.n ?? 0);
  if (clashes > 0 || named > 0) {
    const top = await db.get<{ high: number }>('SELECT max(exp_id) AS high FROM rawExp');
    const what = clashes > 0 ? `exposures with exp_id ${clash!.low} to ${clash!.high}` : `${named} exposure name${named === 1 ? '' : 's'} (${names[0]}...)`;
    taken.push(`${what}, which this survey's ${expIds.length} exposures from --first-exp-id ${config.firstExpId} would take: give --first-exp-id ${Math.max(Number(top?.high ?? 0) + 1, config.firstExpId + 1)} or more`);
  }
  if (plan.stacks.length > 0) {
    const ids = plan.stacks.map((st) => st.stackId);
    const r = await db.get<{ n: number }>('SELECT count(*) AS n FROM stackRun WHERE stack_id BETWEEN ? AND ?', [ids[0], ids[ids.length - 1]]);
    if (Number(r?.n ?? 0) > 0) {
      const top = await db.get<{ high: number }>('SELECT max(stack_id) AS high FROM stackRun');
      taken.push(`stack runs with stack_id ${ids[0]} to ${ids[ids.length - 1]}, which this survey's stacks would take: give --first-stack-id ${Number(top!.high) + 1} or more`);
    }
  }
  return taken;
}

function exposureSpec(e: ManifestExposure, manifest: SurveyManifest, label: string, tessId: string): ExposureSpec {
  return {
    exp_id: e.exp_id, exp_name: e.exp_name, camera: manifest.camera.name, telescope: 'PS1',
    dateobs: new Date(Math.round((e.mjd_obs - MJD_UNIX_EPOCH) * 86_400_000)).toISOString(),
    exp_type: 'OBJECT', filter: e.filter_id, obs_mode: e.survey, object: e.object,
    airmass: e.airmass, ra: e.ra, decl: e.dec, exp_time: e.exptime, posang: e.pos_angle,
    tess_id: tessId, end_stage: 'warp', label,
    imfiles: manifest.camera.chips.map((class_id) => ({ class_id })),
  };
}

/**
 * The class_ids of the exposure's chips (those its smf holds) whose pixels overlap a skycell,
 * sorted. A straight chip edge stays straight in any tangent-plane projection, so a chip's
 * footprint in the skycell's pixels is the quadrilateral of its projected corners; it overlaps
 * the skycell's pixel square unless one of the two has an edge that separates them.
 */
export function chipsOverlapping(e: ManifestExposure, skycellName: string): string[] {
  const ids = parseSkycellName(skycellName);
  if (!ids) throw new SimError('sim_bad_skycell', `"${skycellName}" is not a skycell name (skycell.PPPP.SSS)`);
  const cell = skycell(ids.projectionId, ids.skycellId);
  const box: Quad = [[0.5, 0.5], [cell.nx + 0.5, 0.5], [cell.nx + 0.5, cell.ny + 0.5], [0.5, cell.ny + 0.5]];
  const out: string[] = [];
  for (const c of e.chips) {
    const wcs = tanWcs(c.wcs);
    const quad: [number, number][] = [];
    for (const [x, y] of [[0.5, 0.5], [c.nx + 0.5, 0.5], [c.nx + 0.5, c.ny + 0.5], [0.5, c.ny + 0.5]] as const) {
      const sky = pixelToSky(wcs, x, y);
      const p = skyToPixel(cell.wcs, sky.ra, sky.dec);
      if (!p) break;
      quad.push([p.x, p.y]);
    }
    // A corner behind the skycell's tangent plane: the chip is a hemisphere away.
    if (quad.length === 4 && convexOverlap(quad, box)) out.push(c.class_id);
  }
  return out.sort();
}

type Quad = readonly (readonly [number, number])[];

function tanWcs(w: ManifestWcs): TanWcs {
  return { crval1: w.crval1, crval2: w.crval2, crpix1: w.crpix1, crpix2: w.crpix2, cd11: w.cd1_1, cd12: w.cd1_2, cd21: w.cd2_1, cd22: w.cd2_2 };
}

// Separating axes: two convex polygons are disjoint exactly when the normal of some edge of
// one of them separates their projections. Touching counts as overlapping.
function convexOverlap(a: Quad, b: Quad): boolean {
  for (const poly of [a, b]) {
    for (let i = 0; i < poly.length; i++) {
      const [x0, y0] = poly[i];
      const [x1, y1] = poly[(i + 1) % poly.length];
      const nx = y0 - y1;
      const ny = x1 - x0;
      let aMin = Infinity, aMax = -Infinity, bMin = Infinity, bMax = -Infinity;
      for (const [x, y] of a) { const d = nx * x + ny * y; aMin = Math.min(aMin, d); aMax = Math.max(aMax, d); }
      for (const [x, y] of b) { const d = nx * x + ny * y; bMin = Math.min(bMin, d); bMax = Math.max(bMax, d); }
      if (aMax < bMin || bMax < aMin) return false;
    }
  }
  return true;
}
