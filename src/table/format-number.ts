// Numbers to text, written straight into byte buffers: the hot path of every text writer.
//
// Floats are written as the SHORTEST decimal that reads back to the same value at the
// column's own precision, in the layout of JavaScript's Number#toString (so a float64 cell
// is byte-identical to String(v)). V8's String(v) costs ~200 ns a value and makes a string;
// this costs a fraction of that and makes none.
//
// How: scale v by 10^k (k chosen so that v·10^k has 17 digits, 9 for float32) with a
// double-double power of ten, which gives the integer part exactly and the fraction to
// ~1e-14. The rounding interval of v (half an ulp each side, scaled the same way) then holds
// a handful of integers; the shortest decimal is the one with most trailing zeros among
// them, and among equals the one nearest v. When a bound of that interval lies too close to
// an integer for the arithmetic to decide (rare: exact ties, huge integers) we fall back to
// a slow exact path, so the result is always right.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
const LO = LITTLE_ENDIAN ? 0 : 1;

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

// Powers of ten k in [K_MIN, K_MAX] as double-doubles, times 2^TAU[k] so that every part
// stays a normal double; the value being scaled is multiplied by 2^-TAU[k] to match.
const K_MIN = -300;
const K_MAX = 350;
const K_COUNT = K_MAX - K_MIN + 1;
const P_HI = new Float64Array(K_COUNT);
const P_LO = new Float64Array(K_COUNT);
const P_HH = new Float64Array(K_COUNT); // P_HI split into two halves of 26 bits (Veltkamp)
const P_HL = new Float64Array(K_COUNT);
const TAU = new Int16Array(K_COUNT);

// Exact powers of two 2^n for n in [-1100, 1100].
const POW2_OFF = 1100;
const POW2 = new Float64Array(2 * POW2_OFF + 1);

// 10^n rounded to double, for n in [-350, 350], to find a value's decade.
const POW10_OFF = 350;
const POW10 = new Float64Array(2 * POW10_OFF + 1);

// 10^n for small n, exact, and their inverses.
const POW10_INT = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
const POW10_INV = POW10_INT.map((p) => 1 / p);

// "00".."99" as byte pairs, to write two digits per step.
const DIGIT_PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  DIGIT_PAIRS[2 * i] = 48 + Math.floor(i / 10);
  DIGIT_PAIRS[2 * i + 1] = 48 + (i % 10);
}

// Per biased exponent, the scale 10^k that brings a value of that binade to 9 digits
// (float32: into [1e8, 2e9)) or 17 digits (float64: into [1e16, 2e17)), and half an ulp at
// that scale: the fast paths then need no decade search at all.
const S32 = new Float64Array(256);
const H32 = new Float64Array(256);
const K32 = new Int32Array(256);
const S64_HI = new Float64Array(2048);
const S64_LO = new Float64Array(2048);
const S64_HH = new Float64Array(2048);
const S64_HL = new Float64Array(2048);
const H64 = new Float64Array(2048);
const K64 = new Int32Array(2048);
// binades whose scale 10^k needs no prescaling (TAU = 0)
const FAST64_MIN = 120;
const FAST64_MAX = 1960;

let tablesReady = false;

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

// x · 2^n without overflow or underflow in the intermediate steps.
function ldexp(x: number, n: number): number {
  while (n > 1000) { x *= 2 ** 1000; n -= 1000; }
  while (n < -1000) { x *= 2 ** -1000; n += 1000; }
  return x * 2 ** n;
}

// The double nearest num/den (num, den > 0n), to ~64 bits before the final rounding.
function ratioToDouble(num: bigint, den: bigint): number {
  const s = 66 + bitLength(den) - bitLength(num);
  const q = s >= 0 ? (num << BigInt(s)) / den : num / (den << BigInt(-s));
  return ldexp(Number(q), -s);
}

// A double as an exact integer mantissa and power of two.
function decompose(x: number): { m: bigint; e: number } {
  f64[0] = x;
  const hi = f64Words[HI];
  const lo = f64Words[LO];
  const bexp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (bexp !== 0) m |= 1n << 52n;
  return { m, e: (bexp === 0 ? 1 : bexp) - 1075 };
}

