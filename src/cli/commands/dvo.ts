// `ipp dvo ...`: the DVO object database — addstar (from files or from the gpc1 addstar
// queue), merge, grab (by IMAGEID), export-box (pre-ingest into a scratch database), region
// (objects of one region), stats, regions, verify.
import { basename, extname, resolve } from 'node:path';
import { UsageError } from '../../common/index.ts';
import { writeFits } from '../../fits/index.ts';
import { memoryTable, writeCsv, type Table } from '../../table/index.ts';
import { openGpc1, parseStage, pendingComponents, recordComponents, stage as describeStage, type ComponentRecord } from '../../gpc1/index.ts';
import {
  addstar, dvoExists, dvoStats, exportBox, exportRegion, grabImage, GRAB_COLUMNS, listRegions, mergeDvo, verifyDvo,
  type AddstarOptions, type AddstarResult, type SkyBox,
} from '../../dvo/index.ts';
import { EXIT, type Command, type CommandContext, type CommandGroup, type OptionSpec, type ParsedArgs } from '../command.ts';
import { isNebKey, resolveInputPaths } from '../file-ref.ts';
import { databaseUrl, dvoDirectory } from '../settings.ts';

const dbDir: OptionSpec = { type: 'string', value: 'DIR', help: 'the DVO database directory (default $IPP_DVO_DIR or ipp-data/dvo)' };
const json: OptionSpec = { type: 'boolean', help: 'print JSON instead of text' };
const radiusOptions: Record<string, OptionSpec> = {
  radius: { type: 'string', value: 'ARCSEC', help: 'match radius for chip measurements (default 1.0)' },
  'stack-radius': { type: 'string', value: 'ARCSEC', help: 'match radius for stack measurements (default 1.0)' },
  'ref-radius': { type: 'string', value: 'ARCSEC', help: 'match radius for reference catalogues (default 2.0)' },
};
const lockTimeout: OptionSpec = { type: 'string', value: 'SECONDS', help: 'give up waiting for a region lock after this long (default 120)' };

function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

function dir(args: ParsedArgs, ctx: CommandContext): string {
  return dvoDirectory(args, ctx.env);
}

/**
 * Writes rows to --out by its extension: .csv, or .fits/.fit/.fts. Another (or an empty) name
 * is a usage error, checked before any work, rather than a plain FITS file under a name
 * that says otherwise.
 */
function outputFile(args: ParsedArgs): { path: string; write: (table: Table) => Promise<unknown> } | undefined {
  const out = str(args, 'out');
  if (out === undefined) return undefined;
  const ext = extname(out).toLowerCase();
  if (ext === '.csv') return { path: out, write: (table) => writeCsv(table, out) };
  if (['.fits', '.fit', '.fts'].includes(ext)) return { path: out, write: (table) => writeFits(out, [{ table }]) };
  throw new UsageError(`--out "${out}": write a .fits or a .csv file`);
}

/** The database of a command that takes no arguments: a stray one (a database named without --db) is a usage error. */
function onlyDir(args: ParsedArgs, ctx: CommandContext): string {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; the database is given with --db DIR`);
  return dir(args, ctx);
}

function positiveNumber(args: ParsedArgs, name: string): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${name} "${v}" must be a positive number`);
  return n;
}

function radius(args: ParsedArgs): AddstarOptions['radius'] {
  const r: Record<string, number> = {};
  const chip = positiveNumber(args, 'radius');
  const stack = positiveNumber(args, 'stack-radius');
  const ref = positiveNumber(args, 'ref-radius');
  if (chip !== undefined) r.chip = chip;
  if (stack !== undefined) r.stack = stack;
  if (ref !== undefined) r.ref = ref;
  return r;
}

function lockMs(args: ParsedArgs): { lockTimeoutMs?: number } {
  const s = positiveNumber(args, 'lock-timeout');
  return s === undefined ? {} : { lockTimeoutMs: s * 1000 };
}

