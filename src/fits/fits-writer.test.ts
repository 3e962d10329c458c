import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  collectTable, columnInfo, getCell, isFloatType, memoryTable,
  type CellValue, type ColumnBatch, type ColumnInfo, type ReadOptions, type Table,
} from '../table/index.ts';
import { encodeRows, MemoryHeap } from './bintable-codec.ts';
import { columnDefsFromInfos, rowBytesOf } from './column-defs.ts';
import { FitsFile } from './fits-file.ts';
import { bintableHeader, HduWriter, planTable, primaryHeader, writeFits, writeHduPadded } from './fits-writer.ts';
import { BLOCK, Header, padToBlock } from './header.ts';
import { astropyColumns, astropyColumnsOf, astropyFiles, fitsverify, stiltsCsv } from './testing/external.ts';
import { fitsError } from './testing/assertions.ts';

const dir = await mkdtemp(join(tmpdir(), 'fits-writer-'));
after(async () => { await rm(dir, { recursive: true, force: true }); });

/** fitsverify finds nothing at all to complain about. */
async function assertValid(path: string): Promise<void> {
  const v = await fitsverify(path);
  assert.equal(v.errors + v.warnings, 0, v.output);
}

const OFFSET: Partial<Record<string, number>> = { int8: -128, uint16: 32768, uint32: 2147483648 };

/** Our reader, astropy and the input agree, column by column, for HDU `index`. */
async function assertSameValues(path: string, index: number, infos: readonly ColumnInfo[], batch: ColumnBatch): Promise<void> {
  await using file = await FitsFile.open(path);
  const t = file.table(index);
  const back = await collectTable(t);
  const theirs = await astropyColumns(path, index);
  const ours = astropyColumnsOf(t.columns, back);
  assert.deepEqual(Object.keys(theirs), infos.map((i) => i.name));
  for (const info of t.columns) {
    if (info.variable && OFFSET[info.type] !== undefined) {
      // astropy does not apply TZERO to variable-length arrays (astropy issue #8194; STILTS
      // does): it hands out the stored values, which are ours minus the offset.
      const offset = OFFSET[info.type]!;
      const stored = (ours[info.name] as number[][]).map((cell) => cell.map((v) => v - offset));
      assert.deepEqual(stored, theirs[info.name], `astropy (stored values), column ${info.name}`);
      continue;
    }
    assert.deepEqual(ours[info.name], theirs[info.name], `astropy, column ${info.name}`);
  }
  // Against the input: cell by cell, nulls as nulls (a float null is NaN, and needs no validity).
  infos.forEach((info, c) => {
    const floats = isFloatType(info.type);
    const norm = (v: CellValue): CellValue => (Array.isArray(v) ? v.map(norm) : v === null && floats ? NaN : v);
    for (let r = 0; r < batch.rowCount; r++) {
      assert.deepEqual(norm(getCell(t.columns[c], back.columns[c], r)), norm(getCell(info, batch.columns[c], r)), `column ${info.name} row ${r + 1}`);
    }
  });
}

