// Fast, seeded random numbers for the simulator. Every value in a survey derives from the
// seed through these functions, so the same arguments give the same bytes on every run
// (32-bit integer arithmetic and IEEE doubles only; Math.log and friends are the engine's
// own, so byte-identical output is promised for one Node version, not across versions).

/** Mixes a 32-bit value so that nearby inputs give unrelated outputs (murmur3's finaliser). */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** One 32-bit seed from several integers (each taken modulo 2^32, the high part folded in). */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = mix32(h ^ lo) + 0x7f4a7c15;
    h = mix32(h ^ hi ^ 0x5bd1e995);
  }
  return h >>> 0;
}

/** Seeds from a text (defect names, filter names): FNV-1a folded through {@link mix32}. */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return mix32(h);
}

// The standard normal quantile at 0 < p < 1 (Acklam's rational approximation, relative
// error below 1.2e-9), used to build the table and to sample the far tails.
const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

/** The standard normal quantile function (inverse CDF) at `p` in (0, 1). */
export function normalQuantile(p: number): number {
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
}

// Normal deviates by table: the quantile function at 4096 evenly spaced probabilities, read
// with linear interpolation by the top 12 bits of one random word (the low 20 bits place the
// point inside the bin). The table fits in L1 cache, so a deviate costs a few nanoseconds;
// the two outermost bins (1 in 2048 draws) are sampled exactly from the quantile function.
const BINS_LOG2 = 12;
const BINS = 1 << BINS_LOG2;
const TABLE = new Float64Array(BINS + 1);
for (let i = 1; i < BINS; i++) TABLE[i] = normalQuantile(i / BINS);
const FRACTION = 1 / (1 << (32 - BINS_LOG2));

// Coarse normal deviates for values whose noise is cosmetic (sky, moments, fit quality):
// 256 quantiles, one byte each, four per random word.
/** The 256 normal quantiles behind {@link Random.coarseNormal}, for tables of functions of them. */
export const COARSE = new Float64Array(256);
for (let i = 0; i < 256; i++) COARSE[i] = normalQuantile((i + 0.5) / 256);

/**
 * xoshiro128** (Blackman and Vigna): a small, fast generator of 32-bit words with a period
 * of 2^128 - 1, seeded from one 32-bit number through splitmix-style mixing.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private bytes = 0;
  private left = 0;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      return mix32(s);
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** The next unsigned 32-bit word. */
  next32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /**
   * Fills `out[0..n)` with the next `n` words. One tight loop with the state in locals: a
   * few times cheaper per word than `next32` calls, for the column-at-a-time writers.
   */
  fillWords(out: Uint32Array, n: number): void {
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let i = 0; i < n; i++) {
      out[i] = Math.imul(rotl(Math.imul(b, 5), 7), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** Fills `out[0..n)` with uniform numbers in [0, 1) (one word each). */
  fillUniform(out: Float64Array, n: number): void {
    const w = words(n);
    this.fillWords(w, n);
    for (let i = 0; i < n; i++) out[i] = w[i] * 2.3283064365386963e-10;
  }

  /** Fills `out[0..n)` with standard normal deviates, as {@link normal} draws them. */
  fillNormal(out: Float64Array, n: number): void {
    const w = words(n);
    this.fillWords(w, n);
    for (let i = 0; i < n; i++) {
      const x = w[i];
      const bin = x >>> (32 - BINS_LOG2);
      if (bin === 0 || bin === BINS - 1) {
        out[i] = normalQuantile((x + 0.5) * 2.3283064365386963e-10);
        continue;
      }
      const lo = TABLE[bin];
      out[i] = lo + (x & ((1 << (32 - BINS_LOG2)) - 1)) * FRACTION * (TABLE[bin + 1] - lo);
    }
  }

  /** Fills `out[0..n)` with coarse normal deviates, as {@link coarseNormal} draws them (four per word). */
  fillCoarse(out: Float64Array, n: number): void {
    const count = (n + 3) >>> 2;
    const w = words(count);
    this.fillWords(w, count);
    const bytes = new Uint8Array(w.buffer, 0, count * 4);
    for (let i = 0; i < n; i++) out[i] = COARSE[bytes[i]];
  }

  /** A uniform number in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.next32() * 2.3283064365386963e-10;
  }

  /** A uniform number in (0, 1): never 0, so its logarithm is finite. */
  open(): number {
    return (this.next32() + 0.5) * 2.3283064365386963e-10;
  }

  /** A uniform integer in [0, n) for n ≤ 2^32. */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A standard normal deviate. */
  normal(): number {
    const w = this.next32();
    const bin = w >>> (32 - BINS_LOG2);
    if (bin === 0 || bin === BINS - 1) return normalQuantile((w + 0.5) * 2.3283064365386963e-10);
    const f = (w & ((1 << (32 - BINS_LOG2)) - 1)) * FRACTION;
    const lo = TABLE[bin];
    return lo + f * (TABLE[bin + 1] - lo);
  }

  /**
   * A coarse standard normal deviate: one of 256 quantiles (|z| < 2.9), a quarter of a
   * random word each. For noise whose exact distribution does not matter.
   */
  coarseNormal(): number {
    return COARSE[this.byte()];
  }

  /** A uniform byte, 0..255 (a quarter of a random word). */
  byte(): number {
    if (this.left === 0) {
      this.bytes = this.next32();
      this.left = 4;
    }
    const b = this.bytes & 0xff;
    this.bytes >>>= 8;
    this.left--;
    return b;
  }

  /** A Poisson-distributed count with this mean (exact below 30, normal approximation above). */
  poisson(mean: number): number {
    if (!(mean > 0)) return 0;
    if (mean < 30) {
      const limit = Math.exp(-mean);
      let k = 0;
      let p = this.uniform();
      while (p > limit) {
        k++;
        p *= this.uniform();
      }
      return k;
    }
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
  }

  /** Shuffles an array in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

// Scratch words for the fill methods (grown as needed; little-endian byte order does not
// matter for coarse deviates, every byte is uniform).
let WORDS = new Uint32Array(1 << 14);
function words(n: number): Uint32Array {
  if (WORDS.length < n) WORDS = new Uint32Array(Math.max(n, WORDS.length * 2));
  return WORDS;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
