import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { columnInfo, memoryTable, readCsv, type ColumnBatch, type ColumnInfo, type Table } from '../table/index.ts';
import { VOTableError } from './errors.ts';
import { readVOTable } from './votable-reader.ts';
import { writeVOTable } from './votable-writer.ts';
import { asFloat32, astropyView, ourCells, stilts, withDir, type Cell } from './test-support.ts';

let seed = 99;
function next(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}

const columns: ColumnInfo[] = [
  columnInfo('flag', 'boolean'),
  columnInfo('ub', 'uint8', { nullValue: 255 }),
  columnInfo('i8', 'int8'),
  columnInfo('h', 'int16', { unit: 'adu', ucd: 'phot.count' }),
  columnInfo('u16', 'uint16'),
  columnInfo('i', 'int32', { nullValue: -999 }),
  columnInfo('u32', 'uint32'),
  columnInfo('l', 'int64', { description: 'object ID' }),
  columnInfo('u64', 'uint64'),
  columnInfo('f', 'float32', { unit: 'mag' }),
  columnInfo('d', 'float64'),
  columnInfo('s', 'string', { width: 16 }),
  columnInfo('v', 'string', { variable: true }),
  columnInfo('a', 'int16', { shape: [3] }),
  columnInfo('m', 'float64', { shape: [2, 3] }),
  columnInfo('c', 'complex64'),
  columnInfo('vla', 'float32', { variable: true }),
];

function batch(n: number, start: number): ColumnBatch {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const offsets = new Int32Array(n + 1);
  const vla: number[] = [];
  for (let r = 0; r < n; r++) {
    const k = Math.floor(next() * 4);
    for (let j = 0; j < k; j++) vla.push((next() - 0.5) * 1e3);
    offsets[r + 1] = vla.length;
  }
  return {
    rowCount: n,
    columns: [
      { values: Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0)), valid: Uint8Array.from({ length: n }, (_, r) => ((start + r) % 6 === 5 ? 0 : 1)) },
      { values: Uint8Array.from({ length: n }, (_, r) => ((start + r) % 10 === 3 ? 255 : Math.floor(next() * 255))) },
      { values: Int8Array.from({ length: n }, () => Math.floor(next() * 256) - 128) },
      { values: Int16Array.from({ length: n }, () => Math.floor(next() * 65536) - 32768) },
      { values: Uint16Array.from({ length: n }, () => Math.floor(next() * 65536)) },
      { values: Int32Array.from({ length: n }, (_, r) => ((start + r) % 7 === 2 ? -999 : Math.floor((next() - 0.5) * 2 ** 32))) },
      { values: Uint32Array.from({ length: n }, () => Math.floor(next() * 2 ** 32)) },
      { values: BigInt64Array.from({ length: n }, () => BigInt.asIntN(64, BigInt(Math.floor(next() * 2 ** 32)) << 32n | BigInt(Math.floor(next() * 2 ** 32)))) },
      { values: BigUint64Array.from({ length: n }, () => BigInt(Math.floor(next() * 2 ** 31)) << 32n | BigInt(Math.floor(next() * 2 ** 32))) },
      { values: Float32Array.from({ length: n }, (_, r) => ((start + r) % 9 === 4 ? Number.NaN : (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20))) },
      { values: Float64Array.from({ length: n }, () => pick([Infinity, -Infinity, 0, 1e-310, (next() - 0.5) * 10 ** Math.floor(next() * 600 - 300)])) },
      { values: Array.from({ length: n }, (_, r) => pick(['plain', 'a<b & c>d', '"quoted"', 'ünïcødé ☃', `row ${start + r}`])) },
      { values: Array.from({ length: n }, (_, r) => `v${'x'.repeat((start + r) % 5)}`), valid: Uint8Array.from({ length: n }, (_, r) => ((start + r) % 4 === 1 ? 0 : 1)) },
      { values: Int16Array.from({ length: 3 * n }, () => Math.floor(next() * 2000) - 1000) },
      { values: Float64Array.from({ length: 6 * n }, () => next()) },
      { values: Float32Array.from({ length: 2 * n }, () => (next() - 0.5) * 100) },
      { values: Float32Array.from(vla), offsets },
    ],
  };
}