const n = 6;
const everyType: ColumnInfo[] = [
  columnInfo('flag', 'boolean'),
  columnInfo('flags', 'boolean', { shape: [3] }),
  columnInfo('bits', 'bit', { shape: [11] }),
  columnInfo('i8', 'int8', { nullValue: -128 }),
  columnInfo('u8', 'uint8', { nullValue: 255 }),
  columnInfo('i16', 'int16', { nullValue: -999, unit: 'count', ucd: 'meta.number', description: 'a count' }),
  columnInfo('u16', 'uint16'),
  columnInfo('i32', 'int32'),
  columnInfo('u32', 'uint32', { nullValue: 0 }),
  columnInfo('i64', 'int64', { nullValue: -1n }),
  columnInfo('u64', 'uint64'),
  columnInfo('f32', 'float32', { unit: 'mag', display: 'F8.3' }),
  columnInfo('f64', 'float64'),
  columnInfo('img', 'float64', { shape: [3, 2] }),
  columnInfo('cube', 'int16', { shape: [2, 2, 2] }),
  columnInfo('vec', 'float32', { shape: [4] }),
  columnInfo('one', 'int32', { shape: [1] }),
  columnInfo('c64', 'complex64'),
  columnInfo('c128', 'complex128', { shape: [2] }),
  columnInfo('name', 'string', { width: 12 }),
  columnInfo('tags', 'string', { width: 4, shape: [3] }),
  columnInfo('scaled', 'float64', { storage: { type: 'int16', scale: 0.01, zero: 100 }, nullValue: -32768 }),
  columnInfo('fscaled', 'float64', { storage: { type: 'float32', scale: 2, zero: 1 } }),
  columnInfo('vj', 'int32', { variable: true, nullValue: -2147483648 }),
  columnInfo('vd', 'float64', { variable: true }),
  columnInfo('vs', 'string', { variable: true }),
  columnInfo('vu', 'uint16', { variable: true }),
];
const rowsValid = Uint8Array.from({ length: n }, (_, i) => (i === 2 ? 0 : 1));
const everyBatch: ColumnBatch = {
  rowCount: n,
  columns: [
    { values: Uint8Array.from({ length: n }, (_, i) => i % 2), valid: rowsValid },
    { values: Uint8Array.from({ length: 3 * n }, (_, i) => (i % 3 === 0 ? 1 : 0)), valid: Uint8Array.from({ length: 3 * n }, (_, i) => (i === 4 ? 0 : 1)) },
    { values: Uint8Array.from({ length: 11 * n }, (_, i) => (i % 4 === 1 ? 1 : 0)) },
    { values: Int8Array.from([-127, -1, 0, 1, 127, 5]), valid: rowsValid },
    { values: Uint8Array.from([0, 1, 128, 254, 7, 9]), valid: rowsValid },
    { values: Int16Array.from([-32768, -1, 0, 1, 32767, 12]), valid: rowsValid },
    { values: Uint16Array.from([0, 1, 32767, 32768, 65535, 3]) },
    { values: Int32Array.from([-2147483648, -1, 0, 1, 2147483647, 4]) },
    { values: Uint32Array.from([1, 2, 2147483647, 2147483648, 4294967295, 6]), valid: rowsValid },
    { values: BigInt64Array.from([-(2n ** 63n), -2n, 0n, 1n, 2n ** 63n - 1n, 7n]), valid: rowsValid },
    { values: BigUint64Array.from([0n, 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 8n]) },
    { values: Float32Array.from([1.5, NaN, -Infinity, Infinity, 3.4028234663852886e38, -0]) },
    { values: Float64Array.from([Math.PI, NaN, 1e-310, -1e308, 0, 2 ** 53]), valid: rowsValid },
    { values: Float64Array.from({ length: 6 * n }, (_, i) => i / 7) },
    { values: Int16Array.from({ length: 8 * n }, (_, i) => i * 100 - 2000) },
    { values: Float32Array.from({ length: 4 * n }, (_, i) => i * 0.5) },
    { values: Int32Array.from({ length: n }, (_, i) => -i) },
    { values: Float32Array.from({ length: 2 * n }, (_, i) => i - 3) },
    { values: Float64Array.from({ length: 4 * n }, (_, i) => i * 1e-5) },
    { values: ['alpha', '', 'a  b', 'twelve chars', ' lead', 'x'], valid: Uint8Array.from([1, 1, 1, 1, 1, 1]) },
    { values: Array.from({ length: 3 * n }, (_, i) => 'abcd'.slice(0, i % 5)) },
    { values: Float64Array.from([0, -1, NaN, -10000, 32767, -32767].map((s) => 100 + 0.01 * s)) }, // values a TSCAL/TZERO column can hold exactly
    { values: Float64Array.from([0, 1, NaN, -1, 0.25, 1e30].map((s) => 1 + 2 * Math.fround(s))) },
    { values: Int32Array.from([1, 2, 3, -2147483648, 5]), offsets: Int32Array.from([0, 0, 2, 2, 4, 5, 5]), valid: Uint8Array.from([1, 1, 1, 0, 1]) },
    { values: Float64Array.from([0.5, NaN, 7]), offsets: Int32Array.from([0, 1, 1, 1, 3, 3, 3]) },
    { values: ['', 'variable', 'v', 'strings here', '', 'end'] },
    { values: Uint16Array.from([65535, 0]), offsets: Int32Array.from([0, 0, 0, 0, 0, 0, 2]) },
  ],
};

