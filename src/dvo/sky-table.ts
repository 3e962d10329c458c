// The sky partition (paper, "Sky Partition"): level 0 is the whole sky; level 1 cuts it into
// 24 declination bands of 7.5°; level 2 cuts each band in RA into chunks whose spacing
// follows the density of objects; level 3 cuts each chunk into 4 to 8 regions (the two
// declination halves of the band, each cut in RA into 2 to 4 parts of equal count). Only
// level-3 regions hold tables. The cuts are made from a density estimate so that no region
// is expected to hold more than `maxObjects` objects (within the resolution of the density
// grid, `raStep` degrees in RA by half a band in declination).
//
// Boundaries are float32 values (the SkyRegion layout stores them so); look-ups use the same
// float32 values, so a position belongs to exactly one region, and neighbours share edges.
import { FitsFile, fitsTable, Header, writeFits } from '../fits/index.ts';
import { collectTable, memoryTable } from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { DvoError } from './errors.ts';
import { EXTNAME, SKY_REGION_COLUMNS } from './layouts.ts';

/** Height of a level-1 band, degrees. */
export const BAND_HEIGHT = 7.5;
/** Number of level-1 bands. */
export const BANDS = 24;

/** One node of the partition. */
export interface SkyRegion {
  /** Sequence number in the table (INDEX); for regions with tables also their CAT_ID. */
  readonly index: number;
  /** For regions with tables: the path of their files without extension (`n0730/00123`). */
  readonly name: string;
  readonly rmin: number;
  readonly rmax: number;
  readonly dmin: number;
  readonly dmax: number;
  readonly depth: number;
  readonly parent: number;
  readonly childS: number;
  readonly childE: number;
  readonly table: boolean;
}

/** How objects are expected to spread over the sky: counts per (band half, RA bin). */
export class DensityGrid {
  readonly raStep: number;
  readonly bins: number;
  /** Objects per cell, index `(band * 2 + half) * bins + raBin`. */
  readonly counts: Float64Array;

  constructor(raStep = 0.05) {
    if (!(raStep > 0) || !Number.isInteger(360 / raStep)) {
      throw new DvoError('dvo_bad_option', `RA step ${raStep} must divide 360 degrees evenly`);
    }
    this.raStep = raStep;
    this.bins = Math.round(360 / raStep);
    this.counts = new Float64Array(BANDS * 2 * this.bins);
  }

  /** The cell of a position. */
  cellOf(ra: number, dec: number): number {
    const half = Math.min(BANDS * 2 - 1, Math.max(0, Math.floor((dec + 90) / (BAND_HEIGHT / 2))));
    const bin = Math.min(this.bins - 1, Math.max(0, Math.floor(normRa(ra) / this.raStep)));
    return half * this.bins + bin;
  }

  /** Adds `n` objects at a position. */
  add(ra: number, dec: number, n = 1): void {
    this.counts[this.cellOf(ra, dec)] += n;
  }

  /** Raises every cell to at least `perSqDeg` objects per square degree. */
  floor(perSqDeg: number): this {
    for (let h = 0; h < BANDS * 2; h++) {
      const d0 = -90 + h * BAND_HEIGHT / 2;
      const area = this.raStep * (180 / Math.PI) * (Math.sin((d0 + BAND_HEIGHT / 2) * Math.PI / 180) - Math.sin(d0 * Math.PI / 180));
      const min = perSqDeg * area;
      for (let j = 0; j < this.bins; j++) {
        const k = h * this.bins + j;
        if (this.counts[k] < min) this.counts[k] = min;
      }
    }
    return this;
  }

  /** A grid from a density function (objects per square degree at a position). */
  static fromFunction(perSqDeg: (ra: number, dec: number) => number, raStep = 0.05): DensityGrid {
    const g = new DensityGrid(raStep);
    for (let h = 0; h < BANDS * 2; h++) {
      const d0 = -90 + h * BAND_HEIGHT / 2;
      const area = raStep * (180 / Math.PI) * (Math.sin((d0 + BAND_HEIGHT / 2) * Math.PI / 180) - Math.sin(d0 * Math.PI / 180));
      for (let j = 0; j < g.bins; j++) g.counts[h * g.bins + j] = perSqDeg((j + 0.5) * raStep, d0 + BAND_HEIGHT / 4) * area;
    }
    return g;
  }
}

/** Options of {@link buildSkyTable}. */
export interface PartitionOptions {
  /** Most objects a region should hold (default 200,000). */
  readonly maxObjects?: number;
}

