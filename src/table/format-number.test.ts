import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatFloat32, formatFloat64, writeFloat32At, writeFloat64At, writeInt64Parts, writeInteger,
} from './format-number.ts';
import { mulberry32 } from '../common/index.ts';

// A deterministic generator, so a failure can be replayed.
const rng = mulberry32;

const bits64 = new Float64Array(1);
const words64 = new Uint32Array(bits64.buffer);
const bits32 = new Float32Array(1);
const word32 = new Uint32Array(bits32.buffer);

test('float64: equals String(v) for random bit patterns, decades, binades and edge values', () => {
  const next = rng(1);
  const values: number[] = [
    Number.MAX_VALUE, Number.MIN_VALUE, 2.2250738585072014e-308, 2.225073858507201e-308, 1e23,
    9007199254740992, 2 ** 53 + 2, 1e21, 1e-7, 1.5e-7, 123456789012345680000,
    0.1, 0.2, 0.30000000000000004, 1 / 3, 2 / 3, 5e-324, 1.7976931348623157e308, -0, 0, NaN,
    Infinity, -Infinity, 2147483648, 2147483647.5, -2147483648,
  ];
  for (let i = 0; i < 300_000; i++) {
    words64[0] = next();
    words64[1] = next();
    values.push(bits64[0]);
  }
  for (let e = -330; e <= 310; e++) {
    const p = Number(`1e${e}`);
    values.push(p, p * (1 + 2 ** -52), p * (1 - 2 ** -53), -p);
  }
  for (let e = -1074; e <= 1023; e++) values.push(2 ** e, 3 * 2 ** e, -(2 ** e) * 1.25);
  for (let i = 0; i < 20_000; i++) values.push(i / 1000, i * 0.1, i / 7, Math.round(next() * 1e6) / 1e3, next() * 2 ** 40);
  let bad = 0;
  for (const v of values) {
    const ours = formatFloat64(v);
    if (ours !== String(v)) {
      bad++;
      if (bad < 5) assert.equal(ours, String(v), `bits ${v}`);
    }
  }
  assert.equal(bad, 0);
});

// The fewest significant digits p for which some p-digit decimal reads back to v.
function fewestDigits32(v: number): number {
  for (let p = 1; p < 9; p++) if (Math.fround(Number(v.toPrecision(p))) === v) return p;
  return 9;
}

function significantDigits(s: string): number {
  const mantissa = s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '');
  return mantissa.replace(/^0+/, '').replace(/0+$/, '').length || 1;
}

test('float32: shortest text that reads back to the same float32, nearest among the shortest', () => {
  const next = rng(2);
  const values: number[] = [3.4028234663852886e38, 1.401298464324817e-45, 1.1754943508222875e-38, 16777216, 16777218, 0.1, 1e-10].map(Math.fround);
  for (let i = 0; i < 300_000; i++) {
    word32[0] = next();
    values.push(bits32[0]);
  }
  for (let e = -149; e <= 127; e++) values.push(Math.fround(2 ** e), Math.fround(3 * 2 ** e));
  for (let e = -45; e <= 38; e++) values.push(Math.fround(Number(`1e${e}`)));
  for (let i = 0; i < 50_000; i++) values.push(Math.fround(i * 0.1), Math.fround(i / 3), Math.fround(next() / 2 ** 32));
  let checked = 0;
  for (const v of values) {
    const s = formatFloat32(v);
    if (Number.isNaN(v)) { assert.equal(s, 'NaN'); continue; }
    if (!Number.isFinite(v)) { assert.equal(s, String(v)); continue; }
    assert.equal(Math.fround(Number(s)), v, `${s} must read back to ${v}`);
    if (v === 0) { assert.equal(s, '0'); continue; }
    const p = fewestDigits32(v);
    const nd = significantDigits(s);
    assert.ok(nd <= p, `${s} has ${nd} digits but ${v.toPrecision(p)} has ${p}`);
    // the nearest p-digit decimal reads back, and ours has as few digits: it must be that one
    if (nd === p) assert.equal(Number(s), Number(v.toPrecision(p)), `${s} is not the nearest ${p}-digit decimal to ${v}`);
    assert.equal(s, String(Number(s)), 'laid out like Number#toString');
    checked++;
  }
  assert.ok(checked > 300_000);
});

test('float32: Java-style expectations for familiar values', () => {
  assert.equal(formatFloat32(Math.fround(0.1)), '0.1');
  assert.equal(formatFloat32(Math.fround(3.4028235e38)), '3.4028235e+38');
  assert.equal(formatFloat32(Math.fround(1.0e-7)), '1e-7');
  assert.equal(formatFloat32(Math.fround(-2.5)), '-2.5');
  assert.equal(formatFloat32(Math.fround(123456.789)), '123456.79');
  assert.equal(formatFloat32(Math.fround(1.401298464324817e-45)), '1e-45');
});

