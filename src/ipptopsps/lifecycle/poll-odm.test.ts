import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { testEngines, type Database } from '../../db/index.ts';
import { p2Batch } from '../../psps/test-support.ts';
import { getConfig } from '../configs.ts';
import type { BatchStage, StageState } from '../migrations.ts';
import { STAGES, toBatchRow, type BatchRow } from './batch-stages.ts';
import { OdmClient, type OdmBatchStatus } from './odm-client.ts';
import { odmOutcome, pollOdm } from './poll-odm.ts';
import { addConfig, insertBatch, insertItem, startTestOdm, withTracking } from './test-support.ts';

const NOW = '2026-11-21T12:00:00.000Z';

function row(stages: Partial<Record<BatchStage, StageState | null>>): BatchRow {
  const all = Object.fromEntries(STAGES.map((s) => [s, stages[s] ?? null])) as BatchRow['stages'];
  const times = Object.fromEntries(STAGES.map((s) => [s, stages[s] ? '2026-11-20T00:00:00.000Z' : null])) as BatchRow['times'];
  return toBatchRow({ batch_id: 1, name: 'B00000001', config: 'c', batch_type: 'P2', item_id: 1, source_id: 1, created_at: NOW,
    local_path: null, n_rows: 1, purged: 0, reason: null, ...all, ...Object.fromEntries(STAGES.map((s) => [`${s}_at`, times[s]])) });
}

const T = { l: '2026-11-21T01:00:00.000Z', w: '2026-11-21T02:00:00.000Z', m: '2026-11-21T03:00:00.000Z', f: '2026-11-21T04:00:00.000Z' };
const status = (state: OdmBatchStatus['state'], at: Partial<OdmBatchStatus>): OdmBatchStatus => ({ name: 'B00000001', state, reasons: [], ...at });

test('odmOutcome: every consistent batch row against every ODM answer moves stages forward only, to what the answer implies', () => {
  type Implied = Partial<Record<'loaded_to_odm' | 'merge_worthy' | 'merged', StageState>>;
  const answers: [string, OdmBatchStatus | undefined, Implied][] = [
    ['unknown', undefined, {}],
    ['received', status('received', {}), {}],
    ['loaded', status('loaded', { loadedAt: T.l }), { loaded_to_odm: 'succeeded', merge_worthy: 'pending' }],
    ['merge_worthy', status('merge_worthy', { loadedAt: T.l, mergeWorthyAt: T.w }), { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'pending' }],
    ['merged', status('merged', { loadedAt: T.l, mergeWorthyAt: T.w, mergedAt: T.m }), { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'succeeded' }],
    ['failed loading', status('failed', { failedAt: T.f, reasons: ['bad CSV'] }), { loaded_to_odm: 'failed' }],
    ['failed validation', status('failed', { loadedAt: T.l, failedAt: T.f, reasons: ['ra 400 > 360', 'row 3'] }), { loaded_to_odm: 'succeeded', merge_worthy: 'failed' }],
    ['failed merge', status('failed', { loadedAt: T.l, mergeWorthyAt: T.w, failedAt: T.f, reasons: ['key exists'] }), { loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'failed' }],
  ];
  const rows: Partial<Record<BatchStage, StageState | null>>[] = [
    { loaded_to_odm: 'pending' }, { loaded_to_odm: 'failed' },
    ...([null, 'pending', 'failed'] as const).map((mw) => ({ loaded_to_odm: 'succeeded' as const, merge_worthy: mw })),
    ...([null, 'pending', 'succeeded', 'failed'] as const).map((mg) => ({ loaded_to_odm: 'succeeded' as const, merge_worthy: 'succeeded' as const, merged: mg })),
  ];
  const rank = (s: StageState | null | undefined): number => (s === 'succeeded' || s === 'failed' ? 2 : s === 'pending' ? 1 : 0);
  let cases = 0;
  for (const stages of rows) {
    for (const [label, answer, implied] of answers) {
      const before = row(stages);
      const outcome = odmOutcome(before, answer, NOW);
      const after: Record<string, StageState | null> = { ...before.stages };
      for (const c of outcome.changes) {
        assert.ok(rank(c.state) > rank(after[c.stage]), `${label} on ${JSON.stringify(stages)}: ${c.stage} ${after[c.stage]} -> ${c.state} is not forward`);
        after[c.stage] = c.state;
      }
      for (const stage of ['loaded_to_odm', 'merge_worthy', 'merged'] as const) {
        const want = rank(implied[stage]) > rank(before.stages[stage]) ? implied[stage]! : before.stages[stage];
        assert.equal(after[stage], want, `${label} on ${JSON.stringify(stages)}: ${stage}`);
      }
      const failedNow = outcome.changes.some((c) => c.state === 'failed');
      assert.equal(outcome.failure !== undefined, failedNow, `${label} on ${JSON.stringify(stages)}: failure reported iff a stage failed now`);
      if (failedNow) assert.equal(outcome.failure, answer!.reasons!.join('; '));
      for (const c of outcome.changes) {
        if (c.stage === 'loaded_to_odm' && c.state === 'succeeded') assert.equal(c.at, T.l);
        if (c.stage === 'merged' && c.state === 'succeeded') assert.equal(c.at, T.m);
        if (c.state === 'failed') assert.equal(c.at, T.f);
        if (c.state === 'pending') assert.equal(c.at, NOW);
      }
      cases++;
    }
  }
  assert.equal(cases, 9 * 8);
});

