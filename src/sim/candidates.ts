// The true objects an exposure (or stack) may detect, gathered from the sky tiles and
// sorted by chip: growable columns reused from exposure to exposure.
import type { Candidates } from './detections.ts';

/** Growable candidate columns with the chip of each and where it came from (tile, index). */
export class CandidateBuffer implements Candidates {
  length = 0;
  x = new Float64Array(0);
  y = new Float64Array(0);
  ra = new Float64Array(0);
  dec = new Float64Array(0);
  cosDec = new Float64Array(0);
  mag = new Float64Array(0);
  type = new Uint8Array(0);
  reff = new Float32Array(0);
  axisRatio = new Float32Array(0);
  angle = new Float32Array(0);
  objId = new Float64Array(0);
  chip = new Int16Array(0);
  srcTile = new Int32Array(0);
  srcIndex = new Int32Array(0);

  constructor(capacity = 65536) {
    this.grow(capacity);
  }

  /** Makes room for `n` candidates, keeping those held. */
  ensure(n: number): void {
    if (n > this.x.length) this.grow(Math.max(n, this.x.length * 2));
  }

  private grow(size: number): void {
    const keep = <T extends Float64Array | Float32Array | Uint8Array | Int16Array | Int32Array>(a: T, C: new (n: number) => T): T => {
      const b = new C(size);
      b.set(a.subarray(0, this.length) as never);
      return b;
    };
    this.x = keep(this.x, Float64Array);
    this.y = keep(this.y, Float64Array);
    this.ra = keep(this.ra, Float64Array);
    this.dec = keep(this.dec, Float64Array);
    this.cosDec = keep(this.cosDec, Float64Array);
    this.mag = keep(this.mag, Float64Array);
    this.type = keep(this.type, Uint8Array);
    this.reff = keep(this.reff, Float32Array);
    this.axisRatio = keep(this.axisRatio, Float32Array);
    this.angle = keep(this.angle, Float32Array);
    this.objId = keep(this.objId, Float64Array);
    this.chip = keep(this.chip, Int16Array);
    this.srcTile = keep(this.srcTile, Int32Array);
    this.srcIndex = keep(this.srcIndex, Int32Array);
  }

  /**
   * Copies the candidates of `from` into this buffer ordered by chip (stable), and returns
   * where each chip's run starts: `starts[c]..starts[c + 1]`.
   */
  sortByChip(from: CandidateBuffer, chips: number): Int32Array {
    const n = from.length;
    this.length = 0;
    this.ensure(n);
    const starts = new Int32Array(chips + 1);
    for (let i = 0; i < n; i++) starts[from.chip[i] + 1]++;
    for (let c = 0; c < chips; c++) starts[c + 1] += starts[c];
    const next = starts.slice(0, chips);
    for (let i = 0; i < n; i++) {
      const j = next[from.chip[i]]++;
      this.x[j] = from.x[i];
      this.y[j] = from.y[i];
      this.ra[j] = from.ra[i];
      this.dec[j] = from.dec[i];
      this.cosDec[j] = from.cosDec[i];
      this.mag[j] = from.mag[i];
      this.type[j] = from.type[i];
      this.reff[j] = from.reff[i];
      this.axisRatio[j] = from.axisRatio[i];
      this.angle[j] = from.angle[i];
      this.objId[j] = from.objId[i];
      this.chip[j] = from.chip[i];
      this.srcTile[j] = from.srcTile[i];
      this.srcIndex[j] = from.srcIndex[i];
    }
    this.length = n;
    return starts;
  }
}
