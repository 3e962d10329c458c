// A set of 64-bit IDs held as pairs of 32-bit words in an open-addressed table: membership
// and duplicate tests over hundreds of thousands of IDs without a BigInt per row (reading a
// BigInt64Array element allocates one; a Set<bigint> hashes each). A slot's two words sit
// side by side, so that a probe touches one cache line; an empty slot holds the words of
// −2^63, and that value itself, when added, is remembered apart.

const EMPTY_HI = -0x80000000;
const EMPTY_LO = 0;

/** A set of int64 values (as in a BigInt64Array). */
export class IdSet {
  #slots: Int32Array;
  #mask: number;
  #size = 0;
  #hasEmpty = false;

  /** A set sized for about `expected` values. */
  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#slots = IdSet.#table(cap);
    this.#mask = cap - 1;
  }

  static #table(cap: number): Int32Array {
    const t = new Int32Array(2 * cap);
    for (let s = 1; s < t.length; s += 2) t[s] = EMPTY_HI;
    return t;
  }

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  // The slot holding (lo, hi), or the empty slot where it would go.
  #slot(lo: number, hi: number): number {
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    const t = this.#slots;
    const mask = this.#mask;
    let s = h & mask;
    for (;;) {
      const l = t[2 * s];
      const u = t[2 * s + 1];
      if ((l === lo && u === hi) || (l === EMPTY_LO && u === EMPTY_HI)) return s;
      s = (s + 1) & mask;
    }
  }

  /** Adds the value of words (lo, hi); returns false when it was there already. */
  addWords(lo: number, hi: number): boolean {
    lo |= 0;
    hi |= 0;
    if (lo === EMPTY_LO && hi === EMPTY_HI) {
      if (this.#hasEmpty) return false;
      this.#hasEmpty = true;
      this.#size++;
      return true;
    }
    if (this.#size * 2 >= this.#mask) this.#grow();
    const s = this.#slot(lo, hi);
    const t = this.#slots;
    if (t[2 * s] === lo && t[2 * s + 1] === hi) return false;
    t[2 * s] = lo;
    t[2 * s + 1] = hi;
    this.#size++;
    return true;
  }

  /** True when the value of words (lo, hi) is held. */
  hasWords(lo: number, hi: number): boolean {
    lo |= 0;
    hi |= 0;
    if (lo === EMPTY_LO && hi === EMPTY_HI) return this.#hasEmpty;
    const s = this.#slot(lo, hi);
    return this.#slots[2 * s] === lo && this.#slots[2 * s + 1] === hi;
  }

  #grow(): void {
    const old = this.#slots;
    const cap = (this.#mask + 1) * 2;
    this.#slots = IdSet.#table(cap);
    this.#mask = cap - 1;
    for (let s = 0; s < old.length; s += 2) {
      const lo = old[s];
      const hi = old[s + 1];
      if (lo === EMPTY_LO && hi === EMPTY_HI) continue;
      const at = this.#slot(lo, hi);
      this.#slots[2 * at] = lo;
      this.#slots[2 * at + 1] = hi;
    }
  }
}

/** The 32-bit words of an int64 column (little-endian machine order: lo at 2i, hi at 2i+1). */
export function wordsOf(a: BigInt64Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length * 2);
}
