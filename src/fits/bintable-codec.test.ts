import { test } from 'node:test';
import assert from 'node:assert/strict';
import { columnInfo, getCell, type ColumnBatch, type ColumnInfo } from '../table/index.ts';
import { decodeRows, encodeRows, MemoryHeap, type HeapReader } from './bintable-codec.ts';
import { columnDefsFromInfos, parseColumnDefs, rowBytesOf, type FitsColumnDef } from './column-defs.ts';
import { Header } from './header.ts';
import { fitsError } from './testing/assertions.ts';

const at = { file: 'c.fits', hdu: 1 };

function cells(infos: readonly ColumnInfo[], batch: ColumnBatch): unknown[][] {
  return infos.map((info, c) => Array.from({ length: batch.rowCount }, (_, r) => getCell(info, batch.columns[c], r)));
}

function roundTrip(infos: ColumnInfo[], batch: ColumnBatch, maxLengths?: (number | undefined)[]): { defs: FitsColumnDef[]; rows: Uint8Array; heap: MemoryHeap; back: ColumnBatch } {
  const defs = columnDefsFromInfos(infos, maxLengths ? { maxLengths } : {});
  const rowBytes = rowBytesOf(defs);
  const heap = new MemoryHeap();
  const rows = encodeRows(defs, batch, rowBytes, heap, at);
  assert.equal(rows.length, rowBytes * batch.rowCount);
  const back = decodeRows(defs, rows, batch.rowCount, rowBytes, defs.map((_, i) => i), heap, at);
  assert.ok(!(back instanceof Promise), 'a heap in memory decodes synchronously');
  return { defs, rows, heap, back };
}

test('every scalar type round-trips, with extreme values', () => {
  const infos = [
    columnInfo('l', 'boolean'), columnInfo('i8', 'int8'), columnInfo('u8', 'uint8'), columnInfo('i16', 'int16'),
    columnInfo('u16', 'uint16'), columnInfo('i32', 'int32'), columnInfo('u32', 'uint32'), columnInfo('i64', 'int64'),
    columnInfo('u64', 'uint64'), columnInfo('f32', 'float32'), columnInfo('f64', 'float64'), columnInfo('c64', 'complex64'),
    columnInfo('c128', 'complex128'), columnInfo('s', 'string', { width: 6 }),
  ];
  const batch: ColumnBatch = {
    rowCount: 3,
    columns: [
      { values: new Uint8Array([1, 0, 1]) },
      { values: new Int8Array([-128, 0, 127]) },
      { values: new Uint8Array([0, 128, 255]) },
      { values: new Int16Array([-32768, 0, 32767]) },
      { values: new Uint16Array([0, 32768, 65535]) },
      { values: new Int32Array([-2147483648, 0, 2147483647]) },
      { values: new Uint32Array([0, 2147483648, 4294967295]) },
      { values: new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]) },
      { values: new BigUint64Array([0n, 2n ** 63n, 2n ** 64n - 1n]) },
      { values: new Float32Array([-3.4028234663852886e38, 1.401298464324817e-45, Infinity]) },
      { values: new Float64Array([-Number.MAX_VALUE, Number.MIN_VALUE, -0]) },
      { values: new Float32Array([1, -2, 3.5, -4.5, 0, 1e-30]) },
      { values: new Float64Array([Math.PI, -Math.E, 1e300, -1e-300, 0, 1]) },
      { values: ['', 'abcdef', 'x y'] },
    ],
  };
  const { rows, back, defs } = roundTrip(infos, batch);
  assert.deepEqual(cells(infos, back), cells(infos, batch));
  assert.equal(Object.is((back.columns[10].values as Float64Array)[2], -0), true, '-0 keeps its sign');
  // Big-endian on disk: the int16 column of row 0 is 0x8000.
  const o = defs[3].byteOffset;
  assert.deepEqual([rows[o], rows[o + 1]], [0x80, 0x00]);
  // Unsigned 16-bit 0 is stored as -32768 (0x8000) too.
  const u = defs[4].byteOffset;
  assert.deepEqual([rows[u], rows[u + 1]], [0x80, 0x00]);
  // Logicals are 'T' and 'F'.
  assert.deepEqual([rows[0], rows[rowBytesOf(defs)]], [0x54, 0x46]);
});