/** RA in [0, 360). */
export function normRa(ra: number): number {
  const r = ra % 360;
  return r < 0 ? r + 360 : r === 360 ? 0 : r;
}

function bandDir(dmin: number): string {
  const v = Math.round(Math.abs(dmin) * 100);
  return `${dmin < 0 ? 's' : 'n'}${String(v).padStart(4, '0')}`;
}

/** Cuts `[j0, j1)` into `parts` runs of about equal count; returns the `parts + 1` edges. */
function equalCountEdges(counts: Float64Array, base: number, j0: number, j1: number, parts: number): number[] {
  const n = j1 - j0;
  parts = Math.max(1, Math.min(parts, n));
  let total = 0;
  for (let j = j0; j < j1; j++) total += counts[base + j];
  const edges = [j0];
  let acc = 0;
  let j = j0;
  for (let p = 1; p < parts; p++) {
    const goal = (total * p) / parts;
    // Leave at least one bin for each part still to come.
    const last = j1 - (parts - p);
    while (j < last && (acc + counts[base + j] <= goal || j < edges[p - 1] + 1)) acc += counts[base + j++];
    if (j <= edges[p - 1]) j = edges[p - 1] + 1;
    edges.push(j);
  }
  edges.push(j1);
  return edges;
}

/** Builds the partition from a density estimate. */
export function buildSkyTable(density: DensityGrid, options: PartitionOptions = {}): SkyTable {
  const maxObjects = options.maxObjects ?? 200_000;
  if (!(maxObjects >= 1)) throw new DvoError('dvo_bad_option', `maxObjects ${maxObjects} must be at least 1`);
  const { bins, raStep, counts } = density;
  const f = Math.fround;
  type Mutable = { -readonly [K in keyof SkyRegion]: SkyRegion[K] };
  const nodes: Mutable[] = [];
  const node = (fields: Omit<Mutable, 'index' | 'childS' | 'childE'>): Mutable => {
    const n: Mutable = { ...fields, index: nodes.length, childS: 0, childE: 0 };
    nodes.push(n);
    return n;
  };
  const root = node({ name: 'sky', rmin: 0, rmax: 360, dmin: -90, dmax: 90, depth: 0, parent: -1, table: false });
  const bands: Mutable[] = [];
  root.childS = nodes.length;
  for (let b = 0; b < BANDS; b++) {
    const dmin = -90 + b * BAND_HEIGHT;
    bands.push(node({ name: bandDir(dmin), rmin: 0, rmax: 360, dmin, dmax: dmin + BAND_HEIGHT, depth: 1, parent: 0, table: false }));
  }
  root.childE = nodes.length;
  // Level 2: greedy RA chunks, each holding at most 4·maxObjects in either half of the band.
  const chunkBins: [number, number, number][] = [];
  for (let b = 0; b < BANDS; b++) {
    const lo = (2 * b) * bins;
    const hi = (2 * b + 1) * bins;
    bands[b].childS = nodes.length;
    let j0 = 0;
    let a0 = 0;
    let a1 = 0;
    const limit = 4 * maxObjects;
    for (let j = 0; j <= bins; j++) {
      const closing = j === bins || (j > j0 && Math.max(a0 + counts[lo + j], a1 + counts[hi + j]) > limit);
      if (closing) {
        const c = node({ name: bands[b].name, rmin: f(j0 * raStep), rmax: f(j === bins ? 360 : j * raStep), dmin: bands[b].dmin, dmax: bands[b].dmax, depth: 2, parent: bands[b].index, table: false });
        chunkBins.push([c.index, j0, j]);
        j0 = j;
        a0 = 0;
        a1 = 0;
      }
      if (j < bins) {
        a0 += counts[lo + j];
        a1 += counts[hi + j];
      }
    }
    bands[b].childE = nodes.length;
  }
  // Level 3: each chunk in two declination halves, each cut in 2-4 parts of equal count.
  for (const [ci, j0, j1] of chunkBins) {
    const chunk = nodes[ci];
    const b = Math.round((chunk.dmin + 90) / BAND_HEIGHT);
    chunk.childS = nodes.length;
    for (let half = 0; half < 2; half++) {
      const base = (2 * b + half) * bins;
      let total = 0;
      for (let j = j0; j < j1; j++) total += counts[base + j];
      const parts = Math.min(4, Math.max(2, Math.ceil(total / maxObjects)));
      const edges = equalCountEdges(counts, base, j0, j1, parts);
      const dmin = chunk.dmin + half * BAND_HEIGHT / 2;
      for (let p = 0; p + 1 < edges.length; p++) {
        const index = nodes.length;
        node({
          name: `${chunk.name}/${String(index).padStart(5, '0')}`,
          rmin: f(edges[p] * raStep), rmax: f(edges[p + 1] === bins ? 360 : edges[p + 1] * raStep),
          dmin, dmax: dmin + BAND_HEIGHT / 2, depth: 3, parent: ci, table: true,
        });
      }
    }
    chunk.childE = nodes.length;
  }
  return new SkyTable(nodes, { maxObjects, raStep });
}

