// `ipp gpc1 ...`: the processing database from the command line — create the schema, register
// exposures, define runs, record components, revert faults, advance, list, change states, count.
import { readFile } from 'node:fs/promises';
import { IppError, UsageError } from '../../common/index.ts';
import { applyMigrations, openDatabase, type Database } from '../../db/index.ts';
import {
  DEFINE_FIELDS, GPC1_MIGRATIONS, Gpc1Error, RUN_STATES, STAGE_NAMES, advance, defineRun, listRuns, mapSkyCells, openGpc1,
  parseRunState, parseStage, pendingComponents, recordComponent, registerExposures, revertFaults, setRunState, stage as describeStage,
  summary, type ExposureSpec, type RunState, type StageName,
} from '../../gpc1/index.ts';
import { EXIT, optionalWholeNumber, wholeNumber, type Command, type CommandContext, type CommandGroup, type OptionSpec, type ParsedArgs } from '../command.ts';
import { databaseUrl, dbOption } from '../settings.ts';

const db = dbOption('gpc1');
const json: OptionSpec = { type: 'boolean', help: 'print JSON instead of text' };
const label: OptionSpec = { type: 'string', value: 'LABEL', help: 'only runs of this processing label' };
const limit: OptionSpec = { type: 'string', value: 'N', help: 'at most N' };

/** The 60 OTAs of the GPC1 focal plane (XY01..XY76 without the corners), for `register --chips gpc1`. */
const GPC1_CHIPS = Array.from({ length: 64 }, (_, i) => `XY${Math.floor(i / 8)}${i % 8}`)
  .filter((c) => !['XY00', 'XY07', 'XY70', 'XY77'].includes(c));

/**
 * Runs `fn` on the gpc1 database --db names. Only `create` and `register` make a database
 * that is not there yet; every other command refuses a missing one, so that a mistyped path
 * is an error, not an empty database.
 */
async function withGpc1<T>(args: ParsedArgs, ctx: CommandContext, fn: (db: Database) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const handle = await openGpc1(databaseUrl('gpc1', args, ctx.env), { existing: !options.create }).catch((error: unknown) => {
    if (error instanceof IppError && error.code === 'db_not_found') {
      throw new IppError('db_not_found', `${error.message} (given by --db, else IPP_GPC1_DB, else IPP_DB); ipp gpc1 create or ipp gpc1 register makes a new one`, { cause: error });
    }
    throw error;
  });
  try {
    return await fn(handle);
  } finally {
    await handle.close();
  }
}

/** A stage or state named on the command line: an unknown one is a usage error (exit 2). */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof Gpc1Error && (error.code === 'gpc1_unknown_stage' || error.code === 'gpc1_unknown_state')) {
      throw new UsageError(error.message, { cause: error });
    }
    throw error;
  }
}

function stageArg(value: string | undefined, command: string): StageName {
  if (value === undefined) throw new UsageError(`give the stage: ipp gpc1 ${command} STAGE (one of ${STAGE_NAMES.join(', ')})`);
  return usage(() => parseStage(value));
}

function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

function list(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '') : [];
}

function ids(args: ParsedArgs, name: string): number[] {
  return list(args, name).map((v) => wholeNumber(v, `--${name}`, 1));
}

function optionalInt(args: ParsedArgs, name: string, min = 0): number | undefined {
  return optionalWholeNumber(str(args, name), `--${name}`, min);
}

