import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FitsFile } from '../fits/index.ts';
import { collectTable, getCell } from '../table/index.ts';
import { runPython } from '../common/index.ts';
import { fitsverify } from '../fits/testing/external.ts';
import {
  CMF_PS1_SV2, CMF_PS1_V5, MANIFEST_FILE, readSurveyManifest, simulateSurvey, type SurveyManifest,
} from './index.ts';

// One small survey (3 exposures, 2 stacks, a sparse sky) shared by the tests below.
const ARGS = { exposures: 3, stacks: 2, density: 0.03, seed: 7 } as const;
let root: string;
let dir: string;
let manifest: SurveyManifest;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ipp-sim-'));
  dir = join(root, 'survey');
  manifest = (await simulateSurvey({ out: dir, ...ARGS })).manifest;
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function files(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(d, join(e.parentPath, e.name)));
  }
  return out.sort();
}

async function hashes(d: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await files(d)) out[f] = createHash('sha256').update(await readFile(join(d, f))).digest('hex');
  return out;
}

test('the survey directory holds the smf, cmf and truth files the manifest lists, and nothing half-written', async () => {
  const listed = [
    MANIFEST_FILE, manifest.sky.objects,
    ...manifest.exposures.flatMap((e) => [e.smf, e.truth]),
    ...manifest.stacks.flatMap((s) => [s.cmf, s.truth]),
  ].sort();
  assert.deepEqual(await files(dir), listed);
  assert.deepEqual((await readdir(root)).sort(), ['survey']);
  const again = await readSurveyManifest(dir);
  assert.deepEqual(again, manifest);
  assert.equal(manifest.exposures.length, 3);
  assert.equal(manifest.stacks.length, 2);
  assert.ok(manifest.exposures.some((e) => e.survey === 'MD') && manifest.exposures.some((e) => e.survey === '3PI'));
  for (const e of manifest.exposures) {
    assert.equal(e.chips.length, 60);
    assert.equal(e.n_detections, e.chips.reduce((n, c) => n + c.n_detections, 0));
    assert.ok(e.n_detections > 1000, `${e.exp_name} has ${e.n_detections} detections`);
  }
});

test('every smf and cmf passes fitsverify without warnings', async () => {
  for (const f of [...manifest.exposures.map((e) => e.smf), ...manifest.stacks.map((s) => s.cmf), manifest.sky.objects]) {
    const r = await fitsverify(join(dir, f));
    assert.equal(r.errors + r.warnings, 0, `${f}:\n${r.output.slice(-3000)}`);
  }
});

test('astropy reads every catalogue with the layouts\' columns, EXTTYPE and row counts', async () => {
  const paths = [...manifest.exposures.map((e) => e.smf), ...manifest.stacks.map((s) => s.cmf)].map((f) => join(dir, f));
  const script = `
import sys, json, warnings
warnings.simplefilter('ignore')
from astropy.io import fits
out = {}
for path in sys.argv[1:]:
    with fits.open(path) as hdul:
        hdus = []
        for h in hdul:
            table = isinstance(h, fits.BinTableHDU)
            hdus.append({'name': h.name, 'exttype': h.header.get('EXTTYPE'), 'columns': list(h.columns.names) if table else None,
                         'rows': h.header['NAXIS2'] if table else None, 'filter': hdul[0].header.get('FPA.FILTER')})
        # Decode the largest table's rows: astropy must read the values, not only the headers.
        big = max((h for h in hdul if isinstance(h, fits.BinTableHDU)), key=lambda h: h.header['NAXIS2'])
        assert len(big.data) == big.header['NAXIS2'] and abs(float(big.data['RA_PSF'].mean()) - hdul[0].header.get('RA', big.data['RA_PSF'].mean())) < 3
        out[path] = hdus
json.dump(out, sys.stdout)
`;
  const seen = JSON.parse(await runPython(script, paths)) as Record<string, { name: string; exttype: string | null; columns: string[] | null; rows: number | null; filter: string | null }[]>;
  for (const e of manifest.exposures) {
    const hdus = seen[join(dir, e.smf)];
    assert.equal(hdus.length, 1 + 2 * 60);
    assert.equal(hdus[0].filter, e.filter);
    e.chips.forEach((c, i) => {
      const head = hdus[1 + 2 * i];
      const table = hdus[2 + 2 * i];
      assert.deepEqual([head.name, head.exttype], [`${c.class_id}.hdr`, 'IMAGE']);
      assert.deepEqual([table.name, table.exttype, table.rows], [`${c.class_id}.psf`, 'CMF_PS1_V5', c.n_detections]);
      assert.deepEqual(table.columns, CMF_PS1_V5.fields.map((f) => f.name));
    });
  }
  for (const s of manifest.stacks) {
    const hdus = seen[join(dir, s.cmf)];
    assert.deepEqual(hdus.map((h) => h.name), ['PRIMARY', 'SkyChip.hdr', 'SkyChip.psf']);
    assert.equal(hdus[2].exttype, 'CMF_PS1_SV2');
    assert.equal(hdus[2].rows, s.n_detections);
    assert.deepEqual(hdus[2].columns, CMF_PS1_SV2.fields.map((f) => f.name));
  }
});

