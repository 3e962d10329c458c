// A RINGS.V3-like tessellation of the sky into projection cells and skycells. Projection
// cells are centred on declination rings 4° apart (−90, −86, ..., +90); a ring at δ holds
// ceil(360 cos(|δ| − 2°) / 4) cells evenly spaced in RA from 0 (one cell at each pole). Each cell is
// a 4.4° square on its own tangent plane (10% wider than the spacing, so neighbours
// overlap), cut into 10 × 10 skycells of 0.44° = 6336 pixels of 0.25". Projection cells are
// numbered from 1 at the south pole, ring by ring, eastwards; skycells 0..99 row by row
// from the cell's south-west corner: `skycell.PPPP.SSS` names projection PPPP, skycell SSS
// (REFERENCE.md: skycell.1133.081 is projection 1133, skycell 81).
import { deproject, project, type TanWcs } from './wcs.ts';

/** The tessellation's name, as the stack headers' TESS_ID carries it. */
export const TESS_ID = 'RINGS.V3';
/** Spacing of the rings and of the cells along a ring, degrees. */
export const RING_STEP = 4;
/** Side of a projection cell's square, degrees. */
export const CELL_SIDE = 4.4;
/** Skycells per side of a projection cell. */
export const SKYCELLS_PER_SIDE = 10;
/** Skycell pixel scale, arcseconds. */
export const SKYCELL_SCALE = 0.25;
/** Pixels per skycell side. */
export const SKYCELL_PIXELS = Math.round((CELL_SIDE / SKYCELLS_PER_SIDE) * 3600 / SKYCELL_SCALE);

const RINGS = Math.round(180 / RING_STEP) + 1;
const DEG = Math.PI / 180;
const RING_COUNT = new Int32Array(RINGS);
const RING_FIRST = new Int32Array(RINGS + 1);
for (let k = 0; k < RINGS; k++) {
  const dec = -90 + k * RING_STEP;
  // Spaced by the ring's width at its equatorward edge, so that every cell's square covers
  // the whole band it is nearest to.
  const edge = Math.max(0, Math.abs(dec) - RING_STEP / 2);
  RING_COUNT[k] = Math.abs(dec) === 90 ? 1 : Math.ceil((360 * Math.cos(edge * DEG)) / RING_STEP);
  RING_FIRST[k + 1] = RING_FIRST[k] + RING_COUNT[k];
}
/** Number of projection cells over the sky. */
export const PROJECTION_CELLS = RING_FIRST[RINGS];

/** A projection cell: its number and tangent point. */
export interface ProjectionCell {
  readonly id: number;
  readonly ra: number;
  readonly dec: number;
}

/** The projection cell with this number (1-based). */
export function projectionCell(id: number): ProjectionCell {
  let k = 0;
  while (k < RINGS - 1 && RING_FIRST[k + 1] < id) k++;
  const i = id - 1 - RING_FIRST[k];
  return { id, ra: (i * 360) / RING_COUNT[k], dec: -90 + k * RING_STEP };
}

/** The projection cell whose centre is nearest a position (the cell that owns it). */
export function projectionCellAt(ra: number, dec: number): ProjectionCell {
  const k = Math.min(RINGS - 1, Math.max(0, Math.round((dec + 90) / RING_STEP)));
  const n = RING_COUNT[k];
  const i = ((Math.round((((ra % 360) + 360) % 360) / (360 / n)) % n) + n) % n;
  return { id: RING_FIRST[k] + i + 1, ra: (i * 360) / n, dec: -90 + k * RING_STEP };
}

/** A skycell: where it is and its WCS. */
export interface Skycell {
  /** `skycell.PPPP.SSS`. */
  readonly name: string;
  readonly projectionId: number;
  readonly skycellId: number;
  /** Centre on the sky. */
  readonly ra: number;
  readonly dec: number;
  readonly wcs: TanWcs;
  readonly nx: number;
  readonly ny: number;
}

/** `skycell.PPPP.SSS` for a projection cell and skycell number. */
export function skycellName(projectionId: number, skycellId: number): string {
  return `skycell.${String(projectionId).padStart(4, '0')}.${String(skycellId).padStart(3, '0')}`;
}

/** The projection and skycell numbers of a name such as `skycell.1133.081`; null if it is not one. */
export function parseSkycellName(name: string): { projectionId: number; skycellId: number } | null {
  const m = /^skycell\.(\d+)\.(\d+)$/.exec(name);
  return m ? { projectionId: Number(m[1]), skycellId: Number(m[2]) } : null;
}

/** A skycell of a projection cell: the cell's tangent point, x to the west, y to the north. */
export function skycell(projectionId: number, skycellId: number): Skycell {
  const cell = projectionCell(projectionId);
  const ix = skycellId % SKYCELLS_PER_SIDE;
  const iy = Math.floor(skycellId / SKYCELLS_PER_SIDE);
  const s = SKYCELL_SCALE / 3600;
  const step = CELL_SIDE / SKYCELLS_PER_SIDE;
  const wcs: TanWcs = {
    crval1: cell.ra,
    crval2: cell.dec,
    crpix1: 1 + (CELL_SIDE / 2 - ix * step) / s,
    crpix2: 1 + (CELL_SIDE / 2 - iy * step) / s,
    cd11: -s,
    cd12: 0,
    cd21: 0,
    cd22: s,
  };
  const centre = deproject(-(-CELL_SIDE / 2 + (ix + 0.5) * step), -CELL_SIDE / 2 + (iy + 0.5) * step, cell.ra, cell.dec);
  return {
    name: skycellName(projectionId, skycellId), projectionId, skycellId,
    ra: centre.ra, dec: centre.dec, wcs, nx: SKYCELL_PIXELS, ny: SKYCELL_PIXELS,
  };
}

/** The skycell that owns a position: in the nearest projection cell, the square it falls in. */
export function skycellAt(ra: number, dec: number): Skycell {
  const cell = projectionCellAt(ra, dec);
  const p = project(ra, dec, cell.ra, cell.dec)!;
  const step = CELL_SIDE / SKYCELLS_PER_SIDE;
  const clampIndex = (v: number) => Math.min(SKYCELLS_PER_SIDE - 1, Math.max(0, Math.floor(v)));
  const ix = clampIndex((-p.xi + CELL_SIDE / 2) / step);
  const iy = clampIndex((p.eta + CELL_SIDE / 2) / step);
  return skycell(cell.id, iy * SKYCELLS_PER_SIDE + ix);
}

/** Projection cells whose centres lie within `radius` degrees of a position (approximately, generously). */
export function projectionCellsNear(ra: number, dec: number, radius: number): ProjectionCell[] {
  const out: ProjectionCell[] = [];
  const kLo = Math.max(0, Math.floor((dec - radius + 90) / RING_STEP));
  const kHi = Math.min(RINGS - 1, Math.ceil((dec + radius + 90) / RING_STEP));
  for (let k = kLo; k <= kHi; k++) {
    const n = RING_COUNT[k];
    const cdec = -90 + k * RING_STEP;
    for (let i = 0; i < n; i++) {
      const cra = (i * 360) / n;
      const dra = Math.abs(((cra - ra + 540) % 360) - 180) * Math.cos(Math.min(89.9, Math.abs(dec) + radius) * DEG);
      if (dra <= radius + RING_STEP || n === 1) out.push({ id: RING_FIRST[k] + i + 1, ra: cra, dec: cdec });
    }
  }
  return out;
}