function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widths; numeric columns right-aligned. */
function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => /^-?[0-9.]+$|^-$/.test(r[i]!)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** Reads a JSON value from a file, or from the text itself when it starts with `{` or `[`. */
async function readJson(source: string, what: string): Promise<unknown> {
  let text = source;
  const inline = /^\s*[[{]/.test(source);
  if (!inline) {
    try {
      text = await readFile(source, 'utf8');
    } catch (cause) {
      throw new UsageError(`${what}: cannot read ${source}: ${(cause as Error).message}`, { cause });
    }
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new UsageError(`${what}: ${inline ? 'the JSON given' : source} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

const create: Command = {
  name: 'create',
  summary: 'create the processing database schema (or bring it up to date)',
  usage: '[--db URL] [--json]',
  description: 'Applies the gpc1 migrations that the database has not seen yet, in one transaction. Safe to run again.',
  options: { db, json },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; the database is given with --db URL`);
    const url = databaseUrl('gpc1', args, ctx.env);
    const handle = await openDatabase(url);
    try {
      const applied = await applyMigrations(handle, [GPC1_MIGRATIONS]);
      const version = GPC1_MIGRATIONS.migrations.length;
      if (args.values.json) printJson(ctx, { url: handle.url, applied, version });
      else ctx.stdout.write(`${handle.url}: gpc1 schema at migration ${version} (${applied === 0 ? 'already up to date' : `applied ${applied}`})\n`);
    } finally {
      await handle.close();
    }
    return EXIT.ok;
  },
};

const register: Command = {
  name: 'register',
  summary: 'register exposures (rawExp and one rawImfile per chip), from flags or a JSON file',
  usage: '(--file FILE | --exp-name NAME --camera C --telescope T --chips LIST [options]) [--json]',
  description: `A JSON file holds one exposure or a list of them: { "exp_name", "camera", "telescope", "dateobs",
"filter", "exp_time", "airmass", "ra", "decl", "obs_mode", "tess_id", ..., "imfiles": [{ "class_id", "uri" }, ...] }.
With flags, --chips takes class ids (XY01,XY02) or "gpc1" for the 60 OTAs; --uri-base names chip files
BASE/EXP_NAME.CLASS_ID.fits. Prints the exp_ids.`,
  options: {
    db, json,
    file: { type: 'string', value: 'FILE', help: 'a JSON file with one exposure or a list' },
    'exp-name': { type: 'string', value: 'NAME', help: 'exposure name, e.g. o5000g0123o' },
    camera: { type: 'string', value: 'NAME', help: 'camera (default GPC1)' },
    telescope: { type: 'string', value: 'NAME', help: 'telescope (default PS1)' },
    dateobs: { type: 'string', value: 'TIME', help: 'start of the exposure, ISO-8601' },
    'exp-type': { type: 'string', value: 'TYPE', help: 'exposure type (default object)' },
    filter: { type: 'string', value: 'F', help: 'filter, e.g. r.00000' },
    'exp-time': { type: 'string', value: 'S', help: 'exposure time, seconds' },
    airmass: { type: 'string', value: 'A', help: 'airmass' },
    ra: { type: 'string', value: 'DEG', help: 'boresight right ascension, degrees' },
    decl: { type: 'string', value: 'DEG', help: 'boresight declination, degrees' },
    'obs-mode': { type: 'string', value: 'MODE', help: 'survey mode, e.g. 3PI' },
    'tess-id': { type: 'string', value: 'TESS', help: 'tessellation for its warps, e.g. RINGS.V3' },
    chips: { type: 'string', multiple: true, value: 'LIST', help: 'chip class ids, comma-separated, or gpc1 for all 60 OTAs' },
    'uri-base': { type: 'string', value: 'DIR', help: 'where the chip files are' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; register takes options only`);
    let exposures: ExposureSpec[];
    const file = str(args, 'file');
    if (file !== undefined) {
      const flags = Object.keys(args.values).filter((k) => !['file', 'db', 'json', 'help', 'verbose', 'log-level'].includes(k) && args.values[k] !== undefined);
      if (flags.length > 0) throw new UsageError(`--file and --${flags[0]} do not go together; put the fields in the file`);
      const value = await readJson(file, '--file');
      exposures = (Array.isArray(value) ? value : [value]) as ExposureSpec[];
    } else {
      const name = str(args, 'exp-name');
      if (name === undefined) throw new UsageError('give --file FILE, or --exp-name and --chips for one exposure');
      const chips = list(args, 'chips').flatMap((c) => (c === 'gpc1' ? GPC1_CHIPS : [c]));
      if (chips.length === 0) throw new UsageError('give the exposure\'s chips: --chips XY01,XY02 or --chips gpc1');
      const num = (flag: string) => {
        const v = str(args, flag);
        if (v === undefined) return undefined;
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} "${v}" must be a number`);
        return n;
      };
      const base = str(args, 'uri-base');
      exposures = [{
        exp_name: name, camera: str(args, 'camera') ?? 'GPC1', telescope: str(args, 'telescope') ?? 'PS1',
        dateobs: str(args, 'dateobs') ?? null, exp_type: str(args, 'exp-type') ?? 'object', filter: str(args, 'filter') ?? null,
        exp_time: num('exp-time') ?? null, airmass: num('airmass') ?? null, ra: num('ra') ?? null, decl: num('decl') ?? null,
        obs_mode: str(args, 'obs-mode') ?? null, tess_id: str(args, 'tess-id') ?? null,
        imfiles: chips.map((class_id) => ({ class_id, uri: base === undefined ? null : `${base.replace(/\/$/, '')}/${name}.${class_id}.fits` })),
      }];
    }
    const made = await withGpc1(args, ctx, (h) => registerExposures(h, exposures), { create: true });
    if (args.values.json) printJson(ctx, { exp_ids: made });
    else ctx.stdout.write(`registered ${made.length} exposure${made.length === 1 ? '' : 's'}: exp_id ${made.join(', ')}\n`);
    return EXIT.ok;
  },
};

