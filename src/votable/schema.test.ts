import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PSPS_SCHEMA_DIR } from '../common/paths.ts';
import { VOTableError, readTableSchemas, schemaFileMd5 } from './index.ts';

const doc = (tables: string): string => `<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE>
${tables}
</RESOURCE></VOTABLE>
`;
const GOOD_TABLE = `<TABLE name="T">
  <DESCRIPTION>a  test
   table</DESCRIPTION>
  <PARAM name="primaryKey" datatype="char" arraysize="*" value="id"/>
  <PARAM name="references" datatype="char" arraysize="*" value="obj O.objID; img I.imageID"/>
  <PARAM name="merge" datatype="char" arraysize="*" value="keep"/>
  <FIELD name="id" datatype="long"><VALUES><MIN value="0"/></VALUES></FIELD>
  <FIELD name="obj" datatype="long"><VALUES null="-999"/></FIELD>
  <FIELD name="img" datatype="int"/>
  <FIELD name="ra" datatype="double" unit="degrees"><DESCRIPTION>Right ascension.</DESCRIPTION><VALUES null="-999"><MIN value="0" inclusive="yes"/><MAX value="360" inclusive="no"/></VALUES></FIELD>
  <FIELD name="name" datatype="char" arraysize="8"><VALUES null="none"/></FIELD>
  <FIELD name="flag" datatype="unsignedByte"><VALUES null="255"/></FIELD>
  <FIELD name="ok" datatype="boolean"><VALUES null="F"/></FIELD>
</TABLE>`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'schema-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the four archive schema files read, with keys, references, merge modes and defaults', async () => {
  const expected: Record<string, string[]> = {
    IN: ['Filter', 'Survey', 'PhotoCal', 'DetectionFlags', 'DetectionFlags2', 'ObjectQualityFlags'],
    P2: ['FrameMeta', 'ImageMeta', 'Detection', 'ObjectThin'],
    ST: ['StackMeta', 'StackToImage', 'StackObjectThin', 'ObjectThin'],
    OB: ['ObjectThin', 'MeanObject'],
  };
  for (const [type, names] of Object.entries(expected)) {
    const tables = await readTableSchemas(join(PSPS_SCHEMA_DIR, `${type}.xml`));
    assert.deepEqual(tables.map((t) => t.name), names, type);
    for (const t of tables) {
      assert.ok(t.primaryKey.length > 0);
      for (const c of t.columns) {
        assert.equal(c.nullValue, undefined, `${t.name}.${c.name}: a default is not a null`);
        assert.equal(c.required, c.defaultValue === undefined);
      }
    }
  }
  const p2 = await readTableSchemas(join(PSPS_SCHEMA_DIR, 'P2.xml'));
  const det = p2.find((t) => t.name === 'Detection')!;
  assert.deepEqual(det.primaryKey, ['detectID']);
  assert.deepEqual(det.references[0], { column: 'objID', table: 'ObjectThin', targetColumn: 'objID' });
  const ra = det.columns.find((c) => c.name === 'ra')!;
  assert.equal(ra.type, 'float64');
  assert.equal(ra.min, 0);
  assert.equal(ra.max, 360);
  assert.equal(ra.required, true);
  assert.equal(det.columns.find((c) => c.name === 'psfFlux')!.defaultValue, -999);
  assert.equal(det.columns.find((c) => c.name === 'extNSigma')!.defaultValue, 0);
  assert.equal(p2.find((t) => t.name === 'ObjectThin')!.merge, 'keep');
  const ob = await readTableSchemas(join(PSPS_SCHEMA_DIR, 'OB.xml'));
  assert.equal(ob[0].merge, 'replace');
  // The same ObjectThin columns wherever the table appears.
  assert.deepEqual(ob[0].columns.map((c) => `${c.name}:${c.type}`), p2[3].columns.map((c) => `${c.name}:${c.type}`));
});

test('a schema file reads every FIELD attribute the archive needs', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'good.xml');
    await writeFile(path, doc(GOOD_TABLE));
    const [t] = await readTableSchemas(path);
    assert.equal(t.description, 'a test table');
    assert.deepEqual(t.primaryKey, ['id']);
    assert.deepEqual(t.references, [
      { column: 'obj', table: 'O', targetColumn: 'objID' }, { column: 'img', table: 'I', targetColumn: 'imageID' },
    ]);
    assert.equal(t.merge, 'keep');
    const by = Object.fromEntries(t.columns.map((c) => [c.name, c]));
    assert.equal(by.id.required, true);
    assert.equal(by.id.min, 0);
    assert.equal(by.obj.defaultValue, -999n);
    assert.equal(by.img.required, true);
    assert.equal(by.ra.defaultValue, -999);
    assert.equal(by.ra.unit, 'degrees');
    assert.equal(by.ra.description, 'Right ascension.');
    assert.equal(by.ra.maxInclusive, false);
    assert.equal(by.ra.minInclusive, true);
    assert.equal(by.name.type, 'string');
    assert.equal(by.name.width, 8);
    assert.equal(by.name.defaultValue, 'none');
    assert.equal(by.flag.defaultValue, 255);
    assert.equal(by.ok.defaultValue, false);
  });
});

