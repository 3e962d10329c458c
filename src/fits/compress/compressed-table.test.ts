import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  collectTable, columnInfo, getCell, memoryTable, rowRange, selectColumns, sliceBatch,
  type ColumnBatch, type ColumnData, type ColumnInfo, type Table,
} from '../../table/index.ts';
import { IppError } from '../../common/index.ts';
import { FitsError } from '../errors.ts';
import { FitsFile } from '../fits-file.ts';
import { astropyColumns, astropyColumnsOf, fitsverify } from '../testing/external.ts';
import { readCompressedTable } from './read-compressed-table.ts';
import { writeCompressedFits } from './write-compressed-table.ts';
import { python, tool, withTempDir } from './test-support.ts';

const ROWS = 2500;
const TILE = 1000; // tiles of 1000, 1000 and a partial 500

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

/** A table of every type the FITS writer stores, with nulls, scaling, arrays and variable-length columns. */
function sampleTable(rows = ROWS): Table {
  const rnd = lcg(2024);
  const nth = (k: number) => (r: number) => r % k === 0;
  const columns: ColumnInfo[] = [];
  const data: ColumnData[] = [];
  const add = (info: ColumnInfo, d: ColumnData) => { columns.push(info); data.push(d); };
  const validOf = (n: number, isNull: (i: number) => boolean) => Uint8Array.from({ length: n }, (_, i) => (isNull(i) ? 0 : 1));

  add(columnInfo('b', 'uint8', { nullValue: 255 }), { values: Uint8Array.from({ length: rows }, (_, r) => (r % 7 === 0 ? 255 : rnd() % 200)), valid: validOf(rows, nth(7)) });
  add(columnInfo('sb', 'int8'), { values: Int8Array.from({ length: rows }, () => (rnd() % 256) - 128) });
  add(columnInfo('i16', 'int16', { nullValue: -32768 }), { values: Int16Array.from({ length: rows }, (_, r) => (r % 11 === 0 ? -32768 : (r % 500) - 250)), valid: validOf(rows, nth(11)) });
  add(columnInfo('u16', 'uint16'), { values: Uint16Array.from({ length: rows }, () => rnd() & 0xffff) });
  add(columnInfo('i32', 'int32'), { values: Int32Array.from({ length: rows }, (_, r) => (r % 13 === 0 ? 0 : r * 1000 - 7)), valid: validOf(rows, nth(13)) });
  add(columnInfo('u32', 'uint32'), { values: Uint32Array.from({ length: rows }, () => rnd()) });
  add(columnInfo('i64', 'int64'), { values: BigInt64Array.from({ length: rows }, (_, r) => BigInt(r) * 123456789012n - 5n) });
  add(columnInfo('u64', 'uint64'), { values: BigUint64Array.from({ length: rows }, (_, r) => 18446744073709551615n - BigInt(r)) });
  add(columnInfo('f32', 'float32'), { values: Float32Array.from({ length: rows }, (_, r) => (r % 17 === 0 ? NaN : Math.fround(r / 7 - 100))) });
  add(columnInfo('f64', 'float64', { unit: 'deg' }), { values: Float64Array.from({ length: rows }, (_, r) => (r % 19 === 0 ? NaN : 180 + r * 1e-6)) });
  add(columnInfo('c64', 'complex64'), { values: Float32Array.from({ length: 2 * rows }, (_, i) => Math.fround(i / 3)) });
  add(columnInfo('c128', 'complex128'), { values: Float64Array.from({ length: 2 * rows }, (_, i) => -i / 7) });
  add(columnInfo('mag', 'float64', { storage: { type: 'int16', scale: 0.001, zero: 20 } }), { values: Float64Array.from({ length: rows }, (_, r) => 20 + ((r % 3000) - 1500) * 0.001) });
  add(columnInfo('name', 'string', { width: 12 }), { values: Array.from({ length: rows }, (_, r) => (r % 5 === 0 ? '' : `obj-${r}`)) });
  add(columnInfo('flag', 'boolean'), { values: Uint8Array.from({ length: rows }, (_, r) => r % 3 === 0 ? 1 : 0), valid: validOf(rows, nth(10)) });
  add(columnInfo('bits', 'bit', { shape: [11] }), { values: Uint8Array.from({ length: rows * 11 }, () => rnd() & 1) });
  add(columnInfo('v3', 'int32', { shape: [3] }), { values: Int32Array.from({ length: rows * 3 }, (_, i) => i - 4000) });
  add(columnInfo('m23', 'float32', { shape: [2, 3] }), { values: Float32Array.from({ length: rows * 6 }, (_, i) => Math.fround(i * 0.25)) });
  type Numeric = Uint8Array | Int16Array | Int32Array | Float32Array | Float64Array;
  const varData = (make: (r: number, k: number) => number, alloc: (n: number) => Numeric, slots = 1) => {
    const offsets = new Int32Array(rows + 1);
    for (let r = 0; r < rows; r++) offsets[r + 1] = offsets[r] + (r % 6);
    const values = alloc(offsets[rows] * slots);
    for (let r = 0; r < rows; r++) for (let k = 0; k < (r % 6) * slots; k++) values[offsets[r] * slots + k] = make(r, k);
    return { values, offsets };
  };
  add(columnInfo('vj', 'int32', { variable: true }), varData((r, k) => r * 10 + k, (n) => new Int32Array(n)));
  add(columnInfo('vi', 'int16', { variable: true }), varData((r, k) => (r + k) % 300, (n) => new Int16Array(n)));
  add(columnInfo('vd', 'float64', { variable: true }), varData((r, k) => r / (k + 1), (n) => new Float64Array(n)));
  add(columnInfo('ve', 'float32', { variable: true }), varData((r, k) => Math.fround(r - k / 3), (n) => new Float32Array(n)));
  add(columnInfo('vb', 'uint8', { variable: true }), varData((r, k) => (r * 7 + k) % 256, (n) => new Uint8Array(n)));
  add(columnInfo('vl', 'boolean', { variable: true }), varData((r, k) => (r + k) % 2, (n) => new Uint8Array(n)));
  add(columnInfo('vc', 'complex64', { variable: true }), varData((r, k) => Math.fround(r + k / 4), (n) => new Float32Array(n), 2));
  const vk = varData((r, k) => r * 1000 + k, (n) => new Int32Array(n));
  add(columnInfo('vk', 'int64', { variable: true }), { values: BigInt64Array.from(vk.values, (x) => BigInt(x) << 33n), offsets: vk.offsets });
  const batch: ColumnBatch = { rowCount: rows, columns: data };
  return memoryTable(columns, [batch], { name: 'SAMPLE', params: [{ name: 'SURVEY', value: '3PI', description: 'survey' }] });
}

