// The whole chain under a rejected batch: a P2 batch with an impossible value injected on the
// datastore is failed by the ODM with its reason; pollodm records the failure (seen by the
// metrics and the console) and sends the item back to the queue; the loader builds it again,
// the new batch is merged, and the archive holds every detection exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FitsFile, Header, writeFits } from '../../fits/index.ts';
import { withTempDir } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import { DatastoreClient } from '../../datastore/index.ts';
import { openIppToPsps } from '../../ipptopsps/index.ts';
import { failedBatches } from '../../ipptopsps/console/index.ts';
import { makeSurvey, startCampaignServices } from './survey-fixture.ts';
import { readSurveyManifest } from '../../sim/index.ts';
import { collectTable, memoryTable } from '../../table/index.ts';
import { runIpp } from '../testing.ts';

/** Rewrites a batch FITS file with Detection.ra of row `row` set to `value`; returns its new md5 and size. */
async function injectRa(path: string, row: number, value: number): Promise<{ md5: string; bytes: number }> {
  const file = await FitsFile.open(path);
  const hdus = [];
  let primary: Header;
  try {
    primary = file.hdus[0]!.header;
    for (const h of file.hdus.slice(1)) {
      const table = file.table(h.index);
      const batch = await collectTable(table);
      if (h.extname === 'Detection') {
        const ra = batch.columns[table.columns.findIndex((c) => c.name === 'ra')]!.values as Float64Array;
        ra[row] = value;
      }
      hdus.push({ table: memoryTable(table.columns, [batch], { name: h.extname! }), header: new Header().set('EXTNAME', h.extname!) });
    }
  } finally {
    await file.close();
  }
  await writeFits(`${path}.new`, hdus, { primaryHeader: primary });
  await rename(`${path}.new`, path);
  const bytes = await readFile(path);
  return { md5: createHash('md5').update(bytes).digest('hex'), bytes: bytes.length };
}

test('a batch the ODM rejects: failed with its reason in the tracking database, metrics and console; loaded again and merged once', () => withTempDir(async (root) => {
  const fx = await makeSurvey(join(root, 'fx'), { exposures: 3, stacks: 1, density: 0.05 });
  const manifest = await readSurveyManifest(fx.survey);
  const services = await startCampaignServices(root, fx);
  const { env } = services;
  try {
    const ipp = async (...args: string[]) => {
      const r = await runIpp(args, env);
      assert.equal(r.code, 0, `ipp ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const odmSettled = async () => {
      for (let i = 0; i < 600; i++) {
        const batches = JSON.parse(await ipp('odm', 'status', '--json')) as { state: string }[];
        if (batches.every((b) => b.state === 'merged' || b.state === 'failed')) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail('the ODM did not settle');
    };

    await ipp('config', 'set', 'c1', 'datastore_product=PSPS_test', 'datastore_publish=1', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`,
      'epoch=2020-01-01', 'batch_types=P2', 'min_ra=140', 'max_ra=165', 'min_dec=-10', 'max_dec=15');
    await ipp('queue', 'c1');
    await ipp('loader', 'c1');

    // An impossible value injected into the first P2 batch on the datastore (replaced, fileset and md5 consistent).
    const tracking = await openIppToPsps(env.IPP_IPPTOPSPS_DB);
    try {
      const first = (await tracking.get<{ name: string; item_id: number }>("SELECT name, item_id FROM batch WHERE batch_type = 'P2' ORDER BY batch_id LIMIT 1"))!;
      const ds = new DatastoreClient({ url: services.datastoreUrl });
      const got = join(root, 'tamper');
      await ds.get('PSPS_test', first.name, got);
      const fits = join(got, `${first.name}.fits`);
      const { md5, bytes } = await injectRa(fits, 0, 441);
      const man = JSON.parse(await readFile(join(got, `${first.name}.manifest.json`), 'utf8')) as { files: { name: string; bytes: number; md5: string }[] };
      man.files = man.files.map((f) => (f.name === `${first.name}.fits` ? { ...f, bytes, md5 } : f));
      await writeFile(join(got, `${first.name}.manifest.json`), JSON.stringify(man));
      await ds.publish('PSPS_test', first.name, [{ path: fits }, { path: join(got, `${first.name}.manifest.json`) }], { replace: true });

      await ipp('dxlayer', '--product', 'PSPS_test', '--dir', services.dxlayerDir, '--once');
      await odmSettled();
      await ipp('pollodm', 'c1', 'all', 'all');

      const failed = (await tracking.get<{ merge_worthy: string; reason: string; purged: number }>('SELECT merge_worthy, reason, purged FROM batch WHERE name = ?', [first.name]))!;
      assert.equal(failed.merge_worthy, 'failed');
      assert.match(failed.reason, /Detection\.ra row 1: "441" breaks range/);
      assert.equal((await tracking.get<{ state: string }>('SELECT state FROM queue_item WHERE item_id = ?', [first.item_id]))!.state, 'pending');
      // The console lists it with its reason; the metrics count it as failed.
      const views = await failedBatches(tracking, { config: 'c1' });
      assert.ok(views.some((v) => v.name === first.name && /breaks range/.test(JSON.stringify(v))), JSON.stringify(views));
      const metrics = JSON.parse((await ipp('metrics', 'c1', '--json', '--no-plots')).trim().split('\n').at(-1)!) as unknown;
      assert.match(JSON.stringify(metrics), /"merge_worthy":\{"pending":\d+,"succeeded":\d+,"failed":1\}/);

      // The loader builds the item again (a new batch); the chain takes it through.
      await ipp('loader', 'c1');
      await ipp('dxlayer', '--product', 'PSPS_test', '--dir', services.dxlayerDir, '--once');
      await odmSettled();
      await ipp('pollodm', 'c1', 'all', 'all');
      const again = await tracking.all<{ name: string; merged: string | null }>('SELECT name, merged FROM batch WHERE item_id = ? ORDER BY batch_id', [first.item_id]);
      assert.equal(again.length, 2);
      assert.deepEqual(again.map((b) => b.merged), [null, 'succeeded']);
      const open = await tracking.get<{ n: number }>("SELECT count(*) AS n FROM batch WHERE merged IS DISTINCT FROM 'succeeded' AND name <> ?", [first.name]);
      assert.equal(Number(open!.n), 0);
    } finally {
      await tracking.close();
    }
    const archive = await openDatabase(env.IPP_ARCHIVE_DB);
    try {
      const n = (await archive.get<{ n: number; ids: number; bad: number }>(
        'SELECT count(*) AS n, count(DISTINCT detectID) AS ids, sum(CASE WHEN ra > 360 THEN 1 ELSE 0 END) AS bad FROM Detection'))!;
      assert.deepEqual([Number(n.n), Number(n.ids), Number(n.bad)], [manifest.totals.detections, manifest.totals.detections, 0]);
    } finally {
      await archive.close();
    }
  } finally {
    await services.close();
  }
}, 'ipp-chain-faults-'));
