import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { columnInfo, memoryTable, type ColumnBatch, type ColumnInfo } from '../table/index.ts';
import { writeCsv } from '../table/csv-writer.ts';
import { mulberry32, withTempDir } from '../common/testing.ts';
import { fitsRawRows } from './csv-rows.ts';
import { FitsFile } from './fits-file.ts';
import { writeFits } from './fits-writer.ts';

// Every scalar kind the raw readers take, with TNULLs (stored and unsigned), NaNs and extremes.
const COLUMNS: ColumnInfo[] = [
  columnInfo('i64', 'int64', { nullValue: -9223372036854775808n }),
  columnInfo('u64', 'uint64', { nullValue: 18446744073709551615n }),
  columnInfo('i32', 'int32', { nullValue: -2147483648 }),
  columnInfo('u32', 'uint32', { nullValue: 7 }),
  columnInfo('i16', 'int16', { nullValue: -1 }),
  columnInfo('u16', 'uint16', { nullValue: 65535 }),
  columnInfo('u8', 'uint8', { nullValue: 255 }),
  columnInfo('i8', 'int8', { nullValue: -128 }),
  columnInfo('plain', 'int32'),
  columnInfo('f64', 'float64'),
  columnInfo('f32', 'float32'),
];

function batchOf(n: number, seed: number): ColumnBatch {
  const bits = mulberry32(seed);
  const next = () => bits() / 4294967296;
  const pick = <T>(choices: readonly T[], other: () => T) => (next() < 0.3 ? choices[Math.floor(next() * choices.length)] : other());
  const int = (lo: number, hi: number) => Math.floor(lo + next() * (hi - lo + 1));
  const big = () => BigInt(int(-(2 ** 31), 2 ** 31 - 1)) * 4294967296n + BigInt(int(0, 2 ** 32 - 1));
  return {
    rowCount: n,
    columns: [
      { values: BigInt64Array.from({ length: n }, () => pick([-9223372036854775808n, 9223372036854775807n, 0n, -1n], big)) },
      { values: BigUint64Array.from({ length: n }, () => pick([18446744073709551615n, 0n, 9223372036854775808n], () => BigInt.asUintN(64, big()))) },
      { values: Int32Array.from({ length: n }, () => pick([-2147483648, 2147483647, 0], () => int(-2e9, 2e9))) },
      { values: Uint32Array.from({ length: n }, () => pick([7, 0, 4294967295, 2147483648], () => int(0, 4294967295))) },
      { values: Int16Array.from({ length: n }, () => pick([-1, -32768, 32767], () => int(-32768, 32767))) },
      { values: Uint16Array.from({ length: n }, () => pick([65535, 0, 32768], () => int(0, 65535))) },
      { values: Uint8Array.from({ length: n }, () => pick([255, 0], () => int(0, 255))) },
      { values: Int8Array.from({ length: n }, () => pick([-128, 127, 0], () => int(-128, 127))) },
      { values: Int32Array.from({ length: n }, () => int(-1000, 1000)) },
      { values: Float64Array.from({ length: n }, () => pick([NaN, -0, Infinity, -Infinity, 5e-324, 1e300], () => (next() - 0.5) * 10 ** int(-30, 30))) },
      { values: Float32Array.from({ length: n }, () => pick([NaN, -0, Infinity, 1e-45, 3.4e38], () => (next() - 0.5) * 10 ** int(-30, 30))) },
    ],
  };
}

const ROWS = 5000;
const table = memoryTable(COLUMNS, [batchOf(3000, 1), batchOf(2000, 2)]);

/** The CSV of HDU 1 of `path` written inline (the reference) and by threads reading the rows themselves. */
async function bothWays(dir: string, path: string, options: { columns?: string[]; batchRows?: number } = {}): Promise<{ inline: string; raw: string; rawRows: ReturnType<typeof fitsRawRows> }> {
  await using file = await FitsFile.open(path);
  const rawRows = fitsRawRows(file, 1, path);
  await writeCsv(file.table(1), join(dir, 'inline.csv'), { ...options, threads: 0 });
  await writeCsv(file.table(1), join(dir, 'raw.csv'), { ...options, threads: 2, batchRows: options.batchRows ?? 333, ...(rawRows ? { rawRows } : {}) });
  return { inline: await readFile(join(dir, 'inline.csv'), 'latin1'), raw: await readFile(join(dir, 'raw.csv'), 'latin1'), rawRows };
}

