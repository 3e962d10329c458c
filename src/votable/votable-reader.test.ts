import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectTable } from '../table/index.ts';
import { VOTableError } from './errors.ts';
import { readVOTable, type VOTableParam } from './votable-reader.ts';
import { astropyView, ourCells, python, stilts, withDir } from './test-support.ts';

// A table written by astropy from numpy arrays of every VOTable type, with masked values.
const ASTROPY_WRITE = `
import sys, numpy as np, warnings
warnings.simplefilter('ignore')
from astropy.table import Table, MaskedColumn
rng = np.random.default_rng(7)
n = int(sys.argv[2])
t = Table()
t['flag'] = MaskedColumn(rng.integers(0, 2, n).astype(bool), mask=np.arange(n) % 7 == 3)
t['ub'] = rng.integers(0, 256, n).astype(np.uint8)
t['h'] = MaskedColumn(rng.integers(-32768, 32767, n).astype(np.int16), mask=np.arange(n) % 5 == 1)
t['i'] = rng.integers(-2**31, 2**31 - 1, n).astype(np.int32)
t['l'] = rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64)
t['f'] = (rng.normal(size=n) * 10.0 ** rng.integers(-20, 20, n)).astype(np.float32)
t['d'] = rng.normal(size=n) * 10.0 ** rng.integers(-200, 200, n)
t['d'][::11] = np.nan
t['s'] = MaskedColumn(np.array(['obj<%d>&"q"' % k for k in range(n)]), mask=np.arange(n) % 9 == 4)
t['u'] = np.array(['ünï%d' % k for k in range(n)])
t['a'] = rng.integers(-100, 100, (n, 3)).astype(np.int32)
t['fa'] = rng.normal(size=(n, 2, 3))
t['c'] = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64)
t['f'].unit = 'mag'
t['d'].description = 'a double'
t.meta['OBSERVER'] = 'nobody'
t.write(sys.argv[1], format='votable', overwrite=True)
`;

test('reads a VOTable written by astropy with the values astropy reads', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'astropy.vot');
    await python(ASTROPY_WRITE, [path, '400']);
    const [table] = await readVOTable(path);
    const view = await astropyView(path);
    assert.equal(table.rowCount, 400);
    assert.deepEqual(table.columns.map((c) => c.name), view.tables[0].fields.map((f) => f.name));
    // astropy writes boolean columns as datatype="bit"
    assert.deepEqual(table.columns.map((c) => c.type), [
      'bit', 'uint8', 'int16', 'int32', 'int64', 'float32', 'float64', 'string', 'string', 'int32', 'float64', 'complex64',
    ]);
    assert.equal(table.columns[5].unit, 'mag');
    assert.equal(table.columns[6].description, 'a double');
    // an empty TD of a char field: a null for us, an empty string for astropy
    const ours = (await ourCells(table)).map((row) => row.map((v, c) => (table.columns[c].type === 'string' && v === null ? '' : v)));
    assert.deepEqual(ours, view.tables[0].rows);
  });
});

test('reads a VOTable written by STILTS (from a FITS file) with the values astropy reads', async () => {
  await withDir(async (dir) => {
    const fits = join(dir, 'in.fits');
    await python(`
import sys, numpy as np
from astropy.table import Table
rng = np.random.default_rng(3)
n = 300
t = Table()
t['id'] = np.arange(n, dtype=np.int64) * 1000000007
t['ra'] = rng.uniform(0, 360, n)
t['mag'] = rng.normal(20, 2, n).astype(np.float32)
t['flags'] = rng.integers(0, 2**15, n).astype(np.int16)
t['name'] = np.array(['src %d' % k for k in range(n)])
t['vec'] = rng.normal(size=(n, 4)).astype(np.float32)
t.write(sys.argv[1])
`, [fits]);
    const vot = join(dir, 'stilts.vot');
    await stilts(['tcopy', `in=${fits}`, `out=${vot}`, 'ofmt=votable']);
    const [table] = await readVOTable(vot);
    assert.equal(table.rowCount, 300);
    assert.deepEqual(await ourCells(table), (await astropyView(vot)).tables[0].rows);
  });
});

