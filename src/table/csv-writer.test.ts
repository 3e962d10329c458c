import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { columnInfo, memoryTable, type ColumnBatch, type ColumnInfo, type Table } from './index.ts';
import { writeCsv } from './csv-writer.ts';
import { CsvError } from './errors.ts';
import { withTempDir } from '../common/index.ts';

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir(fn, 'csv-writer-');

const columns: ColumnInfo[] = [
  columnInfo('flag', 'boolean'),
  columnInfo('b', 'uint8'),
  columnInfo('s16', 'int16', { nullValue: -1 }),
  columnInfo('u32', 'uint32'),
  columnInfo('id', 'int64'),
  columnInfo('u64', 'uint64'),
  columnInfo('f', 'float32'),
  columnInfo('d', 'float64'),
  columnInfo('name', 'string', { width: 12 }),
  columnInfo('arr', 'int32', { shape: [3] }),
  columnInfo('z', 'complex64'),
  columnInfo('vla', 'float64', { variable: true }),
  columnInfo('bits', 'bit', { shape: [3] }),
];

function sampleBatch(): ColumnBatch {
  return {
    rowCount: 3,
    columns: [
      { values: new Uint8Array([1, 0, 1]), valid: new Uint8Array([1, 1, 0]) },
      { values: new Uint8Array([0, 255, 7]) },
      { values: new Int16Array([-32768, -1, 5]) },
      { values: new Uint32Array([4294967295, 0, 7]) },
      { values: new BigInt64Array([-9223372036854775808n, 9007199254740993n, 0n]), valid: new Uint8Array([1, 1, 0]) },
      { values: new BigUint64Array([18446744073709551615n, 0n, 1n]) },
      { values: new Float32Array([0.1, Number.NaN, 3.4028234663852886e38]) },
      { values: new Float64Array([0.1, 1e300, -5e-324]) },
      { values: ['plain', 'a,b "q"\nline', ''], valid: new Uint8Array([1, 1, 1]) },
      { values: new Int32Array([1, 2, 3, -4, 5, 6, 7, 8, 9]) },
      { values: new Float32Array([1.5, -2, 0, 0.25, Number.NaN, 1]) },
      { values: new Float64Array([1, 2.5, 3]), offsets: new Int32Array([0, 2, 2, 3]) },
      { values: new Uint8Array([1, 0, 1, 0, 0, 0, 1, 1, 1]) },
    ],
  };
}

test('writes RFC 4180 text: header, quoting, nulls, exact integers, shortest floats, arrays', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'out.csv');
    const result = await writeCsv(memoryTable(columns, [sampleBatch()]), path, { threads: 0 });
    const text = await readFile(path, 'utf8');
    assert.equal(result.rows, 3);
    assert.equal(result.bytes, Buffer.byteLength(text));
    assert.equal(text, [
      'flag,b,s16,u32,id,u64,f,d,name,arr,z,vla,bits',
      'true,0,-32768,4294967295,-9223372036854775808,18446744073709551615,0.1,0.1,plain,"1 2 3","1.5 -2","1 2.5","1 0 1"',
      'false,255,,0,9007199254740993,0,,1e+300,"a,b ""q""\nline","-4 5 6","0 0.25","","0 0 0"',
      ',7,5,7,,1,3.4028235e+38,-5e-324,"","7 8 9","NaN 1","3","1 1 1"',
      '',
    ].join('\n'));
    // nothing but the result is left in the directory
    assert.deepEqual(await readdir(dir), ['out.csv']);
  });
});

test('options: delimiter, CRLF, no header, STILTS-style arrays, chosen columns', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'out.csv');
    await writeCsv(memoryTable(columns, [sampleBatch()]), path, {
      delimiter: ';', lineEnding: '\r\n', header: false, arrays: 'stilts', columns: ['arr', 'name', 'bits'], threads: 0,
    });
    assert.equal(await readFile(path, 'utf8'), [
      '"(1, 2, 3)";plain;"(true, false, true)"',
      '"(-4, 5, 6)";"a,b ""q""\nline";"(false, false, false)"',
      '"(7, 8, 9)";"";"(true, true, true)"',
      '',
    ].join('\r\n'));
  });
});

