import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, withTempDir } from '../common/index.ts';
import { DATASTORE_MIGRATIONS, DatastoreClient, startDatastoreServer, type DatastoreServer } from '../datastore/index.ts';
import { openDatabase, testEngines, type Database } from '../db/index.ts';
import type { HttpService } from '../common/index.ts';
import { openArchive, type Archive } from './archive.ts';
import { dxlayerCursor, dxlayerPass, runDxlayer, type DxlayerOptions } from './dxlayer.ts';
import { PSPS_MIGRATIONS } from './migrations.ts';
import { Odm } from './odm.ts';
import { OdmClient } from './odm-client.ts';
import { startOdmServer } from './odm-server.ts';
import { obBatch, p2Batch, writeBatchFits, writeTestSchema, type TestTable } from './test-support.ts';

const PRODUCT = 'PSPS_test';

interface Chain {
  dir: string; archive: Archive; db: Database; dsDb: Database; odm: Odm;
  ds: DatastoreServer; odmServer: HttpService; datastore: DatastoreClient; odmClient: OdmClient;
  options(extra?: Partial<DxlayerOptions>): DxlayerOptions;
  publish(name: string, type: string, tables: TestTable[], replace?: boolean): Promise<void>;
  count(table: string): Promise<number>;
}

async function withChain(engine: ReturnType<typeof testEngines>[number], fn: (c: Chain) => Promise<void>): Promise<void> {
  await engine.withUrl((url) => withTempDir(async (dir) => {
    const schemaDir = await writeTestSchema(join(dir, 'schema'));
    const archive = await openArchive(engine.name === 'sqlite' ? `sqlite:${join(dir, 'archive.db')}` : url, { schemaDir });
    const db = await openDatabase(engine.name === 'sqlite' ? `sqlite:${join(dir, 'psps.db')}` : url, { migrations: [PSPS_MIGRATIONS] });
    const dsDb = await openDatabase(`sqlite:${join(dir, 'ds.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
    const ds = await startDatastoreServer({ root: join(dir, 'ds'), db: dsDb, fsync: false, reserveBytes: 0 });
    const odm = await Odm.start({ db, archive, retryMs: 50 });
    const odmServer = await startOdmServer({ odm });
    const datastore = new DatastoreClient({ url: ds.url });
    await datastore.addProduct({ name: PRODUCT, type: 'IPP_PSPS', description: 'test batches' });
    const odmClient = new OdmClient({ url: odmServer.url });
    const chain: Chain = {
      dir, archive, db, dsDb, odm, ds, odmServer, datastore, odmClient,
      options: (extra = {}) => ({ db, datastore: chain.datastore, odm: chain.odmClient, product: PRODUCT, dir: join(dir, 'dx'), intervalMs: 50, backoffMs: 20, maxBackoffMs: 100, ...extra }),
      async publish(name, type, tables, replace = false) {
        const out = join(dir, 'out', name);
        const { fits, manifest } = await writeBatchFits(out, name, type, tables, PRODUCT);
        await datastore.publish(PRODUCT, name, [{ path: fits }, { path: manifest }], { replace });
      },
      count: async (table) => Number((await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))?.n),
    };
    try {
      await fn(chain);
    } finally {
      await chain.odmServer.close();
      await chain.ds.close();
      await odm.close();
      await dsDb.close();
      await db.close();
      await archive.close();
    }
  }, 'ipp-dx-'));
}

for (const engine of testEngines()) {
  describe(`DXLayer on ${engine.name}`, { skip: engine.skip }, () => {
    it('takes new batches from the datastore, converts them to CSV and hands them to the ODM, once', () => withChain(engine, async (c) => {
      await c.publish('B00000001', 'P2', p2Batch(1, 500));
      await c.publish('B00000002', 'OB', obBatch(100_000, 700));
      assert.deepEqual(await dxlayerPass(c.options()), ['B00000001', 'B00000002']);
      await c.odm.idle();
      assert.equal((await c.odmClient.batch('B00000001')).state, 'merged');
      assert.equal((await c.odmClient.batch('B00000002')).state, 'merged');
      assert.equal(await c.count('Detection'), 500);
      assert.equal(await c.count('ObjectThin'), 700);
      const csv = await readFile(join(c.dir, 'dx', 'B00000001', 'Detection.csv'), 'utf8');
      assert.equal(csv.split('\n')[0], 'detectID,frameID,objID,ra,dec,psfFlux,infoFlag,filterID');
      assert.match(csv.split('\n')[1], /^100000,1,100000,10,-5,-999,0,2$/);
      // nothing new: nothing taken; the cursor survives a restart of the DXLayer
      assert.deepEqual(await dxlayerPass(c.options()), []);
      assert.ok(await dxlayerCursor(c.db, PRODUCT) > 0);
      // cleanup's request deletes the DXLayer's copy
      assert.deepEqual(await c.odmClient.deleteCopy('B00000001'), { name: 'B00000001', deleted: true });
      await assert.rejects(stat(join(c.dir, 'dx', 'B00000001')));
      const row = await c.db.get<{ state: string }>("SELECT state FROM dxlayer_batch WHERE name = 'B00000001'");
      assert.equal(row?.state, 'deleted');
    }));

    it('an impossible value fails the batch with its reason; the fixed batch re-published is merged once', () => withChain(engine, async (c) => {
      await c.publish('B00000003', 'P2', p2Batch(3, 100, { badRa: [41] }));
      await dxlayerPass(c.options());
      await c.odm.idle();
      let s = await c.odmClient.batch('B00000003');
      assert.equal(s.state, 'failed');
      assert.deepEqual(s.reasons, ['Detection.ra row 42: "441" breaks range (must lie in [0, 360])']);
      await c.publish('B00000003', 'P2', p2Batch(3, 100), true);
      assert.deepEqual(await dxlayerPass(c.options()), ['B00000003']);
      await c.odm.idle();
      s = await c.odmClient.batch('B00000003');
      assert.equal(s.state, 'merged');
      assert.equal(s.generation, 2);
      assert.equal(await c.count('Detection'), 100);
      // and once more (a second fix): still each row once
      await c.publish('B00000003', 'P2', p2Batch(3, 90), true);
      await dxlayerPass(c.options());
      await c.odm.idle();
      assert.equal(await c.count('Detection'), 90);
    }));

    it('a batch that cannot be converted is handed over failed, with the reason, and does not stall the ones after it', () => withChain(engine, async (c) => {
      const out = join(c.dir, 'out', 'B00000006');
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'B00000006.fits'), Buffer.alloc(5760, 65));
      await writeFile(join(out, 'B00000006.manifest.json'), JSON.stringify({ format: 'ipptopsps-batch', version: 1, batch: 'B00000006', type: 'P2', files: [] }));
      await c.datastore.publish(PRODUCT, 'B00000006', [{ path: join(out, 'B00000006.fits') }, { path: join(out, 'B00000006.manifest.json') }]);
      await c.publish('B00000007', 'P2', p2Batch(7, 20));
      assert.deepEqual(await dxlayerPass(c.options()), ['B00000006', 'B00000007']);
      await c.odm.idle();
      const s = await c.odmClient.batch('B00000006');
      assert.equal(s.state, 'failed');
      assert.match(s.reasons[0], /^the DXLayer could not convert the batch: \/.*\/B00000006\.fits: not a FITS file/);
      assert.equal((await c.odmClient.batch('B00000007')).state, 'merged');
    }));

    it('waits out a datastore and an ODM that are down, and loses nothing', () => withChain(engine, async (c) => {
      const warnings: string[] = [];
      const log = createLogger({ level: 'warn', sinks: [{ write: (s: string) => warnings.push(s) }] });
      const controller = new AbortController();
      await c.publish('B00000004', 'P2', p2Batch(4, 50));
      // the ODM goes away; the DXLayer keeps trying
      const odmPort = c.odmServer.port;
      await c.odmServer.close();
      const running = runDxlayer(c.options({ log, signal: controller.signal }));
      while (!warnings.some((w) => /cannot reach the ODM/.test(w))) await sleep(20);
      assert.equal(await dxlayerCursor(c.db, PRODUCT), 0);
      c.odmServer = await startOdmServer({ odm: c.odm, port: odmPort });
      while ((await c.odm.list({ state: 'merged' })).length < 1) await sleep(20);
      // now the datastore goes away, and comes back on its port with a new batch
      const dsPort = c.ds.port;
      await c.ds.close();
      const seen = warnings.length;
      while (!warnings.slice(seen).some((w) => /cannot reach the datastore/.test(w))) await sleep(20);
      c.ds = await startDatastoreServer({ root: join(c.dir, 'ds'), db: c.dsDb, fsync: false, reserveBytes: 0, port: dsPort });
      await c.publish('B00000005', 'P2', p2Batch(5, 60));
      while ((await c.odm.list({ state: 'merged' })).length < 2) await sleep(20);
      controller.abort();
      assert.deepEqual(await running, ['B00000004', 'B00000005']);
      assert.equal(await c.count('Detection'), 110);
    }));
  });
}