/** Every cell of two tables, compared as plain values (NaN equals NaN, nulls as null). */
async function assertSameCells(actual: Table, expected: Table, message: string): Promise<void> {
  assert.deepEqual(actual.columns.map((c) => c.name), expected.columns.map((c) => c.name), `${message}: column names`);
  const a = await collectTable(actual);
  const e = await collectTable(expected);
  assert.equal(a.rowCount, e.rowCount, `${message}: rows`);
  expected.columns.forEach((info, c) => {
    const got: unknown[] = [];
    const want: unknown[] = [];
    for (let r = 0; r < e.rowCount; r++) {
      got.push(getCell(actual.columns[c], a.columns[c], r));
      want.push(getCell(info, e.columns[c], r));
    }
    assert.deepEqual(got, want, `${message}: column ${info.name}`);
  });
}

/** fitsverify's complaint about a TNULLn outside 0..255 on a 1QB column (see the README). */
const TNULL_RANGE_WARNING = /\*\*\* Warning: Keyword #\d+, TNULL\d+: The value -?\d+ is not in the range of\s+datatype B/g;

test('our compressed table: fitsverify clean, funpack restores every value, our reader reads it back', async () => {
  await withTempDir(async (dir) => {
    const table = sampleTable();
    const packed = join(dir, 'sample.fits.fz');
    await writeCompressedFits(packed, [{ table, compress: { tileRows: TILE } }]);

    // The only fitsverify remarks are the TNULL-range warnings it gives cfitsio's own files.
    const verdict = await fitsverify(packed);
    assert.equal(verdict.errors, 0, verdict.output);
    const tnullWarnings = verdict.output.match(TNULL_RANGE_WARNING) ?? [];
    assert.equal(verdict.warnings, tnullWarnings.length, verdict.output);
    assert.equal(tnullWarnings.length, 2, 'i16 (TNULL -32768) and i32 (TNULL chosen by the writer) only');

    const file = await FitsFile.open(packed);
    try {
      const h = file.hdus[1];
      assert.equal(h.kind, 'compressed-table');
      assert.equal(h.header.get('ZTILELEN'), TILE);
      assert.equal(h.header.get('NAXIS2'), 3);
      assert.equal(h.header.get('ZNAXIS2'), ROWS);
      const zctyp = (name: string) => h.header.get(`ZCTYP${table.columns.findIndex((c) => c.name === name) + 1}`);
      assert.deepEqual(
        ['b', 'i16', 'i32', 'u16', 'i64', 'f32', 'f64', 'c64', 'c128', 'name', 'flag', 'bits', 'mag', 'vj', 'vi', 'vd', 've', 'vb', 'vl', 'vc', 'vk'].map(zctyp),
        ['RICE_1', 'RICE_1', 'RICE_1', 'RICE_1', 'GZIP_2', 'GZIP_2', 'GZIP_2', 'GZIP_1', 'GZIP_1', 'GZIP_1', 'GZIP_1', 'GZIP_1', 'RICE_1',
          'RICE_1', 'RICE_1', 'GZIP_2', 'GZIP_2', 'RICE_1', 'GZIP_1', 'GZIP_1', 'GZIP_2'],
      );
      assert.deepEqual(await file.verifyChecksums(1), []);
      const back = readCompressedTable(file, h);
      assert.equal(back.name, 'SAMPLE');
      assert.ok(back.params?.some((p) => p.name === 'SURVEY' && p.value === '3PI'));
      assert.ok(!back.params?.some((p) => p.name.startsWith('Z')), 'compression keywords are not params');
      await assertSameCells(back, table, 'our reader on our file');
    } finally {
      await file.close();
    }

    // cfitsio 4.2's funpack misreads double complex (M) columns, its own included (it keeps
    // the type code 163 in a char); every other column goes through it.
    const forFunpack = selectColumns(table, table.columns.map((c) => c.name).filter((n) => n !== 'c128'));
    const packed2 = join(dir, 'sample2.fits.fz');
    await writeCompressedFits(packed2, [{ table: forFunpack, compress: { tileRows: TILE } }]);
    const unpacked = join(dir, 'sample.fits');
    const funpack = await tool('funpack', ['-O', unpacked, packed2]);
    assert.equal(funpack.code, 0, funpack.stderr);
    const plain = await FitsFile.open(unpacked);
    try {
      assert.equal(plain.hdus[1].kind, 'bintable');
      const restored = plain.table(1);
      await assertSameCells(restored, forFunpack, 'funpack output read by the FITS reader');
      // astropy on funpack's output, against our values in astropy's terms (with the null
      // values the writer chose, which the file's columns carry).
      const original = await collectTable(forFunpack);
      const seen = await astropyColumns(unpacked, 1);
      // astropy hands out variable-length logicals as their bytes ('T' = 84, 'F' = 70).
      seen.vl = seen.vl.map((cell) => (cell as number[]).map((b) => b === 84 || (b === 70 ? false : b)));
      const want = astropyColumnsOf(restored.columns, original);
      for (const name of Object.keys(want)) assert.deepEqual(seen[name], want[name], `astropy: column ${name}`);
    } finally {
      await plain.close();
    }
    const plainVerdict = await fitsverify(unpacked);
    assert.equal(plainVerdict.errors, 0, plainVerdict.output);

    // Without TNULLs outside 0..255 fitsverify has nothing to say: b keeps its null (255),
    // floats and logicals keep theirs.
    const quiet = join(dir, 'quiet.fits.fz');
    await writeCompressedFits(quiet, [{ table: selectColumns(table, table.columns.map((c) => c.name).filter((n) => n !== 'i16' && n !== 'i32')), compress: { tileRows: TILE } }]);
    const clean = await fitsverify(quiet);
    assert.deepEqual([clean.errors, clean.warnings], [0, 0], clean.output);
  });
});

