// Registration: an exposure enters the database as one rawExp row and one rawImfile row per
// chip (with the newExp/newImfile rows of the download step, which give the exp_id). A raw
// exposure may be registered only once.
import { DbError, insertRows, type Database, type SqlValue } from '../db/index.ts';
import { Gpc1Error } from './errors.ts';
import { CHAIN, type ColumnKind } from './stages.ts';
import { chunks, marks, moveSequencePast, now } from './sql.ts';
import { checkKeys, checkName, checkTime, checkValue } from './values.ts';

/** One chip of an exposure, as registered in rawImfile. */
export interface ImfileSpec {
  /** The chip, e.g. XY01. */
  readonly class_id: string;
  readonly uri?: string | null;
  readonly bytes?: number | null;
  readonly md5sum?: string | null;
  readonly hostname?: string | null;
  readonly bg?: number | null;
  readonly bg_stdev?: number | null;
  readonly ccd_temp?: number | null;
  readonly burntool_state?: number | null;
  /** An ignored chip is not processed (and not waited for). */
  readonly ignored?: boolean;
  readonly quality?: number;
}

/** An exposure with its metadata and its chips, as registered in rawExp/rawImfile. */
export interface ExposureSpec {
  /**
   * An exposure ID assigned before registration (a simulated survey names its exposures, and
   * the smf files carry IMAGEID = 100 × exp_id + chip); by default the database assigns one.
   */
  readonly exp_id?: number;
  readonly exp_name: string;
  readonly camera: string;
  readonly telescope: string;
  /** Start of the exposure, ISO-8601 (stored as UTC). */
  readonly dateobs?: string | null;
  readonly exp_tag?: string | null;
  readonly exp_type?: string | null;
  readonly filelevel?: string | null;
  readonly filter?: string | null;
  readonly comment?: string | null;
  readonly obs_mode?: string | null;
  readonly obs_group?: string | null;
  readonly object?: string | null;
  readonly hostname?: string | null;
  readonly airmass?: number | null;
  readonly ra?: number | null;
  readonly decl?: number | null;
  readonly exp_time?: number | null;
  readonly sat_pixel_frac?: number | null;
  readonly bg?: number | null;
  readonly bg_stdev?: number | null;
  readonly bg_mean_stdev?: number | null;
  readonly alt?: number | null;
  readonly az?: number | null;
  readonly ccd_temp?: number | null;
  readonly posang?: number | null;
  readonly sun_angle?: number | null;
  readonly sun_alt?: number | null;
  readonly moon_angle?: number | null;
  readonly moon_alt?: number | null;
  readonly moon_phase?: number | null;
  /** Defaults for the chip runs defined from this exposure. */
  readonly workdir?: string | null;
  readonly reduction?: string | null;
  readonly dvodb?: string | null;
  readonly tess_id?: string | null;
  readonly end_stage?: string | null;
  /** The download step's label (newExp.label). */
  readonly label?: string | null;
  readonly imfiles: readonly ImfileSpec[];
}

const EXP_COLUMNS: Readonly<Record<string, ColumnKind>> = {
  dateobs: 'text', exp_tag: 'text', exp_type: 'text', filelevel: 'text', filter: 'text', comment: 'text',
  obs_mode: 'text', obs_group: 'text', object: 'text', hostname: 'text',
  airmass: 'real', ra: 'real', decl: 'real', exp_time: 'real', sat_pixel_frac: 'real', bg: 'real', bg_stdev: 'real',
  bg_mean_stdev: 'real', alt: 'real', az: 'real', ccd_temp: 'real', posang: 'real', sun_angle: 'real', sun_alt: 'real',
  moon_angle: 'real', moon_alt: 'real', moon_phase: 'real',
  workdir: 'text', reduction: 'text', dvodb: 'text', tess_id: 'text', end_stage: 'text',
};
const IMFILE_COLUMNS: Readonly<Record<string, ColumnKind>> = {
  uri: 'text', bytes: 'bigint', md5sum: 'text', hostname: 'text', bg: 'real', bg_stdev: 'real', ccd_temp: 'real',
  burntool_state: 'int', quality: 'int',
};
const IMFILE_ENTRIES = Object.entries(IMFILE_COLUMNS);
const EXP_KEYS = new Set(['exp_id', 'exp_name', 'camera', 'telescope', 'label', 'imfiles', ...Object.keys(EXP_COLUMNS)]);
const IMFILE_KEYS = new Set(['class_id', 'ignored', ...Object.keys(IMFILE_COLUMNS)]);

