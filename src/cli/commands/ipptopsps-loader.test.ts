// End to end on SQLite: simulate → gpc1 → addstar → queue → IN batch, a test batch, two
// loaders at once publishing to a loopback datastore, a corrupt smf failing its item and
// loading after the fix, datastore-remove.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openDatabase, type Database } from '../../db/index.ts';
import { DatastoreClient, startDatastoreServer, type DatastoreServer } from '../../datastore/index.ts';
import { runIpp, startIpp } from '../testing.ts';
import { batchEvents, openIppToPsps } from '../../ipptopsps/index.ts';
import { makeSurvey, type SurveyFixture } from './survey-fixture.ts';

let root: string;
let fx: SurveyFixture;
let storeDb: Database;
let server: DatastoreServer;
let badSmf: { file: string; original: Buffer; damaged: Buffer };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ipp-q-loader-'));
  fx = await makeSurvey(root, { exposures: 5, stacks: 2, seed: 4 });
  // The same survey again with a truncated smf (the simulator's defect injection); its damaged
  // file replaces the good one after DVO has ingested it (a disk fault after addstar).
  const bad = join(root, 'bad');
  const run = await runIpp(['sim', 'survey', '--out', bad, '--no-db', '--exposures', '5', '--stacks', '2', '--density', '0.03', '--seed', '4', '--inject-defects', 'truncated-smf']);
  assert.equal(run.code, 0, run.stderr);
  const defect = JSON.parse(await readFile(join(bad, 'survey.json'), 'utf8')).defects[0];
  const file = join(fx.survey, defect.file);
  badSmf = { file, original: await readFile(file), damaged: await readFile(join(bad, defect.file)) };
  storeDb = await openDatabase(`sqlite:${join(root, 'datastore.db')}`);
  server = await startDatastoreServer({ root: join(root, 'datastore'), db: storeDb });
});
after(async () => {
  await server?.close();
  await storeDb?.close();
  await rm(root, { recursive: true, force: true });
});

const json = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').at(-1)!);

