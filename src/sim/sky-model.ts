// The true sky: stars and galaxies drawn from power-law magnitude counts, generated per
// small tile from a seed derived from (survey seed, tile, magnitude slice, type), so any
// exposure can regenerate exactly the objects it covers without holding the whole sky.
//
// Counts per square degree per magnitude in r: stars 350 × 10^(0.30 (r − 20)) at the
// galactic poles, times 1 / sin|b| towards the plane (capped at 10, |b| < 5.7°); galaxies
// 1050 × 10^(0.45 (r − 20)) to r = 21 and a shallower 0.32 per magnitude fainter (the
// observed counts flatten), times 1.5 inside the medium-deep patch. That gives about 2,000
// stars and 7,000 galaxies per square degree to r = 22, near the observed counts at high
// latitude. Colours follow a simple stellar locus (one temperature-like parameter) and
// a red-sequence-like galaxy colour; galaxies have a half-light radius, axis ratio and angle.
import { COARSE, Random, hashSeed } from './random.ts';

/** Filters of the survey, in the order the per-object magnitudes are stored. */
export const FILTERS = ['g', 'r', 'i', 'z', 'y', 'w'] as const;
/** One of {@link FILTERS}. */
export type FilterName = (typeof FILTERS)[number];

/** Object types: 0 a star, 1 a galaxy (the TYPE column of the truth table). */
export const STAR = 0;
/** See {@link STAR}. */
export const GALAXY = 1;

/** Side of a sky tile, degrees (tiles are 0.25° bands in declination, split in RA). */
export const TILE_DEG = 0.25;
const BANDS = Math.round(180 / TILE_DEG);
/** Brightest magnitude generated (r) and the width of the magnitude slices. */
export const MAG_BRIGHT = 12;
const SLICE = 0.5;
/** Faintest magnitude the sky can be generated to (r). */
export const MAG_FAINTEST = 26;
// Object IDs: tile × 2^24 + (slice × 2 + type) × 2^16 + index, so that an object's ID does
// not depend on how deep its tile was generated or in which order tiles were asked for.
const GROUP_SHIFT = 65536;
const TILE_SHIFT = 16777216;
/** Most objects of one type in one magnitude slice of one tile. */
export const MAX_PER_GROUP = 65535;

/** Largest r − m(filter) any object has, per type (stars, galaxies) and filter g r i z y w. */
export const MAX_R_MINUS: readonly (readonly number[])[] = [
  [-0.25, 0, 1.15, 1.57, 1.78, 0.07],
  [-0.2, 0, 0.9, 1.5, 1.9, 0.15],
];

const DEG = Math.PI / 180;
const NGP_RA = 192.85948 * DEG;
const NGP_DEC = 27.12825 * DEG;
const STAR_A = 350;
const STAR_SLOPE = 0.3;
const GAL_A = 1050;
const GAL_SLOPE = 0.45;
const GAL_BREAK = 21;
const GAL_FAINT_SLOPE = 0.32;

/**
 * The counts law of a type on one magnitude slice (slices never straddle the galaxies'
 * break at r = 21): dN/dm = a × 10^(slope × (m − 20)) per square degree at the poles.
 */
function countsLaw(type: number, m0: number): { a: number; slope: number } {
  if (type === STAR) return { a: STAR_A, slope: STAR_SLOPE };
  if (m0 < GAL_BREAK) return { a: GAL_A, slope: GAL_SLOPE };
  // Continuous at the break: a' 10^(0.32 (21 − 20)) = a 10^(0.45 (21 − 20)).
  return { a: GAL_A * 10 ** ((GAL_SLOPE - GAL_FAINT_SLOPE) * (GAL_BREAK - 20)), slope: GAL_FAINT_SLOPE };
}

/** The sine of the galactic latitude of a position (degrees), from the J2000 north galactic pole. */
export function sinGalacticLatitude(ra: number, dec: number): number {
  const d = dec * DEG;
  return Math.sin(d) * Math.sin(NGP_DEC) + Math.cos(d) * Math.cos(NGP_DEC) * Math.cos(ra * DEG - NGP_RA);
}

/** A circle on the sky (degrees). */
export interface SkyCircle {
  readonly ra: number;
  readonly dec: number;
  readonly radius: number;
}

