import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../common/index.ts';
import { zonesOf } from './object-stubs.ts';

const F = 10_000_000_000_000n;

test('zonesOf: objID div 10^13 as BigInt division gives it, sorted or not, across zero, zone edges and the int64 ends', () => {
  const next = mulberry32(9);
  const edges = [-(2n ** 63n), -(2n ** 63n) + 1n, -3n * F - 1n, -3n * F, -3n * F + 1n, -F, -F + 1n, -1n, 0n, 1n, F - 1n, F, F + 1n, 2n ** 63n - 1n];
  const random = Array.from({ length: 3000 }, () => BigInt(next() % 2000) * F / 7n + BigInt(next() % 1000) - 500n);
  const sorted = BigInt64Array.from([...edges, ...random]).sort();
  const shuffled = BigInt64Array.from([...random.slice(1500), ...edges, ...random.slice(0, 1500)]);
  for (const ids of [sorted, shuffled, new BigInt64Array(0)]) {
    const z = zonesOf(ids);
    assert.equal(z.length, ids.length);
    ids.forEach((id, i) => assert.equal(z[i], Number(id / F), `zone of ${id}`));
  }
});