test('special values: signed zeros, NaN, infinities, subnormals, integers, both widths', () => {
  const cases: [number, string, string][] = [
    [-0, '0', '0'], [0, '0', '0'], [NaN, 'NaN', 'NaN'], [-NaN, 'NaN', 'NaN'], [Infinity, 'Infinity', 'Infinity'],
    [-Infinity, '-Infinity', '-Infinity'], [-16777215, '-16777215', '-16777215'], [16777216, '16777216', '16777216'],
    // -2147483647 is -2^31 as a float32, whose shortest text is 8 digits
    [-2147483647, '-2147483647', '-2147483600'], [-1.401298464324817e-45, '-1.401298464324817e-45', '-1e-45'],
    [1e21, '1e+21', '1e+21'], [-123.5, '-123.5', '-123.5'], [5e-324, '5e-324', '0'],
  ];
  for (const [v, s64, s32] of cases) {
    assert.equal(formatFloat64(v), s64, `float64 ${v}`);
    assert.equal(formatFloat32(v), s32, `float32 ${v}`);
  }
  // a negative NaN bit pattern has no sign in text
  const f = new Float32Array(1);
  new Uint32Array(f.buffer)[0] = 0xffc00001;
  const out = new Uint8Array(8);
  assert.equal(new TextDecoder().decode(out.subarray(0, writeFloat32At(out, 0, f, 0))), 'NaN');
});

test('At forms write into a buffer at a position and return the end', () => {
  const out = new Uint8Array(64).fill(120);
  let pos = 3;
  pos = writeFloat64At(out, pos, new Float64Array([-0.5]), 0);
  out[pos++] = 44;
  pos = writeFloat32At(out, pos, new Float32Array([1.25, 0.3]), 1);
  assert.equal(new TextDecoder().decode(out.subarray(0, pos)), 'xxx-0.5,0.3');
});

test('integers: writeInteger and writeInt64Parts match BigInt#toString', () => {
  const next = rng(3);
  const out = new Uint8Array(32);
  const dec = new TextDecoder();
  const ints = [0, 1, -1, 9, 10, 99, 100, 999999999, 1000000000, -1000000000, 2 ** 31, -(2 ** 31), 2 ** 53 - 1, -(2 ** 53 - 1)];
  for (let i = 0; i < 20000; i++) ints.push(Math.floor((next() / 2 ** 32 - 0.5) * 2 ** (next() % 54)));
  for (const v of ints) assert.equal(dec.decode(out.subarray(0, writeInteger(out, 0, v))), String(v));
  const big = new BigInt64Array(1);
  const ubig = new BigUint64Array(big.buffer);
  const halves = new Int32Array(big.buffer);
  const samples: bigint[] = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n) - 1n, 100000000000000000n];
  for (let i = 0; i < 20000; i++) samples.push(BigInt.asIntN(64, (BigInt(next()) << 32n) | BigInt(next())));
  for (const b of samples) {
    big[0] = b;
    const lo = halves[0];
    const hi = halves[1];
    assert.equal(dec.decode(out.subarray(0, writeInt64Parts(out, 0, lo, hi, true))), b.toString());
    assert.equal(dec.decode(out.subarray(0, writeInt64Parts(out, 0, lo, hi, false))), ubig[0].toString());
  }
});

test('writeInt64Parts next to the multiples of 1e6 and 1e8 its quotients split at', () => {
  const out = new Uint8Array(32);
  const dec = new TextDecoder();
  const big = new BigInt64Array(1);
  const ubig = new BigUint64Array(big.buffer);
  const halves = new Int32Array(big.buffer);
  const check = (x: bigint) => {
    big[0] = BigInt.asIntN(64, x);
    assert.equal(dec.decode(out.subarray(0, writeInt64Parts(out, 0, halves[0], halves[1], true))), big[0].toString());
    assert.equal(dec.decode(out.subarray(0, writeInt64Parts(out, 0, halves[0], halves[1], false))), ubig[0].toString());
  };
  for (let k = 6n; k <= 19n; k++) {
    for (let m = 1n; m <= 9n; m++) {
      for (let d = -2n; d <= 2n; d++) {
        check(m * 10n ** k + d);
        check(-(m * 10n ** k) + d);
      }
    }
  }
  // every high half below 3000 with low halves at the edges of a 1e6 step
  for (let hi = 0n; hi < 3000n; hi++) {
    for (const lo of [0n, 1n, 999999n, 1000000n, 4294000000n, 4294967295n]) check((hi << 32n) | lo);
  }
  for (const e of [2n ** 63n - 1n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 32n]) for (let d = -3n; d <= 3n; d++) check(e + d);
});

test('float64: in-place layout of fixed-point values equals String(v), also next to binade edges', () => {
  const next = rng(11);
  let bad = 0;
  const check = (v: number) => {
    if (formatFloat64(v) !== String(v)) {
      bad++;
      if (bad < 5) assert.equal(formatFloat64(v), String(v));
    }
  };
  for (let i = 0; i < 300_000; i++) {
    const u = next() / 2 ** 32;
    check(u * 360);
    check(u * 180 - 90);
    check(55000 + u * 3000);
    check(-u * 1e6);
  }
  // a few ulps either side of every power of two from 2^-20 to 2^70
  for (let e = -20; e <= 70; e++) {
    const p = 2 ** e;
    for (let j = 1; j <= 64; j++) {
      check(p + j * p * 2 ** -52);
      check(p - j * p * 2 ** -53);
    }
  }
  assert.equal(bad, 0);
});
