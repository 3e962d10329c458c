// Recording a component: the row a processing job writes when it has finished one piece of a
// run (a chip, a skycell, the whole exposure), with fault (non-zero: the job failed and will
// be retried) and quality (non-zero: the input was bad; done, not retried).
import { DbError, insertRows, type Database, type Queryable, type SqlValue } from '../db/index.ts';
import { Gpc1Error } from './errors.ts';
import { parseStage, stage as describeStage, type StageDescriptor, type StageName } from './stages.ts';
import { chunks, marks, now } from './sql.ts';
import { checkCode, checkId, checkValue, describe } from './values.ts';

/** What a job reports for one component: fault, quality, where the products are and its numbers. */
export interface ComponentResult {
  /** Non-zero when the job failed for a passing reason; the component is retried after a revert. */
  readonly fault?: number;
  /** Non-zero when the input was bad; the component counts as done and is never retried. */
  readonly quality?: number;
  readonly path_base?: string | null;
  readonly uri?: string | null;
  readonly hostname?: string | null;
  /** The stage's own result columns (zpt_obs, n_stars, fwhm_major, ...). */
  readonly [metric: string]: string | number | null | undefined;
}

/** One component of a batch: the run, which component, and the result. */
export interface ComponentRecord extends ComponentResult {
  readonly id: number;
  /** class_id, skycell_id or warp_id; none for one-component stages (camera, stack, ...). */
  readonly component?: string | number | null;
}

/** Records one component of a run (finished or faulted). */
export async function recordComponent(
  db: Database, stageName: StageName, id: number, component: string | number | null, result: ComponentResult = {},
): Promise<void> {
  await recordComponents(db, stageName, [{ ...result, id, component }]);
}

/**
 * Records many components at once, in one transaction with set-based statements; returns how
 * many. Each must belong to a run that is `new` (or `update`, where it replaces the component
 * being redone) and must not be recorded already; nothing is recorded if any check fails.
 */
export async function recordComponents(db: Database, stageName: StageName, records: readonly ComponentRecord[]): Promise<number> {
  const d = describeStage(parseStage(stageName));
  if (!Array.isArray(records)) throw new Gpc1Error('gpc1_bad_input', `record ${d.name}: give a list of components`);
  if (records.length === 0) return 0;
  const rows = records.map((r, i) => checkRecord(d, r, i));
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r.ref)) throw new Gpc1Error('gpc1_duplicate_component', `${name(d, r)} is given twice in one batch; record each component once`);
    seen.add(r.ref);
  }
  try {
    return await db.transaction(async (tx) => {
      const runs = await loadRuns(tx, d, rows);
      // A component recorded twice is refused by the primary key; only runs being redone need a look first.
      const replace = [...runs.values()].some((r) => r.state === 'update') ? await checkExisting(tx, d, rows, runs) : [];
      for (const part of chunks(replace, 400)) {
        const match = d.componentColumn ? `(${d.key} = ? AND ${d.componentColumn} = ?)` : `${d.key} = ?`;
        await tx.run(`DELETE FROM ${d.componentTable} WHERE ${part.map(() => match).join(' OR ')}`,
          part.flatMap((r) => (d.componentColumn ? [r.id, r.component] : [r.id])));
      }
      const metricColumns = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))];
      const time = now();
      await insertRows(tx, d.componentTable,
        [d.key, ...(d.componentColumn ? [d.componentColumn] : []), ...d.copyFromRun, 'fault', 'quality', 'data_state', 'registered', ...metricColumns],
        rows.map((r) => {
          const run = runs.get(r.id)!;
          return [
            r.id, ...(d.componentColumn ? [r.component] : []), ...d.copyFromRun.map((c) => run.copy[c] ?? null),
            r.fault, r.quality, run.state === 'update' && r.fault !== 0 ? 'update' : 'full', time,
            ...metricColumns.map((c) => r.metrics[c] ?? null),
          ];
        }));
      return rows.length;
    });
  } catch (error) {
    if (error instanceof DbError && error.code === 'db_constraint') {
      // Say which component was there already, and how: the transaction is gone, so look again.
      await checkExisting(db, d, rows, new Map(rows.map((r) => [r.id, { state: 'new', copy: {} }])));
      throw new Gpc1Error('gpc1_duplicate_component',
        `record ${d.name}: a component of this batch was recorded by another job meanwhile; nothing of the batch was recorded`, { cause: error });
    }
    throw error;
  }
}

