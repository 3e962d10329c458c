import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { columnInfo, type ColumnInfo } from '../table/index.ts';
import { VOTableError } from './errors.ts';
import { columnToField, formatArraySize, parseArraySize } from './fields.ts';
import { columnsToVOTable, votableToColumns } from './votable-writer.ts';
import { astropyView, python, withDir } from './test-support.ts';

// A schema file like those that describe the archive's tables: every datatype, arraysizes of
// every kind, units, UCDs, utypes, IDs, width/precision, nulls and descriptions.
const FRAME_META = `<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE name="PS1">
<TABLE name="FrameMeta">
<DESCRIPTION>Metadata of each exposure (one row per frame).</DESCRIPTION>
<FIELD name="frameID" ID="col_frameID" datatype="long" ucd="meta.id;obs.image">
  <DESCRIPTION>Unique exposure identifier (rawExp.exp_id).</DESCRIPTION>
  <VALUES null="-999"/>
</FIELD>
<FIELD name="surveyID" datatype="unsignedByte" ucd="meta.id">
  <DESCRIPTION>Survey identifier.</DESCRIPTION>
  <VALUES null="255"/>
</FIELD>
<FIELD name="cameraID" datatype="short" width="6"><VALUES null="-1"/></FIELD>
<FIELD name="analysisVer" datatype="int" utype="ps1:FrameMeta.analysisVer"><VALUES null="-999"/></FIELD>
<FIELD name="expStart" datatype="double" unit="d" ucd="time.start" width="17" precision="9"/>
<FIELD name="expTime" datatype="float" unit="s" ucd="time.duration;obs.exposure" precision="E4"/>
<FIELD name="airmass" datatype="float" ucd="obs.airMass"><DESCRIPTION>Airmass at mid-exposure.</DESCRIPTION></FIELD>
<FIELD name="raBore" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main" ref="icrs" precision="F8" width="12"/>
<FIELD name="filter" datatype="char" arraysize="8" ucd="meta.id;instr.filter"/>
<FIELD name="flag" datatype="char"/>
<FIELD name="comment" datatype="char" arraysize="*"/>
<FIELD name="label" datatype="char" arraysize="64*"/>
<FIELD name="title" datatype="unicodeChar" arraysize="*"/>
<FIELD name="one" datatype="char" arraysize="1"/>
<FIELD name="photoCal" datatype="boolean"/>
<FIELD name="mask" datatype="bit" arraysize="16"/>
<FIELD name="zp" datatype="float" arraysize="60" unit="mag"/>
<FIELD name="psfModel" datatype="double" arraysize="3x4"/>
<FIELD name="vla" datatype="int" arraysize="*"><VALUES null="0"/></FIELD>
<FIELD name="bounded" datatype="short" arraysize="10*"/>
<FIELD name="grid" datatype="float" arraysize="3x*"/>
<FIELD name="cz" datatype="floatComplex"/>
<FIELD name="dz" datatype="doubleComplex" arraysize="2"/>
<FIELD name="ts" datatype="char" arraysize="*" xtype="timestamp"/>
</TABLE>
</RESOURCE>
</VOTABLE>
`;

// Every FIELD of a document as plain data, read by Python's own XML parser (not ours).
async function fieldsByEtree(path: string): Promise<unknown[]> {
  const out = await python(`
import sys, json
import xml.etree.ElementTree as ET
fields = []
for el in ET.parse(sys.argv[1]).getroot().iter():
    if el.tag.split('}')[-1] != 'FIELD':
        continue
    desc = [c.text for c in el if c.tag.split('}')[-1] == 'DESCRIPTION']
    nulls = [c.get('null') for c in el if c.tag.split('}')[-1] == 'VALUES']
    fields.append({'attrs': dict(sorted(el.attrib.items())), 'description': desc[0] if desc else None, 'null': nulls[0] if nulls else None})
json.dump(fields, sys.stdout)
`, [path]);
  return JSON.parse(out) as unknown[];
}

