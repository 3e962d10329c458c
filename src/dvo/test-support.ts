// Helpers for the DVO tests and benchmarks: small smf-shaped catalogues written with the fits
// writer (only the columns addstar reads), from a known list of stars, so that every
// detection's true star is known.
import { mulberry32 } from '../common/index.ts';
import { Header, writeFits, type FitsHduInput } from '../fits/index.ts';
import { columnInfo, memoryTable, type ColumnBatch } from '../table/index.ts';

/** Stars with known positions and magnitudes. */
export interface Stars {
  readonly ra: Float64Array;
  readonly dec: Float64Array;
  readonly mag: Float64Array;
}

/** A seeded uniform generator on [0, 1). */
export function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}

/** A standard normal deviate from a uniform source. */
export function gauss(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** `n` stars in a box, at least `minSep` arcsec apart (isolated) unless minSep is 0. */
export function makeStars(n: number, box: { ra: number; dec: number; size: number }, seed: number, minSep = 0): Stars {
  const u = uniform(seed);
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  const mag = new Float64Array(n);
  const cell = minSep / 3600;
  const taken = new Set<string>();
  for (let i = 0; i < n;) {
    const d = box.dec + (u() - 0.5) * box.size;
    const a = box.ra + ((u() - 0.5) * box.size) / Math.cos(box.dec * Math.PI / 180);
    if (cell > 0) {
      const x = Math.floor(a * Math.cos(box.dec * Math.PI / 180) / cell);
      const y = Math.floor(d / cell);
      let clash = false;
      for (let dx = -1; dx <= 1 && !clash; dx++) for (let dy = -1; dy <= 1 && !clash; dy++) clash = taken.has(`${x + dx},${y + dy}`);
      if (clash) continue;
      taken.add(`${x},${y}`);
    }
    ra[i] = (a + 360) % 360;
    dec[i] = d;
    mag[i] = 16 + 6 * u();
    i++;
  }
  return { ra, dec, mag };
}

/** Options of {@link writeSmf}. */
export interface SmfOptions {
  readonly expId: number;
  readonly filter?: string;
  readonly mjd?: number;
  /** Chips, each taking the stars of one RA slice of the box. */
  readonly chips?: readonly string[];
  /** Position noise, arcsec (default 0.05). */
  readonly noise?: number;
  readonly seed?: number;
  /** Give this IMAGEID to chip k instead of 100·expId + OTA. */
  readonly imageIds?: readonly number[];
  /** Leave IMAGEID out of the headers. */
  readonly noImageId?: boolean;
  /** Set RA_PSF of this row of the first chip to NaN. */
  readonly nanRow?: number;
  readonly expName?: string;
}

/** What was written: per chip its IMAGEID and the star of each row. */
export interface SmfTruth {
  readonly chips: { name: string; imageId: number; star: Int32Array }[];
}

/** Writes an smf-shaped file of the stars (those in the chips' slices), with noise. */
export async function writeSmf(path: string, stars: Stars, options: SmfOptions): Promise<SmfTruth> {
  const chips = options.chips ?? ['XY33', 'XY34'];
  const u = uniform(options.seed ?? options.expId * 7919 + 1);
  const noise = (options.noise ?? 0.05) / 3600;
  const filter = options.filter ?? 'r.00000';
  const mjd = options.mjd ?? 55000 + options.expId * 0.01;
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of stars.ra) { lo = Math.min(lo, a); hi = Math.max(hi, a); }
  const width = (hi - lo) / chips.length + 1e-9;
  const primary = new Header()
    .set('EXPNAME', options.expName ?? `o${options.expId}o`)
    .set('MJD-OBS', mjd)
    .set('EXPTIME', 30)
    .set('AIRMASS', 1.1)
    .set('ZPT_OBS', 24.5)
    .set('SOURCEID', 7)
    .set('FPA.FILTER', filter)
    .set('NEXTEND', 2 * chips.length);
  const hdus: FitsHduInput[] = [];
  const truth: SmfTruth = { chips: [] };
  const columns = [
    columnInfo('IPP_IDET', 'uint32'), columnInfo('X_PSF', 'float32'), columnInfo('Y_PSF', 'float32'),
    columnInfo('X_PSF_SIG', 'float32'), columnInfo('Y_PSF_SIG', 'float32'), columnInfo('PLTSCALE', 'float32'),
    columnInfo('PSF_INST_MAG', 'float32'), columnInfo('PSF_INST_MAG_SIG', 'float32'), columnInfo('AP_MAG', 'float32'),
    columnInfo('CAL_PSF_MAG', 'float32'), columnInfo('RA_PSF', 'float64'), columnInfo('DEC_PSF', 'float64'),
    columnInfo('PSF_QF', 'float32'), columnInfo('FLAGS', 'int32'),
  ];
  chips.forEach((name, k) => {
    const rows: number[] = [];
    for (let s = 0; s < stars.ra.length; s++) {
      const slice = Math.min(chips.length - 1, Math.floor((stars.ra[s] - lo) / width));
      if (slice === k) rows.push(s);
    }
    const n = rows.length;
    const ota = Number(name.slice(2));
    const imageId = options.imageIds?.[k] ?? 100 * options.expId + ota;
    const star = Int32Array.from(rows);
    truth.chips.push({ name, imageId, star });
    const idet = new Uint32Array(n);
    const f32 = () => new Float32Array(n);
    const [x, y, xs, ys, ps, mag, magErr, ap, cal, qf] = Array.from({ length: 10 }, f32);
    const ra = new Float64Array(n);
    const dec = new Float64Array(n);
    const flags = new Int32Array(n);
    rows.forEach((s, i) => {
      idet[i] = i;
      const cosd = Math.cos(stars.dec[s] * Math.PI / 180);
      ra[i] = (stars.ra[s] + (gauss(u) * noise) / cosd + 360) % 360;
      dec[i] = stars.dec[s] + gauss(u) * noise;
      x[i] = 100 + u() * 4000; y[i] = 100 + u() * 4000; xs[i] = 0.2; ys[i] = 0.2; ps[i] = 0.258;
      const e = 0.01 + 0.02 * u();
      const m = stars.mag[s] + gauss(u) * e;
      mag[i] = m - 24.5 - 2.5 * Math.log10(30);
      magErr[i] = e;
      ap[i] = mag[i] + 0.02;
      cal[i] = m;
      qf[i] = 0.99;
    });
    if (k === 0 && options.nanRow !== undefined && options.nanRow < n) ra[options.nanRow] = NaN;
    const batch: ColumnBatch = { rowCount: n, columns: [idet, x, y, xs, ys, ps, mag, magErr, ap, cal, ra, dec, qf, flags].map((values) => ({ values })) };
    const chipHeader = new Header().set('FPA.FILTER', filter).set('MJD-OBS', mjd);
    if (!options.noImageId) chipHeader.set('IMAGEID', imageId);
    hdus.push({ table: memoryTable([], [{ rowCount: 0, columns: [] }], { name: `${name}.hdr` }), header: chipHeader });
    hdus.push({ table: memoryTable(columns, [batch], { name: `${name}.psf` }), header: new Header().set('EXTTYPE', 'PS1_V5') });
  });
  await writeFits(path, hdus, { primaryHeader: primary });
  return truth;
}
