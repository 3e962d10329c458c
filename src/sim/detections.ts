// The measurement model: what psphot would report for the true objects that land on one
// chip (or one skycell) under given observing conditions. One pass decides which objects
// are detected (measured PSF flux at least `snrLimit` times its noise) and adds spurious
// detections (noise peaks and cosmic rays); the detections are then ordered brightest first
// (psphot's order, IPP_IDET = row) and the table is written column by column straight into
// the big-endian row bytes, with the truth rows beside it. Everything a row needs derives
// from a few random draws and the object's true flux, so the cost is linear in the
// detections. Column by column, because one loop over the rows writing all 57 columns
// measured slower: small loops over typed arrays are what the JIT compiles well.
import { FLAGS, FLAGS2, type CmfLayout, TRUTH_LAYOUT } from './cmf-layout.ts';
import { STAR, objectId, type SkyTile } from './sky-model.ts';
import { fastExp, fastLn, fastLog10 } from './fast-math.ts';
import { COARSE, type Random } from './random.ts';
import { pixelToSky, type TanWcs } from './wcs.ts';
import { SimError } from './errors.ts';

/** Observing conditions of one chip (or skycell) of one exposure (or stack). */
export interface ChipConditions {
  /** Seconds (summed over the inputs for a stack). */
  readonly exptime: number;
  /** Zero point: the magnitude of 1 count per second (ZPT_OBS). */
  readonly zpt: number;
  readonly zptErr: number;
  /** Sky level, counts per pixel over the exposure. */
  readonly sky: number;
  /** Read-noise variance per pixel, counts². */
  readonly readVar: number;
  /** PSF full widths at half maximum, pixels, and the major axis angle (degrees). */
  readonly fwhmMaj: number;
  readonly fwhmMin: number;
  readonly psfTheta: number;
  /** The PSF model's extra (core) parameter. */
  readonly psfCore: number;
  /** Counts at which a peak saturates. */
  readonly saturation: number;
  /** Arcseconds per pixel and the position angle of the pixel grid (degrees). */
  readonly pixelScale: number;
  readonly posAngle: number;
  /** Images that contribute to each detection (1 for a chip, the inputs for a stack). */
  readonly nFrames: number;
  readonly wcs: TanWcs;
  readonly nx: number;
  readonly ny: number;
  /** Systematic astrometric offset of this chip, arcseconds (RA·cos δ, δ). */
  readonly astromRa: number;
  readonly astromDec: number;
  /** Detection threshold in S/N. */
  readonly snrLimit: number;
  /** Mean number of spurious detections. */
  readonly spurious: number;
  /** Fraction of detections whose aperture photometry fails (NaN). */
  readonly apFailRate: number;
}

/**
 * True objects that may land on a chip: the columns the detection decision reads, over a
 * range of indices, and where each came from (what only detected objects need, their sky
 * position, shape and ID, is read from the tile).
 */
export interface Candidates {
  /** FITS pixel position on the chip. */
  x: Float32Array;
  y: Float32Array;
  /** True magnitude in the filter observed. */
  mag: Float32Array;
  type: Uint8Array;
  /** Half-light radius, arcsec (0 for stars). */
  reff: Float32Array;
  srcTile: Int32Array;
  srcIndex: Int32Array;
  /** The tiles `srcTile` indexes. */
  tiles: SkyTile[];
}

/** What a measured chip gives besides its rows: figures for the headers and the manifest. */
export interface ChipResult {
  rows: number;
  spurious: number;
  saturated: number;
  /** Detections of stars with S/N above 20 (the astrometric and photometric references). */
  references: number;
  /** Indices (into the candidates) of detected true objects, in row order; −1 for spurious rows (scratch space: valid until the next measureChip). */
  readonly detected: Int32Array;
  /** The same true objects' indices in candidate order (scratch space: valid until the next measureChip). */
  readonly selected: Int32Array;
}

// Brightest-first order by instrumental magnitude in 0.05 mag buckets (stable, linear).
const BUCKETS = 600;
const BUCKET_ZERO = -20;
const DEG = Math.PI / 180;
const LN10_04 = 0.4 * Math.LN10;
/** A random word times this is a uniform number in [0, 1). */
const U32 = 2.3283064365386963e-10;
const MAG_SIG = 2.5 / Math.LN10;
/**
 * Unsigned columns are stored as FITS stores them, signed with TZERO 2^31 (2^15 for 16-bit):
 * flipping the sign bit turns the value into its stored form. The stored words are written
 * with setInt32 (the same bits): a setUint32 of a value of 2^31 or more boxed a heap number
 * per row in the compiled writers.
 */
export const SIGN32 = 0x80000000;
/** See {@link SIGN32}. */
export const SIGN16 = 0x8000;

// cos 2φ and sin 2φ for galaxy angles φ in [0, 180) degrees, 4096 steps.
const ANGLE_STEPS = 4096;
const ANGLE_STEPS_PER_DEG = ANGLE_STEPS / 180;
const COS2 = new Float64Array(ANGLE_STEPS);
const SIN2 = new Float64Array(ANGLE_STEPS);
for (let a = 0; a < ANGLE_STEPS; a++) {
  const phi2 = (2 * Math.PI * (a + 0.5)) / ANGLE_STEPS;
  COS2[a] = Math.cos(phi2);
  SIN2[a] = Math.sin(phi2);
}