test('astropy opens our compressed file (as a table of byte arrays) and accepts its checksums', async () => {
  await withTempDir(async (dir) => {
    const packed = join(dir, 'c.fits');
    await writeCompressedFits(packed, [{ table: sampleTable(600), compress: { tileRows: 250 } }]);
    const out = await python(String.raw`
import sys, warnings
warnings.simplefilter('error')
from astropy.io import fits
with fits.open(sys.argv[1], checksum=True, disable_image_compression=True) as h:
    t = h[1]
    print(t.header['ZTABLE'], t.header['NAXIS2'], t.columns.formats[0], len(t.data.field(0)[2]) > 0)
`, [packed]);
    assert.match(out.trim(), /^True 3 1QB\(\d+\) True$/);
  });
});

test('tile length: cfitsio default, partial last tile, and every row in one tile for small tables', async () => {
  await withTempDir(async (dir) => {
    const small = join(dir, 'small.fits');
    await writeCompressedFits(small, [{ table: sampleTable(300) }]);
    const f = await FitsFile.open(small);
    try {
      assert.equal(f.hdus[1].header.get('ZTILELEN'), 300);
      assert.equal(f.hdus[1].header.get('NAXIS2'), 1);
      await assertSameCells(readCompressedTable(f, f.hdus[1]), sampleTable(300), 'one tile');
    } finally {
      await f.close();
    }
    // Tiles gathered from batches that do not line up with them (333-row batches, 256-row tiles).
    const base = sampleTable(1500);
    const ragged: Table = { ...base, batches: (o = {}) => base.batches({ ...o, batchRows: 333 }) };
    const rp = join(dir, 'ragged.fits');
    await writeCompressedFits(rp, [{ table: ragged, compress: { tileRows: 256 } }]);
    const r = await FitsFile.open(rp);
    try {
      assert.equal(r.hdus[1].header.get('NAXIS2'), 6);
      await assertSameCells(readCompressedTable(r, r.hdus[1]), base, 'ragged batches');
    } finally {
      await r.close();
    }
    // 40-byte rows: cfitsio's 10 MB tile is 250000 rows.
    const n = 260000;
    const wide = memoryTable(['a', 'b', 'c', 'f'].map((x) => columnInfo(x, 'float64')).concat([columnInfo('d', 'int32'), columnInfo('e', 'int32')]), [{
      rowCount: n,
      columns: [
        { values: Float64Array.from({ length: n }, (_, i) => i) }, { values: new Float64Array(n) }, { values: new Float64Array(n).fill(1.5) }, { values: new Float64Array(n) },
        { values: Int32Array.from({ length: n }, (_, i) => i % 1000) }, { values: new Int32Array(n) },
      ],
    }]);
    const big = join(dir, 'big.fits');
    await writeCompressedFits(big, [{ table: wide }]);
    const g = await FitsFile.open(big);
    try {
      assert.equal(g.hdus[1].header.get('ZTILELEN'), 250000);
      assert.equal(g.hdus[1].header.get('NAXIS2'), 2);
      const t = readCompressedTable(g, g.hdus[1]);
      const sizes: number[] = [];
      for await (const b of t.batches({ columns: ['d'], batchRows: 100000 })) sizes.push(b.rowCount);
      assert.deepEqual(sizes, [100000, 100000, 50000, 10000]);
      const d = await collectTable(t, { columns: ['a'] });
      assert.equal((d.columns[0].values as Float64Array)[259999], 259999);
    } finally {
      await g.close();
    }
  });
});

