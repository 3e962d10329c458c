import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  addSums, Checksum, decodeChecksum, encodeChecksum, setChecksums, sumWords, verifyChecksums,
} from './checksum.ts';
import { FitsError } from './errors.ts';
import { Header, parseHeader } from './header.ts';
import { PYTHON } from './testing/external.ts';

/** The appendix J algorithm as written: big-endian words, end-around carry. */
function referenceSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 4) {
    const w = ((bytes[i] << 24) | ((bytes[i + 1] ?? 0) << 16) | ((bytes[i + 2] ?? 0) << 8) | (bytes[i + 3] ?? 0)) >>> 0;
    sum += w;
    if (sum > 0xffffffff) sum -= 0xffffffff;
  }
  return sum;
}

/** Deterministic pseudo-random bytes. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

test('the sum equals the textbook algorithm, also for odd lengths and unaligned views', () => {
  for (const n of [0, 1, 3, 4, 5, 7, 8, 2880, 10001]) {
    const bytes = noise(n, n + 1);
    assert.equal(sumWords(bytes), referenceSum(bytes), `length ${n}`);
    const shifted = new Uint8Array(n + 1);
    shifted.set(bytes, 1);
    assert.equal(sumWords(shifted.subarray(1)), referenceSum(bytes), `length ${n} at byte offset 1`);
  }
  assert.equal(sumWords(new Uint8Array(400).fill(0xff)), 0xffffffff, 'all ones stay negative zero');
  assert.equal(sumWords(new Uint8Array(400)), 0);
});

test('the sum equals the textbook algorithm on long buffers, at every alignment and across lane folds', () => {
  const big = noise(300_003, 42);
  const ones = new Uint8Array(70_000).fill(0xff);
  const cases: Uint8Array[] = [new Uint8Array(0), new Uint8Array(8), ones, ones.subarray(0, 4099), big];
  for (const n of [2047, 2048, 2049, 4096 + 3, 4100, 262_143]) cases.push(big.subarray(0, n));
  cases.push(big.subarray(4, 100_001), big.subarray(1, 5003), big.subarray(6, 999), big.subarray(3));
  for (const bytes of cases) assert.equal(sumWords(bytes), referenceSum(bytes), `${bytes.length} bytes at offset ${bytes.byteOffset}`);
  assert.notEqual(sumWords(big), sumWords(big.subarray(4)));
});

test('chunks at any position, in any order, add up to the sum of the whole', () => {
  const bytes = noise(50_000, 7);
  const whole = referenceSum(bytes);
  const cuts = [0, 1, 2, 3, 6, 7, 1000, 1001, 1003, 20_001, 33_335, 50_000];
  const sum = new Checksum();
  for (let i = cuts.length - 2; i >= 0; i--) sum.add(bytes.subarray(cuts[i], cuts[i + 1]), cuts[i]);
  assert.equal(sum.sum, whole);
});

test('the 16-character encoding matches astropy and decodes back', () => {
  const values = [0, 1, 0xffffffff, 868229149, 123456789, 0x80000000, 0x3a3a3a3a, 0x5b5b5b5b];
  const script = `from astropy.io.fits import PrimaryHDU\nh = PrimaryHDU()\nfor v in ${JSON.stringify(values)}: print(h._char_encode(v))`;
  const theirs = execFileSync(PYTHON, ['-c', script]).toString().trim().split('\n');
  assert.deepEqual(values.map(encodeChecksum), theirs);
  for (let i = 0; i < 2000; i++) {
    const v = (Math.imul(i, 2654435761) ^ (i << 7)) >>> 0;
    const text = encodeChecksum(v);
    assert.match(text, /^[0-9A-Za-z]{16}$/);
    assert.equal(decodeChecksum(text), v);
  }
});

test('setChecksums makes the HDU sum to negative zero; damage is reported by keyword', () => {
  const data = noise(2880, 3);
  const datasum = sumWords(data);
  const header = new Header().set('XTENSION', 'IMAGE').set('BITPIX', 8).set('NAXIS', 1).set('NAXIS1', 2880)
    .set('PCOUNT', 0).set('GCOUNT', 1);
  setChecksums(header, datasum);
  const bytes = header.toBytes();
  assert.equal(addSums(sumWords(bytes), datasum), 0xffffffff);
  assert.equal(header.get('DATASUM'), String(datasum));
  const at = { file: 'x.fits', hdu: 3 };
  assert.deepEqual(verifyChecksums(parseHeader(bytes), bytes, datasum, at), []);
  const damaged = data.slice();
  damaged[100] ^= 1;
  const problems = verifyChecksums(parseHeader(bytes), bytes, sumWords(damaged), at);
  assert.deepEqual(problems.map((p) => p.code), ['fits_bad_datasum', 'fits_bad_checksum']);
  assert.ok(problems.every((p) => p instanceof FitsError));
  assert.match(problems[0].message, /^x\.fits: HDU 3: keyword DATASUM: /);
  assert.match(problems[1].message, /^x\.fits: HDU 3: keyword CHECKSUM: /);
  // A header card changed, data intact: only CHECKSUM fails.
  const edited = Buffer.from(bytes);
  edited.write('BITPIX  =                   16', 80, 'latin1');
  assert.deepEqual(verifyChecksums(parseHeader(edited), edited, datasum, at).map((p) => p.code), ['fits_bad_checksum']);
});
