import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PSPS_SCHEMA_DIR, PYTHON } from '../../common/index.ts';
import type { Database } from '../../db/index.ts';
import { addstar, exportBox, listRegions, openScratch } from '../../dvo/index.ts';
import { FitsFile } from '../../fits/index.ts';
import { openGpc1 } from '../../gpc1/index.ts';
import { recordSurveyInGpc1, simulateSurvey, type SurveyManifest } from '../../sim/index.ts';
import { collectTable } from '../../table/index.ts';
import { IppToPspsError } from '../errors.ts';
import {
  buildInBatch, buildObBatch, buildP2Batch, buildStBatch, perImageLookup, scratchLookup,
  type BatchContext, type BuiltBatch, type DetectionIds, type DetectionLookup,
} from './index.ts';

const run = promisify(execFile);
const CHECK = join(import.meta.dirname, 'batch-check.py');

let root = '';
let survey = '';
let dvo = '';
let m: SurveyManifest;
let bad: SurveyManifest;
let badDir = '';
let badDvo = '';
let seq = 0;
let gpc1: Database | undefined;

const ctxIn = (dir: string, extra: Partial<BatchContext> = {}): BatchContext => ({
  name: `B${String(++seq).padStart(8, '0')}`, config: 'testcfg', product: 'PSPS_test', outDir: dir, ...extra,
});

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'batch-test-'));
  survey = join(root, 'survey');
  dvo = join(root, 'dvo');
  await mkdir(survey);
  ({ manifest: m } = await simulateSurvey({ out: survey, exposures: 2, stacks: 1, density: 0.04, seed: 11 }));
  const files = [...m.exposures.map((e) => join(survey, e.smf)), ...m.stacks.map((s) => join(survey, s.cmf))];
  const r = await addstar(dvo, files, { create: { maxObjects: 5000 } });
  assert.ok(r.files.every((f) => f.status === 'ingested'));
  gpc1 = await openGpc1(`sqlite:${join(root, 'gpc1.db')}`);
  await recordSurveyInGpc1(gpc1, survey, m, { label: 'sim.batch' });
  badDir = join(root, 'bad');
  await mkdir(badDir);
  ({ manifest: bad } = await simulateSurvey({
    out: badDir, exposures: 5, stacks: 0, density: 0.02, seed: 3,
    injectDefects: 'truncated-smf,corrupt-keyword,nan-coords,duplicate-idet',
  }));
  // Its own DVO: addstar refuses the damaged catalogues (their IMAGEIDs would collide with the good survey's).
  badDvo = join(root, 'bad-dvo');
  await addstar(badDvo, bad.exposures.map((e) => join(badDir, e.smf)), { create: { maxObjects: 5000 } });
});

after(async () => {
  await gpc1?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function fitsverify(path: string): Promise<void> {
  const { stdout } = await run('fitsverify', [path]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? String(e) }));
  assert.match(stdout, /Verification found 0 warning\(s\) and 0 error\(s\)/, stdout);
}

async function stiltsRows(path: string, hdu: number): Promise<number> {
  const { stdout } = await run('stilts', ['tcopy', `in=${path}#${hdu}`, 'out=-', 'ofmt=csv'], { maxBuffer: 1 << 28 });
  return stdout.trim().split('\n').length - 1;
}

async function astropyRows(path: string): Promise<Record<string, number>> {
  const script = 'import sys, json\nfrom astropy.io import fits\nh = fits.open(sys.argv[1])\nprint(json.dumps({x.header[\'EXTNAME\']: len(x.data) for x in h[1:]}))';
  const { stdout } = await run(PYTHON, ['-c', script, path]);
  return JSON.parse(stdout) as Record<string, number>;
}