/** Registers one exposure and its chips; returns its exp_id. */
export async function registerExposure(db: Database, exposure: ExposureSpec): Promise<number> {
  return (await registerExposures(db, [exposure]))[0]!;
}

/**
 * Registers many exposures in one transaction with a few set-based inserts; returns their
 * exp_ids in the order given. Nothing is registered if any is invalid or already known.
 */
export async function registerExposures(db: Database, exposures: readonly ExposureSpec[]): Promise<number[]> {
  if (!Array.isArray(exposures)) throw new Gpc1Error('gpc1_bad_input', 'give a list of exposures to register');
  if (exposures.length === 0) return [];
  const checked = exposures.map((e, i) => checkExposure(e, i));
  const names = new Set<string>();
  for (const e of checked) {
    if (names.has(e.id)) throw new Gpc1Error('gpc1_duplicate_exposure', `exposure ${e.id} is given twice; register each exposure once`);
    names.add(e.id);
  }
  const time = now();
  try {
    return await db.transaction(async (tx) => {
      for (const part of chunks(checked)) {
        const known = await tx.all<{ exp_name: string; camera: string; telescope: string }>(
          `SELECT exp_name, camera, telescope FROM rawExp WHERE exp_name IN (${marks(part.length)})`, part.map((e) => e.exp_name));
        const clash = known.map(identity).filter((id) => names.has(id));
        if (clash.length > 0) {
          throw new Gpc1Error('gpc1_duplicate_exposure',
            `exposure ${clash.slice(0, 5).join(', ')}${clash.length > 5 ? ` and ${clash.length - 5} more` : ''} is already registered; a raw exposure is registered only once`);
        }
      }
      const newExpColumns = ['tmp_exp_name', 'tmp_camera', 'tmp_telescope', 'state', 'workdir', 'reduction', 'dvodb', 'tess_id', 'end_stage', 'label', 'registered'];
      const newExpRow = (e: CheckedExposure): SqlValue[] => [e.exp_name, e.camera, e.telescope, 'full', e.values.workdir ?? null,
        e.values.reduction ?? null, e.values.dvodb ?? null, e.values.tess_id ?? null, e.values.end_stage ?? null, e.label, time];
      const given = checked.filter((e) => e.exp_id !== null);
      const idOf = new Map(given.map((e) => [e.id, e.exp_id!]));
      for (const part of chunks(given)) {
        const taken = await tx.all<{ exp_id: number; exp_name: string | null }>(
          `SELECT n.exp_id, r.exp_name FROM newExp n LEFT JOIN rawExp r ON r.exp_id = n.exp_id WHERE n.exp_id IN (${marks(part.length)})`, part.map((e) => e.exp_id));
        if (taken.length > 0) {
          throw new Gpc1Error('gpc1_duplicate_exposure', `exp_id ${taken.map((t) => `${t.exp_id}${t.exp_name ? ` (${t.exp_name})` : ''}`).slice(0, 5).join(', ')}${taken.length > 5 ? ` and ${taken.length - 5} more` : ''} is already registered; give other exp_ids, or none to have them assigned`);
        }
      }
      if (given.length > 0) {
        await insertRows(tx, 'newExp', ['exp_id', ...newExpColumns], given.map((e) => [e.exp_id, ...newExpRow(e)]));
        await moveSequencePast(tx, 'newExp', 'exp_id');
      }
      const made = await insertRows<{ exp_id: number; tmp_exp_name: string; tmp_camera: string; tmp_telescope: string }>(tx, 'newExp',
        newExpColumns, checked.filter((e) => e.exp_id === null).map(newExpRow),
        { returning: ['exp_id', 'tmp_exp_name', 'tmp_camera', 'tmp_telescope'] });
      for (const r of made) idOf.set(`${r.tmp_exp_name} (${r.tmp_camera}, ${r.tmp_telescope})`, Number(r.exp_id));
      const ids = checked.map((e) => idOf.get(e.id)!);
      const expColumns = Object.keys(EXP_COLUMNS);
      await insertRows(tx, 'rawExp', ['exp_id', 'exp_name', 'camera', 'telescope', 'state', 'fault', 'registered', ...expColumns],
        checked.map((e, i) => [ids[i]!, e.exp_name, e.camera, e.telescope, 'full', 0, time, ...expColumns.map((c) => e.values[c] ?? null)]));
      await insertRows(tx, 'newImfile', ['exp_id', 'tmp_class_id', 'uri', 'bytes', 'md5sum', 'registered'],
        checked.flatMap((e, i) => e.imfiles.map((f) => [ids[i]!, f.class_id, f.values.uri ?? null, f.values.bytes ?? null, f.values.md5sum ?? null, time])));
      const imColumns = Object.keys(IMFILE_COLUMNS);
      await insertRows(tx, 'rawImfile', ['exp_id', 'class_id', 'data_state', 'ignored', 'fault', 'registered', ...imColumns],
        checked.flatMap((e, i) => e.imfiles.map((f) => [ids[i]!, f.class_id, 'full', f.ignored, 0, time, ...imColumns.map((c) => c === 'quality' ? f.values[c] ?? 0 : f.values[c] ?? null)])));
      return ids;
    });
  } catch (error) {
    if (error instanceof DbError && error.code === 'db_constraint') {
      throw new Gpc1Error('gpc1_duplicate_exposure', `an exposure of this batch was registered by another process meanwhile; nothing of the batch was registered (${error.message})`, { cause: error });
    }
    throw error;
  }
}

