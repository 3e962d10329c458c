// `ipp datastore-remove`: the original's datastoreRemover — takes one batch or a range of
// batches of a config off the datastore and records it in the batch table.
import { isIppError } from '../common/index.ts';
import type { Database } from '../db/index.ts';
import type { DatastoreClient } from '../datastore/index.ts';
import { batchIdOf, setBatchStage } from './batches.ts';
import type { LoadingConfig } from './configs.ts';
import { IppToPspsError } from './errors.ts';

/** What happened to one batch. */
export interface RemovedBatch {
  readonly name: string;
  readonly state: 'removed' | 'absent' | 'failed';
  readonly detail?: string;
}

/**
 * Removes the batches of `config` from `first` to `last` (names, inclusive; one batch when
 * `last` is absent) from the config's datastore product. A batch the datastore no longer has
 * counts as removed; each outcome sets deleted_datastore and records an event.
 */
export async function removeFromDatastore(
  db: Database, datastore: DatastoreClient, config: LoadingConfig, first: string, last?: string,
  options: { signal?: AbortSignal } = {},
): Promise<RemovedBatch[]> {
  const from = batchIdOf(first);
  const to = last === undefined ? from : batchIdOf(last);
  if (to < from) throw new IppToPspsError('batch_range_invalid', `the range ${first}..${last} ends before it starts`);
  const rows = await db.all<{ batch_id: number; name: string }>(
    'SELECT batch_id, name FROM batch WHERE config = ? AND batch_id BETWEEN ? AND ? ORDER BY batch_id', [config.name, from, to]);
  if (rows.length === 0) {
    throw new IppToPspsError('batch_unknown', `config ${config.name} has no batch ${last === undefined ? first : `from ${first} to ${last}`}`);
  }
  const out: RemovedBatch[] = [];
  for (const row of rows) {
    options.signal?.throwIfAborted();
    const id = Number(row.batch_id);
    try {
      await datastore.remove(config.datastore_product, row.name);
      await setBatchStage(db, id, 'deleted_datastore', 'succeeded', { detail: `removed from ${config.datastore_product} by datastore-remove` });
      out.push({ name: row.name, state: 'removed' });
    } catch (error) {
      if (isIppError(error) && (error.code === 'fileset_not_found' || error.code === 'product_not_found')) {
        await setBatchStage(db, id, 'deleted_datastore', 'succeeded', { detail: `not on the datastore (${error.code})` });
        out.push({ name: row.name, state: 'absent', detail: error.message });
        continue;
      }
      const detail = isIppError(error) ? `[${error.code}] ${error.message}` : String((error as Error).message ?? error);
      await setBatchStage(db, id, 'deleted_datastore', 'failed', { detail: detail.slice(0, 1000) });
      out.push({ name: row.name, state: 'failed', detail });
    }
  }
  return out;
}