/** Kinds of detection rows. */
const STAR_ROW = 0;
const GALAXY_ROW = 1;
const NOISE_ROW = 2;
const COSMIC_ROW = 3;

/** Scratch space reused from chip to chip (grown as needed). */
export class MeasureScratch {
  capacity = 0;
  // Pass 1, per selected detection (selection order).
  sel = new Int32Array(0);
  trueFlux = new Float64Array(0);
  selSo2 = new Float64Array(0);
  flux = new Float64Array(0);
  sigma = new Float64Array(0);
  noise = new Float64Array(0);
  sat = new Uint8Array(0);
  sx = new Float64Array(0);
  sy = new Float64Array(0);
  inst = new Float64Array(0);
  /** The row of each detection (selection order). */
  rowOf = new Int32Array(0);
  detected = new Int32Array(0);
  counts = new Int32Array(BUCKETS + 1);
  // Per row (row order).
  kind = new Uint8Array(0);
  rsat = new Uint8Array(0);
  x = new Float64Array(0);
  y = new Float64Array(0);
  objId = new Float64Array(0);
  ra = new Float64Array(0);
  dec = new Float64Array(0);
  cosDec = new Float64Array(0);
  F = new Float64Array(0);
  so2 = new Float64Array(0);
  sg2 = new Float64Array(0);
  q = new Float64Array(0);
  phi = new Float64Array(0);
  fm = new Float64Array(0);
  sig = new Float64Array(0);
  snr = new Float64Array(0);
  mag = new Float64Array(0);
  z1 = new Float64Array(0);
  edge = new Float64Array(0);
  r1 = new Float64Array(0);
  flags = new Uint32Array(0);
  flags2 = new Uint32Array(0);
  // Random deviates drawn in bulk per chip, block by block (see NOISE_* below).
  // Uniform and coarse deviates stay as the random words they come from (a uniform is a
  // word times 2^-32, a coarse normal COARSE[byte]): no pass converting them to doubles.
  gauss = new Float64Array(0);
  unif = new Uint32Array(0);
  coarseWords = new Uint32Array(0);
  coarse = new Uint8Array(0);

  /** Makes room for `n` detections. */
  ensure(n: number): void {
    if (n <= this.capacity) return;
    const size = Math.max(n, this.capacity * 2, 4096);
    this.capacity = size;
    this.sel = new Int32Array(size);
    this.trueFlux = new Float64Array(size);
    this.selSo2 = new Float64Array(size);
    this.flux = new Float64Array(size);
    this.sigma = new Float64Array(size);
    this.noise = new Float64Array(size);
    this.sat = new Uint8Array(size);
    this.sx = new Float64Array(size);
    this.sy = new Float64Array(size);
    this.inst = new Float64Array(size);
    this.rowOf = new Int32Array(size);
    this.detected = new Int32Array(size);
    this.kind = new Uint8Array(size);
    this.rsat = new Uint8Array(size);
    for (const k of ['objId', 'x', 'y', 'ra', 'dec', 'cosDec', 'F', 'so2', 'sg2', 'q', 'phi', 'fm', 'sig', 'snr', 'mag', 'z1', 'edge', 'r1'] as const) {
      this[k] = new Float64Array(size);
    }
    this.flags = new Uint32Array(size);
    this.flags2 = new Uint32Array(size);
    this.gauss = new Float64Array(size * GAUSS_BLOCKS);
    this.unif = new Uint32Array(size * UNIF_BLOCKS);
    this.coarseWords = new Uint32Array((size * COARSE_BLOCKS + 3) >>> 2);
    this.coarse = new Uint8Array(this.coarseWords.buffer);
  }
}

// Blocks of the bulk deviates: block b of a chip with n candidates is b·n..(b+1)·n.
// Gaussian: 0 the selection noise (per candidate), 1-2 centroid x, y, 3 aperture flux.
const GAUSS_BLOCKS = 4;
// Uniform: 0 aperture failure, 1-2 PSF coverage, 3 PSF star choice, 4-5 cosmic-ray values.
const UNIF_BLOCKS = 6;
// Coarse: 0-4 sky, sky sigma, chi², CR and EXT significances; 5-12 moments; 13-15 Kron.
const COARSE_BLOCKS = 16;

/** Row bytes needed for `rows` detections plus room for the spurious ones of a chip. */
export function maxRows(candidates: number, cond: ChipConditions): number {
  return candidates + Math.ceil(cond.spurious * 3 + 20);
}

/** Constants of one chip's measurement, derived once from its conditions. */
interface Model {
  readonly sMaj: number;
  readonly sMin: number;
  readonly sp2: number;
  readonly bg: number;
  readonly V: number;
  readonly magOffset: number;
  readonly fwhm: number;
  readonly apR: number;
  readonly apNpix: number;
  readonly apBg: number;
  readonly starApFrac: number;
  readonly apCorr: number;
  readonly starPeakMag: number;
  readonly psfNpix: number;
  readonly skyRate: number;
  readonly skySigRate: number;
  readonly skyNoise: number;
  readonly psfXX: number;
  readonly psfYY: number;
  readonly psfXY: number;
}

