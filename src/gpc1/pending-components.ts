// What still needs processing: the scheduler's list of jobs.
import type { Database, SqlValue } from '../db/index.ts';
import { parseStage, stage as describeStage, type StageName } from './stages.ts';
import { checkName, checkValue } from './values.ts';
import { Gpc1Error } from './errors.ts';

/** One piece of work: a component of a run that has not been done yet. */
export interface PendingComponent {
  readonly stage: StageName;
  readonly id: number;
  /**
   * The component to process (class_id, skycell_id, warp_id as text), or null for a
   * one-component stage, and also for a multi-component run whose component list is not known
   * yet (a warp run waiting for its skycell map).
   */
  readonly component: string | null;
  readonly state: 'new' | 'update';
  readonly label: string | null;
  readonly data_group: string | null;
}

/** Options of {@link pendingComponents}. */
export interface PendingOptions {
  readonly label?: string;
  /** At most this many (default: all). */
  readonly limit?: number;
}

/**
 * The components still to be processed in a stage, in run order: those of `new` runs not
 * recorded yet, and those of `update` runs marked for redoing. Faulted components are not
 * pending until their faults are reverted.
 */
export async function pendingComponents(db: Database, stageName: StageName, options: PendingOptions = {}): Promise<PendingComponent[]> {
  const d = describeStage(parseStage(stageName));
  const label = options.label === undefined ? null : checkName(options.label, 'pending: label');
  const limit = checkLimit(options.limit, 'pending');
  const byLabel = label === null ? '' : ' AND r.label = ?';
  const labelParams: SqlValue[] = label === null ? [] : [label];
  const cols = `r.${d.key} AS id, r.state, r.label, r.data_group`;
  const parts: string[] = [];
  const params: SqlValue[] = [];
  if (d.expected) {
    const e = d.expected;
    parts.push(`SELECT DISTINCT ${cols}, ${e.component} AS component FROM ${d.runTable} r, ${e.from}
      WHERE ${e.where} AND r.state = 'new'${byLabel}
        AND NOT EXISTS (SELECT 1 FROM ${d.componentTable} k WHERE k.${d.key} = r.${d.key} AND k.${d.componentColumn} = ${e.component})`);
    parts.push(`SELECT ${cols}, NULL AS component FROM ${d.runTable} r
      WHERE r.state = 'new'${byLabel} AND NOT EXISTS (SELECT 1 FROM ${e.from} WHERE ${e.where})`);
    params.push(...labelParams, ...labelParams);
  } else {
    parts.push(`SELECT ${cols}, NULL AS component FROM ${d.runTable} r
      WHERE r.state = 'new'${byLabel} AND NOT EXISTS (SELECT 1 FROM ${d.componentTable} k WHERE k.${d.key} = r.${d.key})`);
    params.push(...labelParams);
  }
  parts.push(`SELECT ${cols}, ${d.componentColumn ? `k.${d.componentColumn}` : 'NULL'} AS component FROM ${d.runTable} r
    JOIN ${d.componentTable} k ON k.${d.key} = r.${d.key}
    WHERE r.state = 'update'${byLabel} AND k.data_state = 'update' AND k.fault = 0`);
  params.push(...labelParams);
  const sql = `${parts.join('\nUNION ALL\n')}\nORDER BY id, component${limit === null ? '' : ` LIMIT ${limit}`}`;
  const rows = await db.all<{ id: number; state: 'new' | 'update'; label: string | null; data_group: string | null; component: unknown }>(sql, params);
  return rows.map((r) => ({
    stage: d.name, id: Number(r.id), component: r.component === null ? null : String(r.component),
    state: r.state, label: r.label, data_group: r.data_group,
  }));
}

/** A limit: absent, or a positive whole number. */
export function checkLimit(limit: unknown, what: string): number | null {
  if (limit === undefined || limit === null) return null;
  const v = checkValue('int', limit, `${what}: limit`);
  if (typeof v !== 'number' || v < 1) throw new Gpc1Error('gpc1_bad_input', `${what}: limit must be a positive whole number`);
  return v;
}