test('writes to a stream, and the threaded writer gives the same bytes as the inline one', async () => {
  const n = 50_000;
  const cols = [columnInfo('i', 'int32'), columnInfo('x', 'float64'), columnInfo('y', 'float32'), columnInfo('s', 'string', { width: 8 })];
  const table: Table = {
    columns: cols,
    rowCount: n,
    async *batches() {
      for (let start = 0; start < n; start += 7000) {
        const k = Math.min(7000, n - start);
        yield {
          rowCount: k,
          columns: [
            { values: Int32Array.from({ length: k }, (_, i) => (start + i) * 37 - 100000) },
            { values: Float64Array.from({ length: k }, (_, i) => Math.sin(start + i) * 1e5) },
            { values: Float32Array.from({ length: k }, (_, i) => Math.cos(start + i) / 7) },
            { values: Array.from({ length: k }, (_, i) => `r${start + i}`) },
          ],
        };
      }
    },
  };
  const collect = async (threads: number) => {
    const stream = new PassThrough();
    const parts: Buffer[] = [];
    stream.on('data', (c: Buffer) => parts.push(c));
    await writeCsv(table, stream, { threads });
    stream.end();
    return Buffer.concat(parts).toString('latin1');
  };
  const inline = await collect(0);
  const threaded = await collect(2);
  assert.equal(threaded, inline);
  const lines = inline.split('\n');
  assert.equal(lines.length, n + 2);
  assert.equal(lines[1], `-100000,0,0.14285715,r0`);
  const [i, x, y] = lines[4001].split(',');
  assert.equal(Number(i), 4000 * 37 - 100000);
  assert.equal(Number(x), Math.sin(4000) * 1e5);
  assert.equal(Math.fround(Number(y)), Math.fround(Math.cos(4000) / 7));
});

test('a failing table leaves no file behind, and bad options are typed errors', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'out.csv');
    const broken: Table = {
      columns: [columnInfo('a', 'int32')],
      async *batches() {
        yield { rowCount: 1, columns: [{ values: new Int32Array([1]) }] };
        throw new Error('disk on fire');
      },
    };
    await assert.rejects(writeCsv(broken, path, { threads: 0 }), /disk on fire/);
    await assert.rejects(writeCsv(broken, path, { threads: 2 }), /disk on fire/);
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(writeCsv(memoryTable(columns, []), path, { delimiter: '""' }), (e: unknown) => e instanceof CsvError && e.code === 'csv_bad_option');
    await assert.rejects(writeCsv(memoryTable(columns, []), join(dir, 'no', 'such', 'dir.csv')), (e: unknown) => e instanceof CsvError && e.code === 'csv_cannot_write');
  });
});

test('a link is written through to its file and stays a link; a pipe is refused, not replaced', async () => {
  await withDir(async (dir) => {
    const table = memoryTable([columnInfo('a', 'int32')], [{ rowCount: 2, columns: [{ values: new Int32Array([1, 2]) }] }]);
    await symlink('target.csv', join(dir, 'link.csv'));
    await writeCsv(table, join(dir, 'link.csv'));
    assert.ok((await lstat(join(dir, 'link.csv'))).isSymbolicLink());
    assert.equal(await readFile(join(dir, 'target.csv'), 'utf8'), 'a\n1\n2\n');
    execFileSync('mkfifo', [join(dir, 'pipe.csv')]);
    await assert.rejects(writeCsv(table, join(dir, 'pipe.csv')), (e: unknown) => e instanceof CsvError && e.code === 'csv_cannot_write' && /not a regular file/.test(e.message));
    assert.ok((await lstat(join(dir, 'pipe.csv'))).isFIFO());
  });
});