test('the same arguments give byte-identical files; another seed gives other files', async () => {
  const first = await hashes(dir);
  const sameDir = join(root, 'same');
  await simulateSurvey({ out: sameDir, ...ARGS });
  assert.deepEqual(await hashes(sameDir), first);
  const otherDir = join(root, 'other');
  await simulateSurvey({ out: otherDir, ...ARGS, seed: 8 });
  const other = await hashes(otherDir);
  const common = Object.keys(first).filter((f) => f in other && f.endsWith('.smf'));
  assert.ok(Object.keys(other).length > 0);
  for (const f of common) assert.notEqual(other[f], first[f], f);
  assert.notEqual(other[MANIFEST_FILE], first[MANIFEST_FILE]);
  await rm(sameDir, { recursive: true });
  await rm(otherDir, { recursive: true });
});

test('detections match their true objects within the noise; spurious ones have none', async () => {
  await using objects = await FitsFile.open(join(dir, manifest.sky.objects));
  const obj = await collectTable(objects.table('OBJECTS'));
  const cols = objects.table('OBJECTS').columns.map((c) => c.name);
  const at = (name: string) => cols.indexOf(name);
  const byId = new Map<bigint, number>();
  const ids = obj.columns[at('OBJ_ID')].values as BigInt64Array;
  for (let r = 0; r < obj.rowCount; r++) byId.set(ids[r], r);
  assert.equal(byId.size, obj.rowCount, 'object IDs are unique');
  assert.equal(obj.rowCount, manifest.sky.n_objects);
  let checked = 0;
  let spurious = 0;
  let found = 0;
  for (const e of manifest.exposures) {
    await using smf = await FitsFile.open(join(dir, e.smf));
    await using truth = await FitsFile.open(join(dir, e.truth));
    for (const chip of e.chips.filter((_, i) => i % 7 === 0)) {
      const det = await collectTable(smf.table(`${chip.class_id}.psf`));
      const tru = await collectTable(truth.table(`${chip.class_id}.truth`));
      const dcols = smf.table(`${chip.class_id}.psf`).columns.map((c) => c.name);
      const d = (name: string) => det.columns[dcols.indexOf(name)].values as Float32Array | Float64Array | Uint32Array;
      assert.equal(tru.rowCount, det.rowCount);
      const ra = d('RA_PSF');
      const dec = d('DEC_PSF');
      const sig = d('X_PSF_SIG');
      const cal = d('CAL_PSF_MAG');
      const calSig = d('PSF_INST_MAG_SIG');
      const flags = d('FLAGS');
      const idet = d('IPP_IDET');
      const oid = tru.columns[1].values as BigInt64Array;
      const tmag = tru.columns[2].values as Float32Array;
      for (let r = 0; r < det.rowCount; r++) {
        assert.equal(idet[r], r, 'IPP_IDET is the row number');
        assert.equal((tru.columns[0].values as Uint32Array)[r], r);
        if (oid[r] === -1n) {
          spurious++;
          assert.ok(Number.isNaN(tmag[r]));
          continue;
        }
        const o = byId.get(oid[r]);
        assert.ok(o !== undefined, `object ${oid[r]} of ${e.exp_name} ${chip.class_id} row ${r} is in the truth table`);
        found++;
        const magCol = obj.columns[at(`MAG_${e.filter.toUpperCase()}`)].values as Float32Array;
        assert.equal(tmag[r], magCol[o]);
        const tra = (obj.columns[at('RA')].values as Float64Array)[o];
        const tdec = (obj.columns[at('DEC')].values as Float64Array)[o];
        const dist = Math.hypot((ra[r] - tra) * Math.cos((tdec * Math.PI) / 180), dec[r] - tdec) * 3600;
        // Centroid noise (X_PSF_SIG pixels) plus the chip's systematic offset (< 0.2").
        assert.ok(dist < 6 * sig[r] * 0.258 + 0.2, `${e.exp_name} ${chip.class_id} row ${r}: ${dist.toFixed(3)}" from its object (sigma ${(sig[r] * 0.258).toFixed(3)}")`);
        const isStar = (obj.columns[at('TYPE')].values as Uint8Array)[o] === 0;
        const saturated = (flags[r] & 0x80) !== 0;
        if (isStar && !saturated) {
          assert.ok(Math.abs(cal[r] - tmag[r]) < 6 * calSig[r] + 0.05, `${e.exp_name} ${chip.class_id} row ${r}: star measured ${cal[r]}, true ${tmag[r]}`);
          checked++;
        } else if (!isStar) {
          // The PSF fit misses a galaxy's outskirts: never brighter than the truth beyond the noise.
          assert.ok(cal[r] > tmag[r] - 6 * calSig[r] - 0.05);
        }
      }
    }
  }
  assert.ok(checked > 100 && found > 500 && spurious > 0, `${checked} stars, ${found} objects, ${spurious} spurious checked`);
});

