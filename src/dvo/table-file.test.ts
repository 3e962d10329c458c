import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { mulberry32 } from '../common/index.ts';
import { FitsFile, Header, writeFits } from '../fits/index.ts';
import { memoryTable, type ColumnInfo } from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { AVERAGE_COLUMNS, EXTNAME, IMAGE_INDEX_COLUMNS, MEASURE_COLUMNS, SECFILT_COLUMNS, SECFILT_SET_COLUMNS } from './layouts.ts';
import { RowStore } from './row-store.ts';
import { writableLayout, writeTableFile } from './table-file.ts';

// Every bit pattern of every column: random bytes (NaN payloads, negative zeros, the extremes
// of unsigned types included).
function randomStore(columns: readonly ColumnInfo[], rows: number, seed: number): ColumnStore {
  const store = new ColumnStore(columns, rows);
  store.grow(rows);
  const rnd = mulberry32(seed);
  for (const c of columns) {
    const v = store.col(c.name);
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rnd() & 0xff;
    // Some all-ones and all-zero values (the sign-bit flips of unsigned types at their edges).
    bytes.fill(0xff, 0, Math.min(bytes.length, 16));
    bytes.fill(0, bytes.length - Math.min(bytes.length, 16));
  }
  return store;
}

function randomSetStore(rows: number, seed: number): ColumnStore {
  return randomStore(SECFILT_SET_COLUMNS, rows, seed);
}

