// The ippToPsps programs (and the DXLayer) run by pantasks as periodic programs, as the
// original ran them in screen sessions: queue, two loaders at a time, the DXLayer, pollodm,
// cleanup and metrics, each a local job every second, until a simulated survey is in the archive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../db/index.ts';
import { openIppToPsps } from '../../ipptopsps/index.ts';
import { stageTasks, type FinishedJob } from '../../pantasks/index.ts';
import { withScheduler } from '../../pantasks/test-support.ts';
import { readSurveyManifest } from '../../sim/index.ts';
import { runIpp } from '../testing.ts';
import { makeSurvey, startCampaignServices } from './survey-fixture.ts';

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

test('pantasks runs the ippToPsps programs and the DXLayer as periodic local jobs until the survey is merged and cleaned up', () => withScheduler(async (s, dir) => {
  const fx = await makeSurvey(join(dir, 'fx'), { exposures: 3, stacks: 1, density: 0.05 });
  const manifest = await readSurveyManifest(fx.survey);
  const services = await startCampaignServices(dir, fx);
  const { env } = services;
  const closers: (() => Promise<void> | void)[] = [];
  const jobs: FinishedJob[] = [];
  s.onJobDone((j) => jobs.push(j));
  try {
    const set = await runIpp(['config', 'set', 'c1', 'datastore_product=PSPS_test', 'datastore_publish=1', `dvo_label=${fx.label}`,
      `dvo_location=${fx.dvo}`, 'epoch=2020-01-01', 'min_ra=140', 'max_ra=165', 'min_dec=-10', 'max_dec=15'], env);
    assert.equal(set.code, 0, set.stderr);
    // The product exists before anyone polls it, as `dsprodtool --add` made it in the original.
    const product = await runIpp(['datastore', 'product', 'add', 'PSPS_test', '--type', 'IPP_PSPS', '--description', 'test', '--url', services.datastoreUrl]);
    assert.equal(product.code, 0, product.stderr);

    // Each job gets the campaign's settings in its environment, as a settings file would give them.
    const ipp = (...args: string[]) => ['/usr/bin/env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, MAIN, ...args, '--log-level', 'warn'];
    const tasks = stageTasks({
      gpc1: fx.gpc1Url, stages: {},
      programs: [
        { name: 'ipptopsps.queue', command: ipp('queue', 'c1'), period: 1 },
        { name: 'ipptopsps.loader', command: ipp('loader', 'c1'), period: 1, npending: 2 },
        { name: 'psps.dxlayer', command: ipp('dxlayer', '--product', 'PSPS_test', '--dir', services.dxlayerDir, '--once'), period: 1 },
        { name: 'ipptopsps.pollodm', command: ipp('pollodm', 'c1', 'all', 'all'), period: 1 },
        { name: 'ipptopsps.cleanup', command: ipp('cleanup', 'c1'), period: 1 },
        { name: 'ipptopsps.metrics', command: ipp('metrics', 'c1', '--no-plots'), period: 2 },
      ],
    }, { books: s.books, onClose: (fn) => closers.push(fn) });
    for (const t of tasks) s.addTask(t);
    await s.run();

    const tracking = await openIppToPsps(env.IPP_IPPTOPSPS_DB);
    try {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const items = await tracking.get<{ n: number; done: number }>("SELECT count(*) AS n, sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END) AS done FROM queue_item");
        const open = await tracking.get<{ n: number }>("SELECT count(*) AS n FROM batch WHERE deleted_local IS DISTINCT FROM 'succeeded'");
        const batches = await tracking.get<{ n: number }>('SELECT count(*) AS n FROM batch');
        if (Number(items!.n) > 0 && Number(items!.done) === Number(items!.n) && Number(batches!.n) >= Number(items!.n) && Number(open!.n) === 0) break;
        if (Date.now() > deadline) assert.fail(`the chain did not finish under pantasks: ${JSON.stringify({ items, open, batches, failed: jobs.filter((j) => j.result.outcome !== 'exit' || j.result.status !== 0).map((j) => j.result.stderr).slice(0, 3) })}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      await s.stop();
      await s.until(() => s.status().jobs.pending + s.status().jobs.busy === 0, 60_000, 'the last jobs');

      // Every item loaded once: one batch each, merged; plus the IN batch is not made by these programs.
      const perItem = await tracking.all<{ item_id: number; n: number; merged: number }>(
        "SELECT item_id, count(*) AS n, sum(CASE WHEN merged = 'succeeded' THEN 1 ELSE 0 END) AS merged FROM batch WHERE item_id IS NOT NULL GROUP BY item_id");
      assert.ok(perItem.length > 0);
      for (const r of perItem) assert.deepEqual([Number(r.n), Number(r.merged)], [1, 1], `item ${r.item_id}`);
      const metrics = await tracking.get<{ n: number }>("SELECT count(*) AS n FROM metrics WHERE config = 'c1'");
      assert.ok(Number(metrics!.n) > 0, 'metrics ran');
    } finally {
      await tracking.close();
    }
    for (const name of ['ipptopsps.queue', 'ipptopsps.loader', 'psps.dxlayer', 'ipptopsps.pollodm', 'ipptopsps.cleanup', 'ipptopsps.metrics']) {
      const mine = jobs.filter((j) => j.task === name);
      assert.ok(mine.length > 0, `${name} ran`);
      assert.deepEqual(mine.filter((j) => j.result.outcome !== 'exit' || j.result.status !== 0).map((j) => j.result.stderr.slice(0, 300)), [], `${name}: every job exited 0`);
    }
    const loaders = jobs.filter((j) => j.task === 'ipptopsps.loader').map((j) => j.result);
    assert.ok(loaders.some((a) => loaders.some((b) => b !== a && b.startedAt < a.endedAt && a.startedAt < b.endedAt)), 'two loaders ran at once');

    const archive = await openDatabase(env.IPP_ARCHIVE_DB);
    try {
      const n = (await archive.get<{ n: number; ids: number }>('SELECT count(*) AS n, count(DISTINCT detectID) AS ids FROM Detection'))!;
      assert.deepEqual([Number(n.n), Number(n.ids)], [manifest.totals.detections, manifest.totals.detections]);
    } finally {
      await archive.close();
    }
  } finally {
    await s.stop().catch(() => {});
    for (const fn of closers) await fn();
    await services.close();
  }
}));
