// pollodm: asks the ODM about batches at a chosen stage and records what it says (loaded,
// merge-worthy, merged, failed, with the ODM's times and reasons) in the batch rows and
// batch_event. A batch the ODM failed sends its queue item back to pending (attempts kept),
// so a loader builds it again as a new batch; after max_attempts the item fails instead.
import { silentLogger, type Logger } from '../../common/index.ts';
import type { Database, Queryable } from '../../db/index.ts';
import type { LoadingConfig } from '../configs.ts';
import { IppToPspsError } from '../errors.ts';
import { lockBatch, setStage, type BatchRow, type StageChange } from './batch-stages.ts';
import type { OdmBatchStatus, OdmClient } from './odm-client.ts';

/** Which batches pollodm asks about (the guide's third argument). */
export type PollStage = 'unloaded' | 'unmergeworthy' | 'unmerged' | 'all';

/** The values of pollodm's stage argument. */
export const POLL_STAGES: readonly PollStage[] = Object.freeze(['unloaded', 'unmergeworthy', 'unmerged', 'all']);

/** The values of pollodm's batch-type argument; `all` also takes IN batches. */
export const POLL_BATCH_TYPES: readonly string[] = Object.freeze(['P2', 'ST', 'OB', 'all']);

const STAGE_WHERE: Readonly<Record<Exclude<PollStage, 'all'>, string>> = {
  unloaded: "loaded_to_odm = 'pending'",
  unmergeworthy: "(loaded_to_odm = 'succeeded' AND (merge_worthy IS NULL OR merge_worthy = 'pending'))",
  unmerged: "(merge_worthy = 'succeeded' AND (merged IS NULL OR merged = 'pending'))",
};

/** The SQL condition selecting the batches of a poll stage. */
export function pollStageWhere(stage: PollStage): string {
  if (stage === 'all') return `(${Object.values(STAGE_WHERE).join(' OR ')})`;
  const where = STAGE_WHERE[stage];
  if (!where) throw new IppToPspsError('bad_poll_stage', `"${stage}" is not a pollodm stage; use one of ${POLL_STAGES.join(', ')}`);
  return where;
}

/** What an ODM answer changes in a batch row, and why the batch failed if it did. */
export interface OdmOutcome {
  readonly changes: readonly StageChange[];
  /** Set when the ODM failed the batch: its reasons, joined. */
  readonly failure?: string;
}

/**
 * The stage changes an ODM answer implies for a batch row. Stages only move forward
 * (NULL → pending → succeeded/failed); an answer that says less than the row already
 * records changes nothing. Undefined (the ODM never got the batch) and `received` leave
 * loaded_to_odm pending.
 */
export function odmOutcome(row: BatchRow, status: OdmBatchStatus | undefined, now: string): OdmOutcome {
  if (status === undefined || status.state === 'received') return { changes: [] };
  const reasons = (status.reasons ?? []).filter((r) => typeof r === 'string' && r !== '');
  const reasonText = reasons.length ? reasons.join('; ') : undefined;
  const target: [StageChange['stage'], 'pending' | 'succeeded' | 'failed', string][] = [];
  const at = (t: string | null | undefined, fallback?: string | null): string => t ?? fallback ?? now;
  switch (status.state) {
    case 'loaded':
      target.push(['loaded_to_odm', 'succeeded', at(status.loadedAt)], ['merge_worthy', 'pending', now]);
      break;
    case 'merge_worthy':
      target.push(['loaded_to_odm', 'succeeded', at(status.loadedAt, status.mergeWorthyAt)],
        ['merge_worthy', 'succeeded', at(status.mergeWorthyAt)], ['merged', 'pending', now]);
      break;
    case 'merged':
      target.push(['loaded_to_odm', 'succeeded', at(status.loadedAt, status.mergedAt)],
        ['merge_worthy', 'succeeded', at(status.mergeWorthyAt, status.mergedAt)], ['merged', 'succeeded', at(status.mergedAt)]);
      break;
    case 'failed': {
      const failedAt = at(status.failedAt);
      if (!status.loadedAt) {
        target.push(['loaded_to_odm', 'failed', failedAt]);
      } else if (!status.mergeWorthyAt) {
        target.push(['loaded_to_odm', 'succeeded', status.loadedAt], ['merge_worthy', 'failed', failedAt]);
      } else {
        target.push(['loaded_to_odm', 'succeeded', status.loadedAt], ['merge_worthy', 'succeeded', status.mergeWorthyAt],
          ['merged', 'failed', failedAt]);
      }
      break;
    }
  }
  const rank = (s: string | null): number => (s === null ? 0 : s === 'pending' ? 1 : 2);
  const changes: StageChange[] = [];
  let failure: string | undefined;
  for (const [stage, state, time] of target) {
    const current = row.stages[stage];
    if (rank(state) <= rank(current)) continue;
    const detail = state === 'failed' ? (reasonText ?? 'failed at the ODM (no reason given)') : state === 'succeeded' ? `ODM: ${status.state}` : null;
    changes.push({ stage, state, at: time, detail });
    if (state === 'failed') failure = detail ?? undefined;
  }
  return failure !== undefined ? { changes, failure } : { changes };
}