/** define's flags that name a definition field, by field. */
const DEFINE_FLAGS: Readonly<Record<string, { flag: string; kind: 'ids' | 'id' | 'text' | 'bool' | 'skycells' }>> = {
  exp_ids: { flag: 'exp-id', kind: 'ids' },
  chip_ids: { flag: 'chip-id', kind: 'ids' },
  cam_ids: { flag: 'cam-id', kind: 'ids' },
  fake_ids: { flag: 'fake-id', kind: 'ids' },
  warp_ids: { flag: 'warp-id', kind: 'ids' },
  stack_ids: { flag: 'stack-id', kind: 'ids' },
  skycal_ids: { flag: 'skycal-id', kind: 'ids' },
  source_ids: { flag: 'source-id', kind: 'ids' },
  sky_id: { flag: 'sky-id', kind: 'id' },
  tess_id: { flag: 'tess-id', kind: 'text' },
  dvodb: { flag: 'dvodb', kind: 'text' },
  filter: { flag: 'filter', kind: 'text' },
  source_stage: { flag: 'source-stage', kind: 'text' },
  client: { flag: 'client', kind: 'text' },
  unique: { flag: 'unique', kind: 'bool' },
  skycells: { flag: 'skycell', kind: 'skycells' },
};
const EXPOSURE_FLAGS = ['exp-name', 'exp-type', 'obs-mode', 'camera', 'dateobs-begin', 'dateobs-end'];
const COMMON_FLAGS: Readonly<Record<string, string>> = {
  label: 'label', 'data-group': 'data_group', 'dist-group': 'dist_group', 'end-stage': 'end_stage',
  reduction: 'reduction', workdir: 'workdir', note: 'note',
};

