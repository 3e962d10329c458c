// What the console reads from the tracking database: one set-based statement per view
// (clients, the stage table, failed and latest batches, the latest metrics). Writes go through
// the room's own config and client functions, never through SQL of the console's.
import type { Queryable, Row } from '../../db/index.ts';
import { stageCounts, type StageCountRow, type StageCounts } from '../lifecycle/metrics.ts';
import { BATCH_STAGES, type BatchStage } from '../migrations.ts';

/** A registered program as the console shows it. */
export interface ClientView {
  readonly clientId: number;
  readonly program: string;
  readonly config: string | null;
  readonly host: string | null;
  readonly pid: number | null;
  readonly startedAt: string | null;
  readonly heartbeatAt: string | null;
  /** Seconds since the last heartbeat (null when there was none). */
  readonly heartbeatAgeSeconds: number | null;
  readonly state: string;
  readonly request: string | null;
  readonly currentItem: string | null;
  readonly logPath: string | null;
  /** Why it ended (exited, lost), when it did. */
  readonly detail: string | null;
}

/** One row of the guide's stage table: a config and batch type, its queue and every stage. */
export interface StageRow {
  readonly config: string;
  readonly batchType: string;
  readonly batches: number;
  /** Queue items by state (the guide's "DVO" column counts what was queued). */
  readonly queue: { readonly total: number; readonly pending: number; readonly claimed: number; readonly done: number; readonly failed: number };
  readonly stages: Readonly<Record<BatchStage, StageCounts>>;
}

/** A batch as listed by the console. */
export interface BatchView {
  readonly batchId: number;
  readonly name: string;
  readonly config: string;
  readonly batchType: string;
  readonly sourceId: string | null;
  readonly createdAt: string | null;
  readonly nRows: number | null;
  readonly purged: boolean;
  readonly reason: string | null;
  /** Stages that failed, in lifecycle order. */
  readonly failedStages: readonly BatchStage[];
  /** The state of every stage (null: not reached). */
  readonly stages: Readonly<Record<BatchStage, string | null>>;
}

/** A queue item that failed, with its reason. */
export interface FailedItemView {
  readonly itemId: number;
  readonly config: string;
  readonly batchType: string;
  readonly sourceId: string | null;
  readonly attempts: number;
  readonly reason: string | null;
  readonly updatedAt: string | null;
}