function splitHigh(x: number): number {
  const c = 134217729 * x;
  return c - (c - x);
}

function initTables(): void {
  for (let n = -POW2_OFF; n <= POW2_OFF; n++) POW2[n + POW2_OFF] = ldexp(1, n);
  for (let n = -POW10_OFF; n <= POW10_OFF; n++) POW10[n + POW10_OFF] = Number(`1e${n}`);
  for (let k = K_MIN; k <= K_MAX; k++) {
    const tau = k > 290 ? -256 : k < -270 ? 128 : 0;
    // 10^k · 2^tau as num/den
    let num = 1n;
    let den = 1n;
    if (k >= 0) num = 10n ** BigInt(k); else den = 10n ** BigInt(-k);
    if (tau >= 0) num <<= BigInt(tau); else den <<= BigInt(-tau);
    const hi = ratioToDouble(num, den);
    // residual = num/den - hi, exactly, as rn/rd
    const { m, e } = decompose(hi);
    let rn: bigint;
    let rd: bigint;
    if (e >= 0) { rn = num - ((m * den) << BigInt(e)); rd = den; } else { rn = (num << BigInt(-e)) - m * den; rd = den << BigInt(-e); }
    const lo = rn === 0n ? 0 : rn > 0n ? ratioToDouble(rn, rd) : -ratioToDouble(-rn, rd);
    const i = k - K_MIN;
    P_HI[i] = hi;
    P_LO[i] = lo;
    P_HH[i] = splitHigh(hi);
    P_HL[i] = hi - P_HH[i];
    TAU[i] = tau;
  }
  for (let bexp = 1; bexp < 255; bexp++) {
    const k = 8 - ((bexp - 127) * 78913 >> 18);
    const i = k - K_MIN;
    S32[bexp] = P_HI[i];
    H32[bexp] = ldexp(P_HI[i], bexp - 151) + ldexp(P_LO[i], bexp - 151);
    K32[bexp] = k;
  }
  for (let bexp = FAST64_MIN; bexp <= FAST64_MAX; bexp++) {
    const k = 16 - ((bexp - 1023) * 78913 >> 18);
    const i = k - K_MIN;
    S64_HI[bexp] = P_HI[i];
    S64_LO[bexp] = P_LO[i];
    S64_HH[bexp] = P_HH[i];
    S64_HL[bexp] = P_HL[i];
    H64[bexp] = ldexp(P_HI[i], bexp - 1076) + ldexp(P_LO[i], bexp - 1076);
    K64[bexp] = k;
  }
  tablesReady = true;
}

// Results of the shortest-digit searches: the value is (dHigh·10^dLowWidth + dLow)·10^dExp.
let dHigh = 0;
let dLow = 0;
let dLowWidth = 0;
let dExp = 0;

const EPS64 = 1e-9;

/**
 * {@link writeFloat64} of `values[index]`: the form for loops (no number is boxed per call).
 * The common case (a normal double of a binade within FAST64_MIN..MAX, not a small integer)
 * is done here, with the scale looked up by exponent; the rest goes to float64Special.
 */