interface CheckedExposure {
  id: string;
  exp_id: number | null;
  exp_name: string;
  camera: string;
  telescope: string;
  label: string | null;
  values: Record<string, SqlValue>;
  imfiles: { class_id: string; ignored: number; values: Record<string, SqlValue> }[];
}

function identity(e: { exp_name: string; camera: string; telescope: string }): string {
  return `${e.exp_name} (${e.camera}, ${e.telescope})`;
}

function checkExposure(e: ExposureSpec, index: number): CheckedExposure {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new Gpc1Error('gpc1_bad_input', `exposure ${index + 1} must be an object`);
  const where = `exposure ${typeof e.exp_name === 'string' ? e.exp_name : index + 1}`;
  checkKeys(e, EXP_KEYS, where);
  const exp_name = checkName(e.exp_name, `${where}: exp_name`);
  const camera = checkName(e.camera, `${where}: camera`);
  const telescope = checkName(e.telescope, `${where}: telescope`);
  const values: Record<string, SqlValue> = {};
  for (const [column, kind] of Object.entries(EXP_COLUMNS)) values[column] = checkValue(kind, e[column as keyof ExposureSpec], `${where}: ${column}`);
  if (values.dateobs !== null) values.dateobs = checkTime(values.dateobs, `${where}: dateobs`);
  if (values.end_stage !== null && !CHAIN.includes(values.end_stage as never)) {
    throw new Gpc1Error('gpc1_bad_input', `${where}: end_stage "${values.end_stage}" must be one of ${CHAIN.join(', ')}`);
  }
  const label = checkValue('text', e.label, `${where}: label`) as string | null;
  if (!Array.isArray(e.imfiles) || e.imfiles.length === 0) {
    throw new Gpc1Error('gpc1_bad_input', `${where}: imfiles must list the exposure's chips (class_id XY01...); an exposure without chips cannot be processed`);
  }
  const seen = new Set<string>();
  const imfiles = e.imfiles.map((f, i) => {
    if (f === null || typeof f !== 'object') throw new Gpc1Error('gpc1_bad_input', `${where}: imfile ${i + 1} must be an object`);
    const class_id = checkName(f.class_id, () => `${where}: imfile ${i + 1} class_id`);
    checkKeys(f, IMFILE_KEYS, () => `${where}, chip ${class_id}`);
    if (seen.has(class_id)) throw new Gpc1Error('gpc1_bad_input', `${where}: chip ${class_id} is listed twice`);
    seen.add(class_id);
    if (f.ignored !== undefined && typeof f.ignored !== 'boolean') throw new Gpc1Error('gpc1_bad_input', `${where}, chip ${class_id}: ignored must be true or false`);
    const fv: Record<string, SqlValue> = {};
    for (const [column, kind] of IMFILE_ENTRIES) fv[column] = checkValue(kind, f[column as keyof ImfileSpec], () => `${where}, chip ${class_id}: ${column}`);
    return { class_id, ignored: f.ignored ? 1 : 0, values: fv };
  });
  let exp_id: number | null = null;
  if (e.exp_id !== undefined) {
    if (!Number.isSafeInteger(e.exp_id) || e.exp_id <= 0) throw new Gpc1Error('gpc1_bad_input', `${where}: exp_id must be a positive whole number, not ${JSON.stringify(e.exp_id)}`);
    exp_id = e.exp_id;
  }
  return { id: identity({ exp_name, camera, telescope }), exp_id, exp_name, camera, telescope, label, values, imfiles };
}