const define: Command = {
  name: 'define',
  summary: 'define runs of a stage (state new), from their inputs',
  usage: 'STAGE --label LABEL [inputs] [--spec JSON] [--json]',
  description: `Inputs by stage (ids may repeat or be comma-separated):
  chip      --exp-id ID... and/or an exposure query: --filter F --obs-mode M --exp-type T --exp-name N
            --camera C --dateobs-begin T --dateobs-end T; --unique skips exposures with a run of the label
  camera    --chip-id ID...        fake   --cam-id ID...
  warp      --fake-id ID... [--tess-id T] [--skycell SKYCELL[:CLASS_ID]...] (skycell map, one fake run)
  stack     --skycell SKYCELL --tess-id T --filter F --warp-id ID...
  staticsky --stack-id ID...       skycal --sky-id ID [--stack-id ID...]
  fullforce --skycal-id ID... [--warp-id ID...]
  diff      --spec '{"tess_id": "RINGS.V3", "skycells": [{"skycell_id": "...", "warp1": 1, "stack2": 2}]}'
  addstar   --source-stage S --source-id ID... [--dvodb D]
  publish   --client NAME --source-stage S --source-id ID...
Every definition takes --label and optionally --data-group, --dist-group, --end-stage (chip, camera, fake
or warp: where the chain stops), --reduction, --workdir, --note. --spec gives the same fields as JSON
(a file or inline), flags win. Prints the new run ids.`,
  options: {
    db, json,
    label: { type: 'string', value: 'LABEL', help: 'processing label of the new runs (required)' },
    'data-group': { type: 'string', value: 'G', help: 'data group (default: the label)' },
    'dist-group': { type: 'string', value: 'G', help: 'distribution group' },
    'end-stage': { type: 'string', value: 'STAGE', help: 'last stage of the chip → camera → fake → warp chain to queue' },
    reduction: { type: 'string', value: 'R', help: 'reduction class' },
    workdir: { type: 'string', value: 'DIR', help: 'working directory' },
    note: { type: 'string', value: 'TEXT', help: 'a note' },
    'exp-id': { type: 'string', multiple: true, value: 'ID', help: 'chip: exposures' },
    'exp-name': { type: 'string', value: 'NAME', help: 'chip: exposure name to match' },
    'exp-type': { type: 'string', value: 'TYPE', help: 'chip: exposure type to match' },
    'obs-mode': { type: 'string', value: 'MODE', help: 'chip: survey mode to match' },
    camera: { type: 'string', value: 'NAME', help: 'chip: camera to match' },
    'dateobs-begin': { type: 'string', value: 'TIME', help: 'chip: exposures taken at or after' },
    'dateobs-end': { type: 'string', value: 'TIME', help: 'chip: exposures taken at or before' },
    filter: { type: 'string', value: 'F', help: 'chip: filter to match; stack: the filter' },
    unique: { type: 'boolean', help: 'chip: skip exposures that already have a run of this label' },
    'chip-id': { type: 'string', multiple: true, value: 'ID', help: 'camera: full chip runs' },
    'cam-id': { type: 'string', multiple: true, value: 'ID', help: 'fake: full camera runs' },
    'fake-id': { type: 'string', multiple: true, value: 'ID', help: 'warp: full fake runs' },
    'warp-id': { type: 'string', multiple: true, value: 'ID', help: 'stack, fullforce: warp runs' },
    'stack-id': { type: 'string', multiple: true, value: 'ID', help: 'staticsky, skycal: stack runs' },
    'sky-id': { type: 'string', value: 'ID', help: 'skycal: the staticsky run' },
    'skycal-id': { type: 'string', multiple: true, value: 'ID', help: 'fullforce: skycal runs' },
    'source-stage': { type: 'string', value: 'STAGE', help: 'addstar, publish: the stage of the source runs' },
    'source-id': { type: 'string', multiple: true, value: 'ID', help: 'addstar, publish: source runs' },
    client: { type: 'string', value: 'NAME', help: 'publish: the client' },
    skycell: { type: 'string', multiple: true, value: 'SKYCELL', help: 'warp: SKYCELL[:CLASS_ID] map entries; stack: the skycell' },
    'tess-id': { type: 'string', value: 'TESS', help: 'tessellation, e.g. RINGS.V3' },
    dvodb: { type: 'string', value: 'NAME', help: 'DVO database' },
    spec: { type: 'string', value: 'JSON', help: 'the definition as JSON, a file or inline' },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one stage: ipp gpc1 define STAGE --label LABEL [inputs]');
    const name = stageArg(args.positionals[0], 'define');
    const spec: Record<string, unknown> = {};
    const specText = str(args, 'spec');
    if (specText !== undefined) {
      const value = await readJson(specText, '--spec');
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError('--spec must be a JSON object of definition fields');
      Object.assign(spec, value);
    }
    for (const [flag, field] of Object.entries(COMMON_FLAGS)) {
      const v = str(args, flag);
      if (v !== undefined) spec[field] = v;
    }
    const fields = DEFINE_FIELDS[name];
    const exposures: Record<string, string> = {};
    for (const flag of EXPOSURE_FLAGS) {
      const v = str(args, flag);
      if (v === undefined) continue;
      if (name !== 'chip') throw new UsageError(`--${flag} applies to define chip only`);
      exposures[flag.replace(/-/g, '_')] = v;
    }
    for (const [field, { flag, kind }] of Object.entries(DEFINE_FLAGS)) {
      const given = args.values[flag];
      if (given === undefined || (Array.isArray(given) && given.length === 0)) continue;
      if (name === 'chip' && field === 'filter') {
        exposures.filter = given as string;
        continue;
      }
      if (name === 'stack' && field === 'skycells') {
        const cells = list(args, flag);
        if (cells.length !== 1) throw new UsageError('define stack: give one --skycell');
        spec.skycell_id = cells[0];
        continue;
      }
      if (!fields.includes(field)) {
        const valid = Object.entries(DEFINE_FLAGS).filter(([f]) => fields.includes(f)).map(([, o]) => `--${o.flag}`);
        throw new UsageError(`--${flag} does not apply to define ${name}; it takes ${[...valid, ...(name === 'chip' ? ['filter', ...EXPOSURE_FLAGS].map((f) => `--${f}`) : [])].join(', ') || 'only --spec'}`);
      }
      if (kind === 'ids') spec[field] = ids(args, flag);
      else if (kind === 'id') spec[field] = wholeNumber(given as string, `--${flag}`, 1);
      else if (kind === 'bool') spec[field] = true;
      else if (kind === 'skycells') {
        spec[field] = list(args, flag).map((entry) => {
          const [skycell_id, class_id] = entry.split(':');
          return class_id === undefined ? { skycell_id } : { skycell_id, class_id };
        });
      } else spec[field] = given;
    }
    if (Object.keys(exposures).length > 0) spec.exposures = { ...(spec.exposures as object | undefined), ...exposures };
    if (spec.end_stage !== undefined) usage(() => parseStage(String(spec.end_stage)));
    if (typeof spec.source_stage === 'string') usage(() => parseStage(String(spec.source_stage)));
    if (spec.label === undefined || spec.label === '') throw new UsageError(`give the runs' label: ipp gpc1 define ${name} --label LABEL`);
    const made = await withGpc1(args, ctx, (h) => defineRun(h, name, spec as never));
    if (args.values.json) printJson(ctx, { stage: name, ids: made });
    else ctx.stdout.write(made.length === 0 ? `defined no ${name} runs (nothing matched)\n` : `defined ${made.length} ${name} run${made.length === 1 ? '' : 's'}: ${made.join(', ')}\n`);
    return EXIT.ok;
  },
};