test('threads reading rows from the file write the same bytes as the decoded table, nulls and unsigned columns included', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 't.fits');
    await writeFits(path, [{ table }]);
    const { inline, raw, rawRows } = await bothWays(dir, path);
    assert.ok(rawRows !== undefined && rawRows.fields.every((f) => f !== undefined), 'every column has a raw field');
    assert.equal(inline.split('\n').length, ROWS + 2);
    // nulls are written as empty fields: the reference has some in every column with a TNULL
    const lines = inline.split('\n').slice(1, -1).map((l) => l.split(','));
    for (let c = 0; c < 8; c++) assert.ok(lines.some((f) => f[c] === ''), `column ${COLUMNS[c].name} has nulls`);
    assert.ok(lines.some((f) => f[9] === '') && lines.some((f) => f[10] === ''), 'NaNs are empty');
    assert.equal(raw, inline);
    // a subset of the columns, reordered, in batches of one row
    const sub = await bothWays(dir, path, { columns: ['f32', 'u64', 'i8'], batchRows: 1 });
    assert.equal(sub.raw, sub.inline);
    assert.match(sub.inline, /^f32,u64,i8\n/);
    // another delimiter and line ending, and to a stream (the bytes come back from the threads)
    await using file = await FitsFile.open(path);
    const streamRows = fitsRawRows(file, 1, path)!;
    const style = { delimiter: ';', lineEnding: '\r\n' } as const;
    await writeCsv(file.table(1), join(dir, 'semi.csv'), { ...style, threads: 0 });
    const chunks: Buffer[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk); done(); } });
    await writeCsv(file.table(1), sink, { ...style, threads: 2, batchRows: 1000, rawRows: streamRows });
    const semi = await readFile(join(dir, 'semi.csv'), 'latin1');
    assert.match(semi, /^i64;u64;i32;/);
    assert.equal(Buffer.concat(chunks).toString('latin1'), semi);
  });
});

test('a bad row size or a short file fails the conversion with a typed error, not a crash', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 't.fits');
    await writeFits(path, [{ table }]);
    await using file = await FitsFile.open(path);
    const rawRows = fitsRawRows(file, 1, path)!;
    const beyond = { ...rawRows, start: rawRows.start + 10_000_000 };
    await assert.rejects(writeCsv(file.table(1), join(dir, 'x.csv'), { threads: 2, rawRows: beyond }), (e: Error & { code?: string }) => e.code === 'csv_encode_failed' && /file ended/.test(e.message));
    const missing = { ...rawRows, path: join(dir, 'gone.fits') };
    await assert.rejects(writeCsv(file.table(1), join(dir, 'x.csv'), { threads: 2, rawRows: missing }), (e: Error & { code?: string }) => e.code === 'csv_cannot_read');
  });
});

test('scaled columns have no raw field and tables with a heap no raw rows: the decoded batches are written', async () => {
  await withTempDir(async (dir) => {
    const scaledPath = join(dir, 'scaled.fits');
    const scaled = [columnInfo('s', 'float64', { storage: { type: 'int16', scale: 0.5, zero: 10 }, nullValue: -32768 }), columnInfo('k', 'int32')];
    await writeFits(scaledPath, [{ table: memoryTable(scaled, [{ rowCount: 3, columns: [{ values: new Float64Array([10.5, NaN, -2]) }, { values: new Int32Array([1, 2, 3]) }] }]) }]);
    const s = await bothWays(dir, scaledPath);
    assert.ok(s.rawRows !== undefined && s.rawRows.fields[0] === undefined && s.rawRows.fields[1] !== undefined);
    assert.equal(s.raw, 's,k\n10.5,1\n,2\n-2,3\n');
    assert.equal(s.raw, s.inline);

    const heapPath = join(dir, 'heap.fits');
    const heap = [columnInfo('v', 'int32', { variable: true }), columnInfo('k', 'int16')];
    await writeFits(heapPath, [{ table: memoryTable(heap, [{ rowCount: 2, columns: [{ values: new Int32Array([1, 2, 3]), offsets: new Int32Array([0, 1, 3]) }, { values: new Int16Array([4, 5]) }] }]) }]);
    const h = await bothWays(dir, heapPath);
    assert.equal(h.rawRows, undefined);
    assert.equal(h.raw, h.inline);
    assert.match(h.raw, /^v,k\n"1",4\n"2 3",5\n$/);
  });
});

test('wide rows are read in batches of at most about a MB, with the same bytes as the inline writer', async () => {
  await withTempDir(async (dir) => {
    const width = 300;
    const n = 2000;
    const cols = Array.from({ length: width }, (_, c) => columnInfo(`c${c}`, 'float64'));
    const next = mulberry32(9);
    const wide = memoryTable(cols, [{ rowCount: n, columns: cols.map(() => ({ values: Float64Array.from({ length: n }, () => next() / 65536) })) }]);
    const path = join(dir, 'wide.fits');
    await writeFits(path, [{ table: wide }]);
    await using file = await FitsFile.open(path);
    const rawRows = fitsRawRows(file, 1, path)!;
    assert.equal(rawRows.rowBytes, 8 * width);
    await writeCsv(file.table(1), join(dir, 'inline.csv'), { threads: 0 });
    await writeCsv(file.table(1), join(dir, 'raw.csv'), { threads: 2, rawRows });
    const inline = await readFile(join(dir, 'inline.csv'), 'latin1');
    assert.equal(inline.split('\n').length, n + 2);
    assert.equal(await readFile(join(dir, 'raw.csv'), 'latin1'), inline);
  });
});