test('algorithm choice: table-wide, per column, refused where cfitsio cannot follow', async () => {
  await withTempDir(async (dir) => {
    // Without the double complex column, which funpack cannot read (see above).
    const all = sampleTable(400);
    const table = selectColumns(all, all.columns.map((c) => c.name).filter((n) => n !== 'c128'));
    const ctypes = async (path: string) => {
      const f = await FitsFile.open(path);
      try {
        const h = f.hdus[1].header;
        await assertSameCells(readCompressedTable(f, f.hdus[1]), table, path);
        return Object.fromEntries(table.columns.map((c, i) => [c.name, h.get(`ZCTYP${i + 1}`)]));
      } finally {
        await f.close();
      }
    };
    const p1 = join(dir, 'gzip2.fits');
    await writeCompressedFits(p1, [{ table, compress: { algorithm: 'gzip2', columns: { b: 'gzip1', i16: 'rice' }, tileRows: 150 } }]);
    const t1 = await ctypes(p1);
    assert.equal(t1.b, 'GZIP_1');
    assert.equal(t1.i16, 'RICE_1');
    assert.equal(t1.i32, 'GZIP_2');
    assert.equal(t1.f32, 'GZIP_2');
    assert.equal(t1.name, 'GZIP_1', 'strings cannot be GZIP_2: auto');
    assert.equal(t1.c64, 'GZIP_1', 'funpack cannot unshuffle complex: auto');
    assert.equal(t1.vd, 'GZIP_2');
    const p2 = join(dir, 'gzip1.fits');
    await writeCompressedFits(p2, [{ table, compress: { algorithm: 'gzip1', tileRows: 400 } }]);
    assert.ok(Object.values(await ctypes(p2)).every((v) => v === 'GZIP_1'));
    const unpacked = join(dir, 'gzip1.un.fits');
    assert.equal((await tool('funpack', ['-O', unpacked, p1])).code, 0);
    const f = await FitsFile.open(unpacked);
    try {
      await assertSameCells(f.table(1), table, 'funpack of mixed algorithms');
    } finally {
      await f.close();
    }

    const refused = async (compress: object, code: string, what: RegExp) => {
      await assert.rejects(writeCompressedFits(join(dir, 'bad.fits'), [{ table, compress }]),
        (e: unknown) => e instanceof FitsError && e.code === code && what.test(e.message));
    };
    await refused({ columns: { f32: 'rice' } }, 'fits_bad_compression', /column f32: RICE_1 applies to B, I and J/);
    await refused({ columns: { name: 'gzip2' } }, 'fits_bad_compression', /column name: GZIP_2 applies to I, J, K, E and D/);
    await refused({ columns: { nope: 'rice' } }, 'fits_bad_compression', /column "nope", which the table does not have/);
    await refused({ algorithm: 'lzma' }, 'fits_bad_compression', /unknown compression "lzma"/);
    await refused({ tileRows: 0 }, 'fits_bad_compression', /tile length 0/);
    await refused({ gzipLevel: 12 }, 'fits_bad_compression', /gzip level 12/);
    const vs = memoryTable([columnInfo('vs', 'string', { variable: true })], [{ rowCount: 2, columns: [{ values: ['a', 'bcd'] }] }]);
    await assert.rejects(writeCompressedFits(join(dir, 'vs.fits'), [{ table: vs }]),
      (e: unknown) => e instanceof FitsError && e.code === 'fits_unsupported' && /column vs: variable-length strings .*funpack/.test(e.message));
    const vm = memoryTable([columnInfo('vm', 'complex128', { variable: true })], [{ rowCount: 1, columns: [{ values: Float64Array.from([1, 2]), offsets: Int32Array.from([0, 1]) }] }]);
    await assert.rejects(writeCompressedFits(join(dir, 'vm.fits'), [{ table: vm }]),
      (e: unknown) => e instanceof FitsError && e.code === 'fits_unsupported' && /column vm: variable-length double complex/.test(e.message));
    const vx = memoryTable([columnInfo('vx', 'bit', { variable: true })], [{ rowCount: 2, columns: [{ values: Uint8Array.from([1, 0, 1]), offsets: Int32Array.from([0, 1, 3]) }] }]);
    await assert.rejects(writeCompressedFits(join(dir, 'vx.fits'), [{ table: vx }]),
      (e: unknown) => e instanceof FitsError && e.code === 'fits_unsupported' && /vx\.fits: HDU 1: column vx: variable-length bit arrays/.test(e.message));
  });
});