const done: Command = {
  name: 'done',
  summary: 'record a component of a run as finished (or faulted)',
  usage: 'STAGE ID [COMPONENT] [--fault N] [--quality N] [--path P] [--uri U] [--hostname H] [--metric NAME=VALUE...]',
  description: `COMPONENT is the chip (class_id) for chip and fake runs, the skycell for warp and diff runs, the warp_id
for fullforce runs, and absent for one-component stages (camera, stack, staticsky, skycal, addstar, publish).
--fault N marks a passing failure (retried after ipp gpc1 revert); --quality N marks bad input (done, not retried).`,
  options: {
    db,
    fault: { type: 'string', value: 'N', help: 'fault code: the job failed and should be retried' },
    quality: { type: 'string', value: 'N', help: 'quality code: the input was bad' },
    path: { type: 'string', value: 'P', help: 'path_base of the products' },
    uri: { type: 'string', value: 'U', help: 'the main product (e.g. the smf or cmf file)' },
    hostname: { type: 'string', value: 'H', help: 'host that ran the job' },
    metric: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'a result column, e.g. zpt_obs=24.6' },
  },
  async run(args, ctx) {
    const [stageName, idText, component, ...extra] = args.positionals;
    if (idText === undefined || extra.length > 0) throw new UsageError('give STAGE ID [COMPONENT]: ipp gpc1 done chip 12 XY01');
    const name = stageArg(stageName, 'done');
    const d = describeStage(name);
    const id = wholeNumber(idText, 'run id', 1);
    if (d.componentColumn && component === undefined) throw new UsageError(`${name} runs are recorded per ${d.componentColumn}: ipp gpc1 done ${name} ${id} COMPONENT`);
    if (!d.componentColumn && component !== undefined) throw new UsageError(`a ${name} run is recorded whole, without a component: ipp gpc1 done ${name} ${id}`);
    const result: Record<string, string | number | null> = {};
    const fault = optionalInt(args, 'fault');
    const quality = optionalInt(args, 'quality');
    if (fault && quality) throw new UsageError('give --fault (the job failed; a revert retries it) or --quality (the input is bad; never retried), not both');
    if (fault !== undefined) result.fault = fault;
    if (quality !== undefined) result.quality = quality;
    for (const [flag, column] of [['path', 'path_base'], ['uri', 'uri'], ['hostname', 'hostname']] as const) {
      const v = str(args, flag);
      if (v !== undefined) result[column] = v;
    }
    for (const m of (args.values.metric as string[] | undefined) ?? []) {
      const at = m.indexOf('=');
      if (at < 1) throw new UsageError(`--metric "${m}" must be NAME=VALUE`);
      const key = m.slice(0, at);
      const value = m.slice(at + 1);
      const kind = d.metrics[key];
      if (kind === undefined) throw new UsageError(`--metric ${key}: not a column of ${d.componentTable}; its columns are ${Object.keys(d.metrics).join(', ')}`);
      if (kind === 'text') result[key] = value;
      else {
        const n = Number(value);
        if (value.trim() === '' || Number.isNaN(n) || (kind === 'int' && !Number.isInteger(n))) {
          throw new UsageError(`--metric ${key}=${value}: ${key} must be ${kind === 'int' ? 'a whole number' : 'a number'}`);
        }
        result[key] = n;
      }
    }
    await withGpc1(args, ctx, (h) => recordComponent(h, name, id, component ?? null, result));
    ctx.stdout.write(`recorded ${name} run ${id}${component === undefined ? '' : ` ${component}`}${fault ? ` with fault ${fault}` : ''}${quality ? ` with quality ${quality}` : ''}\n`);
    return EXIT.ok;
  },
};

