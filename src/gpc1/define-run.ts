// Defining runs: the rows a stage's primary table gets when the system decides that something
// should be processed at that stage. Runs start in state `new` and wait for their components.
// Where it is natural, one call defines many runs with one statement (a chip run for every
// exposure that matches, a camera run for every chip run given).
import { DbError, insertRows, type Queryable, type Database, type SqlValue } from '../db/index.ts';
import { Gpc1Error } from './errors.ts';
import { CHAIN, STAGE_NAMES, endStagesOf, parseStage, stage as describeStage, type StageName } from './stages.ts';
import { WARP_TO_CHIP_RUN, chunks, marks, moveSequencePast, now } from './sql.ts';
import { checkCode, checkId, checkIds, checkName, checkTime, checkValue } from './values.ts';

/** What every definition gives the new runs. */
export interface RunOptions {
  /** The processing label (required): how the scheduler picks work. */
  readonly label: string;
  /** Default: the label. */
  readonly data_group?: string | null;
  readonly dist_group?: string | null;
  /** The last stage of the chip → camera → fake → warp chain to queue; null goes as far as the chain goes. */
  readonly end_stage?: StageName | null;
  readonly reduction?: string | null;
  readonly workdir?: string | null;
  readonly note?: string | null;
}

/** Which registered exposures to define chip runs for; every field given must match. */
export interface ExposureQuery {
  readonly exp_name?: string;
  readonly camera?: string;
  readonly telescope?: string;
  readonly filter?: string;
  readonly exp_type?: string;
  readonly obs_mode?: string;
  /** ISO-8601 times, inclusive. */
  readonly dateobs_begin?: string;
  readonly dateobs_end?: string;
}

/** One skycell of a warp run's skycell map: which chip overlaps it ('all' when not known per chip). */
export interface SkyCellMapEntry {
  readonly skycell_id: string;
  readonly class_id?: string;
}

/** One skycell of a difference run: the two images subtracted (a warp or a stack each). */
export interface DiffInput {
  readonly skycell_id: string;
  readonly warp1?: number;
  readonly stack1?: number;
  readonly warp2?: number;
  readonly stack2?: number;
}

/** The inputs of each stage's definition. */
export interface DefineInputs {
  /** Chip runs for the exposures listed and/or matching the query; `unique` skips exposures that already have a chip run of this label. Other fields default to the exposure's. */
  chip: { readonly exp_ids?: readonly number[]; readonly exposures?: ExposureQuery; readonly unique?: boolean; readonly tess_id?: string | null; readonly dvodb?: string | null };
  /** Camera runs for full chip runs; other fields default to the chip run's. */
  camera: { readonly chip_ids: readonly number[]; readonly tess_id?: string | null; readonly dvodb?: string | null };
  /** Fake runs for full camera runs. */
  fake: { readonly cam_ids: readonly number[]; readonly tess_id?: string | null; readonly dvodb?: string | null };
  /** Warp runs for full fake runs; `skycells` (with one fake run) gives the skycell map at once. */
  warp: { readonly fake_ids: readonly number[]; readonly tess_id?: string | null; readonly dvodb?: string | null; readonly skycells?: readonly SkyCellMapEntry[] };
  /** One stack of the given full warps, which must each have a good skyfile for the skycell. */
  stack: {
    readonly skycell_id: string; readonly tess_id: string; readonly filter: string; readonly warp_ids: readonly number[]; readonly dvodb?: string | null;
    /** The run's stack_id, where the stack's files already carry one (default: the database assigns it). */
    readonly stack_id?: number;
  };
  /** One static-sky run over full stacks (usually one skycell, all filters). */
  staticsky: { readonly stack_ids: readonly number[] };
  /** One skycal run per stack of a full static-sky run (default: each of its stacks). */
  skycal: { readonly sky_id: number; readonly stack_ids?: readonly number[] };
  /** One full-force run per full skycal run, over the warps that went into its stack (or `warp_ids`, with one skycal run). */
  fullforce: { readonly skycal_ids: readonly number[]; readonly warp_ids?: readonly number[]; readonly sources_path_base?: string | null };
  /** One difference run over the skycells given. */
  diff: { readonly tess_id: string; readonly skycells: readonly DiffInput[]; readonly diff_mode?: number; readonly bothways?: boolean; readonly dvodb?: string | null };
  /** One addstar run per full source run. */
  addstar: { readonly source_stage: StageName; readonly source_ids: readonly number[]; readonly dvodb?: string | null };
  /** One publish run per full source run. */
  publish: { readonly client: string; readonly source_stage: StageName; readonly source_ids: readonly number[] };
}