test('simulate → queue → init, --test, two loaders on a datastore; a corrupt smf fails and loads after the fix; datastore-remove', async () => {
  const dataDir = join(root, 'data');
  const env = {
    IPP_IPPTOPSPS_DB: `sqlite:${join(root, 'ipptopsps.db')}`, IPP_GPC1_DB: fx.gpc1Url, IPP_DATASTORE_URL: server.url,
    IPP_IPPTOPSPS_DATA_DIR: dataDir,
  };
  const ipp = async (...args: string[]) => {
    const r = await runIpp(args, env);
    assert.equal(r.code, 0, `ipp ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  await ipp('config', 'set', 'c1', 'datastore_product=PSPS_test', 'datastore_publish=1', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`,
    'epoch=2026-01-01', 'min_ra=148', 'max_ra=158', 'min_dec=-2', 'max_dec=8', 'box_size=2');
  const queued = json((await ipp('queue', 'c1', '--json')).stdout) as { types: Record<string, { added: number }> };
  const items = Object.values(queued.types).reduce((n, t) => n + t.added, 0);
  assert.ok(queued.types.P2!.added === 5 && queued.types.ST!.added === 2 && queued.types.OB!.added > 0);

  // init: the IN batch, published (the product is added as dsprodtool --add would).
  const init = json((await ipp('loader', 'c1', 'init', '--json')).stdout) as { done: number; configs: { batches: { name: string; type: string }[] }[] };
  assert.equal(init.done, 1);
  assert.equal(init.configs[0]!.batches[0]!.type, 'IN');
  const ds = new DatastoreClient({ url: server.url });
  assert.equal((await ds.product('PSPS_test')).type, 'IPP_PSPS');

  // --test: the first queued exposure, OTA 33 only; the item stays queued.
  const t = json((await ipp('loader', 'c1', '--test', '--json')).stdout) as { configs: { batches: { name: string }[] }[] };
  const testName = t.configs[0]!.batches[0]!.name;
  const db = await openIppToPsps(env.IPP_IPPTOPSPS_DB);
  try {
    const tb = await db.get<{ test: number; rows_json: string; item_id: number }>('SELECT test, rows_json, item_id FROM batch WHERE name = ?', [testName]);
    assert.equal(Number(tb!.test), 1);
    assert.equal(JSON.parse(tb!.rows_json).ImageMeta, 1);
    assert.equal((await db.get<{ state: string }>('SELECT state FROM queue_item WHERE item_id = ?', [tb!.item_id]))!.state, 'pending');

    // Two loaders at once, one smf damaged.
    await writeFile(badSmf.file, badSmf.damaged);
    const a = startIpp(['loader', 'c1', '--json'], { env });
    const b = startIpp(['loader', 'c1', '--json'], { env });
    assert.deepEqual([await a.done, await b.done], [0, 0], a.stderr() + b.stderr());
    const ra = json(a.stdout()) as { done: number; failed: number };
    const rb = json(b.stdout()) as { done: number; failed: number };
    assert.equal(ra.done + rb.done, items - 1);
    assert.equal(ra.failed + rb.failed, 1);
    const failed = await db.all<{ path: string; reason: string; attempts: number }>(`SELECT path, reason, attempts FROM queue_item WHERE state = 'failed'`);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.path, badSmf.file);
    assert.match(failed[0]!.reason, /smf/);
    assert.equal(Number(failed[0]!.attempts), 1);

    // The fix, then --retry: the item loads.
    await writeFile(badSmf.file, badSmf.original);
    const retry = json((await ipp('loader', 'c1', '--retry', 'all', '--json')).stdout) as { done: number; failed: number };
    assert.deepEqual([retry.done, retry.failed], [1, 0]);

    // Every item once: one good batch each, on the datastore and on disk; nothing left in tmp.
    const perItem = await db.all<{ item_id: number; n: number }>(
      `SELECT q.item_id, COUNT(b.batch_id) AS n FROM queue_item q LEFT JOIN batch b ON b.item_id = q.item_id
         AND b.processed = 'succeeded' AND b.test = 0 AND b.loaded_to_datastore = 'succeeded' GROUP BY q.item_id`);
    assert.equal(perItem.length, items);
    assert.ok(perItem.every((r) => Number(r.n) === 1), JSON.stringify(perItem));
    assert.equal((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM queue_item WHERE state <> 'done'`))!.n, 0);
    const published = await db.all<{ name: string; batch_type: string; local_path: string; fits_md5: string }>(
      `SELECT name, batch_type, local_path, fits_md5 FROM batch WHERE loaded_to_datastore = 'succeeded' ORDER BY batch_id`);
    assert.equal(published.length, items + 2);
    const onStore = (await ds.filesets('PSPS_test')).map((f) => f.name).sort();
    assert.deepEqual(onStore, published.map((p) => p.name).sort());
    for (const p of published) {
      assert.equal(p.local_path, join(dataDir, 'c1', p.batch_type, p.name));
      assert.deepEqual((await readdir(p.local_path)).sort(), [`${p.name}.fits`, `${p.name}.manifest.json`]);
    }
    const detail = await ds.fileset('PSPS_test', published[1]!.name);
    assert.equal(detail.files.find((f) => f.name.endsWith('.fits'))!.md5, published[1]!.fits_md5);
    assert.deepEqual(await readdir(join(dataDir, 'tmp')), []);
    const good = await db.get<{ batch_id: number }>(`SELECT batch_id FROM batch WHERE batch_type = 'P2' AND loaded_to_datastore = 'succeeded' AND test = 0`);
    assert.deepEqual((await batchEvents(db, Number(good!.batch_id))).map((e) => `${e.stage}:${e.state}`),
      ['processed:pending', 'processed:succeeded', 'loaded_to_datastore:pending', 'loaded_to_datastore:succeeded', 'loaded_to_odm:pending']);
    assert.equal((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM client WHERE state <> 'exited'`))!.n, 0);

    // A rerun of the queue adds nothing: everything is published since the epoch.
    const again = json((await ipp('queue', 'c1', '--json')).stdout) as { types: Record<string, { added: number; requeued: number; pending: number }> };
    for (const ty of Object.values(again.types)) assert.deepEqual([ty.added, ty.requeued, ty.pending], [0, 0, 0]);

    // datastore-remove: a range of two batches.
    const [first, second] = [published[2]!.name, published[3]!.name];
    const removed = json((await ipp('datastore-remove', 'c1', first, second, '--json')).stdout) as { batches: { name: string; state: string }[] };
    assert.deepEqual(removed.batches.map((r) => r.state), ['removed', 'removed']);
    const left = (await ds.filesets('PSPS_test')).map((f) => f.name);
    assert.ok(!left.includes(first) && !left.includes(second) && left.length === published.length - 2);
    const rows = await db.all<{ deleted_datastore: string }>('SELECT deleted_datastore FROM batch WHERE name IN (?, ?)', [first, second]);
    assert.deepEqual(rows.map((r) => r.deleted_datastore), ['succeeded', 'succeeded']);
    const bad = await runIpp(['datastore-remove', 'c1', 'B99999999'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /batch_unknown/);
    assert.ok((await stat(join(dataDir, 'c1'))).isDirectory());

    // A datastore that is down stops the loader without using up the item's attempts.
    await ipp('config', 'set', 'c2', 'datastore_product=PSPS_test', 'datastore_publish=1', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`,
      'epoch=2026-01-01', 'min_ra=148', 'max_ra=158', 'min_dec=-2', 'max_dec=8', 'batch_types=OB');
    await ipp('queue', 'c2');
    const down = await runIpp(['loader', 'c2'], { ...env, IPP_DATASTORE_URL: 'http://127.0.0.1:9' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /datastore_unreachable/);
    assert.equal(await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM queue_item WHERE config = 'c2' AND (state <> 'pending' OR attempts <> 0)`).then((r) => Number(r!.n)), 0);
    assert.deepEqual(await readdir(join(dataDir, 'tmp')), []);
  } finally {
    await db.close();
  }
});
