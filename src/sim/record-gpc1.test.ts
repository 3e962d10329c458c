import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { withTempDir } from '../common/index.ts';
import { testEngines, type Database } from '../db/index.ts';
import { FitsFile } from '../fits/index.ts';
import { listRuns, openGpc1, summary } from '../gpc1/index.ts';
import { collectTable } from '../table/index.ts';
import { readSurveyManifest, simulateSurvey, parseSkycellName, pixelToSky, skycell, skyToPixel, type SurveyManifest } from './index.ts';
import { recordSurveyInGpc1 } from './record-gpc1.ts';
import { separation } from './wcs.ts';

describe('recording a simulated survey in gpc1', () => {
  for (const engine of testEngines()) {
    it(`writes the rows the pipeline would have written (${engine.name})`, { skip: engine.skip }, () => withTempDir(async (dir) => {
      const out = `${dir}/survey`;
      await simulateSurvey({ out, exposures: 3, stacks: 2, seed: 11, density: 0.05 });
      const manifest = await readSurveyManifest(out);
      await engine.withUrl(async (url) => {
        const db = await openGpc1(url);
        try {
          const result = await recordSurveyInGpc1(db, out, manifest, { label: 'sim.test' });
          assert.equal(result.exposures, 3);
          // Every exposure reached warp, every stack skycal, all full.
          const counts = new Map((await summary(db, { label: 'sim.test' })).map((r) => [`${r.stage}:${r.state}`, r.runs]));
          for (const stage of ['chip', 'camera', 'fake', 'warp']) assert.equal(counts.get(`${stage}:full`), 3, stage);
          for (const stage of ['stack', 'skycal']) assert.equal(counts.get(`${stage}:full`), 2, stage);
          // The camera results name the smf files, the skycal results the cmf files, by absolute path.
          const smfs = (await db.all<{ path_base: string }>('SELECT path_base FROM camProcessedExp ORDER BY path_base')).map((r) => r.path_base);
          assert.deepEqual(smfs, manifest.exposures.map((e) => `${out}/${e.smf}`).sort());
          const cmfs = (await db.all<{ path_base: string }>('SELECT path_base FROM skycalResult ORDER BY path_base')).map((r) => r.path_base);
          assert.deepEqual(cmfs, manifest.stacks.map((s) => `${out}/${s.cmf}`).sort());
          // staticsky names no file: the simulator writes none of its own (it named a path that did not exist).
          const sky = await db.all<{ path_base: string | null; uri: string | null }>('SELECT path_base, uri FROM staticskyResult');
          assert.ok(sky.length > 0 && sky.every((r) => r.path_base === null && r.uri === null));
          // Exposure IDs are the survey's own (the smf headers' IMAGEID is built from them).
          const chipRuns = await listRuns(db, { stage: 'chip', label: 'sim.test' });
          assert.deepEqual(chipRuns.map((r) => Number(r.row.exp_id)).sort(), manifest.exposures.map((e) => e.exp_id).sort());
          await checkSkyCellMap(db, out, manifest);
          // Recording the same survey again is refused and changes nothing.
          await assert.rejects(recordSurveyInGpc1(db, out, manifest, { label: 'sim.test' }), (e: unknown) => (e as { code?: string }).code === 'gpc1_duplicate_exposure');
          const again = new Map((await summary(db, { label: 'sim.test' })).map((r) => [`${r.stage}:${r.state}`, r.runs]));
          assert.deepEqual(again, counts);
        } finally {
          await db.close();
        }
      });
    }, 'ipp-sim-gpc1-'));
  }
});

/**
 * Every chip with a detection (RA_PSF, DEC_PSF as the smf holds them) inside a mapped
 * skycell's pixels is listed for that warp and skycell; the listed chips are near the
 * skycell; and the map is not simply every chip of the exposure.
 */
async function checkSkyCellMap(db: Database, out: string, manifest: SurveyManifest): Promise<void> {
  const rows = await db.all<{ exp_id: number; skycell_id: string; class_id: string }>(
    `SELECT c.exp_id, m.skycell_id, m.class_id FROM warpSkyCellMap m
     JOIN warpRun w ON w.warp_id = m.warp_id JOIN fakeRun f ON f.fake_id = w.fake_id
     JOIN camRun k ON k.cam_id = f.cam_id JOIN chipRun c ON c.chip_id = k.chip_id`);
  const listed = new Map<string, Set<string>>();
  for (const r of rows) {
    const key = `${Number(r.exp_id)} ${r.skycell_id}`;
    if (!listed.has(key)) listed.set(key, new Set());
    listed.get(key)!.add(r.class_id);
  }
  // Every stack's input exposures are mapped to the stack's skycell.
  for (const s of manifest.stacks) {
    for (const x of s.input_exp_ids) assert.ok(listed.has(`${x} ${s.skycell}`), `exposure ${x} mapped to ${s.skycell}`);
  }
  let inside = 0;
  let unlisted = 0;
  let several = 0;
  for (const [key, chips] of listed) {
    const [expText, cellName] = key.split(' ');
    const e = manifest.exposures.find((x) => x.exp_id === Number(expText))!;
    const ids = parseSkycellName(cellName)!;
    const cell = skycell(ids.projectionId, ids.skycellId);
    if (chips.size > 1) several++;
    const file = await FitsFile.open(join(out, e.smf));
    try {
      for (const c of e.chips) {
        const t = await collectTable(file.table(`${c.class_id}.psf`), { columns: ['RA_PSF', 'DEC_PSF'] });
        const ra = t.columns[0].values as Float64Array;
        const dec = t.columns[1].values as Float64Array;
        let n = 0;
        for (let i = 0; i < t.rowCount; i++) {
          const p = skyToPixel(cell.wcs, ra[i], dec[i]);
          if (p && p.x >= 0.5 && p.x <= cell.nx + 0.5 && p.y >= 0.5 && p.y <= cell.ny + 0.5) n++;
        }
        inside += n;
        if (n > 0) assert.ok(chips.has(c.class_id), `exposure ${e.exp_id}: chip ${c.class_id} has ${n} detections inside ${cellName} but is not mapped to it`);
        if (!chips.has(c.class_id)) unlisted++;
      }
    } finally {
      await file.close();
    }
    for (const id of chips) {
      const c = e.chips.find((x) => x.class_id === id);
      assert.ok(c, `${id} is a chip of exposure ${e.exp_id}`);
      // A chip (0.35 deg square) overlapping the skycell (0.44 deg) has its centre within their half-diagonals of the skycell's.
      const chipCentre = pixelToSky({
        crval1: c.wcs.crval1, crval2: c.wcs.crval2, crpix1: c.wcs.crpix1, crpix2: c.wcs.crpix2,
        cd11: c.wcs.cd1_1, cd12: c.wcs.cd1_2, cd21: c.wcs.cd2_1, cd22: c.wcs.cd2_2,
      }, (c.nx + 1) / 2, (c.ny + 1) / 2);
      assert.ok(separation(chipCentre.ra, chipCentre.dec, cell.ra, cell.dec) < 0.35 * Math.SQRT1_2 + 0.44 * Math.SQRT1_2 + 0.01,
        `exposure ${e.exp_id}: chip ${id} mapped to ${cellName} lies too far from it`);
    }
  }
  assert.ok(inside > 0, 'some detections fall inside the mapped skycells');
  assert.ok(unlisted > 0, 'the map is not every chip of the exposure');
  assert.ok(several > 0, 'some skycell takes several chips');
}

