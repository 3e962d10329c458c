// SIGKILL at seeded points of pollodm and cleanup child processes: a rerun completes the work,
// and nothing is recorded (or deleted) twice or missed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RemoteError, mulberry32, withTempDir } from '../../common/index.ts';
import { openDatabase, testEngines, type Database, type TestEngine } from '../../db/index.ts';
import { DATASTORE_MIGRATIONS, DatastoreClient, startDatastoreServer } from '../../datastore/index.ts';
import { p2Batch } from '../../psps/test-support.ts';
import { addConfig, batchName, insertBatch, insertItem, startTestOdm, withTracking, type TestOdm } from './test-support.ts';

const FIXTURE = new URL('./kill.fixture.ts', import.meta.url).pathname;
const SEED = 20261121;

/** Runs the fixture; with `killAfter`, SIGKILLs it after that many progress lines plus `delayMs`. */
function runChild(args: string[], killAfter?: number, delayMs = 0): Promise<{ lines: string[]; killed: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let buffered = '';
    let killed = false;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        const progress = lines.filter((l) => l !== 'ready').length;
        if (killAfter !== undefined && lines.includes('ready') && progress >= killAfter) kill();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ lines, killed: signal === 'SIGKILL', code, stderr }));
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

function trackingEngine(trial: number): TestEngine {
  const engines = testEngines().filter((e) => !e.skip);
  return engines[trial % engines.length];
}