function modelOf(cond: ChipConditions): Model {
  const sMaj = cond.fwhmMaj / 2.3548;
  const sMin = cond.fwhmMin / 2.3548;
  const sp2 = sMaj * sMin;
  const bg = cond.sky + cond.readVar;
  const fwhm = (cond.fwhmMaj + cond.fwhmMin) / 2;
  const apR = Math.round(175 * fwhm) / 100;
  const apNpix = Math.round(Math.PI * apR * apR);
  const starApFrac = 1 - Math.exp(-(apR * apR) / (2 * sp2));
  const th = cond.psfTheta * DEG;
  const ct = Math.cos(th);
  const st = Math.sin(th);
  return {
    sMaj, sMin, sp2, bg,
    V: 4 * Math.PI * sp2 * bg,
    magOffset: cond.zpt + 2.5 * Math.log10(cond.exptime),
    fwhm, apR, apNpix,
    apBg: apNpix * bg,
    starApFrac,
    apCorr: -2.5 * Math.log10(starApFrac),
    starPeakMag: 2.5 * Math.log10(2 * Math.PI * sp2),
    psfNpix: Math.round(Math.PI * 4 * fwhm * fwhm),
    skyRate: cond.sky / cond.exptime,
    skySigRate: Math.sqrt(bg) / cond.exptime,
    skyNoise: Math.sqrt(bg),
    psfXX: sMaj * sMaj * ct * ct + sMin * sMin * st * st,
    psfYY: sMaj * sMaj * st * st + sMin * sMin * ct * ct,
    psfXY: (sMaj * sMaj - sMin * sMin) * st * ct,
  };
}

/**
 * Measures the candidates `start..end` on one chip: writes the detection rows (layout
 * `layout`) to `rows` and the truth rows to `truth`, both from byte 0; returns the counts.
 * `rows`/`truth` must have room for {@link maxRows} rows.
 */
export function measureChip(
  layout: CmfLayout, cond: ChipConditions, c: Candidates, start: number, end: number,
  rng: Random, rows: Uint8Array, truth: Uint8Array, s: MeasureScratch,
): ChipResult {
  const m = modelOf(cond);
  const nSpur = Math.min(rng.poisson(cond.spurious), Math.ceil(cond.spurious * 3 + 20));
  s.ensure(end - start + nSpur);
  rng.fillNormal(s.gauss, end - start);
  const real = select(m, cond, c, start, end, s);
  const n = real + spurious(m, cond, rng, s, real, nSpur);
  orderByBrightness(s, n);
  rng.fillNormal(s.gauss, GAUSS_BLOCKS * n);
  rng.fillWords(s.unif, UNIF_BLOCKS * n);
  rng.fillWords(s.coarseWords, (COARSE_BLOCKS * n + 3) >>> 2);
  const detected = s.detected.subarray(0, n);
  const saturated = fillRows(m, cond, c, s, real, n, detected);
  const dv = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
  const o = offsets(layout);
  const R = layout.rowBytes;
  s.flags.fill(FLAGS.PSFMODEL | FLAGS.FITTED | FLAGS.LINEAR_FIT, 0, n);
  s.flags2.fill(0, 0, n);
  writeIds(dv, R, o.IPP_IDET, n);
  writePositions(dv, R, o, cond, s, n);
  writePsfPhotometry(dv, R, o, cond, m, s, n);
  writeAperture(dv, R, o, cond, m, s, n);
  writeFit(dv, R, o, cond, m, s, n);
  writePsfModel(dv, R, o, cond, m, s, n);
  writeMoments(dv, R, o, m, s, n);
  writeKron(dv, R, o, m, s, n);
  if (o.SKY_LIMIT_RAD >= 0) writeSkyLimit(dv, R, o, m, s, n);
  const references = writeFlags(dv, R, o, cond, s, n);
  writeTruth(new DataView(truth.buffer, truth.byteOffset, truth.byteLength), c, s, n, detected);
  return { rows: n, spurious: n - real, saturated, references, detected, selected: s.sel.subarray(0, real) };
}

/** Pass 1: which candidates are detected, and their measured PSF flux. Returns how many. */
function select(m: Model, cond: ChipConditions, c: Candidates, start: number, end: number, s: MeasureScratch): number {
  const { sel, trueFlux, selSo2, flux, sigma, noise, sat, gauss } = s;
  const mag = c.mag;
  const type = c.type;
  const reff = c.reff;
  const sp2 = m.sp2;
  const V = m.V;
  const magOffset = m.magOffset;
  const scale = cond.pixelScale * 1.1774;
  const saturation = cond.saturation;
  const sky = cond.sky;
  const snrLimit = cond.snrLimit;
  let n = 0;
  for (let i = start; i < end; i++) {
    const F = fastExp(-LN10_04 * (mag[i] - magOffset));
    let fpsf = F;
    let so2 = sp2;
    if (type[i] !== STAR) {
      const sg = reff[i] / scale;
      const sg2 = sg * sg;
      fpsf = (F * (2 * sp2)) / (2 * sp2 + sg2);
      so2 = sp2 + sg2;
    }
    let sig = Math.sqrt(fpsf + V);
    const z = gauss[i - start];
    const peak = F / (2 * Math.PI * so2) + sky;
    let isSat = 0;
    let fm: number;
    if (peak > saturation) {
      // A saturated core: the PSF fit loses flux and its error grows.
      isSat = 1;
      sig *= 2;
      fm = fpsf * (1 - 0.08 * Math.log(peak / saturation)) + sig * z;
    } else {
      fm = fpsf + sig * z;
    }
    if (fm < snrLimit * sig) continue;
    sel[n] = i;
    trueFlux[n] = F;
    selSo2[n] = so2;
    flux[n] = fm;
    sigma[n] = sig;
    noise[n] = z;
    sat[n] = isSat;
    n++;
  }
  return n;
}

