// The true objects an exposure (or stack) may detect: gathered from the sky tiles with their
// chip (a few columns), then sorted by chip.
// The columns are reused from exposure to exposure and grow as needed. Chip positions and
// magnitudes are float32, as the catalogue columns they become (RA/Dec stay float64).
import type { Candidates } from './detections.ts';
import type { SkyTile } from './sky-model.ts';

type Column = Float64Array | Float32Array | Uint8Array | Int16Array | Int32Array;

function grown<T extends Column>(a: T, C: new (n: number) => T, size: number, keep: number): T {
  const b = new C(size);
  b.set(a.subarray(0, keep) as never);
  return b;
}

/** Objects found on the chips of an exposure, in tile order: chip, position, magnitude, source. */
export class GatherBuffer {
  length = 0;
  tiles: SkyTile[] = [];
  chip = new Int16Array(0);
  x = new Float32Array(0);
  y = new Float32Array(0);
  mag = new Float32Array(0);
  type = new Uint8Array(0);
  reff = new Float32Array(0);
  srcTile = new Int32Array(0);
  srcIndex = new Int32Array(0);

  /** Makes room for `n` objects, keeping those held. */
  ensure(n: number): void {
    if (n <= this.x.length) return;
    const size = Math.max(n, this.x.length * 2, 1 << 16);
    const keep = this.length;
    this.chip = grown(this.chip, Int16Array, size, keep);
    this.x = grown(this.x, Float32Array, size, keep);
    this.y = grown(this.y, Float32Array, size, keep);
    this.mag = grown(this.mag, Float32Array, size, keep);
    this.type = grown(this.type, Uint8Array, size, keep);
    this.reff = grown(this.reff, Float32Array, size, keep);
    this.srcTile = grown(this.srcTile, Int32Array, size, keep);
    this.srcIndex = grown(this.srcIndex, Int32Array, size, keep);
  }
}

/**
 * Candidates ordered by chip, with the columns the detection decision reads; what only
 * detected objects need (position on the sky, shape, ID) is read from their tile later.
 */
export class CandidateBuffer implements Candidates {
  length = 0;
  tiles: SkyTile[] = [];
  x = new Float32Array(0);
  y = new Float32Array(0);
  mag = new Float32Array(0);
  type = new Uint8Array(0);
  reff = new Float32Array(0);
  srcTile = new Int32Array(0);
  srcIndex = new Int32Array(0);

  /** Makes room for `n` candidates, keeping those held. */
  ensure(n: number): void {
    if (n <= this.x.length) return;
    const size = Math.max(n, this.x.length * 2, 1 << 16);
    const keep = this.length;
    this.x = grown(this.x, Float32Array, size, keep);
    this.y = grown(this.y, Float32Array, size, keep);
    this.mag = grown(this.mag, Float32Array, size, keep);
    this.type = grown(this.type, Uint8Array, size, keep);
    this.reff = grown(this.reff, Float32Array, size, keep);
    this.srcTile = grown(this.srcTile, Int32Array, size, keep);
    this.srcIndex = grown(this.srcIndex, Int32Array, size, keep);
  }

  /** Appends object `k` of tile number `ti` (of `tiles`) at pixel (x, y) with magnitude `mag`. */
  push(t: SkyTile, ti: number, k: number, x: number, y: number, mag: number): void {
    const j = this.length++;
    this.x[j] = x;
    this.y[j] = y;
    this.mag[j] = mag;
    this.type[j] = t.type[k];
    this.reff[j] = t.reff[k];
    this.srcTile[j] = ti;
    this.srcIndex[j] = k;
  }

  /**
   * Takes the gathered objects ordered by chip (a stable counting sort of plain column
   * copies) and returns where each chip's run starts: `starts[c]..starts[c + 1]`.
   */
  sortByChip(from: GatherBuffer, chips: number): Int32Array {
    const n = from.length;
    this.length = 0;
    this.ensure(n);
    this.tiles = from.tiles;
    const starts = new Int32Array(chips + 1);
    const chip = from.chip;
    for (let i = 0; i < n; i++) starts[chip[i] + 1]++;
    for (let c = 0; c < chips; c++) starts[c + 1] += starts[c];
    const next = starts.slice(0, chips);
    const { x, y, mag, type, reff, srcTile, srcIndex } = from;
    const tx = this.x;
    const ty = this.y;
    const tm = this.mag;
    const tt = this.type;
    const tr = this.reff;
    const ts = this.srcTile;
    const tk = this.srcIndex;
    for (let i = 0; i < n; i++) {
      const j = next[chip[i]]++;
      tx[j] = x[i];
      ty[j] = y[i];
      tm[j] = mag[i];
      tt[j] = type[i];
      tr[j] = reff[i];
      ts[j] = srcTile[i];
      tk[j] = srcIndex[i];
    }
    this.length = n;
    return starts;
  }
}