describe('SIGKILL of pollodm and cleanup at seeded points', () => {
  it('pollodm: after a kill, a rerun records every batch once and sends every failed item back once', () => withTempDir(async (dir) => {
    const odm = await startTestOdm(join(dir, 'odm'));
    try {
      const N = 10;
      const bad = new Set([2, 5, 9]);
      for (let i = 1; i <= N; i++) await odm.hand(batchName(i), 'P2', p2Batch(8000 + i, 3, bad.has(i) ? { badRa: [0] } : {}));
      await odm.idle();
      const random = mulberry32(SEED);
      let kills = 0;
      for (let trial = 0; trial < 6; trial++) {
        const engine = trackingEngine(trial);
        const killAfter = random() % N;
        const delayMs = random() % 8;
        await withTracking(engine, async (db, _dir, url) => {
          await addConfig(db, 'c1');
          for (let i = 1; i <= N; i++) {
            const item = await insertItem(db, { config: 'c1', batchType: 'P2', sourceId: i, state: 'done', attempts: 1 });
            const b = await insertBatch(db, { config: 'c1', batchType: 'P2', name: batchName(i), itemId: item, stages: { loaded_to_datastore: 'succeeded', loaded_to_odm: 'pending' } });
            await db.run('UPDATE queue_item SET batch_id = ? WHERE item_id = ?', [b.id, item]);
          }
          const first = await runChild(['pollodm', url, 'c1', odm.url], killAfter, delayMs);
          const label = `trial ${trial} (${engine.name}, seed ${SEED}, kill after ${killAfter} + ${delayMs} ms)`;
          assert.ok(first.killed || first.lines.includes('finished'), `${label}: ${first.stderr}`);
          if (first.killed && !first.lines.includes('finished')) kills++;
          const second = await runChild(['pollodm', url, 'c1', odm.url]);
          assert.equal(second.code, 0, `${label}: rerun failed: ${second.stderr}`);
          for (let i = 1; i <= N; i++) {
            const name = batchName(i);
            const r = (await db.get('SELECT * FROM batch WHERE name = ?', [name]))!;
            const events = (await db.all('SELECT stage, state FROM batch_event WHERE batch_id = ? ORDER BY event_id', [Number(r.batch_id)])).map((e) => `${e.stage}:${e.state}`);
            if (bad.has(i)) {
              assert.deepEqual([r.loaded_to_odm, r.merge_worthy, r.merged], ['succeeded', 'failed', null], `${label}: ${name}`);
              assert.deepEqual(events, ['loaded_to_odm:succeeded', 'merge_worthy:failed'], `${label}: ${name} events`);
              const item = (await db.get('SELECT state, attempts FROM queue_item WHERE item_id = ?', [Number(r.item_id)]))!;
              assert.deepEqual([item.state, Number(item.attempts)], ['pending', 1], `${label}: ${name} item`);
            } else {
              assert.deepEqual([r.loaded_to_odm, r.merge_worthy, r.merged], ['succeeded', 'succeeded', 'succeeded'], `${label}: ${name}`);
              assert.deepEqual(events, ['loaded_to_odm:succeeded', 'merge_worthy:succeeded', 'merged:succeeded'], `${label}: ${name} events`);
            }
          }
        });
      }
      assert.ok(kills >= 3, `only ${kills} of 6 pollodm runs were killed before they finished`);
    } finally {
      await odm.close();
    }
  }));

  it('cleanup: after a kill, a rerun deletes every due copy, records each deletion once, and touches nothing else', () => withTempDir(async (dir) => {
    const odm: TestOdm = await startTestOdm(join(dir, 'odm'));
    const dsDb: Database = await openDatabase(`sqlite:${join(dir, 'datastore.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
    const server = await startDatastoreServer({ root: join(dir, 'ds'), db: dsDb, reserveBytes: 0, fsync: false });
    try {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct({ name: 'PSPS_test', type: 'IPP_PSPS', description: 'kill test' });
      const random = mulberry32(SEED + 1);
      const N = 8;
      let kills = 0;
      for (let trial = 0; trial < 6; trial++) {
        const engine = trackingEngine(trial);
        await withTracking(engine, async (db, _dir, url) => {
          await addConfig(db, 'c1');
          const made: { name: string; merged: boolean; purged: boolean; keep: boolean; local: string; dx: string }[] = [];
          for (let i = 0; i < N; i++) {
            const name = batchName(1000 * (trial + 1) + i);
            // merged (all three copies go), merge-worthy (datastore + DXLayer), loaded (nothing), purged loaded (all)
            const kind = i % 4;
            const stages = {
              processed: 'succeeded', loaded_to_datastore: 'succeeded', loaded_to_odm: 'succeeded',
              merge_worthy: kind <= 1 ? 'succeeded' : null, merged: kind === 0 ? 'succeeded' : null,
            } as const;
            const local = join(dir, 'local', name);
            await mkdir(local, { recursive: true });
            await writeFile(join(local, `${name}.fits`), name);
            await insertBatch(db, { config: 'c1', batchType: 'P2', name, stages, localPath: local, purged: kind === 3 });
            await ds.publish('PSPS_test', name, [{ data: Buffer.from(name), name: `${name}.fits` }]);
            const dx = await odm.hand(name, 'P2', p2Batch(9000 + trial * 100 + i, 2));
            made.push({ name, merged: kind === 0, purged: kind === 3, keep: kind === 2, local, dx });
          }
          await odm.idle();
          const due = made.reduce((n, m) => n + (m.keep ? 0 : m.merged || m.purged ? 3 : 2), 0);
          const killAfter = random() % due;
          const delayMs = random() % 8;
          const label = `trial ${trial} (${engine.name}, seed ${SEED + 1}, kill after ${killAfter} + ${delayMs} ms)`;
          const first = await runChild(['cleanup', url, 'c1', odm.url, server.url], killAfter, delayMs);
          assert.ok(first.killed || first.lines.includes('finished'), `${label}: ${first.stderr}`);
          if (first.killed && !first.lines.includes('finished')) kills++;
          const second = await runChild(['cleanup', url, 'c1', odm.url, server.url]);
          assert.equal(second.code, 0, `${label}: rerun failed: ${second.stderr}`);
          for (const m of made) {
            const r = (await db.get('SELECT * FROM batch WHERE name = ?', [m.name]))!;
            const gone = { datastore: !m.keep, dxlayer: !m.keep, local: m.merged || m.purged };
            let inDs = true;
            try { await ds.fileset('PSPS_test', m.name); } catch (error) { if (error instanceof RemoteError && error.status === 404) inDs = false; else throw error; }
            assert.equal(inDs, !gone.datastore, `${label}: ${m.name} datastore`);
            assert.equal(await exists(m.dx), !gone.dxlayer, `${label}: ${m.name} DXLayer`);
            assert.equal(await exists(m.local), !gone.local, `${label}: ${m.name} local`);
            for (const copy of ['datastore', 'dxlayer', 'local'] as const) {
              const stage = `deleted_${copy}`;
              const succeeded = Number((await db.get(`SELECT COUNT(*) AS n FROM batch_event WHERE batch_id = ? AND stage = ? AND state = 'succeeded'`, [Number(r.batch_id), stage]))!.n);
              assert.equal(succeeded, gone[copy] ? 1 : 0, `${label}: ${m.name} ${stage} recorded once`);
              assert.equal(r[stage], gone[copy] ? 'succeeded' : null, `${label}: ${m.name} ${stage}`);
            }
          }
        });
      }
      assert.ok(kills >= 3, `only ${kills} of 6 cleanup runs were killed before they finished`);
    } finally {
      await server.close();
      await dsDb.close();
      await odm.close();
    }
  }));
});
