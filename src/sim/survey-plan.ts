// Planning a survey before any detection is made: the medium-deep patch, the exposures
// (boresight, filter, time, airmass, seeing, zero point, sky), the stacks (the skycell ×
// filter pairs the exposures overlap most) and how deep each sky tile must be generated.
// Everything here is cheap and derives from the configuration alone.
import { exposureTiles } from './footprint.ts';
import { FOV_RADIUS, FPA_CENTER, DEG_PER_PIXEL, PIXEL_SCALE, locateOnChip } from './focal-plane.ts';
import { Random, hashSeed, hashText } from './random.ts';
import {
  FILTERS, MAG_BRIGHT, MAX_R_MINUS, type FilterName, type SkyCircle,
} from './sky-model.ts';
import { SimError } from './errors.ts';
import type { SurveyConfig } from './survey-options.ts';
import { FIRST_EXP_ID, FIRST_MJD, NIGHT_STEP, PER_NIGHT, SLOT } from './schedule.ts';
import {
  CELL_SIDE, SKYCELL_SCALE, projectionCellsNear, skycell, skycellAt, type Skycell,
} from './tessellation.ts';
import { project, separation } from './wcs.ts';

/** Per-filter observing facts: zero point (mag of 1 count/s at airmass 1), extinction per airmass, dark-sky brightness (mag/arcsec²), seeing factor, exposure times of the 3π and medium-deep surveys. */
export const FILTER_FACTS: Readonly<Record<FilterName, { zp: number; k: number; sky: number; seeing: number; t3pi: number; tMd: number }>> = {
  g: { zp: 24.56, k: 0.147, sky: 21.9, seeing: 1.1, t3pi: 43, tMd: 113 },
  r: { zp: 24.75, k: 0.085, sky: 21.0, seeing: 1.0, t3pi: 40, tMd: 113 },
  i: { zp: 24.61, k: 0.044, sky: 20.3, seeing: 0.95, t3pi: 45, tMd: 240 },
  z: { zp: 24.24, k: 0.033, sky: 19.3, seeing: 0.92, t3pi: 30, tMd: 240 },
  y: { zp: 23.32, k: 0.073, sky: 18.3, seeing: 0.9, t3pi: 30, tMd: 240 },
  w: { zp: 25.55, k: 0.09, sky: 21.4, seeing: 1.0, t3pi: 45, tMd: 45 },
};

/** Read noise variance per pixel (counts²; 6 counts rms) and the saturation level (counts). */
export const READ_VAR = 36;
/** Counts at which a GPC1 pixel saturates (as simulated). */
export const SATURATION = 60000;
/** Observatory latitude (Haleakala), degrees. */
export const LATITUDE = 20.7071;
/** The external filter ID of a filter, as the camera configuration maps it (`r` → `r.00000`). */
export function filterId(filter: FilterName): string {
  return `${filter}.00000`;
}

/** One planned exposure: pointing, timing and conditions. */
export interface PlannedExposure {
  readonly index: number;
  readonly expId: number;
  readonly expName: string;
  readonly filter: FilterName;
  readonly survey: 'MD' | '3PI';
  readonly object: string;
  readonly mjd: number;
  readonly exptime: number;
  readonly airmass: number;
  readonly ra: number;
  readonly dec: number;
  readonly posAngle: number;
  /** Seeing FWHM (arcsec), PSF ellipticity and angle (degrees). */
  readonly fwhm: number;
  readonly ellipticity: number;
  readonly psfAngle: number;
  readonly zpt: number;
  readonly zptErr: number;
  /** Sky brightness (mag/arcsec²) and level (counts per pixel over the exposure). */
  readonly skyMag: number;
  readonly sky: number;
  /** 5σ limiting magnitude of a point source. */
  readonly limit: number;
}

/** One planned stack: a skycell in a filter and the exposures that cover it. */
export interface PlannedStack {
  readonly index: number;
  readonly stackId: number;
  readonly skycell: Skycell;
  readonly filter: FilterName;
  readonly inputs: readonly PlannedExposure[];
  readonly exptime: number;
  readonly mjd: number;
  readonly zpt: number;
  readonly zptErr: number;
  readonly fwhm: number;
  readonly sky: number;
  readonly readVar: number;
  readonly limit: number;
}

/** A whole survey's plan. */
export interface SurveyPlan {
  readonly mdPatch: SkyCircle;
  readonly exposures: readonly PlannedExposure[];
  readonly stacks: readonly PlannedStack[];
  /** How deep (r, per type) a tile must be generated for the exposures that see it. */
  readonly tileLimits: (tile: number) => readonly [number, number];
}

