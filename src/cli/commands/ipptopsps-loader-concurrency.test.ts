// Loaders as real child processes against PostgreSQL: four at once over more than 200 items,
// one of them SIGKILLed in the middle of a batch; then pause, resume and stop through the
// clients table, and SIGTERM.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testEngines, type Database } from '../../db/index.ts';
import { runIpp } from '../testing.ts';
import { openIppToPsps, requestClients } from '../../ipptopsps/index.ts';
import { makeSurvey, type SurveyFixture } from './survey-fixture.ts';

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));
const engine = testEngines().find((e) => e.name === 'postgres')!;

let root: string;
let fx: SurveyFixture;
before(async () => {
  if (engine.skip) return;
  root = await mkdtemp(join(tmpdir(), 'ipp-q-conc-'));
  // Many cheap items: 220 stacks (ST), 6 exposures (P2) and the DVO regions (OB).
  fx = await makeSurvey(root, { exposures: 6, stacks: 220, density: 0.01, seed: 1 });
});
after(() => (root ? rm(root, { recursive: true, force: true }) : undefined));

interface Loader { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> }

function startLoader(env: Record<string, string>, ...args: string[]): Loader {
  const child = spawn(process.execPath, [MAIN, 'loader', ...args, '--json'], {
    env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { err += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 30_000, every = 20): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const count = async (db: Database, sql: string, params: (string | number)[] = []): Promise<number> =>
  Number((await db.get<{ n: number }>(sql, params))!.n);

describe('loaders as child processes on PostgreSQL', { skip: engine.skip }, () => {
  test('four loaders, one SIGKILLed mid-batch: every item exactly once, no stray files; pause/resume/stop and SIGTERM', () => engine.withUrl(async (url) => {
    const dataDir = join(root, 'data');
    const env = {
      IPP_IPPTOPSPS_DB: url, IPP_GPC1_DB: fx.gpc1Url, IPP_IPPTOPSPS_DATA_DIR: dataDir,
      IPP_IPPTOPSPS_LEASE_MS: '2000', IPP_IPPTOPSPS_HEARTBEAT_MS: '150',
    };
    for (const name of ['c1', 'c2']) {
      const set = await runIpp(['config', 'set', name, 'datastore_product=PSPS_test', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`,
        'epoch=2026-01-01', 'min_ra=140', 'max_ra=166', 'min_dec=-10', 'max_dec=16', 'box_size=4', ...(name === 'c2' ? ['batch_types=ST'] : [])], env);
      assert.equal(set.code, 0, set.stderr);
      const q = await runIpp(['queue', name], env);
      assert.equal(q.code, 0, q.stderr);
    }
    const db = await openIppToPsps(url);
    try {
      const items = await count(db, `SELECT COUNT(*) AS n FROM queue_item WHERE config = 'c1'`);
      assert.ok(items >= 200, `${items} items`);

      // Four loaders; the victim is frozen while it holds a claim and has a batch under way, then killed.
      const loaders = [0, 1, 2, 3].map(() => startLoader(env, 'c1'));
      const victim = loaders[0]!;
      const tmp = join(dataDir, 'tmp');
      let held: { item_id: number; client_id: number } | undefined;
      await until('the victim in the middle of a batch', async () => {
        const entries = await readdir(tmp).catch(() => [] as string[]);
        if (!entries.some((e) => e.endsWith(`.${victim.child.pid}`))) return false;
        victim.child.kill('SIGSTOP');
        held = await db.get<{ item_id: number; client_id: number }>(
          `SELECT q.item_id, c.client_id FROM queue_item q JOIN client c ON c.client_id = q.claimed_by
           WHERE c.pid = ? AND q.state = 'claimed'`, [victim.child.pid!]);
        if (held && (await readdir(tmp)).some((e) => e.endsWith(`.${victim.child.pid}`))) return true;
        victim.child.kill('SIGCONT');
        return false;
      }, 60_000, 2);
      victim.child.kill('SIGKILL');
      assert.equal(await victim.exit, null);
      const codes = await Promise.all(loaders.slice(1).map((l) => l.exit));
      assert.deepEqual(codes, [0, 0, 0], loaders.map((l) => l.err().slice(-2000)).join('\n---\n'));
      const summaries = loaders.slice(1).map((l) => JSON.parse(l.out().trim().split('\n').at(-1)!) as { done: number; failed: number });
      assert.equal(summaries.reduce((n, s) => n + s.done, 0), items);
      assert.equal(summaries.reduce((n, s) => n + s.failed, 0), 0);
      assert.ok(summaries.filter((s) => s.done > 0).length >= 2, 'the work was shared');

      // Exactly once: one good batch per item, the killed loader's item by another loader.
      assert.equal(await count(db, `SELECT COUNT(*) AS n FROM queue_item WHERE config = 'c1' AND state <> 'done'`), 0);
      const perItem = await db.all<{ item_id: number; n: number }>(
        `SELECT q.item_id, COUNT(b.batch_id) AS n FROM queue_item q LEFT JOIN batch b ON b.item_id = q.item_id AND b.processed = 'succeeded'
         WHERE q.config = 'c1' GROUP BY q.item_id`);
      assert.ok(perItem.every((r) => Number(r.n) === 1), JSON.stringify(perItem.filter((r) => Number(r.n) !== 1)));
      const redone = await db.get<{ client_id: number; attempts: number }>(
        `SELECT b.client_id, q.attempts FROM queue_item q JOIN batch b ON b.batch_id = q.batch_id WHERE q.item_id = ?`, [held!.item_id]);
      assert.notEqual(Number(redone!.client_id), held!.client_id);
      assert.equal(Number(redone!.attempts), 0);
      const abandoned = await db.all<{ processed: string; reason: string }>('SELECT processed, reason FROM batch WHERE client_id = ? AND item_id = ?', [held!.client_id, held!.item_id]);
      assert.equal(abandoned.length, 1);
      assert.equal(abandoned[0]!.processed, 'failed');
      assert.match(abandoned[0]!.reason, /abandoned/);
      assert.equal((await db.get<{ state: string }>('SELECT state FROM client WHERE client_id = ?', [held!.client_id]))!.state, 'lost');
      // No stray files: tmp is empty and every batch directory belongs to a good batch.
      assert.deepEqual(await readdir(tmp), []);
      let dirs = 0;
      for (const type of await readdir(join(dataDir, 'c1'))) dirs += (await readdir(join(dataDir, 'c1', type))).length;
      assert.equal(dirs, items);

      // Pause, resume and stop through the clients table.
      const l = startLoader(env, 'c2');
      const done2 = () => count(db, `SELECT COUNT(*) AS n FROM batch WHERE config = 'c2' AND processed = 'succeeded'`);
      await until('some c2 batches', async () => (await done2()) >= 5);
      assert.equal(await requestClients(db, { program: 'loader', config: 'c2' }, 'pause'), 1);
      await until('paused', async () => (await count(db, `SELECT COUNT(*) AS n FROM client WHERE config = 'c2' AND state = 'paused'`)) === 1);
      const atPause = await done2();
      await new Promise((r) => setTimeout(r, 800));
      assert.ok((await done2()) <= atPause + 1, 'no new batch while paused (the one under way may finish)');
      const whilePaused = await done2();
      await requestClients(db, { program: 'loader', config: 'c2' }, 'resume');
      await until('work again', async () => (await done2()) > whilePaused + 2);
      await requestClients(db, { program: 'loader', config: 'c2' }, 'stop');
      assert.equal(await l.exit, 0, l.err().slice(-2000));
      assert.equal((JSON.parse(l.out().trim().split('\n').at(-1)!) as { endedBy: string }).endedBy, 'stop_request');
      const pending = await count(db, `SELECT COUNT(*) AS n FROM queue_item WHERE config = 'c2' AND state = 'pending'`);
      assert.ok(pending > 0, 'stopped before the end');
      assert.equal(await count(db, `SELECT COUNT(*) AS n FROM queue_item WHERE config = 'c2' AND state = 'claimed'`), 0);

      // SIGTERM: a clean exit, the claim released, nothing half-written.
      const t = startLoader(env, 'c2');
      const before = await done2();
      await until('more c2 batches', async () => (await done2()) >= before + 3);
      t.child.kill('SIGTERM');
      assert.equal(await t.exit, 130, t.err().slice(-2000));
      assert.equal(await count(db, `SELECT COUNT(*) AS n FROM queue_item WHERE config = 'c2' AND state = 'claimed'`), 0);
      assert.equal(await count(db, `SELECT COUNT(*) AS n FROM batch WHERE config = 'c2' AND processed = 'pending'`), 0);
      assert.equal(await count(db, `SELECT COUNT(*) AS n FROM client WHERE config = 'c2' AND state <> 'exited'`), 0);
      assert.deepEqual(await readdir(tmp), []);
      let dirs2 = 0;
      for (const type of await readdir(join(dataDir, 'c2'))) dirs2 += (await readdir(join(dataDir, 'c2', type))).length;
      assert.equal(dirs2, await done2());
    } finally {
      await db.close();
    }
  }));
});
