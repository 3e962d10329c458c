import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { RemoteError } from '../../common/index.ts';
import { openDatabase, testEngines, type Database } from '../../db/index.ts';
import { DATASTORE_MIGRATIONS, DatastoreClient, startDatastoreServer, type DatastoreServer } from '../../datastore/index.ts';
import { p2Batch } from '../../psps/test-support.ts';
import type { BatchStage, StageState } from '../migrations.ts';
import { STAGES, toBatchRow, type BatchRow } from './batch-stages.ts';
import { BATCH_COPIES, cleanupConfig, deletionsDue, type BatchCopy, type DeletionPolicy } from './cleanup.ts';
import { OdmClient } from './odm-client.ts';
import { addConfig, insertBatch, startTestOdm, withTracking, type TestOdm } from './test-support.ts';

type Stages = Partial<Record<BatchStage, StageState | null>>;

function row(stages: Stages, extra: { purged?: boolean; local?: boolean } = {}): BatchRow {
  return toBatchRow({
    batch_id: 1, name: 'B00000001', config: 'c', batch_type: 'P2', item_id: null, source_id: 1, created_at: '2026-11-20T00:00:00Z',
    local_path: extra.local === false ? null : '/tmp/x/B00000001', n_rows: 1, purged: extra.purged ? 1 : 0, reason: null,
    ...Object.fromEntries(STAGES.map((s) => [s, stages[s] ?? null])),
  });
}

const DEFAULT: DeletionPolicy = { delete_datastore_on: ['merge_worthy', 'failed'], delete_dxlayer_on: ['merge_worthy', 'failed'], delete_local_on: ['merged'] };
const CUSTOM: DeletionPolicy = { delete_datastore_on: ['loaded'], delete_dxlayer_on: ['merged'], delete_local_on: ['failed', 'merge_worthy'] };