test('PARAMs, descriptions, several tables and a schema-only table', async () => {
  const doc = `<?xml version="1.0"?>
<VOTABLE version="1.4">
 <RESOURCE name="r">
  <PARAM name="survey" datatype="char" arraysize="*" value="3pi"/>
  <TABLE name="A">
   <DESCRIPTION> First table </DESCRIPTION>
   <PARAM name="zp" datatype="float" unit="mag" ucd="phot.mag;arith.zp" value="25.5"><DESCRIPTION>zero point</DESCRIPTION></PARAM>
   <PARAM name="n" datatype="long" value="9007199254740993"/>
   <PARAM name="ok" datatype="boolean" value="T"/>
   <GROUP><PARAM name="grouped" datatype="int" value="7"/></GROUP>
   <FIELD name="x" datatype="int"/>
   <DATA><TABLEDATA><TR><TD>1</TD></TR><TR><TD>2</TD></TR></TABLEDATA></DATA>
  </TABLE>
  <TABLE ID="B_id"><FIELD name="y" datatype="double"/></TABLE>
 </RESOURCE>
</VOTABLE>`;
  const [a, b] = await readVOTable(doc);
  assert.equal(a.name, 'A');
  assert.equal(a.description, 'First table');
  assert.equal(a.rowCount, 2);
  const params = a.params as VOTableParam[];
  assert.deepEqual(params.map((p) => [p.name, p.value]), [['survey', '3pi'], ['zp', 25.5], ['n', 9007199254740993n], ['ok', true], ['grouped', 7]]);
  assert.equal(params[1].unit, 'mag');
  assert.equal(params[1].ucd, 'phot.mag;arith.zp');
  assert.equal(params[1].description, 'zero point');
  assert.deepEqual(await ourCells(a), [['1'], ['2']]);
  assert.equal(b.name, 'B_id');
  assert.equal(b.rowCount, 0);
  assert.equal((await collectTable(b)).rowCount, 0);
});

test('streams a large TABLEDATA in batches from where it starts, again and again', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'big.vot');
    const n = 50_000;
    const rows: string[] = [];
    for (let i = 0; i < n; i++) rows.push(`<TR><TD>${i}</TD><TD>${i * 0.5}</TD><TD>r&amp;${i}</TD></TR>`);
    await writeFile(path, `<VOTABLE><RESOURCE><TABLE name="first"><FIELD name="a" datatype="int"/><DATA><TABLEDATA><TR><TD>-1</TD></TR></TABLEDATA></DATA></TABLE>
<TABLE name="big"><FIELD name="i" datatype="int"/><FIELD name="x" datatype="double"/><FIELD name="s" datatype="char" arraysize="*"/>
<DATA><TABLEDATA>\n${rows.join('\n')}\n</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`);
    const [, big] = await readVOTable(path);
    assert.equal(big.rowCount, n);
    for (let pass = 0; pass < 2; pass++) {
      let seen = 0;
      let batches = 0;
      for await (const batch of big.batches({ batchRows: 4096, columns: ['s', 'i'] })) {
        batches++;
        const s = batch.columns[0].values as string[];
        const i = batch.columns[1].values as Int32Array;
        for (let r = 0; r < batch.rowCount; r++) {
          if (i[r] !== seen + r || s[r] !== `r&${seen + r}`) assert.fail(`row ${seen + r}: ${i[r]} ${s[r]}`);
        }
        seen += batch.rowCount;
      }
      assert.equal(seen, n);
      assert.equal(batches, Math.ceil(n / 4096));
    }
  });
});

test('bad input is a VOTableError naming file, line, table, row and field', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'bad.vot');
    const expectError = async (body: string, code: string, pattern: RegExp) => {
      await writeFile(path, `<?xml version="1.0"?>\n<VOTABLE>\n<RESOURCE>\n<TABLE name="T">\n<FIELD name="a" datatype="int"/>\n<FIELD name="b" datatype="float" arraysize="2"/>\n${body}\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n`);
      await assert.rejects((async () => {
        for (const t of await readVOTable(path)) await collectTable(t);
      })(), (e: unknown) => {
        assert.ok(e instanceof VOTableError, String(e));
        assert.equal(e.code, code);
        assert.match(e.message, pattern);
        assert.ok(e.message.startsWith(path), e.message);
        return true;
      });
    };
    const data = (rows: string) => `<DATA><TABLEDATA>\n${rows}\n</TABLEDATA></DATA>`;
    await expectError(data('<TR><TD>1</TD><TD>1 2</TD></TR>\n<TR><TD>x</TD><TD>1 2</TD></TR>'), 'votable_bad_value', /bad\.vot: line 9: table T: row 2: field a: "x" is not an int/);
    await expectError(data('<TR><TD>1</TD><TD>1 2 3</TD></TR>'), 'votable_bad_value', /line 8: table T: row 1: field b: "1 2 3" holds 3 elements but the FIELD's arraysize gives 2/);
    await expectError(data('<TR><TD>1</TD><TD>1 nope</TD></TR>'), 'votable_bad_value', /field b: "1 nope" element 2 \("nope"\) is not a float/);
    await expectError(data('<TR><TD>1</TD><TD>1 2</TD><TD>3</TD></TR>'), 'votable_bad_row', /line 8: table T: row 1: the row has more than the 2 cells/);
    await expectError(data('<TR><TD>1</TD><TD>1 2</TD></TR>\n<TR><TD>1</TD></TR>'), 'votable_bad_row', /line 9: table T: row 2: the row has 1 cells but the table has 2 FIELDs/);
    await expectError(data('<TR><TD>1</TD><TD>1 2</TD></TR>\n<TR><TD>3000000000</TD><TD>1 2</TD></TR>'), 'votable_bad_value', /row 2: field a: "3000000000" is not an int/);
    await expectError(data('<TR><TD>1</TD><TD>1 2</TR>'), 'votable_bad_xml', /line 8: closing tag <\/TR> does not match the open <TD>; the file is not well-formed XML/);
    await expectError('<FIELD name="c" datatype="quad"/>', 'votable_bad_datatype', /line 7: table T: field c: datatype "quad" is not a VOTable datatype/);
    await expectError(data('<TR><TD>1</TD><TD>1 2</TD></TR>').replace('</TABLEDATA></DATA>', ''), 'votable_bad_xml', /line 10: closing tag <\/TABLE> does not match the open <TABLEDATA>/);
    await expectError('<DATA><BINARY2><STREAM encoding="base64">AAAA</STREAM></BINARY2></DATA>', 'votable_unsupported_encoding', /table T: the data are in BINARY2 encoding.*stilts tcopy/);
    await writeFile(path, '<html><body/></html>');
    await assert.rejects(readVOTable(path), (e: unknown) => e instanceof VOTableError && e.code === 'votable_not_votable');
    await assert.rejects(readVOTable(join(dir, 'missing.vot')), (e: unknown) => e instanceof VOTableError && e.code === 'votable_cannot_open');
  });
});