const revert: Command = {
  name: 'revert',
  summary: 'clear faulted components of a stage so they are processed again',
  usage: 'STAGE [--label L] [--fault N] [--json]',
  description: 'Quality-bad components are never reverted: they would only fail again.',
  options: { db, json, label, fault: { type: 'string', value: 'N', help: 'only this fault code' } },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one stage: ipp gpc1 revert STAGE');
    const name = stageArg(args.positionals[0], 'revert');
    const fault = optionalInt(args, 'fault', 1);
    const n = await withGpc1(args, ctx, (h) => revertFaults(h, { stage: name, label: str(args, 'label'), fault }));
    if (args.values.json) printJson(ctx, { stage: name, reverted: n });
    else ctx.stdout.write(`reverted ${n} faulted ${name} component${n === 1 ? '' : 's'}\n`);
    return EXIT.ok;
  },
};

const advanceCommand: Command = {
  name: 'advance',
  summary: 'set runs whose components are all done to full and queue their next stage',
  usage: '[--stage S] [--label L] [--limit N] [--json]',
  description: 'The chain chip → camera → fake → warp stops at each run\'s end_stage. Safe to run from many processes at once.',
  options: { db, json, label, limit: { ...limit, help: 'at most N runs per stage' }, stage: { type: 'string', value: 'STAGE', help: 'only this stage' } },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; use --stage STAGE`);
    const s = str(args, 'stage');
    const name = s === undefined ? undefined : stageArg(s, 'advance --stage');
    const options = { stage: name, label: str(args, 'label'), limit: optionalInt(args, 'limit', 1) };
    const result = await withGpc1(args, ctx, (h) => advance(h, options));
    if (args.values.json) {
      printJson(ctx, result);
      return EXIT.ok;
    }
    for (const r of result.runs) {
      const next = r.queued ? `queued ${r.queued.stage} run ${r.queued.id}` : `no next stage (${r.stopped?.replace('_', ' ')})`;
      ctx.stdout.write(`${r.stage} run ${r.id}: full; ${next}${r.bad_components ? `; ${r.bad_components} bad-quality component${r.bad_components === 1 ? '' : 's'}` : ''}\n`);
    }
    ctx.stdout.write(`advanced ${result.advanced} run${result.advanced === 1 ? '' : 's'}, queued ${result.queued}\n`);
    return EXIT.ok;
  },
};

const runs: Command = {
  name: 'runs',
  summary: 'list the runs of a stage',
  usage: '--stage S [--state X] [--label L] [--limit N] [--json]',
  options: {
    db, json, label, limit,
    stage: { type: 'string', value: 'STAGE', help: `the stage (${STAGE_NAMES.join(', ')})` },
    state: { type: 'string', value: 'STATE', help: 'only runs in this state' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; use --stage STAGE`);
    const s = str(args, 'stage');
    if (s === undefined) throw new UsageError(`give the stage: ipp gpc1 runs --stage STAGE (one of ${STAGE_NAMES.join(', ')})`);
    const name = stageArg(s, 'runs --stage');
    const stateText = str(args, 'state');
    const state = stateText === undefined ? undefined : usage(() => parseRunState(stateText));
    const options = { stage: name, state, label: str(args, 'label'), limit: optionalInt(args, 'limit', 1) };
    const rows = await withGpc1(args, ctx, (h) => listRuns(h, options));
    if (args.values.json) {
      printJson(ctx, rows.map(({ row, ...rest }) => ({ ...rest, ...row })));
      return EXIT.ok;
    }
    const d = describeStage(name);
    const input = (r: (typeof rows)[number]) => d.inputs.map((c) => `${c}=${r.row[c] ?? '-'}`).join(' ') || '-';
    ctx.stdout.write(table(['ID', 'STATE', 'LABEL', 'DATA_GROUP', 'END_STAGE', 'DONE', 'FAULTED', 'BAD', 'INPUT', 'REGISTERED'],
      rows.map((r) => [String(r.id), r.state, r.label ?? '-', r.data_group ?? '-', r.end_stage ?? '-', String(r.done), String(r.faulted), String(r.bad_quality), input(r), r.registered])));
    return EXIT.ok;
  },
};