// astropy writes a table of every type with nulls, scaling, arrays and variable-length
// columns (not PL: astropy writes those as 1/0 bytes, not T/F); fpack compresses it in tiles of 700 rows (2000 rows: a partial last tile), with
// some columns forced to other algorithms than fpack's defaults.
const MAKE_FPACKED = String.raw`
import sys, os, subprocess, numpy as np
from astropy.io import fits
d = sys.argv[1]
n = 2000
rng = np.random.default_rng(7)
vj = np.array([np.arange(i % 5, dtype='i4') * i for i in range(n)], dtype=object)
ve = np.array([rng.normal(size=i % 4).astype('f4') for i in range(n)], dtype=object)
vb = np.array([np.full(i % 3, i % 256, dtype='u1') for i in range(n)], dtype=object)
cols = [
  fits.Column(name='u8', format='B', array=rng.integers(0, 256, n).astype('u1')),
  fits.Column(name='i16', format='I', array=rng.integers(-30000, 30000, n).astype('i2')),
  fits.Column(name='i16r', format='I', array=(np.arange(n) % 700 - 350).astype('i2')),
  fits.Column(name='u16', format='I', bzero=32768, array=np.arange(n, dtype='u2') * 30),
  fits.Column(name='i32', format='J', null=-999, array=np.where(np.arange(n) % 9 == 0, -999, np.arange(n) * 77).astype('i4')),
  fits.Column(name='i64', format='K', array=rng.integers(-2**62, 2**62, n)),
  fits.Column(name='f32', format='E', array=np.where(np.arange(n) % 8 == 0, np.nan, rng.normal(size=n)).astype('f4')),
  fits.Column(name='f64', format='D', array=rng.normal(size=n)),
  fits.Column(name='c64', format='C', array=(rng.normal(size=n) + 1j * rng.normal(size=n)).astype('c8')),
  fits.Column(name='c128', format='M', array=rng.normal(size=n) - 1j * rng.normal(size=n)),
  fits.Column(name='flag', format='L', array=np.arange(n) % 3 == 0),
  fits.Column(name='name', format='9A', array=np.array(['n%d' % i for i in range(n)])),
  fits.Column(name='bits', format='13X', array=rng.integers(0, 2, (n, 13)).astype(bool)),
  fits.Column(name='m23', format='6E', dim='(2,3)', array=rng.normal(size=(n, 3, 2)).astype('f4')),
  fits.Column(name='vj', format='PJ()', array=vj),
  fits.Column(name='ve', format='PE()', array=ve),
  fits.Column(name='vb', format='PB()', array=vb),
  fits.Column(name='vq', format='QD()', array=np.array([rng.normal(size=i % 3) for i in range(n)], dtype=object)),
  fits.Column(name='vi', format='PI()', array=np.array([np.arange(i % 4, dtype='i2') - 2 for i in range(n)], dtype=object)),
]
h = fits.BinTableHDU.from_columns(cols, name='DETECTIONS')
h.header['FZTILELN'] = 700
h.header['FZALG3'] = 'RICE_1'
h.header['FZALG1'] = 'RICE_1'
h.header['FZALG7'] = 'GZIP_1'
h.header['TELESCOP'] = 'PS1'
i = h.header.index('TFORM8')
h.header.insert(i + 1, ('TSCAL8', 2.5))
h.header.insert(i + 2, ('TZERO8', -1.0))
src = os.path.join(d, 'orig.fits')
h.writeto(src, overwrite=True)
subprocess.run(['fpack', '-table', '-O', src + '.fz', src], check=True, capture_output=True)
`;

