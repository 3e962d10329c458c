import { test } from 'node:test';
import assert from 'node:assert/strict';
import { columnInfo, type ColumnInfo } from '../table/index.ts';
import {
  addColumnCards, columnDefsFromInfos, isColumnKeyword, parseColumnDefs, rowBytesOf,
} from './column-defs.ts';
import { Header, parseHeader } from './header.ts';
import { fitsError } from './testing/assertions.ts';

const at = { file: 't.fits', hdu: 1 };

/** A binary-table header with these column cards (keyword → value per column). */
function tableHeader(naxis1: number, columns: Record<string, string | number | bigint>[]): Header {
  const h = new Header().set('XTENSION', 'BINTABLE').set('BITPIX', 8).set('NAXIS', 2)
    .set('NAXIS1', naxis1).set('NAXIS2', 0).set('PCOUNT', 0).set('GCOUNT', 1).set('TFIELDS', columns.length);
  columns.forEach((c, i) => {
    for (const [k, v] of Object.entries(c)) h.set(`${k}${i + 1}`, v);
  });
  return h;
}

test('mapping of stored types to memory types, offsets and widths', () => {
  const h = tableHeader(4 + 2 + 1 + 1 + 2 + 4 + 8 + 20 + 24 + 2 + 8 + 16 + 12 + 24, [
    { TTYPE: 'J', TFORM: '1J' },
    { TTYPE: 'U16', TFORM: 'I', TZERO: 32768 },
    { TTYPE: 'I8', TFORM: 'B', TZERO: -128 },
    { TTYPE: 'U8', TFORM: 'B', TNULL: 255 },
    { TTYPE: 'SCALED', TFORM: 'I', TSCAL: 0.5, TZERO: 10, TNULL: -1 },
    { TTYPE: 'U32', TFORM: 'J', TZERO: 2147483648, TNULL: 2147483647 },
    { TTYPE: 'U64', TFORM: 'K', TZERO: 9223372036854775808n, TNULL: -9223372036854775808n },
    { TTYPE: 'S', TFORM: '20A', TUNIT: 'none', TCOMM: 'a string', TUCD: 'meta.id', TUTYP: 'x:y', TDISP: 'A20' },
    { TTYPE: 'ARR', TFORM: '3D', TDIM: '(3)' },
    { TTYPE: 'BITS', TFORM: '9X' },
    { TTYPE: 'VAR', TFORM: '1PE(7)' },
    { TTYPE: 'QVAR', TFORM: '1QA(30)' },
    { TTYPE: 'STRS', TFORM: '12A', TDIM: '(4,3)' },
    { TTYPE: 'IMG', TFORM: '6E', TDIM: '(2,3)' },
  ]);
  const { defs, rowBytes } = parseColumnDefs(h, at);
  assert.equal(rowBytes, h.get('NAXIS1'));
  const info = (name: string): ColumnInfo => defs.find((d) => d.name === name)!.info;
  assert.deepEqual(defs.map((d) => d.byteOffset), [0, 4, 6, 7, 8, 10, 14, 22, 42, 66, 68, 76, 92, 104]);
  assert.equal(info('J').type, 'int32');
  assert.deepEqual(info('J').shape, []);
  assert.equal(info('U16').type, 'uint16');
  assert.equal(defs[1].conversion, 'offset');
  assert.equal(info('I8').type, 'int8');
  assert.equal(info('U8').type, 'uint8');
  assert.equal(info('U8').nullValue, 255);
  assert.equal(info('SCALED').type, 'float64');
  assert.deepEqual(info('SCALED').storage, { type: 'int16', scale: 0.5, zero: 10 });
  assert.equal(info('SCALED').nullValue, -1, 'scaled nulls stay in stored terms');
  assert.equal(info('U32').type, 'uint32');
  assert.equal(info('U32').nullValue, 4294967295, 'unsigned nulls are in the unsigned domain');
  assert.equal(info('U64').type, 'uint64');
  assert.equal(info('U64').nullValue, 0n);
  assert.deepEqual(
    { ...info('S') },
    { name: 'S', type: 'string', shape: [], width: 20, unit: 'none', description: 'a string', ucd: 'meta.id', utype: 'x:y', display: 'A20' },
  );
  assert.deepEqual(info('ARR').shape, [3]);
  assert.equal(info('BITS').type, 'bit');
  assert.deepEqual(info('BITS').shape, [9]);
  assert.equal(info('VAR').variable, true);
  assert.equal(info('VAR').type, 'float32');
  assert.equal(defs[10].elementCode, 'E');
  assert.equal(defs[10].maxLength, 7);
  assert.equal(info('QVAR').type, 'string');
  assert.equal(info('QVAR').width, 30);
  assert.equal(info('STRS').width, 4);
  assert.deepEqual(info('STRS').shape, [3]);
  assert.deepEqual(info('IMG').shape, [2, 3]);
});

