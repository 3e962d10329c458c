import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../common/index.ts';
import { IdSet, wordsOf } from './id-set.ts';

test('IdSet: the same answers as a Set<bigint>, through growth, with −2^63 (the empty slot\'s words) and 0 as values', () => {
  const next = mulberry32(5);
  const n = 20_000;
  const values = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    // Few distinct high words, so that values collide in part; some repeats.
    values[i] = i % 7 === 0 ? values[Math.floor(i / 2)] : (BigInt(next() % 16) - 8n) * 2n ** 32n + BigInt(next());
  }
  values[10] = -(2n ** 63n);
  values[11] = 0n;
  values[12] = -(2n ** 63n);
  values[13] = 2n ** 63n - 1n;
  const w = wordsOf(values);
  const set = new IdSet(10); // grows many times
  const ref = new Set<bigint>();
  for (let i = 0; i < n; i++) {
    assert.equal(set.hasWords(w[2 * i], w[2 * i + 1]), ref.has(values[i]), `has ${values[i]} before adding`);
    assert.equal(set.addWords(w[2 * i], w[2 * i + 1]), !ref.has(values[i]), `add ${values[i]}`);
    ref.add(values[i]);
  }
  assert.equal(set.size, ref.size);
  for (const v of [1n, -1n, 2n ** 40n, -(2n ** 63n) + 1n]) {
    const x = new BigInt64Array([v]);
    const xw = wordsOf(x);
    assert.equal(set.hasWords(xw[0], xw[1]), ref.has(v), `has ${v}`);
  }
});
