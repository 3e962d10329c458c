// cleanup: deletes the three copies of each batch (the datastore's, the DXLayer's, the local
// one) when the config's deletion policy says so, and every copy of a purged batch. Each
// deletion is marked pending before it starts and succeeded or failed (with the reason) after,
// each change with its batch_event; the deletions themselves are idempotent, so a cleanup
// killed half-way simply does the pending ones again, and a failed one is retried next pass.
import { rm, rmdir, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { RemoteError, silentLogger, type Logger } from '../../common/index.ts';
import type { Database } from '../../db/index.ts';
import type { DatastoreClient } from '../../datastore/index.ts';
import type { LoadingConfig } from '../configs.ts';
import { IppToPspsError } from '../errors.ts';
import type { BatchStage } from '../migrations.ts';
import { BATCH_COLUMNS, lockBatch, setStage, toBatchRow, type BatchRow } from './batch-stages.ts';
import type { OdmClient } from './odm-client.ts';

/** The three copies of a batch. */
export type BatchCopy = 'datastore' | 'dxlayer' | 'local';

/** The copies in the order cleanup deletes them (the datastore's first, so the DXLayer cannot fetch it again). */
export const BATCH_COPIES: readonly BatchCopy[] = Object.freeze(['datastore', 'dxlayer', 'local']);

const STAGE_OF: Readonly<Record<BatchCopy, BatchStage>> = {
  datastore: 'deleted_datastore', dxlayer: 'deleted_dxlayer', local: 'deleted_local',
};

/** The stage column that records the deletion of a copy. */
export function deletionStage(copy: BatchCopy): BatchStage {
  return STAGE_OF[copy];
}

/** The part of a config the policy reads. */
export type DeletionPolicy = Pick<LoadingConfig, 'delete_datastore_on' | 'delete_dxlayer_on' | 'delete_local_on'>;

/**
 * The deletion triggers a batch has reached: `loaded` (the ODM loaded it), `merge_worthy`,
 * `merged`, `failed` (the ODM failed it at any step), `purged` (marked purged by hand).
 */
export function batchTriggers(row: BatchRow): Set<string> {
  const s = row.stages;
  const triggers = new Set<string>();
  if (s.loaded_to_odm === 'succeeded') triggers.add('loaded');
  if (s.merge_worthy === 'succeeded') triggers.add('merge_worthy');
  if (s.merged === 'succeeded') triggers.add('merged');
  if (s.loaded_to_odm === 'failed' || s.merge_worthy === 'failed' || s.merged === 'failed') triggers.add('failed');
  if (row.purged === 1) triggers.add('purged');
  return triggers;
}

/**
 * Whether a copy exists to be deleted: the datastore's once publishing succeeded; the
 * DXLayer's once the batch is on its way to the ODM; the local one while it has a path.
 */
export function copyMayExist(row: BatchRow, copy: BatchCopy): boolean {
  switch (copy) {
    case 'datastore': return row.stages.loaded_to_datastore === 'succeeded';
    case 'dxlayer': return row.stages.loaded_to_odm !== null;
    case 'local': return row.local_path !== null && row.local_path !== '';
  }
}

/**
 * The copies of a batch that are due for deletion now: those whose config list names a
 * trigger the batch has reached (a purged batch: every copy), that may exist, and whose
 * deletion has not succeeded yet (pending and failed ones are due again).
 */
export function deletionsDue(row: BatchRow, policy: DeletionPolicy): BatchCopy[] {
  const triggers = batchTriggers(row);
  const lists: Record<BatchCopy, readonly string[]> = {
    datastore: policy.delete_datastore_on, dxlayer: policy.delete_dxlayer_on, local: policy.delete_local_on,
  };
  return BATCH_COPIES.filter((copy) => {
    if (row.stages[STAGE_OF[copy]] === 'succeeded') return false;
    if (!copyMayExist(row, copy)) return false;
    return triggers.has('purged') || lists[copy].some((t) => triggers.has(t));
  });
}

/** Where cleanup deletes copies. A missing service fails its deletions with a reason saying what to set. */
export interface CleanupServices {
  readonly datastore?: DatastoreClient;
  readonly odm?: OdmClient;
}

/** Options of {@link cleanupConfig}. */
export interface CleanupOptions extends CleanupServices {
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
  readonly pageSize?: number;
  /** Called after each deletion is recorded (tests; the runner's checkpoint). */
  readonly onDeletion?: (batch: string, copy: BatchCopy, ok: boolean) => Promise<void> | void;
}

/** What one cleanup pass over a config did. */
export interface CleanupReport {
  readonly config: string;
  /** Batches that had a deletion due. */
  readonly batches: number;
  readonly deleted: Readonly<Record<BatchCopy, number>>;
  readonly failed: Readonly<Record<BatchCopy, number>>;
}

/** Runs the deletion policy over every batch of a config once. */
export async function cleanupConfig(db: Database, config: LoadingConfig, options: CleanupOptions): Promise<CleanupReport> {
  const log = options.log ?? silentLogger;
  const now = (): string => (options.now ?? (() => new Date()))().toISOString();
  const pageSize = options.pageSize ?? 500;
  const deleted = { datastore: 0, dxlayer: 0, local: 0 };
  const failed = { datastore: 0, dxlayer: 0, local: 0 };
  let batches = 0;
  let after = 0;
  // Candidates: some copy not deleted yet, and the batch either purged or known to the ODM.
  const candidate = `(purged = 1 OR loaded_to_odm IS NOT NULL)
    AND (deleted_datastore IS NULL OR deleted_datastore <> 'succeeded' OR deleted_dxlayer IS NULL OR deleted_dxlayer <> 'succeeded'
         OR deleted_local IS NULL OR deleted_local <> 'succeeded')`;
  for (;;) {
    if (options.signal?.aborted) break;
    const rows = (await db.all(
      `SELECT ${BATCH_COLUMNS} FROM batch WHERE config = ? AND ${candidate} AND batch_id > ? ORDER BY batch_id LIMIT ?`,
      [config.name, after, pageSize],
    )).map(toBatchRow);
    if (rows.length === 0) break;
    after = rows.at(-1)!.batch_id;
    for (const first of rows) {
      if (options.signal?.aborted) break;
      const due = deletionsDue(first, config);
      if (due.length === 0) continue;
      batches++;
      for (const copy of due) {
        if (options.signal?.aborted) break;
        // Mark pending under lock, re-checking the policy against the row as it is now.
        const row = await db.transaction(async (tx) => {
          const current = await lockBatch(tx, first.batch_id);
          if (!current || !deletionsDue(current, config).includes(copy)) return undefined;
          if (current.stages[STAGE_OF[copy]] !== 'pending') {
            await setStage(tx, current.batch_id, { stage: STAGE_OF[copy], state: 'pending', at: now(), detail: `due: ${[...batchTriggers(current)].join(',')}` });
          }
          return current;
        });
        if (!row) continue;
        let outcome: { ok: true; detail: string } | { ok: false; detail: string };
        try {
          outcome = { ok: true, detail: await deleteCopy(row, copy, config, options) };
        } catch (error) {
          if (options.signal?.aborted) throw error;
          outcome = { ok: false, detail: (error as Error).message };
        }
        await db.transaction(async (tx) => {
          const current = await lockBatch(tx, row.batch_id);
          if (!current || current.stages[STAGE_OF[copy]] === 'succeeded') return;
          await setStage(tx, row.batch_id, { stage: STAGE_OF[copy], state: outcome.ok ? 'succeeded' : 'failed', at: now(), detail: outcome.detail });
        });
        if (outcome.ok) {
          deleted[copy]++;
          log.info(`${row.name}: ${copy} copy deleted (${outcome.detail})`);
        } else {
          failed[copy]++;
          log.warn(`${row.name}: deleting the ${copy} copy failed: ${outcome.detail}; retried next pass`);
        }
        await options.onDeletion?.(row.name, copy, outcome.ok);
      }
    }
    if (rows.length < pageSize) break;
  }
  return { config: config.name, batches, deleted, failed };
}

/** Deletes one copy; resolves with what was done, throws with the reason when it could not. */
async function deleteCopy(row: BatchRow, copy: BatchCopy, config: LoadingConfig, services: CleanupOptions): Promise<string> {
  switch (copy) {
    case 'datastore': {
      if (!services.datastore) throw new IppToPspsError('no_datastore', 'no datastore URL: set --datastore-url, the settings\' datastoreUrl or IPP_DATASTORE_URL');
      try {
        await services.datastore.remove(config.datastore_product, row.name);
        return `removed ${config.datastore_product}/${row.name} from the datastore`;
      } catch (error) {
        if (error instanceof RemoteError && (error.code === 'fileset_not_found' || error.code === 'product_not_found')) {
          return `${config.datastore_product}/${row.name} was already gone from the datastore`;
        }
        throw error;
      }
    }
    case 'dxlayer': {
      if (!services.odm) throw new IppToPspsError('no_odm', 'no ODM URL: set --odm-url, the settings\' odmUrl or IPP_ODM_URL');
      const had = await services.odm.deleteCopy(row.name);
      return had ? 'DXLayer copy deleted' : 'the DXLayer held no copy';
    }
    case 'local':
      return deleteLocal(row);
  }
}

/**
 * Deletes a batch's local copy: the whole directory when it is the batch's own (named after
 * it), otherwise only the batch's FITS and manifest in it. No file is held open across calls.
 */
async function deleteLocal(row: BatchRow): Promise<string> {
  const dir = row.local_path!;
  if (basename(dir) === row.name) {
    await rm(dir, { recursive: true, force: true });
    return `removed ${dir}`;
  }
  let removed = 0;
  for (const file of [`${row.name}.fits`, `${row.name}.manifest.json`]) {
    try {
      await unlink(join(dir, file));
      removed++;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  await rmdir(dir).catch(() => undefined); // only when empty: other batches may share it
  return removed > 0 ? `removed ${removed} files from ${dir}` : `nothing of ${row.name} left in ${dir}`;
}
