// Conversions shared by the builders: header values, IDs, photometry and sky coordinates.
// Each rule is listed in this folder's README (IPP column → archive column → rule).
import { FitsError, type Header } from '../../fits/index.ts';
import { IppToPspsError } from '../errors.ts';

/** The AB zero point: a magnitude-0 source has 3631 Jy. */
export const AB_JANSKY = 3631;

/** The archive's filter IDs (Filter table): g r i z y = 1..5. */
export const FILTER_IDS: Readonly<Record<string, number>> = Object.freeze({ g: 1, r: 2, i: 3, z: 4, y: 5 });

/** The archive's survey IDs (Survey table), by the name the exposure's OBJECT starts with. */
export const SURVEYS: readonly { id: number; name: string; description: string }[] = Object.freeze([
  { id: 1, name: '3PI', description: 'The 3pi steradian survey: the whole sky north of dec -30, in five filters.' },
  { id: 2, name: 'MD', description: 'The Medium Deep survey: ten fields observed repeatedly for deep stacks and light curves.' },
]);

/** The survey ID of an OBJECT keyword (`MD.SIM`, `3PI.SIM` → its first word), else 0. */
export function surveyIdOf(object: string | undefined): number {
  if (!object) return 0;
  const word = object.trim().split(/[.\s_-]/)[0].toUpperCase();
  const hit = SURVEYS.find((s) => word === s.name || (s.name === 'MD' && /^MD\d*$/.test(word)));
  return hit ? hit.id : 0;
}

/** The archive ccdID of an OTA name `XYnm`: 10·n + m. */
export function ccdIdOf(chip: string): number | undefined {
  const m = /^XY(\d)(\d)$/i.exec(chip.trim());
  return m ? 10 * Number(m[1]) + Number(m[2]) : undefined;
}

/** The filter ID of a filter name (`g`, or `g.00000` as GPC1 writes it), undefined if unknown. */
export function filterIdOf(name: string | undefined): number | undefined {
  if (!name) return undefined;
  return FILTER_IDS[name.trim().charAt(0)];
}

/** `skycell.PPPP.SSS` → projection cell and skycell numbers. */
export function skycellIdsOf(name: string | undefined): { projectionId: number; skyCellId: number } | undefined {
  const m = /^skycell\.(\d+)\.(\d+)$/.exec(name?.trim() ?? '');
  return m ? { projectionId: Number(m[1]), skyCellId: Number(m[2]) } : undefined;
}

/** Where a header is, for messages. */
export interface HeaderPlace {
  readonly file: string;
  readonly hdu: string;
}

/** A numeric keyword; undefined when absent; a value that is not a number fails naming file, HDU and keyword. */
export function headerNumber(h: Header, keyword: string, at: HeaderPlace): number | undefined {
  try {
    const v = h.getNumber(keyword);
    return v === undefined || Number.isFinite(v) ? v : undefined;
  } catch (error) {
    if (error instanceof FitsError) {
      throw new IppToPspsError('batch_bad_keyword', `${at.file}: ${at.hdu}: keyword ${keyword} is ${JSON.stringify(h.get(keyword))}, not a number; the catalogue is damaged`, { cause: error });
    }
    throw error;
  }
}

/** A numeric keyword that must be present. */
export function requireNumber(h: Header, keyword: string, at: HeaderPlace): number {
  const v = headerNumber(h, keyword, at);
  if (v === undefined) throw new IppToPspsError('batch_missing_keyword', `${at.file}: ${at.hdu}: keyword ${keyword} is missing; the batch needs it`);
  return v;
}

/** A string keyword (numbers are given as text); undefined when absent. */
export function headerText(h: Header, keyword: string): string | undefined {
  const v = h.get(keyword);
  if (v === undefined || v === null) return undefined;
  return String(v).trim();
}

/**
 * Uniform numbers in [0, 1) from 64-bit IDs (randomDetID, randomID...): a hash of the ID,
 * so that the same row always gets the same number (reloads give the same archive).
 */