function sample(rows: number): Table {
  seed = 99;
  const batches: ColumnBatch[] = [];
  for (let start = 0; start < rows; start += 500) batches.push(batch(Math.min(500, rows - start), start));
  return memoryTable(columns, batches, { name: 'Detection', description: 'test rows', params: [{ name: 'zp', value: 25.5, unit: 'mag' }, { name: 'survey', value: '3pi' }] });
}

// Our cells as astropy reports them: int8 widened, bits as booleans, null strings empty.
async function expectedCells(table: Table): Promise<Cell[][]> {
  return (await ourCells(table)).map((row) => row.map((v, c) => (table.columns[c].type === 'string' && v === null ? '' : v)));
}

test('astropy reads what we write with the same values', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'ours.vot');
    const table = sample(1200);
    const result = await writeVOTable(path, [table]);
    assert.equal(result.rows, 1200);
    const view = (await astropyView(path)).tables[0];
    assert.equal(view.name, 'Detection');
    assert.deepEqual(view.fields.map((f) => [f.name, f.datatype, f.arraysize]), [
      ['flag', 'boolean', null], ['ub', 'unsignedByte', null], ['i8', 'short', null], ['h', 'short', null],
      ['u16', 'int', null], ['i', 'int', null], ['u32', 'long', null], ['l', 'long', null], ['u64', 'long', null],
      ['f', 'float', null], ['d', 'double', null], ['s', 'char', '16'], ['v', 'char', '*'], ['a', 'short', '3'],
      ['m', 'double', '2x3'], ['c', 'floatComplex', null], ['vla', 'float', '*'],
    ]);
    assert.equal(view.fields[3].unit, 'adu');
    assert.equal(view.fields[5].null, '-999');
    assert.equal(view.fields[7].description, 'object ID');
    const expected = await expectedCells(table);
    // astropy reads variable-length float arrays as doubles: round them as float32 to compare
    const rows = view.rows.map((row) => row.map((v, c) => (columns[c].type === 'float32' ? asFloat32(v) : v)));
    assert.deepEqual(rows, expected);
  });
});

test('STILTS reads what we write with the same values (via its CSV, compared as values)', async () => {
  await withDir(async (dir) => {
    const cols = [columnInfo('i', 'int32', { nullValue: -1 }), columnInfo('l', 'int64'), columnInfo('f', 'float32'), columnInfo('d', 'float64'), columnInfo('s', 'string', { variable: true }), columnInfo('b', 'boolean')];
    const n = 2000;
    seed = 5;
    const f32 = Float32Array.from({ length: n }, () => (next() - 0.5) * 10 ** Math.floor(next() * 30 - 15));
    const f64 = Float64Array.from({ length: n }, () => (next() - 0.5) * 10 ** Math.floor(next() * 200 - 100));
    const table = memoryTable(cols, [{
      rowCount: n,
      columns: [
        { values: Int32Array.from({ length: n }, (_, r) => (r % 13 === 0 ? -1 : r * 1000003 - 2 ** 30)) },
        { values: BigInt64Array.from({ length: n }, (_, r) => BigInt(r) * 4611686018427387n - 2n ** 62n) },
        { values: f32 },
        { values: f64 },
        { values: Array.from({ length: n }, (_, r) => `name, "${r}" <&>`) },
        { values: Uint8Array.from({ length: n }, (_, r) => r % 2) },
      ],
    }]);
    const vot = join(dir, 'ours.vot');
    await writeVOTable(vot, [table]);
    const csv = join(dir, 'stilts.csv');
    await stilts(['tcopy', `in=${vot}`, 'ifmt=votable', `out=${csv}`, 'ofmt=csv']);
    const theirs = await ourCells(await readCsv(csv, { schema: cols }));
    assert.equal(theirs.length, n);
    assert.deepEqual(theirs, await ourCells(table));
  });
});

test('write then read gives back every cell (int8, uint16, uint32 come back wider)', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'rt.vot');
    const table = sample(700);
    await writeVOTable(path, [table, sample(10)]);
    const [back, second] = await readVOTable(path);
    assert.equal(back.name, 'Detection');
    assert.equal(back.description, 'test rows');
    assert.deepEqual(back.params?.map((p) => [p.name, p.value, p.unit]), [['zp', 25.5, 'mag'], ['survey', '3pi', undefined]]);
    assert.deepEqual(back.columns.map((c) => c.type), [
      'boolean', 'uint8', 'int16', 'int16', 'int32', 'int32', 'int64', 'int64', 'int64', 'float32', 'float64', 'string', 'string', 'int16', 'float64', 'complex64', 'float32',
    ]);
    assert.deepEqual(await ourCells(back), await ourCells(table));
    assert.equal(second.rowCount, 10);
  });
});