/** The 5σ limiting magnitude of a point source. */
export function limitingMagnitude(zpt: number, exptime: number, fwhmPixels: number, sky: number, readVar: number): number {
  const sigma = fwhmPixels / 2.3548;
  const v = 4 * Math.PI * sigma * sigma * (sky + readVar);
  const f5 = (25 + Math.sqrt(625 + 100 * v)) / 2;
  return zpt + 2.5 * Math.log10(exptime) - 2.5 * Math.log10(f5);
}

function airmassAt(dec: number, hourAngleDeg: number): number {
  const d = (Math.PI / 180);
  const cosz = Math.sin(LATITUDE * d) * Math.sin(dec * d) + Math.cos(LATITUDE * d) * Math.cos(dec * d) * Math.cos(hourAngleDeg * d);
  return cosz > 1 / 2.8 ? 1 / cosz : 2.8;
}

/** The medium-deep patch: a circle of up to 1.5° radius inside the box, placed by the seed. */
export function mdPatchOf(config: SurveyConfig): SkyCircle {
  const [ra0, ra1] = config.ra;
  const [dec0, dec1] = config.dec;
  const decMid = (dec0 + dec1) / 2;
  const width = (ra1 - ra0) * Math.cos((decMid * Math.PI) / 180);
  const radius = Math.min(1.5, 0.5 * Math.min(width, dec1 - dec0));
  const rng = new Random(hashSeed(config.seed, hashText('md-patch')));
  const slackDec = (dec1 - dec0) / 2 - radius;
  const dec = decMid + (rng.uniform() - 0.5) * slackDec;
  const cosd = Math.max(Math.cos((dec * Math.PI) / 180), 1e-6);
  const slackRa = Math.max(0, (ra1 - ra0) / 2 - radius / cosd);
  const ra = (ra0 + ra1) / 2 + (rng.uniform() - 0.5) * slackRa;
  return Object.freeze({ ra, dec, radius });
}

/** Boresights tiling the box: rows 2.6° apart in dec, points 2.6° apart along each row. */
function wideGrid(config: SurveyConfig): { ra: number; dec: number }[] {
  const step = 2.6;
  const [ra0, ra1] = config.ra;
  const [dec0, dec1] = config.dec;
  const rows = Math.max(1, Math.ceil((dec1 - dec0) / step));
  const out: { ra: number; dec: number }[] = [];
  for (let r = 0; r < rows; r++) {
    const dec = dec0 + ((r + 0.5) * (dec1 - dec0)) / rows;
    const width = (ra1 - ra0) * Math.cos((dec * Math.PI) / 180);
    const cols = Math.max(1, Math.ceil(width / step));
    for (let c = 0; c < cols; c++) out.push({ ra: ra0 + ((c + 0.5) * (ra1 - ra0)) / cols, dec });
  }
  return out;
}

