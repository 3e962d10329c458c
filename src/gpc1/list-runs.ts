// Listing runs and counting them per stage and state: what operators look at.
import type { Database, SqlValue } from '../db/index.ts';
import { checkLimit } from './pending-components.ts';
import { STAGE_NAMES, allStages, parseStage, stage as describeStage, type StageName } from './stages.ts';
import { parseRunState, type RunState } from './states.ts';
import { checkIds, checkName } from './values.ts';

/** Which runs {@link listRuns} returns. */
export interface ListOptions {
  readonly stage: StageName;
  readonly state?: RunState;
  readonly label?: string;
  readonly ids?: readonly number[];
  readonly limit?: number;
}

/** A run as listed: its row, its id under a common name, and counts of its components. */
export interface RunRow {
  readonly stage: StageName;
  readonly id: number;
  readonly state: RunState;
  readonly label: string | null;
  readonly data_group: string | null;
  readonly dist_group: string | null;
  readonly end_stage: string | null;
  readonly reduction: string | null;
  readonly workdir: string | null;
  readonly note: string | null;
  readonly registered: string;
  /** Components recorded without fault (including quality-bad ones). */
  readonly done: number;
  readonly faulted: number;
  readonly bad_quality: number;
  /** Every column of the run's row (inputs such as exp_id, chip_id, tess_id...). */
  readonly row: Readonly<Record<string, unknown>>;
}

/** Runs of a stage in id order, optionally by state and label. */
export async function listRuns(db: Database, options: ListOptions): Promise<RunRow[]> {
  const d = describeStage(parseStage(options.stage));
  const conditions: string[] = [];
  const params: SqlValue[] = [];
  if (options.state !== undefined) {
    conditions.push('r.state = ?');
    params.push(parseRunState(options.state));
  }
  if (options.label !== undefined) {
    conditions.push('r.label = ?');
    params.push(checkName(options.label, 'runs: label'));
  }
  if (options.ids !== undefined) {
    const ids = checkIds(options.ids, 'runs: ids');
    conditions.push(`r.${d.key} IN (${ids.map(() => '?').join(', ')})`);
    params.push(...ids);
  }
  const limit = checkLimit(options.limit, 'runs');
  const count = (cond: string) => `(SELECT COUNT(*) FROM ${d.componentTable} k WHERE k.${d.key} = r.${d.key} AND ${cond})`;
  const rows = await db.all(
    `SELECT r.*, ${count('k.fault = 0')} AS gpc1_done, ${count('k.fault <> 0')} AS gpc1_faulted, ${count('k.quality <> 0')} AS gpc1_bad
     FROM ${d.runTable} r${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''}
     ORDER BY r.${d.key}${limit === null ? '' : ` LIMIT ${limit}`}`, params);
  return rows.map((r) => {
    const { gpc1_done, gpc1_faulted, gpc1_bad, ...row } = r;
    return {
      stage: d.name, id: Number(row[d.key]), state: row.state as RunState,
      label: row.label as string | null, data_group: row.data_group as string | null, dist_group: row.dist_group as string | null,
      end_stage: row.end_stage as string | null, reduction: row.reduction as string | null, workdir: row.workdir as string | null,
      note: row.note as string | null, registered: row.registered as string,
      done: Number(gpc1_done), faulted: Number(gpc1_faulted), bad_quality: Number(gpc1_bad), row,
    };
  });
}

/** How many runs one stage has in one state. */
export interface SummaryRow {
  readonly stage: StageName;
  readonly state: RunState;
  readonly runs: number;
}

/** Run counts per stage and state (only the pairs that have runs), in pipeline order. */
export async function summary(db: Database, options: { readonly label?: string } = {}): Promise<SummaryRow[]> {
  const label = options.label === undefined ? null : checkName(options.label, 'summary: label');
  const parts = allStages().map((d) => `SELECT '${d.name}' AS stage, state, COUNT(*) AS runs FROM ${d.runTable}${label === null ? '' : ' WHERE label = ?'} GROUP BY state`);
  const rows = await db.all<{ stage: StageName; state: RunState; runs: number }>(parts.join('\nUNION ALL\n'), label === null ? [] : allStages().map(() => label));
  const order = (s: StageName) => STAGE_NAMES.indexOf(s);
  return rows
    .map((r) => ({ stage: r.stage, state: r.state, runs: Number(r.runs) }))
    .sort((a, b) => order(a.stage) - order(b.stage) || a.state.localeCompare(b.state));
}
