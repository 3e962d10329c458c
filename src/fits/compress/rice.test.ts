import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { riceCompress, riceDecompress, type RiceWidth } from './rice.ts';
import { shuffleBytes, unshuffleBytes } from './shuffle.ts';
import { compressTile, decompressTile } from './tile-codec.ts';
import { gunzipTile } from './gzip.ts';
import { TileCodecError } from './tile-error.ts';
import { python, tool, withTempDir } from './test-support.ts';

/** A deterministic generator, so a failure can be reproduced. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function bigEndian(values: readonly number[], width: RiceWidth): Uint8Array {
  const out = new Uint8Array(values.length * width);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (width === 1) view.setUint8(i, v & 0xff);
    else if (width === 2) view.setUint16(2 * i, v & 0xffff);
    else view.setUint32(4 * i, v >>> 0);
  });
  return out;
}

const patterns: Record<string, (n: number, width: RiceWidth, rnd: () => number) => number[]> = {
  constant: (n) => new Array<number>(n).fill(7),
  zeros: (n) => new Array<number>(n).fill(0),
  smooth: (n, _w, rnd) => { let v = 1000; return Array.from({ length: n }, () => (v += (rnd() % 7) - 3)); },
  noisy: (_n, _w, rnd) => Array.from({ length: _n }, () => rnd()),
  extremes: (n, width) => Array.from({ length: n }, (_, i) => (i % 2 ? -(2 ** (8 * width - 1)) : 2 ** (8 * width - 1) - 1)),
  mixed: (n, _w, rnd) => Array.from({ length: n }, (_, i) => (Math.floor(i / 40) % 3 === 0 ? 0 : Math.floor(i / 40) % 3 === 1 ? rnd() % 50 : rnd())),
  spike: (n) => Array.from({ length: n }, (_, i) => (i === 17 ? 1 << 20 : 3)),
};

test('RICE_1 round-trips every pattern, width and length (including partial blocks)', () => {
  for (const width of [1, 2, 4] as RiceWidth[]) {
    for (const [name, make] of Object.entries(patterns)) {
      for (const n of [1, 2, 31, 32, 33, 64, 1000]) {
        const bytes = bigEndian(make(n, width, lcg(n * 31 + width)), width);
        const packed = riceCompress(bytes, width);
        const back = riceDecompress(packed, n, width);
        assert.deepEqual(back, bytes, `${name} width ${width} n ${n}`);
      }
    }
  }
});

test('RICE_1 compresses smooth data and spends one code per all-zero block', () => {
  const n = 3200;
  const smooth = bigEndian(patterns.smooth(n, 4, lcg(5)), 4);
  assert.ok(riceCompress(smooth, 4).length < smooth.length / 4);
  // 100 blocks of zero differences: 4 bytes of first value + 100 codes of 5 bits.
  const flat = bigEndian(patterns.constant(n, 4, lcg(1)), 4);
  assert.equal(riceCompress(flat, 4).length, 4 + Math.ceil((100 * 5) / 8));
});

test('RICE_1 damaged streams raise TileCodecError, never a RangeError or a hang', () => {
  const bytes = bigEndian(patterns.mixed(500, 2, lcg(9)), 2);
  const packed = riceCompress(bytes, 2);
  const cases: [string, Uint8Array, number][] = [
    ['truncated', packed.subarray(0, packed.length - 5), 500],
    ['empty', new Uint8Array(0), 500],
    ['too many values asked', packed, 600],
    ['too few values asked', packed, 400],
    ['zero bytes only', new Uint8Array(100), 500],
    ['all ones', new Uint8Array(100).fill(0xff), 500],
    ['a count no stream of this size can hold', packed, 1e9],
  ];
  for (const [name, stream, count] of cases) {
    assert.throws(() => riceDecompress(stream, count, 2), (e: unknown) => e instanceof TileCodecError && e.code === 'fits_bad_tile', name);
  }
  // Random garbage: either decodes to the right length or raises the typed error.
  const rnd = lcg(77);
  for (let k = 0; k < 300; k++) {
    const junk = Uint8Array.from({ length: 1 + (rnd() % 200) }, () => rnd() & 0xff);
    for (const width of [1, 2, 4] as RiceWidth[]) {
      try {
        assert.equal(riceDecompress(junk, 50, width).length, 50 * width);
      } catch (e) {
        assert.ok(e instanceof TileCodecError, String(e));
      }
    }
  }
});

test('GZIP_2 shuffle puts byte planes together and undoes itself', async () => {
  const values = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(shuffleBytes(values, 4), Uint8Array.from([1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12]));
  assert.deepEqual(unshuffleBytes(shuffleBytes(values, 4), 4), values);
  assert.deepEqual(unshuffleBytes(shuffleBytes(values, 2), 2), values);
  const packed = await compressTile('GZIP_2', values, 4);
  assert.deepEqual(await decompressTile('GZIP_2', packed, 4, 12), values);
  assert.deepEqual(await gunzipTile(packed, 12), shuffleBytes(values, 4));
});

test('gzip tiles that do not inflate, or inflate to the wrong size, raise fits_bad_tile', async () => {
  const bytes = new Uint8Array(1000).map((_, i) => i % 13);
  const packed = await compressTile('GZIP_1', bytes, 1);
  const bad = async (stream: Uint8Array, size: number) =>
    assert.rejects(decompressTile('GZIP_1', stream, 1, size), (e: unknown) => e instanceof TileCodecError && e.code === 'fits_bad_tile');
  await bad(packed.subarray(0, 20), 1000);
  await bad(Uint8Array.from([1, 2, 3, 4, 5]), 1000);
  await bad(packed, 999);
  await bad(packed, 1001);
  const flipped = packed.slice();
  flipped[15] ^= 0xff;
  await bad(flipped, 1000);
  assert.deepEqual(await decompressTile('GZIP_1', packed, 1, 1000), bytes);
});

// cfitsio itself: astropy writes a table, fpack -table compresses it with the algorithms the
// FZALGn keywords ask for, and Python dumps each tile's original and compressed bytes.
const MAKE_AND_DUMP = String.raw`
import sys, os, subprocess, numpy as np
from astropy.io import fits
d = sys.argv[1]
n = 5000
rng = np.random.default_rng(42)
walk = np.cumsum(rng.integers(-3, 4, n))
ext16 = np.where(np.arange(n) % 2 == 0, 32767, -32768).astype('>i2')
ext32 = np.where(np.arange(n) % 3 == 0, 2**31 - 1, -2**31).astype('>i4')
mixed32 = np.where((np.arange(n) // 40) % 3 == 0, 0, rng.integers(-2**31, 2**31 - 1, n)).astype('>i4')
# One step per block of 32, sized so the block's sum of mapped differences sits exactly on
# the edges of cfitsio's split formula (16 + 32k), where an off-by-one would change fs.
steps = np.zeros(n, dtype=np.int64)
steps[::32] = 8 + 16 * (np.arange(len(steps[::32])) % 70)
steps[7::64] += 3
edge = np.cumsum(steps)
spec = [
  ('i16walk', 'I', 'RICE_1', (walk % 30000).astype('>i2')),
  ('i16rand', 'I', 'RICE_1', rng.integers(-32768, 32767, n).astype('>i2')),
  ('i16ext', 'I', 'RICE_1', ext16),
  ('i32walk', 'J', 'RICE_1', (walk * 1000).astype('>i4')),
  ('i32ext', 'J', 'RICE_1', ext32),
  ('i32mixed', 'J', 'RICE_1', mixed32),
  ('i16edge', 'I', 'RICE_1', (edge % 30000).astype('>i2')),
  ('i32edge', 'J', 'RICE_1', (edge * 3 - 7).astype('>i4')),
  ('u8edge', 'B', 'RICE_1', (np.cumsum(np.where(np.arange(n) % 32 == 0, 8 + 16 * ((np.arange(n) // 32) % 8), 0)) % 256).astype('u1')),
  ('u8rand', 'B', 'RICE_1', rng.integers(0, 256, n).astype('u1')),
  ('u8const', 'B', 'RICE_1', np.full(n, 200, 'u1')),
  ('vec3j', '3J', 'RICE_1', rng.integers(-100, 100, (n, 3)).astype('>i4')),
  ('f32', 'E', 'GZIP_2', rng.normal(size=n).astype('>f4')),
  ('f64', 'D', 'GZIP_2', rng.normal(size=n).astype('>f8')),
  ('i64', 'K', 'GZIP_2', rng.integers(-2**40, 2**40, n).astype('>i8')),
  ('i16g2', 'I', 'GZIP_2', (walk % 300).astype('>i2')),
  ('str', '6A', 'GZIP_1', np.array(['s%05d' % i for i in range(n)])),
]
cols = [fits.Column(name=nm, format=fm, array=a) for nm, fm, _, a in spec]
h = fits.BinTableHDU.from_columns(cols)
for i, (_, _, alg, _) in enumerate(spec):
    h.header['FZALG%d' % (i + 1)] = alg
h.header['FZTILELN'] = 1500
src = os.path.join(d, 't.fits')
h.writeto(src, overwrite=True)
subprocess.run(['fpack', '-table', '-O', src + '.fz', src], check=True)
orig = fits.open(src)[1]
raw = np.frombuffer(open(src, 'rb').read(), dtype='u1')
start = orig.fileinfo()['datLoc']
width = orig.header['NAXIS1']
rows = raw[start:start + width * n].reshape(n, width)
comp = fits.open(src + '.fz', disable_image_compression=True)[1]
tile = comp.header['ZTILELEN']
ntiles = comp.header['NAXIS2']
for i, (nm, fm, alg, _) in enumerate(spec):
    assert comp.header['ZCTYP%d' % (i + 1)] == alg, (nm, comp.header['ZCTYP%d' % (i + 1)])
    w = orig.data.columns.dtype.fields[nm][0].itemsize
    o = orig.data.columns.dtype.fields[nm][1]
    for k in range(ntiles):
        r = rows[k * tile:(k + 1) * tile, o:o + w]
        open(os.path.join(d, 'orig_%s_%d' % (nm, k)), 'wb').write(r.tobytes())
        open(os.path.join(d, 'comp_%s_%d' % (nm, k)), 'wb').write(np.asarray(comp.data[nm][k], dtype='u1').tobytes())
print(ntiles, tile)
for nm, fm, alg, _ in spec:
    print(nm, fm, alg, orig.data.columns.dtype.fields[nm][0].itemsize)
`;

test('RICE_1 is bit-exact with cfitsio (fpack -table), and GZIP tiles of fpack decode', async () => {
  assert.equal((await tool('fpack', ['-V'])).code, 0, 'fpack is installed');
  await withTempDir(async (dir) => {
    const lines = (await python(MAKE_AND_DUMP, [dir])).trim().split('\n');
    const [ntiles, tileRows] = lines[0].split(' ').map(Number);
    assert.equal(ntiles, 4);
    assert.equal(tileRows, 1500);
    let riceTiles = 0;
    for (const line of lines.slice(1)) {
      const [name, tform, alg, rowWidthText] = line.split(' ');
      const rowWidth = Number(rowWidthText);
      const elem = tform.endsWith('I') ? 2 : tform.endsWith('J') || tform.endsWith('E') ? 4 : tform.endsWith('A') || tform.endsWith('B') ? 1 : 8;
      for (let k = 0; k < ntiles; k++) {
        const orig = new Uint8Array(await readFile(join(dir, `orig_${name}_${k}`)));
        const comp = new Uint8Array(await readFile(join(dir, `comp_${name}_${k}`)));
        const rows: number = k === ntiles - 1 ? 500 : 1500;
        assert.equal(orig.length, rows * rowWidth);
        if (alg === 'RICE_1') {
          const w = elem as RiceWidth;
          assert.deepEqual(riceCompress(orig, w), comp, `${name} tile ${k}: our RICE_1 bytes equal cfitsio's`);
          assert.deepEqual(riceDecompress(comp, orig.length / w, w), orig, `${name} tile ${k}: cfitsio's RICE_1 decodes`);
          riceTiles++;
        } else {
          const back = await decompressTile(alg as 'GZIP_1' | 'GZIP_2', comp, alg === 'GZIP_2' ? elem : 1, orig.length);
          assert.deepEqual(back, orig, `${name} tile ${k}: ${alg} decodes`);
        }
      }
    }
    assert.equal(riceTiles, 12 * 4);
  });
});