/** A definition of runs of stage `S`. */
export type DefineSpec<S extends StageName> = RunOptions & DefineInputs[S];

/** The fields a definition of each stage takes, for checking a spec read from a file. */
export const DEFINE_FIELDS: Readonly<Record<StageName, readonly string[]>> = Object.freeze({
  chip: ['exp_ids', 'exposures', 'unique', 'tess_id', 'dvodb'],
  camera: ['chip_ids', 'tess_id', 'dvodb'],
  fake: ['cam_ids', 'tess_id', 'dvodb'],
  warp: ['fake_ids', 'tess_id', 'dvodb', 'skycells'],
  stack: ['skycell_id', 'tess_id', 'filter', 'warp_ids', 'dvodb', 'stack_id'],
  staticsky: ['stack_ids'],
  skycal: ['sky_id', 'stack_ids'],
  fullforce: ['skycal_ids', 'warp_ids', 'sources_path_base'],
  diff: ['tess_id', 'skycells', 'diff_mode', 'bothways', 'dvodb'],
  addstar: ['source_stage', 'source_ids', 'dvodb'],
  publish: ['client', 'source_stage', 'source_ids'],
});
const COMMON_FIELDS = ['label', 'data_group', 'dist_group', 'end_stage', 'reduction', 'workdir', 'note'];
const ADD_SOURCES: readonly StageName[] = ['camera', 'staticsky', 'skycal', 'fullforce', 'diff'];

/**
 * Defines runs of a stage (state `new`) and returns their ids, ascending. Inputs must exist and
 * be `full`; nothing is defined if any check fails.
 */
