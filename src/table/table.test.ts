import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  columnInfo, memoryTable, collectTable, getCell, sliceBatch, concatBatches, checkBatch,
  selectColumns, countRows, allocColumn, elementsPerRow, TableError, type ColumnBatch,
} from './index.ts';

const infos = [
  columnInfo('id', 'int64'),
  columnInfo('mag', 'float32', { nullValue: undefined, unit: 'mag' }),
  columnInfo('flags', 'int16', { shape: [3], nullValue: -1 }),
  columnInfo('name', 'string', { width: 8 }),
  columnInfo('vla', 'int32', { variable: true }),
];

function batch(): ColumnBatch {
  return {
    rowCount: 3,
    columns: [
      { values: new BigInt64Array([1n, 2n, 9007199254740993n]) },
      { values: new Float32Array([1.5, Number.NaN, 3]) },
      { values: new Int16Array([1, 2, 3, -1, 5, 6, 7, 8, 9]), valid: new Uint8Array([1, 1, 1, 0, 1, 1, 1, 1, 1]) },
      { values: ['a', 'bb', 'ccc'] },
      { values: new Int32Array([1, 2, 3]), offsets: new Int32Array([0, 0, 2, 3]) },
    ],
  };
}

test('cells read back as plain values, with nulls', () => {
  const b = batch();
  checkBatch(infos, b);
  assert.equal(getCell(infos[0], b.columns[0], 2), 9007199254740993n);
  assert.ok(Number.isNaN(getCell(infos[1], b.columns[1], 1) as number));
  assert.deepEqual(getCell(infos[2], b.columns[2], 1), [null, 5, 6]);
  assert.equal(getCell(infos[3], b.columns[3], 1), 'bb');
  assert.deepEqual(getCell(infos[4], b.columns[4], 0), []);
  assert.deepEqual(getCell(infos[4], b.columns[4], 1), [1, 2]);
});

test('slicing and concatenating batches keeps every value', () => {
  const b = batch();
  const parts = [sliceBatch(infos, b, 0, 1), sliceBatch(infos, b, 1, 3)];
  assert.equal(parts[1].rowCount, 2);
  assert.deepEqual(getCell(infos[4], parts[1].columns[4], 0), [1, 2]);
  const joined = concatBatches(infos, parts);
  for (let c = 0; c < infos.length; c++) {
    for (let r = 0; r < 3; r++) assert.deepEqual(getCell(infos[c], joined.columns[c], r), getCell(infos[c], b.columns[c], r));
  }
});

test('a memory table is re-iterable, rebatches and selects columns', async () => {
  const t = memoryTable(infos, [batch()], { name: 'T' });
  const sizes: number[] = [];
  for await (const b of t.batches({ batchRows: 2 })) sizes.push(b.rowCount);
  assert.deepEqual(sizes, [2, 1]);
  const again = await collectTable(t, { columns: ['name', 'ID'] });
  assert.deepEqual(again.columns[0].values, ['a', 'bb', 'ccc']);
  assert.equal(again.columns[1].values[2], 9007199254740993n);
  const sel = selectColumns(t, ['mag']);
  assert.equal(sel.columns.length, 1);
  assert.equal((await collectTable(sel)).rowCount, 3);
  assert.equal(await countRows(t), 3);
});

test('bad column descriptions and mismatched batches are typed errors', async () => {
  assert.throws(() => columnInfo('x', 'float128' as never), (e: unknown) => e instanceof TableError && e.code === 'table_bad_column');
  assert.throws(() => columnInfo('x', 'int32', { shape: [2.5] }), TableError);
  const bad: ColumnBatch = { rowCount: 2, columns: [{ values: new Int32Array(3) }] };
  assert.throws(() => checkBatch([columnInfo('x', 'int32')], bad), (e: unknown) => e instanceof TableError && /column "x"/.test((e as Error).message));
  const t = memoryTable(infos, [batch()]);
  await assert.rejects(collectTable(t, { columns: ['nope'] }), (e: unknown) => e instanceof TableError && e.code === 'table_no_such_column');
});

test('allocColumn sizes storage by shape and complex slots', () => {
  const c = columnInfo('z', 'complex64', { shape: [2, 3] });
  assert.equal(elementsPerRow(c), 6);
  assert.equal(allocColumn(c, 4).values.length, 48);
  assert.equal(allocColumn(columnInfo('s', 'string'), 2).values.length, 2);
});

test('rowRange yields exactly the rows asked for across batch edges', async () => {
  const { rowRange } = await import('./index.ts');
  const t = memoryTable(infos, [batch(), batch()]);
  const r = await collectTable(rowRange(t, 2, 5), { batchRows: 2 });
  assert.equal(r.rowCount, 3);
  assert.deepEqual(r.columns[3].values, ['ccc', 'a', 'bb']);
  assert.equal((await collectTable(rowRange(t, 10, 20))).rowCount, 0);
});

test('selectColumns in another order, then read by name, gives the right columns', async () => {
  const t = memoryTable(infos, [batch()]);
  const sel = selectColumns(t, ['name', 'id']);
  const b = await collectTable(sel, { columns: ['id', 'name'] });
  assert.equal(b.columns[0].values[0], 1n);
  assert.deepEqual(b.columns[1].values, ['a', 'bb', 'ccc']);
  const whole = await collectTable(sel);
  assert.deepEqual(whole.columns[0].values, ['a', 'bb', 'ccc']);
});