async function events(db: Database, name: string): Promise<string[]> {
  const rows = await db.all(`SELECT e.stage, e.state FROM batch_event e JOIN batch b ON b.batch_id = e.batch_id WHERE b.name = ? ORDER BY e.event_id`, [name]);
  return rows.map((r) => `${r.stage}:${r.state}`);
}

async function batchRow(db: Database, name: string): Promise<Record<string, unknown>> {
  return (await db.get('SELECT * FROM batch WHERE name = ?', [name]))!;
}

/** A port nothing listens on (taken from the OS, then released). */
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

for (const engine of testEngines()) {
  describe(`pollodm on ${engine.name}`, { skip: engine.skip }, () => {
    it('records merged and failed batches from the real ODM, sends the failed item back to pending, and changes nothing the second time', () => withTracking(engine, async (db, dir) => {
      const odm = await startTestOdm(join(dir, 'odm'));
      try {
        const config = await addConfig(db, 'c1', { max_attempts: '3' });
        const names: string[] = [];
        const items: number[] = [];
        for (let i = 0; i < 5; i++) {
          const item = await insertItem(db, { config: 'c1', batchType: 'P2', sourceId: 100 + i, state: 'done', attempts: 1 });
          const b = await insertBatch(db, { config: 'c1', batchType: 'P2', itemId: item, sourceId: 100 + i,
            stages: { processed: 'succeeded', loaded_to_datastore: 'succeeded', loaded_to_odm: 'pending' } });
          await db.run('UPDATE queue_item SET batch_id = ? WHERE item_id = ?', [b.id, item]);
          names.push(b.name);
          items.push(item);
        }
        // An ST batch and one of another config must not be asked about with type P2.
        const st = await insertBatch(db, { config: 'c1', batchType: 'ST', stages: { loaded_to_odm: 'pending' } });
        await addConfig(db, 'c2');
        const other = await insertBatch(db, { config: 'c2', batchType: 'P2', stages: { loaded_to_odm: 'pending' } });
        for (const [i, name] of names.slice(0, 4).entries()) {
          await odm.hand(name, 'P2', p2Batch(1000 + i, 5, i === 2 ? { badRa: [1] } : {}));
        }
        await odm.hand(st.name, 'P2', p2Batch(2000, 3));
        await odm.idle();

        const client = new OdmClient({ url: odm.url });
        const report = await pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'all', now: () => new Date(NOW) });
        assert.deepEqual({ ...report }, { config: 'c1', asked: 5, unknown: 1, changed: 4, failed: 1, requeued: 1, exhausted: 0 });
        for (const i of [0, 1, 3]) {
          const r = await batchRow(db, names[i]);
          const s = (await client.batch(names[i]))!;
          assert.equal(s.state, 'merged');
          assert.deepEqual([r.loaded_to_odm, r.merge_worthy, r.merged], ['succeeded', 'succeeded', 'succeeded']);
          assert.deepEqual([r.loaded_to_odm_at, r.merge_worthy_at, r.merged_at], [s.loadedAt, s.mergeWorthyAt, s.mergedAt]);
          assert.deepEqual(await events(db, names[i]), ['loaded_to_odm:succeeded', 'merge_worthy:succeeded', 'merged:succeeded']);
        }
        const bad = await batchRow(db, names[2]);
        assert.deepEqual([bad.loaded_to_odm, bad.merge_worthy, bad.merged], ['succeeded', 'failed', null]);
        assert.match(String(bad.reason), /ra/);
        assert.deepEqual(await events(db, names[2]), ['loaded_to_odm:succeeded', 'merge_worthy:failed']);
        const item = (await db.get('SELECT state, attempts, reason FROM queue_item WHERE item_id = ?', [items[2]]))!;
        assert.deepEqual([item.state, Number(item.attempts)], ['pending', 1]);
        assert.match(String(item.reason), new RegExp(`^${names[2]}: `));
        for (const i of [0, 1, 3, 4]) assert.equal((await db.get('SELECT state FROM queue_item WHERE item_id = ?', [items[i]]))!.state, 'done');
        const unknown = await batchRow(db, names[4]);
        assert.deepEqual([unknown.loaded_to_odm, unknown.merge_worthy], ['pending', null]);
        assert.equal((await batchRow(db, st.name)).loaded_to_odm, 'pending');
        assert.equal((await batchRow(db, other.name)).loaded_to_odm, 'pending');

        const before = Number((await db.get('SELECT COUNT(*) AS n FROM batch_event'))!.n);
        const again = await pollOdm(db, config, { odm: client, batchTypes: ['P2', 'ST', 'OB', 'IN'], stage: 'all' });
        assert.deepEqual({ ...again }, { config: 'c1', asked: 2, unknown: 1, changed: 1, failed: 0, requeued: 0, exhausted: 0 });
        assert.equal(Number((await db.get('SELECT COUNT(*) AS n FROM batch_event'))!.n), before + 3, 'only the ST batch changed');
        const third = await pollOdm(db, config, { odm: client, batchTypes: ['P2', 'ST'], stage: 'all' });
        assert.equal(third.changed, 0);

        // Stage selection: only merged-pending batches are "unmerged"; none are left.
        assert.equal((await pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'unmerged' })).asked, 0);
        assert.equal((await pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'unloaded' })).asked, 1);
        assert.equal((await pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'unmergeworthy' })).asked, 0);
      } finally {
        await odm.close();
      }
    }));

    it('stage selection picks unloaded, unmergeworthy and unmerged batches as the guide names them', () => withTracking(engine, async (db, dir) => {
      const odm = await startTestOdm(join(dir, 'odm'));
      try {
        const config = await addConfig(db, 'c1');
        const mk = (stages: Partial<Record<BatchStage, StageState>>) => insertBatch(db, { config: 'c1', batchType: 'OB', stages });
        const unloaded = await mk({ loaded_to_odm: 'pending' });
        const unmw1 = await mk({ loaded_to_odm: 'succeeded' });
        const unmw2 = await mk({ loaded_to_odm: 'succeeded', merge_worthy: 'pending' });
        const unmerged1 = await mk({ loaded_to_odm: 'succeeded', merge_worthy: 'succeeded' });
        const unmerged2 = await mk({ loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'pending' });
        await mk({ loaded_to_odm: 'failed' });
        await mk({ loaded_to_odm: 'succeeded', merge_worthy: 'failed' });
        await mk({ loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'succeeded' });
        await mk({});
        const purged = await insertBatch(db, { config: 'c1', batchType: 'OB', stages: { loaded_to_odm: 'pending' }, purged: true });
        const asked = new Map<string, string[]>();
        for (const stage of ['unloaded', 'unmergeworthy', 'unmerged', 'all'] as const) {
          const seen: string[] = [];
          await pollOdm(db, config, { odm: new OdmClient({ url: odm.url }), batchTypes: ['OB'], stage, onBatch: (n) => { seen.push(n); } });
          asked.set(stage, seen.sort());
        }
        assert.deepEqual(asked.get('unloaded'), [unloaded.name]);
        assert.deepEqual(asked.get('unmergeworthy'), [unmw1.name, unmw2.name].sort());
        assert.deepEqual(asked.get('unmerged'), [unmerged1.name, unmerged2.name].sort());
        assert.deepEqual(asked.get('all'), [unloaded.name, unmw1.name, unmw2.name, unmerged1.name, unmerged2.name].sort());
        assert.ok(!asked.get('all')!.includes(purged.name));
      } finally {
        await odm.close();
      }
    }));

    it('rides out an ODM that is down: backs off, retries, and records everything once it is up', () => withTracking(engine, async (db, dir) => {
      const config = await addConfig(db, 'c1');
      const port = await freePort();
      const names: string[] = [];
      for (let i = 0; i < 3; i++) {
        names.push((await insertBatch(db, { config: 'c1', batchType: 'P2', stages: { loaded_to_datastore: 'succeeded', loaded_to_odm: 'pending' } })).name);
      }
      const warnings: string[] = [];
      const log = { debug() {}, info() {}, warn: (m: string) => { warnings.push(m); }, error() {}, child() { return log; }, level: 'info' as const };
      const client = new OdmClient({ url: `http://127.0.0.1:${port}`, retry: { initialMs: 40, maxMs: 200, giveUpMs: 30_000 }, log });
      const polling = pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'unloaded', concurrency: 1 });
      // Bring the ODM up only once the poller has failed at least twice.
      while (warnings.length < 2) await new Promise((r) => setTimeout(r, 20));
      await mkdir(join(dir, 'odm'));
      const odm = await startTestOdm(join(dir, 'odm'), { port });
      try {
        for (const name of names) await odm.hand(name, 'P2', p2Batch(3000 + names.indexOf(name), 4));
        await odm.idle();
        const report = await polling;
        assert.ok(warnings.every((w) => /retrying in/.test(w)));
        // The batches may have been asked about before or after their hand-over; whatever was
        // not yet merged is picked up by the next pass: nothing is lost.
        assert.equal(report.asked, 3);
        await pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'all' });
        for (const name of names) assert.equal((await batchRow(db, name)).merged, 'succeeded');
      } finally {
        await odm.close();
      }
    }));

    it('gives up with odm_unreachable after the retry budget, changing nothing', () => withTracking(engine, async (db) => {
      const config = await addConfig(db, 'c1');
      const b = await insertBatch(db, { config: 'c1', batchType: 'P2', stages: { loaded_to_odm: 'pending' } });
      const client = new OdmClient({ url: `http://127.0.0.1:${await freePort()}`, retry: { initialMs: 20, maxMs: 40, giveUpMs: 150 } });
      await assert.rejects(pollOdm(db, config, { odm: client, batchTypes: ['P2'], stage: 'all' }), { code: 'odm_unreachable' });
      assert.equal((await batchRow(db, b.name)).loaded_to_odm, 'pending');
      assert.deepEqual(await events(db, b.name), []);
    }));

    it('fails an item for good at max_attempts and leaves an item already loaded again alone', () => withTracking(engine, async (db, dir) => {
      const odm = await startTestOdm(join(dir, 'odm'));
      try {
        const config = await addConfig(db, 'c1', { max_attempts: '2' });
        const spent = await insertItem(db, { config: 'c1', batchType: 'P2', sourceId: 1, state: 'done', attempts: 2 });
        const b1 = await insertBatch(db, { config: 'c1', batchType: 'P2', itemId: spent, stages: { loaded_to_odm: 'pending' } });
        await db.run('UPDATE queue_item SET batch_id = ? WHERE item_id = ?', [b1.id, spent]);
        const reloaded = await insertItem(db, { config: 'c1', batchType: 'P2', sourceId: 2, state: 'done', attempts: 1 });
        const old = await insertBatch(db, { config: 'c1', batchType: 'P2', itemId: reloaded, stages: { loaded_to_odm: 'pending' } });
        const newer = await insertBatch(db, { config: 'c1', batchType: 'P2', itemId: reloaded, stages: { loaded_to_odm: 'pending' } });
        await db.run('UPDATE queue_item SET batch_id = ? WHERE item_id = ?', [newer.id, reloaded]);
        await odm.hand(b1.name, 'P2', p2Batch(4000, 3, { badRa: [0] }));
        await odm.hand(old.name, 'P2', p2Batch(4001, 3, { badRa: [0] }));
        await odm.idle();
        const report = await pollOdm(db, await getConfig(db, 'c1'), { odm: new OdmClient({ url: odm.url }), batchTypes: ['P2'], stage: 'unloaded' });
        assert.equal(report.failed, 2);
        assert.equal(report.exhausted, 1);
        assert.equal(report.requeued, 0);
        assert.equal((await db.get('SELECT state FROM queue_item WHERE item_id = ?', [spent]))!.state, 'failed');
        assert.equal((await db.get('SELECT state FROM queue_item WHERE item_id = ?', [reloaded]))!.state, 'done');
        void config;
      } finally {
        await odm.close();
      }
    }));
  });
}