test('fpack -table output of an astropy table reads back equal to the original', async () => {
  await withTempDir(async (dir) => {
    await python(MAKE_FPACKED, [dir]);
    // cfitsio's own compressed table gets the same one fitsverify warning as ours: the standard
    // keeps TNULL5 = -999 on the 1QB column, and fitsverify checks it against bytes; the
    // original table passes clean.
    const plain = await fitsverify(join(dir, 'orig.fits'));
    assert.deepEqual([plain.errors, plain.warnings], [0, 0], plain.output);
    const fpacked = await fitsverify(join(dir, 'orig.fits.fz'));
    assert.equal(fpacked.errors, 0, fpacked.output);
    assert.equal(fpacked.warnings, 1, fpacked.output);
    assert.match(fpacked.output, /TNULL5: The value -999 is not in the range of\s+datatype B/);
    const orig = await FitsFile.open(join(dir, 'orig.fits'));
    const packed = await FitsFile.open(join(dir, 'orig.fits.fz'));
    try {
      const h = packed.hdus[1];
      assert.equal(h.kind, 'compressed-table');
      assert.equal(h.header.get('ZTILELEN'), 700);
      assert.equal(h.header.get('ZCTYP1'), 'RICE_1');
      assert.equal(h.header.get('ZCTYP2'), 'GZIP_2');
      assert.equal(h.header.get('ZCTYP9'), 'GZIP_2', 'fpack labels complex GZIP_2 without shuffling it');
      const table = readCompressedTable(packed, h);
      assert.equal(table.name, 'DETECTIONS');
      assert.ok(table.params?.some((p) => p.name === 'TELESCOP' && p.value === 'PS1'));
      const want = orig.table(1);
      assert.deepEqual(table.columns, want.columns);
      await assertSameCells(table, want, 'fpack output through our reader');
      // Some columns only, in another order, in small batches.
      const some = await collectTable(table, { columns: ['ve', 'u16', 'name'], batchRows: 300 });
      const full = await collectTable(want, { columns: ['ve', 'u16', 'name'] });
      assert.deepEqual(some, full);
    } finally {
      await orig.close();
      await packed.close();
    }
  });
});

/** Our compressed sample and where each column's cell of tile `k` sits in the file. */
async function sampleFile(dir: string): Promise<{ path: string; bytes: Uint8Array; cell: (k: number, column: string) => { length: number; offset: number; at: number }; dataStart: number; heapStart: number }> {
  const path = join(dir, 'sample.fits');
  const table = sampleTable(900);
  await writeCompressedFits(path, [{ table, compress: { tileRows: 300 } }], { checksum: false });
  const bytes = new Uint8Array(await readFile(path));
  const f = await FitsFile.open(path);
  const h = f.hdus[1];
  await f.close();
  const ncols = table.columns.length;
  const dv = new DataView(bytes.buffer);
  const heapStart = h.dataStart + 3 * ncols * 16;
  const cell = (k: number, column: string) => {
    const c = table.columns.findIndex((x) => x.name === column);
    const at = h.dataStart + (k * ncols + c) * 16;
    return { length: Number(dv.getBigInt64(at)), offset: Number(dv.getBigInt64(at + 8)), at };
  };
  return { path, bytes, cell, dataStart: h.dataStart, heapStart };
}

async function readAll(bytes: Uint8Array, columns?: string[]): Promise<ColumnBatch> {
  const f = await FitsFile.fromBytes(bytes, 'broken.fits');
  return collectTable(readCompressedTable(f, f.hdus[1]), columns ? { columns } : {});
}