test('nulls: empty TD, VALUES null, NaN, "?" booleans; hexadecimal integers; bit strings', async () => {
  const [t] = await readVOTable(`<VOTABLE><RESOURCE><TABLE>
<FIELD name="i" datatype="int"><VALUES null="-99"/></FIELD>
<FIELD name="l" datatype="long"><VALUES null="-1"/></FIELD>
<FIELD name="b" datatype="boolean"/>
<FIELD name="f" datatype="double"/>
<FIELD name="bits" datatype="bit" arraysize="4"/>
<FIELD name="s" datatype="char" arraysize="*"/>
<DATA><TABLEDATA>
<TR><TD>-99</TD><TD>-1</TD><TD>?</TD><TD>NaN</TD><TD>1011</TD><TD></TD></TR>
<TR><TD></TD><TD></TD><TD></TD><TD></TD><TD>0 1 0 0</TD><TD>x</TD></TR>
<TR><TD>0x1F</TD><TD>0x7FFFFFFFFFFFFFFF</TD><TD>true</TD><TD>+Inf</TD><TD>1 1 1 1</TD><TD> y </TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`);
  assert.deepEqual(await ourCells(t), [
    [null, null, null, null, [true, false, true, true], null],
    [null, null, null, null, [false, true, false, false], 'x'],
    ['31', '9223372036854775807', true, 'Infinity', [true, true, true, true], ' y '],
  ]);
});

test('mutated documents give tables or a VOTableError, never another error or a hang', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'fuzz.vot');
    const base = Buffer.from(`<?xml version="1.0"?>
<VOTABLE version="1.4"><RESOURCE><TABLE name="T"><PARAM name="p" datatype="long" value="12"/>
<FIELD name="a" datatype="int"><VALUES null="-1"/></FIELD><FIELD name="b" datatype="double" arraysize="2"/>
<FIELD name="c" datatype="char" arraysize="4x2"/><FIELD name="d" datatype="boolean"/><FIELD name="e" datatype="long" arraysize="*"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>1.5 NaN</TD><TD>abcdefgh</TD><TD>T</TD><TD>1 2 3</TD></TR>
<TR><TD/><TD>-Inf 2</TD><TD>&lt;&amp;</TD><TD>?</TD><TD></TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
`);
    const alphabet = Buffer.from('<>/&;"=\' TDRx01-.*#\xc3\xff');
    let seed = 31;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let errors = 0;
    for (let round = 0; round < 300; round++) {
      const bytes = [...base];
      for (let k = 1 + rand(3); k > 0; k--) {
        const at = rand(bytes.length + 1);
        const op = rand(3);
        if (op === 0) bytes.splice(at, 1 + rand(3));
        else if (op === 1) bytes.splice(at, 0, alphabet[rand(alphabet.length)]);
        else bytes[at] = alphabet[rand(alphabet.length)];
      }
      await writeFile(path, Buffer.from(bytes));
      try {
        for (const t of await readVOTable(path)) await collectTable(t);
      } catch (e) {
        if (!(e instanceof VOTableError)) throw new Error(`round ${round}: ${String(e)} for ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`, { cause: e });
        errors++;
      }
    }
    assert.ok(errors > 50, `only ${errors} of 300 reads failed: the mutations are too gentle to test anything`);
  });
});
