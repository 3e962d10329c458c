import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withTempDir } from '../../common/index.ts';
import { DATASTORE_MIGRATIONS, DatastoreClient, startDatastoreServer } from '../../datastore/index.ts';
import { openDatabase, testEngines } from '../../db/index.ts';
import { batchSchemaOf, mergeBatch, openArchive, ProblemList, stageBatch, validateBatch } from '../../psps/index.ts';
import { p2Batch, writeBatchCsv, writeBatchFits, writeTestSchema } from '../../psps/test-support.ts';
import { runIpp, startIpp } from '../testing.ts';

for (const engine of testEngines()) {
  describe(`ipp odm, dxlayer and archive on ${engine.name}`, { skip: engine.skip }, () => {
    it('serve, hand over with dxlayer --once, status, query and cone through the CLI', () => engine.withUrl((pgUrl) => withTempDir(async (dir) => {
      const schema = await writeTestSchema(join(dir, 'schema'));
      const archive = engine.name === 'sqlite' ? `sqlite:${join(dir, 'archive.db')}` : pgUrl;
      const psps = `sqlite:${join(dir, 'psps.db')}`;
      const dsDb = await openDatabase(`sqlite:${join(dir, 'ds.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
      const ds = await startDatastoreServer({ root: join(dir, 'ds'), db: dsDb, fsync: false, reserveBytes: 0 });
      const controller = new AbortController();
      const serving = startIpp(['odm', 'serve', '--db', psps, '--archive', archive, '--schema-dir', schema, '--port', '0', '--dir', join(dir, 'dx')], {
        signal: controller.signal, env: { IPP_ODM_TOKEN: 'odm-secret' },
      });
      try {
        let url: string | undefined;
        for (let i = 0; i < 400 && url === undefined; i++) {
          url = /at (http:\/\/\S+) /.exec(serving.stdout())?.[1];
          if (url === undefined) await sleep(25);
        }
        assert.ok(url, `serve printed its URL: ${serving.stdout()} ${serving.stderr()}`);
        const client = new DatastoreClient({ url: ds.url });
        await client.addProduct({ name: 'PSPS_test', type: 'IPP_PSPS', description: 'cli' });
        const { fits, manifest } = await writeBatchFits(join(dir, 'out'), 'B00000042', 'P2', p2Batch(42, 30));
        await client.publish('PSPS_test', 'B00000042', [{ path: fits }, { path: manifest }]);
        const env = { IPP_ODM_URL: url, IPP_ODM_TOKEN: 'odm-secret', IPP_DATASTORE_URL: ds.url, IPP_ARCHIVE_DB: archive };
        let r = await runIpp(['dxlayer', '--product', 'PSPS_test', '--dir', join(dir, 'dx'), '--db', psps, '--once'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /handed 1 batch to the ODM: B00000042/);
        for (let i = 0; i < 200; i++) {
          r = await runIpp(['odm', 'status', 'B00000042', '--json'], env);
          if (JSON.parse(r.stdout).state === 'merged') break;
          await sleep(25);
        }
        assert.equal(JSON.parse(r.stdout).state, 'merged');
        r = await runIpp(['odm', 'status', '--state', 'merged'], env);
        assert.match(r.stdout, /^B00000042 +P2 +merged/);
        r = await runIpp(['odm', 'status', 'B00000099'], env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /unknown_batch/);
        r = await runIpp(['odm', 'status', '--state', 'sideways'], env);
        assert.equal(r.code, 2);

        r = await runIpp(['archive', 'query', 'SELECT count(*) AS n FROM Detection', '--json', '--schema-dir', schema], env);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), [{ n: 30 }]);
        r = await runIpp(['archive', 'query', 'SELECT detectID, ra FROM Detection ORDER BY detectID LIMIT 2', '--csv', '--schema-dir', schema], env);
        assert.equal(r.stdout.toLowerCase(), 'detectid,ra\n4200000,10\n4200001,10.001\n');
        r = await runIpp(['archive', 'cone', '--table', 'Detection', '--json', '--schema-dir', schema, '--', '10.0015', '-5', '3s'], env);
        assert.equal(r.code, 0, r.stderr);
        const hits = JSON.parse(r.stdout) as { detectid?: number; detectID?: number; distance_arcsec: number }[];
        assert.deepEqual(hits.map((h) => h.detectID ?? h.detectid), [4200001, 4200002]);
        assert.ok(Math.abs(hits[0].distance_arcsec - 1.8) < 0.01);
        r = await runIpp(['archive', 'cone', '400', '0', '1', '--schema-dir', schema], env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /psps_bad_cone/);
        r = await runIpp(['archive', 'query', 'SELECT nothing FROM nowhere', '--schema-dir', schema], env);
        assert.equal(r.code, 1);
        // read-only unless asked
        r = await runIpp(['archive', 'query', 'DELETE FROM Detection', '--schema-dir', schema], env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /read.only|readonly/i);
        r = await runIpp(['archive', 'query', 'DELETE FROM Detection WHERE detectID = 4200000', '--write', '--schema-dir', schema], env);
        assert.equal(r.code, 0, r.stderr);
        r = await runIpp(['archive', 'query', 'SELECT count(*) AS n FROM Detection', '--json', '--schema-dir', schema], env);
        assert.deepEqual(JSON.parse(r.stdout), [{ n: 29 }]);
        r = await runIpp(['archive', 'init', '--schema-dir', schema], env);
        assert.match(r.stdout, /4 tables \(Filter, ObjectThin, MeanObject, FrameMeta, Detection\)|5 tables/);
      } finally {
        controller.abort();
        assert.equal(await serving.done, 0);
        await ds.close();
        await dsDb.close();
      }
    }, 'ipp-cli-psps-')));

    it('archive init --partition-by-batch: PostgreSQL only, and only for tables it creates', () => engine.withUrl((pgUrl) => withTempDir(async (dir) => {
      const schema = await writeTestSchema(join(dir, 'schema'));
      if (engine.name === 'sqlite') {
        const r = await runIpp(['archive', 'init', '--db', `sqlite:${join(dir, 'a.db')}`, '--partition-by-batch', '--schema-dir', schema], {});
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--partition-by-batch needs a PostgreSQL archive/);
        return;
      }
      let r = await runIpp(['archive', 'init', '--db', pgUrl, '--partition-by-batch', '--schema-dir', schema], {});
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /, partitioned by batch; positions indexed with Q3C/);
      r = await runIpp(['archive', 'init', '--db', pgUrl, '--schema-dir', schema], {});
      assert.match(r.stdout, /, partitioned by batch;/, 'the layout stays what the tables were created with');
      // plain tables made by hand stay plain, with a warning
      const db = await openDatabase(pgUrl, {});
      try {
        for (const t of ['Filter', 'ObjectThin', 'MeanObject', 'FrameMeta', 'Detection', 'archive_merge', 'archive_schema']) await db.exec(`DROP TABLE IF EXISTS ${t} CASCADE`);
      } finally {
        await db.close();
      }
      r = await runIpp(['archive', 'init', '--db', pgUrl, '--schema-dir', schema], {});
      assert.match(r.stdout, /, plain;/);
      r = await runIpp(['archive', 'init', '--db', pgUrl, '--partition-by-batch', '--schema-dir', schema], {});
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /, plain;/);
      assert.match(r.stderr, /existed already as plain tables; --partition-by-batch applies only to tables it creates/);
    }, 'ipp-cli-archive-')));

    it('archive compact folds a partitioned archive\'s batch partitions and says what it folded', () => engine.withUrl((pgUrl) => withTempDir(async (dir) => {
      const schema = await writeTestSchema(join(dir, 'schema'));
      const url = engine.name === 'sqlite' ? `sqlite:${join(dir, 'a.db')}` : pgUrl;
      let r = await runIpp(['archive', 'compact', '--help'], {});
      assert.equal(r.code, 0);
      assert.match(r.stdout, /--batches-per-partition K/);
      r = await runIpp(['archive', 'compact', '--db', url, '--batches-per-partition', '1', '--schema-dir', schema], {});
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--batches-per-partition "1" must be a whole number of at least 2/);
      const archive = await openArchive(url, { schemaDir: schema, partitionByBatch: true });
      try {
        const p2 = batchSchemaOf(archive.schema, 'P2');
        for (let i = 1; i <= 5; i++) {
          const name = `B0000010${i}`;
          const problems = new ProblemList(5);
          await stageBatch(archive, name, p2, await writeBatchCsv(join(dir, name), p2Batch(100 + i, 10)), problems);
          assert.equal((await validateBatch(archive, name, p2)).total + problems.total, 0);
          await mergeBatch(archive, name, 1, p2);
        }
      } finally {
        await archive.close();
      }
      if (engine.name === 'sqlite') {
        r = await runIpp(['archive', 'compact', '--db', url, '--schema-dir', schema], {});
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /not partitioned by batch; nothing to compact/);
        return;
      }
      r = await runIpp(['archive', 'compact', '--db', url, '--batches-per-partition', '2', '--schema-dir', schema], {});
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Detection: folded 2 partitions of level 0 \(2 batches, 20 rows\) into arcc_detection_\w+ in [\d.]+ s$/m);
      assert.match(r.stdout, /^Detection: folded 2 partitions of level 1 \(4 batches, 40 rows\)/m);
      assert.match(r.stdout, /partitions per table: .*Detection 5 -> 2/);
      r = await runIpp(['archive', 'compact', '--db', url, '--batches-per-partition', '2', '--json', '--schema-dir', schema], {});
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(r.stdout) as { folds: unknown[]; partitions: Record<string, { before: number; after: number }> };
      assert.deepEqual(json.folds, []);
      assert.deepEqual(json.partitions.Detection, { before: 2, after: 2 });
      r = await runIpp(['archive', 'query', 'SELECT count(*) AS n FROM Detection', '--json', '--db', url, '--schema-dir', schema], {});
      assert.deepEqual(JSON.parse(r.stdout), [{ n: 50 }]);
    }, 'ipp-cli-compact-')));
  });
}