test('columns without TTYPE are named colN', () => {
  const { defs } = parseColumnDefs(tableHeader(4, [{ TFORM: 'J' }]), at);
  assert.equal(defs[0].name, 'col1');
});

test('descriptions → defs → cards → defs gives the same columns back', () => {
  const infos = [
    columnInfo('flag', 'boolean'),
    columnInfo('bits', 'bit', { shape: [12] }),
    columnInfo('i8', 'int8', { nullValue: -128 }),
    columnInfo('u8', 'uint8'),
    columnInfo('i16', 'int16', { nullValue: -999, unit: 'count', ucd: 'meta.number', utype: 'a:b', description: 'counts', display: 'I6' }),
    columnInfo('u16', 'uint16', { nullValue: 65535 }),
    columnInfo('i32', 'int32'),
    columnInfo('u32', 'uint32', { nullValue: 0 }),
    columnInfo('i64', 'int64', { nullValue: -1n }),
    columnInfo('u64', 'uint64', { nullValue: 18446744073709551615n }),
    columnInfo('f32', 'float32', { shape: [1] }),
    columnInfo('f64', 'float64', { shape: [2, 3, 4] }),
    columnInfo('c64', 'complex64'),
    columnInfo('c128', 'complex128', { shape: [5] }),
    columnInfo('name', 'string', { width: 16 }),
    columnInfo('names', 'string', { width: 3, shape: [2, 2] }),
    columnInfo('scaled', 'float64', { storage: { type: 'int32', scale: 1e-6, zero: 180 }, nullValue: -2147483648 }),
    columnInfo('fscaled', 'float64', { storage: { type: 'float32', scale: 2, zero: 0 } }),
    columnInfo('var', 'int16', { variable: true }),
    columnInfo('vstr', 'string', { variable: true, width: 40 }),
  ];
  const defs = columnDefsFromInfos(infos, { maxLengths: infos.map((i) => (i.name === 'var' ? 9 : undefined)) });
  const rowBytes = rowBytesOf(defs);
  const h = new Header().set('XTENSION', 'BINTABLE').set('BITPIX', 8).set('NAXIS', 2).set('NAXIS1', rowBytes)
    .set('NAXIS2', 0).set('PCOUNT', 0).set('GCOUNT', 1).set('TFIELDS', defs.length);
  addColumnCards(h, defs);
  // Through bytes, as a reader would see it.
  const back = parseColumnDefs(parseHeader(h.toBytes()), at);
  assert.equal(back.rowBytes, rowBytes);
  assert.deepEqual(back.defs.map((d) => ({ ...d.info })), infos.map((i) => ({ ...i })));
  assert.deepEqual(back.defs.map((d) => d.tform), defs.map((d) => d.tform));
  assert.equal(h.get('TFORM2'), '12X');
  assert.equal(h.get('TZERO3'), -128);
  assert.equal(h.get('TNULL3'), 0, 'int8 null -128 is stored as 0');
  assert.equal(h.get('TZERO10'), 9223372036854775808n);
  assert.equal(h.get('TNULL10'), 9223372036854775807n);
  assert.equal(h.get('TDIM11'), '(1)');
  assert.equal(h.get('TDIM12'), '(2,3,4)');
  assert.equal(h.has('TDIM14'), false, 'no TDIM on 1-D arrays');
  assert.equal(h.get('TFORM16'), '12A');
  assert.equal(h.get('TDIM16'), '(3,2,2)');
  assert.equal(h.get('TFORM19'), '1PI(9)');
  assert.equal(h.get('TFORM20'), '1PA(40)');
  assert.equal(h.get('TCOMM5'), 'counts');
  assert.equal(h.get('TUCD5'), 'meta.number');
  assert.equal(h.get('TUTYP5'), 'a:b');
});

