// Reading batch rows and moving a batch's stage, always with its batch_event row in the same
// transaction: the event log is the record that every change (and every deletion) happened.
import type { Queryable, Row } from '../../db/index.ts';
import { setBatchStage, toBatch } from '../batches.ts';
import { BATCH_STAGES, type BatchStage, type StageState } from '../migrations.ts';

/** The columns of a batch row the lifecycle programs use. */
export interface BatchRow {
  readonly batch_id: number;
  readonly name: string;
  readonly config: string;
  readonly batch_type: string;
  readonly item_id: number | null;
  readonly source_id: number | null;
  readonly created_at: string;
  readonly local_path: string | null;
  readonly n_rows: number | null;
  readonly purged: number;
  readonly reason: string | null;
  readonly stages: Readonly<Record<BatchStage, StageState | null>>;
  readonly times: Readonly<Record<BatchStage, string | null>>;
}

/** Every stage column, in order (the tracking database's list). */
export const STAGES: readonly BatchStage[] = BATCH_STAGES;

/** The stage columns of a batch row, for SELECT lists. */
export const BATCH_COLUMNS = [
  'batch_id', 'name', 'config', 'batch_type', 'item_id', 'source_id', 'created_at', 'local_path', 'n_rows', 'purged', 'reason',
  ...STAGES.flatMap((s) => [s, `${s}_at`]),
].join(', ');

/** A batch row as read from the database (the tracking database's own reading of it, by stage). */
export function toBatchRow(row: Row): BatchRow {
  const b = toBatch(row);
  const of = <T>(pick: (stage: { state: StageState | null; at: string | null }) => T) =>
    Object.fromEntries(STAGES.map((s) => [s, pick(b.stages[s])])) as Record<BatchStage, T>;
  return {
    batch_id: b.batch_id, name: b.name, config: b.config, batch_type: b.batch_type, item_id: b.item_id, source_id: b.source_id,
    created_at: b.created_at, local_path: b.local_path, n_rows: b.n_rows, purged: b.purged ? 1 : 0, reason: b.reason,
    stages: of((st) => st.state), times: of((st) => st.at),
  };
}

/** Reads one batch row inside a transaction, locking it on PostgreSQL (SQLite's transaction already holds the write lock). */
export async function lockBatch(q: Queryable, batchId: number): Promise<BatchRow | undefined> {
  const lock = q.dialect.engine === 'postgres' ? ' FOR UPDATE' : '';
  const row = await q.get(`SELECT ${BATCH_COLUMNS} FROM batch WHERE batch_id = ?${lock}`, [batchId]);
  return row ? toBatchRow(row) : undefined;
}

/** One change of a stage. */
export interface StageChange {
  readonly stage: BatchStage;
  readonly state: StageState;
  readonly at: string;
  readonly detail?: string | null;
}

/** Sets a stage's state and time and records the event (call inside a transaction). */
export async function setStage(q: Queryable, batchId: number, change: StageChange): Promise<void> {
  await setBatchStage(q, batchId, change.stage, change.state, { detail: change.detail ?? undefined, now: new Date(change.at) });
}