export function writeFloat64At(out: Uint8Array, pos: number, values: Float64Array, index: number): number {
  let v = values[index];
  if (!tablesReady) initTables();
  const negative = v < 0;
  if (negative) v = -v;
  f64[0] = v;
  const hi = f64Words[HI];
  const bexp = (hi >>> 20) & 0x7ff;
  if (bexp < FAST64_MIN || bexp > FAST64_MAX || (v < 2147483648 && v === Math.floor(v))) return float64Special(out, pos, values, index);
  const ph = S64_HI[bexp];
  const p = v * ph; // in [1e16, 2e17): an integer
  const c = 134217729 * v;
  const vh = c - (c - v);
  const vl = v - vh;
  const phh = S64_HH[bexp];
  const phl = S64_HL[bexp];
  const w = (((vh * phh - p) + vh * phl + vl * phh) + vl * phl) + v * S64_LO[bexp];
  const Hu = H64[bexp];
  const Hl = bexp > 1 && (hi & 0xfffff) === 0 && f64Words[LO] === 0 ? Hu * 0.5 : Hu;
  const wu = w + Hu;
  const wl = w - Hl;
  const fu = Math.floor(wu);
  const fl = Math.ceil(wl);
  const du = wu - fu;
  const dl = fl - wl;
  if (du < EPS64 || du > 1 - EPS64 || dl < EPS64 || dl > 1 - EPS64) return writeAscii(out, pos, String(values[index]));
  const k = K64[bexp];
  // p = Q·1e8 + r, both exact, Q below 2^31
  let Q = Math.floor(p / 1e8);
  let r = p - Q * 1e8;
  if (r < 0) { Q--; r += 1e8; } else if (r >= 1e8) { Q++; r -= 1e8; }
  let qa = Q;
  let aL = r + fl;
  if (aL < 0) { qa--; aL += 1e8; } else if (aL >= 1e8) { qa++; aL -= 1e8; }
  let qb = Q;
  let bL = r + fu;
  if (bL < 0) { qb--; bL += 1e8; } else if (bL >= 1e8) { qb++; bL -= 1e8; }
  if (qa !== qb || aL === 0) {
    // a multiple of 1e8 is inside; there is only one (the interval is narrower than 1e8)
    dHigh = aL === 0 ? qa : qb;
    dLow = 0;
    dLowWidth = 0;
    dExp = 8 - k;
    return emitResult(out, pos, negative);
  }
  let vm = (aL - 1) | 0;
  let vp = bL | 0;
  let d = 0;
  let np = (vp / 10) | 0;
  let nm = (vm / 10) | 0;
  while (np > nm) {
    vp = np;
    vm = nm;
    d++;
    np = (vp / 10) | 0;
    nm = (vm / 10) | 0;
  }
  let cand = vp;
  if (vp !== vm + 1) {
    let t: number;
    let frac: number;
    if (d === 0) {
      const fw = Math.floor(w);
      t = (Q - qa) * 1e8 + r + fw;
      frac = w - fw;
    } else {
      const x = ((Q - qa) * 1e8 + r + w) / POW10_INT[d];
      t = Math.floor(x);
      frac = x - t;
    }
    if (frac > 0.499999 && frac < 0.500001) return writeAscii(out, pos, String(values[index]));
    cand = frac > 0.5 ? t + 1 : t;
    if (cand <= vm) cand = vm + 1; else if (cand > vp) cand = vp;
  }
  // The common layout, a point within the first nine or ten digits, written in place: the
  // integer digits, the point, then the rest (cand has no trailing zero: the search above
  // stops only where no multiple of ten is left).
  const lw = 8 - d;
  const hw = qa < 1000000000 ? 9 : 10;
  const n = hw + lw + d - k;
  // (qa has nine or ten digits by the choice of scale; the check only keeps this layout safe)
  if (n > 0 && n <= hw && qa >= 100000000) {
    const fw = hw - n;
    const scale = POW10_INT[fw];
    const ip = (qa / scale) | 0;
    if (negative) out[pos++] = 45;
    putDigits(out, pos, ip, n);
    pos += n;
    out[pos++] = 46;
    if (fw > 0) {
      putDigits(out, pos, qa - ip * scale, fw);
      pos += fw;
    }
    putDigits(out, pos, cand, lw);
    return pos + lw;
  }
  dHigh = qa;
  dLow = cand;
  dLowWidth = lw;
  dExp = d - k;
  return emitResult(out, pos, negative);
}