test('arrays, TDIM shapes, bits and arrays of strings round-trip', () => {
  const infos = [
    columnInfo('bits', 'bit', { shape: [13] }),
    columnInfo('img', 'int32', { shape: [3, 2] }),
    columnInfo('vec', 'float64', { shape: [4] }),
    columnInfo('one', 'float32', { shape: [1] }),
    columnInfo('none', 'int16', { shape: [0] }),
    columnInfo('flags', 'boolean', { shape: [2] }),
    columnInfo('cplx', 'complex64', { shape: [2] }),
    columnInfo('strs', 'string', { width: 5, shape: [2, 2] }),
  ];
  const n = 4;
  const batch: ColumnBatch = {
    rowCount: n,
    columns: [
      { values: Uint8Array.from({ length: 13 * n }, (_, i) => (i % 5 === 0 || i % 7 === 1 ? 1 : 0)) },
      { values: Int32Array.from({ length: 6 * n }, (_, i) => i * 1000 - 7) },
      { values: Float64Array.from({ length: 4 * n }, (_, i) => i / 7) },
      { values: Float32Array.from({ length: n }, (_, i) => i + 0.25) },
      { values: new Int16Array(0) },
      { values: Uint8Array.from({ length: 2 * n }, (_, i) => i % 3 === 0 ? 1 : 0), valid: Uint8Array.from({ length: 2 * n }, (_, i) => (i === 5 ? 0 : 1)) },
      { values: Float32Array.from({ length: 4 * n }, (_, i) => i - 8) },
      { values: Array.from({ length: 4 * n }, (_, i) => 'abcde'.slice(0, i % 6)) },
    ],
  };
  const { back, defs } = roundTrip(infos, batch);
  assert.deepEqual(cells(infos, back), cells(infos, batch));
  assert.deepEqual(back.columns[5].valid, batch.columns[5].valid);
  assert.equal(defs[0].byteWidth, 2);
  assert.equal(defs[4].byteWidth, 0);
  assert.equal(defs[7].tform, '20A');
});

test('nulls: TNULL on integers, NaN on floats, 0 on logicals; in-memory validity comes back', () => {
  const infos = [
    columnInfo('i16', 'int16', { nullValue: -999 }),
    columnInfo('u32', 'uint32', { nullValue: 4294967295 }),
    columnInfo('i64', 'int64', { nullValue: -1n }),
    columnInfo('i8', 'int8', { nullValue: 127, shape: [2] }),
    columnInfo('f32', 'float32'),
    columnInfo('c', 'complex128'),
    columnInfo('l', 'boolean'),
  ];
  const valid = new Uint8Array([1, 0, 1]);
  const batch: ColumnBatch = {
    rowCount: 3,
    columns: [
      { values: new Int16Array([5, 77, -999]), valid },
      { values: new Uint32Array([1, 2, 4294967295]), valid },
      { values: new BigInt64Array([1n, 2n, 3n]), valid },
      { values: new Int8Array([1, 2, 3, 4, 5, 6]), valid: new Uint8Array([1, 0, 1, 1, 1, 0]) },
      { values: new Float32Array([1, 2, NaN]), valid },
      { values: new Float64Array([1, 2, 3, 4, 5, 6]), valid },
      { values: new Uint8Array([1, 1, 0]), valid },
    ],
  };
  const { back, rows, defs } = roundTrip(infos, batch);
  const got = cells(infos, back);
  assert.deepEqual(got[0], [5, null, null], 'a stored TNULL reads back as null even when marked valid');
  assert.deepEqual(got[1], [1, null, null]);
  assert.deepEqual(got[2], [1n, null, 3n]);
  assert.deepEqual(got[3], [[1, null], [3, 4], [5, null]]);
  assert.deepEqual(got[4], [1, NaN, NaN]);
  assert.deepEqual(got[5], [[1, 2], [NaN, NaN], [5, 6]]);
  assert.deepEqual(got[6], [true, null, false]);
  assert.equal((back.columns[0].values as Int16Array)[1], -999, 'integer nulls keep the null value');
  // u32 null 4294967295 is stored as TNULL 2147483647.
  const p = rowBytesOf(defs) + defs[1].byteOffset;
  assert.deepEqual([...rows.subarray(p, p + 4)], [0x7f, 0xff, 0xff, 0xff]);
  assert.equal(rows[rowBytesOf(defs) + defs[6].byteOffset], 0, 'a null logical is byte 0');
});