/** The ODM-side states a batch can be in, with the copies each policy deletes (written out from the guide, not computed). */
const ODM_CASES: { label: string; stages: Stages; byDefault: string; byCustom: string }[] = [
  { label: 'sent, not loaded', stages: { loaded_to_odm: 'pending' }, byDefault: '', byCustom: '' },
  { label: 'failed loading', stages: { loaded_to_odm: 'failed' }, byDefault: 'datastore,dxlayer', byCustom: 'local' },
  { label: 'loaded', stages: { loaded_to_odm: 'succeeded' }, byDefault: '', byCustom: 'datastore' },
  { label: 'loaded, judging', stages: { loaded_to_odm: 'succeeded', merge_worthy: 'pending' }, byDefault: '', byCustom: 'datastore' },
  { label: 'failed validation', stages: { loaded_to_odm: 'succeeded', merge_worthy: 'failed' }, byDefault: 'datastore,dxlayer', byCustom: 'datastore,local' },
  { label: 'merge-worthy', stages: { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded' }, byDefault: 'datastore,dxlayer', byCustom: 'datastore,local' },
  { label: 'merging', stages: { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'pending' }, byDefault: 'datastore,dxlayer', byCustom: 'datastore,local' },
  { label: 'failed merge', stages: { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'failed' }, byDefault: 'datastore,dxlayer', byCustom: 'datastore,local' },
  { label: 'merged', stages: { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'succeeded' }, byDefault: 'datastore,dxlayer,local', byCustom: 'datastore,dxlayer,local' },
];
const PUBLISHED: Stages = { processed: 'succeeded', loaded_to_datastore: 'succeeded' };

test('deletionsDue: the guide\'s policy and a custom one for every ODM state, purged or not', () => {
  for (const c of ODM_CASES) {
    const stages = { ...PUBLISHED, ...c.stages };
    assert.equal(deletionsDue(row(stages), DEFAULT).join(','), c.byDefault, `default: ${c.label}`);
    assert.equal(deletionsDue(row(stages), CUSTOM).join(','), c.byCustom, `custom: ${c.label}`);
    assert.equal(deletionsDue(row(stages, { purged: true }), DEFAULT).join(','), 'datastore,dxlayer,local', `purged: ${c.label}`);
  }
});

test('deletionsDue over every combination of stage states: never a copy that cannot exist or is gone, all of a purged batch, more triggers never fewer deletions', () => {
  const states: (StageState | null)[] = [null, 'pending', 'succeeded', 'failed'];
  const policies = [DEFAULT, CUSTOM, { delete_datastore_on: [], delete_dxlayer_on: [], delete_local_on: [] }];
  let n = 0;
  for (const ds of states) for (const lo of states) for (const mw of states) for (const mg of states) {
    for (const deleted of states) for (const purged of [false, true]) for (const local of [false, true]) {
      const stages: Stages = { loaded_to_datastore: ds, loaded_to_odm: lo, merge_worthy: mw, merged: mg, deleted_datastore: deleted, deleted_dxlayer: deleted, deleted_local: deleted };
      const r = row(stages, { purged, local });
      for (const policy of policies) {
        const due = deletionsDue(r, policy);
        n++;
        if (deleted === 'succeeded') assert.deepEqual(due, []);
        if (ds !== 'succeeded') assert.ok(!due.includes('datastore'));
        if (lo === null) assert.ok(!due.includes('dxlayer'));
        if (!local) assert.ok(!due.includes('local'));
        const possible = BATCH_COPIES.filter((c) => (c === 'datastore' ? ds === 'succeeded' : c === 'dxlayer' ? lo !== null : local));
        if (purged && deleted !== 'succeeded') assert.deepEqual(due, possible);
        if (!purged) for (const c of deletionsDue(r, { delete_datastore_on: [], delete_dxlayer_on: [], delete_local_on: [] })) assert.ok(due.includes(c));
        // Adding purged only ever adds deletions.
        for (const c of due) assert.ok(deletionsDue(row(stages, { purged: true, local }), policy).includes(c));
      }
    }
  }
  assert.equal(n, 4 ** 5 * 2 * 2 * 3);
});

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function startDatastore(dir: string, port = 0): Promise<{ server: DatastoreServer; db: Database }> {
  const db = await openDatabase(`sqlite:${join(dir, 'datastore.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
  const server = await startDatastoreServer({ root: join(dir, 'root'), db, reserveBytes: 0, fsync: false, port });
  return { server, db };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Made { name: string; dx: string | null; local: string; published: boolean }

/** A batch in every place its stages say it reached: published, handed to the ODM, written locally. */
async function makeBatch(db: Database, dir: string, ds: DatastoreClient, odm: TestOdm, config: string, stages: Stages, opts: { purged?: boolean; frame: number }): Promise<Made> {
  const { name } = await insertBatch(db, { config, batchType: 'P2', stages, purged: opts.purged });
  const local = join(dir, 'local', name);
  await mkdir(local, { recursive: true });
  await writeFile(join(local, `${name}.fits`), `fits of ${name}`);
  await writeFile(join(local, `${name}.manifest.json`), '{}');
  await db.run('UPDATE batch SET local_path = ? WHERE name = ?', [local, name]);
  const published = stages.loaded_to_datastore === 'succeeded';
  if (published) await ds.publish('PSPS_test', name, [{ data: Buffer.from(`fits of ${name}`), name: `${name}.fits` }]);
  const dx = stages.loaded_to_odm ? await odm.hand(name, 'P2', p2Batch(opts.frame, 2)) : null;
  return { name, dx, local, published };
}

async function inDatastore(ds: DatastoreClient, name: string): Promise<boolean> {
  try {
    await ds.fileset('PSPS_test', name);
    return true;
  } catch (error) {
    if (error instanceof RemoteError && error.status === 404) return false;
    throw error;
  }
}

async function eventsOf(db: Database, name: string, stage: string): Promise<string[]> {
  const rows = await db.all(`SELECT e.state FROM batch_event e JOIN batch b ON b.batch_id = e.batch_id WHERE b.name = ? AND e.stage = ? ORDER BY e.event_id`, [name, stage]);
  return rows.map((r) => String(r.state));
}

for (const engine of testEngines()) {
  describe(`cleanup on ${engine.name}`, { skip: engine.skip }, () => {
    it('deletes exactly the copies the policy names, through the real datastore, ODM and files, once', () => withTracking(engine, async (db, dir) => {
      const { server, db: dsDb } = await startDatastore(join(dir, 'ds'));
      const odm = await startTestOdm(join(dir, 'odm'));
      try {
        const ds = new DatastoreClient({ url: server.url });
        await ds.addProduct({ name: 'PSPS_test', type: 'IPP_PSPS', description: 'test' });
        const byDefault = await addConfig(db, 'c1');
        const custom = await addConfig(db, 'c2', { delete_datastore_on: 'loaded', delete_dxlayer_on: 'merged', delete_local_on: 'failed,merge_worthy' });
        const cases: { made: Made; expect: string; config: string }[] = [];
        let frame = 5000;
        for (const c of ODM_CASES) {
          const stages = { ...PUBLISHED, ...c.stages };
          cases.push({ made: await makeBatch(db, dir, ds, odm, 'c1', stages, { frame: frame++ }), expect: c.byDefault, config: 'c1' });
          cases.push({ made: await makeBatch(db, dir, ds, odm, 'c1', stages, { frame: frame++, purged: true }), expect: 'datastore,dxlayer,local', config: 'c1' });
          cases.push({ made: await makeBatch(db, dir, ds, odm, 'c2', stages, { frame: frame++ }), expect: c.byCustom, config: 'c2' });
        }
        // Never published, purged: only the local copy exists. Not yet at the ODM: nothing due.
        cases.push({ made: await makeBatch(db, dir, ds, odm, 'c1', { processed: 'succeeded', loaded_to_datastore: 'failed' }, { frame: frame++, purged: true }), expect: 'local', config: 'c1' });
        cases.push({ made: await makeBatch(db, dir, ds, odm, 'c1', { processed: 'succeeded', loaded_to_datastore: 'succeeded' }, { frame: frame++ }), expect: '', config: 'c1' });
        await odm.idle();

        const services = { datastore: ds, odm: new OdmClient({ url: odm.url }) };
        const r1 = await cleanupConfig(db, byDefault, services);
        const r2 = await cleanupConfig(db, custom, services);
        const want = (copy: BatchCopy) => cases.filter((c) => c.expect.split(',').includes(copy)).length;
        for (const copy of BATCH_COPIES) assert.equal(r1.deleted[copy] + r2.deleted[copy], want(copy), `${copy} deletions`);
        assert.deepEqual([r1.failed, r2.failed], [{ datastore: 0, dxlayer: 0, local: 0 }, { datastore: 0, dxlayer: 0, local: 0 }]);

        for (const { made, expect } of cases) {
          const gone = new Set(expect.split(',').filter(Boolean));
          const label = `${made.name} (${expect || 'nothing'})`;
          assert.equal(await inDatastore(ds, made.name), made.published && !gone.has('datastore'), `${label}: datastore copy`);
          if (made.dx) assert.equal(await exists(made.dx), !gone.has('dxlayer'), `${label}: DXLayer copy`);
          assert.equal(await exists(made.local), !gone.has('local'), `${label}: local copy`);
          const r = (await db.get('SELECT * FROM batch WHERE name = ?', [made.name]))!;
          for (const copy of BATCH_COPIES) {
            const stage = `deleted_${copy}`;
            assert.equal(r[stage], gone.has(copy) ? 'succeeded' : null, `${label}: ${stage}`);
            assert.deepEqual(await eventsOf(db, made.name, stage), gone.has(copy) ? ['pending', 'succeeded'] : [], `${label}: ${stage} events`);
          }
        }
        const events = Number((await db.get('SELECT COUNT(*) AS n FROM batch_event'))!.n);
        const again = [await cleanupConfig(db, byDefault, services), await cleanupConfig(db, custom, services)];
        assert.equal(again[0].batches + again[1].batches, 0);
        assert.equal(Number((await db.get('SELECT COUNT(*) AS n FROM batch_event'))!.n), events, 'a second pass records nothing');
      } finally {
        await odm.close();
        await server.close();
        await dsDb.close();
      }
    }));

    it('marks a deletion failed with the reason when a service is down or missing, and retries it next pass', () => withTracking(engine, async (db, dir) => {
      const odm = await startTestOdm(join(dir, 'odm'));
      const port = await freePort();
      let datastore: { server: DatastoreServer; db: Database } | undefined = await startDatastore(join(dir, 'ds'), port);
      try {
        const ds = new DatastoreClient({ url: datastore.server.url });
        await ds.addProduct({ name: 'PSPS_test', type: 'IPP_PSPS', description: 'test' });
        const config = await addConfig(db, 'c1');
        const stages = { ...PUBLISHED, loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'succeeded' } as const;
        const a = await makeBatch(db, dir, ds, odm, 'c1', stages, { frame: 7000 });
        // A second batch shares a directory with other files: only its own files go.
        const b = await makeBatch(db, dir, ds, odm, 'c1', stages, { frame: 7001 });
        const shared = join(dir, 'shared');
        await mkdir(shared);
        await writeFile(join(shared, `${b.name}.fits`), 'x');
        await writeFile(join(shared, `${b.name}.manifest.json`), 'x');
        await writeFile(join(shared, 'other.fits'), 'keep me');
        await db.run('UPDATE batch SET local_path = ? WHERE name = ?', [shared, b.name]);
        await odm.idle();
        await datastore.server.close();
        await datastore.db.close();
        datastore = undefined;

        const first = await cleanupConfig(db, config, { datastore: ds });
        assert.deepEqual(first.failed, { datastore: 2, dxlayer: 2, local: 0 });
        assert.deepEqual(first.deleted, { datastore: 0, dxlayer: 0, local: 2 });
        const row = (await db.get('SELECT * FROM batch WHERE name = ?', [a.name]))!;
        assert.deepEqual([row.deleted_datastore, row.deleted_dxlayer, row.deleted_local], ['failed', 'failed', 'succeeded']);
        const details = await db.all(`SELECT stage, detail FROM batch_event WHERE batch_id = ? AND state = 'failed' ORDER BY stage`, [Number(row.batch_id)]);
        assert.match(String(details[0].detail), /cannot reach the datastore/);
        assert.match(String(details[1].detail), /no ODM URL/);
        assert.deepEqual(await readdir(shared), ['other.fits']);

        datastore = await startDatastore(join(dir, 'ds'), port);
        const second = await cleanupConfig(db, config, { datastore: ds, odm: new OdmClient({ url: odm.url }) });
        assert.deepEqual(second.deleted, { datastore: 2, dxlayer: 2, local: 0 });
        assert.deepEqual(await eventsOf(db, a.name, 'deleted_datastore'), ['pending', 'failed', 'pending', 'succeeded']);
        assert.equal(await inDatastore(ds, a.name), false);
        assert.equal(await exists(a.dx!), false);
      } finally {
        await odm.close();
        if (datastore) {
          await datastore.server.close();
          await datastore.db.close();
        }
      }
    }));
  });
}
