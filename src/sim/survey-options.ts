// The options of a simulated survey: validated once, before anything touches the disk, into
// a frozen configuration. Every bad value raises a SimError with a stable code and a message
// that says what to give instead.
import { FILTERS, type FilterName } from './sky-model.ts';
import { parseDefects, type DefectRequest } from './defects.ts';
import { badArgument } from './errors.ts';
import type { Progress } from '../common/index.ts';
import type { SurveyManifest } from './manifest.ts';
import { FIRST_EXP_ID, maxFirstExpId } from './schedule.ts';

/** What a caller may ask for (the CLI's options, or a library call). */
export interface SurveyOptions {
  /** The survey directory to create (or replace, if it holds a survey). */
  readonly out: string;
  /** Exposures to simulate (default 12). */
  readonly exposures?: number;
  /** Stacks (skycell × filter) to simulate (default 4; 0 for none). */
  readonly stacks?: number;
  /** RA range of the sky box, degrees, `[from, to]` with 0 ≤ from < to ≤ 360 (default [150, 156]). */
  readonly ra?: readonly [number, number];
  /** Dec range, degrees, −90 ≤ from < to ≤ 90 (default [0, 6]). */
  readonly dec?: readonly [number, number];
  /** Seed of every random choice (default 1): same options, same bytes. */
  readonly seed?: number;
  /** Filters to observe, e.g. `grizy` (default), any of g r i z y w. */
  readonly filters?: string;
  /** Scales the sky's object counts (default 1; small values make small, fast surveys). */
  readonly density?: number;
  /** Defects to inject: `truncated-smf,missing-chip:2,...` or parsed requests. */
  readonly injectDefects?: string | readonly DefectRequest[];
  /** The first exposure's exp_id (default 100001); the others follow. Chip IMAGEIDs are 100 × exp_id + chip. */
  readonly firstExpId?: number;
  /** The first stack's stack_id, also its IMAGEID (default 200001); the others follow. */
  readonly firstStackId?: number;
  /** Replace an existing directory that is not a survey. */
  readonly force?: boolean;
  /**
   * Called once the survey is complete at its place, before an earlier survey there is
   * deleted: if it throws, the new survey is removed and the earlier one put back.
   */
  readonly record?: (dir: string, manifest: SurveyManifest) => Promise<void>;
  readonly signal?: AbortSignal;
  /** Told the files written so far (of exposures + stacks). */
  readonly progress?: Progress;
}

/** The validated configuration of a survey. */
export interface SurveyConfig {
  readonly out: string;
  readonly exposures: number;
  readonly stacks: number;
  readonly ra: readonly [number, number];
  readonly dec: readonly [number, number];
  readonly seed: number;
  readonly filters: readonly FilterName[];
  readonly density: number;
  readonly defects: readonly DefectRequest[];
  readonly firstExpId: number;
  readonly firstStackId: number;
  readonly force: boolean;
}

/** Defaults of the options. */
export const SURVEY_DEFAULTS = Object.freeze({
  exposures: 12, stacks: 4, ra: [150, 156] as const, dec: [0, 6] as const, seed: 1, filters: 'grizy', density: 1,
  firstExpId: FIRST_EXP_ID, firstStackId: 200_001,
});

// Exposures stay in the schedule (schedule.ts), and stack IMAGEIDs (the stack_id) below every
// chip IMAGEID (100 × exp_id + chip), so the two never meet in DVO's Images table.
const MAX_STACK_ID = 100 * FIRST_EXP_ID - 1;

