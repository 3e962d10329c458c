import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitsFile, verifyFits } from '../fits/index.ts';
import { collectTable } from '../table/index.ts';
import { fitsverify } from '../fits/testing/external.ts';
import { DEFECT_KINDS, parseDefects, simulateSurvey, type DefectRecord, type SurveyManifest } from './index.ts';

let root: string;
let dir: string;
let manifest: SurveyManifest;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ipp-sim-defects-'));
  dir = join(root, 'survey');
  manifest = (await simulateSurvey({
    out: dir, exposures: 6, stacks: 0, density: 0.02, seed: 3,
    injectDefects: 'truncated-smf,missing-chip,corrupt-keyword,nan-coords:2,duplicate-idet',
  })).manifest;
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const of = (kind: string): DefectRecord[] => manifest.defects.filter((d) => d.kind === kind);

test('each defect is recorded once per exposure asked for, on distinct exposures', () => {
  assert.deepEqual(manifest.defects.map((d) => d.kind).sort(), ['corrupt-keyword', 'duplicate-idet', 'missing-chip', 'nan-coords', 'nan-coords', 'truncated-smf']);
  assert.equal(new Set(manifest.defects.map((d) => d.exp_id)).size, 6);
  assert.deepEqual(manifest.arguments.inject_defects, [
    { kind: 'truncated-smf', count: 1 }, { kind: 'missing-chip', count: 1 }, { kind: 'corrupt-keyword', count: 1 },
    { kind: 'nan-coords', count: 2 }, { kind: 'duplicate-idet', count: 1 },
  ]);
});

test('truncated-smf: the file is cut inside the recorded chip\'s rows and readers say so', async () => {
  const [d] = of('truncated-smf');
  const path = join(dir, d.file);
  assert.equal((await stat(path)).size, d.truncated_bytes);
  assert.ok(d.truncated_bytes! < d.full_bytes! && d.truncated_bytes! % 2880 !== 0);
  const report = await verifyFits(path);
  assert.ok(report.errors > 0);
  assert.ok(report.problems.some((p) => p.code === 'fits_truncated'), JSON.stringify(report.problems.slice(0, 3)));
  assert.ok((await fitsverify(path)).errors > 0);
});

test('missing-chip: the chip has no header or table in the smf, and the manifest does not list it', async () => {
  const [d] = of('missing-chip');
  const e = manifest.exposures.find((x) => x.exp_id === d.exp_id)!;
  await using smf = await FitsFile.open(join(dir, d.file));
  const names = smf.hdus.map((h) => h.extname);
  assert.equal(smf.hdus.length, 1 + 2 * 59);
  assert.ok(!names.includes(`${d.chip}.hdr`) && !names.includes(`${d.chip}.psf`));
  assert.equal(smf.hdus[0].header.get('NEXTEND'), 118);
  assert.ok(!e.chips.some((c) => c.class_id === d.chip));
  assert.equal((await fitsverify(join(dir, d.file))).errors, 0);
});

test('corrupt-keyword: the recorded keyword holds the recorded text, which is not a number', async () => {
  const [d] = of('corrupt-keyword');
  assert.ok(d.keyword === 'MJD-OBS' || d.keyword === 'ZPT_OBS');
  await using smf = await FitsFile.open(join(dir, d.file));
  const h = smf.hdus[d.hdu!].header;
  assert.equal(h.get(d.keyword!), d.value);
  assert.throws(() => h.getNumber(d.keyword!), (e: Error & { code?: string }) => e.code === 'fits_bad_keyword');
  assert.ok(!Number.isFinite(Number(d.value)));
  // Only the card is damaged: the checksums still hold.
  assert.deepEqual(await smf.verifyChecksums(0), []);
  assert.ok((await fitsverify(join(dir, d.file))).errors > 0);
});

test('nan-coords: exactly the recorded rows have NaN RA_PSF and DEC_PSF', async () => {
  for (const d of of('nan-coords')) {
    await using smf = await FitsFile.open(join(dir, d.file));
    const t = await collectTable(smf.table(`${d.chip}.psf`), { columns: ['RA_PSF', 'DEC_PSF'] });
    const ra = t.columns[0].values as Float64Array;
    const dec = t.columns[1].values as Float64Array;
    const nan: number[] = [];
    for (let r = 0; r < t.rowCount; r++) {
      assert.equal(Number.isNaN(ra[r]), Number.isNaN(dec[r]));
      if (Number.isNaN(ra[r])) nan.push(r);
    }
    assert.deepEqual(nan, d.rows);
    assert.equal(d.rows!.length, 3);
  }
});

test('duplicate-idet: the recorded row repeats the IPP_IDET of the row before it', async () => {
  const [d] = of('duplicate-idet');
  await using smf = await FitsFile.open(join(dir, d.file));
  const t = await collectTable(smf.table(`${d.chip}.psf`), { columns: ['IPP_IDET'] });
  const idet = t.columns[0].values as Uint32Array;
  const [row] = d.rows!;
  assert.equal(idet[row], d.idet);
  assert.equal(idet[row - 1], d.idet);
  const seen = new Set<number>();
  let repeats = 0;
  for (const v of idet) {
    if (seen.has(v)) repeats++;
    seen.add(v);
  }
  assert.equal(repeats, 1);
});

test('defect lists are parsed strictly', () => {
  assert.deepEqual(parseDefects('nan-coords:3, missing-chip'), [{ kind: 'nan-coords', count: 3 }, { kind: 'missing-chip', count: 1 }]);
  for (const bad of ['bit-rot', 'nan-coords:0', 'nan-coords:x', 'nan-coords:1:2', 'missing-chip,missing-chip']) {
    assert.throws(() => parseDefects(bad), (e: Error & { code?: string }) => e.code === 'sim_bad_defect', bad);
  }
  assert.equal(DEFECT_KINDS.length, 5);
});