test('table-file: the bytes equal the general writer\'s, for every DVO layout, and old rows copied as bytes give the same file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dvo-table-file-'));
  try {
    for (const cols of [AVERAGE_COLUMNS, SECFILT_COLUMNS, MEASURE_COLUMNS, IMAGE_INDEX_COLUMNS]) assert.ok(writableLayout(cols));
    const primary = new Header().set('DVOGEN', 3, 'update generation').set('REGION', 'n0000/00001', 'region name');
    // More rows than one chunk of the writer (4 MiB) for the widest layout.
    const rows = 20_000;
    const measures = randomStore(MEASURE_COLUMNS, rows, 1);
    const index = randomStore(IMAGE_INDEX_COLUMNS, 37, 2);
    const cases: { name: string; columns: readonly ColumnInfo[]; store: ColumnStore }[] = [
      { name: EXTNAME.average, columns: AVERAGE_COLUMNS, store: randomStore(AVERAGE_COLUMNS, rows, 3) },
      { name: EXTNAME.secfilt, columns: SECFILT_COLUMNS, store: randomStore(SECFILT_COLUMNS, 6 * 3001, 4) },
      { name: EXTNAME.measure, columns: MEASURE_COLUMNS, store: measures },
      { name: 'EMPTY', columns: AVERAGE_COLUMNS, store: new ColumnStore(AVERAGE_COLUMNS) },
    ];
    for (const c of cases) {
      const ours = join(dir, `${c.name}.ours.fits`);
      const theirs = join(dir, `${c.name}.theirs.fits`);
      await writeTableFile(ours, primary, [{ name: c.name, columns: c.columns, parts: [{ store: c.store, first: 0, count: c.store.length }] }]);
      await writeFits(theirs, [{ table: memoryTable(c.columns, [c.store.toBatch()], { name: c.name }) }], { primaryHeader: primary });
      assert.deepEqual(await readFile(ours), await readFile(theirs), `${c.name}: same bytes`);
    }
    // Rows gathered through an index (a shuffled order, over more than one chunk) equal the same rows copied first.
    const order = Int32Array.from({ length: rows }, (_, i) => i);
    const rnd = mulberry32(9);
    for (let i = rows - 1; i > 0; i--) {
      const j = rnd() % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const shuffled = new ColumnStore(MEASURE_COLUMNS, rows);
    shuffled.appendRows(measures, order);
    await writeTableFile(join(dir, 'gathered.fits'), primary, [{ name: EXTNAME.measure, columns: MEASURE_COLUMNS, parts: [{ store: measures, rows: order.subarray(0, 777) }, { store: measures, rows: order.subarray(777) }] }]);
    await writeFits(join(dir, 'shuffled.fits'), [{ table: memoryTable(MEASURE_COLUMNS, [shuffled.toBatch()], { name: EXTNAME.measure }) }], { primaryHeader: primary });
    assert.deepEqual(await readFile(join(dir, 'gathered.fits')), await readFile(join(dir, 'shuffled.fits')));
    // A SecFilt table whose rows mostly repeat row 0 (written from its bytes): runs of repeats, single
    // ones, tiles without any and tiles of nothing else.
    const sec = cases[1].store;
    const map = new Int32Array(40_000);
    for (let i = 0; i < map.length; i++) {
      const r = rnd() % 100;
      map[i] = i >= 30_000 && i < 31_000 ? 0 : i >= 20_000 && i < 20_500 ? 1 + (r % (sec.length - 1)) : r < 70 ? 0 : r % sec.length;
    }
    const dense = new ColumnStore(SECFILT_COLUMNS, map.length);
    dense.appendRows(sec, map);
    await writeTableFile(join(dir, 'template.fits'), primary, [{ name: EXTNAME.secfilt, columns: SECFILT_COLUMNS, parts: [{ store: sec, rows: map, template: 0 }] }]);
    await writeFits(join(dir, 'dense.fits'), [{ table: memoryTable(SECFILT_COLUMNS, [dense.toBatch()], { name: EXTNAME.secfilt }) }], { primaryHeader: primary });
    assert.deepEqual(await readFile(join(dir, 'template.fits')), await readFile(join(dir, 'dense.fits')));
    // The same rows held as records (row-store.ts): written alike, and given back as columns alike.
    const records = new RowStore(SECFILT_COLUMNS, 4);
    records.appendColumns(sec);
    assert.equal(records.length, sec.length);
    await writeTableFile(join(dir, 'records.fits'), primary, [{ name: EXTNAME.secfilt, columns: SECFILT_COLUMNS, parts: [{ store: records, rows: map, template: 0 }] }]);
    assert.deepEqual(await readFile(join(dir, 'records.fits')), await readFile(join(dir, 'dense.fits')));
    const back = records.toColumnStore(map);
    for (const c of SECFILT_COLUMNS) assert.deepEqual(back.col(c.name).subarray(0, map.length), dense.col(c.name).subarray(0, map.length), c.name);
    // Rows made in memory (an overlay store of some of the columns, below 0 in the index): the
    // template row with those columns set.
    const setCols = new Set(SECFILT_SET_COLUMNS.map((c) => c.name));
    const madeRows = new RowStore(SECFILT_SET_COLUMNS, 4);
    madeRows.appendColumns(randomSetStore(sec.length, 5));
    const mixed = Int32Array.from(map, (q, i) => (i % 3 === 0 && q > 0 ? -q : q));
    const expected = new ColumnStore(SECFILT_COLUMNS, mixed.length);
    expected.appendRows(sec, Int32Array.from(mixed, (q) => (q < 0 ? 0 : q)));
    const setBack = madeRows.toColumnStore(Int32Array.from(mixed, (q) => (q < 0 ? -q : 0)));
    for (const c of SECFILT_COLUMNS) {
      if (!setCols.has(c.name)) continue;
      // As bytes: a float copied as a value may lose a signalling NaN's payload bit.
      const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const to = bytesOf(expected.col<Float32Array>(c.name));
      const from = bytesOf(setBack.col<Float32Array>(c.name));
      const w = to.length / expected.capacity;
      mixed.forEach((q, i) => { if (q < 0) to.set(from.subarray(i * w, (i + 1) * w), i * w); });
    }
    await writeTableFile(join(dir, 'overlay.fits'), primary, [{ name: EXTNAME.secfilt, columns: SECFILT_COLUMNS, parts: [{ store: records, rows: mixed, template: 0, overlay: madeRows }] }]);
    await writeFits(join(dir, 'overlay-dense.fits'), [{ table: memoryTable(SECFILT_COLUMNS, [expected.toBatch()], { name: EXTNAME.secfilt }) }], { primaryHeader: primary });
    assert.deepEqual(await readFile(join(dir, 'overlay.fits')), await readFile(join(dir, 'overlay-dense.fits')));
    // Average records (8-byte floats and unsigned integers, bytes, 16-bit pairs) in a shuffled order.
    const aveRecords = new RowStore(AVERAGE_COLUMNS, 4);
    aveRecords.appendColumns(cases[0].store);
    const aveOrder = order.map((i) => i % rows);
    const aveDense = new ColumnStore(AVERAGE_COLUMNS, rows);
    aveDense.appendRows(cases[0].store, aveOrder);
    await writeTableFile(join(dir, 'ave-records.fits'), primary, [{ name: EXTNAME.average, columns: AVERAGE_COLUMNS, parts: [{ store: aveRecords, rows: aveOrder }] }]);
    await writeFits(join(dir, 'ave-dense.fits'), [{ table: memoryTable(AVERAGE_COLUMNS, [aveDense.toBatch()], { name: EXTNAME.average }) }], { primaryHeader: primary });
    assert.deepEqual(await readFile(join(dir, 'ave-records.fits')), await readFile(join(dir, 'ave-dense.fits')));
    // A Measure file of two tables, its first rows copied from the file above, the rest from the store.
    const whole = join(dir, 'cpm.theirs.fits');
    await writeFits(whole, [
      { table: memoryTable(MEASURE_COLUMNS, [measures.toBatch()], { name: EXTNAME.measure }) },
      { table: memoryTable(IMAGE_INDEX_COLUMNS, [index.toBatch()], { name: EXTNAME.imageIndex }) },
    ], { primaryHeader: primary });
    const partial = join(dir, 'cpm.part.fits');
    const split = 12_345;
    await writeTableFile(partial, primary, [{ name: EXTNAME.measure, columns: MEASURE_COLUMNS, parts: [{ store: measures, first: 0, count: split }] }]);
    const old = await FitsFile.open(partial);
    try {
      const hdu = old.hdu(EXTNAME.measure);
      const ours = join(dir, 'cpm.ours.fits');
      await writeTableFile(ours, primary, [
        { name: EXTNAME.measure, columns: MEASURE_COLUMNS, parts: [{ file: old, position: hdu.dataStart, rows: split }, { store: measures, first: split, count: rows - split }] },
        { name: EXTNAME.imageIndex, columns: IMAGE_INDEX_COLUMNS, parts: [{ store: index, first: 0, count: index.length }] },
      ]);
      assert.deepEqual(await readFile(ours), await readFile(whole));
      // Asking to copy more rows than the old file holds is a typed error naming that file.
      await assert.rejects(writeTableFile(join(dir, 'bad.fits'), primary, [
        { name: EXTNAME.measure, columns: MEASURE_COLUMNS, parts: [{ file: old, position: hdu.dataStart, rows: split + 100 }] },
      ]), (e: Error & { code?: string }) => typeof e.code === 'string' && /^(fits|dvo)_/.test(e.code) && e.message.includes('cpm.part.fits'));
    } finally {
      await old.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