test('a schema VOTable survives VOTable -> ColumnInfo -> VOTable unchanged (every datatype, arraysize, unit, ucd, null, description)', async () => {
  await withDir(async (dir) => {
    const original = join(dir, 'FrameMeta.vot');
    await writeFile(original, FRAME_META);
    const columns = await votableToColumns(original);
    const again = join(dir, 'again.vot');
    await writeFile(again, columnsToVOTable(columns, { name: 'FrameMeta', description: 'Metadata of each exposure (one row per frame).' }));
    const before = await fieldsByEtree(original);
    const after = await fieldsByEtree(again);
    assert.equal(before.length, 24);
    assert.deepEqual(after, before);
    // and once more: the written file reads back to the same columns
    assert.deepEqual(await votableToColumns(again), columns);
    assert.equal(columnsToVOTable(await votableToColumns(again), { name: 'FrameMeta' }), columnsToVOTable(columns, { name: 'FrameMeta' }));
  });
});

test('astropy reads the written schema with the same field attributes as the original', async () => {
  await withDir(async (dir) => {
    // astropy does not take multi-dimensional char arrays, which this schema has none of
    const original = join(dir, 'FrameMeta.vot');
    await writeFile(original, FRAME_META);
    const again = join(dir, 'again.vot');
    await writeFile(again, columnsToVOTable(await votableToColumns(original), { name: 'FrameMeta' }));
    const a = (await astropyView(original)).tables[0];
    const b = (await astropyView(again)).tables[0];
    assert.equal(b.name, 'FrameMeta');
    assert.deepEqual(b.fields, a.fields);
    assert.equal(b.rows.length, 0);
  });
});

test('FIELDs map to ColumnInfo: types, shapes, widths, nulls, display hints', async () => {
  const cols = await votableToColumns(FRAME_META);
  const by = (name: string) => cols.find((c) => c.name === name)!;
  const brief = (c: ColumnInfo) => [c.type, [...c.shape], c.variable ?? false, c.width];
  assert.deepEqual(brief(by('frameID')), ['int64', [], false, undefined]);
  assert.equal(by('frameID').nullValue, -999n);
  assert.equal(by('surveyID').nullValue, 255);
  assert.equal(by('frameID').description, 'Unique exposure identifier (rawExp.exp_id).');
  assert.equal(by('expStart').unit, 'd');
  assert.equal(by('expStart').ucd, 'time.start');
  assert.equal(by('expStart').display, 'F17.9');
  assert.equal(by('raBore').display, 'F12.8');
  assert.equal(by('cameraID').display, 'I6');
  assert.equal(by('analysisVer').utype, 'ps1:FrameMeta.analysisVer');
  assert.deepEqual(brief(by('filter')), ['string', [], false, 8]);
  assert.deepEqual(brief(by('flag')), ['string', [], false, 1]);
  assert.deepEqual(brief(by('comment')), ['string', [], true, undefined]);
  assert.deepEqual(brief(by('label')), ['string', [], true, 64]);
  assert.deepEqual(brief(by('title')), ['string', [], true, undefined]);
  assert.deepEqual(brief(by('photoCal')), ['boolean', [], false, undefined]);
  assert.deepEqual(brief(by('mask')), ['bit', [16], false, undefined]);
  assert.deepEqual(brief(by('zp')), ['float32', [60], false, undefined]);
  assert.deepEqual(brief(by('psfModel')), ['float64', [3, 4], false, undefined]);
  assert.deepEqual(brief(by('vla')), ['int32', [], true, undefined]);
  assert.deepEqual(brief(by('bounded')), ['int16', [10], true, undefined]);
  assert.deepEqual(brief(by('grid')), ['float32', [3], true, undefined]);
  assert.deepEqual(brief(by('cz')), ['complex64', [], false, undefined]);
  assert.deepEqual(brief(by('dz')), ['complex128', [2], false, undefined]);
});