// Shortest digits of |values[index]| (finite, not 0). False when the fast arithmetic cannot
// decide. Takes the array, not the value, so that no number is boxed for the call.
function shortest64(values: Float64Array, index: number): boolean {
  let v = values[index];
  if (v < 0) v = -v;
  f64[0] = v;
  const hi = f64Words[HI];
  const lo = f64Words[LO];
  const bexp = (hi >>> 20) & 0x7ff;
  let e2: number;
  let ulpExp: number;
  if (bexp === 0) {
    const mh = hi & 0xfffff;
    e2 = (mh !== 0 ? 63 - Math.clz32(mh) : 31 - Math.clz32(lo)) - 1074;
    ulpExp = -1074;
  } else {
    e2 = bexp - 1023;
    ulpExp = bexp - 1075;
  }
  const lowerHalf = bexp > 1 && (hi & 0xfffff) === 0 && lo === 0;
  let e10 = Math.floor(e2 * 0.30102999566398114);
  if (v >= POW10[e10 + 1 + POW10_OFF]) e10++;
  for (let attempt = 0; attempt < 4; attempt++) {
    const k = 16 - e10;
    const i = k - K_MIN;
    const tau = TAU[i];
    const vs = tau === 0 ? v : v * POW2[POW2_OFF - tau];
    const ph = P_HI[i];
    const pl = P_LO[i];
    // vs · (ph + pl) = p + w, p exact product's rounding, w the rest (two-product)
    const p = vs * ph;
    const c = 134217729 * vs;
    const vh = c - (c - vs);
    const vl = vs - vh;
    const phh = P_HH[i];
    const phl = P_HL[i];
    let w = (((vh * phh - p) + vh * phl + vl * phh) + vl * phl) + vs * pl;
    if (p < 1e16 - 64) { e10--; continue; }
    if (p >= 1e17 + 64) { e10++; continue; }
    const I = Math.floor(p);
    w += p - I;
    const hu = POW2[POW2_OFF + ulpExp - 1 - tau];
    const Hu = hu * ph + hu * pl;
    // subnormals have fewer significant bits, so a wider interval than the split handles
    if (Hu > 1e6) return false;
    const Hl = lowerHalf ? Hu * 0.5 : Hu;
    const wu = w + Hu;
    const wl = w - Hl;
    const fu = Math.floor(wu);
    const fl = Math.ceil(wl);
    if (wu - fu < EPS64 || fu + 1 - wu < EPS64 || fl - wl < EPS64 || wl - (fl - 1) < EPS64) return false;
    // I = Q·1e8 + r, both exact
    let Q = Math.floor(I / 1e8);
    let r = I - Q * 1e8;
    if (r < 0) { Q--; r += 1e8; } else if (r >= 1e8) { Q++; r -= 1e8; }
    let qa = Q;
    let aL = r + fl;
    if (aL < 0) { qa--; aL += 1e8; } else if (aL >= 1e8) { qa++; aL -= 1e8; }
    let qb = Q;
    let bL = r + fu;
    if (bL < 0) { qb--; bL += 1e8; } else if (bL >= 1e8) { qb++; bL -= 1e8; }
    if (qa > qb || (qa === qb && aL > bL)) { e10--; continue; } // no integer inside: decade misjudged
    if (qa !== qb || aL === 0) {
      // a multiple of 1e8 is inside; there is only one (the interval is narrower than 1e8)
      dHigh = aL === 0 ? qa : qb;
      dLow = 0;
      dLowWidth = 0;
      dExp = 8 - k;
      return true;
    }
    // aL, bL < 1e8: 32-bit integer arithmetic from here
    let vm = (aL - 1) | 0;
    let vp = bL | 0;
    let d = 0;
    while (d < 8) {
      const np = (vp / 10) | 0;
      const nm = (vm / 10) | 0;
      if (np <= nm) break;
      vp = np;
      vm = nm;
      d++;
    }
    let cand: number;
    if (vp === vm + 1) {
      cand = vp;
    } else {
      let t: number;
      let frac: number;
      if (d === 0) {
        const fw = Math.floor(w);
        t = (Q - qa) * 1e8 + r + fw;
        frac = w - fw;
      } else {
        const x = ((Q - qa) * 1e8 + r + w) / POW10_INT[d];
        t = Math.floor(x);
        frac = x - t;
      }
      if (Math.abs(frac - 0.5) < 1e-6) return false;
      cand = frac > 0.5 ? t + 1 : t;
      if (cand <= vm) cand = vm + 1; else if (cand > vp) cand = vp;
    }
    dHigh = qa;
    dLow = cand;
    dLowWidth = 8 - d;
    dExp = d - k;
    return true;
  }
  return false;
}

