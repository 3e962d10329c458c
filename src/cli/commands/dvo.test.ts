import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../../common/index.ts';
import { FitsFile } from '../../fits/index.ts';
import { defineRun, listRuns, openGpc1, pendingComponents, revertFaults } from '../../gpc1/index.ts';
import { simulateSurvey } from '../../sim/index.ts';
// Not yet in the sim room's index.
import { recordSurveyInGpc1 } from '../../sim/record-gpc1.ts';
import { makeStars, writeSmf } from '../../dvo/test-support.ts';
import { runIpp, withNebServer } from '../testing.ts';

const ipp = (...args: string[]) => runIpp(args);

test('ipp dvo: addstar, stats, regions, grab, region, export-box, verify, merge', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(500, { ra: 80, dec: 20, size: 0.3 }, 71, 3);
    const a = join(dir, 'a.smf');
    const b = join(dir, 'b.smf');
    const bad = join(dir, 'bad.smf');
    await writeSmf(a, stars, { expId: 1 });
    await writeSmf(b, stars, { expId: 2 });
    await writeSmf(bad, stars, { expId: 3, nanRow: 0 });
    const db = join(dir, 'db');
    const add = await ipp('dvo', 'addstar', '--db', db, '--max-objects', '200', a, b, bad);
    assert.equal(add.code, 1, add.stderr);
    assert.match(add.stdout, /^ingested +.*a\.smf \(2 images, 500 detections\)$/m);
    assert.match(add.stdout, /^failed +.*bad\.smf: \[dvo_bad_coordinates\]/m);
    assert.match(add.stdout, /1000 measures \(500 matched, 500 new objects\)/);
    const stats = JSON.parse((await ipp('dvo', 'stats', '--db', db, '--json')).stdout);
    assert.equal(stats.objects, 500);
    assert.equal(stats.measures, 1000);
    const regions = JSON.parse((await ipp('dvo', 'regions', '--db', db, '--box', '79.5,80.5,19.5,20.5', '--json')).stdout);
    assert.equal(regions.reduce((n: number, r: { objects: number }) => n + r.objects, 0), 500);
    const grab = JSON.parse((await ipp('dvo', 'grab', '--db', db, '233', '--json')).stdout);
    assert.equal(grab.imageId, 3);
    assert.equal(grab.measures[0].DET_ID, String((233n << 32n) | 0n));
    assert.equal(grab.measures[0].IPP_IDET, 0);
    const csv = await ipp('dvo', 'grab', '--db', db, '233');
    assert.match(csv.stdout, /^DET_ID,OBJ_ID,IPP_IDET,/);
    assert.equal((await ipp('dvo', 'grab', '--db', db, '9')).code, 1);
    assert.equal((await ipp('dvo', 'grab', '--db', db, 'x')).code, 2);
    const out = join(dir, 'region.fits');
    const reg = await ipp('dvo', 'region', '--db', db, regions[0].name, '--out', out);
    assert.equal(reg.code, 0, reg.stderr);
    const f = await FitsFile.open(out);
    assert.equal(f.hdus[1].rows, regions[0].objects);
    await f.close();
    const box = await ipp('dvo', 'export-box', '--db', db, '--box', '79.5,80.5,19.5,20.5', '--scratch', `sqlite:${join(dir, 's.db')}`, '--json');
    assert.equal(box.code, 0, box.stderr);
    assert.equal(JSON.parse(box.stdout).measures, 1000);
    assert.equal((await ipp('dvo', 'export-box', '--db', db, '--box', '1,2,3')).code, 2);
    const ok = await ipp('dvo', 'verify', '--db', db, '--fits');
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /^OK: /m);
    const merged = await ipp('dvo', 'merge', db, db, '--out', join(dir, 'm'), '--json');
    assert.equal(merged.code, 0, merged.stderr);
    assert.equal(JSON.parse(merged.stdout).imagesShared, 4);
    await rm(join(db, `${regions[0].name}.cps`));
    const broken = await ipp('dvo', 'verify', '--db', db);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /FAULT \[missing_file\]/);
    // A file cut short is a fault of its region, listed with the others; the rest are still checked.
    const cpm = join(db, `${regions[1].name}.cpm`);
    await truncate(cpm, Math.floor((await stat(cpm)).size / 2));
    const cut = await ipp('dvo', 'verify', '--db', db, '--json');
    assert.equal(cut.code, 1, cut.stderr);
    const report = JSON.parse(cut.stdout) as { regions: number; faults: { code: string; region?: string }[] };
    assert.deepEqual(report.faults.map((x) => [x.code, x.region]).filter(([c]) => c !== 'image_count_mismatch').slice(0, 2),
      [['missing_file', regions[0].name], ['unreadable_file', regions[1].name]]);
    assert.equal(report.regions, regions.length - 1);
    // A database named without --db is a usage error, not the default database checked instead.
    for (const sub of ['verify', 'stats']) assert.equal((await ipp('dvo', sub, db)).code, 2, sub);
  });
});