/** Plans the exposures: about 40% on the medium-deep patch, the rest tiling the box. */
export function planExposures(config: SurveyConfig, md: SkyCircle): PlannedExposure[] {
  const n = config.exposures;
  const nMd = Math.ceil(n * 0.4);
  // Each night observes its share of the medium-deep exposures first, in one block (as the
  // medium-deep fields were), then the wide ones: consecutive exposures share sky tiles.
  const mdOf = (i: number): boolean => {
    const night = Math.floor(i / PER_NIGHT);
    const first = night * PER_NIGHT;
    const last = Math.min(n, first + PER_NIGHT);
    const share = Math.floor((last * nMd) / n) - Math.floor((first * nMd) / n);
    return i - first < share;
  };
  const grid = wideGrid(config);
  const nf = config.filters.length;
  const out: PlannedExposure[] = [];
  let mdDone = 0;
  let wideDone = 0;
  for (let i = 0; i < n; i++) {
    const rng = new Random(hashSeed(config.seed, hashText('exposure'), i));
    const isMd = mdOf(i);
    let ra: number;
    let dec: number;
    let filter: FilterName;
    if (isMd) {
      // Dithered pointings on the patch centre, cycling through the filters.
      const r = 0.15 * Math.sqrt(rng.uniform());
      const a = 2 * Math.PI * rng.uniform();
      dec = md.dec + r * Math.sin(a);
      ra = md.ra + (r * Math.cos(a)) / Math.cos((md.dec * Math.PI) / 180);
      filter = config.filters[mdDone % nf];
      mdDone++;
    } else {
      const p = grid[wideDone % grid.length];
      const pass = Math.floor(wideDone / grid.length);
      dec = p.dec + (pass > 0 ? 0.3 * ((pass % 3) - 1) : 0);
      ra = p.ra + (pass > 0 ? (0.3 * (((pass + 1) % 3) - 1)) / Math.cos((dec * Math.PI) / 180) : 0);
      filter = config.filters[wideDone % nf];
      wideDone++;
    }
    ra = ((ra % 360) + 360) % 360;
    dec = Math.max(-89.9, Math.min(89.9, dec));
    const facts = FILTER_FACTS[filter];
    // Its place in the schedule (schedule.ts).
    const g = config.firstExpId - FIRST_EXP_ID + i;
    const night = Math.floor(g / PER_NIGHT);
    const seq = g % PER_NIGHT;
    const mjd = FIRST_MJD + night * NIGHT_STEP + 0.25 + (seq * SLOT) / 86400;
    const hourAngle = ((seq - PER_NIGHT / 2) * SLOT * 15) / 3600;
    const airmass = airmassAt(dec, hourAngle);
    const exptime = isMd ? facts.tMd : facts.t3pi;
    const fwhm = Math.min(2.2, Math.max(0.6, facts.seeing * 0.95 * Math.exp(0.18 * rng.normal()) * airmass ** 0.6));
    const zpt = facts.zp - facts.k * (airmass - 1) - Math.abs(0.015 * rng.normal());
    const zptErr = 0.005 + 0.015 * rng.uniform();
    const skyMag = facts.sky + 0.25 * rng.normal();
    const sky = 10 ** (-0.4 * (skyMag - zpt)) * exptime * PIXEL_SCALE * PIXEL_SCALE;
    out.push({
      index: i,
      expId: config.firstExpId + i,
      expName: `o${Math.floor(mjd) - 50000}g${String(seq + 1).padStart(4, '0')}o`,
      filter,
      survey: isMd ? 'MD' : '3PI',
      object: isMd ? 'MD.SIM' : '3PI.SIM',
      mjd: round(mjd, 8),
      exptime,
      airmass: round(airmass, 4),
      ra: round(ra, 7),
      dec: round(dec, 7),
      posAngle: 0,
      fwhm: round(fwhm, 4),
      ellipticity: round(0.02 + 0.06 * rng.uniform(), 4),
      psfAngle: round(180 * rng.uniform(), 3),
      zpt: round(zpt, 4),
      zptErr: round(zptErr, 4),
      skyMag: round(skyMag, 3),
      sky: round(sky, 3),
      limit: round(limitingMagnitude(zpt, exptime, fwhm / PIXEL_SCALE, sky, READ_VAR), 3),
    });
  }
  return out;
}

/** Rounds to `digits` decimals (planned values are written to headers and JSON as they are). */
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Whether a sky position lands on a chip of an exposure. */
export function onChip(e: { ra: number; dec: number }, ra: number, dec: number, scratch = new Float64Array(3)): boolean {
  const p = project(ra, dec, e.ra, e.dec);
  if (!p) return false;
  return locateOnChip(FPA_CENTER.x - p.xi / DEG_PER_PIXEL, FPA_CENTER.y + p.eta / DEG_PER_PIXEL, scratch) >= 0;
}

/**
 * Chooses the stacks: the (skycell, filter) pairs whose centre the most exposures cover (on
 * a chip), ties broken by skycell name and filter order. Throws when fewer pairs exist.
 */
