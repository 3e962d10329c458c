// Logarithms for the measurement model's hot loops, a few times cheaper than Math.log10 and
// Math.log here: the exponent comes from the double's bits, the mantissa is divided by the
// nearest of 256 table points and the logarithm of the small remainder is a short series.
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