/** `RA0,RA1,DEC0,DEC1` in degrees. */
function parseBox(text: string | undefined): SkyBox {
  const parts = (text ?? '').split(',').map((x) => Number(x.trim()));
  if (parts.length !== 4 || parts.some((x) => !Number.isFinite(x))) {
    throw new UsageError(`--box "${text ?? ''}" must be RA_MIN,RA_MAX,DEC_MIN,DEC_MAX in degrees (RA_MIN > RA_MAX crosses RA 0)`);
  }
  const [raMin, raMax, decMin, decMax] = parts;
  if (decMin > decMax || decMin < -90 || decMax > 90) throw new UsageError(`--box: declinations ${decMin}..${decMax} must be within -90..90, smallest first`);
  return { raMin, raMax, decMin, decMax };
}

function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

const log = (ctx: CommandContext) => ({ warn: (m: string) => ctx.log.warn(m), info: (m: string) => ctx.log.info(m) });

// Quality codes written to addProcessedExp for catalogues that cannot be ingested.
const QUALITY: Readonly<Record<string, number>> = {
  dvo_bad_catalogue: 1, dvo_bad_coordinates: 2, dvo_unknown_photcode: 3, dvo_image_conflict: 4, dvo_no_catalogue: 5,
  neb_not_found: 5, neb_no_instance: 5,
};

/**
 * addstar of catalogues named by path or by Nebulous key (`neb://...`, resolved in one call
 * to the server IPP_NEB_URL names). A key without a readable instance fails its catalogue with
 * Nebulous's reason; the results name every catalogue as it was given, in order.
 */
async function addstarNamed(target: string, names: readonly string[], options: AddstarOptions, ctx: CommandContext): Promise<AddstarResult> {
  const found = await resolveInputPaths(names, ctx.env);
  const files = found.flatMap((f) => ('path' in f ? [f.path] : []));
  const result = await addstar(target, files, options);
  if (result.files.length !== files.length) throw new Error(`addstar settled ${result.files.length} of ${files.length} catalogues`);
  let j = 0;
  return {
    ...result,
    files: found.map((f, i) => ('path' in f
      ? { ...result.files[j++], path: names[i] }
      : { path: names[i], status: 'failed' as const, images: 0, detections: 0, error: f.error })),
  };
}

function printAddstar(ctx: CommandContext, result: AddstarResult, asJson: boolean, seconds: number): void {
  if (asJson) {
    printJson(ctx, { ...result, seconds });
    return;
  }
  for (const f of result.files) {
    ctx.stdout.write(`${f.status.padEnd(9)} ${f.path}${f.status === 'failed' ? `: [${f.error!.code}] ${f.error!.message}` : ` (${f.images} images, ${f.detections} detections)`}\n`);
  }
  ctx.stdout.write(`${result.detections} measures (${result.matched} matched, ${result.newObjects} new objects), ${result.regionsWritten} regions written in ${seconds.toFixed(2)} s\n`);
}

/**
 * The catalogue of an addstar run's source: the component's uri or path_base when it names a
 * catalogue file, else path_base + .smf (camera) or .cmf (the stack stages). A Nebulous key
 * (neb://...) is returned as it is, to be resolved with the others.
 */
