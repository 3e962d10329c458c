import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectTable, columnInfo, getCell, memoryTable, type ColumnInfo, type Table } from './index.ts';
import { readCsv } from './csv-reader.ts';
import { writeCsv } from './csv-writer.ts';
import { CsvError } from './errors.ts';
import { withTempDir } from '../common/index.ts';

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir(fn, 'csv-reader-');

async function rowsOf(table: Table): Promise<unknown[][]> {
  const batch = await collectTable(table);
  const rows: unknown[][] = [];
  for (let r = 0; r < batch.rowCount; r++) rows.push(table.columns.map((c, i) => getCell(c, batch.columns[i], r)));
  return rows;
}

test('infers types from a first pass: int32, int64, float64, boolean, string width; nulls', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'detections.csv');
    await writeFile(path, [
      'id,objID,mag,ok,name,empty',
      '1,100000000000000001,12.5,true,alpha,',
      '-2147483648,-9223372036854775808,NaN,FALSE,"be,ta",',
      ',9,1e-3,,"say ""hi""",',
      '7,,-inf,true,ünï,',
    ].join('\r\n') + '\r\n');
    const table = await readCsv(path);
    assert.equal(table.name, 'detections');
    assert.equal(table.rowCount, 4);
    assert.deepEqual(table.columns.map((c) => [c.name, c.type, c.width]), [
      ['id', 'int32', undefined], ['objID', 'int64', undefined], ['mag', 'float64', undefined],
      ['ok', 'boolean', undefined], ['name', 'string', 8], ['empty', 'string', 1],
    ]);
    assert.deepEqual(await rowsOf(table), [
      [1, 100000000000000001n, 12.5, true, 'alpha', null],
      [-2147483648, -9223372036854775808n, NaN, false, 'be,ta', null],
      [null, 9n, 0.001, null, 'say "hi"', null],
      [7, null, -Infinity, true, 'ünï', null],
    ]);
  });
});

test('integers too large for int32 widen to int64, then to float64; mixed text becomes string', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'w.csv');
    await writeFile(path, 'a,b,c,d\n2147483647,9223372036854775807,1,x\n2147483648,9223372036854775808,2.5,3\n');
    const t = await readCsv(path);
    assert.deepEqual(t.columns.map((c) => c.type), ['int64', 'float64', 'float64', 'string']);
    assert.deepEqual(await rowsOf(t), [[2147483647n, 2 ** 63, 1, 'x'], [2147483648n, 2 ** 63, 2.5, '3']]);
  });
});

test('quoted fields may hold delimiters, quotes and line breaks; errors give the line where a row starts', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'q.csv');
    await writeFile(path, 'n,text\n1,"two\nlines"\n2,"a ""b"" c"\n3,x,extra\n');
    const schema = [columnInfo('n', 'int16'), columnInfo('text', 'string', { width: 20 })];
    const t = await readCsv(path, { schema });
    await assert.rejects(collectTable(t), (e: unknown) => {
      assert.ok(e instanceof CsvError);
      assert.equal(e.code, 'csv_bad_row');
      assert.match(e.message, /q\.csv: line 5: 3 fields but the table has 2 columns/);
      return true;
    });
    await writeFile(path, 'n,text\n1,"two\nlines"\n2,"a ""b"" c"\n');
    assert.deepEqual(await rowsOf(await readCsv(path, { schema })), [[1, 'two\nlines'], [2, 'a "b" c']]);
  });
});