test('a null in an integer column without a null value is refused, naming column and row', () => {
  const infos = [columnInfo('n', 'int32')];
  const batch: ColumnBatch = { rowCount: 2, columns: [{ values: new Int32Array([1, 2]), valid: new Uint8Array([1, 0]) }] };
  const defs = columnDefsFromInfos(infos);
  assert.throws(() => encodeRows(defs, batch, 4, undefined, at, 10), fitsError('fits_no_null_value', /c\.fits: HDU 1: column n: row 12/));
});

test('scaled columns: TSCAL/TZERO applied both ways, TNULL ↔ NaN, out-of-range values refused', () => {
  const infos = [
    columnInfo('deg', 'float64', { storage: { type: 'int32', scale: 1e-7, zero: 180 }, nullValue: -2147483648 }),
    columnInfo('f', 'float64', { storage: { type: 'float32', scale: 0.5, zero: -1 } }),
    columnInfo('k', 'float64', { storage: { type: 'int64', scale: 2, zero: 0 }, nullValue: 0 }),
  ];
  const batch: ColumnBatch = {
    rowCount: 3,
    columns: [
      { values: new Float64Array([180, 359.1234567, NaN]) },
      { values: new Float64Array([-1, 2.5, NaN]) },
      { values: new Float64Array([2, 2 ** 52, NaN]) },
    ],
  };
  const { back, rows, defs } = roundTrip(infos, batch);
  const got = back.columns[0].values as Float64Array;
  assert.ok(Math.abs(got[1] - 359.1234567) < 1e-9);
  assert.equal(got[0], 180);
  assert.ok(Number.isNaN(got[2]));
  assert.equal(back.columns[0].valid?.[2], 0);
  assert.deepEqual([...(back.columns[1].values as Float64Array)], [-1, 2.5, NaN]);
  assert.deepEqual([...(back.columns[2].values as Float64Array)], [2, 2 ** 52, NaN]);
  // 180 + 1e-7 * stored: 180 is stored as 0.
  assert.deepEqual([...rows.subarray(defs[0].byteOffset, defs[0].byteOffset + 4)], [0, 0, 0, 0]);
  const tooBig: ColumnBatch = { rowCount: 1, columns: [{ values: new Float64Array([1e6]) }, { values: new Float64Array([0]) }, { values: new Float64Array([0]) }] };
  assert.throws(() => encodeRows(defs, tooBig, rowBytesOf(defs), undefined, at), fitsError('fits_value_out_of_range', /column deg: row 1/));
});

