// The queue and the loader with catalogues that gpc1 names by Nebulous key, as the IPP names
// every stage's files: the loader finds each file through the Nebulous server on its own host.
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../../common/index.ts';
import { openGpc1 } from '../../gpc1/index.ts';
import { openIppToPsps } from '../../ipptopsps/index.ts';
import { runIpp, withNebServer } from '../testing.ts';
import { makeSurvey } from './survey-fixture.ts';

test('ipp queue and loader: catalogues named by Nebulous key are found on the loader\'s host; no server named, a server down, a key without a file', () => withTempDir(async (root) => {
  const fx = await makeSurvey(root, { exposures: 3, stacks: 0, seed: 6 });
  await withNebServer(root, async (neb) => {
    const nebEnv = { IPP_NEB_URL: neb, IPP_NEB_TOKEN: 'tok' };
    await mkdir(join(root, 'vol'));
    assert.equal((await runIpp(['neb', 'volume', 'add', 'node01', '0', join(root, 'vol')], nebEnv)).code, 0);
    // Every camera run's smf named by key in gpc1; the files of the first two stored in Nebulous, the third never.
    const keys: string[] = [];
    const g = await openGpc1(fx.gpc1Url);
    try {
      const rows = await g.all<{ cam_id: number; path_base: string }>('SELECT cam_id, path_base FROM camProcessedExp ORDER BY cam_id');
      assert.equal(rows.length, 3);
      for (const [k, r] of rows.entries()) {
        const key = `neb:///gpc1/qtest/${basename(r.path_base)}`;
        keys.push(key);
        if (k < 2) {
          const created = await runIpp(['neb', 'create', key], nebEnv);
          assert.equal(created.code, 0, created.stderr);
          await copyFile(r.path_base, created.stdout.trim());
        }
        await g.run('UPDATE camProcessedExp SET path_base = ?, uri = NULL WHERE cam_id = ?', [key, r.cam_id]);
      }
    } finally {
      await g.close();
    }
    const env = { IPP_IPPTOPSPS_DB: `sqlite:${join(root, 'ipptopsps.db')}`, IPP_GPC1_DB: fx.gpc1Url, IPP_IPPTOPSPS_DATA_DIR: join(root, 'data') };
    const ipp = (args: string[], more: Record<string, string> = {}) => runIpp(args, { ...env, ...more });
    const set = await ipp(['config', 'set', 'c1', 'datastore_product=PSPS_test', 'datastore_publish=0', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`, 'epoch=2026-01-01',
      'min_ra=148', 'max_ra=158', 'min_dec=-2', 'max_dec=8', 'box_size=2', 'batch_types=P2']);
    assert.equal(set.code, 0, set.stderr);
    const queued = await ipp(['queue', 'c1', '--json']);
    assert.equal(queued.code, 0, queued.stderr);
    const db = await openIppToPsps(env.IPP_IPPTOPSPS_DB);
    const items = () => db.all<{ path: string; state: string; attempts: number; reason: string | null }>('SELECT path, state, attempts, reason FROM queue_item ORDER BY path');
    try {
      assert.deepEqual((await items()).map((i) => i.path), [...keys].sort(), 'the queue keeps the keys');

      // No server named: each item fails, saying what to set.
      assert.equal((await ipp(['loader', 'c1', '--json'])).code, 0);
      for (const i of await items()) {
        assert.deepEqual([i.state, Number(i.attempts)], ['failed', 1]);
        assert.match(i.reason ?? '', /item_needs_nebulous.*IPP_NEB_URL/);
      }
      // A server that does not answer: the loader stops and the item goes back untouched.
      const down = await ipp(['loader', 'c1', '--retry', 'all', '--json'], { IPP_NEB_URL: 'http://127.0.0.1:9' });
      assert.notEqual(down.code, 0);
      assert.match(down.stderr, /nebulous_unreachable/);
      assert.deepEqual((await items()).map((i) => [i.state, Number(i.attempts)]), keys.map(() => ['pending', 1]));

      // The server: two batches from the stored files, the third item failed by Nebulous's reason.
      const run = await ipp(['loader', 'c1', '--json'], nebEnv);
      assert.equal(run.code, 0, run.stderr);
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { done: number; failed: number };
      assert.deepEqual([summary.done, summary.failed], [2, 1]);
      const byKey = new Map((await items()).map((i) => [i.path, i]));
      assert.deepEqual([byKey.get(keys[0])!.state, byKey.get(keys[1])!.state, byKey.get(keys[2])!.state], ['done', 'done', 'failed']);
      assert.match(byKey.get(keys[2])!.reason ?? '', /neb_not_found/);
      const built = await db.all<{ n_rows: number }>(`SELECT n_rows FROM batch WHERE batch_type = 'P2' AND processed = 'succeeded'`);
      assert.equal(built.length, 2);
      assert.ok(built.every((b) => Number(b.n_rows) > 0));
    } finally {
      await db.close();
    }
  });
}));