test('ipp dvo: bad options and a damaged database give clear errors, not stack traces, and make nothing', async () => {
  await withTempDir(async (dir) => {
    const smf = join(dir, 'a.smf');
    await writeSmf(smf, makeStars(50, { ra: 80, dec: 20, size: 0.1 }, 3, 3), { expId: 1 });
    const usage: [string[], RegExp][] = [
      [['addstar', '--db', join(dir, 'm'), '--max-objects', '0.3', smf], /--max-objects "0\.3" must be a whole number of at least 1/],
      [['addstar', '--db', join(dir, 'm'), '--label', 'x', smf], /--label applies with --from-gpc1 only/],
      [['grab', '--db', join(dir, 'm'), '4294967296'], /IMAGEID 4294967296 is out of range/],
      [['grab', '--db', join(dir, 'm'), '1', '--json', '--out', join(dir, 'g.fits')], /--json .* or --out FILE, not both/],
      [['regions', '--db', join(dir, 'm'), join(dir, 'm')], /unexpected argument .*--db DIR/],
      [['region', '--db', join(dir, 'm'), '1', '--out', join(dir, 'r.txt')], /--out ".*r\.txt": write a \.fits or a \.csv file/],
      [['grab', '--db', join(dir, 'm'), '1', '--out', join(dir, 'g.fits.gz')], /write a \.fits or a \.csv file/],
    ];
    for (const [argv, message] of usage) {
      const r = await ipp('dvo', ...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.deepEqual((await readdir(dir)).sort(), ['a.smf']);
    // A file named as the database.
    await writeFile(join(dir, 'afile'), 'x');
    for (const db of [join(dir, 'afile'), join(dir, 'afile', 'sub')]) {
      const r = await ipp('dvo', 'addstar', '--db', db, smf);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error \[dvo_cannot_create\]: cannot create the DVO database directory .*not a file/);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    // Images.dat lost from a database with data: addstar refuses, verify lists it.
    const db = join(dir, 'db');
    assert.equal((await ipp('dvo', 'addstar', '--db', db, smf)).code, 0);
    const compress = await ipp('dvo', 'addstar', '--db', db, '--compress', smf);
    assert.equal(compress.code, 0, compress.stderr);
    assert.match(compress.stderr, /--compress applies when a database is created; .* exists and keeps the tables it has/);
    await rm(join(db, 'Images.dat'));
    const again = await ipp('dvo', 'addstar', '--db', db, smf);
    assert.equal(again.code, 1);
    assert.match(`${again.stdout}${again.stderr}`, /\[dvo_damaged\].*Images\.dat is missing while .*\.cpt holds measures/);
    assert.equal(await readFile(join(db, 'Images.dat')).catch(() => null), null, 'nothing rebuilt');
    const verify = await ipp('dvo', 'verify', '--db', db);
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, /FAULT \[missing_file\] .*Images\.dat is missing/);
  });
});

test('ipp dvo addstar --from-gpc1: a simulated survey\'s addstar runs ingested and recorded, bad catalogues marked with a quality code', async () => {
  await withTempDir(async (dir) => {
    const survey = join(dir, 'survey');
    const { manifest } = await simulateSurvey({ out: survey, exposures: 3, stacks: 1, seed: 5, density: 0.02, injectDefects: 'nan-coords' });
    const url = `sqlite:${join(dir, 'gpc1.db')}`;
    const g = await openGpc1(url);
    try {
      await recordSurveyInGpc1(g, survey, manifest, { label: 'lap' });
      const cams = (await listRuns(g, { stage: 'camera', label: 'lap' })).map((r) => r.id);
      const cals = (await listRuns(g, { stage: 'skycal', label: 'lap' })).map((r) => r.id);
      await defineRun(g, 'addstar', { source_stage: 'camera', source_ids: cams, label: 'lap', dvodb: 'dvo' });
      await defineRun(g, 'addstar', { source_stage: 'skycal', source_ids: cals, label: 'lap', dvodb: 'dvo' });
      // A run of the same label for another DVO database.
      await defineRun(g, 'addstar', { source_stage: 'camera', source_ids: [cams[0]!], label: 'lap', dvodb: 'elsewhere' });
    } finally {
      await g.close();
    }
    const db = join(dir, 'dvo');
    const r = await ipp('dvo', 'addstar', '--db', db, '--from-gpc1', '--label', 'lap', '--gpc1-db', url);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 addstar run of label lap \(\d+\) is for DVO database elsewhere, not .*dvo; left pending/);
    const bad = manifest.defects[0];
    assert.match(r.stderr, new RegExp(`${bad.file.replace(/[.]/g, '\\.')} rejected \\(quality 2\\): \\[dvo_bad_coordinates\\]`));
    const h = await openGpc1(url);
    try {
      const rows = await h.all<{ quality: number; fault: number; dvodb_path: string }>('SELECT quality, fault, dvodb_path FROM addProcessedExp');
      assert.equal(rows.length, manifest.exposures.length + manifest.stacks.length);
      assert.deepEqual(rows.map((x) => x.quality).sort(), [0, 0, 0, 2]);
      assert.ok(rows.every((x) => x.fault === 0 && x.dvodb_path === db));
    } finally {
      await h.close();
    }
    const stats = JSON.parse((await ipp('dvo', 'stats', '--db', db, '--json')).stdout);
    const good = manifest.exposures.filter((e) => e.exp_id !== bad.exp_id);
    assert.equal(stats.measures, good.reduce((n, e) => n + e.n_detections, 0) + manifest.stacks[0].n_detections);
    // Nothing is pending any more: a second pass does nothing.
    const again = await ipp('dvo', 'addstar', '--db', db, '--from-gpc1', '--label', 'lap', '--gpc1-db', url, '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).files.length, 0);
    const left = await openGpc1(url);
    try {
      assert.equal((await pendingComponents(left, 'addstar', { label: 'lap' })).length, 1, 'the other database\'s run is still pending');
    } finally {
      await left.close();
    }
    assert.equal((await ipp('dvo', 'addstar', '--db', db, '--from-gpc1')).code, 2);
  });
});

test('ipp dvo addstar: catalogues named by Nebulous key, on the command line and in gpc1, found through the server; a key without a file marked bad', async () => {
  await withTempDir(async (dir) => {
    const survey = join(dir, 'survey');
    const { manifest } = await simulateSurvey({ out: survey, exposures: 3, stacks: 0, seed: 8, density: 0.02 });
    const url = `sqlite:${join(dir, 'gpc1.db')}`;
    await withNebServer(dir, async (neb) => {
      const env = { IPP_NEB_URL: neb, IPP_NEB_TOKEN: 'tok' };
      await mkdir(join(dir, 'vol'));
      assert.equal((await runIpp(['neb', 'volume', 'add', 'node01', '0', join(dir, 'vol')], env)).code, 0);
      // The first two exposures' smf files stored in Nebulous; the third exposure's key never made.
      const keys = manifest.exposures.map((e) => `neb:///gpc1/lap/${e.exp_name}.smf`);
      for (const [k, e] of manifest.exposures.slice(0, 2).entries()) {
        const created = await runIpp(['neb', 'create', keys[k]], env);
        assert.equal(created.code, 0, created.stderr);
        await copyFile(join(survey, e.smf), created.stdout.trim());
      }
      const g = await openGpc1(url);
      try {
        await recordSurveyInGpc1(g, survey, manifest, { label: 'lap' });
        for (const [k, e] of manifest.exposures.entries()) {
          await g.run('UPDATE camProcessedExp SET path_base = ?, uri = ? WHERE cam_id IN (SELECT c.cam_id FROM camRun c JOIN chipRun ch ON ch.chip_id = c.chip_id WHERE ch.exp_id = ?)', [keys[k].replace(/\.smf$/, ''), keys[k], e.exp_id]);
        }
        const cams = (await listRuns(g, { stage: 'camera', label: 'lap' })).map((r) => r.id);
        await defineRun(g, 'addstar', { source_stage: 'camera', source_ids: cams, label: 'lap', dvodb: 'dvo' });
      } finally {
        await g.close();
      }
      const db = join(dir, 'dvo');
      const args = ['dvo', 'addstar', '--db', db, '--from-gpc1', '--label', 'lap', '--gpc1-db', url];
      // No server named: a usage error, and the runs stay pending.
      const bare = await runIpp(args);
      assert.equal(bare.code, 2, bare.stderr);
      assert.match(bare.stderr, /no Nebulous server is given to find its file: set IPP_NEB_URL/);
      const garbled = await runIpp(args, { IPP_NEB_URL: 'notaurl' });
      assert.equal(garbled.code, 2, garbled.stderr);
      assert.match(garbled.stderr, /the Nebulous server IPP_NEB_URL names cannot be used/);
      // A server that does not answer: every run faulted (to be retried), nothing ingested.
      const down = await runIpp(args, { IPP_NEB_URL: 'http://127.0.0.1:9' });
      assert.equal(down.code, 1, down.stderr);
      const g2 = await openGpc1(url);
      try {
        const faults = await g2.all<{ fault: number; quality: number }>('SELECT fault, quality FROM addProcessedExp');
        assert.deepEqual(faults.map((x) => [x.fault, x.quality]), keys.map(() => [1, 0]));
        assert.equal(await revertFaults(g2, { stage: 'addstar' }), keys.length);
      } finally {
        await g2.close();
      }
      const r = await runIpp(args, env);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${keys[2].replace(/[.]/g, '\\.')} rejected \\(quality 5\\): \\[neb_not_found\\]`));
      const h = await openGpc1(url);
      try {
        const rows = await h.all<{ quality: number; fault: number; path_base: string; note: string | null }>('SELECT quality, fault, path_base, note FROM addProcessedExp ORDER BY path_base');
        assert.deepEqual(rows.map((x) => [x.path_base, x.quality, x.fault]), keys.map((k, i) => [k, i === 2 ? 5 : 0, 0]));
        assert.match(rows[2].note ?? '', /neb_not_found/);
      } finally {
        await h.close();
      }
      const stats = JSON.parse((await runIpp(['dvo', 'stats', '--db', db, '--json'])).stdout);
      assert.equal(stats.measures, manifest.exposures[0].n_detections + manifest.exposures[1].n_detections);
      // On the command line: a key is ingested (again: nothing changes), a missing one fails by name.
      const cli = await runIpp(['dvo', 'addstar', '--db', db, keys[0], keys[2], '--json'], env);
      assert.equal(cli.code, 1, cli.stderr);
      const files = JSON.parse(cli.stdout).files as { path: string; status: string; error?: { code: string } }[];
      assert.deepEqual(files.map((f) => [f.path, f.status, f.error?.code]), [[keys[0], 'unchanged', undefined], [keys[2], 'failed', 'neb_not_found']]);
    });
  });
});