test('strings: NULs end them, trailing spaces go, non-ASCII is an error naming column and row', () => {
  const defs = columnDefsFromInfos([columnInfo('s', 'string', { width: 6 })]);
  const bytes = Buffer.from('ab\0xyz' + 'cd    ' + '  e f ', 'latin1');
  const back = decodeRows(defs, bytes, 3, 6, [0], undefined, at) as ColumnBatch;
  assert.deepEqual(back.columns[0].values, ['ab', 'cd', '  e f']);
  // Bytes after the NUL are not looked at.
  const afterNul = Buffer.from([0x61, 0x00, 0xff, 0xfe, 0x01, 0x02]);
  assert.deepEqual((decodeRows(defs, afterNul, 1, 6, [0]) as ColumnBatch).columns[0].values, ['a']);
  const bad = Buffer.from('okay  ' + 'caf\xe9  ', 'latin1');
  assert.throws(() => decodeRows(defs, bad, 2, 6, [0], undefined, at, 100), fitsError('fits_bad_string', /c\.fits: HDU 1: column s: row 102/, /0xe9/));
  const tab = Buffer.from('a\tb   ', 'latin1');
  assert.throws(() => decodeRows(defs, tab, 1, 6, [0], undefined, at), fitsError('fits_bad_string'));
  const write = (s: string) => encodeRows(defs, { rowCount: 2, columns: [{ values: ['fine', s] }] }, 6, undefined, at);
  assert.throws(() => write('café'), fitsError('fits_bad_string', /column s: row 2/, /U\+00e9/));
  assert.throws(() => write('toolong'), fitsError('fits_string_too_long', /column s: row 2/));
});

test('bad logical bytes are an error naming column and row', () => {
  const defs = columnDefsFromInfos([columnInfo('l', 'boolean')]);
  assert.throws(() => decodeRows(defs, Buffer.from('TFx'), 3, 1, [0], undefined, at), fitsError('fits_bad_logical', /column l: row 3/));
});

test('variable-length arrays (P) of every kind round-trip through the heap', () => {
  const infos = [
    columnInfo('vj', 'int32', { variable: true, nullValue: -1 }),
    columnInfo('vd', 'float64', { variable: true }),
    columnInfo('vu', 'uint16', { variable: true }),
    columnInfo('vs', 'string', { variable: true }),
    columnInfo('vl', 'boolean', { variable: true }),
    columnInfo('vx', 'bit', { variable: true }),
    columnInfo('vc', 'complex64', { variable: true }),
    columnInfo('fixed', 'int16'),
  ];
  const batch: ColumnBatch = {
    rowCount: 4,
    columns: [
      { values: new Int32Array([1, 2, -1, 4, 5]), offsets: new Int32Array([0, 2, 2, 3, 5]) },
      { values: new Float64Array([0.5, NaN, 1e10]), offsets: new Int32Array([0, 0, 1, 1, 3]) },
      { values: new Uint16Array([65535, 0, 1]), offsets: new Int32Array([0, 3, 3, 3, 3]) },
      { values: ['hello', '', 'a', 'world!'] },
      { values: new Uint8Array([1, 0, 1]), valid: new Uint8Array([1, 1, 0]), offsets: new Int32Array([0, 1, 3, 3, 3]) },
      { values: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 1, 1]), offsets: new Int32Array([0, 9, 9, 10, 10]) },
      { values: new Float32Array([1, 2, 3, 4]), offsets: new Int32Array([0, 0, 0, 0, 2]) },
      { values: new Int16Array([7, 8, 9, 10]) },
    ],
  };
  const { back, defs, heap } = roundTrip(infos, batch, [2, 2, 3, 6, 2, 9, 2, undefined]);
  const got = cells(infos, back);
  const want = cells(infos, batch);
  want[0][2] = [null];
  assert.deepEqual(got, want);
  assert.deepEqual(defs.map((d) => d.tform), ['1PJ(2)', '1PD(2)', '1PI(3)', '1PA(6)', '1PL(2)', '1PX(9)', '1PC(2)', '1I']);
  // 5 J + 3 D + 3 I + 12 chars + 3 L + 2+1 X bytes + 2 C
  assert.equal(heap.size, 20 + 24 + 6 + 12 + 3 + 3 + 16);
});