export async function defineRun<S extends StageName>(db: Database, stageName: S, spec: DefineSpec<S>): Promise<number[]> {
  const name = parseStage(stageName);
  if (spec === null || typeof spec !== 'object') throw new Gpc1Error('gpc1_bad_input', `define ${name}: give the run's inputs and label`);
  const known = new Set([...COMMON_FIELDS, ...DEFINE_FIELDS[name]]);
  const unknown = Object.keys(spec).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new Gpc1Error('gpc1_unknown_column', `define ${name}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; a ${name} definition takes ${[...known].join(', ')}`);
  }
  const common = commonValues(name, spec);
  const s = spec as unknown as Record<string, unknown>;
  try {
    const ids = await db.transaction((tx) => DEFINERS[name](tx, common, s));
    return ids.map(Number).sort((a, b) => a - b);
  } catch (error) {
    if (error instanceof DbError && error.code === 'db_constraint') {
      throw new Gpc1Error('gpc1_bad_input', `define ${name}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

interface Common {
  stage: StageName;
  label: string;
  data_group: string;
  dist_group: string | null;
  end_stage: string | null;
  reduction: string | null;
  workdir: string | null;
  note: string | null;
  registered: string;
}

function commonValues(name: StageName, spec: RunOptions): Common {
  const label = checkName(spec.label, `define ${name}: label`);
  const text = (k: keyof RunOptions) => checkValue('text', spec[k], `define ${name}: ${k}`) as string | null;
  const end_stage = text('end_stage');
  if (end_stage !== null) {
    const allowed: readonly string[] = CHAIN.includes(name) ? endStagesOf(name) : STAGE_NAMES;
    if (!allowed.includes(end_stage)) {
      throw new Gpc1Error('gpc1_bad_input', `define ${name}: end_stage "${end_stage}" must be one of ${allowed.join(', ')} (or none, to go as far as the chain goes)`);
    }
  }
  return {
    stage: name, label, data_group: text('data_group') ?? label, dist_group: text('dist_group'), end_stage,
    reduction: text('reduction'), workdir: text('workdir'), note: text('note'), registered: now(),
  };
}

type Definer = (tx: Queryable, c: Common, spec: Record<string, unknown>) => Promise<number[]>;

const DEFINERS: Readonly<Record<StageName, Definer>> = {
  chip: defineChip,
  camera: (tx, c, s) => defineFromParent(tx, c, s, 'chip_ids'),
  fake: (tx, c, s) => defineFromParent(tx, c, s, 'cam_ids'),
  warp: defineWarp,
  stack: defineStack,
  staticsky: defineStaticsky,
  skycal: defineSkycal,
  fullforce: defineFullforce,
  diff: defineDiff,
  addstar: (tx, c, s) => defineFromSource(tx, c, s),
  publish: (tx, c, s) => defineFromSource(tx, c, s),
};

/** Run columns filled from the common options, in the order of {@link commonParams}. */
const COMMON_COLUMNS = ['label', 'data_group', 'dist_group', 'end_stage', 'reduction', 'workdir', 'note', 'registered'];

function commonParams(c: Common): SqlValue[] {
  return [c.label, c.data_group, c.dist_group, c.end_stage, c.reduction, c.workdir, c.note, c.registered];
}

/** Columns a chain run takes from its parent (or a chip run from its exposure) unless given. */
const INHERITED = ['workdir', 'reduction', 'dvodb', 'tess_id', 'end_stage', 'data_group', 'dist_group'] as const;

async function defineChip(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const conditions: string[] = [];
  const params: SqlValue[] = [];
  if (s.exp_ids === undefined && s.exposures === undefined) {
    throw new Gpc1Error('gpc1_bad_input', 'define chip: give exp_ids or an exposures query (e.g. { filter: "r" }) to choose the exposures');
  }
  if (s.exp_ids !== undefined) {
    const ids = checkIds(s.exp_ids, 'define chip: exp_ids');
    await requireRows(tx, 'rawExp', 'exp_id', ids, null, 'exposure');
    conditions.push(`p.exp_id IN (${marks(ids.length)})`);
    params.push(...ids);
  }
  if (s.exposures !== undefined) {
    const q = s.exposures as Record<string, unknown>;
    if (q === null || typeof q !== 'object' || Array.isArray(q)) throw new Gpc1Error('gpc1_bad_input', 'define chip: exposures must be an object of fields to match');
    const fields = ['exp_name', 'camera', 'telescope', 'filter', 'exp_type', 'obs_mode'];
    for (const [key, value] of Object.entries(q)) {
      if (fields.includes(key)) {
        conditions.push(`p.${key} = ?`);
        params.push(checkName(value, `define chip: exposures.${key}`));
      } else if (key === 'dateobs_begin' || key === 'dateobs_end') {
        conditions.push(`p.dateobs ${key === 'dateobs_begin' ? '>=' : '<='} ?`);
        params.push(checkTime(value, `define chip: exposures.${key}`));
      } else {
        throw new Gpc1Error('gpc1_unknown_column', `define chip: exposures.${key} is not a field to match; use ${[...fields, 'dateobs_begin', 'dateobs_end'].join(', ')}`);
      }
    }
  }
  if (s.unique !== undefined && typeof s.unique !== 'boolean') throw new Gpc1Error('gpc1_bad_input', 'define chip: unique must be true or false');
  if (s.unique) {
    conditions.push('NOT EXISTS (SELECT 1 FROM chipRun o WHERE o.exp_id = p.exp_id AND o.label = ?)');
    params.push(c.label);
  }
  return insertChainRuns(tx, c, s, { table: 'rawExp', key: 'exp_id', column: 'exp_id', where: conditions.join(' AND '), params, inheritLabelGroups: false });
}

async function defineFromParent(tx: Queryable, c: Common, s: Record<string, unknown>, field: 'chip_ids' | 'cam_ids'): Promise<number[]> {
  const parent = describeStage(c.stage === 'camera' ? 'chip' : 'camera');
  const ids = checkIds(s[field], `define ${c.stage}: ${field}`);
  await requireRows(tx, parent.runTable, parent.key, ids, parent.name, `${parent.name} run`);
  return insertChainRuns(tx, c, s, {
    table: parent.runTable, key: parent.key, column: parent.key, where: `p.${parent.key} IN (${marks(ids.length)})`, params: ids, inheritLabelGroups: true,
  });
}

async function defineWarp(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const ids = checkIds(s.fake_ids, 'define warp: fake_ids');
  await requireRows(tx, 'fakeRun', 'fake_id', ids, 'fake', 'fake run');
  const skycells = s.skycells === undefined ? [] : checkSkycells(s.skycells);
  if (skycells.length > 0 && ids.length !== 1) throw new Gpc1Error('gpc1_bad_input', 'define warp: skycells can be given with one fake run only; map the others with mapSkyCells');
  const made = await insertChainRuns(tx, c, s, {
    table: 'fakeRun', key: 'fake_id', column: 'fake_id', where: `p.fake_id IN (${marks(ids.length)})`, params: ids, inheritLabelGroups: true,
  });
  if (skycells.length > 0) await insertSkyCellMap(tx, made[0]!, skycells);
  return made;
}

interface ParentSource {
  table: string;
  key: string;
  /** The new run's column naming the parent. */
  column: string;
  where: string;
  params: SqlValue[];
  /** Whether label groups (data_group, dist_group) come from the parent when not given. */
  inheritLabelGroups: boolean;
}

/** Inserts one chain run per parent row with one statement; fields not given are taken from the parent. */
async function insertChainRuns(tx: Queryable, c: Common, s: Record<string, unknown>, parent: ParentSource): Promise<number[]> {
  const d = describeStage(c.stage);
  const given: Record<(typeof INHERITED)[number], SqlValue> = {
    workdir: c.workdir, reduction: c.reduction, end_stage: c.end_stage,
    tess_id: checkValue('text', s.tess_id, `define ${c.stage}: tess_id`),
    dvodb: checkValue('text', s.dvodb, `define ${c.stage}: dvodb`),
    data_group: parent.inheritLabelGroups && s.data_group === undefined ? null : c.data_group,
    dist_group: c.dist_group,
  };
  const inherited = INHERITED.filter((k) => k !== 'data_group' && k !== 'dist_group' || parent.inheritLabelGroups);
  const pick = (k: (typeof INHERITED)[number]) => (inherited.includes(k) ? `COALESCE(CAST(? AS TEXT), p.${k})` : 'CAST(? AS TEXT)');
  // A chain that reaches warp needs a tessellation: refuse rather than queue runs that cannot finish.
  const later = `'${endStagesOf('warp').join("', '")}'`;
  const missing = await tx.all<{ id: number }>(
    `SELECT p.${parent.key} AS id FROM ${parent.table} p WHERE ${parent.where}
       AND ${pick('tess_id')} IS NULL AND (${pick('end_stage')} IS NULL OR ${pick('end_stage')} IN (${later}))`,
    [...parent.params, given.tess_id, given.end_stage, given.end_stage]);
  if (missing.length > 0) {
    const what = parent.table === 'rawExp' ? 'exposure' : `${parent.table.replace(/Run$/, '')} run`;
    throw new Gpc1Error('gpc1_bad_input',
      `define ${c.stage}: ${what} ${missing.slice(0, 5).map((r) => r.id).join(', ')}${missing.length > 5 ? '...' : ''} would go on to warp but has no tess_id; give tess_id, or end_stage before warp`);
  }
  const columns = [parent.column, 'state', 'label', 'note', 'registered', ...INHERITED];
  const select = [`p.${parent.key}`, "'new'", 'CAST(? AS TEXT)', 'CAST(? AS TEXT)', 'CAST(? AS TEXT)', ...INHERITED.map(pick)];
  const params: SqlValue[] = [c.label, c.note, c.registered, ...INHERITED.map((k) => given[k]), ...parent.params];
  const rows = await tx.all<Record<string, number>>(
    `INSERT INTO ${d.runTable} (${columns.join(', ')}) SELECT ${select.join(', ')} FROM ${parent.table} p WHERE ${parent.where}
       ORDER BY p.${parent.key} RETURNING ${d.key}`, params);
  // Data groups default to the label only when neither given nor inherited.
  const ids = rows.map((r) => Number(r[d.key]));
  for (const part of chunks(ids)) {
    await tx.run(`UPDATE ${d.runTable} SET data_group = label WHERE data_group IS NULL AND ${d.key} IN (${marks(part.length)})`, part);
  }
  return ids;
}

function checkSkycells(value: unknown): { skycell_id: string; class_id: string }[] {
  if (!Array.isArray(value) || value.length === 0) throw new Gpc1Error('gpc1_bad_input', 'skycells must be a non-empty list of { skycell_id, class_id }');
  const seen = new Set<string>();
  return value.map((e: unknown, i) => {
    const entry = (e ?? {}) as Record<string, unknown>;
    const skycell_id = checkName(entry.skycell_id, `skycells[${i}].skycell_id`);
    const class_id = entry.class_id === undefined ? 'all' : checkName(entry.class_id, `skycells[${i}].class_id`);
    const unknown = Object.keys(entry).filter((k) => k !== 'skycell_id' && k !== 'class_id');
    if (unknown.length) throw new Gpc1Error('gpc1_unknown_column', `skycells[${i}]: unknown field ${unknown.join(', ')}; an entry has skycell_id and class_id`);
    const id = `${skycell_id}/${class_id}`;
    if (seen.has(id)) throw new Gpc1Error('gpc1_bad_input', `skycells: ${skycell_id} with chip ${class_id} is listed twice`);
    seen.add(id);
    return { skycell_id, class_id };
  });
}

async function insertSkyCellMap(tx: Queryable, warpId: number, entries: readonly { skycell_id: string; class_id: string }[]): Promise<void> {
  const run = await tx.get<{ tess_id: string }>('SELECT tess_id FROM warpRun WHERE warp_id = ?', [warpId]);
  // A chip named in the map must be one of the warp's exposure (when the chain back to it is whole).
  const chips = (await tx.all<{ class_id: string }>(
    `SELECT i.class_id FROM ${WARP_TO_CHIP_RUN} JOIN rawImfile i ON i.exp_id = ch.exp_id WHERE w.warp_id = ?`, [warpId])).map((r) => r.class_id);
  const strangers = entries.filter((e) => e.class_id !== 'all' && chips.length > 0 && !chips.includes(e.class_id));
  if (strangers.length > 0) {
    throw new Gpc1Error('gpc1_bad_input', `warp run ${warpId}: chip ${[...new Set(strangers.map((e) => e.class_id))].join(', ')} is not a chip of its exposure (${chips.join(', ')})`);
  }
  await insertRows(tx, 'warpSkyCellMap', ['warp_id', 'skycell_id', 'tess_id', 'class_id'],
    entries.map((e) => [warpId, e.skycell_id, run!.tess_id, e.class_id]));
}

/**
 * Adds skycells to the map of a warp run that is still `new` (the overlap step of a warp run
 * queued by advance); the run needs one skyfile per mapped skycell. Returns how many map rows
 * were added.
 */
export async function mapSkyCells(db: Database, warpId: number, entries: readonly SkyCellMapEntry[]): Promise<number> {
  const id = checkId(warpId, 'mapSkyCells: warp_id');
  const checked = checkSkycells(entries);
  try {
    return await db.transaction(async (tx) => {
      const run = await tx.get<{ state: string }>('SELECT state FROM warpRun WHERE warp_id = ?', [id]);
      if (!run) throw new Gpc1Error('gpc1_unknown_run', `warp run ${id} does not exist; list runs with ipp gpc1 runs --stage warp`);
      if (run.state !== 'new') throw new Gpc1Error('gpc1_run_not_processing', `warp run ${id} is ${run.state}; skycells are mapped only while a run is new`);
      await insertSkyCellMap(tx, id, checked);
      return checked.length;
    });
  } catch (error) {
    if (error instanceof DbError && error.code === 'db_constraint') {
      throw new Gpc1Error('gpc1_bad_input', `warp run ${id}: a skycell/chip pair is already in its map`, { cause: error });
    }
    throw error;
  }
}

/** Inserts one run row with the common columns plus its own; returns its id. */
async function insertOne(tx: Queryable, c: Common, own: Record<string, SqlValue>): Promise<number> {
  const d = describeStage(c.stage);
  const columns = [...Object.keys(own), 'state', ...COMMON_COLUMNS];
  const rows = await insertRows<Record<string, number>>(tx, d.runTable, columns, [[...Object.values(own), 'new', ...commonParams(c)]], { returning: [d.key] });
  return Number(rows[0]![d.key]);
}

async function defineStack(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const skycell_id = checkName(s.skycell_id, 'define stack: skycell_id');
  const tess_id = checkName(s.tess_id, 'define stack: tess_id');
  const filter = checkName(s.filter, 'define stack: filter');
  const warps = checkIds(s.warp_ids, 'define stack: warp_ids');
  await requireRows(tx, 'warpRun', 'warp_id', warps, 'warp', 'warp run');
  const good = await tx.all<{ warp_id: number }>(
    `SELECT warp_id FROM warpSkyfile WHERE skycell_id = ? AND tess_id = ? AND fault = 0 AND quality = 0 AND warp_id IN (${marks(warps.length)})`,
    [skycell_id, tess_id, ...warps]);
  const have = new Set(good.map((r) => Number(r.warp_id)));
  const lacking = warps.filter((w) => !have.has(w));
  if (lacking.length > 0) {
    throw new Gpc1Error('gpc1_input_not_ready', `define stack: warp run ${lacking.join(', ')} has no good skyfile for ${tess_id} ${skycell_id}; stack only warps that cover the skycell`);
  }
  // A stack is of one filter: every warp's exposure must have been taken in it.
  const filters = await tx.all<{ warp_id: number; filter: string | null }>(
    `SELECT w.warp_id, e.filter FROM ${WARP_TO_CHIP_RUN} JOIN rawExp e ON e.exp_id = ch.exp_id WHERE w.warp_id IN (${marks(warps.length)})`, warps);
  const other = filters.filter((r) => r.filter !== filter);
  if (other.length > 0) {
    throw new Gpc1Error('gpc1_bad_input', `define stack: warp run ${other.map((r) => `${r.warp_id} (${r.filter ?? 'no filter'})`).join(', ')} is not of the stack's filter ${filter}; stack only warps of one filter`);
  }
  const own: Record<string, SqlValue> = { skycell_id, tess_id, filter, dvodb: checkValue('text', s.dvodb, 'define stack: dvodb') };
  if (s.stack_id !== undefined) {
    const given = checkId(s.stack_id, 'define stack: stack_id');
    if (await tx.get('SELECT stack_id FROM stackRun WHERE stack_id = ?', [given])) {
      throw new Gpc1Error('gpc1_bad_input', `define stack: stack run ${given} already exists; give another stack_id, or none to have one assigned`);
    }
    own.stack_id = given;
  }
  const id = await insertOne(tx, c, own);
  if (s.stack_id !== undefined) await moveSequencePast(tx, 'stackRun', 'stack_id');
  await insertRows(tx, 'stackInputSkyfile', ['stack_id', 'warp_id'], warps.map((w) => [id, w]));
  return [id];
}

async function defineStaticsky(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const stacks = checkIds(s.stack_ids, 'define staticsky: stack_ids');
  await requireRows(tx, 'stackRun', 'stack_id', stacks, 'stack', 'stack run');
  const id = await insertOne(tx, c, {});
  await insertRows(tx, 'staticskyInput', ['sky_id', 'stack_id'], stacks.map((st) => [id, st]));
  return [id];
}

async function defineSkycal(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const sky = checkId(s.sky_id, 'define skycal: sky_id');
  await requireRows(tx, 'staticskyRun', 'sky_id', [sky], 'staticsky', 'staticsky run');
  const inputs = (await tx.all<{ stack_id: number }>('SELECT stack_id FROM staticskyInput WHERE sky_id = ? ORDER BY stack_id', [sky])).map((r) => Number(r.stack_id));
  const stacks = s.stack_ids === undefined ? inputs : checkIds(s.stack_ids, 'define skycal: stack_ids');
  const outside = stacks.filter((st) => !inputs.includes(st));
  if (outside.length > 0) throw new Gpc1Error('gpc1_bad_input', `define skycal: stack ${outside.join(', ')} is not an input of staticsky run ${sky} (its stacks: ${inputs.join(', ')})`);
  const rows = await tx.all<{ skycal_id: number }>(
    `INSERT INTO skycalRun (sky_id, stack_id, state, ${COMMON_COLUMNS.join(', ')})
     SELECT i.sky_id, i.stack_id, 'new', ${COMMON_COLUMNS.map(() => 'CAST(? AS TEXT)').join(', ')} FROM staticskyInput i
     WHERE i.sky_id = ? AND i.stack_id IN (${marks(stacks.length)}) ORDER BY i.stack_id RETURNING skycal_id`,
    [...commonParams(c), sky, ...stacks]);
  return rows.map((r) => Number(r.skycal_id));
}

async function defineFullforce(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const skycals = checkIds(s.skycal_ids, 'define fullforce: skycal_ids');
  await requireRows(tx, 'skycalRun', 'skycal_id', skycals, 'skycal', 'skycal run');
  const warps = s.warp_ids === undefined ? null : checkIds(s.warp_ids, 'define fullforce: warp_ids');
  if (warps && skycals.length !== 1) throw new Gpc1Error('gpc1_bad_input', 'define fullforce: warp_ids can be given with one skycal run only');
  if (warps) await requireRows(tx, 'warpRun', 'warp_id', warps, 'warp', 'warp run');
  const sources = checkValue('text', s.sources_path_base, 'define fullforce: sources_path_base');
  const rows = await tx.all<{ ff_id: number }>(
    `INSERT INTO fullForceRun (skycal_id, sources_path_base, state, ${COMMON_COLUMNS.join(', ')})
     SELECT p.skycal_id, COALESCE(CAST(? AS TEXT), res.path_base), 'new', ${COMMON_COLUMNS.map(() => 'CAST(? AS TEXT)').join(', ')}
     FROM skycalRun p LEFT JOIN skycalResult res ON res.skycal_id = p.skycal_id
     WHERE p.skycal_id IN (${marks(skycals.length)}) ORDER BY p.skycal_id RETURNING ff_id`,
    [sources, ...commonParams(c), ...skycals]);
  const ids = rows.map((r) => Number(r.ff_id));
  if (warps) {
    await insertRows(tx, 'fullForceInput', ['ff_id', 'warp_id'], warps.map((w) => [ids[0]!, w]));
  } else {
    await tx.run(`INSERT INTO fullForceInput (ff_id, warp_id)
       SELECT f.ff_id, i.warp_id FROM fullForceRun f JOIN skycalRun k ON k.skycal_id = f.skycal_id
       JOIN stackInputSkyfile i ON i.stack_id = k.stack_id WHERE f.ff_id IN (${marks(ids.length)})`, ids);
  }
  return ids;
}

async function defineDiff(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const tess_id = checkName(s.tess_id, 'define diff: tess_id');
  if (!Array.isArray(s.skycells) || s.skycells.length === 0) throw new Gpc1Error('gpc1_bad_input', 'define diff: skycells must be a non-empty list of { skycell_id, warp1|stack1, warp2|stack2 }');
  const seen = new Set<string>();
  const inputs = (s.skycells as unknown[]).map((e, i) => {
    const entry = (e ?? {}) as Record<string, unknown>;
    const skycell_id = checkName(entry.skycell_id, `define diff: skycells[${i}].skycell_id`);
    const unknown = Object.keys(entry).filter((k) => !['skycell_id', 'warp1', 'stack1', 'warp2', 'stack2'].includes(k));
    if (unknown.length) throw new Gpc1Error('gpc1_unknown_column', `define diff: skycells[${i}]: unknown field ${unknown.join(', ')}`);
    if (seen.has(skycell_id)) throw new Gpc1Error('gpc1_bad_input', `define diff: skycell ${skycell_id} is listed twice`);
    seen.add(skycell_id);
    const side = (n: 1 | 2) => {
      const warp = entry[`warp${n}`];
      const stack = entry[`stack${n}`];
      if ((warp === undefined) === (stack === undefined)) {
        throw new Gpc1Error('gpc1_bad_input', `define diff: skycell ${skycell_id} needs exactly one of warp${n} and stack${n}`);
      }
      return warp !== undefined ? { warp: checkId(warp, `define diff: ${skycell_id} warp${n}`), stack: null } : { warp: null, stack: checkId(stack, `define diff: ${skycell_id} stack${n}`) };
    };
    const one = side(1);
    const two = side(2);
    if (one.warp === two.warp && one.stack === two.stack) {
      throw new Gpc1Error('gpc1_bad_input', `define diff: skycell ${skycell_id} would subtract ${one.warp !== null ? `warp run ${one.warp}` : `stack run ${one.stack}`} from itself; give two different images`);
    }
    return { skycell_id, one, two };
  });
  const warps = [...new Set(inputs.flatMap((x) => [x.one.warp, x.two.warp]).filter((w): w is number => w !== null))];
  const stacks = [...new Set(inputs.flatMap((x) => [x.one.stack, x.two.stack]).filter((w): w is number => w !== null))];
  if (warps.length) await requireRows(tx, 'warpRun', 'warp_id', warps, 'warp', 'warp run');
  if (stacks.length) await requireRows(tx, 'stackRun', 'stack_id', stacks, 'stack', 'stack run');
  // Each input must cover its skycell, as a stack's warps must: a good warp skyfile, a stack of that skycell.
  for (const x of inputs) {
    for (const side of [x.one, x.two]) {
      const covered = side.warp !== null
        ? await tx.get('SELECT 1 AS ok FROM warpSkyfile WHERE warp_id = ? AND skycell_id = ? AND tess_id = ? AND fault = 0 AND quality = 0', [side.warp, x.skycell_id, tess_id])
        : await tx.get('SELECT 1 AS ok FROM stackRun WHERE stack_id = ? AND skycell_id = ? AND tess_id = ?', [side.stack, x.skycell_id, tess_id]);
      if (!covered) {
        throw new Gpc1Error('gpc1_input_not_ready', side.warp !== null
          ? `define diff: warp run ${side.warp} has no good skyfile for ${tess_id} ${x.skycell_id}; difference only images that cover the skycell`
          : `define diff: stack run ${side.stack} is not of ${tess_id} ${x.skycell_id}; difference only images that cover the skycell`);
      }
    }
  }
  if (s.bothways !== undefined && typeof s.bothways !== 'boolean') throw new Gpc1Error('gpc1_bad_input', 'define diff: bothways must be true or false');
  const id = await insertOne(tx, c, {
    tess_id, diff_mode: checkCode(s.diff_mode, 'define diff: diff_mode'), bothways: s.bothways ? 1 : 0,
    dvodb: checkValue('text', s.dvodb, 'define diff: dvodb'),
  });
  await insertRows(tx, 'diffInputSkyfile', ['diff_id', 'skycell_id', 'tess_id', 'warp1', 'stack1', 'warp2', 'stack2'],
    inputs.map((x) => [id, x.skycell_id, tess_id, x.one.warp, x.one.stack, x.two.warp, x.two.stack]));
  return [id];
}

async function defineFromSource(tx: Queryable, c: Common, s: Record<string, unknown>): Promise<number[]> {
  const source = parseStage(checkName(s.source_stage, `define ${c.stage}: source_stage`));
  if (c.stage === 'addstar' && !ADD_SOURCES.includes(source)) {
    throw new Gpc1Error('gpc1_bad_input', `define addstar: source_stage must be one of ${ADD_SOURCES.join(', ')} (the stages whose catalogues go into DVO), not ${source}`);
  }
  const src = describeStage(source);
  const ids = checkIds(s.source_ids, `define ${c.stage}: source_ids`);
  await requireRows(tx, src.runTable, src.key, ids, source, `${source} run`);
  const own: [string, SqlValue][] = c.stage === 'addstar'
    ? [['dvodb', checkValue('text', s.dvodb, 'define addstar: dvodb')]]
    : [['client', checkName(s.client, 'define publish: client')]];
  const d = describeStage(c.stage);
  const rows = await tx.all<Record<string, number>>(
    `INSERT INTO ${d.runTable} (stage, stage_id, ${own.map((o) => o[0]).join(', ')}, state, ${COMMON_COLUMNS.join(', ')})
     SELECT CAST(? AS TEXT), p.${src.key}, ${own.map(() => 'CAST(? AS TEXT)').join(', ')}, 'new', ${COMMON_COLUMNS.map(() => 'CAST(? AS TEXT)').join(', ')}
     FROM ${src.runTable} p WHERE p.${src.key} IN (${marks(ids.length)}) ORDER BY p.${src.key} RETURNING ${d.key}`,
    [source, ...own.map((o) => o[1]), ...commonParams(c), ...ids]);
  return rows.map((r) => Number(r[d.key]));
}

/**
 * Checks that every id names a row of `table` and, for runs of a stage, that the run is full:
 * a later stage starts only from finished work.
 */
async function requireRows(tx: Queryable, table: string, key: string, ids: readonly number[], stageName: StageName | null, what: string): Promise<void> {
  const found = new Map<number, string | null>();
  for (const part of chunks(ids)) {
    const rows = await tx.all<{ id: number; state: string | null }>(
      `SELECT ${key} AS id, ${stageName ? 'state' : 'NULL AS state'} FROM ${table} WHERE ${key} IN (${marks(part.length)})`, part);
    for (const r of rows) found.set(Number(r.id), r.state);
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    throw new Gpc1Error(stageName ? 'gpc1_unknown_run' : 'gpc1_unknown_exposure',
      `${what} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''} does not exist${stageName ? `; list runs with ipp gpc1 runs --stage ${stageName}` : '; register it first'}`);
  }
  const unready = ids.filter((id) => stageName && found.get(id) !== 'full');
  if (unready.length > 0) {
    throw new Gpc1Error('gpc1_input_not_ready',
      `${what} ${unready.slice(0, 10).map((id) => `${id} (${found.get(id)})`).join(', ')} is not full; a run is defined only from finished inputs (advance them first)`);
  }
}