/** The objects of one tile, column by column. */
export interface SkyTile {
  readonly id: number;
  readonly count: number;
  /** The group (slice × 2 + type) of each object: its ID is {@link objectId}. */
  readonly group: Uint8Array;
  readonly ra: Float64Array;
  readonly dec: Float64Array;
  readonly sinRa: Float64Array;
  readonly cosRa: Float64Array;
  readonly sinDec: Float64Array;
  readonly type: Uint8Array;
  /** Six magnitudes per object, in {@link FILTERS} order. */
  readonly mag: Float32Array;
  /** Half-light radius (arcsec; 0 for stars), axis ratio and position angle (degrees). */
  readonly reff: Float32Array;
  readonly axisRatio: Float32Array;
  readonly angle: Float32Array;
  /** Faintest r magnitude generated, per type. */
  readonly limits: readonly [number, number];
  /** Where each group's objects start in the arrays (−1 for a group without objects), and how many. */
  readonly groupStart: Int32Array;
  readonly groupCount: Int32Array;
  /** 1 once the object has been detected (and written to the truth table); kept across regenerations. */
  hits: Uint8Array;
}

// Tiles: band j covers dec [-90 + 0.25 j, -90 + 0.25 (j + 1)], split in RA into
// max(1, floor(360 cos(centre) / 0.25)) tiles numbered from RA 0.
const BAND_COUNT = new Int32Array(BANDS);
const BAND_FIRST = new Int32Array(BANDS + 1);
for (let j = 0; j < BANDS; j++) {
  const centre = -90 + (j + 0.5) * TILE_DEG;
  BAND_COUNT[j] = Math.max(1, Math.floor((360 * Math.cos(centre * DEG)) / TILE_DEG));
  BAND_FIRST[j + 1] = BAND_FIRST[j] + BAND_COUNT[j];
}
/** Number of tiles over the whole sky. */
export const TILE_COUNT = BAND_FIRST[BANDS];

/** The box of a tile: RA and dec bounds (degrees). */
export function tileBounds(id: number): { raLo: number; raHi: number; decLo: number; decHi: number } {
  let lo = 0;
  let hi = BANDS - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (BAND_FIRST[mid] <= id) lo = mid;
    else hi = mid - 1;
  }
  const i = id - BAND_FIRST[lo];
  const w = 360 / BAND_COUNT[lo];
  return { raLo: i * w, raHi: (i + 1) * w, decLo: -90 + lo * TILE_DEG, decHi: -90 + (lo + 1) * TILE_DEG };
}

/** The tile holding a position. */
export function tileAt(ra: number, dec: number): number {
  const j = Math.min(BANDS - 1, Math.max(0, Math.floor((dec + 90) / TILE_DEG)));
  const r = ((ra % 360) + 360) % 360;
  return BAND_FIRST[j] + Math.min(BAND_COUNT[j] - 1, Math.floor(r / (360 / BAND_COUNT[j])));
}