test('Q descriptors and a heap read asynchronously give the same values', async () => {
  const infos = [columnInfo('v', 'int64', { variable: true }), columnInfo('s', 'string', { variable: true })];
  const defs = columnDefsFromInfos(infos, { heapSize: 2 ** 32 });
  assert.equal(defs[0].code, 'Q');
  const rowBytes = rowBytesOf(defs);
  const heap = new MemoryHeap();
  const batch: ColumnBatch = { rowCount: 3, columns: [{ values: new BigInt64Array([1n, -2n, 3n]), offsets: new Int32Array([0, 1, 1, 3]) }, { values: ['x', 'yy', ''] }] };
  const rows = encodeRows(defs, batch, rowBytes, heap);
  let reads = 0;
  const asyncHeap: HeapReader = { size: heap.size, read: async (o, n) => { reads++; return heap.read(o, n); } };
  const pending = decodeRows(defs, rows, 3, rowBytes, [1, 0], asyncHeap);
  assert.ok(pending instanceof Promise);
  const back = await pending;
  assert.deepEqual(cells([infos[1], infos[0]], back), [['x', 'yy', ''], [[1n], [], [-2n, 3n]]]);
  assert.equal(reads, 2, 'one heap read per column per batch');
  // Decoding fixed columns only never touches the heap and stays synchronous.
  assert.ok(!(decodeRows(defs, rows, 3, rowBytes, [], asyncHeap) instanceof Promise));
});

test('a descriptor pointing outside the heap is fits_bad_heap naming column and row', () => {
  const h = new Header().set('NAXIS1', 12).set('TFIELDS', 2).set('TTYPE1', 'ID').set('TFORM1', 'J').set('TTYPE2', 'ARR').set('TFORM2', 'PE(4)');
  const { defs, rowBytes } = parseColumnDefs(h, at);
  const rows = new Uint8Array(24);
  const dv = new DataView(rows.buffer);
  dv.setUint32(4, 2); dv.setUint32(8, 0); // row 1: 2 floats at 0 — fine
  dv.setUint32(16, 3); dv.setUint32(20, 6); // row 2: 3 floats at 6 → bytes 6..18 of a 16-byte heap
  const heap = new MemoryHeap(new Uint8Array(16));
  assert.throws(() => decodeRows(defs, rows, 2, rowBytes, [1], heap, at, 40), fitsError('fits_bad_heap', /c\.fits: HDU 1: column ARR: row 42/, /outside the heap of 16 bytes/));
  assert.throws(() => decodeRows(defs, rows, 2, rowBytes, [1], undefined, at), fitsError('fits_bad_heap', /no heap/));
  // Rows selected without the array column decode fine.
  assert.deepEqual((decodeRows(defs, rows, 2, rowBytes, [0], heap, at) as ColumnBatch).columns[0].values, new Int32Array([0, 0]));
});

test('selected columns come back in the order asked, and rows past the given bytes are refused', () => {
  const infos = [columnInfo('a', 'int16'), columnInfo('b', 'float64'), columnInfo('c', 'string', { width: 2 })];
  const defs = columnDefsFromInfos(infos);
  const batch: ColumnBatch = { rowCount: 2, columns: [{ values: new Int16Array([1, 2]) }, { values: new Float64Array([0.5, 1.5]) }, { values: ['x', 'yz'] }] };
  const rows = encodeRows(defs, batch, 12, undefined);
  const back = decodeRows(defs, rows, 2, 12, [2, 0]) as ColumnBatch;
  assert.deepEqual(back.columns.map((c) => c.values), [['x', 'yz'], new Int16Array([1, 2])]);
  assert.throws(() => decodeRows(defs, rows, 3, 12, [0], undefined, at), fitsError('fits_truncated'));
  assert.throws(() => decodeRows(defs, rows, 2, 12, [5], undefined, at), fitsError('fits_no_such_column'));
});

test('a batch whose arrays do not match the column types is refused', () => {
  const defs = columnDefsFromInfos([columnInfo('f', 'float32')]);
  assert.throws(() => encodeRows(defs, { rowCount: 1, columns: [{ values: new Float64Array([1]) }] }, 4, undefined, at), fitsError('fits_bad_batch', /column f/));
});