// STILTS reads a FITS file written by astropy from the same values; its CSV and ours must
// hold the same values (the float text may differ: Java's Float.toString is not always the
// shortest, ours is, so ours must never be longer).
test('values agree with STILTS tcopy of the same table (floats compared as numbers)', async () => {
  await withDir(async (dir) => {
    const n = 3000;
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const f32 = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : (next() - 0.5) * 10 ** Math.floor(next() * 12 - 6)));
    const f64 = Float64Array.from({ length: n }, () => (next() - 0.5) * 10 ** Math.floor(next() * 30 - 15));
    const i32 = Int32Array.from({ length: n }, () => Math.floor((next() - 0.5) * 2 ** 32));
    const i64 = BigInt64Array.from({ length: n }, () => BigInt(Math.floor((next() - 0.5) * 2 ** 52)) * 2048n + BigInt(Math.floor(next() * 2048)));
    const i16 = Int16Array.from({ length: n }, () => Math.floor((next() - 0.5) * 65536));
    const cols = [columnInfo('f', 'float32'), columnInfo('d', 'float64'), columnInfo('i', 'int32'), columnInfo('l', 'int64'), columnInfo('h', 'int16')];
    const ours = join(dir, 'ours.csv');
    await writeCsv(memoryTable(cols, [{ rowCount: n, columns: [{ values: f32 }, { values: f64 }, { values: i32 }, { values: i64 }, { values: i16 }] }]), ours);
    const json = join(dir, 'values.json');
    await writeFile(json, JSON.stringify({
      f: Array.from(f32), d: Array.from(f64), i: Array.from(i32), l: Array.from(i64, String), h: Array.from(i16),
    }));
    const fits = join(dir, 'values.fits');
    execFileSync('/usr/bin/python3', ['-c', `
import json, sys, numpy as np
from astropy.table import Table
v = json.load(open(sys.argv[1]))
t = Table()
t['f'] = np.array(v['f'], dtype=np.float64).astype(np.float32)
t['d'] = np.array(v['d'], dtype=np.float64)
t['i'] = np.array(v['i'], dtype=np.int32)
t['l'] = np.array([int(x) for x in v['l']], dtype=np.int64)
t['h'] = np.array(v['h'], dtype=np.int16)
t.write(sys.argv[2])
`, json, fits]);
    const stiltsCsv = join(dir, 'stilts.csv');
    execFileSync('stilts', ['tcopy', `in=${fits}`, `out=${stiltsCsv}`, 'ofmt=csv'], { stdio: 'pipe' });
    const a = (await readFile(ours, 'utf8')).trimEnd().split('\n');
    const b = (await readFile(stiltsCsv, 'utf8')).trimEnd().split('\n');
    assert.equal(a.length, n + 1);
    assert.equal(b.length, n + 1);
    assert.equal(a[0], b[0]);
    for (let r = 1; r <= n; r++) {
      const x = a[r].split(',');
      const y = b[r].split(',');
      assert.equal(Math.fround(Number(x[0])), Math.fround(Number(y[0])), `row ${r} float32: ours ${x[0]}, STILTS ${y[0]}`);
      assert.equal(Math.fround(Number(x[0])), f32[r - 1]);
      const digits = (s: string) => s.replace(/^-/, '').replace(/[eE].*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;
      assert.ok(digits(x[0]) <= digits(y[0]), `row ${r}: ours ${x[0]} is longer than STILTS ${y[0]}`);
      assert.equal(Number(x[1]), Number(y[1]), `row ${r} float64: ours ${x[1]}, STILTS ${y[1]}`);
      assert.equal(Number(x[1]), f64[r - 1]);
      assert.equal(x[2], y[2]);
      assert.equal(x[3], y[3]);
      assert.equal(x[4], y[4]);
    }
  });
});

