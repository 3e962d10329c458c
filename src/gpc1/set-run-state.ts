// Changing a run's state by hand (drop, wait, cleanup...) with the run's life checked: a
// state change the run cannot make is refused, naming the run, its state and what it may
// become. `full` is reached only through advance.
import type { Database, Queryable, SqlValue } from '../db/index.ts';
import { Gpc1Error } from './errors.ts';
import { parseStage, stage as describeStage, type StageDescriptor, type StageName } from './stages.ts';
import { TRANSITIONS, parseRunState, sourcesOf, type RunState } from './states.ts';
import { chunks, marks } from './sql.ts';
import { checkIds, checkName } from './values.ts';

/** Runs chosen by what they are rather than by id; at least one field is required. */
export interface RunFilter {
  readonly label?: string;
  readonly state?: RunState;
  readonly data_group?: string;
}

/** What {@link setRunState} changed: the runs moved, and (for a filter) how many matched but could not move. */
export interface StateChange {
  readonly changed: readonly number[];
  readonly skipped: number;
}

/** Component states that follow the run's: a run to redo marks its good components, a cleaned run its products. */
const COMPONENT_STATE: Partial<Record<RunState, string>> = {
  update: 'update', cleaned: 'cleaned', scrubbed: 'scrubbed', purged: 'purged',
};

/**
 * Sets runs to a state. With ids, every run must exist and be allowed the change, or nothing
 * changes; with a filter, the matching runs that may change do, and the others are counted as
 * skipped.
 */
export async function setRunState(db: Database, stageName: StageName, runs: readonly number[] | RunFilter, state: RunState): Promise<StateChange> {
  const d = describeStage(parseStage(stageName));
  const to = parseRunState(state);
  const from = sourcesOf(to);
  if (from.length === 0) {
    throw new Gpc1Error('gpc1_bad_transition', `${d.name} runs cannot be set to ${to} by hand${to === 'full' ? '; advance sets runs to full when all their components are done' : ''}`);
  }
  return db.transaction(async (tx) => {
    if (Array.isArray(runs)) return changeIds(tx, d, checkIds(runs, `state ${d.name}: run ids`), to, from);
    return changeFiltered(tx, d, runs as RunFilter, to, from);
  });
}

async function changeIds(tx: Queryable, d: StageDescriptor, ids: number[], to: RunState, from: RunState[]): Promise<StateChange> {
  const states = new Map<number, RunState>();
  for (const part of chunks(ids)) {
    const rows = await tx.all<{ id: number; state: RunState }>(`SELECT ${d.key} AS id, state FROM ${d.runTable} WHERE ${d.key} IN (${marks(part.length)})`, part);
    for (const r of rows) states.set(Number(r.id), r.state);
  }
  const missing = ids.filter((id) => !states.has(id));
  if (missing.length > 0) {
    throw new Gpc1Error('gpc1_unknown_run', `${d.name} run ${missing.slice(0, 10).join(', ')} does not exist; list runs with ipp gpc1 runs --stage ${d.name}`);
  }
  for (const id of ids) {
    const current = states.get(id)!;
    if (!from.includes(current)) throw badTransition(d, id, current, to);
  }
  const changed = await update(tx, d, { ids }, to, from);
  if (changed.length !== ids.length) {
    // Another process changed a run between the check and the update: refuse the whole change.
    const lost = ids.find((id) => !changed.includes(id))!;
    const now = await tx.get<{ state: RunState }>(`SELECT state FROM ${d.runTable} WHERE ${d.key} = ?`, [lost]);
    throw badTransition(d, lost, now?.state ?? states.get(lost)!, to);
  }
  return { changed, skipped: 0 };
}

async function changeFiltered(tx: Queryable, d: StageDescriptor, filter: RunFilter, to: RunState, from: RunState[]): Promise<StateChange> {
  if (filter === null || typeof filter !== 'object') throw new Gpc1Error('gpc1_bad_input', `state ${d.name}: give run ids or a filter`);
  const conditions: string[] = [];
  const params: SqlValue[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined) continue;
    if (key === 'state') {
      conditions.push('state = ?');
      params.push(parseRunState(String(value)));
    } else if (key === 'label' || key === 'data_group') {
      conditions.push(`${key} = ?`);
      params.push(checkName(value, `state ${d.name}: ${key}`));
    } else {
      throw new Gpc1Error('gpc1_unknown_column', `state ${d.name}: ${key} is not a run filter; filter by label, data_group or state`);
    }
  }
  if (conditions.length === 0) throw new Gpc1Error('gpc1_bad_input', `state ${d.name}: give run ids or at least one of label, data_group, state, so that not every run changes by accident`);
  const matching = await tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${d.runTable} WHERE ${conditions.join(' AND ')}`, params);
  const changed = await update(tx, d, { where: conditions.join(' AND '), params }, to, from);
  return { changed, skipped: Number(matching!.n) - changed.length };
}

/** Moves the runs that match and may make the change; marks their components to follow. Returns their ids. */
async function update(
  tx: Queryable, d: StageDescriptor, target: { ids: readonly number[] } | { where: string; params: readonly SqlValue[] }, to: RunState, from: RunState[],
): Promise<number[]> {
  const changed: number[] = [];
  const run = async (cond: string, p: readonly SqlValue[]) => {
    const rows = await tx.all<{ id: number }>(
      `UPDATE ${d.runTable} SET state = ? WHERE ${cond} AND state IN (${marks(from.length)}) RETURNING ${d.key} AS id`, [to, ...p, ...from]);
    changed.push(...rows.map((r) => Number(r.id)));
  };
  if ('ids' in target) {
    for (const part of chunks(target.ids)) await run(`${d.key} IN (${marks(part.length)})`, part);
  } else {
    await run(target.where, target.params);
  }
  const follow = COMPONENT_STATE[to];
  if (follow) {
    for (const part of chunks(changed)) {
      await tx.run(`UPDATE ${d.componentTable} SET data_state = ? WHERE ${d.key} IN (${marks(part.length)})${to === 'update' ? ' AND quality = 0' : ''}`, [follow, ...part]);
    }
  }
  return changed.sort((a, b) => a - b);
}

function badTransition(d: StageDescriptor, id: number, from: RunState, to: RunState): Gpc1Error {
  const allowed = TRANSITIONS[from];
  return new Gpc1Error('gpc1_bad_transition',
    `${d.name} run ${id} is ${from} and cannot become ${to}; from ${from} it may become ${allowed.length ? allowed.join(', ') : 'nothing (it is final)'}`
    + (to === 'full' ? '; advance sets runs to full when all their components are done' : ''));
}
