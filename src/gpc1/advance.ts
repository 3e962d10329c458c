// Advancing: the periodic task that sets runs to `full` once all their components are done,
// and queues the next stage for them as their end_stage asks (chip → camera → fake → warp).
// Many processes may advance at once: each claims the finished runs it changes with the
// database layer's claim pattern (row locks skipped by others on PostgreSQL, the write lock
// on SQLite) inside the transaction that also queues the next stage, so a run is advanced,
// and its next stage queued, exactly once.
import type { Database, Queryable, SqlValue } from '../db/index.ts';
import { doneCondition, usableCondition } from './completion.ts';
import { checkLimit } from './pending-components.ts';
import { CHAIN, allStages, parseStage, stage as describeStage, type StageDescriptor, type StageName } from './stages.ts';
import { chunks, marks, now } from './sql.ts';
import { checkName } from './values.ts';

/** Which runs {@link advance} looks at. */
export interface AdvanceOptions {
  /** One stage (default: every stage, in pipeline order). */
  readonly stage?: StageName;
  readonly label?: string;
  /** At most this many runs per stage and state (default: all that are done). */
  readonly limit?: number;
}

/** Why an advanced run did not queue a next stage. */
export type StopReason = 'last_stage' | 'not_chained' | 'end_stage' | 'quality' | 'no_tess_id' | 'updated';

/** One run set to full by {@link advance}. */
export interface AdvancedRun {
  readonly stage: StageName;
  readonly id: number;
  /** The run of the next stage queued for it, if any. */
  readonly queued: { readonly stage: StageName; readonly id: number } | null;
  /**
   * Why nothing was queued: the chain ends here (warp), the stage is outside the chain (its
   * successors are defined by hand), end_stage stops it, every component was bad, no
   * tessellation, or it was a redo of a run already chained.
   */
  readonly stopped: StopReason | null;
  /** Components done with bad quality (counted as done, reported here). */
  readonly bad_components: number;
}

/** What {@link advance} did. */
export interface AdvanceResult {
  readonly advanced: number;
  readonly queued: number;
  readonly runs: readonly AdvancedRun[];
}

/** Sets finished runs to full and queues their next stage; see the file comment for the guarantees. */
export async function advance(db: Database, options: AdvanceOptions = {}): Promise<AdvanceResult> {
  const stages = options.stage === undefined ? allStages() : [describeStage(parseStage(options.stage))];
  const label = options.label === undefined ? null : checkName(options.label, 'advance: label');
  const limit = checkLimit(options.limit, 'advance');
  const runs: AdvancedRun[] = [];
  for (const d of stages) runs.push(...await db.transaction((tx) => advanceStage(tx, d, label, limit)));
  return { advanced: runs.length, queued: runs.filter((r) => r.queued !== null).length, runs };
}

async function advanceStage(tx: Queryable, d: StageDescriptor, label: string | null, limit: number | null): Promise<AdvancedRun[]> {
  const out: AdvancedRun[] = [];
  for (const from of ['new', 'update'] as const) {
    const params: SqlValue[] = label === null ? [] : [label];
    const claimed = await tx.all<{ id: number; end_stage: string | null }>(
      `UPDATE ${d.runTable} SET state = 'full' WHERE ${d.key} IN (
         SELECT r.${d.key} FROM ${d.runTable} r WHERE r.state = '${from}'${label === null ? '' : ' AND r.label = ?'} AND ${doneCondition(d)}
         ORDER BY r.${d.key}${limit === null ? '' : ` LIMIT ${limit}`} ${tx.dialect.skipLocked})
       AND state = '${from}' RETURNING ${d.key} AS id, end_stage`, params);
    if (claimed.length === 0) continue;
    const ids = claimed.map((c) => Number(c.id)).sort((a, b) => a - b);
    const quality = await componentQuality(tx, d, ids);
    const queued = from === 'new' && d.next ? await queueNext(tx, d, ids) : new Map<number, number>();
    const endOf = new Map(claimed.map((c) => [Number(c.id), c.end_stage]));
    for (const id of ids) {
      const q = quality.get(id) ?? { total: 0, bad: 0 };
      const next = queued.get(id);
      let stopped: StopReason | null = null;
      if (next === undefined) {
        if (from === 'update') stopped = 'updated';
        else if (!d.next) stopped = CHAIN.includes(d.name) ? 'last_stage' : 'not_chained';
        else if (!goesOn(d.name, endOf.get(id) ?? null)) stopped = 'end_stage';
        else if (q.bad >= q.total) stopped = 'quality';
        else stopped = 'no_tess_id';
      }
      out.push({ stage: d.name, id, queued: next === undefined ? null : { stage: d.next!, id: next }, stopped, bad_components: q.bad });
    }
  }
  return out;
}

/** The stages after `name` in the chain: an end_stage among them lets the run go on. */
function laterStages(name: StageName): StageName[] {
  return CHAIN.slice(CHAIN.indexOf(name) + 1);
}

function goesOn(name: StageName, endStage: string | null): boolean {
  return endStage === null || (laterStages(name) as string[]).includes(endStage);
}

/** Queues one run of the next stage per advanced run whose end_stage lies further on and which has a usable component; returns parent id → new id. */
async function queueNext(tx: Queryable, d: StageDescriptor, ids: readonly number[]): Promise<Map<number, number>> {
  const next = describeStage(d.next!);
  const later = laterStages(d.name);
  const inherited = ['workdir', 'label', 'data_group', 'dist_group', 'end_stage', 'reduction', 'dvodb', 'tess_id'];
  const made = new Map<number, number>();
  const time = now();
  for (const part of chunks(ids)) {
    const rows = await tx.all<{ id: number; parent: number }>(
      `INSERT INTO ${next.runTable} (${next.parentColumn}, state, registered, ${inherited.join(', ')})
       SELECT r.${d.key}, 'new', CAST(? AS TEXT), ${inherited.map((c) => `r.${c}`).join(', ')} FROM ${d.runTable} r
       WHERE r.${d.key} IN (${marks(part.length)})
         AND (r.end_stage IS NULL OR r.end_stage IN (${later.map((s) => `'${s}'`).join(', ')}))
         AND ${usableCondition(d)}${next.name === 'warp' ? ' AND r.tess_id IS NOT NULL' : ''}
       ORDER BY r.${d.key} RETURNING ${next.key} AS id, ${next.parentColumn} AS parent`, [time, ...part]);
    for (const r of rows) made.set(Number(r.parent), Number(r.id));
  }
  return made;
}

async function componentQuality(tx: Queryable, d: StageDescriptor, ids: readonly number[]): Promise<Map<number, { total: number; bad: number }>> {
  const out = new Map<number, { total: number; bad: number }>();
  for (const part of chunks(ids)) {
    const rows = await tx.all<{ id: number; total: number; bad: number }>(
      `SELECT ${d.key} AS id, COUNT(*) AS total, SUM(CASE WHEN quality <> 0 THEN 1 ELSE 0 END) AS bad
       FROM ${d.componentTable} WHERE ${d.key} IN (${marks(part.length)}) GROUP BY ${d.key}`, part);
    for (const r of rows) out.set(Number(r.id), { total: Number(r.total), bad: Number(r.bad) });
  }
  return out;
}
