// Test helpers of the lifecycle programs: a fresh tracking database per engine, configs,
// queue items and batch rows in any state, and P's real ODM (archive, worker, HTTP service)
// on loopback. Tests only: production code of ipptopsps never imports psps.
import { join } from 'node:path';
import { withTempDir } from '../../common/index.ts';
import type { Database, Queryable, SqlValue, TestEngine } from '../../db/index.ts';
import { openDatabase } from '../../db/index.ts';
import { openArchive, Odm, PSPS_MIGRATIONS, startOdmServer, type Archive } from '../../psps/index.ts';
import { writeBatchCsv, writeTestSchema, type TestTable } from '../../psps/test-support.ts';
import { saveConfig, type LoadingConfig } from '../configs.ts';
import type { BatchStage, StageState } from '../migrations.ts';
import { openIppToPsps } from '../tracking-db.ts';
import { STAGES } from './batch-stages.ts';

/** Runs `fn` with a fresh tracking database of the engine and a temporary directory. */
export async function withTracking<T>(engine: TestEngine, fn: (db: Database, dir: string, url: string) => Promise<T>): Promise<T> {
  return engine.withUrl((pgUrl) => withTempDir(async (dir) => {
    const url = engine.name === 'sqlite' ? `sqlite:${join(dir, 'tracking.db')}` : pgUrl;
    const db = await openIppToPsps(url);
    try {
      return await fn(db, dir, url);
    } finally {
      await db.close();
    }
  }, 'ipp-life-'));
}

/** Saves a config with test defaults under the given field texts. */
export function addConfig(db: Queryable, name: string, fields: Readonly<Record<string, string>> = {}): Promise<LoadingConfig> {
  return saveConfig(db, name, {
    datastore_product: 'PSPS_test', datastore_publish: '1', dvo_label: 'LAP.test', dvo_location: '/tmp/dvo',
    epoch: '2026-11-01', batch_types: 'P2,ST,OB', min_ra: '10', max_ra: '20', min_dec: '-5', max_dec: '5', box_size: '1',
    ...fields,
  });
}

/** A queue item to insert. */
export interface TestItem {
  readonly config: string;
  readonly batchType: string;
  readonly sourceId: number;
  readonly state?: string;
  readonly attempts?: number;
  readonly ra?: number;
  readonly dec?: number;
  readonly batchId?: number | null;
  readonly queuedAt?: string;
}

/** Inserts a queue item; returns its id. */
export async function insertItem(db: Queryable, item: TestItem): Promise<number> {
  const at = item.queuedAt ?? '2026-11-20T00:00:00.000Z';
  const row = await db.get<{ item_id: number }>(
    `INSERT INTO queue_item (config, batch_type, source_id, ra, dec, state, attempts, batch_id, queued_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING item_id`,
    [item.config, item.batchType, item.sourceId, item.ra ?? null, item.dec ?? null, item.state ?? 'pending', item.attempts ?? 0,
      item.batchId ?? null, at, at],
  );
  return Number(row!.item_id);
}

/** A batch row to insert: any stage in any state. */
export interface TestBatch {
  readonly config: string;
  readonly batchType: string;
  /** Default: `B` + the id, zero-padded (set after the insert). */
  readonly name?: string;
  readonly itemId?: number | null;
  readonly sourceId?: number;
  readonly createdAt?: string;
  readonly localPath?: string | null;
  readonly nRows?: number;
  readonly purged?: boolean;
  readonly stages?: Partial<Record<BatchStage, StageState | null>>;
  readonly times?: Partial<Record<BatchStage, string>>;
}

/** The contract's batch name of a batch id. */
export function batchName(id: number): string {
  return `B${String(id).padStart(8, '0')}`;
}

/** Inserts a batch row (named after its id unless a name is given); returns id and name. */
export async function insertBatch(db: Queryable, b: TestBatch): Promise<{ id: number; name: string }> {
  const created = b.createdAt ?? '2026-11-20T00:00:00.000Z';
  const cols = ['name', 'config', 'batch_type', 'item_id', 'source_id', 'created_at', 'local_path', 'n_rows', 'purged'];
  const vals: SqlValue[] = [b.name ?? null, b.config, b.batchType, b.itemId ?? null, b.sourceId ?? 0, created, b.localPath ?? null,
    b.nRows ?? 0, b.purged ? 1 : 0];
  for (const s of STAGES) {
    const state = b.stages?.[s] ?? null;
    cols.push(s, `${s}_at`);
    vals.push(state, state === null ? null : (b.times?.[s] ?? created));
  }
  const row = await db.get<{ batch_id: number }>(
    `INSERT INTO batch (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) RETURNING batch_id`, vals);
  const id = Number(row!.batch_id);
  const name = b.name ?? batchName(id);
  if (!b.name) await db.run('UPDATE batch SET name = ? WHERE batch_id = ?', [name, id]);
  return { id, name };
}

/** P's ODM running for a test: the worker, its HTTP service, and a way to hand batches to it. */
export interface TestOdm {
  readonly url: string;
  readonly odm: Odm;
  readonly archive: Archive;
  /** Hands a batch's tables over as CSV files under `dir/dx/<name>` (the DXLayer's copy). */
  hand(name: string, type: string, tables: TestTable[]): Promise<string>;
  /** Waits until the worker has nothing left to do. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Starts P's ODM on SQLite files in `dir` (optionally on a fixed port, for restart tests). */
export async function startTestOdm(dir: string, options: { port?: number } = {}): Promise<TestOdm> {
  const schemaDir = await writeTestSchema(join(dir, 'schema'));
  const archive = await openArchive(`sqlite:${join(dir, 'archive.db')}`, { schemaDir });
  const db = await openDatabase(`sqlite:${join(dir, 'psps.db')}`, { migrations: [PSPS_MIGRATIONS] });
  const odm = await Odm.start({ db, archive, maxReasons: 5, retryMs: 50 });
  const server = await startOdmServer({ odm, ...(options.port ? { port: options.port } : {}) });
  return {
    url: server.url, odm, archive,
    async hand(name, type, tables) {
      const bdir = join(dir, 'dx', name);
      const files = await writeBatchCsv(bdir, tables);
      await odm.submit({ name, product: 'PSPS_test', type, dir: bdir, tables: files });
      return bdir;
    },
    idle: () => odm.idle(),
    async close() {
      await server.close();
      await odm.close();
      await db.close();
      await archive.close();
    },
  };
}