test('chip headers carry the keywords later rooms read, and the WCS maps X_PSF/Y_PSF to RA_PSF/DEC_PSF', async () => {
  const e = manifest.exposures[0];
  await using smf = await FitsFile.open(join(dir, e.smf));
  const phu = smf.hdus[0].header;
  for (const k of ['EXPNAME', 'EXP_ID', 'MJD-OBS', 'EXPTIME', 'AIRMASS', 'FPA.FILTER', 'ZPT_OBS', 'ZPT_ERR', 'RA', 'DEC']) assert.ok(phu.has(k), k);
  assert.equal(phu.get('EXPNAME'), e.exp_name);
  assert.equal(phu.get('MJD-OBS'), e.mjd_obs);
  const chip = e.chips[25];
  const head = smf.hdu(`${chip.class_id}.hdr`).header;
  assert.equal(head.get('IMAGEID'), chip.image_id);
  for (const k of ['SOURCEID', 'IMNAXIS1', 'IMNAXIS2', 'FWHM_MAJ', 'FWHM_MIN', 'ZPT_OBS', 'MSKY_MN', 'NASTRO', 'CRVAL1', 'CD2_2']) assert.ok(head.has(k), k);
  assert.equal(head.get('NSTARS'), chip.n_detections);
  const table = smf.table(`${chip.class_id}.psf`);
  const batch = await collectTable(table, { columns: ['X_PSF', 'Y_PSF', 'RA_PSF', 'DEC_PSF'] });
  const { pixelToSky } = await import('./wcs.ts');
  const w = chip.wcs;
  const wcs = { crval1: w.crval1, crval2: w.crval2, crpix1: w.crpix1, crpix2: w.crpix2, cd11: w.cd1_1, cd12: w.cd1_2, cd21: w.cd2_1, cd22: w.cd2_2 };
  for (let r = 0; r < Math.min(batch.rowCount, 50); r++) {
    const x = getCell(table.columns[0], batch.columns[0], r) as number;
    const y = getCell(table.columns[1], batch.columns[1], r) as number;
    const p = pixelToSky(wcs, x, y);
    const ra = getCell(table.columns[2], batch.columns[2], r) as number;
    const dec = getCell(table.columns[3], batch.columns[3], r) as number;
    assert.ok(Math.hypot((p.ra - ra) * Math.cos((dec * Math.PI) / 180), p.dec - dec) * 3600 < 0.3, `row ${r}`);
  }
});

test('the manifest of a survey is rejected when damaged, naming the field', async () => {
  const { validateManifest } = await import('./manifest.ts');
  const broken = structuredClone(manifest) as unknown as { exposures: { chips: { n_detections: unknown }[] }[] };
  broken.exposures[1].chips[3].n_detections = 'many';
  assert.throws(() => validateManifest(broken), (e: Error & { code?: string }) => e.code === 'sim_bad_manifest' && /exposures\[1\]\.chips\[3\]\.n_detections/.test(e.message));
  await assert.rejects(readSurveyManifest(join(root, 'nowhere')), (e: Error & { code?: string }) => e.code === 'sim_no_manifest');
  assert.ok((await stat(join(dir, MANIFEST_FILE))).size > 0);
});
