import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { testEngines } from '../db/index.ts';
import { listRuns, openGpc1, summary } from '../gpc1/index.ts';
import { readSurveyManifest, simulateSurvey } from './index.ts';
import { recordSurveyInGpc1 } from './record-gpc1.ts';

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
          // Exposure IDs are the survey's own (the smf headers' IMAGEID is built from them).
          const chipRuns = await listRuns(db, { stage: 'chip', label: 'sim.test' });
          assert.deepEqual(chipRuns.map((r) => Number(r.row.exp_id)).sort(), manifest.exposures.map((e) => e.exp_id).sort());
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