/** Every batch type: fitsverify clean, astropy and STILTS read every table, the manifest agrees. */
async function checkReaders(b: BuiltBatch): Promise<void> {
  await fitsverify(b.fitsPath);
  const rows = await astropyRows(b.fitsPath);
  assert.deepEqual(Object.keys(rows), b.tables.map((t) => t.name));
  b.tables.forEach((t) => assert.equal(rows[t.name], t.rows, t.name));
  for (let i = 0; i < b.tables.length; i++) assert.equal(await stiltsRows(b.fitsPath, i + 1), b.tables[i].rows, `STILTS ${b.tables[i].name}`);
  const manifest = JSON.parse(await readFile(b.manifestPath, 'utf8'));
  const bytes = await readFile(b.fitsPath);
  assert.equal(manifest.format, 'ipptopsps-batch');
  assert.equal(manifest.batch, b.name);
  assert.equal(manifest.type, b.type);
  assert.deepEqual(manifest.tables, b.tables);
  assert.deepEqual(manifest.files, [{ name: `${b.name}.fits`, bytes: bytes.length, md5: createHash('md5').update(bytes).digest('hex') }]);
  const schemaMd5 = createHash('md5').update(await readFile(join(PSPS_SCHEMA_DIR, `${b.type}.xml`))).digest('hex');
  assert.deepEqual(manifest.schema, { file: `${b.type}.xml`, md5: schemaMd5 });
  const f = await FitsFile.open(b.fitsPath);
  try {
    const h = f.hdus[0].header;
    assert.equal(h.get('BATCH'), b.name);
    assert.equal(h.get('BATCHTYP'), b.type);
    assert.equal(h.get('CONFIG'), 'testcfg');
    assert.equal(h.get('SCHEMA'), `${b.type}.xml ${schemaMd5}`);
    assert.deepEqual(f.hdus.slice(1).map((x) => x.extname), b.tables.map((t) => t.name));
  } finally {
    await f.close();
  }
}

async function pyCheck(args: string[]): Promise<{ rows: number; errors: string[] } & Record<string, unknown>> {
  const { stdout } = await run(PYTHON, [CHECK, ...args], { maxBuffer: 1 << 26 });
  return JSON.parse(stdout);
}

test('P2: an exposure\'s batch equals its smf after the documented conversions, objIDs are DVO\'s, readers agree', async () => {
  const out = join(root, 'p2');
  const e = m.exposures[0];
  const b = await buildP2Batch(ctxIn(out), { smfPath: join(survey, e.smf), camId: 7, expId: e.exp_id, dvoDir: dvo, lookup: perImageLookup(dvo) });
  assert.equal(b.type, 'P2');
  assert.deepEqual(b.tables.map((t) => t.name), ['FrameMeta', 'ImageMeta', 'Detection', 'ObjectThin']);
  assert.equal(b.tables[1].rows, 60);
  assert.equal(b.mainRows, e.n_detections);
  assert.deepEqual(b.warnings, []);
  await checkReaders(b);
  const r = await pyCheck(['p2', join(survey, e.smf), b.fitsPath, dvo, String(e.exp_id)]);
  assert.deepEqual(r.errors, []);
  assert.equal(r.rows, e.n_detections);
  assert.equal(r.chips, 60);
});

test('P2 with the scratch-database look-up (box pre-ingest) gives the same rows as the per-image look-up', async () => {
  const e = m.exposures[1];
  const src = { smfPath: join(survey, e.smf), camId: 8, expId: e.exp_id, dvoDir: dvo };
  const a = await buildP2Batch(ctxIn(join(root, 'p2a')), { ...src, lookup: perImageLookup(dvo) });
  const url = `sqlite:${join(root, 'scratch.db')}`;
  await exportBox(dvo, { raMin: e.ra - 3, raMax: e.ra + 3, decMin: e.dec - 3, decMax: e.dec + 3 }, url);
  const scratch = await openScratch(url);
  let b: BuiltBatch;
  try {
    b = await buildP2Batch(ctxIn(join(root, 'p2b')), { ...src, lookup: scratchLookup(scratch) });
  } finally {
    await scratch.close();
  }
  assert.deepEqual(b.tables, a.tables);
  const fa = await FitsFile.open(a.fitsPath);
  const fb = await FitsFile.open(b.fitsPath);
  try {
    for (const name of ['Detection', 'ObjectThin']) {
      const ta = await collectTable(fa.table(name));
      const tb = await collectTable(fb.table(name));
      ta.columns.forEach((c, i) => assert.deepEqual(tb.columns[i].values, c.values, `${name} column ${i}`));
    }
  } finally {
    await fa.close();
    await fb.close();
  }
});