async function sourceCatalogue(db: Awaited<ReturnType<typeof openGpc1>>, stageName: string, stageId: number): Promise<string | undefined> {
  const d = describeStage(parseStage(stageName));
  const row = await db.get<{ uri: string | null; path_base: string | null }>(`SELECT uri, path_base FROM ${d.componentTable} WHERE ${d.key} = ?`, [stageId]);
  if (!row) return undefined;
  const local = (v: string | null): string | undefined => {
    const p = v?.replace(/^file:\/\//, '');
    return p && (isNebKey(p) || !/^[a-z]+:\/\//i.test(p)) ? p : undefined;
  };
  for (const v of [local(row.uri), local(row.path_base)]) if (v && /\.(smf|cmf|fits?)$/i.test(v)) return v;
  const base = local(row.path_base);
  return base ? `${base}${d.name === 'camera' ? '.smf' : '.cmf'}` : undefined;
}

/** True when an addstar run's dvodb (a database's name or its path) names the directory `dir`. */
function namesDatabase(dvodb: string, dir: string): boolean {
  return dvodb.includes('/') ? resolve(dvodb) === resolve(dir) : dvodb === basename(resolve(dir));
}

async function addstarFromGpc1(args: ParsedArgs, ctx: CommandContext, options: AddstarOptions, target: string): Promise<number> {
  const label = str(args, 'label');
  if (!label) throw new UsageError('--from-gpc1 needs --label LABEL: the addstar runs to process');
  const url = databaseUrl('gpc1', { values: { db: args.values['gpc1-db'] }, positionals: [] }, ctx.env);
  const db = await openGpc1(url, { existing: true });
  try {
    const pending = await pendingComponents(db, 'addstar', { label });
    if (pending.length === 0) ctx.log.info(`no addstar runs of label ${label} are pending in ${db.url}`);
    const records: ComponentRecord[] = [];
    const paths: string[] = [];
    const idOfPath = new Map<string, number[]>();
    const elsewhere = new Map<string, number[]>();
    for (const p of pending) {
      const run = await db.get<{ stage: string; stage_id: number; dvodb: string | null }>('SELECT stage, stage_id, dvodb FROM addRun WHERE add_id = ?', [p.id]);
      // A run defined for another DVO database (its dvodb: a name, or a path) is left pending for it.
      if (run?.dvodb && !namesDatabase(run.dvodb, target)) {
        elsewhere.set(run.dvodb, [...(elsewhere.get(run.dvodb) ?? []), p.id]);
        continue;
      }
      const path = run ? await sourceCatalogue(db, run.stage, Number(run.stage_id)) : undefined;
      if (!path) {
        ctx.log.warn(`addstar run ${p.id}: no catalogue file for its ${run?.stage ?? 'source'} run ${run?.stage_id ?? ''}; marked bad (quality ${QUALITY.dvo_no_catalogue})`);
        records.push({ id: p.id, component: null, quality: QUALITY.dvo_no_catalogue, dvodb_path: target, note: 'no catalogue file for the source run' });
        continue;
      }
      if (!idOfPath.has(path)) paths.push(path);
      idOfPath.set(path, [...(idOfPath.get(path) ?? []), p.id]);
    }
    for (const [dvodb, ids] of elsewhere) {
      ctx.log.warn(`${ids.length} addstar run${ids.length === 1 ? '' : 's'} of label ${label} (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}) ${ids.length === 1 ? 'is' : 'are'} for DVO database ${dvodb}, not ${target}; left pending`);
    }
    const t0 = performance.now();
    let result: AddstarResult;
    try {
      result = await addstarNamed(target, paths, options, ctx);
    } catch (error) {
      // No Nebulous server named for a key: a usage error, and nothing is recorded.
      if (error instanceof UsageError) throw error;
      // A passing failure (a lock, the disk, the Nebulous server): every run is faulted, to be retried after a revert.
      if (paths.length) await recordComponents(db, 'addstar', paths.flatMap((p) => idOfPath.get(p)!.map((id) => ({ id, component: null, fault: 1, dvodb_path: target, note: String((error as Error).message ?? error).slice(0, 1000) }))));
      throw error;
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const f of result.files) {
      for (const id of idOfPath.get(f.path) ?? []) {
        records.push({
          id, component: null, dvodb_path: target, dtime_addstar: seconds / Math.max(1, result.files.length), path_base: f.path,
          ...(f.status === 'failed' ? { quality: QUALITY[f.error!.code] ?? 9, note: `[${f.error!.code}] ${f.error!.message}`.slice(0, 1000) } : {}),
        });
        if (f.status === 'failed') ctx.log.warn(`addstar run ${id}: ${f.path} rejected (quality ${QUALITY[f.error!.code] ?? 9}): [${f.error!.code}] ${f.error!.message}`);
      }
    }
    if (records.length) await recordComponents(db, 'addstar', records);
    printAddstar(ctx, result, Boolean(args.values.json), seconds);
    return result.files.some((f) => f.status === 'failed') || records.some((r) => r.quality) ? EXIT.failed : EXIT.ok;
  } finally {
    await db.close();
  }
}

const addstarCommand: Command = {
  name: 'addstar',
  summary: 'ingest smf/cmf catalogues (or the pending addstar runs of gpc1) into a DVO database',
  usage: '--db DIR CATALOGUE... | --db DIR --from-gpc1 --label LABEL [--gpc1-db URL] [options]',
  description: `Creates the database when DIR holds none (its sky partition is cut from the catalogues' density).
Each catalogue is checked whole first; a bad one is reported and the database never sees it.
Re-ingesting a catalogue changes nothing. With --from-gpc1 the pending addstar runs of LABEL are
processed and recorded in gpc1 (bad catalogues with a quality code: 1 unreadable, 2 bad coordinates,
3 unknown photcode, 4 IMAGEID conflict, 5 no catalogue file). Catalogues named by Nebulous key
(neb://..., on the command line or in gpc1) are found through the server $IPP_NEB_URL names
($IPP_NEB_TOKEN if it needs one). Exit status 1 if any catalogue failed.`,
  options: {
    db: dbDir, json, ...radiusOptions, 'lock-timeout': lockTimeout,
    'from-gpc1': { type: 'boolean', help: 'process the pending addstar runs of the processing database' },
    label: { type: 'string', value: 'LABEL', help: 'with --from-gpc1: the runs of this label' },
    'gpc1-db': { type: 'string', value: 'URL', help: 'with --from-gpc1: the gpc1 database (default $IPP_GPC1_DB, $IPP_DB, sqlite:ipp-data/gpc1.db)' },
    compress: { type: 'boolean', help: 'when creating the database: tile-compress its tables (GZIP_2 floats, GZIP_1 strings, RICE_1 integers)' },
    'max-objects': { type: 'string', value: 'N', help: 'when creating the database: most objects per region (default 200000)' },
  },
  async run(args, ctx) {
    const target = dir(args, ctx);
    const maxText = str(args, 'max-objects');
    if (maxText !== undefined && !(/^\d+$/.test(maxText) && Number(maxText) >= 1)) throw new UsageError(`--max-objects "${maxText}" must be a whole number of at least 1`);
    const options: AddstarOptions = {
      radius: radius(args), log: log(ctx), signal: ctx.signal, ...lockMs(args),
      create: { compress: Boolean(args.values.compress), ...(maxText !== undefined ? { maxObjects: Number(maxText) } : {}) },
    };
    if (!args.values['from-gpc1']) {
      const only = ['label', 'gpc1-db'].find((k) => args.values[k] !== undefined);
      if (only) throw new UsageError(`--${only} applies with --from-gpc1 only`);
    }
    if (args.values.compress && await dvoExists(target)) {
      ctx.log.warn(`--compress applies when a database is created; ${target} exists and keeps the tables it has`);
    }
    if (args.values['from-gpc1']) {
      if (args.positionals.length) throw new UsageError('give catalogues or --from-gpc1, not both');
      return addstarFromGpc1(args, ctx, options, target);
    }
    if (args.positionals.length === 0) throw new UsageError('give at least one catalogue: ipp dvo addstar --db DIR CATALOGUE...');
    const t0 = performance.now();
    const result = await addstarNamed(target, args.positionals, options, ctx);
    printAddstar(ctx, result, Boolean(args.values.json), (performance.now() - t0) / 1000);
    return result.files.some((f) => f.status === 'failed') ? EXIT.failed : EXIT.ok;
  },
};

const merge: Command = {
  name: 'merge',
  summary: 'merge two DVO databases into a new one, with addstar\'s association rules',
  usage: 'A B --out C [--radius ARCSEC] [--json]',
  options: { out: { type: 'string', value: 'DIR', help: 'the new database' }, json, ...radiusOptions, 'lock-timeout': lockTimeout },
  async run(args, ctx) {
    const out = str(args, 'out');
    if (args.positionals.length !== 2 || !out) throw new UsageError('usage: ipp dvo merge A B --out C');
    const r = await mergeDvo(args.positionals[0], args.positionals[1], out, { radius: radius(args), log: log(ctx), signal: ctx.signal, ...lockMs(args) });
    if (args.values.json) printJson(ctx, r);
    else ctx.stdout.write(`${out}: ${r.imagesAdded} images added (${r.imagesShared} already there), ${r.measures} measures (${r.matched} matched, ${r.newObjects} new objects)\n`);
    return EXIT.ok;
  },
};

const grab: Command = {
  name: 'grab',
  summary: 'every measurement of one image, by the IMAGEID of its catalogue (dvograbber)',
  usage: '--db DIR IMAGEID [--json | --out FILE.fits|FILE.csv]',
  description: 'IMAGEID is the smf/cmf header value (EXTERN_ID in Images.dat), not DVO\'s IMAGE_ID. Rows: detection ID, objID, IPP_IDET, ...',
  options: { db: dbDir, json, out: { type: 'string', value: 'FILE', help: 'write the rows to a FITS or CSV file' }, 'lock-timeout': lockTimeout },
  async run(args, ctx) {
    const [id] = args.positionals;
    if (args.positionals.length !== 1 || !/^[0-9]+$/.test(id)) throw new UsageError('give one IMAGEID (a whole number): ipp dvo grab --db DIR IMAGEID');
    if (Number(id) > 0xffffffff) throw new UsageError(`IMAGEID ${id} is out of range: IMAGEIDs are 32-bit, at most ${0xffffffff}`);
    if (args.values.json && str(args, 'out') !== undefined) throw new UsageError('give --json (to standard output) or --out FILE, not both');
    const out = outputFile(args);
    const r = await grabImage(dir(args, ctx), Number(id), { log: log(ctx), signal: ctx.signal, ...lockMs(args) });
    if (r.pending) ctx.log.warn(`image ${id} was not completely ingested; its measures may be incomplete (run addstar on its catalogue again)`);
    const table = memoryTable(GRAB_COLUMNS, [r.rows], { name: 'DVO_GRAB' });
    if (out) {
      await out.write(table);
      ctx.stdout.write(`${out.path}: ${r.rows.rowCount} measures of image ${id} (IMAGE_ID ${r.imageId}, ${r.name})\n`);
    } else if (args.values.json) {
      const cols = r.rows.columns.map((c) => c.values);
      printJson(ctx, {
        externId: r.externId, imageId: r.imageId, name: r.name, pending: r.pending, regionsRead: r.regionsRead,
        measures: Array.from({ length: r.rows.rowCount }, (_, i) => Object.fromEntries(GRAB_COLUMNS.map((c, k) => [c.name, cols[k][i]]))),
      });
    } else {
      await writeCsv(table, ctx.stdout as never, { threads: 0, signal: ctx.signal });
    }
    return EXIT.ok;
  },
};

const exportBoxCommand: Command = {
  name: 'export-box',
  summary: 'copy the regions overlapping a box of sky into a scratch database (kept up to date like rsync)',
  usage: '--db DIR --box RA0,RA1,DEC0,DEC1 [--scratch URL] [--json]',
  options: {
    db: dbDir, json, box: { type: 'string', value: 'RA0,RA1,DEC0,DEC1', help: 'the box, degrees' },
    scratch: { type: 'string', value: 'URL', help: 'the scratch database (default sqlite:ipp-data/dvo-scratch.db)' }, 'lock-timeout': lockTimeout,
  },
  async run(args, ctx) {
    const box = parseBox(str(args, 'box'));
    const url = str(args, 'scratch') ?? 'sqlite:ipp-data/dvo-scratch.db';
    const t0 = performance.now();
    const r = await exportBox(onlyDir(args, ctx), box, url, { log: log(ctx), signal: ctx.signal, ...lockMs(args) });
    const seconds = (performance.now() - t0) / 1000;
    if (args.values.json) printJson(ctx, { ...r, seconds });
    else ctx.stdout.write(`${url}: ${r.regions} regions (${r.kept} kept, ${r.imported} imported: ${r.objects} objects, ${r.measures} measures; ${r.dropped} dropped)${r.tablesRefreshed.length ? `, refreshed ${r.tablesRefreshed.join(', ')}` : ''} in ${seconds.toFixed(2)} s\n`);
    return EXIT.ok;
  },
};

const region: Command = {
  name: 'region',
  summary: 'the objects of one region with their mean photometry (for OB batches)',
  usage: '--db DIR NAME|INDEX [--out FILE.fits|FILE.csv]',
  options: { db: dbDir, out: { type: 'string', value: 'FILE', help: 'write to a FITS or CSV file (default: CSV to standard output)' }, 'lock-timeout': lockTimeout },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one region, by name (n0000/00123) or SkyTable index');
    const which = /^[0-9]+$/.test(args.positionals[0]) ? Number(args.positionals[0]) : args.positionals[0];
    const out = outputFile(args);
    const r = await exportRegion(dir(args, ctx), which, { log: log(ctx), ...lockMs(args) });
    const table = memoryTable(r.columns, [r.rows], { name: 'DVO_OBJECTS' });
    if (!out) await writeCsv(table, ctx.stdout as never, { threads: 0, signal: ctx.signal });
    else {
      await out.write(table);
      ctx.stdout.write(`${out.path}: ${r.rows.rowCount} objects of region ${r.region.name}\n`);
    }
    return EXIT.ok;
  },
};

const stats: Command = {
  name: 'stats',
  summary: 'what a DVO database holds: regions, objects, measures, images, size',
  usage: '--db DIR [--json]',
  options: { db: dbDir, json },
  async run(args, ctx) {
    const s = await dvoStats(onlyDir(args, ctx));
    if (args.values.json) printJson(ctx, s);
    else {
      ctx.stdout.write(`${s.dir}: ${s.objects} objects, ${s.measures} measures, ${s.images} images${s.pendingImages ? ` (${s.pendingImages} pending)` : ''}\n`);
      ctx.stdout.write(`  ${s.regionsWithData} of ${s.regions} regions hold data, ${(s.bytes / 1e6).toFixed(1)} MB${s.compressed ? ' (tile-compressed)' : ''}; regions sized for ${s.maxObjects} objects; filters ${s.filters.join(' ')}\n`);
      if (s.largest) ctx.stdout.write(`  largest region ${s.largest.name}: ${s.largest.objects} objects, ${s.largest.measures} measures\n`);
    }
    return EXIT.ok;
  },
};

const regions: Command = {
  name: 'regions',
  summary: 'list the sky regions (those overlapping a box), with their objects and measures',
  usage: '--db DIR [--box RA0,RA1,DEC0,DEC1] [--all] [--json]',
  options: { db: dbDir, json, box: { type: 'string', value: 'RA0,RA1,DEC0,DEC1', help: 'only regions overlapping this box' }, all: { type: 'boolean', help: 'also regions without data' } },
  async run(args, ctx) {
    const box = str(args, 'box') === undefined ? undefined : parseBox(str(args, 'box'));
    const list = (await listRegions(onlyDir(args, ctx), box)).filter((r) => args.values.all || r.bytes > 0);
    if (args.values.json) printJson(ctx, list);
    else {
      ctx.stdout.write(`${'index'.padStart(6)} ${'name'.padEnd(12)} ${'ra'.padStart(19)} ${'dec'.padStart(15)} ${'objects'.padStart(9)} ${'measures'.padStart(10)}\n`);
      for (const r of list) {
        ctx.stdout.write(`${String(r.index).padStart(6)} ${r.name.padEnd(12)} ${`${r.raMin.toFixed(3)}..${r.raMax.toFixed(3)}`.padStart(19)} ${`${r.decMin.toFixed(2)}..${r.decMax.toFixed(2)}`.padStart(15)} ${String(r.objects).padStart(9)} ${String(r.measures).padStart(10)}\n`);
      }
    }
    return EXIT.ok;
  },
};

const verify: Command = {
  name: 'verify',
  summary: 'check a DVO database: objects of every measure, counts, unique IDs, image index, pending ingests',
  usage: '--db DIR [--fits] [--json]',
  description: 'Exit status 1 when anything is wrong; the faults are listed.',
  options: { db: dbDir, json, fits: { type: 'boolean', help: 'also check every file with the FITS verifier' }, 'lock-timeout': lockTimeout },
  async run(args, ctx) {
    const r = await verifyDvo(onlyDir(args, ctx), { fits: Boolean(args.values.fits), log: log(ctx), signal: ctx.signal, ...lockMs(args) });
    if (args.values.json) printJson(ctx, r);
    else {
      for (const f of r.faults) ctx.stdout.write(`FAULT [${f.code}] ${f.message}\n`);
      ctx.stdout.write(`${r.faults.length === 0 ? 'OK' : 'FAILED'}: ${r.regions} regions, ${r.objects} objects, ${r.measures} measures, ${r.images} images${r.filesChecked ? `, ${r.filesChecked} files FITS-checked` : ''}, ${r.faults.length} faults\n`);
    }
    return r.faults.length === 0 ? EXIT.ok : EXIT.failed;
  },
};

/** `ipp dvo ...`. */
export const dvoGroup: CommandGroup = {
  name: 'dvo',
  summary: 'the DVO object database: addstar, merge, grab by IMAGEID, box pre-ingest, regions, stats, verify',
  commands: [addstarCommand, merge, grab, exportBoxCommand, region, stats, regions, verify],
};
