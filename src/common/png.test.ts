import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeIndexedPng, encodePng } from './png.ts';
import { checkPng } from './png-check.ts';
import { IppError } from './errors.ts';
import { mulberry32, withTempDir } from './testing.ts';

/** A raster with flat areas, gradients and noise, so every row filter gets chosen somewhere. */
function sample(width: number, height: number, seed: number): Uint8Array {
  const next = mulberry32(seed);
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      if (y < height / 3) {
        data.set([200, 30, 30, 255], i);
      } else if (y < (2 * height) / 3) {
        data.set([x * 7, y * 3, (x + y) * 5, 128 + (x % 128)], i);
      } else {
        const r = next();
        data.set([r & 0xff, (r >>> 8) & 0xff, (r >>> 16) & 0xff, r >>> 24], i);
      }
    }
  }
  return data;
}

test('RGBA images decode to the same pixels with an independent decoder, at several sizes and levels', async () => {
  await withTempDir(async (dir) => {
    for (const [width, height, level] of [[1, 1, 6], [37, 19, 9], [64, 48, 0], [3, 90, 1]] as const) {
      const data = sample(width, height, width * 1000 + height);
      const png = encodePng({ width, height, data }, { level, text: { Title: 'test é', Software: 'ipp' } });
      const path = join(dir, `${width}x${height}.png`);
      await writeFile(path, png);
      const decoded = await checkPng(path);
      assert.equal(decoded.width, width);
      assert.equal(decoded.height, height);
      assert.equal(decoded.colourType, 6);
      assert.equal(decoded.bitDepth, 8);
      assert.deepEqual(decoded.text, { Title: 'test é', Software: 'ipp' });
      assert.deepEqual(decoded.chunks, ['IHDR', 'tEXt', 'tEXt', 'IDAT', 'IEND']);
      assert.deepEqual(decoded.rgba, data);
    }
  });
});

test('indexed images pack small palettes into 1, 2 and 4 bits and keep transparency', async () => {
  await withTempDir(async (dir) => {
    for (const entries of [2, 3, 4, 11, 16, 17, 256]) {
      const width = 23;
      const height = 7;
      const palette = new Uint8Array(entries * 3);
      for (let i = 0; i < palette.length; i++) palette[i] = (i * 37) & 0xff;
      const alpha = Uint8Array.from({ length: Math.min(entries, 3) }, (_, i) => i * 100);
      const indices = Uint8Array.from({ length: width * height }, (_, i) => (i * 7 + (i >> 3)) % entries);
      const path = join(dir, `p${entries}.png`);
      await writeFile(path, encodeIndexedPng(width, height, indices, palette, alpha));
      const decoded = await checkPng(path);
      const expectedDepth = entries <= 2 ? 1 : entries <= 4 ? 2 : entries <= 16 ? 4 : 8;
      assert.equal(decoded.bitDepth, expectedDepth);
      assert.equal(decoded.colourType, 3);
      assert.deepEqual(decoded.chunks, ['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND']);
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i];
        const got = Array.from(decoded.rgba.subarray(i * 4, i * 4 + 4));
        assert.deepEqual(got, [palette[k * 3], palette[k * 3 + 1], palette[k * 3 + 2], k < alpha.length ? alpha[k] : 255], `pixel ${i}`);
      }
    }
  });
});

test('bad sizes, data, palettes and options raise typed errors', () => {
  const cases: [() => unknown, string][] = [
    [() => encodePng({ width: 0, height: 1, data: new Uint8Array(0) }), 'png_bad_size'],
    [() => encodePng({ width: 1.5, height: 1, data: new Uint8Array(4) }), 'png_bad_size'],
    [() => encodePng({ width: 100_000, height: 1, data: new Uint8Array(4) }), 'png_bad_size'],
    [() => encodePng({ width: 2, height: 2, data: new Uint8Array(15) }), 'png_bad_data'],
    [() => encodePng({ width: 1, height: 1, data: new Uint8Array(4) }, { level: 12 }), 'png_bad_option'],
    [() => encodePng({ width: 1, height: 1, data: new Uint8Array(4) }, { text: { '': 'x' } }), 'png_bad_option'],
    [() => encodeIndexedPng(1, 1, Uint8Array.of(0), new Uint8Array(0)), 'png_bad_palette'],
    [() => encodeIndexedPng(1, 1, Uint8Array.of(0), new Uint8Array(4)), 'png_bad_palette'],
    [() => encodeIndexedPng(1, 1, Uint8Array.of(0), new Uint8Array(257 * 3)), 'png_bad_palette'],
    [() => encodeIndexedPng(1, 1, Uint8Array.of(0), new Uint8Array(3), Uint8Array.of(1, 2)), 'png_bad_palette'],
    [() => encodeIndexedPng(2, 1, Uint8Array.of(0), new Uint8Array(3)), 'png_bad_data'],
    [() => encodeIndexedPng(1, 1, Uint8Array.of(2), new Uint8Array(6)), 'png_bad_data'],
  ];
  for (const [fn, code] of cases) {
    assert.throws(fn, (error: unknown) => error instanceof IppError && error.code === code, code);
  }
});