/** The gpc1 stack_id of a manifest stack: the stack run whose skycal result names its cmf. */
async function gpc1StackId(cmf: string): Promise<number> {
  const row = await gpc1!.get<{ stack_id: number }>(
    'SELECT k.stack_id FROM skycalRun k JOIN skycalResult r ON r.skycal_id = k.skycal_id WHERE r.path_base = ?', [join(survey, cmf)]);
  assert.ok(row, `gpc1 has the stack of ${cmf}`);
  return Number(row.stack_id);
}

test('ST: a stack\'s batch equals its cmf (its filter\'s columns), DVO, and gpc1 (StackToImage)', async () => {
  const s = m.stacks[0];
  const stackId = await gpc1StackId(s.cmf);
  const b = await buildStBatch(ctxIn(join(root, 'st')), { cmfPath: join(survey, s.cmf), stackId, dvoDir: dvo, lookup: perImageLookup(dvo), gpc1 });
  assert.deepEqual(b.tables.map((t) => t.name), ['StackMeta', 'StackToImage', 'StackObjectThin', 'ObjectThin']);
  assert.ok(b.mainRows > 0);
  assert.deepEqual(b.warnings, []);
  await checkReaders(b);
  const r = await pyCheck(['st', join(survey, s.cmf), b.fitsPath, dvo, String(stackId)]);
  assert.deepEqual(r.errors, []);
  assert.equal(r.rows, b.mainRows);
  assert.equal(r.filter, s.filter);
  // StackToImage, independently: gpc1's chain from the stack to its exposures and the chips
  // mapped to its skycell, joined here in one query; imageID = 100 × exp_id + OTA number.
  const want = (await gpc1!.all<{ exp_id: number; class_id: string }>(
    `SELECT DISTINCT c.exp_id, m.class_id FROM stackRun s
     JOIN stackInputSkyfile i ON i.stack_id = s.stack_id JOIN warpRun w ON w.warp_id = i.warp_id
     JOIN fakeRun f ON f.fake_id = w.fake_id JOIN camRun k ON k.cam_id = f.cam_id JOIN chipRun c ON c.chip_id = k.chip_id
     JOIN warpSkyCellMap m ON m.warp_id = w.warp_id AND m.skycell_id = s.skycell_id AND m.tess_id = s.tess_id
     WHERE s.stack_id = ?`, [stackId]))
    .map((x) => 100 * Number(x.exp_id) + Number(x.class_id.slice(2))).sort((x, y) => x - y);
  assert.ok(want.length > s.input_exp_ids.length, 'the stack has several chips per exposure');
  assert.deepEqual(r.images, want);
  const f = await FitsFile.open(b.fitsPath);
  try {
    const t = await collectTable(f.table('StackToImage'));
    assert.deepEqual([...t.columns[0].values as BigInt64Array], want.map(() => BigInt(stackId)));
    assert.deepEqual([...t.columns[1].values as BigInt64Array].map(Number), want);
  } finally {
    await f.close();
  }
  // Its exposures are the manifest's inputs of the stack.
  assert.deepEqual([...new Set(want.map((x) => Math.floor(x / 100)))], [...s.input_exp_ids].sort((x, y) => x - y));
  assert.equal(b.tables.find((t) => t.name === 'StackToImage')!.rows, want.length);
});