test('bad schema files are refused with a VOTableError naming file, table and field', async () => {
  const cases: [string, string, RegExp][] = [
    ['unknown datatype', GOOD_TABLE.replace('name="img" datatype="int"', 'name="img" datatype="integer"'), /bad\.xml: line \d+: table T: field img: datatype "integer"/],
    ['complex datatype', GOOD_TABLE.replace('name="img" datatype="int"', 'name="img" datatype="floatComplex"'), /field img: datatype "floatComplex" cannot be an archive column/],
    ['char without width', GOOD_TABLE.replace('arraysize="8"', ''), /field name: a char column needs arraysize/],
    ['array of numbers', GOOD_TABLE.replace('name="img" datatype="int"', 'name="img" datatype="int" arraysize="3"'), /field img: arraysize "3"/],
    ['key naming a missing column', GOOD_TABLE.replace('value="id"', 'value="id,nope"'), /table T: field primaryKey: primary key column "nope" is not a FIELD/],
    ['no key', GOOD_TABLE.replace(/<PARAM name="primaryKey"[^>]*>/, ''), /table T: has no primaryKey PARAM/],
    ['bad merge', GOOD_TABLE.replace('value="keep"', 'value="upsert"'), /field merge: merge "upsert" is not one of insert, replace, keep/],
    ['bad reference text', GOOD_TABLE.replace('obj O.objID', 'obj O'), /"obj O" is not "column Table.column"/],
    ['reference from a missing column', GOOD_TABLE.replace('obj O.objID', 'nope O.objID'), /reference column "nope" is not a FIELD/],
    ['default not a number', GOOD_TABLE.replace('null="-999"/>', 'null="none"/>'), /field obj: VALUES null="none" is not an integer/],
    ['default too wide', GOOD_TABLE.replace('null="255"', 'null="256"'), /field flag: VALUES null="256" does not fit a uint8/],
    ['string default too long', GOOD_TABLE.replace('null="none"', 'null="far too long"'), /field name: VALUES null="far too long" is longer/],
    ['range not a number', GOOD_TABLE.replace('<MIN value="0"/>', '<MIN value="zero"/>'), /field id: MIN value="zero" is not a number/],
    ['MIN above MAX', GOOD_TABLE.replace('value="360"', 'value="-1"'), /field ra: MIN 0 is above MAX -1/],
    ['range on a string', GOOD_TABLE.replace('<VALUES null="none"/>', '<VALUES><MIN value="1"/></VALUES>'), /field name: MIN on a char column/],
    ['duplicate field', GOOD_TABLE.replace('name="img"', 'name="obj"'), /field obj: field obj appears twice/],
    ['table without name', GOOD_TABLE.replace('<TABLE name="T">', '<TABLE>'), /a TABLE has no name/],
    ['table with data', GOOD_TABLE.replace('</TABLE>', '<DATA><TABLEDATA/></DATA></TABLE>'), /table T: holds DATA/],
  ];
  await withDir(async (dir) => {
    const path = join(dir, 'bad.xml');
    for (const [what, table, message] of cases) {
      await writeFile(path, doc(table));
      await assert.rejects(readTableSchemas(path), (e: unknown) => {
        assert.ok(e instanceof VOTableError, `${what}: ${String(e)}`);
        assert.match(e.message, message, what);
        assert.match(e.code, /^votable_/);
        return true;
      }, what);
    }
    await writeFile(path, doc(`${GOOD_TABLE}\n${GOOD_TABLE}`));
    await assert.rejects(readTableSchemas(path), /table T is described twice/);
    await writeFile(path, doc(''));
    await assert.rejects(readTableSchemas(path), /describes no TABLE/);
    await writeFile(path, '<?xml version="1.0"?>\n<RESOURCE><TABLE name="x"/></RESOURCE>');
    await assert.rejects(readTableSchemas(path), /not <VOTABLE>/);
    await writeFile(path, doc(GOOD_TABLE).replace('</TABLE>', '</TABEL>'));
    await assert.rejects(readTableSchemas(path), (e: unknown) => e instanceof VOTableError && e.code === 'votable_bad_xml' && /line \d+/.test(e.message));
    await assert.rejects(readTableSchemas(join(dir, 'missing.xml')), (e: unknown) => e instanceof VOTableError && e.code === 'votable_cannot_open');
  });
});

test('schemaFileMd5 is the md5 of the file bytes', async () => {
  const path = join(PSPS_SCHEMA_DIR, 'P2.xml');
  const expected = execFileSync('md5sum', [path], { encoding: 'utf8' }).split(' ')[0];
  assert.equal(await schemaFileMd5(path), expected);
  await assert.rejects(schemaFileMd5(join(PSPS_SCHEMA_DIR, 'none.xml')), VOTableError);
});