/** The partition, with look-ups by position and by box. */
export class SkyTable {
  readonly nodes: readonly SkyRegion[];
  /** The regions that hold tables, in index order. */
  readonly regions: readonly SkyRegion[];
  readonly maxObjects: number;
  readonly raStep: number;
  private readonly bandChunks: SkyRegion[][] = [];
  private readonly chunkStarts: Float64Array[] = [];

  constructor(nodes: readonly SkyRegion[], meta: { maxObjects: number; raStep: number }) {
    this.nodes = nodes;
    this.regions = nodes.filter((n) => n.table);
    this.maxObjects = meta.maxObjects;
    this.raStep = meta.raStep;
    for (let b = 0; b < BANDS; b++) {
      const band = nodes[1 + b];
      if (!band || band.depth !== 1) throw new DvoError('dvo_damaged', `SkyTable: entry ${1 + b} should be declination band ${b + 1} of ${BANDS}`);
      const chunks = nodes.slice(band.childS, band.childE);
      this.bandChunks.push(chunks);
      this.chunkStarts.push(Float64Array.from(chunks.map((c) => c.rmin)));
    }
  }

  /** A node by its index. */
  node(index: number): SkyRegion {
    const n = this.nodes[index];
    if (!n) throw new DvoError('dvo_damaged', `SkyTable has no entry ${index}`);
    return n;
  }

  /** The region (with tables) holding a position. */
  regionOf(ra: number, dec: number): SkyRegion {
    if (!Number.isFinite(ra) || !Number.isFinite(dec) || dec < -90 || dec > 90) {
      throw new DvoError('dvo_bad_coordinates', `position (${ra}, ${dec}) is not on the sky`);
    }
    ra = normRa(ra);
    let b = Math.min(BANDS - 1, Math.floor((dec + 90) / BAND_HEIGHT));
    if (b > 0 && dec < this.nodes[1 + b].dmin) b--;
    else if (b < BANDS - 1 && dec >= this.nodes[1 + b].dmax) b++;
    const starts = this.chunkStarts[b];
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= ra) lo = mid;
      else hi = mid - 1;
    }
    const chunk = this.bandChunks[b][lo];
    const top = chunk.dmax >= 90;
    for (let i = chunk.childS; i < chunk.childE; i++) {
      const r = this.nodes[i];
      if (ra >= r.rmin && ra < r.rmax && dec >= r.dmin && (dec < r.dmax || (top && r.dmax >= 90))) return r;
    }
    // Values between a float32 edge and its float64 neighbour: take the nearest cell.
    let best = this.nodes[chunk.childS];
    let bestD = Infinity;
    for (let i = chunk.childS; i < chunk.childE; i++) {
      const r = this.nodes[i];
      const d = Math.max(0, r.rmin - ra, ra - r.rmax) + Math.max(0, r.dmin - dec, dec - r.dmax);
      if (d < bestD) { bestD = d; best = r; }
    }
    return best;
  }

  /** The regions overlapping a box; `raMin > raMax` means the box crosses RA 0. */
  regionsInBox(raMin: number, raMax: number, decMin: number, decMax: number): SkyRegion[] {
    const out: SkyRegion[] = [];
    const wide = raMax - raMin >= 360;
    raMin = normRa(raMin);
    raMax = raMax >= 360 && !wide ? normRa(raMax) : raMax;
    const ranges: [number, number][] = wide ? [[0, 360]] : raMin <= raMax ? [[raMin, raMax]] : [[raMin, 360], [0, raMax]];
    for (let b = 0; b < BANDS; b++) {
      const band = this.nodes[1 + b];
      if (band.dmax < decMin || band.dmin > decMax) continue;
      for (const chunk of this.bandChunks[b]) {
        if (!ranges.some(([a, z]) => chunk.rmax >= a && chunk.rmin <= z)) continue;
        for (let i = chunk.childS; i < chunk.childE; i++) {
          const r = this.nodes[i];
          if (r.dmax < decMin || r.dmin > decMax) continue;
          if (ranges.some(([a, z]) => r.rmax > a && r.rmin <= z)) out.push(r);
        }
      }
    }
    return out;
  }

  /** The regions within `radius` degrees of a position (a box around the circle). */
  regionsNear(ra: number, dec: number, radius: number): SkyRegion[] {
    const d0 = Math.max(-90, dec - radius);
    const d1 = Math.min(90, dec + radius);
    const cosd = Math.cos(Math.min(89.999, Math.max(Math.abs(d0), Math.abs(d1))) * Math.PI / 180);
    const dr = radius / cosd;
    if (dr >= 180 || d1 >= 90 || d0 <= -90) return this.regionsInBox(0, 360, d0, d1);
    return this.regionsInBox(ra - dr, ra + dr, d0, d1);
  }

  /** True when a position lies within `radius` degrees of its region's edge (matches may cross it). */
  nearEdge(region: SkyRegion, ra: number, dec: number, radius: number): boolean {
    if (dec - region.dmin < radius || region.dmax - dec < radius) return true;
    const cosd = Math.cos(dec * Math.PI / 180);
    const dr = cosd > 1e-6 ? radius / cosd : 360;
    ra = normRa(ra);
    return ra - region.rmin < dr || region.rmax - ra < dr;
  }
}