const pending: Command = {
  name: 'pending',
  summary: 'list the components of a stage still to be processed',
  usage: 'STAGE [--label L] [--limit N] [--json]',
  description: 'A component "-" is a one-component run, or a warp run that waits for its skycell map.',
  options: { db, json, label, limit },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one stage: ipp gpc1 pending STAGE');
    const name = stageArg(args.positionals[0], 'pending');
    const options = { label: str(args, 'label'), limit: optionalInt(args, 'limit', 1) };
    const rows = await withGpc1(args, ctx, (h) => pendingComponents(h, name, options));
    if (args.values.json) printJson(ctx, rows);
    else ctx.stdout.write(table(['ID', 'COMPONENT', 'STATE', 'LABEL'], rows.map((r) => [String(r.id), r.component ?? '-', r.state, r.label ?? '-'])));
    return EXIT.ok;
  },
};

const state: Command = {
  name: 'state',
  summary: 'change the state of runs (drop, wait, cleanup, update...), with the allowed changes checked',
  usage: 'STAGE ID... --to STATE [--json]',
  description: `States: ${RUN_STATES.join(', ')}. full is set only by advance.`,
  options: { db, json, to: { type: 'string', value: 'STATE', help: 'the new state' } },
  async run(args, ctx) {
    const [stageName, ...idTexts] = args.positionals;
    if (idTexts.length === 0) throw new UsageError('give the stage and run ids: ipp gpc1 state STAGE ID... --to STATE');
    const name = stageArg(stageName, 'state');
    const toText = str(args, 'to');
    if (toText === undefined) throw new UsageError(`give the new state with --to (one of ${RUN_STATES.join(', ')})`);
    const to: RunState = usage(() => parseRunState(toText));
    const runIds = idTexts.flatMap((t) => t.split(',')).filter((t) => t !== '').map((t) => wholeNumber(t, 'run id', 1));
    const change = await withGpc1(args, ctx, (h) => setRunState(h, name, runIds, to));
    if (args.values.json) printJson(ctx, { stage: name, state: to, ...change });
    else ctx.stdout.write(`set ${change.changed.length} ${name} run${change.changed.length === 1 ? '' : 's'} to ${to}: ${change.changed.join(', ')}\n`);
    return EXIT.ok;
  },
};

