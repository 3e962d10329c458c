// The GPC1 focal plane: 60 orthogonal-transfer arrays (OTAs) XY01..XY76 on an 8×8 grid
// without the four corners. The numbers are the original camera configuration's
// (ippconfig/gpc1/format_20100723.config and format_mef.config in ps-ipp/ipp-trunk-20250502):
// CHIP.XSIZE 4846, CHIP.YSIZE 4868 (8×8 cells of 590×598 pixels), and each OTA's origin in
// focal-plane pixels (CHIP.X0: 4971 × (column + 1) on the left half, 4971 × column + 157 on
// the right; CHIP.Y0: 5143 × (row + 1) on the left, 306 + 5143 × row on the right) with
// parity −1 in x and y on the left half (columns 0-3) and +1 on the right. The gaps are
// therefore 125 px between columns, 157 px at the centre, 275 px between rows, and the
// halves are offset by 31 px in y. The plate scale, 0.258"/px, is GPC1's nominal one.
import type { TanWcs } from './wcs.ts';

/** Pixels per chip along x (CHIP.XSIZE). */
export const CHIP_NX = 4846;
/** Pixels per chip along y (CHIP.YSIZE). */
export const CHIP_NY = 4868;
/** Nominal plate scale, arcseconds per pixel. */
export const PIXEL_SCALE = 0.258;

/** One OTA: its name, grid place, origin and parity in focal-plane pixels. */
export interface Chip {
  /** `XY01` ... `XY76`: the class_id of the processing database. */
  readonly name: string;
  /** Position in the camera's list, 0..59 (the order of the smf extensions). */
  readonly index: number;
  /** Grid column and row (the digits of the name). */
  readonly ix: number;
  readonly iy: number;
  /** The OTA number used in image IDs (`10 * ix + iy`, e.g. 33 for XY33). */
  readonly ota: number;
  readonly x0: number;
  readonly y0: number;
  readonly xParity: number;
  readonly yParity: number;
}

function makeChips(): Chip[] {
  const chips: Chip[] = [];
  for (let ix = 0; ix < 8; ix++) {
    for (let iy = 0; iy < 8; iy++) {
      if ((ix === 0 || ix === 7) && (iy === 0 || iy === 7)) continue;
      const left = ix < 4;
      chips.push({
        name: `XY${ix}${iy}`,
        index: chips.length,
        ix,
        iy,
        ota: 10 * ix + iy,
        x0: left ? 4971 * (ix + 1) : 4971 * ix + 157,
        y0: left ? 5143 * (iy + 1) : 306 + 5143 * iy,
        xParity: left ? -1 : 1,
        yParity: left ? -1 : 1,
      });
    }
  }
  return chips;
}

/** The 60 chips in camera order (XY01, XY02, ..., XY76). */
export const CHIPS: readonly Chip[] = Object.freeze(makeChips());

// Focal-plane extent of a chip's pixels (0-based pixel centres at 0..N-1, edges ±0.5).
function extent(chip: Chip): { xlo: number; xhi: number; ylo: number; yhi: number } {
  const xa = chip.x0 - 0.5 * chip.xParity;
  const xb = chip.x0 + (CHIP_NX - 0.5) * chip.xParity;
  const ya = chip.y0 - 0.5 * chip.yParity;
  const yb = chip.y0 + (CHIP_NY - 0.5) * chip.yParity;
  return { xlo: Math.min(xa, xb), xhi: Math.max(xa, xb), ylo: Math.min(ya, yb), yhi: Math.max(ya, yb) };
}

const EXTENTS = CHIPS.map(extent);
/** Each chip's pixels' extent on the focal plane (pixel edges), in camera order. */
export const CHIP_EXTENTS: readonly { readonly xlo: number; readonly xhi: number; readonly ylo: number; readonly yhi: number }[] = Object.freeze(EXTENTS);

/** Focal-plane pixel position of the boresight: the centre of the chips' bounding box. */
export const FPA_CENTER = Object.freeze({
  x: (Math.min(...EXTENTS.map((e) => e.xlo)) + Math.max(...EXTENTS.map((e) => e.xhi))) / 2,
  y: (Math.min(...EXTENTS.map((e) => e.ylo)) + Math.max(...EXTENTS.map((e) => e.yhi))) / 2,
});

/** Radius (degrees) of the circle about the boresight that holds every chip pixel. */
export const FOV_RADIUS = Math.max(...EXTENTS.flatMap((e) => [
  Math.hypot(e.xlo - FPA_CENTER.x, e.ylo - FPA_CENTER.y), Math.hypot(e.xhi - FPA_CENTER.x, e.ylo - FPA_CENTER.y),
  Math.hypot(e.xlo - FPA_CENTER.x, e.yhi - FPA_CENTER.y), Math.hypot(e.xhi - FPA_CENTER.x, e.yhi - FPA_CENTER.y),
])) * PIXEL_SCALE / 3600;

