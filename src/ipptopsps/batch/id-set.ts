// A set of 64-bit IDs held as pairs of 32-bit words in an open-addressed table: membership
// and duplicate tests over hundreds of thousands of IDs without a BigInt per row (reading a
// BigInt64Array element allocates one; a Set<bigint> hashes each).

/** A set of int64 values (as in a BigInt64Array). */
export class IdSet {
  #lo: Int32Array;
  #hi: Int32Array;
  #used: Uint8Array;
  #mask: number;
  #size = 0;

  /** A set sized for about `expected` values. */
  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#lo = new Int32Array(cap);
    this.#hi = new Int32Array(cap);
    this.#used = new Uint8Array(cap);
    this.#mask = cap - 1;
  }

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  #slot(lo: number, hi: number): number {
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    let s = h & this.#mask;
    while (this.#used[s] && (this.#lo[s] !== lo || this.#hi[s] !== hi)) s = (s + 1) & this.#mask;
    return s;
  }

  /** Adds the value of words (lo, hi); returns false when it was there already. */
  addWords(lo: number, hi: number): boolean {
    if (this.#size * 2 >= this.#mask) this.#grow();
    const s = this.#slot(lo, hi);
    if (this.#used[s]) return false;
    this.#used[s] = 1;
    this.#lo[s] = lo;
    this.#hi[s] = hi;
    this.#size++;
    return true;
  }

  /** True when the value of words (lo, hi) is held. */
  hasWords(lo: number, hi: number): boolean {
    return this.#used[this.#slot(lo, hi)] === 1;
  }

  #grow(): void {
    const { lo, hi, used } = { lo: this.#lo, hi: this.#hi, used: this.#used };
    const cap = (this.#mask + 1) * 2;
    this.#lo = new Int32Array(cap);
    this.#hi = new Int32Array(cap);
    this.#used = new Uint8Array(cap);
    this.#mask = cap - 1;
    this.#size = 0;
    for (let s = 0; s < used.length; s++) if (used[s]) this.addWords(lo[s], hi[s]);
  }
}

/** The 32-bit words of an int64 column (little-endian machine order: lo at 2i, hi at 2i+1). */
export function wordsOf(a: BigInt64Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length * 2);
}