const summaryCommand: Command = {
  name: 'summary',
  summary: 'count runs per stage and state',
  usage: '[--label L] [--json]',
  options: { db, json, label },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const rows = await withGpc1(args, ctx, (h) => summary(h, { label: str(args, 'label') }));
    if (args.values.json) {
      printJson(ctx, rows);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      ctx.stdout.write('no runs\n');
      return EXIT.ok;
    }
    const states = RUN_STATES.filter((s) => rows.some((r) => r.state === s));
    const stages = STAGE_NAMES.filter((s) => rows.some((r) => r.stage === s));
    const count = (st: StageName, s: RunState) => rows.find((r) => r.stage === st && r.state === s)?.runs ?? 0;
    ctx.stdout.write(table(['STAGE', ...states.map((s) => s.toUpperCase()), 'TOTAL'],
      stages.map((st) => [st, ...states.map((s) => String(count(st, s))), String(states.reduce((n, s) => n + count(st, s), 0))])));
    return EXIT.ok;
  },
};

const map: Command = {
  name: 'map',
  summary: 'add skycells to the map of a new warp run (its overlap step)',
  usage: 'WARP_ID SKYCELL[:CLASS_ID]...',
  description: 'A warp run needs one skyfile per mapped skycell; CLASS_ID names the chip that overlaps it (default all).',
  options: { db },
  async run(args, ctx) {
    const [idText, ...cells] = args.positionals;
    if (idText === undefined || cells.length === 0) throw new UsageError('give the warp run and its skycells: ipp gpc1 map WARP_ID SKYCELL[:CLASS_ID]...');
    const id = wholeNumber(idText, 'warp run id', 1);
    const entries = cells.map((c) => {
      const [skycell_id, class_id] = c.split(':');
      return class_id === undefined ? { skycell_id: skycell_id! } : { skycell_id: skycell_id!, class_id };
    });
    const n = await withGpc1(args, ctx, (h) => mapSkyCells(h, id, entries));
    ctx.stdout.write(`mapped ${n} skycell entr${n === 1 ? 'y' : 'ies'} to warp run ${id}\n`);
    return EXIT.ok;
  },
};

/** `ipp gpc1 ...`: the processing database. */
export const gpc1Group: CommandGroup = {
  name: 'gpc1',
  summary: 'the processing database: stages, runs, components, faults, advance',
  commands: [create, register, define, done, revert, advanceCommand, runs, pending, state, summaryCommand, map],
};