/** Spurious detections: noise peaks just above the threshold, and cosmic rays. Returns how many. */
function spurious(m: Model, cond: ChipConditions, rng: Random, s: MeasureScratch, from: number, count: number): number {
  const sig = Math.sqrt(m.V);
  for (let k = from; k < from + count; k++) {
    const cr = rng.uniform() < 0.5;
    const snr = cr ? cond.snrLimit + 10 * -Math.log(rng.open()) : cond.snrLimit + 1.5 * -Math.log(rng.open());
    s.sel[k] = cr ? -2 : -1;
    s.flux[k] = snr * sig;
    s.sigma[k] = sig;
    s.noise[k] = 0;
    s.sat[k] = 0;
    s.sx[k] = 0.5 + cond.nx * rng.uniform();
    s.sy[k] = 0.5 + cond.ny * rng.uniform();
  }
  return count;
}

/** Orders the detections brightest first: `s.rowOf[k]` is the row of detection `k`. */
function orderByBrightness(s: MeasureScratch, n: number): void {
  const { counts, inst, flux, rowOf } = s;
  counts.fill(0);
  for (let k = 0; k < n; k++) {
    const mag = -2.5 * fastLog10(flux[k]);
    inst[k] = mag;
    let b = Math.floor((mag - BUCKET_ZERO) * 20);
    b = b < 0 ? 0 : b >= BUCKETS ? BUCKETS - 1 : b;
    counts[b + 1]++;
  }
  for (let b = 0; b < BUCKETS; b++) counts[b + 1] += counts[b];
  for (let k = 0; k < n; k++) {
    let b = Math.floor((inst[k] - BUCKET_ZERO) * 20);
    b = b < 0 ? 0 : b >= BUCKETS ? BUCKETS - 1 : b;
    rowOf[k] = counts[b]++;
  }
}

/**
 * Lays out what every row needs, in row order. The detections are taken in selection order
 * (the true ones in candidate order: their tiles' columns are read tile by tile, not at
 * random) and each is put in its row. Returns the saturated rows.
 */
function fillRows(m: Model, cond: ChipConditions, c: Candidates, s: MeasureScratch, real: number, n: number, detected: Int32Array): number {
  const { rowOf, sel, flux, sigma, inst, noise, sat, trueFlux, selSo2 } = s;
  const { fm: rFm, sig: rSig, snr, mag, z1, rsat, x: rx, y: ry, edge, ra, dec, cosDec, objId, F, so2, sg2, kind, q, phi } = s;
  const { x: cx, y: cy, type, tiles, srcTile, srcIndex } = c;
  const nx = cond.nx;
  const ny = cond.ny;
  const sp2 = m.sp2;
  let saturated = 0;
  let lastTile = -1;
  let t = tiles[0];
  for (let k = 0; k < real; k++) {
    const j = rowOf[k];
    const i = sel[k];
    const fm = flux[k];
    const sg = sigma[k];
    rFm[j] = fm;
    rSig[j] = sg;
    snr[j] = fm / sg;
    mag[j] = inst[k];
    z1[j] = noise[k];
    const st = sat[k];
    rsat[j] = st;
    saturated += st;
    detected[j] = i;
    const ti = srcTile[i];
    if (ti !== lastTile) {
      t = tiles[ti];
      lastTile = ti;
    }
    const at = srcIndex[i];
    ra[j] = t.ra[at];
    dec[j] = t.dec[at];
    const sd = t.sinDec[at];
    cosDec[j] = Math.sqrt(1 - sd * sd);
    objId[j] = objectId(t, at);
    F[j] = trueFlux[k];
    const o2 = selSo2[k];
    so2[j] = o2;
    if (type[i] === STAR) {
      kind[j] = STAR_ROW;
      sg2[j] = 0;
      q[j] = 1;
      phi[j] = 0;
    } else {
      kind[j] = GALAXY_ROW;
      sg2[j] = o2 - sp2;
      q[j] = t.axisRatio[at];
      phi[j] = t.angle[at];
    }
    const x = cx[i];
    const y = cy[i];
    rx[j] = x;
    ry[j] = y;
    edge[j] = Math.min(x - 0.5, y - 0.5, nx + 0.5 - x, ny + 0.5 - y);
  }
  for (let k = real; k < n; k++) {
    const j = rowOf[k];
    const i = sel[k];
    const fm = flux[k];
    const sg = sigma[k];
    rFm[j] = fm;
    rSig[j] = sg;
    snr[j] = fm / sg;
    mag[j] = inst[k];
    z1[j] = noise[k];
    rsat[j] = sat[k];
    saturated += sat[k];
    detected[j] = -1;
    const x = s.sx[k];
    const y = s.sy[k];
    const p = pixelToSky(cond.wcs, x, y);
    ra[j] = p.ra;
    dec[j] = p.dec;
    cosDec[j] = Math.cos(p.dec * DEG);
    F[j] = fm;
    kind[j] = i === -2 ? COSMIC_ROW : NOISE_ROW;
    so2[j] = i === -2 ? 0.25 * sp2 : sp2;
    sg2[j] = 0;
    q[j] = 1;
    phi[j] = 0;
    rx[j] = x;
    ry[j] = y;
    edge[j] = Math.min(x - 0.5, y - 0.5, nx + 0.5 - x, ny + 0.5 - y);
  }
  return saturated;
}