// Float32 values have 24 significant bits, so a plain double product v·10^k (error below
// 4e-7 at that scale) decides every case whose interval bounds lie further than 1e-6 from an
// integer; the rest (rare) go to the exact slow path.

/**
 * {@link writeFloat32} of `values[index]`: the form for loops (no number is boxed per call;
 * one call per value, the rare cases aside).
 */
export function writeFloat32At(out: Uint8Array, pos: number, values: Float32Array, index: number): number {
  let v = values[index];
  if (!tablesReady) initTables();
  if (v < 0) {
    out[pos++] = 45;
    v = -v;
  }
  f32[0] = v;
  const bits = f32Bits[0];
  const bexp = (bits >>> 23) & 0xff;
  // NaN, infinities, zeros, subnormals and small integers take the other paths
  if (bexp === 0 || bexp === 255 || (v < 16777216 && v === Math.floor(v))) return float32Special(out, pos, v, values[index]);
  const ph = S32[bexp];
  const k = K32[bexp];
  const a = v * ph; // in [1e8, 2e9)
  const I = a | 0;
  const w = a - I;
  const Hu = H32[bexp];
  const Hl = bexp > 1 && (bits & 0x7fffff) === 0 ? Hu * 0.5 : Hu;
  const wu = w + Hu;
  const wl = w - Hl;
  const fu = wu | 0;
  const fl = Math.ceil(wl);
  // The 1e-6 margin also keeps the result clear of the float32 midpoints by more than a
  // double's rounding error, so reading it as a double, then rounding to float32, is safe too.
  if (Math.abs(wu - fu - 0.5) > 0.499999 || Math.abs(fl - wl - 0.5) > 0.499999) return writeAscii(out, pos, slowShortest32(v));
  // integers (I+fl .. I+fu) lie in the interval; keep the one with most trailing zeros
  // Levels 1 and 2 (one or two trailing zeros) are computed straight, without a loop whose
  // exit the processor cannot predict; deeper ones (round values) loop.
  const p0 = I + fu;
  const m0 = I + fl - 1;
  const p1 = (p0 / 10) | 0;
  const m1 = (m0 / 10) | 0;
  const p2 = (p0 / 100) | 0;
  const m2 = (m0 / 100) | 0;
  let d = (p1 > m1 ? 1 : 0) + (p2 > m2 ? 1 : 0);
  let vp = d === 2 ? p2 : d === 1 ? p1 : p0;
  let vm = d === 2 ? m2 : d === 1 ? m1 : m0;
  if (d === 2) {
    let np = (vp / 10) | 0;
    let nm = (vm / 10) | 0;
    while (np > nm) {
      vp = np;
      vm = nm;
      d++;
      np = (vp / 10) | 0;
      nm = (vm / 10) | 0;
    }
  }
  let cand = vp;
  if (vp !== vm + 1) {
    // several: the nearest to v
    let t: number;
    let frac: number;
    if (d === 0) {
      t = I;
      frac = w;
    } else {
      const x = a * POW10_INV[d];
      t = x | 0;
      frac = x - t;
    }
    if (Math.abs(frac - 0.5) < 0.00001) return writeAscii(out, pos, slowShortest32(v));
    cand = Math.min(vp, Math.max(vm + 1, t + (frac > 0.5 ? 1 : 0)));
  }
  // no candidate at the last level ends in 0 (else the search would have gone one further)
  const exp = d - k;
  const nd = digitCount(cand);
  const n = nd + exp; // value = 0.digits × 10^n
  if (n <= -6 || n > 21) {
    dHigh = cand;
    dLow = 0;
    dLowWidth = 0;
    dExp = exp;
    return emitResult(out, pos, false);
  }
  if (n <= 0) {
    out[pos++] = 48;
    out[pos++] = 46;
    for (let i = n; i < 0; i++) out[pos++] = 48;
    putDigits(out, pos, cand, nd);
    return pos + nd;
  }
  if (nd <= n) {
    putDigits(out, pos, cand, nd);
    pos += nd;
    for (let i = nd; i < n; i++) out[pos++] = 48;
    return pos;
  }
  // fraction digits, the point, then the integer digits, written from the end
  let p = pos + nd + 1;
  let x = cand;
  let f = nd - n;
  while (f >= 2) {
    const q = (x / 100) | 0;
    const r2 = (x - q * 100) << 1;
    out[--p] = DIGIT_PAIRS[r2 + 1];
    out[--p] = DIGIT_PAIRS[r2];
    x = q;
    f -= 2;
  }
  if (f === 1) {
    const q = (x / 10) | 0;
    out[--p] = 48 + x - q * 10;
    x = q;
  }
  out[p - 1] = 46;
  putDigits(out, pos, x, n);
  return pos + nd + 1;
}

