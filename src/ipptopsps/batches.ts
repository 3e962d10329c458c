// Batch rows of the tracking database: a batch is created when its build starts (its id makes
// its name), and every change of one of its stages is written together with a batch_event
// row, so the history of each batch can be read back.
import type { Queryable, Row, SqlValue } from '../db/index.ts';
import type { AnyBatchType } from './configs.ts';
import { IppToPspsError } from './errors.ts';
import { BATCH_STAGES, type BatchStage, type StageState } from './migrations.ts';

/** A batch name: `B` + the 8-digit zero-padded batch_id. */
export function batchName(batchId: number): string {
  return `B${String(batchId).padStart(8, '0')}`;
}

/** The batch_id of a batch name, or a `batch_name_invalid` error. */
export function batchIdOf(name: string): number {
  const m = /^B(\d{8,})$/.exec(name);
  if (!m) throw new IppToPspsError('batch_name_invalid', `"${name}" is not a batch name (B followed by 8 digits, e.g. B00000042)`);
  return Number(m[1]);
}

/** One row of the batch table, as read back. */
export interface BatchRecord {
  readonly batch_id: number;
  readonly name: string;
  readonly config: string;
  readonly batch_type: AnyBatchType;
  readonly item_id: number | null;
  readonly source_id: number | null;
  readonly created_at: string;
  readonly client_id: number | null;
  readonly local_path: string | null;
  readonly fits_bytes: number | null;
  readonly fits_md5: string | null;
  readonly n_rows: number | null;
  readonly rows_json: string | null;
  readonly purged: boolean;
  readonly test: boolean;
  readonly reason: string | null;
  /** Each stage's state (null: not reached) and time. */
  readonly stages: Readonly<Record<BatchStage, { state: StageState | null; at: string | null }>>;
}

/** What a new batch row records. */
export interface NewBatch {
  readonly config: string;
  readonly type: AnyBatchType;
  readonly itemId: number | null;
  readonly sourceId: number;
  readonly clientId: number | null;
  readonly test?: boolean;
}

/** Creates a batch row (processed = pending, with its event) and returns its id and name. */
export async function createBatch(q: Queryable, b: NewBatch, now = new Date()): Promise<{ batchId: number; name: string }> {
  const at = now.toISOString();
  const row = await q.get<{ batch_id: number }>(
    `INSERT INTO batch (config, batch_type, item_id, source_id, created_at, client_id, test, processed, processed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING batch_id`,
    [b.config, b.type, b.itemId, b.sourceId, at, b.clientId, b.test ? 1 : 0, at]);
  const batchId = Number(row!.batch_id);
  const name = batchName(batchId);
  await q.run('UPDATE batch SET name = ? WHERE batch_id = ?', [name, batchId]);
  await q.run('INSERT INTO batch_event (batch_id, stage, state, at, detail) VALUES (?, ?, ?, ?, ?)',
    [batchId, 'processed', 'pending', at, b.test ? 'test batch' : null]);
  return { batchId, name };
}

/**
 * Sets one stage of a batch and records the event; `fields` sets further columns in the same
 * statement (local_path, fits_md5, reason...).
 */
export async function setBatchStage(
  q: Queryable, batchId: number, stage: BatchStage, state: StageState | null,
  options: { detail?: string; fields?: Readonly<Record<string, SqlValue>>; now?: Date } = {},
): Promise<void> {
  if (!BATCH_STAGES.includes(stage)) throw new IppToPspsError('batch_stage_unknown', `"${stage}" is not a batch stage (${BATCH_STAGES.join(', ')})`);
  const at = (options.now ?? new Date()).toISOString();
  const extra = Object.entries(options.fields ?? {});
  await q.run(`UPDATE batch SET ${stage} = ?, ${stage}_at = ?${extra.map(([k]) => `, ${k} = ?`).join('')} WHERE batch_id = ?`,
    [state, at, ...extra.map(([, v]) => v), batchId]);
  await q.run('INSERT INTO batch_event (batch_id, stage, state, at, detail) VALUES (?, ?, ?, ?, ?)',
    [batchId, stage, state, at, options.detail ?? null]);
}

/** The batch of this name or id, or undefined. */
export async function findBatch(q: Queryable, nameOrId: string | number): Promise<BatchRecord | undefined> {
  const row = typeof nameOrId === 'number'
    ? await q.get('SELECT * FROM batch WHERE batch_id = ?', [nameOrId])
    : await q.get('SELECT * FROM batch WHERE name = ?', [nameOrId]);
  return row ? toBatch(row) : undefined;
}

/** The events of a batch, oldest first. */
export async function batchEvents(q: Queryable, batchId: number): Promise<{ stage: string; state: string | null; at: string; detail: string | null }[]> {
  return (await q.all('SELECT stage, state, at, detail FROM batch_event WHERE batch_id = ? ORDER BY event_id', [batchId]))
    .map((r) => ({ stage: String(r.stage), state: (r.state ?? null) as string | null, at: String(r.at), detail: (r.detail ?? null) as string | null }));
}

/** A batch row as read back, typed. */
export function toBatch(row: Row): BatchRecord {
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const stages = {} as Record<BatchStage, { state: StageState | null; at: string | null }>;
  for (const s of BATCH_STAGES) stages[s] = { state: (row[s] ?? null) as StageState | null, at: (row[`${s}_at`] ?? null) as string | null };
  return Object.freeze({
    batch_id: Number(row.batch_id),
    name: String(row.name),
    config: String(row.config),
    batch_type: String(row.batch_type) as AnyBatchType,
    item_id: num(row.item_id),
    source_id: num(row.source_id),
    created_at: String(row.created_at),
    client_id: num(row.client_id),
    local_path: (row.local_path ?? null) as string | null,
    fits_bytes: num(row.fits_bytes),
    fits_md5: (row.fits_md5 ?? null) as string | null,
    n_rows: num(row.n_rows),
    rows_json: (row.rows_json ?? null) as string | null,
    purged: Number(row.purged) === 1,
    test: Number(row.test ?? 0) === 1,
    reason: (row.reason ?? null) as string | null,
    stages: Object.freeze(stages),
  });
}