// Chip look-up by grid: column bounds in x, and per column the row bounds in y.
const COL_STEP = 1 / 4971;
const ROW_STEP = 1 / 5143;
const CHIP_X0 = Float64Array.from(CHIPS, (c) => c.x0);
const CHIP_Y0 = Float64Array.from(CHIPS, (c) => c.y0);
const CHIP_XP = Float64Array.from(CHIPS, (c) => c.xParity);
const CHIP_YP = Float64Array.from(CHIPS, (c) => c.yParity);
const GRID = new Int8Array(64).fill(-1);
for (const c of CHIPS) GRID[c.ix * 8 + c.iy] = c.index;
const COL_LO = new Float64Array(8);
const COL_HI = new Float64Array(8);
const ROW_LO = new Float64Array(64);
const ROW_HI = new Float64Array(64);
for (let ix = 0; ix < 8; ix++) {
  const left = ix < 4;
  const x0 = left ? 4971 * (ix + 1) : 4971 * ix + 157;
  COL_LO[ix] = left ? x0 - CHIP_NX + 0.5 : x0 - 0.5;
  COL_HI[ix] = COL_LO[ix] + CHIP_NX;
  for (let iy = 0; iy < 8; iy++) {
    const y0 = left ? 5143 * (iy + 1) : 306 + 5143 * iy;
    ROW_LO[ix * 8 + iy] = left ? y0 - CHIP_NY + 0.5 : y0 - 0.5;
    ROW_HI[ix * 8 + iy] = ROW_LO[ix * 8 + iy] + CHIP_NY;
  }
}

/**
 * Where a focal-plane pixel position (X, Y) lands: the chip index (or −1 in a gap or off
 * the camera) written to `out[0]`, and the chip's FITS pixel coordinates to `out[1]`,
 * `out[2]`. Allocation-free: it is called for every object of every exposure.
 */
export function locateOnChip(X: number, Y: number, out: Float64Array): number {
  // Columns repeat every 4971 px and rows every 5143 px, but a chip may reach past its
  // cell's far edge (by 0.5 px on the left half, 31.5 px on the right), so the cell's
  // chip and the previous one are the only candidates (which also makes a cell misjudged
  // by rounding at its edge harmless: both bounds are then checked exactly).
  let ix = Math.floor(X * COL_STEP);
  if (ix > 7) ix = 7;
  if (ix < 0 || X < COL_LO[ix]) {
    ix--;
    if (ix < 0 || X >= COL_HI[ix]) return (out[0] = -1);
  } else if (X >= COL_HI[ix]) {
    return (out[0] = -1);
  }
  const base = ix * 8;
  let iy = Math.floor(Y * ROW_STEP);
  if (iy > 7) iy = 7;
  if (iy < 0 || Y < ROW_LO[base + iy]) {
    iy--;
    if (iy < 0 || Y >= ROW_HI[base + iy]) return (out[0] = -1);
  } else if (Y >= ROW_HI[base + iy]) {
    return (out[0] = -1);
  }
  const index = GRID[base + iy];
  if (index < 0) return (out[0] = -1);
  out[1] = (X - CHIP_X0[index]) * CHIP_XP[index] + 1;
  out[2] = (Y - CHIP_Y0[index]) * CHIP_YP[index] + 1;
  return (out[0] = index);
}

/** Degrees per focal-plane pixel. */
export const DEG_PER_PIXEL = PIXEL_SCALE / 3600;

/**
 * The chip's tangent-plane WCS for an exposure pointed at (ra0, dec0) with the camera's
 * x axis to the west (right ascension decreasing with x) and y to the north. The focal
 * plane has no distortion here, so the WCS is exact: the detections' X_PSF/Y_PSF (FITS
 * convention) map to RA_PSF/DEC_PSF through it.
 */
export function chipWcs(chip: Chip, ra0: number, dec0: number): TanWcs {
  return {
    crval1: ra0,
    crval2: dec0,
    crpix1: 1 + (FPA_CENTER.x - chip.x0) / chip.xParity,
    crpix2: 1 + (FPA_CENTER.y - chip.y0) / chip.yParity,
    cd11: -DEG_PER_PIXEL * chip.xParity,
    cd12: 0,
    cd21: 0,
    cd22: DEG_PER_PIXEL * chip.yParity,
  };
}