const badTile = (column: string, tile: number) => (e: unknown) =>
  e instanceof FitsError && e.code === 'fits_bad_tile' &&
  e.message.startsWith(`broken.fits: HDU 1 (SAMPLE): column ${column}: tile ${tile} of 3`) && e.location.column === column;

test('damaged tiles raise fits_bad_tile naming file, HDU, column and tile; other columns still read', async () => {
  await withTempDir(async (dir) => {
    const { bytes, cell, heapStart } = await sampleFile(dir);
    // A gzip tile (f64, tile 2) with its deflate data overwritten.
    {
      const b = bytes.slice();
      const { length, offset } = cell(1, 'f64');
      b.fill(0x55, heapStart + offset + 12, heapStart + offset + length - 10);
      await assert.rejects(readAll(b), badTile('f64', 2));
      await assert.rejects(readAll(b, ['f64']), badTile('f64', 2));
      const others = await readAll(b, ['i16', 'name', 'vj']);
      assert.equal(others.rowCount, 900, 'columns not asked for are not decompressed');
    }
    // A RICE tile (i32, tile 3) cut short: its descriptor says fewer bytes.
    {
      const b = bytes.slice();
      const { length, at } = cell(2, 'i32');
      new DataView(b.buffer).setBigInt64(at, BigInt(length - 3));
      await assert.rejects(readAll(b, ['i32']), (e: unknown) => badTile('i32', 3)(e) && /ends before/.test((e as Error).message));
    }
    // A RICE tile with extra bytes: it decodes to the wrong count.
    {
      const b = bytes.slice();
      const { length, at } = cell(0, 'i16');
      new DataView(b.buffer).setBigInt64(at, BigInt(length + 2));
      await assert.rejects(readAll(b, ['i16']), (e: unknown) => badTile('i16', 1)(e) && /bytes after its 300 values/.test((e as Error).message));
    }
    // A GZIP tile that inflates to another size: descriptor of the u64 column points at the f64 one.
    {
      const b = bytes.slice();
      const from = cell(0, 'f32');
      const to = cell(0, 'u64');
      const dv = new DataView(b.buffer);
      dv.setBigInt64(to.at, BigInt(from.length));
      dv.setBigInt64(to.at + 8, BigInt(from.offset));
      await assert.rejects(readAll(b, ['u64']), (e: unknown) => badTile('u64', 1)(e) && /inflates to 1200 bytes; it should hold 2400/.test((e as Error).message));
    }
    // Descriptors that point outside the heap, or hold nothing.
    {
      const b = bytes.slice();
      const c = cell(1, 'name');
      new DataView(b.buffer).setBigInt64(c.at + 8, 10n ** 12n);
      await assert.rejects(readAll(b, ['name']), (e: unknown) => badTile('name', 2)(e) && /outside the heap/.test((e as Error).message));
      const z = bytes.slice();
      new DataView(z.buffer).setBigInt64(cell(1, 'name').at, 0n);
      await assert.rejects(readAll(z, ['name']), badTile('name', 2));
    }
    // A variable-length column whose block of descriptors is damaged.
    {
      const b = bytes.slice();
      const { length, offset } = cell(0, 'vd');
      b.fill(0, heapStart + offset + 10, heapStart + offset + length);
      await assert.rejects(readAll(b, ['vd']), badTile('vd', 1));
    }
  });
});

test('damaged headers raise typed errors naming the keyword', async () => {
  await withTempDir(async (dir) => {
    const { path } = await sampleFile(dir);
    const text = Buffer.from(await readFile(path)).toString('latin1');
    const withCard = (keyword: string, card: string) => {
      const i = text.indexOf(keyword.padEnd(8) + '=', 2880);
      assert.ok(i > 0, keyword);
      return Buffer.from(text.slice(0, i) + card.padEnd(80) + text.slice(i + 80), 'latin1');
    };
    const cases: [Buffer, string, RegExp][] = [
      [withCard('ZCTYP3', "ZCTYP3  = 'LZMA_9  '"), 'fits_bad_compression', /keyword ZCTYP3: unknown table compression "LZMA_9"/],
      [withCard('ZCTYP9', "ZCTYP9  = 'RICE_1  '"), 'fits_bad_compression', /column f32: RICE_1 applies to B, I and J/],
      [withCard('ZTILELEN', 'ZTILELEN=                  200'), 'fits_bad_compressed_table', /keyword NAXIS2: NAXIS2 = 3 tiles, but ZNAXIS2 = 900 rows in tiles of ZTILELEN = 200 need 5/],
      [withCard('ZFORM2', 'COMMENT   no ZFORM2 here'), 'fits_missing_keyword', /keyword ZFORM2/],
      [withCard('TFORM1', "TFORM1  = '1QJ(40) '"), 'fits_bad_compressed_table', /column b: .*1PB or 1QB/],
      [withCard('ZNAXIS1', 'ZNAXIS1 =                   99'), 'fits_bad_naxis1', /NAXIS1 = 99/],
    ];
    for (const [bytes, code, what] of cases) {
      const f = await FitsFile.fromBytes(bytes, 'broken.fits');
      assert.throws(() => readCompressedTable(f, f.hdus[1]), (e: unknown) => e instanceof FitsError && e.code === code && what.test(e.message), `${code} ${what}`);
    }
  });
});