/** Byte offsets of the columns a detection row may have (−1 when the layout lacks one). */
interface Offsets {
  readonly [name: string]: number;
}

function writeIds(dv: DataView, R: number, o: number, n: number): void {
  for (let j = 0, at = o; j < n; j++, at += R) dv.setInt32(at, j ^ SIGN32);
}

function writePositions(dv: DataView, R: number, o: Offsets, cond: ChipConditions, s: MeasureScratch, n: number): void {
  const oX = o.X_PSF;
  const oY = o.Y_PSF;
  const oXS = o.X_PSF_SIG;
  const oYS = o.Y_PSF_SIG;
  const oPA = o.POSANGLE;
  const oPS = o.PLTSCALE;
  const oRA = o.RA_PSF;
  const oDEC = o.DEC_PSF;
  const w = cond.wcs;
  const sysRa = cond.astromRa / 3600;
  const sysDec = cond.astromDec / 3600;
  const posAngle = cond.posAngle;
  const scale = cond.pixelScale;
  const { x, y, ra, dec, cosDec, so2, snr, rsat, gauss } = s;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const sPos = Math.max(0.003, (1.2 * Math.sqrt(so2[j])) / snr[j]) * (rsat[j] === 1 ? 3 : 1);
    const ex = sPos * gauss[n + j];
    const ey = sPos * gauss[2 * n + j];
    dv.setFloat32(at + oX, x[j] + ex);
    dv.setFloat32(at + oY, y[j] + ey);
    dv.setFloat32(at + oXS, sPos);
    dv.setFloat32(at + oYS, sPos);
    dv.setFloat32(at + oPA, posAngle);
    dv.setFloat32(at + oPS, scale);
    dv.setFloat64(at + oRA, ra[j] + (w.cd11 * ex + w.cd12 * ey + sysRa) / cosDec[j]);
    dv.setFloat64(at + oDEC, dec[j] + w.cd21 * ex + w.cd22 * ey + sysDec);
  }
}

function writePsfPhotometry(dv: DataView, R: number, o: Offsets, cond: ChipConditions, m: Model, s: MeasureScratch, n: number): void {
  const oM = o.PSF_INST_MAG;
  const oMS = o.PSF_INST_MAG_SIG;
  const oF = o.PSF_INST_FLUX;
  const oFS = o.PSF_INST_FLUX_SIG;
  const oC = o.CAL_PSF_MAG;
  const oCS = o.CAL_PSF_MAG_SIG;
  const magOffset = m.magOffset;
  const zptErr = cond.zptErr;
  const { mag, snr, fm, sig } = s;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    dv.setFloat32(at + oM, mag[j]);
    dv.setFloat32(at + oMS, MAG_SIG / snr[j]);
    dv.setFloat32(at + oF, fm[j]);
    dv.setFloat32(at + oFS, sig[j]);
    dv.setFloat32(at + oC, mag[j] + magOffset);
    dv.setFloat32(at + oCS, zptErr);
  }
}

// Aperture photometry: a noise correlated with the PSF fit's, failing now and then.
function writeAperture(dv: DataView, R: number, o: Offsets, cond: ChipConditions, m: Model, s: MeasureScratch, n: number): void {
  const oAM = o.AP_MAG;
  const oAR = o.AP_MAG_RAW;
  const oAF = o.AP_FLUX;
  const oAFS = o.AP_FLUX_SIG;
  const oRad = o.AP_MAG_RADIUS;
  const oNpix = o.AP_NPIX;
  const { apR, apNpix, apBg, starApFrac, apCorr } = m;
  const apR2 = apR * apR;
  const fail = cond.apFailRate;
  const { kind, F, so2, z1, edge, flags, gauss, unif } = s;
  const g3 = 3 * n;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const apFrac = kind[j] === GALAXY_ROW ? 1 - fastExp(-apR2 / (2 * so2[j])) : starApFrac;
    const apTrue = F[j] * apFrac;
    const apSig = Math.sqrt((apTrue > 0 ? apTrue : 0) + apBg);
    const apMeas = apTrue + apSig * (0.7 * z1[j] + 0.714 * gauss[g3 + j]);
    if (apMeas <= 0 || unif[j] * U32 < fail) {
      dv.setFloat32(at + oAM, NaN);
      dv.setFloat32(at + oAR, NaN);
      dv.setFloat32(at + oAF, NaN);
      dv.setFloat32(at + oAFS, NaN);
    } else {
      const raw = -2.5 * fastLog10(apMeas);
      dv.setFloat32(at + oAM, raw - apCorr);
      dv.setFloat32(at + oAR, raw);
      dv.setFloat32(at + oAF, apMeas / starApFrac);
      dv.setFloat32(at + oAFS, apSig / starApFrac);
      flags[j] |= FLAGS.AP_MAGS;
    }
    dv.setFloat32(at + oRad, apR);
    if (oNpix >= 0) {
      const e = edge[j];
      dv.setInt32(at + oNpix, e >= apR ? apNpix : Math.round(apNpix * (0.5 + (0.5 * (e > 0 ? e : 0)) / apR)));
    }
  }
}