test('bad input is a CsvError naming file, line and column', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'bad.csv');
    const expectError = async (text: string, schema: ColumnInfo[] | undefined, code: string, pattern: RegExp) => {
      await writeFile(path, text);
      await assert.rejects((async () => collectTable(await readCsv(path, schema ? { schema } : {})))(), (e: unknown) => {
        assert.ok(e instanceof CsvError, String(e));
        assert.equal(e.code, code);
        assert.match(e.message, pattern);
        return true;
      });
    };
    const ints = [columnInfo('a', 'int16'), columnInfo('b', 'float32')];
    await expectError('a,b\n1,2\n70000,3\n', ints, 'csv_bad_value', /bad\.csv: line 3: column a \(field 1\): "70000" is out of the range of int16/);
    await expectError('a,b\n1,2\n1,x2\n', ints, 'csv_bad_value', /line 3: column b \(field 2\): "x2" is not a number/);
    await expectError('a,b\n1.5,2\n', ints, 'csv_bad_value', /"1\.5" is not an integer/);
    await expectError('a,b\n1,"2\n', undefined, 'csv_unterminated_quote', /bad\.csv: line 2: a quoted field is not closed/);
    await expectError('a,b\n1,"2"x\n', undefined, 'csv_bad_quote', /line 2: field 2 has text after its closing quote/);
    await expectError('a,b\n1,2\n3\n', undefined, 'csv_bad_row', /line 3: 1 field but the table has 2 columns/);
    await expectError('x,y\n1,2\n', ints, 'csv_bad_schema', /column 1 is named "x" in the header but "a" in the schema/);
    await expectError('', undefined, 'csv_empty', /the file is empty/);
    await expectError('a\n18446744073709551616\n', [columnInfo('a', 'uint64')], 'csv_bad_value', /does not fit|not an integer that fits uint64/);
    await assert.rejects(readCsv(join(dir, 'missing.csv')), (e: unknown) => e instanceof CsvError && e.code === 'csv_cannot_open');
  });
});

test('streams a file larger than its buffer in batches, and reads it again the same', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'big.csv');
    const n = 120_000;
    const lines = ['i,x,s'];
    for (let i = 0; i < n; i++) lines.push(`${i},${i / 8},"row ${i}, ""quoted"""`);
    await writeFile(path, lines.join('\n'));
    const t = await readCsv(path);
    assert.equal(t.rowCount, n);
    for (let pass = 0; pass < 2; pass++) {
      let seen = 0;
      let batches = 0;
      for await (const b of t.batches({ batchRows: 10_000 })) {
        batches++;
        const iv = b.columns[0].values as Int32Array;
        const xv = b.columns[1].values as Float64Array;
        const sv = b.columns[2].values as string[];
        for (let r = 0; r < b.rowCount; r++) {
          const i = seen + r;
          if (iv[r] !== i || xv[r] !== i / 8 || sv[r] !== `row ${i}, "quoted"`) assert.fail(`row ${i}: ${iv[r]} ${xv[r]} ${sv[r]}`);
        }
        seen += b.rowCount;
      }
      assert.equal(seen, n);
      assert.equal(batches, 12);
    }
    // chosen columns only
    const only = await collectTable(t, { columns: ['s'] });
    assert.equal(only.columns.length, 1);
    assert.equal((only.columns[0].values as string[])[5], 'row 5, "quoted"');
  });
});

test('round trip: writeCsv then readCsv with the same schema gives back every cell', async () => {
  await withDir(async (dir) => {
    const schema = [
      columnInfo('flag', 'boolean'),
      columnInfo('b', 'uint8'),
      columnInfo('h', 'int16', { nullValue: -1 }),
      columnInfo('u', 'uint32'),
      columnInfo('id', 'int64'),
      columnInfo('big', 'uint64'),
      columnInfo('f', 'float32'),
      columnInfo('d', 'float64'),
      columnInfo('s', 'string', { width: 10 }),
      columnInfo('arr', 'int32', { shape: [2] }),
      columnInfo('z', 'complex128'),
      columnInfo('vla', 'float32', { variable: true }),
    ];
    const table = memoryTable(schema, [{
      rowCount: 3,
      columns: [
        { values: new Uint8Array([1, 0, 0]), valid: new Uint8Array([1, 1, 0]) },
        { values: new Uint8Array([0, 255, 9]) },
        { values: new Int16Array([5, -1, -32768]), valid: new Uint8Array([1, 0, 1]) },
        { values: new Uint32Array([4294967295, 0, 3]) },
        { values: new BigInt64Array([-9223372036854775808n, 123456789012345678n, -5n]) },
        { values: new BigUint64Array([18446744073709551615n, 9007199254740993n, 0n]) },
        { values: new Float32Array([0.1, 1e-30, Number.NaN]) },
        { values: new Float64Array([Math.PI, -1e-300, Number.NaN]) },
        { values: ['x', 'q"uote,', ''] },
        { values: new Int32Array([1, 2, -3, 4, 5, 6]) },
        { values: new Float64Array([1, -1, 0.5, 2, 0, 0]) },
        { values: new Float32Array([1.5, 2.5, 3.5]), offsets: new Int32Array([0, 0, 1, 3]) },
      ],
    }]);
    for (const arrays of ['space', 'stilts'] as const) {
      const path = join(dir, `rt-${arrays}.csv`);
      await writeCsv(table, path, { arrays, threads: 0 });
      // a float NaN is written as an empty field, which reads back as a null
      const expected = (await rowsOf(table)).map((row) => row.map((v) => (typeof v === 'number' && Number.isNaN(v) ? null : v)));
      assert.deepEqual(await rowsOf(await readCsv(path, { schema })), expected);
    }
  });
});