test('columns made in code (as from FITS) become FIELDs; types VOTable lacks are widened', async () => {
  const cols = [
    columnInfo('i8', 'int8', { nullValue: -128 }),
    columnInfo('u16', 'uint16'),
    columnInfo('u32', 'uint32', { unit: 'count' }),
    columnInfo('u64', 'uint64', { description: 'an ID' }),
    columnInfo('name', 'string', { width: 20, display: 'A20' }),
    columnInfo('names', 'string', { width: 4, shape: [3] }),
    columnInfo('flux', 'float32', { display: 'E15.7', ucd: 'phot.flux' }),
    columnInfo('vla', 'float64', { variable: true }),
  ];
  assert.deepEqual(cols.map((c) => [columnToField(c).datatype, columnToField(c).arraysize]), [
    ['short', undefined], ['int', undefined], ['long', undefined], ['long', undefined],
    ['char', '20'], ['char', '4x3'], ['float', undefined], ['double', '*'],
  ]);
  assert.deepEqual(columnToField(cols[6]), { name: 'flux', datatype: 'float', width: '15', precision: 'E8', ucd: 'phot.flux' });
  const back = await votableToColumns(columnsToVOTable(cols, { name: 'T' }));
  assert.deepEqual(back.map((c) => c.type), ['int16', 'int32', 'int64', 'int64', 'string', 'string', 'float32', 'float64']);
  assert.equal(back[0].nullValue, -128);
  assert.equal(back[2].unit, 'count');
  assert.equal(back[3].description, 'an ID');
  assert.deepEqual([back[5].width, [...back[5].shape]], [4, [3]]);
  assert.equal(back[6].display, 'E15.7');
});

test('arraysize parsing, and typed errors naming the field for bad datatypes and arraysizes', async () => {
  assert.deepEqual(parseArraySize('3x4'), { dims: [3, 4], variable: false });
  assert.deepEqual(parseArraySize('10*'), { dims: [10], variable: true });
  assert.deepEqual(parseArraySize('3x*'), { dims: [3, 0], variable: true });
  assert.equal(parseArraySize(undefined), undefined);
  for (const t of ['3x4', '10*', '*', '3x*', '2x3x7*']) assert.equal(formatArraySize(parseArraySize(t)!), t);
  assert.throws(() => parseArraySize('*x3'), (e: unknown) => e instanceof VOTableError && e.code === 'votable_bad_arraysize');
  const bad = (field: string, code: string, pattern: RegExp) => assert.rejects(
    votableToColumns(`<VOTABLE><RESOURCE><TABLE name="T">\n${field}\n</TABLE></RESOURCE></VOTABLE>`),
    (e: unknown) => {
      assert.ok(e instanceof VOTableError, String(e));
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      return true;
    },
  );
  await bad('<FIELD name="x" datatype="integer"/>', 'votable_bad_datatype', /VOTable text: line 2: table T: field x: datatype "integer" is not a VOTable datatype/);
  await bad('<FIELD name="x" datatype="int" arraysize="3xx"/>', 'votable_bad_arraysize', /line 2: table T: field x: arraysize "3xx" is not valid/);
  await bad('<FIELD name="x"/>', 'votable_bad_field', /field x: FIELD "x" has no datatype/);
  await bad('<FIELD name="x" datatype="int"><VALUES null="none"/></FIELD>', 'votable_bad_null', /VALUES null="none" is not an integer/);
});

test('a FrameMeta schema file on disk is read the same as its text', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'FrameMeta.vot');
    await writeFile(path, FRAME_META);
    assert.deepEqual(await votableToColumns(path), await votableToColumns(await readFile(path, 'utf8')));
    await assert.rejects(votableToColumns(path, { table: 'Detection' }), /no table "Detection"; the document has FrameMeta/);
  });
});