interface CheckedRecord {
  ref: string;
  id: number;
  component: string | number | null;
  fault: number;
  quality: number;
  metrics: Record<string, SqlValue>;
}

function name(d: StageDescriptor, r: { id: number; component: string | number | null }): string {
  return d.componentColumn ? `${d.name} run ${r.id} component ${r.component}` : `${d.name} run ${r.id}`;
}

function checkRecord(d: StageDescriptor, r: ComponentRecord, index: number): CheckedRecord {
  if (r === null || typeof r !== 'object') throw new Gpc1Error('gpc1_bad_input', `record ${d.name}: component ${index + 1} must be an object`);
  const id = checkId(r.id, `record ${d.name}: run id`);
  let component: string | number | null = null;
  if (d.componentColumn === null) {
    if (r.component !== undefined && r.component !== null && r.component !== '') {
      throw new Gpc1Error('gpc1_component_not_in_run', `${d.name} run ${id} has a single component; record it without a component name (got ${describe(r.component)})`);
    }
  } else if (d.componentKind === 'int') {
    const v = typeof r.component === 'string' && /^[0-9]+$/.test(r.component) ? Number(r.component) : r.component;
    component = checkId(v, `record ${d.name}: run ${id} component (${d.componentColumn})`);
  } else {
    if (typeof r.component !== 'string' || r.component === '') {
      throw new Gpc1Error('gpc1_bad_input', `record ${d.name}: run ${id} needs a component (${d.componentColumn}), got ${describe(r.component)}`);
    }
    component = r.component;
  }
  const what = d.componentColumn ? `${d.name} run ${id} component ${component}` : `${d.name} run ${id}`;
  const metrics: Record<string, SqlValue> = {};
  for (const [key, value] of Object.entries(r)) {
    if (key === 'id' || key === 'component' || key === 'fault' || key === 'quality') continue;
    const kind = d.metrics[key];
    if (kind === undefined) {
      throw new Gpc1Error('gpc1_unknown_column', `${what}: ${key} is not a column of ${d.componentTable}; its columns are ${Object.keys(d.metrics).join(', ')}`);
    }
    if (value !== undefined) metrics[key] = checkValue(kind, value, () => `${what}: ${key}`);
  }
  const fault = checkCode(r.fault, `${what}: fault`);
  const quality = checkCode(r.quality, `${what}: quality`);
  // A fault is retried after a revert; a quality code is bad input, never retried: not both.
  if (fault !== 0 && quality !== 0) {
    throw new Gpc1Error('gpc1_bad_input', `${what}: give a fault (the job failed; a revert retries it) or a quality code (the input is bad; done, never retried), not both`);
  }
  return { ref: `${id}\u0000${component}`, id, component, fault, quality, metrics };
}

interface RunInfo {
  state: string;
  copy: Record<string, SqlValue>;
}

/**
 * Reads the runs named (one query per chunk) and, for multi-component stages, in the same
 * query which of the named components each run needs; checks that every run exists and takes
 * components, and that every component is one its run needs.
 */