test('random damage to a compressed file gives data or a typed error, never a crash or a hang', async () => {
  await withTempDir(async (dir) => {
    const { bytes, dataStart } = await sampleFile(dir);
    const rnd = lcg(99);
    let failures = 0;
    for (let trial = 0; trial < 150; trial++) {
      const b = bytes.slice();
      // Damage the descriptors and the heap (the header is covered by the header tests).
      const from = dataStart;
      for (let k = 0; k < 1 + (rnd() % 6); k++) b[from + (rnd() % (b.length - from))] = rnd() & 0xff;
      try {
        await readAll(b);
      } catch (e) {
        failures++;
        assert.ok(e instanceof IppError, `trial ${trial}: ${String(e)}`);
      }
    }
    assert.ok(failures > 50, `most random damage is detected (${failures} of 150)`);
  });
});

test('a table changed between the scan and the write is refused, and the file is not left behind', async () => {
  await withTempDir(async (dir) => {
    const base = sampleTable(100);
    let calls = 0;
    const shifty: Table = {
      columns: base.columns,
      async *batches(options) {
        calls++;
        for await (const b of base.batches(options)) yield calls > 1 ? sliceBatch(base.columns, b, 0, 50) : b;
      },
    };
    const path = join(dir, 'shifty.fits');
    await assert.rejects(writeCompressedFits(path, [{ table: shifty }]), (e: unknown) => e instanceof FitsError && e.code === 'fits_table_changed');
    await assert.rejects(readFile(path), { code: 'ENOENT' });
    assert.deepEqual(await readdir(dir), []);
  });
});

test('a row range of a compressed table reads only the tiles holding it: the same rows as the plain table, a damaged tile outside it unread', async () => {
  await withTempDir(async (dir) => {
    const { bytes, cell, heapStart } = await sampleFile(dir);
    const plain = sampleTable(900);
    const f = await FitsFile.fromBytes(bytes, 'sample.fits');
    const packed = readCompressedTable(f, f.hdus[1]);
    // Tiles of 300 rows: ranges inside one tile, across one or two boundaries, at the ends, empty.
    for (const [a, b] of [[0, 900], [0, 1], [299, 301], [10, 20], [250, 650], [300, 600], [599, 900], [899, 900], [450, 450], [800, 2000]]) {
      const range = rowRange(packed, a, b);
      assert.equal(range.rowCount, Math.max(0, Math.min(b, 900) - a), `rows ${a}-${b}: count`);
      await assertSameCells(range, rowRange(plain, a, b), `rows ${a}-${b}`);
      for (const batchRows of [7, 1000]) {
        const got = await collectTable(range, { columns: ['i32', 'vj', 'name'], batchRows });
        assert.equal(got.rowCount, range.rowCount, `rows ${a}-${b} in batches of ${batchRows}`);
      }
    }
    // A slice of a slice is the rows of the first it names.
    await assertSameCells(rowRange(rowRange(packed, 250, 700), 40, 360), rowRange(plain, 290, 610), 'slice of a slice');
    // Tile 1 damaged: the whole table fails, rows of tiles 2 and 3 still read, a range touching tile 1 fails.
    const b = bytes.slice();
    for (const column of ['f64', 'i32', 'vj']) {
      const { length, offset } = cell(0, column);
      b.fill(0x55, heapStart + offset + 12, heapStart + offset + length - 4);
    }
    const damaged = await FitsFile.fromBytes(b, 'broken.fits');
    const table = readCompressedTable(damaged, damaged.hdus[1]);
    await assert.rejects(collectTable(table, { columns: ['f64'] }), badTile('f64', 1));
    await assertSameCells(rowRange(table, 300, 900), rowRange(plain, 300, 900), 'tiles after the damaged one');
    await assert.rejects(collectTable(rowRange(table, 299, 301), { columns: ['i32'] }), badTile('i32', 1));
  });
});
