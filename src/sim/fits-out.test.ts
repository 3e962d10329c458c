import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Checksum } from '../fits/index.ts';
import { dataSum } from './fits-out.ts';
import { Random } from './random.ts';

test('dataSum equals the fits room checksum for any length, content and offset', () => {
  const rng = new Random(42);
  const big = new Uint8Array(300_000);
  for (let i = 0; i < big.length; i++) big[i] = rng.next32() & 0xff;
  const ones = new Uint8Array(70_000).fill(0xff);
  const cases: Uint8Array[] = [new Uint8Array(0), new Uint8Array(8), ones, ones.subarray(0, 4099), big];
  for (const n of [1, 2, 3, 4, 5, 6, 7, 2047, 2048, 2049, 4096 + 3, 262_143]) cases.push(big.subarray(0, n));
  cases.push(big.subarray(4, 100_001), big.subarray(1, 5003), big.subarray(6, 999));
  for (const bytes of cases) {
    assert.equal(dataSum(bytes), new Checksum().add(bytes, 0).sum, `${bytes.length} bytes at offset ${bytes.byteOffset}`);
  }
  assert.notEqual(dataSum(big), dataSum(big.subarray(4)));
});