// Formatting threads get batches through shared slots of fixed first sizes: a batch whose
// column data outgrows its input slot, and rows whose CSV outgrows the output slot, must come
// out exactly as formatted inline.
test('threads write batches larger than their shared slots exactly as inline', async () => {
  const n = 300_000;
  const big = 'x'.repeat(3_000_000);
  const cols = [columnInfo('d', 'float64'), columnInfo('i', 'int64'), columnInfo('v', 'int16', { variable: true }), columnInfo('s', 'string', { variable: true })];
  const offsets = Int32Array.from({ length: n + 1 }, (_, i) => 2 * i);
  const batch: ColumnBatch = {
    rowCount: n,
    columns: [
      { values: Float64Array.from({ length: n }, (_, i) => Math.sqrt(i) * 1e-3) },
      { values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 123456789013n - 9n) },
      { values: Int16Array.from({ length: 2 * n }, (_, i) => i % 30000), offsets },
      { values: Array.from({ length: n }, (_, i) => (i % 100_000 === 7 ? `${big}${i}` : `s${i}`)) },
    ],
  };
  const table = memoryTable(cols, [batch]);
  await withDir(async (dir) => {
    const inline = join(dir, 'inline.csv');
    const threaded = join(dir, 'threaded.csv');
    const a = await writeCsv(table, inline, { threads: 0 });
    const b = await writeCsv(table, threaded, { threads: 2, batchRows: n });
    assert.deepEqual(b, a);
    assert.equal(a.rows, n);
    const x = await readFile(inline);
    const y = await readFile(threaded);
    assert.ok(x.equals(y), 'threaded CSV differs from inline CSV');
    assert.ok(x.length > 3 * big.length);
    assert.equal(x.toString('latin1', 0, 40).split('\n')[1], '0,-9,"0 1",s0');
  });
});

test('tables of numbers and booleans only (the compiled row loop): nulls by value, by validity array, or both, per batch', async () => {
  const fixed = [
    columnInfo('flag', 'boolean'),
    columnInfo('b', 'uint8'),
    columnInfo('s16', 'int16', { nullValue: -1 }),
    columnInfo('u32', 'uint32'),
    columnInfo('id', 'int64', { nullValue: -9223372036854775808n }),
    columnInfo('u64', 'uint64'),
    columnInfo('f', 'float32'),
    columnInfo('d', 'float64'),
  ];
  // the first batch has validity arrays on two columns, the second on none, the third on all
  const first = { rowCount: 3, columns: sampleBatch().columns.slice(0, 8) };
  const second: ColumnBatch = {
    rowCount: 2,
    columns: [
      { values: new Uint8Array([0, 1]) },
      { values: new Uint8Array([1, 200]) },
      { values: new Int16Array([-1, 3]) },
      { values: new Uint32Array([1, 2147483648]) },
      { values: new BigInt64Array([-9223372036854775808n, -5n]) },
      { values: new BigUint64Array([9223372036854775808n, 3n]) },
      { values: new Float32Array([Number.NaN, 1.5]) },
      { values: new Float64Array([Number.NaN, -0.5]) },
    ],
  };
  const none = new Uint8Array([0]);
  const third: ColumnBatch = {
    rowCount: 1,
    columns: second.columns.map((c) => ({ values: c.values.slice(1, 2) as typeof c.values, valid: none })),
  };
  const table = () => memoryTable(fixed, [first, second, third]);
  await withDir(async (dir) => {
    const path = join(dir, 'out.csv');
    await writeCsv(table(), path, { threads: 0 });
    assert.equal(await readFile(path, 'utf8'), [
      'flag,b,s16,u32,id,u64,f,d',
      // a value equal to the null value is written when a validity array says it is valid
      'true,0,-32768,4294967295,-9223372036854775808,18446744073709551615,0.1,0.1',
      'false,255,,0,9007199254740993,0,,1e+300',
      ',7,5,7,,1,3.4028235e+38,-5e-324',
      'false,1,,1,,9223372036854775808,,',
      'true,200,3,2147483648,-5,3,1.5,-0.5',
      ',,,,,,,',
      '',
    ].join('\n'));
    await writeCsv(table(), path, { threads: 2, delimiter: '\t', lineEnding: '\r\n', header: false, batchRows: 1 });
    assert.equal(await readFile(path, 'utf8'), [
      'true\t0\t-32768\t4294967295\t-9223372036854775808\t18446744073709551615\t0.1\t0.1',
      'false\t255\t\t0\t9007199254740993\t0\t\t1e+300',
      '\t7\t5\t7\t\t1\t3.4028235e+38\t-5e-324',
      'false\t1\t\t1\t\t9223372036854775808\t\t',
      'true\t200\t3\t2147483648\t-5\t3\t1.5\t-0.5',
      '\t\t\t\t\t\t\t',
      '',
    ].join('\r\n'));
  });
});