test('ST: a stack whose inputs gpc1 cannot give fails naming the stack and the missing link; without gpc1 the table is empty with a warning', async () => {
  const s = m.stacks[0];
  const out = join(root, 'st-fail');
  await mkdir(out);
  const src = { cmfPath: join(survey, s.cmf), dvoDir: dvo, lookup: perImageLookup(dvo) };
  await expectFailure(out, buildStBatch(ctxIn(out), { ...src, stackId: 987654, gpc1 }), 'batch_stack_inputs', /table StackToImage: stack_id 987654: gpc1 has no such stack run/);
  // A damaged copy of gpc1: one input warp lost its map entries for the stack's skycell, then its exposure.
  const stackId = await gpc1StackId(s.cmf);
  const copy = await openGpc1(`sqlite:${join(root, 'gpc1-damaged.db')}`);
  try {
    await recordSurveyInGpc1(copy, survey, m, { label: 'sim.batch' });
    const warp = await copy.get<{ warp_id: number }>('SELECT MIN(warp_id) AS warp_id FROM stackInputSkyfile WHERE stack_id = ?', [stackId]);
    const w = Number(warp!.warp_id);
    await copy.run('DELETE FROM warpSkyCellMap WHERE warp_id = ? AND skycell_id = ?', [w, s.skycell]);
    await expectFailure(out, buildStBatch(ctxIn(out), { ...src, stackId, gpc1: copy }), 'batch_stack_inputs',
      new RegExp(`stack_id ${stackId}: input warp_id ${w} \\(exp_id \\d+\\) has no chip mapped to RINGS\\.V3 ${s.skycell.replace(/\./g, '\\.')} in warpSkyCellMap`));
    await copy.run('UPDATE warpRun SET fake_id = NULL WHERE warp_id = ?', [w]);
    await expectFailure(out, buildStBatch(ctxIn(out), { ...src, stackId, gpc1: copy }), 'batch_stack_inputs',
      new RegExp(`stack_id ${stackId}: input warp_id ${w} leads to no exposure`));
    await copy.run('DELETE FROM stackInputSkyfile WHERE stack_id = ?', [stackId]);
    await expectFailure(out, buildStBatch(ctxIn(out), { ...src, stackId, gpc1: copy }), 'batch_stack_inputs', /lists no input warps/);
  } finally {
    await copy.close();
  }
  const b = await buildStBatch(ctxIn(join(root, 'st-no-gpc1')), { ...src, stackId });
  assert.equal(b.tables.find((t) => t.name === 'StackToImage')!.rows, 0);
  assert.deepEqual(b.warnings, ['no gpc1 given: table StackToImage written empty']);
  await fitsverify(b.fitsPath);
});

test('OB: a region\'s batch equals the DVO region files; IN carries the system tables', async () => {
  const regions = (await listRegions(dvo)).filter((x) => x.objects > 0);
  assert.ok(regions.length > 0);
  const region = regions[0];
  const b = await buildObBatch(ctxIn(join(root, 'ob')), { dvoDir: dvo, regionIndex: region.index });
  assert.deepEqual(b.tables.map((t) => t.name), ['ObjectThin', 'MeanObject']);
  assert.equal(b.mainRows, region.objects);
  await checkReaders(b);
  const r = await pyCheck(['ob', dvo, region.name, b.fitsPath]);
  assert.deepEqual(r.errors, []);
  assert.equal(r.rows, region.objects);
  const i = await buildInBatch(ctxIn(join(root, 'in')), { dvoDir: dvo });
  assert.deepEqual(i.tables.map((t) => t.name), ['Filter', 'Survey', 'PhotoCal', 'DetectionFlags', 'DetectionFlags2', 'ObjectQualityFlags']);
  assert.equal(i.tables[0].rows, 5);
  assert.equal(i.mainRows, i.tables.reduce((n, t) => n + t.rows, 0));
  await checkReaders(i);
});

