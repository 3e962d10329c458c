import assert from 'node:assert/strict';
import { before, after, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testEngines } from '../../db/index.ts';
import { listRegions } from '../../dvo/index.ts';
import { openGpc1 } from '../../gpc1/index.ts';
import { runIpp } from '../testing.ts';
import { getConfig, openIppToPsps, queueConfig, saveConfig } from '../../ipptopsps/index.ts';
import { makeSurvey, type SurveyFixture } from './survey-fixture.ts';

let root: string;
let fx: SurveyFixture;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ipp-q-queue-'));
  fx = await makeSurvey(root, { exposures: 6, stacks: 2 });
});
after(() => rm(root, { recursive: true, force: true }));

const REGION = { min_ra: '148', max_ra: '158', min_dec: '-2', max_dec: '8', box_size: '2' };

for (const engine of testEngines()) {
  describe(`ipp queue (${engine.name})`, { skip: engine.skip }, () => {
    test('counts per type equal what gpc1 and DVO hold; a rerun adds nothing; failures, epoch and limits', () => engine.withUrl(async (url) => {
      const env = { IPP_GPC1_DB: fx.gpc1Url, IPP_IPPTOPSPS_DB: url };
      const set = await runIpp(['config', 'set', 'c1', 'datastore_product=PSPS_test', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`,
        'epoch=2026-01-01', ...Object.entries(REGION).map(([k, v]) => `${k}=${v}`)], env);
      assert.equal(set.code, 0, set.stderr);
      const first = await runIpp(['queue', 'c1', '--json'], env);
      assert.equal(first.code, 0, first.stderr);
      const summary = JSON.parse(first.stdout.trim().split('\n').at(-1)!);
      // Independent counts: gpc1's camera and skycal runs, DVO's regions with objects in the region.
      const regions = (await listRegions(fx.dvo, { raMin: 148, raMax: 158, decMin: -2, decMax: 8 })).filter((r) => r.objects > 0);
      assert.ok(regions.length > 0);
      assert.equal(summary.stripes, 5);
      assert.equal(summary.boxes, 25);
      assert.equal(summary.types.P2.added, fx.camIds.length);
      assert.equal(summary.types.ST.added, fx.skycalIds.length);
      assert.equal(summary.types.OB.added, regions.length);
      const again = await runIpp(['queue', 'c1', '--json'], env);
      const s2 = JSON.parse(again.stdout.trim().split('\n').at(-1)!);
      for (const t of ['P2', 'ST', 'OB']) assert.equal(s2.types[t].added + s2.types[t].requeued, 0, t);

      const db = await openIppToPsps(url);
      const gpc1 = await openGpc1(fx.gpc1Url);
      try {
        // Items carry what the loader needs: smf path and exp_id for P2, a box for every item.
        const p2 = await db.all<{ source_id: number; path: string; exp_id: number; box_id: number }>(`SELECT * FROM queue_item WHERE batch_type = 'P2' ORDER BY source_id`);
        assert.deepEqual(p2.map((r) => Number(r.source_id)), [...fx.camIds].sort((a, b) => a - b));
        assert.ok(p2.every((r) => r.path.endsWith('.smf') && Number(r.exp_id) > 0 && r.box_id !== null));
        const st = await db.all<{ path: string }>(`SELECT path FROM queue_item WHERE batch_type = 'ST'`);
        assert.ok(st.every((r) => r.path.endsWith('.cmf')));

        // A failed item below max_attempts is queued again; at max_attempts it is left out.
        await db.run(`UPDATE queue_item SET state = 'failed', attempts = 1, reason = 'x' WHERE batch_type = 'P2' AND source_id = ?`, [fx.camIds[0]!]);
        await db.run(`UPDATE queue_item SET state = 'failed', attempts = 3, reason = 'x' WHERE batch_type = 'P2' AND source_id = ?`, [fx.camIds[1]!]);
        // A published batch since the epoch keeps its item done; one before a new epoch is loaded again.
        await db.run(`UPDATE queue_item SET state = 'done' WHERE batch_type = 'ST'`);
        await db.run(`INSERT INTO batch (name, config, batch_type, source_id, created_at, processed, loaded_to_datastore)
                      SELECT 'B' || source_id, config, batch_type, source_id, '2026-06-01T00:00:00.000Z', 'succeeded', 'succeeded' FROM queue_item WHERE batch_type = 'ST'`);
        const config = await getConfig(db, 'c1');
        const s3 = await queueConfig(db, config, { gpc1 });
        assert.equal(s3.types.P2!.requeued, 1);
        assert.equal(s3.types.P2!.failedOut, 1);
        assert.equal(s3.types.P2!.pending, fx.camIds.length - 1);
        assert.equal(s3.types.ST!.published, fx.skycalIds.length);
        assert.equal(s3.types.ST!.pending, 0);
        const s4 = await queueConfig(db, await saveConfig(db, 'c1', { epoch: '2026-07-01' }), { gpc1 });
        assert.equal(s4.types.ST!.requeued, fx.skycalIds.length);
        assert.equal(s4.types.ST!.pending, fx.skycalIds.length);

        // A smaller region leaves items outside; a new box size re-grids without losing items.
        const small = await saveConfig(db, 'c2', {
          datastore_product: 'P', dvo_label: fx.label, dvo_location: fx.dvo, epoch: '2026-01-01', batch_types: 'P2',
          min_ra: '0', max_ra: '10', min_dec: '0', max_dec: '10',
        });
        const s5 = await queueConfig(db, small, { gpc1 });
        assert.equal(s5.types.P2!.outside, fx.camIds.length);
        assert.equal(s5.types.ST, undefined);
        const regrid = await queueConfig(db, await saveConfig(db, 'c1', { box_size: '5' }), { gpc1 });
        assert.equal(regrid.boxes, 4);
        const orphans = await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM queue_item q WHERE config = 'c1' AND NOT EXISTS (SELECT 1 FROM box b WHERE b.box_id = q.box_id)`);
        assert.equal(Number(orphans!.n), 0);
        // gpc1 label filter: another label lists nothing.
        const other = await queueConfig(db, await saveConfig(db, 'c3', {
          datastore_product: 'P', dvo_label: 'x', dvo_location: fx.dvo, epoch: '2026-01-01', gpc1_label: 'nope', batch_types: 'P2,ST', ...REGION,
        }), { gpc1 });
        assert.equal(other.types.P2!.candidates + other.types.ST!.candidates, 0);
      } finally {
        await gpc1.close();
        await db.close();
      }
    }));
  });
}
