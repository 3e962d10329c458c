import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fastExp, fastLn, fastLog10 } from './fast-math.ts';
import { Random } from './random.ts';

test('fastLn and fastLog10 agree with Math.log and Math.log10 to a few units in the last place', () => {
  const rng = new Random(3);
  const xs = [1, 2, 10, 0.5, 1 + 2 ** -52, 2 - 2 ** -52, 2.2250738585072014e-308, 1.7976931348623157e308];
  for (let k = 0; k < 200_000; k++) xs.push(Math.exp((rng.uniform() - 0.3) * 60));
  for (let i = 0; i < 256; i++) xs.push(1 + i / 256, 1 + (i + 0.5) / 256, 1 + (i + 1) / 256 - 2 ** -52);
  let worst = 0;
  for (const x of xs) {
    const ln = Math.log(x);
    const e10 = Math.log10(x);
    const ulpLn = Number.EPSILON * Math.max(1, Math.abs(ln));
    const ulp10 = Number.EPSILON * Math.max(1, Math.abs(e10));
    worst = Math.max(worst, Math.abs(fastLn(x) - ln) / ulpLn, Math.abs(fastLog10(x) - e10) / ulp10);
    assert.ok(Math.abs(fastLn(x) - ln) <= 4 * ulpLn, `ln ${x}: ${fastLn(x)} vs ${ln}`);
    assert.ok(Math.abs(fastLog10(x) - e10) <= 4 * ulp10, `log10 ${x}: ${fastLog10(x)} vs ${e10}`);
  }
  assert.ok(worst > 0, 'the series differs from the engine somewhere (else this test checks nothing new)');
  // Outside the normal positive range they are the engine's.
  for (const x of [0, -1, NaN, Infinity, -Infinity, 5e-324, 1e-310]) {
    assert.ok(Object.is(fastLn(x), Math.log(x)), String(x));
    assert.ok(Object.is(fastLog10(x), Math.log(x) * Math.LOG10E), String(x));
  }
});

test('fastExp agrees with Math.exp to a few units in the last place', () => {
  const rng = new Random(4);
  const xs = [0, 1, -1, 1e-300, -1e-300, 699.9, -699.9, Math.LN2, -Math.LN2 / 512, Math.LN2 / 512];
  for (let k = 0; k < 200_000; k++) xs.push((rng.uniform() - 0.5) * (k % 2 === 0 ? 80 : 1398));
  for (let j = -600; j <= 600; j++) xs.push((j * Math.LN2) / 256, (j * Math.LN2) / 256 + 1e-12);
  let worst = 0;
  for (const x of xs) {
    const want = Math.exp(x);
    const err = Math.abs(fastExp(x) - want) / (want * Number.EPSILON);
    worst = Math.max(worst, err);
    assert.ok(err <= 4, `exp ${x}: ${fastExp(x)} vs ${want}`);
  }
  assert.ok(worst > 0, 'the series differs from the engine somewhere');
  for (const x of [700, -700, 710, -746, Infinity, -Infinity, NaN]) assert.ok(Object.is(fastExp(x), Math.exp(x)), String(x));
});