describe('writeFits', () => {
  test('every type, repeat, shape, null, scaling and variable-length array: fitsverify, astropy and STILTS agree', async () => {
    const path = join(dir, 'every.fits');
    const table = memoryTable(everyType, [everyBatch], { name: 'EVERY', params: [{ name: 'TELESCOP', value: 'PS1' }, { name: 'EXPTIME', value: 30.5, description: 'seconds' }] });
    await writeFits(path, [{ table }]);
    await assertValid(path);
    await assertSameValues(path, 1, everyType, everyBatch);
    await using file = await FitsFile.open(path);
    const back = file.table('EVERY');
    assert.deepEqual(back.columns.map((c) => ({ ...c })), everyType.map((c) => ({ ...c, ...(c.variable && c.type === 'string' ? { width: 12 } : {}) })),
      'descriptions come back (variable strings gain their largest width)');
    assert.deepEqual(back.params?.map((p) => [p.name, p.value]), [['TELESCOP', 'PS1'], ['EXPTIME', 30.5]]);
    const csv = (await stiltsCsv(path, 1)).trim().split('\n');
    assert.equal(csv.length, n + 1);
    assert.equal(csv[0], everyType.map((c) => c.name).join(','));
    assert.match(csv[4], /^true,.*,twelve chars,/);
    assert.match(csv[6], /,end,"\(65535, 0\)"$/, 'STILTS applies TZERO to variable-length arrays, as we do');
  });

  test('a zero-row table and an empty primary are valid FITS', async () => {
    const path = join(dir, 'empty.fits');
    const empty = memoryTable(everyType, [], { name: 'NONE' });
    await writeFits(path, [{ table: empty }]);
    await assertValid(path);
    await using file = await FitsFile.open(path);
    assert.equal(file.hdus[1].rows, 0);
    assert.equal((await collectTable(file.table(1))).rowCount, 0);
    assert.deepEqual(await astropyColumns(path, 1), Object.fromEntries(everyType.map((c) => [c.name, []])));
    const bare = join(dir, 'bare.fits');
    await writeFits(bare, [], { primaryHeader: new Header().set('ORIGIN', 'test').set('NAXIS', 3).addCommentary('HISTORY', 'nothing here') });
    await assertValid(bare);
    const bytes = await readFile(bare);
    assert.equal(bytes.length, BLOCK);
    const text = bytes.toString('latin1');
    assert.ok(text.startsWith('SIMPLE  =                    T'));
    assert.ok(text.includes('NAXIS   =                    0'), 'structural keywords given by the caller are ignored');
    assert.ok(!text.includes('NAXIS   =                    3'));
    assert.ok(text.includes("ORIGIN  = 'test    '"));
  });

  test('many HDUs with EXTNAME, EXTVER and extra header keywords', async () => {
    const path = join(dir, 'many.fits');
    const hdus = Array.from({ length: 12 }, (_, i) => ({
      table: memoryTable([columnInfo('N', 'int32', { nullValue: -1 })], [{ rowCount: i, columns: [{ values: Int32Array.from({ length: i }, (_, k) => k * i) }] }], { name: i % 2 ? 'ODD' : 'EVEN' }),
      header: new Header().set('EXTVER', Math.floor(i / 2) + 1).set('CHIP', `XY${i}`, 'which chip').set('TFORM1', '99J').set('NAXIS2', 7),
    }));
    await writeFits(path, hdus, { primaryHeader: new Header().set('EXPID', 123456) });
    await assertValid(path);
    await using file = await FitsFile.open(path);
    assert.equal(file.hdus.length, 13);
    const h = file.find('ODD', 3);
    assert.equal(h.rows, 5);
    assert.equal(h.header.get('CHIP'), 'XY5');
    assert.equal(h.header.get('TFORM1'), '1J', 'column keywords come from the columns, not the extra header');
    assert.deepEqual((await collectTable(file.table(h.index))).columns[0].values, Int32Array.from([0, 5, 10, 15, 20]));
    assert.equal(file.hdus[0].header.get('EXPID'), 123456);
    for (const x of file.hdus) assert.deepEqual(await file.verifyChecksums(x.index), [], `HDU ${x.index}`);
  });

  test('copying files astropy ships keeps every value', async () => {
    const data = '/usr/lib/python3/dist-packages/astropy/io/fits/tests/data';
    const names = ['chandra_time.fits', 'stddata.fits', 'variable_length_table.fits', 'tb.fits', 'theap-gap.fits', 'zerowidth.fits', 'tdim.fits', 'memtest.fits'];
    const copies = names.map((name) => join(dir, `copy-${name}`));
    for (const [i, name] of names.entries()) {
      await using src = await FitsFile.open(join(data, name));
      await writeFits(copies[i], src.hdus.filter((h) => h.kind === 'bintable').map((h) => ({ table: src.table(h.index) })));
      // The copy adds no problem the original did not have (zerowidth.fits has image keywords in its tables).
      const original = await fitsverify(join(data, name));
      const v = await fitsverify(copies[i]);
      assert.ok(v.errors <= original.errors, `${name}\n${v.output}`);
    }
    const before = await astropyFiles(names.map((name) => join(data, name)));
    const after = await astropyFiles(copies);
    for (const [i, name] of names.entries()) {
      const tablesBefore = before[join(data, name)].hdus!.filter((h) => h.columns).map((h) => h.columns);
      const tablesAfter = after[copies[i]].hdus!.slice(1).map((h) => h.columns);
      assert.ok(tablesBefore.length > 0);
      assert.deepEqual(tablesAfter, tablesBefore, name);
    }
  });

  test('row count, string widths and null values unknown up front are found by a scan', async () => {
    const infos = [columnInfo('id', 'int64'), columnInfo('label', 'string'), columnInfo('v', 'float32', { variable: true }), columnInfo('u', 'uint16')];
    let passes = 0;
    const table: Table = {
      name: 'GEN',
      columns: infos,
      async *batches(options: ReadOptions = {}) {
        passes++;
        const want = options.columns ?? infos.map((c) => c.name);
        for (let b = 0; b < 5; b++) {
          const rows = 1000;
          const all: ColumnBatch['columns'] = [
            { values: BigInt64Array.from({ length: rows }, (_, i) => BigInt(b * rows + i)), valid: Uint8Array.from({ length: rows }, (_, i) => (i === 7 ? 0 : 1)) },
            { values: Array.from({ length: rows }, (_, i) => 'x'.repeat((b * rows + i) % 23)) },
            { values: Float32Array.from({ length: rows * 2 }, (_, i) => i), offsets: Int32Array.from({ length: rows + 1 }, (_, i) => 2 * i) },
            { values: Uint16Array.from({ length: rows }, (_, i) => i), valid: Uint8Array.from({ length: rows }, (_, i) => (i === 3 ? 0 : 1)) },
          ];
          yield { rowCount: rows, columns: want.map((name) => all[infos.findIndex((c) => c.name === name)]) };
        }
      },
    };
    const plan = await planTable(table);
    assert.equal(plan.rowCount, 5000);
    assert.equal(plan.columns[1].width, 22);
    assert.equal(plan.heapSize, 5000 * 8);
    assert.deepEqual(plan.maxLengths, [undefined, undefined, 2, undefined]);
    assert.equal(plan.columns[0].nullValue, -9223372036854775808n);
    assert.equal(plan.columns[3].nullValue, 65535);
    const path = join(dir, 'scanned.fits');
    passes = 0;
    const progress: number[] = [];
    await writeFits(path, [{ table }], { onProgress: (rows) => progress.push(rows) });
    assert.equal(passes, 2, 'one scan, one write');
    assert.deepEqual(progress, [1000, 2000, 3000, 4000, 5000]);
    await assertValid(path);
    await using file = await FitsFile.open(path);
    const back = await collectTable(file.table(1));
    assert.equal(back.rowCount, 5000);
    assert.equal(getCell(file.table(1).columns[0], back.columns[0], 1007), null);
    assert.equal(getCell(file.table(1).columns[1], back.columns[1], 22), 'x'.repeat(22));
    assert.equal(getCell(file.table(1).columns[3], back.columns[3], 3), null);
  });

  test('an integer column whose nulls have no free value to mark them is refused', async () => {
    const path = join(dir, 'nofree.fits');
    const table = memoryTable([columnInfo('b', 'uint8')], [{ rowCount: 3, columns: [{ values: Uint8Array.from([0, 255, 9]), valid: Uint8Array.from([1, 1, 0]) }] }]);
    await assert.rejects(writeFits(path, [{ table }]), fitsError('fits_no_null_value', /nofree\.fits: HDU 1: column b/));
    assert.deepEqual(await readdir(dir).then((names) => names.filter((x) => x.includes('nofree'))), []);
  });

  test('atomic: on a bad value, an abort or a table that changes, nothing is left behind and an old file survives', async () => {
    const path = join(dir, 'atomic.fits');
    await writeFile(path, 'previous contents');
    const infos = [columnInfo('s', 'string', { width: 8 }), columnInfo('n', 'int32', { nullValue: -1 })];
    const batchOf = (s: string): ColumnBatch => ({ rowCount: 1, columns: [{ values: [s] }, { values: Int32Array.from([1]) }] });
    const bad = memoryTable(infos, [batchOf('fine'), batchOf('naïve')], { name: 'BAD' });
    await assert.rejects(writeFits(path, [{ table: bad }]), fitsError('fits_bad_string', /atomic\.fits: HDU 1 \(BAD\): column s: row 2/));
    const controller = new AbortController();
    const slow: Table = {
      columns: infos,
      rowCount: 1000,
      async *batches() {
        for (let i = 0; i < 1000; i++) {
          if (i === 500) controller.abort();
          yield batchOf('row');
        }
      },
    };
    await assert.rejects(writeFits(path, [{ table: slow }], { signal: controller.signal }), { name: 'AbortError' });
    let calls = 0;
    const fickle: Table = {
      columns: infos,
      async *batches() {
        calls++;
        for (let i = 0; i < calls; i++) yield batchOf('x');
      },
    };
    await assert.rejects(writeFits(path, [{ table: fickle }]), fitsError('fits_table_changed', /the table gave more than the 1 rows/));
    assert.equal(await readFile(path, 'latin1'), 'previous contents');
    assert.deepEqual((await readdir(dir)).filter((x) => x.endsWith('.tmp')), []);
    const unwritable = join(dir, 'no-such-dir', 'x.fits');
    await assert.rejects(writeFits(unwritable, []), fitsError('fits_cannot_write', /no-such-dir/));
  });

  test('a link is written through to its file and stays a link; a pipe or a directory is refused, not replaced', async () => {
    const table = memoryTable(everyType, [everyBatch]);
    await symlink('linked-target.fits', join(dir, 'link.fits'));
    await writeFits(join(dir, 'link.fits'), [{ table }]);
    assert.ok((await lstat(join(dir, 'link.fits'))).isSymbolicLink());
    await assertValid(join(dir, 'linked-target.fits'));
    execFileSync('mkfifo', [join(dir, 'pipe.fits')]);
    await assert.rejects(writeFits(join(dir, 'pipe.fits'), [{ table }]), fitsError('fits_cannot_write', /pipe\.fits: not a regular file/));
    assert.ok((await lstat(join(dir, 'pipe.fits'))).isFIFO());
    await mkdir(join(dir, 'a-dir.fits'));
    await assert.rejects(writeFits(join(dir, 'a-dir.fits'), [{ table }]), fitsError('fits_cannot_write', /a directory is there/));
  });

  test('checksum: false leaves CHECKSUM and DATASUM out', async () => {
    const path = join(dir, 'nosum.fits');
    await writeFits(path, [{ table: memoryTable(everyType, [everyBatch]) }], { checksum: false });
    await assertValid(path);
    await using file = await FitsFile.open(path);
    for (const h of file.hdus) assert.ok(!h.header.has('CHECKSUM') && !h.header.has('DATASUM'));
  });
});