/** IDs of the tiles that may hold points within `radius` degrees of (ra, dec), ascending. */
export function tilesInCircle(ra: number, dec: number, radius: number): number[] {
  const out: number[] = [];
  const jLo = Math.max(0, Math.floor((dec - radius + 90) / TILE_DEG));
  const jHi = Math.min(BANDS - 1, Math.floor((dec + radius + 90) / TILE_DEG));
  for (let j = jLo; j <= jHi; j++) {
    const n = BAND_COUNT[j];
    const decLo = -90 + j * TILE_DEG;
    const far = Math.max(Math.abs(decLo), Math.abs(decLo + TILE_DEG));
    const cosFar = Math.cos(Math.min(90, far) * DEG);
    const half = cosFar > 1e-9 ? Math.asin(Math.min(1, Math.sin(radius * DEG) / cosFar)) / DEG : 180;
    if (half >= 180 - 1e-9 || Math.abs(dec) + radius >= 90) {
      for (let i = 0; i < n; i++) out.push(BAND_FIRST[j] + i);
      continue;
    }
    const w = 360 / n;
    const iLo = Math.floor((ra - half) / w);
    const iHi = Math.floor((ra + half) / w);
    if (iHi - iLo + 1 >= n) {
      for (let i = 0; i < n; i++) out.push(BAND_FIRST[j] + i);
      continue;
    }
    for (let i = iLo; i <= iHi; i++) out.push(BAND_FIRST[j] + (((i % n) + n) % n));
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/** What the sky needs to know beyond the seed. */
export interface SkyModelOptions {
  readonly seed: number;
  /** Scales every count (1 = the counts above). */
  readonly density: number;
  /** The medium-deep patch, where galaxies are 1.5 times denser. */
  readonly mdPatch: SkyCircle;
  /** Faintest r magnitude to generate per type for a tile (must depend on the tile only). */
  readonly limitsFor: (tile: number) => readonly [number, number];
  /** Bytes of objects kept in memory over all cached tiles (default 160 MiB). */
  readonly cacheBytes?: number;
}

/** Decodes an object ID into its tile, group (slice × 2 + type) and index. */
export function splitObjectId(id: number): { tile: number; group: number; index: number } {
  const tile = Math.floor(id / TILE_SHIFT);
  const rest = id - tile * TILE_SHIFT;
  return { tile, group: Math.floor(rest / GROUP_SHIFT), index: rest % GROUP_SHIFT };
}

/** Groups (slice × 2 + type) a tile can have. */
export const GROUPS = 128;

/**
 * The sky: tiles on demand, cached up to a budget of objects (least recently used tiles are
 * dropped first; a dropped tile is regenerated identically when asked for again).
 */
export class SkyModel {
  readonly options: SkyModelOptions;
  private readonly cache = new Map<number, SkyTile>();
  private readonly budget: number;
  private held = 0;
  /** Exposure detections per tile, aligned with the tile's objects at its exposure depth. */
  readonly hits = new Map<number, Uint8Array>();
  /** Objects detected only in stacks, fainter than their tile's exposure depth. */
  private readonly stackOnly = new Set<number>();
  /** Tiles and objects generated so far (cache misses included), for tests and the bench. */
  generated = 0;
  generatedObjects = 0;
  /**
   * Buffers of dropped tiles: `retired` may still be read (by the exposure being written),
   * `free` may be reused for new tiles. Reuse spares allocating (and the collector freeing)
   * a fresh, zeroed buffer for every tile generated once the cache is full.
   */
  private retired: ArrayBuffer[] = [];
  private free: ArrayBuffer[] = [];

  constructor(options: SkyModelOptions) {
    this.options = options;
    this.budget = Math.floor((options.cacheBytes ?? 160 * 1024 * 1024) / BYTES_PER_OBJECT);
  }

  /** A tile at the depth `limitsFor` gives it, from the cache or generated. */
  tile(id: number): SkyTile {
    const hit = this.cache.get(id);
    if (hit) {
      this.cache.delete(id);
      this.cache.set(id, hit);
      return hit;
    }
    const tile = generateTile(this.options, id, this.options.limitsFor(id), this.hits.get(id), (bytes) => this.reuse(bytes));
    this.generated++;
    this.generatedObjects += tile.count;
    this.hits.set(id, tile.hits);
    this.cache.set(id, tile);
    this.held += heldBy(tile);
    while (this.held > this.budget && this.cache.size > 1) {
      const oldest = this.cache.keys().next().value as number;
      const dropped = this.cache.get(oldest)!;
      this.held -= heldBy(dropped);
      this.cache.delete(oldest);
      this.retired.push(dropped.ra.buffer as ArrayBuffer);
    }
    return tile;
  }

  /**
   * Drops these tiles from the cache (those cached): the writer knows no exposure to come
   * needs them, so the room goes to tiles that will be read again rather than to the least
   * recently used. Their buffers are reused after the next {@link recycle}.
   */
  drop(ids: Iterable<number>): void {
    for (const id of ids) {
      const tile = this.cache.get(id);
      if (!tile) continue;
      this.cache.delete(id);
      this.held -= heldBy(tile);
      this.retired.push(tile.ra.buffer as ArrayBuffer);
    }
  }

  /**
   * Lets the buffers of tiles dropped so far be reused: call it when no tile asked for
   * before is read any more (a writer, before it gathers the next exposure).
   */
  recycle(): void {
    this.free.push(...this.retired);
    this.retired = [];
    // Kept few: buffers that fit no new tile are dropped, oldest first.
    if (this.free.length > MAX_FREE) this.free.splice(0, this.free.length - MAX_FREE);
  }

  /** A free buffer of at least `bytes` (and not much more), taken from the free list. */
  private reuse(bytes: number): ArrayBuffer | undefined {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const n = this.free[i].byteLength;
      if (n >= bytes && n <= bytes * 1.25 + 4096 && (best < 0 || n < this.free[best].byteLength)) best = i;
    }
    if (best < 0) return undefined;
    const [buffer] = this.free.splice(best, 1);
    return buffer;
  }

  /** Marks an object of an exposure-depth tile detected; true the first time. */
  firstDetection(tile: SkyTile, k: number): boolean {
    if (tile.hits[k] !== 0) return false;
    tile.hits[k] = 1;
    return true;
  }

  /**
   * Marks an object of a deeper (stack) tile detected; true the first time, whether the
   * exposures or the stacks saw it first. Objects within the exposure depth share the
   * exposures' record; fainter ones have their own.
   */
  firstStackDetection(deep: SkyTile, k: number): boolean {
    const objId = objectId(deep, k);
    const { group, index } = splitObjectId(objId);
    const tile = this.tile(deep.id);
    const start = tile.groupStart[group];
    if (start >= 0 && index < tile.groupCount[group]) return this.firstDetection(tile, start + index);
    if (this.stackOnly.has(objId)) return false;
    this.stackOnly.add(objId);
    return true;
  }

  /** A tile generated to other depths (for stacks, deeper than the exposures), not cached. */
  tileTo(id: number, limits: readonly [number, number]): SkyTile {
    const tile = generateTile(this.options, id, limits);
    this.generated++;
    this.generatedObjects += tile.count;
    return tile;
  }
}

const MAX_FREE = 256;

/** Objects' worth of memory a cached tile holds (its buffer may be larger than its objects need). */
function heldBy(tile: SkyTile): number {
  return tile.ra.buffer.byteLength / BYTES_PER_OBJECT;
}

/** Galaxy counts are raised by this factor inside the medium-deep patch. */
export const MD_GALAXY_FACTOR = 1.5;

/** Mean objects per square degree of a type between two r magnitudes at a position. */
export function meanDensity(options: Pick<SkyModelOptions, 'density' | 'mdPatch'>, type: number, m0: number, m1: number, ra: number, dec: number): number {
  let integral = 0;
  for (let lo = m0; lo < m1 - 1e-9;) {
    const hi = type !== STAR && lo < GAL_BREAK && m1 > GAL_BREAK ? GAL_BREAK : m1;
    const { a, slope } = countsLaw(type, lo);
    integral += (a * (10 ** (slope * (hi - 20)) - 10 ** (slope * (lo - 20)))) / (slope * Math.LN10);
    lo = hi;
  }
  let factor = options.density;
  if (type === STAR) {
    factor *= Math.min(10, 1 / Math.max(Math.abs(sinGalacticLatitude(ra, dec)), 1e-9));
  } else if (insideCircle(options.mdPatch, ra, dec)) {
    factor *= MD_GALAXY_FACTOR;
  }
  return integral * factor;
}

function insideCircle(c: SkyCircle, ra: number, dec: number): boolean {
  const dra = Math.abs(((ra - c.ra + 540) % 360) - 180) * Math.cos(dec * DEG);
  const ddec = dec - c.dec;
  return dra * dra + ddec * ddec <= c.radius * c.radius;
}

/**
 * Generates a tile's objects to the given r limits per type (deterministic in seed, tile and
 * limits). `hits`, the tile's record of detections if it has one already; `reuse`, a source
 * of used buffers to hold the objects (any content: every column is written).
 */
export function generateTile(
  options: Pick<SkyModelOptions, 'seed' | 'density' | 'mdPatch'>, id: number, limits: readonly [number, number],
  hits?: Uint8Array, reuse?: (bytes: number) => ArrayBuffer | undefined,
): SkyTile {
  const b = tileBounds(id);
  const sinLo = Math.sin(b.decLo * DEG);
  const sinHi = Math.sin(b.decHi * DEG);
  const area = (b.raHi - b.raLo) * (sinHi - sinLo) / DEG;
  const raC = (b.raLo + b.raHi) / 2;
  const decC = (b.decLo + b.decHi) / 2;
  // Pass 1: the count of every (slice, type) group, each from its own seed.
  const groups: TileGroup[] = [];
  let total = 0;
  for (let type = 0; type < 2; type++) {
    const slices = Math.ceil((Math.min(limits[type], MAG_FAINTEST) - MAG_BRIGHT) / SLICE - 1e-9);
    for (let s = 0; s < slices; s++) {
      const m0 = MAG_BRIGHT + s * SLICE;
      const m1 = m0 + SLICE;
      const mean = meanDensity(options, type, m0, m1, raC, decC) * area;
      const n = Math.min(MAX_PER_GROUP, new Random(hashSeed(options.seed, id, s * 2 + type, 0)).poisson(mean));
      if (n > 0) groups.push({ group: s * 2 + type, type, m0, m1, n });
      total += n;
    }
  }
  const groupStart = new Int32Array(GROUPS).fill(-1);
  const groupCount = new Int32Array(GROUPS);
  // One allocation for every column (many small typed arrays cost more than the objects).
  const bytes = total * BYTES_PER_OBJECT;
  const buffer = (bytes > 0 ? reuse?.(bytes) : undefined) ?? new ArrayBuffer(bytes);
  let at = 0;
  const f64 = (): Float64Array => { const a = new Float64Array(buffer, at, total); at += 8 * total; return a; };
  const f32 = (n: number): Float32Array => { const a = new Float32Array(buffer, at, n); at += 4 * n; return a; };
  const u8 = (): Uint8Array => { const a = new Uint8Array(buffer, at, total); at += total; return a; };
  const ra = f64();
  const dec = f64();
  const sinRa = f64();
  const cosRa = f64();
  const sinDec = f64();
  const mag = f32(total * 6);
  const reff = f32(total);
  const axisRatio = f32(total);
  const angle = f32(total);
  const type = u8();
  const group = u8();
  // Not in the tile's buffer: the record of detections outlives the tile.
  const tile: SkyTile = {
    id, count: total, limits: [limits[0], limits[1]], groupStart, groupCount, hits: hits ?? new Uint8Array(total),
    group, ra, dec, sinRa, cosRa, sinDec, type, mag, reff, axisRatio, angle,
  };
  // Positions without trigonometric calls: offsets from the tile centre are small (the band
  // is 0.25° high, and a tile 0.25/cos δ wide), so sines and cosines of the offsets come from
  // their Taylor series, exact to double precision; wide polar tiles use Math.sin/cos.
  // Declinations are uniform in δ, thinned by cos δ (uniform on the sphere).
  const raW = (b.raHi - b.raLo) * DEG;
  const decH = (b.decHi - b.decLo) * DEG;
  const sinRaC = Math.sin(raC * DEG);
  const cosRaC = Math.cos(raC * DEG);
  const sinDecC = Math.sin(decC * DEG);
  const cosDecC = Math.cos(decC * DEG);
  const cosMax = Math.max(Math.cos(b.decLo * DEG), Math.cos(b.decHi * DEG), b.decLo < 0 && b.decHi > 0 ? 1 : 0);
  const frame: TileFrame = { raC, decC, raW, decH, sinRaC, cosRaC, sinDecC, cosDecC, cosMax, smallRa: raW / 2 <= 0.02 };
  let k = 0;
  for (const g of groups) k = fillGroup(options.seed, id, tile, g, k, frame);
  return tile;
}

/** Where a tile lies: what placing its objects needs. */
interface TileFrame {
  readonly raC: number;
  readonly decC: number;
  readonly raW: number;
  readonly decH: number;
  readonly sinRaC: number;
  readonly cosRaC: number;
  readonly sinDecC: number;
  readonly cosDecC: number;
  readonly cosMax: number;
  readonly smallRa: boolean;
}

/** One (slice, type) group of a tile's objects. */
interface TileGroup {
  readonly group: number;
  readonly type: number;
  readonly m0: number;
  readonly m1: number;
  readonly n: number;
}

// One call per group rather than a loop inside generateTile: there the loop ran in
// on-stack-replaced code, left at every exit from an inner loop, boxing its doubles.
/** Generates a group's objects from index `k` of the tile; returns the index after them. */
function fillGroup(seed: number, id: number, tile: SkyTile, g: TileGroup, k: number, frame: TileFrame): number {
  const { groupStart, groupCount, group, ra, dec, sinRa, cosRa, sinDec, type, mag, reff, axisRatio, angle } = tile;
  const { raC, decC, raW, decH, sinRaC, cosRaC, sinDecC, cosDecC, cosMax, smallRa } = frame;
  groupStart[g.group] = k;
  groupCount[g.group] = g.n;
  const rng = new Random(hashSeed(seed, id, g.group, 1));
  // Each object's uniforms and coarse normals come in fixed slots of bulk draws (cheaper
  // than one call each); a rejected declination draws again from `extra`.
  const U = uniforms(g.n * U_SLOTS);
  rng.fillWords(U, g.n * U_SLOTS);
  const C = coarse(g.n * C_SLOTS);
  rng.fillWords(C.words, (g.n * C_SLOTS + 3) >>> 2);
  const cb = C.bytes;
  let extra: Random | undefined;
  const { slope } = countsLaw(g.type, g.m0);
  const magTable = MAG_TABLES.get(slope)!;
  // Galaxy sizes: 0.7" × 10^(−0.1 (r − 20)) at the slice's bright end, times the rest below.
  const reffBase = 0.7 * Math.exp(-0.2302585 * (g.m0 - 20));
  for (let i = 0; i < g.n; i++, k++) {
    const u = i * U_SLOTS;
    const cz = i * C_SLOTS;
    group[k] = g.group;
    const da = (U[u] * U32 - 0.5) * raW;
    let sa: number;
    let ca: number;
    if (smallRa) {
      const x2 = da * da;
      sa = da * (1 - (x2 / 6) * (1 - (x2 / 20) * (1 - x2 / 42)));
      ca = 1 - (x2 / 2) * (1 - (x2 / 12) * (1 - x2 / 30));
    } else {
      sa = Math.sin(da);
      ca = Math.cos(da);
    }
    ra[k] = raC + da / DEG;
    sinRa[k] = sinRaC * ca + cosRaC * sa;
    cosRa[k] = cosRaC * ca - sinRaC * sa;
    let dd = (U[u + 1] * U32 - 0.5) * decH;
    let accept = U[u + 2] * U32;
    let sd: number;
    for (;;) {
      const x2 = dd * dd;
      const sx = dd * (1 - (x2 / 6) * (1 - (x2 / 20) * (1 - x2 / 42)));
      const cx = 1 - (x2 / 2) * (1 - (x2 / 12) * (1 - x2 / 30));
      sd = sinDecC * cx + cosDecC * sx;
      const cd = cosDecC * cx - sinDecC * sx;
      if (accept * cosMax <= cd) break;
      extra ??= new Random(hashSeed(seed, id, g.group, 2));
      dd = (extra.uniform() - 0.5) * decH;
      accept = extra.uniform();
    }
    dec[k] = decC + dd / DEG;
    sinDec[k] = sd;
    type[k] = g.type;
    // The magnitude within the slice: the power law's inverse CDF, tabulated.
    const um = U[u + 3] * U32 * MAG_TABLE_STEPS;
    const b = Math.floor(um);
    const dm = magTable[b] + (um - b) * (magTable[b + 1] - magTable[b]);
    const r = g.m0 + dm;
    if (g.type === STAR) {
      starColours(U[u + 4] * U32, U[u + 5] * U32, COARSE[cb[cz]], r, mag, k * 6);
      reff[k] = 0;
      axisRatio[k] = 0;
      angle[k] = 0;
    } else {
      galaxyColours(COARSE[cb[cz]], COARSE[cb[cz + 1]], COARSE[cb[cz + 2]], COARSE[cb[cz + 3]], r, mag, k * 6);
      const x = -0.2302585 * dm;
      const size = reffBase * (1 + x * (1 + (x / 2) * (1 + (x / 3) * (1 + x / 4)))) * SIZE_SCATTER[cb[cz + 4]];
      reff[k] = size < 0.2 ? 0.2 : size > 6 ? 6 : size;
      axisRatio[k] = 0.25 + 0.75 * (U[u + 4] * U32);
      angle[k] = 180 * (U[u + 5] * U32);
    }
  }
  return k;
}

/** The ID of object `k` of a tile: tile × 2^24 + group × 2^16 + index in its group. */
export function objectId(tile: SkyTile, k: number): number {
  const g = tile.group[k];
  return tile.id * TILE_SHIFT + g * GROUP_SHIFT + (k - tile.groupStart[g]);
}

/** Bytes one generated object takes in memory. */
export const BYTES_PER_OBJECT = 5 * 8 + 6 * 4 + 3 * 4 + 2;

// The inverse CDF of a power law 10^(slope m) over a 0.5-mag slice, as offsets from the
// slice's bright end at 1024 evenly spaced probabilities (linear interpolation between them
// is good to 1e-7 mag).
const MAG_TABLE_STEPS = 1024;
const MAG_TABLES = new Map<number, Float64Array>();
for (const slope of [STAR_SLOPE, GAL_SLOPE, GAL_FAINT_SLOPE]) {
  const t = new Float64Array(MAG_TABLE_STEPS + 2);
  const a = 10 ** (slope * SLICE) - 1;
  for (let i = 0; i <= MAG_TABLE_STEPS; i++) t[i] = Math.log10(1 + (a * i) / MAG_TABLE_STEPS) / slope;
  t[MAG_TABLE_STEPS + 1] = t[MAG_TABLE_STEPS];
  MAG_TABLES.set(slope, t);
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

// A stellar locus from one parameter t (0 blue, 1 red): g−r saturates near 1.4 while r−i
// keeps growing for M dwarfs. 40% of stars are blue halo stars, 60% disk stars skewed red.
function starColours(pop: number, red01: number, z: number, r: number, mag: Float32Array, at: number): void {
  const t = pop < 0.4 ? clamp(0.15 + 0.07 * z, 0, 1) : Math.sqrt(red01);
  const red = Math.max(0, t - 0.75);
  const gr = 0.25 + 1.25 * Math.min(t, 0.95);
  const ri = 0.05 + 0.35 * t + 3.0 * red;
  const iz = 0.02 + 0.2 * t + 0.8 * red;
  const zy = 0.01 + 0.1 * t + 0.4 * red;
  mag[at] = r + gr;
  mag[at + 1] = r;
  mag[at + 2] = r - ri;
  mag[at + 3] = r - ri - iz;
  mag[at + 4] = r - ri - iz - zy;
  mag[at + 5] = r - 0.1 + 0.15 * gr;
}

function galaxyColours(z1: number, z2: number, z3: number, z4: number, r: number, mag: Float32Array, at: number): void {
  const gr = clamp(0.75 + 0.25 * z1, 0.2, 1.6);
  const ri = clamp(0.25 + 0.35 * gr + 0.06 * z2, 0, 0.9);
  const iz = clamp(0.1 + 0.2 * gr + 0.05 * z3, -0.1, 0.6);
  const zy = clamp(0.05 + 0.1 * gr + 0.05 * z4, -0.1, 0.4);
  mag[at] = r + gr;
  mag[at + 1] = r;
  mag[at + 2] = r - ri;
  mag[at + 3] = r - ri - iz;
  mag[at + 4] = r - ri - iz - zy;
  mag[at + 5] = r - 0.15 + 0.1 * gr;
}

// Slots of bulk draws per object: uniforms (RA, Dec, Dec acceptance, magnitude, then
// population and red colour for stars, axis ratio and angle for galaxies) and coarse
// normals (star colour scatter; galaxy colours and size scatter).
const U_SLOTS = 6;
const C_SLOTS = 5;
// The galaxy size scatter, exp(0.3 z) for each coarse normal z (the same doubles as calling Math.exp).
const SIZE_SCATTER = Float64Array.from(COARSE, (z) => Math.exp(0.3 * z));
// Both stay random words: a uniform is a word times 2^-32, a coarse normal COARSE[byte].
const U32 = 2.3283064365386963e-10;
let U_SCRATCH = new Uint32Array(0);
let C_SCRATCH = { words: new Uint32Array(0), bytes: new Uint8Array(0) };
function uniforms(n: number): Uint32Array {
  if (U_SCRATCH.length < n) U_SCRATCH = new Uint32Array(Math.max(n, 2 * U_SCRATCH.length));
  return U_SCRATCH;
}
function coarse(n: number): { words: Uint32Array; bytes: Uint8Array } {
  if (C_SCRATCH.bytes.length < n) {
    const words = new Uint32Array((Math.max(n, 2 * C_SCRATCH.bytes.length) + 3) >>> 2);
    C_SCRATCH = { words, bytes: new Uint8Array(words.buffer) };
  }
  return C_SCRATCH;
}