test('test mode: only OTA 33', async () => {
  const e = m.exposures[0];
  const b = await buildP2Batch(ctxIn(join(root, 'test'), { test: true }), { smfPath: join(survey, e.smf), camId: 7, expId: e.exp_id, dvoDir: dvo, lookup: perImageLookup(dvo) });
  assert.equal(b.tables[1].rows, 1);
  assert.equal(b.mainRows, e.chips.find((c) => c.class_id === 'XY33')!.n_detections);
  const f = await FitsFile.open(b.fitsPath);
  try {
    const img = await collectTable(f.table('ImageMeta'), { columns: ['ccdID'] });
    assert.deepEqual([...img.columns[0].values as Int16Array], [33]);
  } finally {
    await f.close();
  }
});

// A look-up that knows every IPP_IDET below 2^20 of every image (IDs built like DVO's), for
// catalogues DVO refused: it lets validation itself meet the damage.
const everything: DetectionLookup = async (imageId: number): Promise<DetectionIds> => {
  const n = 1 << 16;
  const ippIdet = Uint32Array.from({ length: n }, (_, i) => i);
  const detectId = new BigInt64Array(n);
  const objId = new BigInt64Array(n);
  const d = new Uint32Array(detectId.buffer);
  const o = new Uint32Array(objId.buffer);
  for (let i = 0; i < n; i++) {
    d[2 * i] = i; d[2 * i + 1] = imageId;
    o[2 * i] = i; o[2 * i + 1] = imageId + (1 << 24);
  }
  return { ippIdet, detectId, objId };
};

async function expectFailure(dir: string, p: Promise<unknown>, code: string | RegExp, message: RegExp): Promise<IppToPspsError> {
  let caught: unknown;
  await p.catch((e: unknown) => { caught = e; });
  assert.ok(caught instanceof IppToPspsError, `expected an IppToPspsError, got ${String(caught)}`);
  if (typeof code === 'string') assert.equal(caught.code, code, caught.message);
  else assert.match(caught.code, code, caught.message);
  assert.match(caught.message, message);
  // No output and no temporary files left behind.
  const left = await readdir(dir).catch(() => []);
  assert.deepEqual(left, []);
  return caught;
}

test('damaged smf files fail with typed errors naming file, chip, column and row; nothing is left behind', async () => {
  const d = (kind: string) => bad.defects.find((x) => x.kind === kind)!;
  const e = (kind: string) => bad.exposures.find((x) => x.exp_id === d(kind).exp_id)!;
  const out = join(root, 'fail');
  await mkdir(out);
  const src = (kind: string, lookup: DetectionLookup = everything) => ({ smfPath: join(badDir, e(kind).smf), camId: 1, expId: e(kind).exp_id, dvoDir: dvo, lookup });
  const smfName = (kind: string) => join(badDir, e(kind).smf).replace(/[.]/g, '\\.');

  await expectFailure(out, buildP2Batch(ctxIn(out), src('truncated-smf')), 'batch_bad_source', new RegExp(`${smfName('truncated-smf')}.*fits_truncated`));
  const ck = d('corrupt-keyword');
  await expectFailure(out, buildP2Batch(ctxIn(out), src('corrupt-keyword')), 'batch_bad_keyword', new RegExp(`${smfName('corrupt-keyword')}: primary header \\(HDU 0\\): keyword ${ck.keyword}`));
  const nan = d('nan-coords');
  await expectFailure(out, buildP2Batch(ctxIn(out), src('nan-coords')), 'batch_missing_value',
    new RegExp(`${smfName('nan-coords')}: ${nan.chip}\\.psf \\(HDU ${nan.hdu}\\): table Detection: column (ra|dec): row ${nan.rows![0] + 1} \\(IPP_IDET \\d+\\)`));
  const dup = d('duplicate-idet');
  await expectFailure(out, buildP2Batch(ctxIn(out), src('duplicate-idet')), 'batch_duplicate_key',
    new RegExp(`${smfName('duplicate-idet')}: ${dup.chip}\\.psf .*table Detection: column detectID: row ${dup.rows![0] + 1} \\(IPP_IDET ${dup.idet}\\): key \\d+ repeats row ${dup.idet! + 1}`));
  // The real DVO refused the damaged catalogues: their images are unknown to it.
  await expectFailure(out, buildP2Batch(ctxIn(out), src('nan-coords', perImageLookup(badDvo))), 'batch_dvo_failed', /IMAGEID \d+ is not in/);
  // Test mode tolerates what it lists: the damaged rows, the detections DVO lacks.
  const t = await buildP2Batch(ctxIn(join(root, 'tolerant'), { test: true }), { ...src('nan-coords', perImageLookup(badDvo)), dvoDir: badDvo });
  assert.equal(t.mainRows, 0);
  assert.match(t.warnings.join('\n'), /test mode/);
  const good = m.exposures[0];
  await expectFailure(out, buildP2Batch(ctxIn(out), { ...src('nan-coords'), smfPath: join(survey, good.smf), lookup: async () => ({ ippIdet: new Uint32Array(0), detectId: new BigInt64Array(0), objId: new BigInt64Array(0) }) }),
    'batch_unknown_object', /table Detection: column objID: row 1 \(IPP_IDET 0\): DVO .* has no detection IPP_IDET 0/);
  await expectFailure(out, buildP2Batch(ctxIn(out), { ...src('nan-coords'), smfPath: join(root, 'none.smf') }), 'batch_bad_source', /none\.smf.*cannot open/);
  await expectFailure(out, buildP2Batch({ ...ctxIn(out), name: 'batch1' }, src('nan-coords')), 'batch_bad_name', /B followed by 8 digits/);
  const aborted = AbortSignal.abort();
  let caught: unknown;
  await buildP2Batch(ctxIn(out, { signal: aborted }), { ...src('nan-coords'), smfPath: join(survey, good.smf), lookup: perImageLookup(dvo) }).catch((x: unknown) => { caught = x; });
  assert.ok(caught !== undefined);
  assert.deepEqual(await readdir(out), []);
});