async function loadRuns(tx: Queryable, d: StageDescriptor, rows: readonly CheckedRecord[]): Promise<Map<number, RunInfo>> {
  const ids = [...new Set(rows.map((r) => r.id))];
  const components = d.expected ? [...new Set(rows.map((r) => r.component as SqlValue))] : [];
  const runs = new Map<number, RunInfo>();
  const valid = new Set<string>();
  const copy = d.copyFromRun.map((c) => `, q.${c}`).join('');
  for (const part of chunks(ids, 500)) {
    if (!d.expected) {
      const found = await tx.all<Record<string, SqlValue>>(`SELECT q.${d.key} AS id, q.state${copy} FROM ${d.runTable} q WHERE q.${d.key} IN (${marks(part.length)})`, part);
      for (const f of found) runs.set(Number(f.id), { state: String(f.state), copy: f });
      continue;
    }
    const e = d.expected;
    for (const compPart of chunks(components, 500)) {
      const found = await tx.all<Record<string, SqlValue>>(
        `SELECT q.${d.key} AS id, q.state${copy}, x.component FROM ${d.runTable} q
         LEFT JOIN (SELECT DISTINCT r.${d.key} AS id, ${e.component} AS component FROM ${d.runTable} r, ${e.from}
           WHERE ${e.where} AND r.${d.key} IN (${marks(part.length)}) AND ${e.component} IN (${marks(compPart.length)})) x ON x.id = q.${d.key}
         WHERE q.${d.key} IN (${marks(part.length)})`,
        [...part, ...compPart, ...part]);
      for (const f of found) {
        runs.set(Number(f.id), { state: String(f.state), copy: f });
        if (f.component !== null) valid.add(`${Number(f.id)}\u0000${d.componentKind === 'int' ? Number(f.component) : f.component}`);
      }
    }
  }
  const missing = ids.filter((id) => !runs.has(id));
  if (missing.length > 0) {
    throw new Gpc1Error('gpc1_unknown_run', `${d.name} run ${missing.slice(0, 10).join(', ')} does not exist; list runs with ipp gpc1 runs --stage ${d.name}`);
  }
  for (const id of ids) {
    const state = runs.get(id)!.state;
    if (state !== 'new' && state !== 'update') {
      throw new Gpc1Error('gpc1_run_not_processing',
        `${d.name} run ${id} is ${state}; components are recorded only while a run is new (or update, when it is being redone)`);
    }
  }
  const stray = d.expected ? rows.find((r) => !valid.has(r.ref)) : undefined;
  if (stray) throw await notInRun(tx, d, stray);
  return runs;
}

/** The error for a component its run does not need, listing the ones it does. */
async function notInRun(tx: Queryable, d: StageDescriptor, stray: CheckedRecord): Promise<Gpc1Error> {
  const e = d.expected!;
  const all = await tx.all<{ component: string }>(
    `SELECT DISTINCT ${e.component} AS component FROM ${d.runTable} r, ${e.from} WHERE ${e.where} AND r.${d.key} = ? ORDER BY component`, [stray.id]);
  const list = all.map((a) => String(a.component));
  return new Gpc1Error('gpc1_component_not_in_run', list.length === 0
    ? `${d.name} run ${stray.id} has no components to record yet${d.name === 'warp' ? ' (map its skycells first)' : ''}; ${stray.component} is not part of it`
    : `${stray.component} is not a component of ${d.name} run ${stray.id}; its ${d.componentColumn} values are ${list.slice(0, 12).join(', ')}${list.length > 12 ? ` and ${list.length - 12} more` : ''}`);
}

/** A component may be recorded once; in a run being updated it replaces the row marked for redoing. Returns the rows to replace. */
async function checkExisting(tx: Queryable, d: StageDescriptor, rows: readonly CheckedRecord[], runs: Map<number, RunInfo>): Promise<CheckedRecord[]> {
  const ids = [...new Set(rows.map((r) => r.id))];
  const existing = new Map<string, { fault: number; data_state: string }>();
  for (const part of chunks(ids)) {
    const found = await tx.all<{ id: number; component: string | number | null; fault: number; data_state: string }>(
      `SELECT ${d.key} AS id, ${d.componentColumn ?? 'NULL'} AS component, fault, data_state FROM ${d.componentTable} WHERE ${d.key} IN (${marks(part.length)})`, part);
    for (const f of found) existing.set(`${Number(f.id)}\u0000${f.component === null ? null : d.componentKind === 'int' ? Number(f.component) : f.component}`, f);
  }
  const replace: CheckedRecord[] = [];
  for (const r of rows) {
    const old = existing.get(r.ref);
    if (!old) continue;
    if (runs.get(r.id)!.state === 'update' && old.data_state === 'update') {
      replace.push(r);
      continue;
    }
    throw new Gpc1Error('gpc1_duplicate_component', old.fault !== 0
      ? `${name(d, r)} is already recorded with fault ${old.fault}; revert the faults (ipp gpc1 revert ${d.name}) before recording it again`
      : `${name(d, r)} is already recorded as done; a component is recorded once`);
  }
  return replace;
}