export function planStacks(config: SurveyConfig, exposures: readonly PlannedExposure[]): PlannedStack[] {
  if (config.stacks === 0) return [];
  const cover = new Map<string, { cell: Skycell; filter: FilterName; inputs: PlannedExposure[] }>();
  const scratch = new Float64Array(3);
  for (const e of exposures) {
    for (const cell of projectionCellsNear(e.ra, e.dec, FOV_RADIUS + CELL_SIDE)) {
      if (separation(cell.ra, cell.dec, e.ra, e.dec) > FOV_RADIUS + CELL_SIDE * 0.75) continue;
      for (let s = 0; s < 100; s++) {
        const sc = skycell(cell.id, s);
        if (separation(sc.ra, sc.dec, e.ra, e.dec) > FOV_RADIUS) continue;
        if (!onChip(e, sc.ra, sc.dec, scratch)) continue;
        if (skycellAt(sc.ra, sc.dec).name !== sc.name) continue;
        const key = `${sc.name}|${e.filter}`;
        let entry = cover.get(key);
        if (!entry) cover.set(key, (entry = { cell: sc, filter: e.filter, inputs: [] }));
        entry.inputs.push(e);
      }
    }
  }
  const ranked = [...cover.values()].sort((a, b) =>
    b.inputs.length - a.inputs.length || (a.cell.name < b.cell.name ? -1 : a.cell.name > b.cell.name ? 1 : 0) ||
    FILTERS.indexOf(a.filter) - FILTERS.indexOf(b.filter));
  if (ranked.length < config.stacks) {
    throw new SimError('sim_too_many_stacks', `the exposures cover only ${ranked.length} skycell-filter pairs, fewer than the ${config.stacks} stacks asked for; ask for fewer --stacks or more --exposures`);
  }
  const area = (SKYCELL_SCALE / PIXEL_SCALE) ** 2;
  return ranked.slice(0, config.stacks).map((c, index) => {
    const inputs = [...c.inputs].sort((a, b) => a.expId - b.expId);
    const exptime = inputs.reduce((s, e) => s + e.exptime, 0);
    const zpt = inputs.reduce((s, e) => s + e.zpt, 0) / inputs.length;
    const fwhm = 1.05 * Math.max(...inputs.map((e) => e.fwhm));
    const sky = inputs.reduce((s, e) => s + e.sky, 0) * area;
    const readVar = inputs.length * READ_VAR * area;
    return {
      index,
      stackId: config.firstStackId + index,
      skycell: c.cell,
      filter: c.filter,
      inputs,
      exptime,
      mjd: round(inputs.reduce((s, e) => s + e.mjd, 0) / inputs.length, 8),
      zpt: round(zpt, 4),
      zptErr: round(Math.sqrt(inputs.reduce((s, e) => s + e.zptErr * e.zptErr, 0)) / inputs.length, 4),
      fwhm: round(fwhm, 4),
      sky: round(sky, 3),
      readVar,
      limit: round(limitingMagnitude(zpt, exptime, fwhm / SKYCELL_SCALE, sky, readVar), 3),
    };
  });
}

/** Magnitudes generated beyond the 5σ limit, so that objects detected by noise are in the sky. */
export const LIMIT_MARGIN = 0.5;

/**
 * The r limits per type a tile needs for the exposures whose chips may see it (see
 * exposureTiles; memoised). A tile no exposure's chips reach gets none (r = MAG_BRIGHT).
 */
export function tileLimitsFor(exposures: readonly PlannedExposure[]): (tile: number) => readonly [number, number] {
  const memo = new Map<number, readonly [number, number]>();
  let deepest: Map<number, [number, number]> | undefined;
  return (tile) => {
    const hit = memo.get(tile);
    if (hit) return hit;
    deepest ??= deepestExposures(exposures);
    const [star, galaxy] = deepest.get(tile) ?? [MAG_BRIGHT, MAG_BRIGHT];
    const limits = [round(star, 3), round(galaxy, 3)] as const;
    memo.set(tile, limits);
    return limits;
  };
}

/** The r limits per type a stack needs. */
export function stackLimits(stack: PlannedStack): readonly [number, number] {
  const f = FILTERS.indexOf(stack.filter);
  return [stack.limit + LIMIT_MARGIN + MAX_R_MINUS[0][f], stack.limit + LIMIT_MARGIN + MAX_R_MINUS[1][f]];
}

/** Per tile the exposures' chips may see, the faintest r per type those exposures need. */
function deepestExposures(exposures: readonly PlannedExposure[]): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (const e of exposures) {
    const f = FILTERS.indexOf(e.filter);
    const star = e.limit + LIMIT_MARGIN + MAX_R_MINUS[0][f];
    const galaxy = e.limit + LIMIT_MARGIN + MAX_R_MINUS[1][f];
    for (const id of exposureTiles(e.ra, e.dec)) {
      const l = out.get(id);
      if (!l) out.set(id, [Math.max(MAG_BRIGHT, star), Math.max(MAG_BRIGHT, galaxy)]);
      else {
        l[0] = Math.max(l[0], star);
        l[1] = Math.max(l[1], galaxy);
      }
    }
  }
  return out;
}

/** Plans a whole survey from its configuration. */
export function planSurvey(config: SurveyConfig): SurveyPlan {
  const mdPatch = mdPatchOf(config);
  const exposures = planExposures(config, mdPatch);
  const stacks = planStacks(config, exposures);
  return { mdPatch, exposures, stacks, tileLimits: tileLimitsFor(exposures) };
}