// Peak, sky and the quality of the fit: chi², cosmic-ray and extendedness significances.
function writeFit(dv: DataView, R: number, o: Offsets, cond: ChipConditions, m: Model, s: MeasureScratch, n: number): void {
  const oPeak = o.PEAK_FLUX_AS_MAG;
  const oSky = o.SKY;
  const oSkyS = o.SKY_SIGMA;
  const oChi = o.PSF_CHISQ;
  const oCR = o.CR_NSIGMA;
  const oExt = o.EXT_NSIGMA;
  const { sp2, starPeakMag, skyRate, skySigRate } = m;
  const saturation3 = 3 * cond.saturation;
  const { kind, mag, so2, sg2, snr, rsat, F, edge, flags, coarse, unif } = s;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const k = kind[j];
    const sn = snr[j];
    const c3 = COARSE[coarse[3 * n + j]];
    const c4 = COARSE[coarse[4 * n + j]];
    const peakMag = k === GALAXY_ROW
      ? mag[j] + 2.5 * fastLog10(((2 * sp2) / (2 * sp2 + sg2[j])) * 2 * Math.PI * so2[j])
      : k === COSMIC_ROW ? mag[j] + 2.5 * fastLog10(2 * Math.PI * so2[j]) : mag[j] + starPeakMag;
    dv.setFloat32(at + oPeak, peakMag);
    dv.setFloat32(at + oSky, skyRate * (1 + 0.01 * COARSE[coarse[j]]));
    dv.setFloat32(at + oSkyS, skySigRate * (1 + 0.03 * COARSE[coarse[n + j]]));
    const zc = COARSE[coarse[2 * n + j]];
    let chisq: number;
    let crSig: number;
    let extSig: number;
    let f = flags[j];
    if (k === STAR_ROW) {
      chisq = 1 + 0.06 * zc + 0.002 * sn;
      crSig = 0.7 * c3;
      extSig = c4;
    } else if (k === GALAXY_ROW) {
      const ext = sg2[j] / sp2;
      chisq = 1 + 0.06 * zc + 0.02 * sn * ext;
      crSig = -Math.abs(c3) - 2 * ext;
      extSig = (0.8 * sn * sg2[j]) / (sp2 + sg2[j]) + c4;
    } else if (k === NOISE_ROW) {
      chisq = 1 + 0.1 * Math.abs(zc);
      crSig = c3;
      extSig = c4;
    } else {
      chisq = 3 + 5 * Math.abs(zc);
      crSig = 5 + 20 * (unif[4 * n + j] * U32);
      extSig = -2 - 2 * (unif[5 * n + j] * U32);
      f |= FLAGS.CR_LIMIT;
    }
    if (rsat[j] === 1) {
      chisq = 5 + 3 * Math.abs(zc) + 0.01 * sn;
      f |= FLAGS.SATSTAR | FLAGS.POOR;
      if (F[j] / (2 * Math.PI * so2[j]) > saturation3) f |= FLAGS.SATURATED;
      crSig = NaN;
    } else if (chisq > 3) {
      f |= FLAGS.POOR;
    }
    if (edge[j] < 3) crSig = NaN;
    if (extSig > 3 && k !== COSMIC_ROW) f |= FLAGS.EXT_LIMIT | FLAGS.EXTMODEL | FLAGS.NONLINEAR_FIT | FLAGS.EXTENDED_STATS;
    flags[j] = f;
    dv.setFloat32(at + oChi, chisq);
    dv.setFloat32(at + oCR, crSig);
    dv.setFloat32(at + oExt, extSig);
  }
}

// The PSF model at each detection (a slight gradient across the chip) and the fit's coverage.
function writePsfModel(dv: DataView, R: number, o: Offsets, cond: ChipConditions, m: Model, s: MeasureScratch, n: number): void {
  const oMaj = o.PSF_MAJOR;
  const oMin = o.PSF_MINOR;
  const oTh = o.PSF_THETA;
  const oCore = o.PSF_CORE;
  const oFMaj = o.PSF_FWHM_MAJ;
  const oFMin = o.PSF_FWHM_MIN;
  const oQF = o.PSF_QF;
  const oQFP = o.PSF_QF_PERFECT;
  const oNdof = o.PSF_NDOF;
  const oNpix = o.PSF_NPIX;
  const { sMaj, sMin, fwhm, psfNpix } = m;
  const invNx = 1 / cond.nx;
  const theta = cond.psfTheta;
  const core = cond.psfCore;
  const fMaj = cond.fwhmMaj;
  const fMin = cond.fwhmMin;
  const twoFwhm = 2 * fwhm;
  const { x, edge, unif } = s;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const grad = 1 + 0.02 * (x[j] * invNx - 0.5);
    dv.setFloat32(at + oMaj, sMaj * grad);
    dv.setFloat32(at + oMin, sMin * grad);
    dv.setFloat32(at + oTh, theta);
    if (oCore >= 0) {
      dv.setFloat32(at + oCore, core);
      dv.setFloat32(at + oFMaj, fMaj * grad);
      dv.setFloat32(at + oFMin, fMin * grad);
    }
    const e = edge[j];
    const inside = e >= twoFwhm ? 1 : e <= 0 ? 0 : e / twoFwhm;
    const u = unif[n + j] * U32;
    const qf = inside < 1 ? inside : 1 - 0.01 * u * u * u * u;
    dv.setFloat32(at + oQF, qf);
    dv.setFloat32(at + oQFP, qf * (1 - 0.02 * (unif[2 * n + j] * U32)));
    const npix = Math.max(1, Math.round(psfNpix * (inside < 1 ? (inside > 0.3 ? inside : 0.3) : 1)));
    dv.setInt32(at + oNdof, npix > 3 ? npix - 3 : 0);
    dv.setInt32(at + oNpix, npix);
  }
}

