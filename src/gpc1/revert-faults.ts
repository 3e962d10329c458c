// Reverting faults: faulted components (ephemeral failures) are cleared so that they are
// processed again; quality-bad components are left alone, they would only fail again.
import type { Database, SqlValue } from '../db/index.ts';
import { Gpc1Error } from './errors.ts';
import { parseStage, stage as describeStage, type StageName } from './stages.ts';
import { checkCode, checkName } from './values.ts';

/** Which faults {@link revertFaults} clears. */
export interface RevertOptions {
  readonly stage: StageName;
  /** Only runs of this label. */
  readonly label?: string;
  /** Only this fault code (non-zero). */
  readonly fault?: number;
}

/**
 * Clears the faulted components of a stage's processing runs and returns how many: in `new`
 * runs the faulted rows are removed (the job runs again from scratch), in `update` runs their
 * fault is reset so the component is redone.
 */
export async function revertFaults(db: Database, options: RevertOptions): Promise<number> {
  if (options === null || typeof options !== 'object') throw new Gpc1Error('gpc1_bad_input', 'revert: give at least the stage');
  const d = describeStage(parseStage(options.stage));
  const label = options.label === undefined ? null : checkName(options.label, 'revert: label');
  let fault: number | null = null;
  if (options.fault !== undefined) {
    fault = checkCode(options.fault, 'revert: fault');
    if (fault === 0) throw new Gpc1Error('gpc1_bad_input', 'revert: fault 0 means no fault; give the non-zero fault code to revert, or none for all');
  }
  const faultCond = fault === null ? 'fault <> 0' : 'fault = ?';
  const runs = (state: string) => `${d.key} IN (SELECT ${d.key} FROM ${d.runTable} WHERE state = '${state}'${label === null ? '' : ' AND label = ?'})`;
  const params: SqlValue[] = [...(fault === null ? [] : [fault]), ...(label === null ? [] : [label])];
  return db.transaction(async (tx) => {
    const removed = await tx.run(`DELETE FROM ${d.componentTable} WHERE ${faultCond} AND ${runs('new')}`, params);
    const reset = await tx.run(`UPDATE ${d.componentTable} SET fault = 0 WHERE ${faultCond} AND ${runs('update')}`, params);
    return removed.changes + reset.changes;
  });
}