/** The latest figures of the metrics time series of one config. */
export interface MetricsView {
  readonly config: string;
  readonly at: string;
  /** name → batch type → value. */
  readonly values: Readonly<Record<string, Readonly<Record<string, number | null>>>>;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/**
 * The clients still registered as live (running, paused, stopped) and the `ended` most recent
 * of those that exited or were lost, newest first, with the age of their heartbeats at `now`.
 * Every program run adds a row, so the ended ones are cut short.
 */
export async function clientViews(q: Queryable, now: Date = new Date(), ended = 20): Promise<ClientView[]> {
  const columns = 'client_id, program, config, host, pid, started_at, heartbeat_at, state, request, current_item, log_path, detail';
  const rows = [
    ...await q.all(`SELECT ${columns} FROM client WHERE state IN ('running', 'paused', 'stopped')`),
    ...await q.all(`SELECT ${columns} FROM client WHERE state NOT IN ('running', 'paused', 'stopped') ORDER BY client_id DESC LIMIT ?`, [ended]),
  ].sort((a, b) => num(b.client_id) - num(a.client_id));
  return rows.map((r) => {
    const heartbeat = strOrNull(r.heartbeat_at);
    const beat = heartbeat === null ? NaN : Date.parse(heartbeat);
    return {
      clientId: num(r.client_id),
      program: String(r.program),
      config: strOrNull(r.config),
      host: strOrNull(r.host),
      pid: numOrNull(r.pid),
      startedAt: strOrNull(r.started_at),
      heartbeatAt: heartbeat,
      heartbeatAgeSeconds: Number.isFinite(beat) ? Math.max(0, Math.round((now.getTime() - beat) / 1000)) : null,
      state: String(r.state),
      request: strOrNull(r.request),
      currentItem: strOrNull(r.current_item),
      logPath: strOrNull(r.log_path),
      detail: strOrNull(r.detail),
    };
  });
}

/** The Pend/Succ/Fail table per config and batch type, with the queue beside it; `config` narrows it. */
export async function stageTable(q: Queryable, config?: string): Promise<StageRow[]> {
  const where = config === undefined ? '' : 'WHERE config = ?';
  const params = config === undefined ? [] : [config];
  const batches = await stageCounts(q, config);
  const queue = await q.all(`SELECT config, batch_type, COUNT(*) AS n,
      SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
      SUM(CASE WHEN state = 'claimed' THEN 1 ELSE 0 END) AS claimed,
      SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END) AS done,
      SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed
      FROM queue_item ${where} GROUP BY config, batch_type`, params);
  const key = (c: string, t: string): string => `${c}\u0000${t}`;
  const byKey = new Map<string, { config: string; batchType: string; b?: StageCountRow; q?: Row }>();
  for (const b of batches) byKey.set(key(b.config, b.batchType), { config: b.config, batchType: b.batchType, b });
  for (const r of queue) {
    const k = key(String(r.config), String(r.batch_type));
    const entry = byKey.get(k) ?? { config: String(r.config), batchType: String(r.batch_type) };
    entry.q = r;
    byKey.set(k, entry);
  }
  const order = ['IN', 'P2', 'ST', 'OB'];
  const rank = (t: string): number => (order.includes(t) ? order.indexOf(t) : order.length);
  const none: StageCounts = { pending: 0, succeeded: 0, failed: 0 };
  return [...byKey.values()]
    .sort((a, b) => a.config.localeCompare(b.config) || rank(a.batchType) - rank(b.batchType) || a.batchType.localeCompare(b.batchType))
    .map(({ config: c, batchType, b, q: qr }) => ({
      config: c,
      batchType,
      batches: b?.batches ?? 0,
      queue: { total: num(qr?.n), pending: num(qr?.pending), claimed: num(qr?.claimed), done: num(qr?.done), failed: num(qr?.failed) },
      stages: b?.stages ?? Object.fromEntries(BATCH_STAGES.map((s) => [s, none])) as Record<BatchStage, StageCounts>,
    }));
}

const BATCH_COLUMNS = `batch_id, name, config, batch_type, source_id, created_at, n_rows, purged, reason, ${BATCH_STAGES.join(', ')}`;

function batchView(r: Row): BatchView {
  const stages = Object.fromEntries(BATCH_STAGES.map((s) => [s, strOrNull(r[s])])) as Record<BatchStage, string | null>;
  return {
    batchId: num(r.batch_id),
    name: String(r.name),
    config: String(r.config),
    batchType: String(r.batch_type),
    sourceId: strOrNull(r.source_id),
    createdAt: strOrNull(r.created_at),
    nRows: numOrNull(r.n_rows),
    purged: num(r.purged) !== 0,
    reason: strOrNull(r.reason),
    failedStages: BATCH_STAGES.filter((s) => stages[s] === 'failed'),
    stages,
  };
}

/** Batches with a failed stage, newest first, at most `limit`; `config` narrows them. */
export async function failedBatches(q: Queryable, options: { config?: string; limit?: number } = {}): Promise<BatchView[]> {
  const anyFailed = BATCH_STAGES.map((s) => `${s} = 'failed'`).join(' OR ');
  const where = options.config === undefined ? `(${anyFailed})` : `config = ? AND (${anyFailed})`;
  const params = options.config === undefined ? [] : [options.config];
  const rows = await q.all(`SELECT ${BATCH_COLUMNS} FROM batch WHERE ${where} ORDER BY batch_id DESC LIMIT ?`,
    [...params, options.limit ?? 50]);
  return rows.map(batchView);
}

/** The newest batches, at most `limit`; `config` narrows them. */
export async function latestBatches(q: Queryable, options: { config?: string; limit?: number } = {}): Promise<BatchView[]> {
  const where = options.config === undefined ? '' : 'WHERE config = ?';
  const params = options.config === undefined ? [] : [options.config];
  const rows = await q.all(`SELECT ${BATCH_COLUMNS} FROM batch ${where} ORDER BY batch_id DESC LIMIT ?`,
    [...params, options.limit ?? 20]);
  return rows.map(batchView);
}

/** Queue items that failed (the loader gave up on them), newest first, at most `limit`. */
export async function failedItems(q: Queryable, options: { config?: string; limit?: number } = {}): Promise<FailedItemView[]> {
  const where = options.config === undefined ? "state = 'failed'" : "config = ? AND state = 'failed'";
  const params = options.config === undefined ? [] : [options.config];
  const rows = await q.all(`SELECT item_id, config, batch_type, source_id, attempts, reason, updated_at FROM queue_item
      WHERE ${where} ORDER BY updated_at DESC, item_id DESC LIMIT ?`, [...params, options.limit ?? 50]);
  return rows.map((r) => ({
    itemId: num(r.item_id),
    config: String(r.config),
    batchType: String(r.batch_type),
    sourceId: strOrNull(r.source_id),
    attempts: num(r.attempts),
    reason: strOrNull(r.reason),
    updatedAt: strOrNull(r.updated_at),
  }));
}

/** The figures of the newest metrics snapshot of every config (or of one). */
export async function latestMetrics(q: Queryable, config?: string): Promise<MetricsView[]> {
  const where = config === undefined ? '' : 'WHERE config = ?';
  const rows = await q.all(`SELECT m.config, m.at, m.batch_type, m.name, m.value FROM metrics m
      JOIN (SELECT config, MAX(at) AS at FROM metrics ${where} GROUP BY config) l ON m.config = l.config AND m.at = l.at
      ORDER BY m.config, m.name, m.batch_type`, config === undefined ? [] : [config]);
  const out = new Map<string, { config: string; at: string; values: Record<string, Record<string, number | null>> }>();
  for (const r of rows) {
    const c = String(r.config);
    let view = out.get(c);
    if (!view) {
      view = { config: c, at: String(r.at), values: {} };
      out.set(c, view);
    }
    (view.values[String(r.name)] ??= {})[String(r.batch_type)] = numOrNull(r.value);
  }
  return [...out.values()];
}