// x (below 2^31) as exactly `width` digits, zero-padded, at out[at..at+width).
function putDigits(out: Uint8Array, at: number, x: number, width: number): void {
  let pos = at + width;
  while (x >= 100) {
    const q = (x / 100) | 0;
    const r2 = (x - q * 100) << 1;
    out[--pos] = DIGIT_PAIRS[r2 + 1];
    out[--pos] = DIGIT_PAIRS[r2];
    x = q;
  }
  if (x >= 10) {
    out[--pos] = DIGIT_PAIRS[(x << 1) + 1];
    out[--pos] = DIGIT_PAIRS[x << 1];
  } else {
    out[--pos] = 48 + x;
  }
  while (pos > at) out[--pos] = 48;
}

// Decimal digits of 0 <= x < 2^31.
function digitCount(x: number): number {
  if (x < 100000) return x < 100 ? (x < 10 ? 1 : 2) : x < 1000 ? 3 : x < 10000 ? 4 : 5;
  return x < 10000000 ? (x < 1000000 ? 6 : 7) : x < 100000000 ? 8 : x < 1000000000 ? 9 : 10;
}

// Lays out the current result like Number#toString; returns the new position.
function emitResult(out: Uint8Array, pos: number, negative: boolean): number {
  let high = dHigh | 0;
  let low = dLow | 0;
  let lowWidth = dLowWidth;
  let exp = dExp;
  // drop trailing zeros, which the layout would print as zeros anyway
  if (lowWidth > 0 && low === 0) { exp += lowWidth; lowWidth = 0; }
  if (lowWidth > 0) {
    while (low % 10 === 0) { low = (low / 10) | 0; lowWidth--; exp++; }
  } else {
    while (high % 10 === 0) { high = (high / 10) | 0; exp++; }
  }
  const hw = digitCount(high);
  const nd = hw + lowWidth;
  const n = nd + exp; // value = 0.digits × 10^n
  if (negative) out[pos++] = 45;
  if (0 < n && n <= 21) {
    if (nd <= n) {
      putDigits(out, pos, high, hw);
      if (lowWidth > 0) putDigits(out, pos + hw, low, lowWidth);
      pos += nd;
      for (let i = nd; i < n; i++) out[pos++] = 48;
      return pos;
    }
    // digits one place to the right, then the integer part back left of the point
    putDigits(out, pos + 1, high, hw);
    if (lowWidth > 0) putDigits(out, pos + 1 + hw, low, lowWidth);
    for (let i = 0; i < n; i++) out[pos + i] = out[pos + i + 1];
    out[pos + n] = 46;
    return pos + nd + 1;
  }
  if (-6 < n && n <= 0) {
    out[pos++] = 48;
    out[pos++] = 46;
    for (let i = n; i < 0; i++) out[pos++] = 48;
    putDigits(out, pos, high, hw);
    if (lowWidth > 0) putDigits(out, pos + hw, low, lowWidth);
    return pos + nd;
  }
  putDigits(out, pos + 1, high, hw);
  if (lowWidth > 0) putDigits(out, pos + 1 + hw, low, lowWidth);
  out[pos] = out[pos + 1];
  if (nd > 1) { out[pos + 1] = 46; pos += nd + 1; } else pos += 1;
  out[pos++] = 101;
  let e = n - 1;
  if (e < 0) { out[pos++] = 45; e = -e; } else out[pos++] = 43;
  if (e >= 100) { out[pos++] = 48 + ((e / 100) | 0); e %= 100; out[pos++] = 48 + ((e / 10) | 0); out[pos++] = 48 + (e % 10); } else if (e >= 10) { out[pos++] = 48 + ((e / 10) | 0); out[pos++] = 48 + (e % 10); } else out[pos++] = 48 + e;
  return pos;
}