/** Parses `A:B` (two numbers) as the CLI gives a range. */
export function parseRange(text: string, what: 'ra' | 'dec'): [number, number] {
  const number = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`;
  const m = new RegExp(String.raw`^\s*(${number})\s*:\s*(${number})\s*$`).exec(text);
  if (!m) throw badArgument('sim_bad_box', `--${what} "${text}" is not a range; give two numbers in degrees as FROM:TO, e.g. --${what} ${what === 'ra' ? '150:156' : '0:6'}`);
  return [Number(m[1]), Number(m[2])];
}

function wholeNumber(value: unknown, name: string, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw badArgument('sim_bad_count', `--${name} ${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Validates options into a frozen configuration; throws a SimError naming the bad one. */
export function resolveSurveyOptions(options: SurveyOptions): SurveyConfig {
  if (typeof options.out !== 'string' || options.out.trim() === '') {
    throw badArgument('sim_no_output', 'give the survey directory to write: --out DIR');
  }
  const exposures = wholeNumber(options.exposures ?? SURVEY_DEFAULTS.exposures, 'exposures', 1, 100_000);
  const stacks = wholeNumber(options.stacks ?? SURVEY_DEFAULTS.stacks, 'stacks', 0, 10_000);
  const ra = options.ra ?? SURVEY_DEFAULTS.ra;
  const dec = options.dec ?? SURVEY_DEFAULTS.dec;
  if (!ra.every(Number.isFinite) || ra[0] < 0 || ra[1] > 360) {
    throw badArgument('sim_bad_box', `--ra ${ra.join(':')} must lie within 0:360 degrees`);
  }
  if (!dec.every(Number.isFinite) || dec[0] < -90 || dec[1] > 90) {
    throw badArgument('sim_bad_box', `--dec ${dec.join(':')} must lie within -90:90 degrees`);
  }
  if (!(ra[1] > ra[0]) || !(dec[1] > dec[0])) {
    throw badArgument('sim_bad_box', `the sky box RA ${ra.join(':')}, Dec ${dec.join(':')} is empty; give FROM < TO for both (e.g. --ra 150:156 --dec 0:6)`);
  }
  const seed = options.seed ?? SURVEY_DEFAULTS.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295) {
    throw badArgument('sim_bad_seed', `--seed ${JSON.stringify(seed)} must be a whole number from 0 to 4294967295`);
  }
  const filterText = options.filters ?? SURVEY_DEFAULTS.filters;
  const filters: FilterName[] = [];
  for (const ch of filterText) {
    if (!(FILTERS as readonly string[]).includes(ch)) {
      throw badArgument('sim_bad_filter', `unknown filter "${ch}" in --filters ${filterText}; use letters from ${FILTERS.join('')} (e.g. --filters grizy)`);
    }
    if (!filters.includes(ch as FilterName)) filters.push(ch as FilterName);
  }
  if (filters.length === 0) throw badArgument('sim_bad_filter', 'no filters given; use letters from grizyw, e.g. --filters grizy');
  const density = options.density ?? SURVEY_DEFAULTS.density;
  if (typeof density !== 'number' || !Number.isFinite(density) || density <= 0 || density > 20) {
    throw badArgument('sim_bad_density', `--density ${JSON.stringify(density)} must be a number above 0 and at most 20 (1 = realistic counts)`);
  }
  const firstExpId = wholeNumber(options.firstExpId ?? SURVEY_DEFAULTS.firstExpId, 'first-exp-id', FIRST_EXP_ID, maxFirstExpId(exposures));
  const firstStackId = wholeNumber(options.firstStackId ?? SURVEY_DEFAULTS.firstStackId, 'first-stack-id', 1, MAX_STACK_ID - stacks + 1);
  const defects = typeof options.injectDefects === 'string' ? parseDefects(options.injectDefects) : [...(options.injectDefects ?? [])];
  const targets = defects.reduce((n, d) => n + d.count, 0);
  if (targets > exposures) {
    throw badArgument('sim_too_many_defects', `${targets} defects need ${targets} exposures but the survey has ${exposures}; ask for fewer defects or more --exposures`);
  }
  return Object.freeze({
    out: options.out, exposures, stacks,
    ra: Object.freeze([ra[0], ra[1]] as const), dec: Object.freeze([dec[0], dec[1]] as const),
    seed, filters: Object.freeze(filters), density, defects: Object.freeze(defects), firstExpId, firstStackId, force: options.force === true,
  });
}