test('the rows stream through a bounded buffer: a large table is written in pieces', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'big.vot');
    const n = 200_000;
    const big: Table = {
      name: 'big',
      columns: [columnInfo('i', 'int32'), columnInfo('x', 'float64')],
      rowCount: n,
      async *batches() {
        for (let s = 0; s < n; s += 10_000) {
          yield { rowCount: 10_000, columns: [{ values: Int32Array.from({ length: 10_000 }, (_, r) => s + r) }, { values: Float64Array.from({ length: 10_000 }, (_, r) => (s + r) / 3) }] };
        }
      },
    };
    const progress: number[] = [];
    const result = await writeVOTable(path, [big], { onProgress: (r) => progress.push(r) });
    assert.equal(result.rows, n);
    assert.equal(progress.length, 20);
    assert.equal(progress[19], n);
    const [back] = await readVOTable(path);
    let seen = 0;
    for await (const b of back.batches({ batchRows: 50_000 })) {
      const i = b.columns[0].values as Int32Array;
      const x = b.columns[1].values as Float64Array;
      for (let r = 0; r < b.rowCount; r++) if (i[r] !== seen + r || x[r] !== (seen + r) / 3) assert.fail(`row ${seen + r}`);
      seen += b.rowCount;
    }
    assert.equal(seen, n);
  });
});

test('failures are typed, name the row and field, and leave no file behind', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'out.vot');
    const u64 = memoryTable([columnInfo('id', 'uint64')], [{ rowCount: 2, columns: [{ values: new BigUint64Array([1n, 2n ** 63n]) }] }], { name: 'T' });
    await assert.rejects(writeVOTable(path, [u64]), (e: unknown) => {
      assert.ok(e instanceof VOTableError);
      assert.equal(e.code, 'votable_value_out_of_range');
      assert.match(e.message, /out\.vot: table T: row 2: field id: 9223372036854775808 does not fit VOTable's long/);
      return true;
    });
    const control = memoryTable([columnInfo('s', 'string', { width: 4 })], [{ rowCount: 1, columns: [{ values: ['a\u0001b'] }] }], { name: 'T' });
    await assert.rejects(writeVOTable(path, [control]), (e: unknown) => e instanceof VOTableError && e.code === 'votable_unencodable_text' && /row 1: field s/.test(e.message));
    const broken: Table = {
      name: 'T',
      columns: [columnInfo('a', 'int32')],
      async *batches() {
        yield { rowCount: 1, columns: [{ values: new Int32Array([1]) }] };
        throw new Error('source failed');
      },
    };
    await assert.rejects(writeVOTable(path, [broken]), /source failed/);
    const liar = { ...memoryTable([columnInfo('a', 'int32')], [{ rowCount: 1, columns: [{ values: new Int32Array([1]) }] }]), rowCount: 5 };
    await assert.rejects(writeVOTable(path, [liar]), (e: unknown) => e instanceof VOTableError && e.code === 'votable_row_count');
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(writeVOTable(join(dir, 'no', 'dir.vot'), [u64]), (e: unknown) => e instanceof VOTableError && e.code === 'votable_cannot_write');
  });
});

test('a schema-only document: FIELDs and PARAMs, no DATA', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'schema.vot');
    await writeVOTable(path, [sample(5)], { data: false, description: 'the archive', resourceName: 'PS1' });
    const text = await readFile(path, 'utf8');
    assert.ok(!text.includes('<DATA>'));
    assert.ok(!text.includes('nrows'));
    assert.match(text, /<DESCRIPTION>the archive<\/DESCRIPTION>\n<RESOURCE name="PS1">/);
    const [t] = await readVOTable(path);
    assert.equal(t.rowCount, 0);
    assert.equal(t.columns.length, columns.length);
    assert.equal((await astropyView(path)).tables[0].rows.length, 0);
  });
});
