import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger, withTempDir } from '../common/index.ts';
import { openDatabase, testEngines } from '../db/index.ts';
import { coneSearch, openArchive, type Archive } from './archive.ts';
import { batchPartitions, compactArchive, COMPACTED_PREFIX, type CompactStep } from './compact.ts';
import { mergeBatch } from './merge.ts';
import { PSPS_MIGRATIONS } from './migrations.ts';
import { Odm } from './odm.ts';
import { ProblemList } from './problems.ts';
import { batchSchemaOf } from './schema.ts';
import { stageBatch } from './stage.ts';
import { validateBatch } from './validate.ts';
import { keyTableAgrees, obBatch, p2Batch, writeBatchCsv, writeTestSchema, type TestTable } from './test-support.ts';

type Engine = ReturnType<typeof testEngines>[number];

const FIXTURE = fileURLToPath(new URL('./compact.fixture.ts', import.meta.url));

async function withArchive(engine: Engine, fn: (archive: Archive, dir: string) => Promise<void>): Promise<void> {
  await engine.withUrl((url) => withTempDir(async (dir) => {
    const schemaDir = await writeTestSchema(join(dir, 'schema'));
    const archive = await openArchive(engine.name === 'sqlite' ? `sqlite:${join(dir, 'archive.db')}` : url, { schemaDir, partitionByBatch: true });
    try {
      await fn(archive, dir);
    } finally {
      await archive.close();
    }
  }, 'ipp-compact-'));
}

// A batch through the ODM's steps: staged, validated (problems returned), merged when valid.
async function load(archive: Archive, dir: string, name: string, type: string, tables: TestTable[], generation = 1): Promise<ProblemList> {
  const schema = batchSchemaOf(archive.schema, type);
  const files = await writeBatchCsv(join(dir, 'dx', `${name}_${generation}`), tables);
  const problems = new ProblemList(5);
  await stageBatch(archive, name, schema, files, problems);
  assert.equal(problems.total, 0, problems.reasons().join('; '));
  const checked = await validateBatch(archive, name, schema);
  if (checked.total === 0) assert.equal((await mergeBatch(archive, name, generation, schema)).merged, true);
  return checked;
}

const TABLES = ['FrameMeta', 'Detection', 'ObjectThin', 'MeanObject'];

// Every row of every table (its count and a digest of the rows' text, in order)
async function contents(archive: Archive): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    const r = await archive.db.get<{ n: number; h: string | null }>(`SELECT count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${t} x`);
    out[t] = `${Number(r?.n)} ${r?.h ?? ''}`;
  }
  return out;
}

async function partitionCounts(archive: Archive): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = (await batchPartitions(archive.db, t)).length;
  return out;
}

// What a user sees: a cone search and key look-ups
async function answers(archive: Archive): Promise<string> {
  const cone = await coneSearch(archive, 10.0105, -5, 0.002, { table: 'Detection' });
  const ids = cone.map((r) => `${String(r.detectid)}@${Number(r.distance_arcsec).toFixed(6)}`).sort();
  const keys = await archive.db.all('SELECT detectid, objid, odm_batch FROM Detection WHERE detectID IN (100005, 300019, 1600000, 999) ORDER BY detectid');
  const obj = await archive.db.all('SELECT objid, nDetections, odm_batch FROM ObjectThin WHERE objID IN (200003, 2000010) ORDER BY objid');
  return JSON.stringify({ ids, keys, obj });
}

const batchName = (i: number) => `B${String(i).padStart(8, '0')}`;