// Moments: the PSF's plus the galaxy's (an ellipse of axis ratio q at angle phi).
function writeMoments(dv: DataView, R: number, o: Offsets, m: Model, s: MeasureScratch, n: number): void {
  const oXX = o.MOMENTS_XX;
  const oXY = o.MOMENTS_XY;
  const oYY = o.MOMENTS_YY;
  const o3C = o.MOMENTS_M3C;
  const o3S = o.MOMENTS_M3S;
  const o4C = o.MOMENTS_M4C;
  const o4S = o.MOMENTS_M4S;
  const oR1 = o.MOMENTS_R1;
  const oRH = o.MOMENTS_RH;
  const { psfXX, psfYY, psfXY } = m;
  const { kind, sg2, q, phi, so2, snr, r1, coarse } = s;
  const b = 5 * n;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const mn = 0.5 / snr[j];
    let mxx = psfXX;
    let myy = psfYY;
    let mxy = psfXY;
    const k = kind[j];
    if (k === GALAXY_ROW) {
      // cos²φ = (1 + cos 2φ)/2 and so on, with cos 2φ and sin 2φ from a table by angle.
      const a = Math.floor(phi[j] * ANGLE_STEPS_PER_DEG) & (ANGLE_STEPS - 1);
      const q2 = q[j] * q[j];
      const g = sg2[j];
      const half = (g * (1 + q2)) / 2;
      const diff = (g * (1 - q2)) / 2;
      mxx += half + diff * COS2[a];
      myy += half - diff * COS2[a];
      mxy += diff * SIN2[a];
    } else if (k === COSMIC_ROW) {
      mxx *= 0.25;
      myy *= 0.25;
      mxy *= 0.25;
    }
    dv.setFloat32(at + oXX, mxx * (1 + mn * COARSE[coarse[b + j]]));
    dv.setFloat32(at + oXY, mxy + Math.sqrt(mxx * myy) * mn * COARSE[coarse[b + n + j]]);
    dv.setFloat32(at + oYY, myy * (1 + mn * COARSE[coarse[b + 2 * n + j]]));
    const so = Math.sqrt(so2[j]);
    const s3 = so2[j] * so * mn;
    const s4 = so2[j] * so2[j] * mn;
    dv.setFloat32(at + o3C, s3 * COARSE[coarse[b + 3 * n + j]]);
    dv.setFloat32(at + o3S, s3 * COARSE[coarse[b + 4 * n + j]]);
    dv.setFloat32(at + o4C, s4 * COARSE[coarse[b + 5 * n + j]]);
    dv.setFloat32(at + o4S, s4 * COARSE[coarse[b + 6 * n + j]]);
    const rr = 1.2533 * so * (1 + mn * COARSE[coarse[b + 7 * n + j]]);
    r1[j] = rr;
    dv.setFloat32(at + oR1, rr);
    dv.setFloat32(at + oRH, 0.95 * Math.sqrt(rr > 0 ? rr : 0));
  }
}

// Kron fluxes: within 2.5 R1, within R1, and in the 2.5-4 R1 annulus.
function writeKron(dv: DataView, R: number, o: Offsets, m: Model, s: MeasureScratch, n: number): void {
  const oK = o.KRON_FLUX;
  const oKE = o.KRON_FLUX_ERR;
  const oKI = o.KRON_FLUX_INNER;
  const oKO = o.KRON_FLUX_OUTER;
  const bg = m.bg;
  const { kind, F, r1, z1, coarse } = s;
  const b = 13 * n;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const rk = 2.5 * r1[j];
    const f = F[j];
    const kTrue = f * (kind[j] === GALAXY_ROW ? 0.9 : 0.99);
    const kSig = Math.sqrt((kTrue > 0 ? kTrue : 0) + Math.PI * rk * rk * bg);
    dv.setFloat32(at + oK, kTrue + kSig * (0.6 * z1[j] + 0.8 * COARSE[coarse[b + j]]));
    dv.setFloat32(at + oKE, kSig);
    const inner = 0.544 * f;
    const a = Math.PI * r1[j] * r1[j] * bg;
    dv.setFloat32(at + oKI, inner + Math.sqrt((inner > 0 ? inner : 0) + a) * COARSE[coarse[b + n + j]]);
    dv.setFloat32(at + oKO, 0.0074 * f + Math.sqrt(9.75 * a) * COARSE[coarse[b + 2 * n + j]]);
  }
}