/** Writes `SkyTable.fits` (atomically), with the database settings in its primary header. */
export async function writeSkyTable(path: string, sky: SkyTable, settings: Header = new Header()): Promise<void> {
  const n = sky.nodes.length;
  const s = new ColumnStore(SKY_REGION_COLUMNS, n);
  s.grow(n);
  const [rmin, rmax, dmin, dmax] = ['R_MIN', 'R_MAX', 'D_MIN', 'D_MAX'].map((c) => s.f32(c));
  const [cs, ce, parent, index] = ['CHILD_S', 'CHILD_E', 'PARENT', 'INDEX'].map((c) => s.i32(c));
  const [depth, child, table] = ['DEPTH', 'CHILD', 'TABLE'].map((c) => s.u8(c));
  const name = s.str('NAME');
  sky.nodes.forEach((r, i) => {
    rmin[i] = r.rmin; rmax[i] = r.rmax; dmin[i] = r.dmin; dmax[i] = r.dmax;
    cs[i] = r.childS; ce[i] = r.childE; parent[i] = r.parent; index[i] = r.index;
    depth[i] = r.depth; child[i] = r.childE > r.childS ? 1 : 0; table[i] = r.table ? 1 : 0;
    name[i] = r.name;
  });
  const header = settings.clone()
    .set('DVOTABLE', 'SKYTABLE', 'DVO sky partition')
    .set('MAXOBJ', sky.maxObjects, 'objects a region is sized for')
    .set('RASTEP', sky.raStep, '[deg] RA resolution of the density grid');
  await writeFits(path, [{ table: memoryTable(SKY_REGION_COLUMNS, [s.toBatch()], { name: EXTNAME.skyRegion }) }], { primaryHeader: header });
}

/** Reads `SkyTable.fits`: the partition and the primary header (database settings). */
export async function readSkyTable(path: string): Promise<{ sky: SkyTable; header: Header }> {
  const file = await FitsFile.open(path);
  try {
    const header = file.hdus[0].header;
    const b = await collectTable(fitsTable(file, EXTNAME.skyRegion));
    const col = (name: string) => b.columns[SKY_REGION_COLUMNS.findIndex((c) => c.name === name)].values;
    const [rmin, rmax, dmin, dmax, cs, ce, parent, index, depth, table, name] =
      ['R_MIN', 'R_MAX', 'D_MIN', 'D_MAX', 'CHILD_S', 'CHILD_E', 'PARENT', 'INDEX', 'DEPTH', 'TABLE', 'NAME'].map(col);
    const nodes: SkyRegion[] = [];
    for (let i = 0; i < b.rowCount; i++) {
      if (Number(index[i]) !== i) throw new DvoError('dvo_damaged', `${path}: row ${i + 1} has INDEX ${String(index[i])}; the table must be in index order`);
      nodes.push({
        index: i, name: String(name[i]).trim(),
        rmin: Number(rmin[i]), rmax: Number(rmax[i]), dmin: Number(dmin[i]), dmax: Number(dmax[i]),
        childS: Number(cs[i]), childE: Number(ce[i]), parent: Number(parent[i]), depth: Number(depth[i]), table: Number(table[i]) === 1,
      });
    }
    const maxObjects = header.getNumber('MAXOBJ') ?? 200_000;
    const raStep = header.getNumber('RASTEP') ?? 0.05;
    return { sky: new SkyTable(nodes, { maxObjects, raStep }), header };
  } finally {
    await file.close();
  }
}