test('a schema change: a new column with a default is filled, a new required one the builder cannot fill fails clearly', async () => {
  const schemaDir = join(root, 'schema');
  await mkdir(schemaDir);
  for (const f of ['IN.xml', 'P2.xml', 'ST.xml', 'OB.xml']) await copyFile(join(PSPS_SCHEMA_DIR, f), join(schemaDir, f));
  const p2 = await readFile(join(schemaDir, 'P2.xml'), 'utf8');
  const extra = '<FIELD name="newThing" datatype="short"><DESCRIPTION>added</DESCRIPTION><VALUES null="-7"/></FIELD>\n      </TABLE>';
  await writeFile(join(schemaDir, 'P2.xml'), p2.replace('</TABLE>', extra));
  const e = m.exposures[0];
  const src = { smfPath: join(survey, e.smf), camId: 7, expId: e.exp_id, dvoDir: dvo, lookup: perImageLookup(dvo) };
  const b = await buildP2Batch(ctxIn(join(root, 'schema-out'), { schemaDir, test: true }), src);
  const f = await FitsFile.open(b.fitsPath);
  try {
    const fm = await collectTable(f.table('FrameMeta'), { columns: ['newThing'] });
    assert.deepEqual([...fm.columns[0].values as Int16Array], [-7]);
  } finally {
    await f.close();
  }
  await writeFile(join(schemaDir, 'P2.xml'), p2.replace('</TABLE>', '<FIELD name="mustHave" datatype="int"/>\n      </TABLE>'));
  const out = join(root, 'schema-fail');
  await expectFailure(out, buildP2Batch(ctxIn(out, { schemaDir, test: true }), src), 'batch_required_column', /table FrameMeta: column mustHave is required by the schema/);
  await writeFile(join(schemaDir, 'P2.xml'), p2.replace('datatype="int"', 'datatype="integer"'));
  await expectFailure(out, buildP2Batch(ctxIn(out, { schemaDir, test: true }), src), 'batch_bad_schema', /P2\.xml: line \d+: table FrameMeta: field frameID: datatype "integer"/);
});