// Where each profile sinks into the sky noise (NaN when its peak is below it).
function writeSkyLimit(dv: DataView, R: number, o: Offsets, m: Model, s: MeasureScratch, n: number): void {
  const oRad = o.SKY_LIMIT_RAD;
  const oFlux = o.SKY_LIMIT_FLUX;
  const oSlope = o.SKY_LIMIT_SLOPE;
  const noise = m.skyNoise;
  const { F, so2 } = s;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    const peak = F[j] / (2 * Math.PI * so2[j]);
    if (peak > noise) {
      const rad = Math.sqrt(so2[j] * 2 * fastLn(peak / noise));
      dv.setFloat32(at + oRad, rad);
      dv.setFloat32(at + oFlux, noise);
      dv.setFloat32(at + oSlope, (-rad / so2[j]) * noise);
    } else {
      dv.setFloat32(at + oRad, NaN);
      dv.setFloat32(at + oFlux, NaN);
      dv.setFloat32(at + oSlope, NaN);
    }
  }
}

/** FLAGS, FLAGS2, N_FRAMES and padding; returns the reference stars (S/N above 20). */
function writeFlags(dv: DataView, R: number, o: Offsets, cond: ChipConditions, s: MeasureScratch, n: number): number {
  const oF = o.FLAGS;
  const oF2 = o.FLAGS2;
  const oP2 = o.PADDING2;
  const oN = o.N_FRAMES;
  const oP = o.PADDING;
  const frames = cond.nFrames ^ SIGN16;
  const { kind, rsat, snr, flags, unif } = s;
  let references = 0;
  for (let j = 0, at = 0; j < n; j++, at += R) {
    let f = flags[j];
    const sn = snr[j];
    if (kind[j] === STAR_ROW && rsat[j] === 0 && sn > 20) {
      references++;
      if (sn > 30 && unif[3 * n + j] * U32 < 0.3) f |= FLAGS.PSFSTAR;
    }
    dv.setInt32(at + oF, f ^ SIGN32);
    dv.setInt32(at + oF2, (sn > 20 ? FLAGS2.PASS1_SRC : 0) ^ SIGN32);
    if (oP2 >= 0) dv.setInt32(at + oP2, 0);
    dv.setUint16(at + oN, frames);
    dv.setInt16(at + oP, 0);
  }
  return references;
}

/** Truth rows: IPP_IDET, the true object (−1 for spurious) and its true magnitude. */
function writeTruth(tv: DataView, c: Candidates, s: MeasureScratch, n: number, detected: Int32Array): void {
  const T = TRUTH_LAYOUT.rowBytes;
  for (let j = 0, at = 0; j < n; j++, at += T) {
    tv.setInt32(at, j ^ SIGN32);
    const i = detected[j];
    if (i >= 0) {
      const id = s.objId[j];
      tv.setInt32(at + 4, Math.floor(id / 4294967296));
      tv.setInt32(at + 8, id | 0);
      tv.setFloat32(at + 12, c.mag[i]);
    } else {
      tv.setInt32(at + 4, -1);
      tv.setInt32(at + 8, -1);
      tv.setFloat32(at + 12, NaN);
    }
  }
}

const OFFSETS = new WeakMap<CmfLayout, Offsets>();
const NAMES = [
  'IPP_IDET', 'X_PSF', 'Y_PSF', 'X_PSF_SIG', 'Y_PSF_SIG', 'POSANGLE', 'PLTSCALE', 'PSF_INST_MAG',
  'PSF_INST_MAG_SIG', 'PSF_INST_FLUX', 'PSF_INST_FLUX_SIG', 'AP_MAG', 'AP_MAG_RAW', 'AP_MAG_RADIUS',
  'AP_FLUX', 'AP_FLUX_SIG', 'AP_NPIX', 'CAL_PSF_MAG', 'CAL_PSF_MAG_SIG', 'RA_PSF', 'DEC_PSF',
  'PEAK_FLUX_AS_MAG', 'SKY', 'SKY_SIGMA', 'PSF_CHISQ', 'CR_NSIGMA', 'EXT_NSIGMA', 'PSF_MAJOR',
  'PSF_MINOR', 'PSF_THETA', 'PSF_CORE', 'PSF_FWHM_MAJ', 'PSF_FWHM_MIN', 'PSF_QF', 'PSF_QF_PERFECT',
  'PSF_NDOF', 'PSF_NPIX', 'MOMENTS_XX', 'MOMENTS_XY', 'MOMENTS_YY', 'MOMENTS_M3C', 'MOMENTS_M3S',
  'MOMENTS_M4C', 'MOMENTS_M4S', 'MOMENTS_R1', 'MOMENTS_RH', 'KRON_FLUX', 'KRON_FLUX_ERR',
  'KRON_FLUX_INNER', 'KRON_FLUX_OUTER', 'SKY_LIMIT_RAD', 'SKY_LIMIT_FLUX', 'SKY_LIMIT_SLOPE',
  'FLAGS', 'FLAGS2', 'PADDING2', 'N_FRAMES', 'PADDING',
];

function offsets(layout: CmfLayout): Offsets {
  let o = OFFSETS.get(layout);
  if (!o) {
    const found: Record<string, number> = {};
    for (const name of NAMES) found[name] = layout.offset(name);
    for (const f of layout.fields) {
      if (!(f.name in found)) throw new SimError('sim_internal', `the measurement model does not fill column ${f.name} of ${layout.name}`);
    }
    if (layout.offset('PSF_CORE') >= 0 !== layout.offset('PSF_FWHM_MAJ') >= 0) {
      throw new SimError('sim_internal', `${layout.name} has PSF_CORE without PSF_FWHM_MAJ/MIN or the reverse`);
    }
    o = found;
    OFFSETS.set(layout, o);
  }
  return o;
}
