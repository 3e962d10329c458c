import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPng, withTempDir } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import { DATASTORE_MIGRATIONS, DatastoreClient, startDatastoreServer } from '../../datastore/index.ts';
import { openIppToPsps } from '../../ipptopsps/index.ts';
import { addConfig, insertBatch, insertItem, startTestOdm } from '../../ipptopsps/lifecycle/test-support.ts';
import { p2Batch } from '../../psps/test-support.ts';
import { runIpp } from '../testing.ts';

describe('ipp pollodm, cleanup, metrics, plotter', () => {
  it('refuse bad arguments with usage errors', () => withTempDir(async (dir) => {
    const env = { IPP_IPPTOPSPS_DB: `sqlite:${join(dir, 't.db')}` };
    const cases: [string[], RegExp][] = [
      [['pollodm', 'c1'], /usage: ipp pollodm/],
      [['pollodm', 'c1', 'XX', 'all'], /batch type "XX"/],
      [['pollodm', 'c1', 'P2', 'merged'], /stage "merged"/],
      [['pollodm', 'c1', 'P2', 'all'], /IPP_ODM_URL/],
      [['pollodm', 'c1', 'P2', 'all', '0'], /hours must be a positive number/],
      [['cleanup'], /give a config name/],
      [['metrics', 'c1', 'x'], /hours must be a positive number/],
      [['plotter', 'c1', 'contour'], /plot "contour" is not known/],
      [['plotter', 'c1', 'density', '--cell', '0'], /--cell must be a positive number/],
    ];
    for (const [args, message] of cases) {
      const run = await runIpp(args, env);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
    }
    const unknown = await runIpp(['metrics', 'nope'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no config named "nope"/);
  }));

  it('carry batches from the ODM\'s verdict through cleanup to the summary and the plots', () => withTempDir(async (dir) => {
    const trackingUrl = `sqlite:${join(dir, 't.db')}`;
    const odm = await startTestOdm(join(dir, 'odm'));
    const dsDb = await openDatabase(`sqlite:${join(dir, 'ds.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
    const server = await startDatastoreServer({ root: join(dir, 'ds'), db: dsDb, reserveBytes: 0, fsync: false });
    const db = await openIppToPsps(trackingUrl);
    try {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct({ name: 'PSPS_test', type: 'IPP_PSPS', description: 'cli test' });
      await addConfig(db, 'c1', { batch_types: 'P2' });
      const names: string[] = [];
      for (let i = 0; i < 3; i++) {
        const item = await insertItem(db, { config: 'c1', batchType: 'P2', sourceId: i, state: 'done', attempts: 1, ra: 12 + i, dec: 0 });
        const b = await insertBatch(db, { config: 'c1', batchType: 'P2', itemId: item, nRows: 4, createdAt: new Date().toISOString(),
          stages: { processed: 'succeeded', loaded_to_datastore: 'succeeded', loaded_to_odm: 'pending' }, times: { loaded_to_datastore: new Date().toISOString() } });
        await db.run('UPDATE queue_item SET batch_id = ? WHERE item_id = ?', [b.id, item]);
        await ds.publish('PSPS_test', b.name, [{ data: Buffer.from(b.name), name: `${b.name}.fits` }]);
        await odm.hand(b.name, 'P2', p2Batch(6100 + i, 4, i === 1 ? { badRa: [2] } : {}));
        names.push(b.name);
      }
      for (let i = 0; i < 5; i++) await insertItem(db, { config: 'c1', batchType: 'P2', sourceId: 10 + i, ra: 11 + i, dec: 1 });
      await odm.idle();
      const env = {
        IPP_IPPTOPSPS_DB: trackingUrl, IPP_ODM_URL: odm.url, IPP_DATASTORE_URL: server.url, IPP_IPPTOPSPS_DATA_DIR: join(dir, 'data'),
      };

      const poll = await runIpp(['pollodm', 'c1', 'all', 'all'], env);
      assert.equal(poll.code, 0, poll.stderr);
      assert.match(poll.stdout, /c1: asked about 3 batches: 3 changed, 0 not at the ODM yet, 1 failed \(1 items back to pending/);
      const states = await db.all('SELECT name, merged, merge_worthy FROM batch ORDER BY name');
      assert.deepEqual(states.map((r) => `${r.merge_worthy}/${r.merged}`), ['succeeded/succeeded', 'failed/null', 'succeeded/succeeded']);

      const clean = await runIpp(['cleanup', 'c1', '--json'], env);
      assert.equal(clean.code, 0, clean.stderr);
      const report = JSON.parse(clean.stdout.trim());
      assert.deepEqual(report.deleted, { datastore: 3, dxlayer: 3, local: 0 });
      assert.deepEqual((await ds.filesets('PSPS_test')).map((f) => f.name), []);

      const plots = join(dir, 'plots');
      const text = await runIpp(['metrics', 'c1', '--plots', plots], env);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /ippToPsps loading summary/);
      const lines = text.stdout.split('\n');
      assert.ok(lines.includes('| P2 |              3.0 |             3 |               0.4 |               12 |  0.0 hours ago |'), text.stdout);
      assert.ok(lines.includes('| P2 |     8 |          3        |          3        |          3        |          2     1  |          2        |          3        |          3        |                   |'), text.stdout);
      const json = await runIpp(['metrics', 'c1', '--json', '--no-plots'], env);
      assert.equal(json.code, 0, json.stderr);
      const summary = JSON.parse(json.stdout.trim());
      assert.equal(summary.types[0].stages.merge_worthy.failed, 1);
      assert.equal(summary.types[0].stages.deleted_datastore.succeeded, 3);
      assert.equal(summary.types[0].mergedDetections, 8);
      assert.deepEqual((await readdir(plots)).sort(), ['c1_P2_stages.png', 'c1_batches.png', 'c1_detections.png']);
      assert.equal((await checkPng(join(plots, 'c1_batches.png'))).text.Title, 'Published batches');
      assert.equal(Number((await db.get("SELECT COUNT(DISTINCT at) AS n FROM metrics WHERE config = 'c1'"))!.n), 2);

      const out = join(dir, 'density');
      const plot = await runIpp(['plotter', 'c1', 'density', '--out', out, '--json'], env);
      assert.equal(plot.code, 0, plot.stderr);
      const written = JSON.parse(plot.stdout.trim());
      assert.equal(written.length, 1);
      assert.equal(written[0].pending, 6, 'five pending items and the failed batch\'s item');
      assert.match(written[0].path, /c1_P2_\d{8}T\d{6}Z\.png$/);
      assert.ok((await stat(written[0].path)).size > 0);

      const clients = await db.all('SELECT program, state FROM client ORDER BY client_id');
      assert.deepEqual(clients.map((c) => `${c.program}:${c.state}`), ['pollodm:exited', 'cleanup:exited', 'metrics:exited', 'metrics:exited', 'plotter:exited']);
    } finally {
      await db.close();
      await server.close();
      await dsDb.close();
      await odm.close();
    }
  }));
});