function writeAscii(out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

/** Longest output of {@link writeFloat64} / {@link writeFloat32}, in bytes. */
export const MAX_FLOAT_CHARS = 32;

const box64 = new Float64Array(1);
const box32 = new Float32Array(1);

/**
 * Writes a double as the shortest decimal that reads back to it, laid out as String(v)
 * ("NaN", "Infinity" included); returns the position after it. Needs 32 free bytes.
 */
export function writeFloat64(out: Uint8Array, pos: number, v: number): number {
  box64[0] = v;
  return writeFloat64At(out, pos, box64, 0);
}

// The cases the fast double path leaves: NaN, infinities, zeros, integers below 2^31, and
// binades that need a prescaled power of ten (tiny, huge, subnormal).
function float64Special(out: Uint8Array, pos: number, values: Float64Array, index: number): number {
  const v = values[index];
  if (v !== v) return writeAscii(out, pos, 'NaN');
  if (v === 0) { out[pos] = 48; return pos + 1; }
  const negative = v < 0;
  const a = negative ? -v : v;
  if (a === Infinity) return writeAscii(out, pos, negative ? '-Infinity' : 'Infinity');
  if (a < 2147483648 && a === Math.floor(a)) {
    if (negative) out[pos++] = 45;
    return writeUnsigned(out, pos, a);
  }
  if (!shortest64(values, index)) return writeAscii(out, pos, String(v));
  return emitResult(out, pos, negative);
}

/**
 * Writes a float32 value as the shortest decimal that reads back to the same float32 (as
 * Math.fround(Number(text)) or any correctly rounding float parser), laid out like
 * Number#toString; returns the position after it. Needs 32 free bytes.
 */
export function writeFloat32(out: Uint8Array, pos: number, v: number): number {
  box32[0] = v;
  return writeFloat32At(out, pos, box32, 0);
}

// The cases the fast float32 path leaves: NaN, infinities, zeros, subnormals, integers
// below 2^24. `a` is the magnitude (the sign is already written), `v` the value.
function float32Special(out: Uint8Array, pos: number, a: number, v: number): number {
  if (v !== v) return writeAscii(out, pos, 'NaN');
  if (a === Infinity) return writeAscii(out, pos, 'Infinity');
  if (a === 0) {
    // -0 is not below 0, so no sign was written: "0", like String(-0)
    out[pos] = 48;
    return pos + 1;
  }
  if (a < 16777216 && a === Math.floor(a)) return writeUnsigned(out, pos, a);
  return writeAscii(out, pos, slowShortest32(a));
}

// The exact path: the nearest p-digit decimal for growing p until one reads back.
function slowShortest32(v: number): string {
  for (let p = 1; p < 9; p++) {
    const s = v.toPrecision(p);
    const x = Number(s);
    if (Math.fround(x) === v) return String(x);
  }
  return String(Number(v.toPrecision(9)));
}

/** Writes a non-negative integer below 2^53; returns the position after it. */
export function writeUnsigned(out: Uint8Array, pos: number, v: number): number {
  if (v >= 2147483648) {
    // beyond 32-bit integer arithmetic: the high digits, then eight more
    const high = Math.floor(v / 1e8);
    pos = writeUnsigned(out, pos, high);
    putDigits(out, pos, v - high * 1e8, 8);
    return pos + 8;
  }
  const n = digitCount(v);
  putDigits(out, pos, v, n);
  return pos + n;
}

/** Writes an integer of magnitude below 2^53; returns the position after it. */
export function writeInteger(out: Uint8Array, pos: number, v: number): number {
  if (v > -2147483648 && v < 2147483648) return writeInt32(out, pos, v);
  if (v < 0) { out[pos++] = 45; v = -v; }
  return writeUnsigned(out, pos, v);
}

/**
 * Writes an integer in (-2^31, 2^31); returns the position after it. Self-contained (no
 * calls), so that it inlines into the loops of the writers.
 */
export function writeInt32(out: Uint8Array, pos: number, v: number): number {
  if (v < 0) { out[pos++] = 45; v = -v; }
  let x = v | 0;
  const n = digitCount(x);
  let p = pos + n;
  while (x >= 100) {
    const q = (x / 100) | 0;
    const r2 = (x - q * 100) << 1;
    out[--p] = DIGIT_PAIRS[r2 + 1];
    out[--p] = DIGIT_PAIRS[r2];
    x = q;
  }
  if (x >= 10) {
    out[p - 1] = DIGIT_PAIRS[(x << 1) + 1];
    out[p - 2] = DIGIT_PAIRS[x << 1];
  } else {
    out[p - 1] = 48 + x;
  }
  return pos + n;
}

/**
 * Writes a 64-bit integer given as its two 32-bit halves (`lo` unsigned, `hi` signed for
 * int64 or unsigned for uint64), exactly, without making a bigint.
 */
export function writeInt64Parts(out: Uint8Array, pos: number, lo: number, hi: number, signed: boolean): number {
  lo >>>= 0;
  if (signed) {
    hi |= 0;
    if (hi < 0) {
      // two's complement negation of (hi, lo)
      out[pos++] = 45;
      lo = (~lo + 1) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
  } else {
    hi >>>= 0;
  }
  if (hi === 0 && lo < 2147483648) return writeInt32(out, pos, lo);
  // value = hi·2^32 + lo = 1e6·Y + r6 with Y = yHigh·1e8 + yLow; every step exact in doubles
  // (quotients by multiplying with the reciprocal, then one correcting step: the product's
  // error is far below one unit, and the remainders are exact)
  let qh = Math.floor(hi * 1e-6);
  let rh = hi - qh * 1e6;
  if (rh < 0) { qh--; rh += 1e6; } else if (rh >= 1e6) { qh++; rh -= 1e6; }
  const y = rh * 4294967296 + lo;
  let qy = Math.floor(y * 1e-6);
  let r6 = y - qy * 1e6;
  if (r6 < 0) { qy--; r6 += 1e6; } else if (r6 >= 1e6) { qy++; r6 -= 1e6; }
  const Y = qh * 4294967296 + qy;
  let yHigh = Math.floor(Y * 1e-8);
  let yLow = Y - yHigh * 1e8;
  if (yLow < 0) { yHigh--; yLow += 1e8; } else if (yLow >= 1e8) { yHigh++; yLow -= 1e8; }
  if (yHigh === 0) {
    pos = writeInt32(out, pos, yLow);
  } else {
    pos = writeInt32(out, pos, yHigh);
    putDigits(out, pos, yLow, 8);
    pos += 8;
  }
  putDigits(out, pos, r6, 6);
  return pos + 6;
}

const scratch = new Uint8Array(64);
const latin1 = new TextDecoder('latin1');

/** The shortest decimal that reads back to the double `v` (equal to String(v)). */
export function formatFloat64(v: number): string {
  return latin1.decode(scratch.subarray(0, writeFloat64(scratch, 0, v)));
}

/** The shortest decimal that reads back to the float32 value `v`, laid out like String(v). */
export function formatFloat32(v: number): string {
  return latin1.decode(scratch.subarray(0, writeFloat32(scratch, 0, v)));
}
