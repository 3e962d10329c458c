// The SQL that decides when a run is done, written once from a stage's descriptor. A run is
// done when every component it needs is recorded with fault 0 and is not waiting to be redone;
// quality-bad components count as done whatever their data state (an update does not redo
// them, so one cleaned before stays cleaned). Conditions are correlated with the run's alias `r`.
import type { StageDescriptor } from './stages.ts';

/** True when every component the run needs is recorded without fault. */
export function doneCondition(d: StageDescriptor): string {
  const finished = (component: string | null) => `SELECT 1 FROM ${d.componentTable} k WHERE k.${d.key} = r.${d.key}`
    + `${component === null ? '' : ` AND k.${d.componentColumn} = ${component}`} AND k.fault = 0 AND (k.data_state = 'full' OR k.quality <> 0)`;
  if (!d.expected) return `EXISTS (${finished(null)})`;
  const e = d.expected;
  return `EXISTS (SELECT 1 FROM ${e.from} WHERE ${e.where})`
    + ` AND NOT EXISTS (SELECT 1 FROM ${e.from} WHERE ${e.where} AND NOT EXISTS (${finished(e.component)}))`;
}

/** True when at least one component is usable (quality 0): only then is there anything to pass on. */
export function usableCondition(d: StageDescriptor): string {
  return `EXISTS (SELECT 1 FROM ${d.componentTable} k WHERE k.${d.key} = r.${d.key} AND k.quality = 0)`;
}