test('a heap past 2 GiB gets Q descriptors', () => {
  const defs = columnDefsFromInfos([columnInfo('v', 'float64', { variable: true })], { heapSize: 2 ** 31 });
  assert.equal(defs[0].tform, '1QD');
  assert.equal(defs[0].byteWidth, 16);
});

test('string columns need a width; bad null values and storage are refused', () => {
  assert.throws(() => columnDefsFromInfos([columnInfo('s', 'string')]), fitsError('fits_unknown_width', /column s/));
  assert.throws(() => columnDefsFromInfos([columnInfo('n', 'int16', { nullValue: 40000 })]), fitsError('fits_bad_tnull', /column n/));
  assert.throws(() => columnDefsFromInfos([columnInfo('s', 'float32', { storage: { type: 'int16', scale: 1, zero: 1 } })]), fitsError('fits_unsupported_column'));
});

test('NAXIS1 that does not match the TFORMs names both numbers', () => {
  assert.throws(() => parseColumnDefs(tableHeader(10, [{ TTYPE: 'A', TFORM: 'J' }, { TTYPE: 'B', TFORM: 'D' }]), at),
    fitsError('fits_bad_naxis1', /t\.fits: HDU 1: keyword NAXIS1/, /NAXIS1 = 10/, /12 bytes/));
});

test('missing and bad column keywords are named', () => {
  const noTform = tableHeader(4, [{ TTYPE: 'X' }]);
  assert.throws(() => parseColumnDefs(noTform, at), fitsError('fits_missing_keyword', /keyword TFORM1/, /column X/));
  const noTfields = tableHeader(4, [{ TFORM: 'J' }]);
  noTfields.delete('TFIELDS');
  assert.throws(() => parseColumnDefs(noTfields, at), fitsError('fits_missing_keyword', /keyword TFIELDS/));
  assert.throws(() => parseColumnDefs(tableHeader(4, [{ TTYPE: 'Q', TFORM: 'W' }]), at), fitsError('fits_bad_tform', /TFORM1/, /column Q/));
  assert.throws(() => parseColumnDefs(tableHeader(8, [{ TTYPE: 'F', TFORM: '2E', TDIM: '(3)' }]), at), fitsError('fits_bad_tdim', /TDIM1/, /column F/));
  assert.throws(() => parseColumnDefs(tableHeader(8, [{ TTYPE: 'F', TFORM: '2E', TDIM: '3,1' }]), at), fitsError('fits_bad_tdim'));
  assert.throws(() => parseColumnDefs(tableHeader(4, [{ TTYPE: 'F', TFORM: 'E', TNULL: 0 }]), at), fitsError('fits_bad_tnull', /TNULL1/, /column F/));
  assert.throws(() => parseColumnDefs(tableHeader(2, [{ TTYPE: 'I', TFORM: 'I', TNULL: 40000 }]), at), fitsError('fits_bad_tnull', /outside/));
  assert.throws(() => parseColumnDefs(tableHeader(4, [{ TTYPE: 'S', TFORM: '4A', TSCAL: 2 }]), at), fitsError('fits_bad_keyword', /TSCAL1/));
  assert.throws(() => parseColumnDefs(tableHeader(4, [{ TTYPE: 'S', TFORM: 'J', TNULL: 'x' }]), at), fitsError('fits_bad_keyword', /TNULL1/));
});

test('column keywords are recognised as such', () => {
  for (const k of ['TTYPE1', 'TFORM12', 'TNULL999', 'TCOMM3', 'TUCD4', 'TLMIN2', 'tunit5']) assert.ok(isColumnKeyword(k), k);
  for (const k of ['TTYPE', 'TTYPE0', 'TELESCOP', 'TEMP1', 'EXPTIME']) assert.ok(!isColumnKeyword(k), k);
});