test('reads the CSV that STILTS writes from a VOTable', async () => {
  await withDir(async (dir) => {
    const vot = join(dir, 't.vot');
    await writeFile(vot, `<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="i" datatype="int"/><FIELD name="l" datatype="long"/><FIELD name="f" datatype="float"/>
<FIELD name="s" datatype="char" arraysize="*"/><FIELD name="a" datatype="short" arraysize="3"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>9007199254740993</TD><TD>1.0E-5</TD><TD>he said "hi", twice</TD><TD>1 2 3</TD></TR>
<TR><TD></TD><TD>-7</TD><TD>3.4028235E38</TD><TD></TD><TD>4 5 6</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`);
    const csv = join(dir, 't.csv');
    execFileSync('stilts', ['tcopy', `in=${vot}`, 'ifmt=votable', `out=${csv}`, 'ofmt=csv'], { stdio: 'pipe' });
    const schema = [columnInfo('i', 'int32'), columnInfo('l', 'int64'), columnInfo('f', 'float32'), columnInfo('s', 'string', { variable: true }), columnInfo('a', 'int16', { shape: [3] })];
    assert.deepEqual(await rowsOf(await readCsv(csv, { schema })), [
      [1, 9007199254740993n, Math.fround(1e-5), 'he said "hi", twice', [1, 2, 3]],
      [null, -7n, Math.fround(3.4028235e38), null, [4, 5, 6]],
    ]);
    const inferred = await readCsv(csv);
    assert.deepEqual(inferred.columns.map((c) => c.type), ['int32', 'int64', 'float64', 'string', 'string']);
  });
});

test('mutated files give a table or a CsvError, never another error or a hang', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'fuzz.csv');
    const base = Buffer.from('id,name,x,flag,big\n1,"a ""b""",1.5,true,9007199254740993\n2,"multi\nline",-2e-3,false,-5\n3,,NaN,,18446744073709551615\n');
    const alphabet = Buffer.from('",\n\r0123456789.-+eE tfx\xff');
    const schema = [columnInfo('id', 'int16'), columnInfo('name', 'string', { width: 12 }), columnInfo('x', 'float32'), columnInfo('flag', 'boolean'), columnInfo('big', 'uint64')];
    let seed = 77;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let errors = 0;
    for (let round = 0; round < 300; round++) {
      const bytes = [...base];
      for (let k = 1 + rand(4); k > 0; k--) {
        const at = rand(bytes.length + 1);
        const op = rand(3);
        if (op === 0) bytes.splice(at, 1);
        else if (op === 1) bytes.splice(at, 0, alphabet[rand(alphabet.length)]);
        else bytes[at] = alphabet[rand(alphabet.length)];
      }
      await writeFile(path, Buffer.from(bytes));
      for (const options of [{}, { schema }]) {
        try {
          await collectTable(await readCsv(path, options));
        } catch (e) {
          if (!(e instanceof CsvError)) throw new Error(`round ${round}: ${String(e)} for ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`, { cause: e });
          errors++;
        }
      }
    }
    assert.ok(errors > 50, `only ${errors} of 600 reads failed: the mutations are too gentle to test anything`);
  });
});