for (const engine of testEngines()) {
  describe(`archive compaction on ${engine.name}`, { skip: engine.skip }, () => {
    it('has nothing to compact on SQLite (no partitions)', { skip: engine.name !== 'sqlite' }, () => withArchive(engine, async (archive, dir) => {
      await load(archive, dir, batchName(1), 'P2', p2Batch(1, 5));
      assert.equal(archive.partitioned.size, 0);
      assert.deepEqual(await compactArchive(archive, { batchesPerPartition: 2 }), { folds: [], partitions: {} });
    }));

    it('folds batch partitions by tiers, rows and answers unchanged; reloads and key checks work on compacted partitions', { skip: engine.name !== 'postgres' }, () => withArchive(engine, async (archive, dir) => {
      for (let i = 1; i <= 10; i++) await load(archive, dir, batchName(i), 'P2', p2Batch(i, 20));
      // an OB batch replaces some of the stubs of batch 2 (their rows move to its partition)
      await load(archive, dir, batchName(90), 'OB', obBatch(200_000, 8));
      const before = await contents(archive);
      const seen = await answers(archive);
      assert.deepEqual(await partitionCounts(archive), { FrameMeta: 10, Detection: 10, ObjectThin: 11, MeanObject: 1 });
      assert.match(seen, /"ids":\["\d+@/, 'the cone holds detections');

      let result = await compactArchive(archive, { batchesPerPartition: 4 });
      // 10 single-batch partitions: two folds of 4, two left; ObjectThin's 11: two folds, three left
      assert.deepEqual(result.partitions, {
        FrameMeta: { before: 10, after: 4 }, Detection: { before: 10, after: 4 }, ObjectThin: { before: 11, after: 5 }, MeanObject: { before: 1, after: 1 },
        Filter: { before: 0, after: 0 },
      });
      assert.equal(result.folds.length, 6);
      assert.ok(result.folds.every((f) => f.level === 0 && f.batches === 4 && f.into.startsWith(COMPACTED_PREFIX)));
      assert.equal(result.folds.filter((f) => f.table === 'Detection').reduce((n, f) => n + f.rows, 0), 8 * 20);
      // the oldest merges first
      const detection = await batchPartitions(archive.db, 'Detection');
      assert.deepEqual(detection.filter((p) => p.batches.length === 4).map((p) => p.batches).sort(),
        [[1, 2, 3, 4].map(batchName), [5, 6, 7, 8].map(batchName)]);
      assert.deepEqual(await contents(archive), before);
      assert.equal(await answers(archive), seen);
      // nothing more to fold
      assert.equal((await compactArchive(archive, { batchesPerPartition: 4 })).folds.length, 0);
      // the compacted partitions have a batch partition's key and indexes (Q3C's among them)
      const indexes = await archive.db.all<{ def: string }>('SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = to_regclass(?)', [detection.find((p) => p.batches.length === 4)!.name]);
      assert.ok(indexes.some((x) => /UNIQUE.*\(detectid, odm_batch\)/.test(x.def)), JSON.stringify(indexes));
      assert.ok(indexes.some((x) => /q3c_ang2ipix/.test(x.def)));
      assert.ok(indexes.some((x) => /\(objid\)/.test(x.def)));

      // a key of a compacted batch is still refused to another batch (validation), and stays once
      const clash = await load(archive, dir, batchName(50), 'P2', p2Batch(50, 5, { firstDetect: 300_000 }));
      assert.ok(clash.total === 5 && clash.reasons().every((r) => r.includes('in the archive already (from batch B00000003)')), clash.reasons().join('; '));
      assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection WHERE detectID = 300000'))?.n), 1);

      // a reload of a compacted batch replaces its rows exactly (fewer detections now)
      await load(archive, dir, batchName(3), 'P2', p2Batch(3, 12), 2);
      assert.equal(Number((await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM Detection WHERE odm_batch = '${batchName(3)}'`))?.n), 12);
      assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 10 * 20 - 8);
      assert.equal(Number((await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM FrameMeta WHERE odm_batch = '${batchName(3)}'`))?.n), 1);
      assert.deepEqual(await partitionCounts(archive), { FrameMeta: 4, Detection: 4, ObjectThin: 5, MeanObject: 1 });
      // as if the batch had been reloaded before compaction
      const reloaded = await contents(archive);
      assert.notEqual(reloaded.Detection, before.Detection);

      // more batches, then the tiers: 8 single-batch partitions -> 2 of level 1, then 4 of those -> one of 16 batches
      for (let i = 11; i <= 16; i++) await load(archive, dir, batchName(i), 'P2', p2Batch(i, 20));
      const more = await contents(archive);
      result = await compactArchive(archive, { batchesPerPartition: 4 });
      assert.equal(result.partitions.FrameMeta.after, 1);
      assert.equal(result.partitions.Detection.after, 1);
      assert.deepEqual(result.folds.filter((f) => f.table === 'Detection').map((f) => f.level), [0, 0, 1]);
      assert.deepEqual((await batchPartitions(archive.db, 'Detection'))[0].batches, Array.from({ length: 16 }, (_, i) => batchName(i + 1)));
      assert.deepEqual(await contents(archive), more);
      // a reload in the level-2 partition, and a compaction after it, are not confused
      await load(archive, dir, batchName(3), 'P2', p2Batch(3, 20), 3);
      assert.equal((await compactArchive(archive, { batchesPerPartition: 4 })).folds.length, 0);
      assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 16 * 20);
      // through keep and replace merges, reloads and folds, the key tables hold exactly the archive's keys
      await keyTableAgrees(archive, 'ObjectThin', 'objID');
      await keyTableAgrees(archive, 'MeanObject', 'objID');
    }));

    it('keeps the newest batches apart when asked, and stops as told', { skip: engine.name !== 'postgres' }, () => withArchive(engine, async (archive, dir) => {
      for (let i = 1; i <= 6; i++) await load(archive, dir, batchName(i), 'P2', p2Batch(i, 3));
      const result = await compactArchive(archive, { batchesPerPartition: 3, keepRecent: 2, tables: ['Detection'] });
      assert.deepEqual(Object.keys(result.partitions), ['Detection']);
      assert.equal(result.folds.length, 1);
      assert.deepEqual([...result.folds[0].from].sort(), [1, 2, 3].map((i) => `arc_${batchName(i).toLowerCase()}_detection`));
      await assert.rejects(compactArchive(archive, { batchesPerPartition: 1 }), { code: 'psps_bad_compaction' });
      await assert.rejects(compactArchive(archive, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    }));

    it('a compaction killed in the middle of a fold leaves the archive as before', { skip: engine.name !== 'postgres' }, () => withArchive(engine, async (archive, dir) => {
      for (let i = 1; i <= 4; i++) await load(archive, dir, batchName(i), 'P2', p2Batch(i, 30));
      const before = await contents(archive);
      const parts = await partitionCounts(archive);
      for (const at of ['filled', 'attached', 'dropped']) {
        const child = spawn(process.execPath, [FIXTURE, archive.connectionString!, join(dir, 'schema'), '2', at], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
        let err = '';
        child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
        const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
        for (let i = 0; i < 400 && !out.includes(`at ${at}`); i++) await sleep(25);
        assert.ok(out.includes(`at ${at}`), `the fold reached ${at}: ${out} ${err}`);
        child.kill('SIGKILL');
        await exited;
        // the server rolls the dead connection's transaction back (and frees the merge lock)
        assert.deepEqual(await partitionCounts(archive), parts, at);
        assert.deepEqual(await contents(archive), before, at);
      }
      const result = await compactArchive(archive, { batchesPerPartition: 2 });
      assert.equal(result.partitions.Detection.after, 1);
      assert.deepEqual(await contents(archive), before);
      const left = await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM pg_class WHERE relname LIKE '${COMPACTED_PREFIX}%' AND relkind = 'r'`);
      assert.equal(Number(left?.n), 3, 'only the partitions of the last compaction (3 tables) remain');
    }));

    it('the ODM compacts after its merges unless told not to', { skip: engine.name !== 'postgres' }, () => withArchive(engine, async (archive, dir) => {
      const db = await openDatabase(`sqlite:${join(dir, 'psps.db')}`, { migrations: [PSPS_MIGRATIONS] });
      let odm = await Odm.start({ db, archive, retryMs: 50, compact: false });
      try {
        for (let i = 1; i <= 5; i++) {
          if (i === 3) {
            // two batches merged without folds; from the third on, K = 2
            assert.equal((await batchPartitions(archive.db, 'Detection')).length, 2);
            await odm.close();
            odm = await Odm.start({ db, archive, retryMs: 50, compact: { batchesPerPartition: 2 } });
          }
          const name = batchName(i);
          const tables = await writeBatchCsv(join(dir, 'dx', name), p2Batch(i, 10));
          await odm.submit({ name, product: 'PSPS_test', type: 'P2', md5: String(i).padStart(32, '0'), dir: join(dir, 'dx', name), tables });
          await odm.idle();
          assert.equal((await odm.status(name)).state, 'merged');
        }
        // 5 batches, K = 2: one partition of 4 batches and one of the fifth
        assert.deepEqual((await batchPartitions(archive.db, 'Detection')).map((p) => p.batches.length).sort(), [1, 4]);
        assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 50);
      } finally {
        await odm.close();
        await db.close();
      }
    }));

    it('the ODM puts folds off while batches wait for it, to 2K partitions, and folds once its queue is empty', { skip: engine.name !== 'postgres' }, () => withArchive(engine, async (archive, dir) => {
      const db = await openDatabase(`sqlite:${join(dir, 'psps.db')}`, { migrations: [PSPS_MIGRATIONS] });
      const lines: string[] = [];
      const log = createLogger({ level: 'info', sinks: [{ write: (s: string) => lines.push(s) }] });
      const odm = await Odm.start({ db, archive, retryMs: 50, compact: { batchesPerPartition: 2 }, log });
      // the merge lock held elsewhere until all six batches wait, so each merge but the last has some behind it
      const holder = await openDatabase(archive.connectionString!, { maxConnections: 1 });
      try {
        await holder.transaction(async (tx) => {
          await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_psps_merge'))");
          for (let i = 1; i <= 6; i++) {
            const name = batchName(i);
            const tables = await writeBatchCsv(join(dir, 'dx', name), p2Batch(i, 10));
            await odm.submit({ name, product: 'PSPS_test', type: 'P2', md5: String(i).padStart(32, '0'), dir: join(dir, 'dx', name), tables });
          }
        });
        await odm.idle();
        const merged = (i: number) => lines.findIndex((l) => l.includes(`odm: merged ${batchName(i)}`));
        const folds = lines.map((l, at) => ({ l, at })).filter((x) => x.l.includes('archive compact: Detection'));
        // K = 2 with batches waiting: the first fold of Detection after 4 partitions, not 2
        assert.ok(folds.length > 0 && folds[0].at > merged(4) && merged(4) > merged(3), lines.join(''));
        // at the end nothing is left to fold: one partition of 4 batches and one of 2
        assert.deepEqual((await batchPartitions(archive.db, 'Detection')).map((p) => p.batches.length).sort(), [2, 4]);
        assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 60);
        await assert.rejects(compactArchive(archive, { batchesPerPartition: 4, foldAt: 3 }), { code: 'psps_bad_compaction' });
      } finally {
        await holder.close();
        await odm.close();
        await db.close();
      }
    }));

    it('a failure at any step of a fold leaves the archive as before; merges and cone searches run alongside', { skip: engine.name !== 'postgres' }, () => withArchive(engine, async (archive, dir) => {
      for (let i = 1; i <= 4; i++) await load(archive, dir, batchName(i), 'P2', p2Batch(i, 30));
      const before = await contents(archive);
      const parts = await partitionCounts(archive);
      const seen = await answers(archive);
      for (const at of ['filled', 'indexed', 'detached', 'attached', 'dropped'] as CompactStep[]) {
        await assert.rejects(compactArchive(archive, {
          batchesPerPartition: 2, onStep: (step) => { if (step === at) throw new Error(`injected at ${step}`); },
        }), { message: `injected at ${at}` });
        assert.deepEqual(await partitionCounts(archive), parts, at);
        assert.deepEqual(await contents(archive), before, at);
        const left = await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM pg_class WHERE relname LIKE '${COMPACTED_PREFIX}%'`);
        assert.equal(Number(left?.n), 0, `no table of the fold is left (${at})`);
      }
      // readers and a merge while compacting
      let reading = true;
      const reads: string[] = [];
      const reader = (async () => {
        while (reading) reads.push(await answers(archive));
      })();
      try {
        const [result] = await Promise.all([
          compactArchive(archive, { batchesPerPartition: 2 }),
          load(archive, dir, batchName(9), 'P2', p2Batch(9, 30)),
        ]);
        assert.ok(result.folds.length >= 3);
      } finally {
        reading = false;
        await reader;
      }
      // (the merged batch adds detections to the cone: a read sees it or not, and every partition)
      const after = await answers(archive);
      assert.notEqual(after, seen);
      assert.ok(reads.length > 0);
      for (const r of reads) assert.ok(r === seen || r === after, r);
      assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 5 * 30);
    }));
  });
}