export function randomFromIds(ids: BigInt64Array, out: Float64Array): void {
  const w = new Uint32Array(ids.buffer, ids.byteOffset, ids.length * 2);
  for (let i = 0; i < ids.length; i++) {
    let h = Math.imul(w[2 * i] ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(w[2 * i + 1] + 0x632be5ab, 0xc2b2ae35);
    h ^= h >>> 16; h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15; h = Math.imul(h, 0x846ca68b);
    h ^= h >>> 16;
    let g = Math.imul(h ^ w[2 * i + 1], 0x27d4eb2f) ^ w[2 * i];
    g ^= g >>> 15; g = Math.imul(g, 0x2c1b3c6d);
    g ^= g >>> 12;
    // 53 random bits: 32 from h, 21 from g.
    out[i] = ((h >>> 0) * 2097152 + ((g >>> 11) & 0x1fffff)) / 9007199254740992;
  }
}

/** The linear part of a TAN WCS from CDi_j cards, as CDELTi and PCi_j (CDi_j = CDELTi · PCi_j). */
export function wcsOf(h: Header, at: HeaderPlace): {
  ctype1?: string; ctype2?: string; crval1?: number; crval2?: number; crpix1?: number; crpix2?: number;
  cdelt1?: number; cdelt2?: number; pc11?: number; pc12?: number; pc21?: number; pc22?: number; scale?: number;
} {
  const cd11 = headerNumber(h, 'CD1_1', at);
  const cd12 = headerNumber(h, 'CD1_2', at);
  const cd21 = headerNumber(h, 'CD2_1', at);
  const cd22 = headerNumber(h, 'CD2_2', at);
  const out: ReturnType<typeof wcsOf> = {
    ctype1: headerText(h, 'CTYPE1'), ctype2: headerText(h, 'CTYPE2'),
    crval1: headerNumber(h, 'CRVAL1', at), crval2: headerNumber(h, 'CRVAL2', at),
    crpix1: headerNumber(h, 'CRPIX1', at), crpix2: headerNumber(h, 'CRPIX2', at),
  };
  if (cd11 !== undefined && cd12 !== undefined && cd21 !== undefined && cd22 !== undefined) {
    const c1 = Math.hypot(cd11, cd12);
    const c2 = Math.hypot(cd21, cd22);
    if (c1 > 0 && c2 > 0) {
      Object.assign(out, { cdelt1: c1, cdelt2: c2, pc11: cd11 / c1, pc12: cd12 / c1, pc21: cd21 / c2, pc22: cd22 / c2 });
      out.scale = Math.sqrt(Math.abs(cd11 * cd22 - cd12 * cd21)) * 3600;
    }
  }
  return out;
}

const DEG = Math.PI / 180;
// ICRS → galactic rotation (rows: the galactic axes in equatorial coordinates).
const GAL = [
  [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
  [0.4941094278755837, -0.444829629960011, 0.746982244497219],
  [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669],
];
const OBLIQUITY = 23.4392794444 * DEG; // J2000 (IAU 2006), mean ecliptic

/**
 * Unit vectors and galactic and ecliptic coordinates of positions (degrees); rows whose
 * position is missing (NaN) give NaN (the columns' defaults).
 */
export function skyCoordinates(ra: ArrayLike<number>, dec: ArrayLike<number>, n: number): {
  cx: Float64Array; cy: Float64Array; cz: Float64Array; l: Float64Array; b: Float64Array; lambda: Float64Array; beta: Float64Array;
} {
  const cx = new Float64Array(n); const cy = new Float64Array(n); const cz = new Float64Array(n);
  const l = new Float64Array(n); const b = new Float64Array(n); const lambda = new Float64Array(n); const beta = new Float64Array(n);
  const ce = Math.cos(OBLIQUITY);
  const se = Math.sin(OBLIQUITY);
  for (let i = 0; i < n; i++) {
    const a = ra[i] * DEG;
    const d = dec[i] * DEG;
    const x = Math.cos(d) * Math.cos(a);
    const y = Math.cos(d) * Math.sin(a);
    const z = Math.sin(d);
    cx[i] = x; cy[i] = y; cz[i] = z;
    const gx = GAL[0][0] * x + GAL[0][1] * y + GAL[0][2] * z;
    const gy = GAL[1][0] * x + GAL[1][1] * y + GAL[1][2] * z;
    const gz = GAL[2][0] * x + GAL[2][1] * y + GAL[2][2] * z;
    let gl = Math.atan2(gy, gx) / DEG;
    if (gl < 0) gl += 360;
    l[i] = gl;
    b[i] = Math.asin(Math.max(-1, Math.min(1, gz))) / DEG;
    const ey = ce * y + se * z;
    const ez = -se * y + ce * z;
    let el = Math.atan2(ey, x) / DEG;
    if (el < 0) el += 360;
    lambda[i] = el;
    beta[i] = Math.asin(Math.max(-1, Math.min(1, ez))) / DEG;
  }
  return { cx, cy, cz, l, b, lambda, beta };
}