test('a batch that a formatting thread cannot write fails the whole file, and the other threads stop waiting for their turn', async () => {
  const cols = [columnInfo('i', 'int32'), columnInfo('s', 'string', { variable: true })];
  const batches: ColumnBatch[] = Array.from({ length: 12 }, (_, b) => ({
    rowCount: 1000,
    columns: [
      { values: Int32Array.from({ length: 1000 }, (_, i) => b * 1000 + i) },
      // batch 5 holds a value that is not a string: its thread fails on it
      { values: Array.from({ length: 1000 }, (_, i) => (b === 5 && i === 500 ? (['x'] as unknown as string) : `r${i}`)) },
    ],
  }));
  await withDir(async (dir) => {
    const path = join(dir, 'out.csv');
    await assert.rejects(writeCsv(memoryTable(cols, batches), path, { threads: 2, batchRows: 1000 }),
      (e: unknown) => e instanceof CsvError && e.code === 'csv_encode_failed');
    assert.deepEqual(await readdir(dir), []);
    // the same table without the bad value is written whole
    batches[5] = { rowCount: 1000, columns: [batches[5].columns[0], { values: Array.from({ length: 1000 }, (_, i) => `r${i}`) }] };
    const result = await writeCsv(memoryTable(cols, batches), path, { threads: 2, batchRows: 1000 });
    assert.equal(result.rows, 12_000);
    const lines = (await readFile(path, 'latin1')).split('\n');
    assert.equal(lines.length, 12_002);
    assert.equal(lines[5501], '5500,r500');
  });
});

test('threads place many small batches in order, some of them larger than their shared slots', async () => {
  const cols = [columnInfo('i', 'int32'), columnInfo('x', 'float32'), columnInfo('s', 'string', { variable: true })];
  const huge = 'y'.repeat(9_000_000);
  const batches: ColumnBatch[] = Array.from({ length: 40 }, (_, b) => ({
    rowCount: 500,
    columns: [
      { values: Int32Array.from({ length: 500 }, (_, i) => b * 500 + i) },
      { values: Float32Array.from({ length: 500 }, (_, i) => Math.sin(b * 500 + i)) },
      // batches 7 and 22 hold a cell larger than a shared output slot
      { values: Array.from({ length: 500 }, (_, i) => ((b === 7 || b === 22) && i === 250 ? huge : `b${b}`)) },
    ],
  }));
  await withDir(async (dir) => {
    const inline = join(dir, 'inline.csv');
    const threaded = join(dir, 'threaded.csv');
    const a = await writeCsv(memoryTable(cols, batches), inline, { threads: 0 });
    const b = await writeCsv(memoryTable(cols, batches), threaded, { threads: 3, batchRows: 500 });
    assert.deepEqual(b, a);
    const x = await readFile(inline);
    assert.ok(x.equals(await readFile(threaded)), 'threaded CSV differs from inline CSV');
    assert.equal(a.rows, 20_000);
    assert.ok(x.length > 2 * huge.length);
  });
});

test('where code from strings is disallowed, tables of numbers are written by the general row loop, with the same bytes', async () => {
  await withDir(async (dir) => {
    const script = `
      import { writeCsv, memoryTable, columnInfo } from ${JSON.stringify(new URL('./index.ts', import.meta.url).href)};
      const cols = [columnInfo('i', 'int16', { nullValue: -1 }), columnInfo('x', 'float32'), columnInfo('id', 'uint64')];
      const batch = { rowCount: 3, columns: [
        { values: new Int16Array([-1, 7, -300]) },
        { values: new Float32Array([0.1, NaN, -2.5e-7]) },
        { values: new BigUint64Array([18446744073709551615n, 0n, 42n]) },
      ] };
      await writeCsv(memoryTable(cols, [batch]), process.argv[1], { threads: 0 });`;
    const paths = [join(dir, 'plain.csv'), join(dir, 'no-eval.csv')];
    execFileSync(process.execPath, ['--input-type=module', '-e', script, paths[0]]);
    execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '-e', script, paths[1]]);
    const expected = 'i,x,id\n,0.1,18446744073709551615\n7,,0\n-300,-2.5e-7,42\n';
    assert.equal(await readFile(paths[0], 'utf8'), expected);
    assert.equal(await readFile(paths[1], 'utf8'), expected);
  });
});
