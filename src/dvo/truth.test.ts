import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { simulateSurvey, type SurveyManifest } from '../sim/index.ts';
import { addstar } from './addstar.ts';
import { grabImage } from './grab.ts';
import { checkAssociation, type TruthSource } from './truth-check.ts';
import { verifyDvo } from './verify.ts';

function truthSources(dir: string, m: SurveyManifest): TruthSource[] {
  return [
    ...m.exposures.flatMap((e) => e.chips.map((c) => ({ imageId: c.image_id, truthFile: join(dir, e.truth), table: `${c.class_id}.truth` }))),
    ...m.stacks.map((s) => ({ imageId: s.image_id, truthFile: join(dir, s.truth), table: 'SkyChip.truth' })),
  ];
}

test('association against the simulator\'s truth: isolated stars ≥ 99.5% complete and pure; the dense patch reported', async () => {
  await withTempDir(async (dir) => {
    const survey = join(dir, 'survey');
    const { manifest: m } = await simulateSurvey({ out: survey, exposures: 5, stacks: 1, density: 0.06, seed: 7 });
    const files = [...m.exposures.map((e) => join(survey, e.smf)), ...m.stacks.map((s) => join(survey, s.cmf))];
    const db = join(dir, 'dvo');
    const r = await addstar(db, files, { create: { maxObjects: 5000 } });
    assert.ok(r.files.every((f) => f.status === 'ingested'));
    assert.equal(r.detections, m.totals.detections + m.totals.stack_detections);
    assert.deepEqual((await verifyDvo(db)).faults, []);
    const check = await checkAssociation({ dvo: db, objectsFile: join(survey, m.sky.objects), sources: truthSources(survey, m), patch: m.sky.md_patch });
    assert.equal(check.unknown, 0);
    assert.ok(check.isolatedStars.trueObjects > 500, JSON.stringify(check.isolatedStars));
    assert.ok(check.isolatedStars.completeness >= 0.995, JSON.stringify(check.isolatedStars));
    assert.ok(check.isolatedStars.purity >= 0.995, JSON.stringify(check.isolatedStars));
    assert.ok(check.patch!.detections > 0);
    // The dense patch has close pairs; its figures are reported by the bench, and stay high.
    assert.ok(check.patch!.completeness >= 0.99 && check.patch!.purity >= 0.99, JSON.stringify(check.patch));
    // grab of a chip: one row per detection of the chip, IPP_IDET 0..n-1.
    const chip = m.exposures[0].chips[10];
    const g = await grabImage(db, chip.image_id);
    assert.equal(g.rows.rowCount, chip.n_detections);
    assert.deepEqual([...(g.rows.columns[2].values as Uint32Array)], Array.from({ length: chip.n_detections }, (_, i) => i));
  });
});

test('the simulator\'s damaged catalogues are rejected with errors naming what is wrong; the database never sees them', async () => {
  await withTempDir(async (dir) => {
    const survey = join(dir, 'survey');
    const { manifest: m } = await simulateSurvey({
      out: survey, exposures: 6, stacks: 0, density: 0.02, seed: 3,
      injectDefects: 'truncated-smf,missing-chip,corrupt-keyword,nan-coords,duplicate-idet',
    });
    const db = join(dir, 'dvo');
    const r = await addstar(db, m.exposures.map((e) => join(survey, e.smf)), { create: { maxObjects: 5000 } });
    const byFile = new Map(r.files.map((f) => [f.path, f]));
    const expected: Record<string, [string, RegExp]> = {
      'truncated-smf': ['dvo_bad_catalogue', /file ends \d+ bytes short/],
      'corrupt-keyword': ['dvo_bad_catalogue', /keyword (MJD-OBS|ZPT_OBS) in the primary header is .* not a number/],
      'nan-coords': ['dvo_bad_coordinates', /XY\d\d\.psf row \d+ \(IPP_IDET \d+\)/],
      'duplicate-idet': ['dvo_bad_catalogue', /IPP_IDET \d+ appears twice/],
    };
    const failed = new Set<number>();
    for (const d of m.defects) {
      const f = byFile.get(join(survey, d.file))!;
      if (d.kind === 'missing-chip') {
        assert.equal(f.status, 'ingested');
        assert.equal(f.images, 59);
        continue;
      }
      const [code, message] = expected[d.kind];
      assert.equal(f.status, 'failed', `${d.kind}: ${JSON.stringify(f)}`);
      assert.equal(f.error!.code, code, f.error!.message);
      assert.match(f.error!.message, message);
      if (d.chip && d.kind !== 'truncated-smf') assert.match(f.error!.message, new RegExp(d.chip));
      if (d.kind === 'nan-coords') assert.match(f.error!.message, new RegExp(`row ${d.rows![0] + 1} `));
      failed.add(d.exp_id);
    }
    assert.equal(failed.size, 4);
    const report = await verifyDvo(db);
    assert.deepEqual(report.faults, []);
    const good = m.exposures.filter((e) => !failed.has(e.exp_id));
    assert.equal(report.images, good.reduce((n, e) => n + e.chips.length, 0));
    assert.equal(report.measures, good.reduce((n, e) => n + e.n_detections, 0));
    const bad = m.exposures.find((e) => failed.has(e.exp_id) && e.chips.length > 0)!;
    await assert.rejects(grabImage(db, bad.chips[0].image_id), { code: 'dvo_no_such_image' });
  });
});
