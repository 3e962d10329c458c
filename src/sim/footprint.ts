// Which sky tiles an exposure's chips may see. The circle that holds every chip pixel
// (FOV_RADIUS) also holds the missing corner OTAs and the ring around the square array:
// about 40% of the tiles it meets have no point on any chip. Each tile's box is projected
// onto the focal plane as the objects are (tangent plane about the boresight, no rotation),
// and a tile is kept only if the padded bounding box of its projection meets a chip.
import { CHIP_EXTENTS, DEG_PER_PIXEL, FOV_RADIUS, FPA_CENTER } from './focal-plane.ts';
import { tileBounds, tilesInCircle } from './sky-model.ts';

const DEG = Math.PI / 180;
const RAD_TO_PIX = 1 / DEG / DEG_PER_PIXEL;
/** Sample points per tile side: the box's edges bend by far less than a sample's spacing / 8. */
const SAMPLES = 5;

/**
 * IDs of the sky tiles that may hold objects landing on a chip of an exposure pointed at
 * (ra, dec), ascending: those of `tilesInCircle(ra, dec, FOV_RADIUS)` whose box may meet a
 * chip. Tiles the test cannot judge (wide polar tiles, or far from the boresight) are kept.
 * The array is shared with later callers for the same pointing: read it, do not change it.
 */
export function exposureTiles(ra: number, dec: number): readonly number[] {
  // The planner, the writer and the tile dropping each ask for an exposure's tiles.
  const key = `${ra} ${dec}`;
  const hit = RECENT.get(key);
  if (hit) return hit;
  const out = footprintTiles(ra, dec);
  RECENT.set(key, out);
  if (RECENT.size > 64) RECENT.delete(RECENT.keys().next().value as string);
  return out;
}

/** Answers given lately (a few pointings' worth). */
const RECENT = new Map<string, readonly number[]>();

function footprintTiles(ra: number, dec: number): number[] {
  const a0 = ra * DEG;
  const d0 = dec * DEG;
  const sinA0 = Math.sin(a0);
  const cosA0 = Math.cos(a0);
  const sinD0 = Math.sin(d0);
  const cosD0 = Math.cos(d0);
  const out: number[] = [];
  for (const id of tilesInCircle(ra, dec, FOV_RADIUS)) {
    const b = tileBounds(id);
    if (b.raHi - b.raLo > 2) {
      out.push(id);
      continue;
    }
    let xlo = Infinity;
    let xhi = -Infinity;
    let ylo = Infinity;
    let yhi = -Infinity;
    let judged = true;
    for (let i = 0; i < SAMPLES && judged; i++) {
      const a = (b.raLo + ((b.raHi - b.raLo) * i) / (SAMPLES - 1)) * DEG;
      const sa = Math.sin(a);
      const ca = Math.cos(a);
      for (let j = 0; j < SAMPLES; j++) {
        const d = (b.decLo + ((b.decHi - b.decLo) * j) / (SAMPLES - 1)) * DEG;
        const sd = Math.sin(d);
        const cd = Math.cos(d);
        const cosDa = ca * cosA0 + sa * sinA0;
        const sinDa = sa * cosA0 - ca * sinA0;
        const cosc = sinD0 * sd + cosD0 * cd * cosDa;
        if (cosc < 0.5) {
          judged = false;
          break;
        }
        const X = FPA_CENTER.x - ((cd * sinDa) / cosc) * RAD_TO_PIX;
        const Y = FPA_CENTER.y + ((cosD0 * sd - sinD0 * cd * cosDa) / cosc) * RAD_TO_PIX;
        if (X < xlo) xlo = X;
        if (X > xhi) xhi = X;
        if (Y < ylo) ylo = Y;
        if (Y > yhi) yhi = Y;
      }
    }
    if (!judged) {
      out.push(id);
      continue;
    }
    const pad = Math.max(xhi - xlo, yhi - ylo) / 8 + 2;
    if (meetsChip(xlo - pad, xhi + pad, ylo - pad, yhi + pad)) out.push(id);
  }
  return out;
}

function meetsChip(xlo: number, xhi: number, ylo: number, yhi: number): boolean {
  for (const e of CHIP_EXTENTS) {
    if (xlo <= e.xhi && xhi >= e.xlo && ylo <= e.yhi && yhi >= e.ylo) return true;
  }
  return false;
}