/** Options of {@link pollOdm}. */
export interface PollOdmOptions {
  readonly odm: OdmClient;
  /** Batch types to ask about (`P2`, `ST`, `OB`, `IN`). */
  readonly batchTypes: readonly string[];
  readonly stage: PollStage;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
  /** Batches read per query (default 500). */
  readonly pageSize?: number;
  /** ODM requests in flight at once (default 4). */
  readonly concurrency?: number;
  /** Called after each batch is recorded (the program runner's checkpoint; tests). */
  readonly onBatch?: (name: string) => Promise<void> | void;
}

/** What one pollodm pass over a config did. */
export interface PollReport {
  readonly config: string;
  /** Batches asked about. */
  readonly asked: number;
  /** Batches the ODM has not received yet. */
  readonly unknown: number;
  /** Batches whose row changed. */
  readonly changed: number;
  /** Batches the ODM failed in this pass. */
  readonly failed: number;
  /** Queue items sent back to pending for a new attempt. */
  readonly requeued: number;
  /** Queue items failed for good (max_attempts reached). */
  readonly exhausted: number;
}

/** Asks the ODM about every batch of `config` at `stage` and records the answers. */
export async function pollOdm(db: Database, config: LoadingConfig, options: PollOdmOptions): Promise<PollReport> {
  const log = options.log ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const pageSize = options.pageSize ?? 500;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const types = [...new Set(options.batchTypes)];
  if (types.length === 0) throw new IppToPspsError('bad_batch_type', 'pollodm needs at least one batch type');
  const where = pollStageWhere(options.stage);
  const report = { config: config.name, asked: 0, unknown: 0, changed: 0, failed: 0, requeued: 0, exhausted: 0 };
  let after = 0;
  for (;;) {
    if (options.signal?.aborted) break;
    const ids = await db.all<{ batch_id: number; name: string }>(
      `SELECT batch_id, name FROM batch WHERE config = ? AND purged = 0 AND batch_type IN (${types.map(() => '?').join(', ')})
       AND ${where} AND batch_id > ? ORDER BY batch_id LIMIT ?`,
      [config.name, ...types, after, pageSize],
    );
    if (ids.length === 0) break;
    after = Number(ids.at(-1)!.batch_id);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length && !options.signal?.aborted) {
        const { batch_id: id, name } = ids[next++];
        const status = await options.odm.batch(name, options.signal);
        report.asked++;
        if (status === undefined) report.unknown++;
        const applied = await recordOdmStatus(db, config, Number(id), status, now().toISOString());
        if (applied.changed) {
          report.changed++;
          log.info(`${name}: ${applied.summary}`);
        }
        if (applied.failed) report.failed++;
        if (applied.item === 'pending') report.requeued++;
        if (applied.item === 'failed') report.exhausted++;
        await options.onBatch?.(name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
    if (ids.length < pageSize) break;
  }
  return report;
}

/** What recording one answer did. */
export interface RecordedStatus {
  readonly changed: boolean;
  readonly failed: boolean;
  /** The queue item's new state when the failure sent it back (or failed it for good). */
  readonly item?: 'pending' | 'failed';
  readonly summary: string;
}

/**
 * Records one ODM answer for one batch in one transaction: the stage changes with their
 * events, the failure reason, and the queue item sent back. Re-reads the row under lock, so a
 * second pollodm (or a rerun after a crash) finds nothing left to change.
 */
export async function recordOdmStatus(
  db: Database, config: LoadingConfig, batchId: number, status: OdmBatchStatus | undefined, now: string,
): Promise<RecordedStatus> {
  return db.transaction(async (tx) => {
    const row = await lockBatch(tx, batchId);
    if (!row) return { changed: false, failed: false, summary: 'gone' };
    const outcome = odmOutcome(row, status, now);
    if (outcome.changes.length === 0) return { changed: false, failed: false, summary: 'unchanged' };
    for (const change of outcome.changes) await setStage(tx, batchId, change);
    const parts = outcome.changes.map((c) => `${c.stage} ${c.state}`);
    let item: RecordedStatus['item'];
    if (outcome.failure !== undefined) {
      await tx.run('UPDATE batch SET reason = ? WHERE batch_id = ?', [outcome.failure, batchId]);
      parts.push(`(${outcome.failure})`);
      item = await requeueItem(tx, config, row, outcome.failure, now);
      if (item === 'pending') parts.push(`; item ${row.item_id} back to pending`);
      else if (item === 'failed') parts.push(`; item ${row.item_id} failed for good (${config.max_attempts} attempts)`);
      else if (row.item_id === null) parts.push('; no queue item (an IN batch is made again with "ipp loader <config> init")');
    }
    return { changed: true, failed: outcome.failure !== undefined, ...(item ? { item } : {}), summary: parts.join(' ') };
  });
}

/**
 * Sends a failed batch's queue item back to pending, or fails it once its attempts reach the
 * config's max_attempts. Only an item whose latest batch is this one is touched: an item
 * already loaded again (a newer batch) is left alone.
 */
async function requeueItem(q: Queryable, config: LoadingConfig, row: BatchRow, reason: string, now: string): Promise<'pending' | 'failed' | undefined> {
  if (row.item_id === null) return undefined;
  const updated = await q.get<{ state: string }>(
    `UPDATE queue_item SET state = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END, reason = ?,
       claimed_by = NULL, claim_expires = NULL, updated_at = ?
     WHERE item_id = ? AND state = 'done' AND (batch_id IS NULL OR batch_id = ?) RETURNING state`,
    [config.max_attempts, `${row.name}: ${reason}`, now, row.item_id, row.batch_id],
  );
  return updated ? (updated.state as 'pending' | 'failed') : undefined;
}