describe('pieces for other writers (tile compression)', () => {
  test('a table with Q descriptors written from the exported pieces is valid and reads the same', async () => {
    const infos = [columnInfo('id', 'int32', { nullValue: -1 }), columnInfo('arr', 'float64', { variable: true }), columnInfo('txt', 'string', { variable: true })];
    const batch: ColumnBatch = {
      rowCount: 4,
      columns: [
        { values: Int32Array.from([1, 2, 3, 4]) },
        { values: Float64Array.from([1, 2, 3, 4, 5, 6]), offsets: Int32Array.from([0, 3, 3, 5, 6]) },
        { values: ['a', 'bcd', '', 'ef'] },
      ],
    };
    // Q descriptors are chosen when the heap passes 2 GiB; asked for here directly.
    const defs = columnDefsFromInfos(infos, { heapSize: 2 ** 31, maxLengths: [undefined, 3, 3] });
    assert.deepEqual(defs.map((d) => d.tform), ['1J', '1QD(3)', '1QA(3)']);
    const heap = new MemoryHeap();
    const rows = encodeRows(defs, batch, rowBytesOf(defs), heap);
    const header = bintableHeader(defs, 4, heap.size, { name: 'QTABLE' });
    const path = join(dir, 'q.fits');
    const handle = await open(path, 'w');
    let end = await writeHduPadded(handle, 0, primaryHeader(), new Uint8Array(0));
    assert.equal(end, BLOCK);
    const w = new HduWriter(handle, end, header);
    await w.write(heap.bytes(), rows.length); // the heap first: pieces may come in any order
    await w.write(rows, 0);
    end = await w.finish(rows.length + heap.size);
    await handle.close();
    assert.equal(end, BLOCK + header.byteLength() + padToBlock(rows.length + heap.size));
    await assertValid(path);
    await assertSameValues(path, 1, infos, batch);
  });
});
