// Logarithms and the exponential for the measurement model's hot loops, cheaper than
// Math.log10, Math.log and Math.exp here. Logarithms: the exponent comes from the double's
// bits, the mantissa is divided by the nearest of 256 table points and the logarithm of the
// small remainder is a short series. Exponential: x = (n/256) ln 2 + r, so e^x is a power
// of two times a tabulated 2^(j/256) times a short series in r.
// Within a few units in the last place of the engine's results (a test holds them to it),
// so the float32 catalogue columns computed from them round to other values all but never.
// Deterministic: table and series use IEEE double arithmetic only.

const BITS = new Float64Array(1);
const HI = new Uint32Array(BITS.buffer, 4, 1);
// 2^-(e - 1023) for each biased exponent e: scales a double into [1, 2) exactly.
const SCALE = new Float64Array(2048);
for (let e = 1; e < 2047; e++) SCALE[e] = 2 ** (1023 - e);
// Table points c_i = 1 + (i + 0.5)/256 as 1/c_i, and ln c_i.
const INV = new Float64Array(256);
const LOG_C = new Float64Array(256);
for (let i = 0; i < 256; i++) {
  INV[i] = 1 / (1 + (i + 0.5) / 256);
  LOG_C[i] = -Math.log(INV[i]);
}
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const SMALLEST_NORMAL = 2.2250738585072014e-308;

/** The natural logarithm of `x` (Math.log's for zero, negatives, NaN, infinities and subnormals). */
export function fastLn(x: number): number {
  if (!(x >= SMALLEST_NORMAL && x < Infinity) || !LITTLE_ENDIAN) return Math.log(x);
  BITS[0] = x;
  const hi = HI[0];
  const e = hi >>> 20;
  const i = (hi >>> 12) & 0xff;
  // |r| ≤ 1/512: six terms of ln(1 + r) leave less than 1e-19.
  const r = x * SCALE[e] * INV[i] - 1;
  const series = r * (1 - r * (0.5 - r * (1 / 3 - r * (0.25 - r * (0.2 - r / 6)))));
  return (e - 1023) * Math.LN2 + LOG_C[i] + series;
}

/** The base-10 logarithm of `x`, as {@link fastLn}. */
export function fastLog10(x: number): number {
  return fastLn(x) * Math.LOG10E;
}

// 2^(j/256) for j = 0..255, and powers of two 2^(i - 1100) for the exponential's scaling.
const EXP_TABLE = Float64Array.from({ length: 256 }, (_, j) => 2 ** (j / 256));
const POW2 = Float64Array.from({ length: 2200 }, (_, i) => 2 ** (i - 1100));
// ln 2 / 256 in two parts (ln 2 to more than double precision, split as fdlibm splits it):
// the high part has trailing zero bits, so n times it is exact.
const LN2_256_HI = 6.93147180369123816490e-1 / 256;
const LN2_256_LO = 1.90821492927058770002e-10 / 256;
const EXP_LIMIT = 700;

/** e^x (Math.exp's outside ±700 and for NaN); within a few units in the last place of Math.exp. */
export function fastExp(x: number): number {
  if (!(x > -EXP_LIMIT && x < EXP_LIMIT)) return Math.exp(x);
  const n = Math.round(x * (256 / Math.LN2));
  // |r| ≤ ln 2 / 512: terms to r^6 leave less than 1e-20.
  const r = x - n * LN2_256_HI - n * LN2_256_LO;
  const series = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r / 720)))));
  return POW2[(n >> 8) + 1100] * EXP_TABLE[n & 255] * series;
}
