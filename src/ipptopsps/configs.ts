// Loading configs: one row of the `config` table per loading campaign. The fields are listed
// once here with the type the prompts show, their default and their check, so that the
// interactive editor, `ipp config set` and every program validate the same way.
import type { Queryable, Row, SqlValue } from '../db/index.ts';
import { IppToPspsError } from './errors.ts';

/** A loading config as programs use it (values checked, types converted). */
export interface LoadingConfig {
  readonly name: string;
  readonly datastore_product: string;
  readonly datastore_type: string;
  readonly datastore_publish: boolean;
  readonly dvo_label: string;
  readonly dvo_location: string;
  readonly gpc1_label: string;
  readonly min_ra: number;
  readonly max_ra: number;
  readonly min_dec: number;
  readonly max_dec: number;
  readonly box_size: number;
  readonly epoch: string;
  readonly batch_types: readonly BatchType[];
  readonly delete_datastore_on: readonly string[];
  readonly delete_dxlayer_on: readonly string[];
  readonly delete_local_on: readonly string[];
  readonly max_attempts: number;
  readonly active: boolean;
  readonly updated_at: string;
}

/** The batch types the queue holds (IN is made once by `ipp loader CONFIG init`). */
export type BatchType = 'P2' | 'ST' | 'OB';

/** Every batch type, IN included. */
export type AnyBatchType = BatchType | 'IN';

/** The batch types that are queued, in queue order. */
export const QUEUED_BATCH_TYPES: readonly BatchType[] = Object.freeze(['P2', 'ST', 'OB']);

/** The batch states a deletion policy may name. */
export const DELETION_TRIGGERS: readonly string[] = Object.freeze(['loaded', 'merge_worthy', 'merged', 'failed', 'purged']);

/** One editable field of a config: its column, the type shown in prompts, its default and its check. */
export interface ConfigField {
  readonly name: Exclude<keyof LoadingConfig, 'name' | 'updated_at'>;
  /** The type shown in the prompt, as the original's MySQL column (`varchar(30)`, `double`...). */
  readonly sqlType: string;
  /** The default as typed text; undefined = the field must be given. */
  readonly defaultText?: string;
  readonly help: string;
  /** Checks text typed by a user and returns the value stored, or throws a message. */
  parse(text: string): SqlValue;
}

const varchar = (max: number, pattern?: RegExp, what?: string) => (text: string): string => {
  const v = text.trim();
  if (v === '') throw new Error('is empty');
  if (v.length > max) throw new Error(`is longer than ${max} characters`);
  if (pattern && !pattern.test(v)) throw new Error(what ?? `does not match ${pattern}`);
  return v;
};
const optionalText = (max: number) => (text: string): string => {
  const v = text.trim();
  if (v.length > max) throw new Error(`is longer than ${max} characters`);
  return v;
};
const flag = (text: string): number => {
  const v = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'y', 'on'].includes(v)) return 1;
  if (['0', 'false', 'no', 'n', 'off'].includes(v)) return 0;
  throw new Error('is not 0 or 1');
};
const number = (min: number, max: number) => (text: string): number => {
  const v = text.trim();
  if (v === '' || !Number.isFinite(Number(v))) throw new Error('is not a number');
  const n = Number(v);
  if (n < min || n > max) throw new Error(`is outside ${min}..${max}`);
  return n;
};
const positive = (max: number) => (text: string): number => {
  const n = number(0, max)(text);
  if (n <= 0) throw new Error('must be greater than 0');
  return n;
};
const integer = (min: number, max: number) => (text: string): number => {
  const n = number(min, max)(text);
  if (!Number.isInteger(n)) throw new Error('is not a whole number');
  return n;
};
const date = (text: string): string => {
  const v = text.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?Z?)?$/.exec(v);
  if (!m) throw new Error('is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)');
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}Z`);
  const back = new Date(t);
  if (Number.isNaN(t) || back.getUTCDate() !== Number(m[3]) || back.getUTCMonth() + 1 !== Number(m[2])) throw new Error('is not a valid date');
  return m[4] === undefined ? `${m[1]}-${m[2]}-${m[3]}` : back.toISOString();
};
const list = (allowed: readonly string[], allowEmpty: boolean) => (text: string): string => {
  const items = text.split(/[\s,]+/).map((s) => s.trim()).filter((s) => s !== '' && s.toLowerCase() !== 'never');
  if (items.length === 0 && !allowEmpty) throw new Error(`is empty; give some of ${allowed.join(',')}`);
  const bad = items.filter((s) => !allowed.includes(s));
  if (bad.length) throw new Error(`names ${bad.join(',')}; allowed: ${allowed.join(',')}`);
  return [...new Set(items)].sort((a, b) => allowed.indexOf(a) - allowed.indexOf(b)).join(',');
};

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+:-]*$/;

/** The editable fields of a config, in the order the editor asks for them. */
export const CONFIG_FIELDS: readonly ConfigField[] = Object.freeze([
  { name: 'datastore_product', sqlType: 'varchar(30)', help: 'datastore product the batches are published to', parse: varchar(30, NAME_PATTERN, 'is not a datastore name (letters, digits and . _ + : -)') },
  { name: 'datastore_type', sqlType: 'varchar(30)', defaultText: 'IPP_PSPS', help: 'fileset type of the published batches', parse: varchar(30, NAME_PATTERN, 'is not a datastore name (letters, digits and . _ + : -)') },
  { name: 'datastore_publish', sqlType: 'tinyint(1)', defaultText: '0', help: '1: publish batches to the datastore; 0: write them locally only', parse: flag },
  { name: 'dvo_label', sqlType: 'varchar(100)', help: 'the DVO database label (gpc1 addRun.dvodb)', parse: varchar(100) },
  { name: 'dvo_location', sqlType: 'varchar(1000)', help: 'the DVO database directory', parse: varchar(1000) },
  { name: 'gpc1_label', sqlType: 'varchar(100)', defaultText: '', help: 'only gpc1 runs of this label (empty: any label)', parse: optionalText(100) },
  { name: 'min_ra', sqlType: 'double', defaultText: '0', help: 'lowest RA of the region (deg)', parse: number(0, 360) },
  { name: 'max_ra', sqlType: 'double', defaultText: '360', help: 'highest RA of the region (deg)', parse: number(0, 360) },
  { name: 'min_dec', sqlType: 'double', defaultText: '-90', help: 'lowest Dec of the region (deg)', parse: number(-90, 90) },
  { name: 'max_dec', sqlType: 'double', defaultText: '90', help: 'highest Dec of the region (deg)', parse: number(-90, 90) },
  { name: 'box_size', sqlType: 'double', defaultText: '2', help: 'side of a queue box (deg); stripes are this wide in RA', parse: positive(180) },
  { name: 'epoch', sqlType: 'date', help: 'items published since this date count as loaded', parse: date },
  { name: 'batch_types', sqlType: 'varchar(20)', defaultText: 'P2,ST,OB', help: 'batch types queued', parse: list(QUEUED_BATCH_TYPES, false) },
  { name: 'delete_datastore_on', sqlType: 'varchar(100)', defaultText: 'merge_worthy,failed', help: 'ODM states after which the datastore copy is removed', parse: list(DELETION_TRIGGERS, true) },
  { name: 'delete_dxlayer_on', sqlType: 'varchar(100)', defaultText: 'merge_worthy,failed', help: 'ODM states after which the DXLayer copy is removed', parse: list(DELETION_TRIGGERS, true) },
  { name: 'delete_local_on', sqlType: 'varchar(100)', defaultText: 'merged', help: 'ODM states after which the local copy is removed', parse: list(DELETION_TRIGGERS, true) },
  { name: 'max_attempts', sqlType: 'int', defaultText: '3', help: 'an item that failed this many times is not queued again', parse: integer(1, 1000) },
  { name: 'active', sqlType: 'tinyint(1)', defaultText: '1', help: "1: programs run with 'all' take this config", parse: flag },
] satisfies ConfigField[]);

/** The words a program's config argument may not be, because they mean something else. */
export const RESERVED_CONFIG_NAMES: readonly string[] = Object.freeze(['all', 'edit']);

/** Why `name` cannot name a config, or undefined when it can. */
export function configNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > 64) return 'is longer than 64 characters';
  if (!NAME_PATTERN.test(name)) return 'may hold only letters, digits and . _ + : - (starting with a letter or digit)';
  if (RESERVED_CONFIG_NAMES.includes(name)) return `is reserved ('all' and 'edit' are program arguments)`;
  return undefined;
}

/** The field of this name, or a `config_field_unknown` error listing the fields. */
export function configField(name: string): ConfigField {
  const field = CONFIG_FIELDS.find((f) => f.name === name);
  if (!field) {
    throw new IppToPspsError('config_field_unknown', `"${name}" is not a config field; the fields are ${CONFIG_FIELDS.map((f) => f.name).join(', ')}`);
  }
  return field;
}

/** Checks one typed value of a field: the stored value, or a `config_value_invalid` error naming config and field. */
export function parseConfigValue(config: string, field: ConfigField, text: string): SqlValue {
  try {
    return field.parse(text);
  } catch (error) {
    throw new IppToPspsError('config_value_invalid', `config ${config}: ${field.name} (${field.sqlType}) ${JSON.stringify(text)} ${(error as Error).message}`);
  }
}

/** The config stored under `name`, or undefined. */
export async function findConfig(q: Queryable, name: string): Promise<LoadingConfig | undefined> {
  const row = await q.get('SELECT * FROM config WHERE name = ?', [name]);
  return row ? toConfig(row) : undefined;
}

/** The config stored under `name`, or a `config_unknown` error listing the ones there are. */
export async function getConfig(q: Queryable, name: string): Promise<LoadingConfig> {
  const found = await findConfig(q, name);
  if (found) return found;
  const names = (await q.all<{ name: string }>('SELECT name FROM config ORDER BY name')).map((r) => r.name);
  throw new IppToPspsError('config_unknown', `no config named "${name}" in the tracking database${names.length ? ` (there are: ${names.join(', ')})` : ' (there are none: create one with "ipp config set NAME field=value..." or "ipp queue edit")'}`);
}

/** Every config, by name; only the active ones when asked. */
export async function listConfigs(q: Queryable, options: { activeOnly?: boolean } = {}): Promise<LoadingConfig[]> {
  const rows = await q.all(`SELECT * FROM config${options.activeOnly ? ' WHERE active = 1' : ''} ORDER BY name`);
  return rows.map(toConfig);
}

/**
 * Creates or updates a config from typed text values (`field → text`). A new config needs
 * every field without a default; every value is checked; min < max is checked on the result.
 */
export async function saveConfig(q: Queryable, name: string, texts: Readonly<Record<string, string>>, now = new Date()): Promise<LoadingConfig> {
  const problem = configNameProblem(name);
  if (problem) throw new IppToPspsError('config_name_invalid', `config name "${name}" ${problem}`);
  const values = new Map<string, SqlValue>();
  for (const [key, text] of Object.entries(texts)) if (text !== undefined) values.set(key, parseConfigValue(name, configField(key), text));
  const existing = await findConfig(q, name);
  const merged = new Map<string, SqlValue>();
  for (const field of CONFIG_FIELDS) {
    if (values.has(field.name)) merged.set(field.name, values.get(field.name)!);
    else if (existing) merged.set(field.name, storedValue(existing, field.name));
    else if (field.defaultText !== undefined) merged.set(field.name, field.parse(field.defaultText));
    else throw new IppToPspsError('config_field_missing', `config ${name}: ${field.name} (${field.sqlType}) has no default; give it (${field.help})`);
  }
  checkConsistent(name, merged);
  const columns = [...merged.keys()];
  if (existing) {
    await q.run(`UPDATE config SET ${columns.map((c) => `${c} = ?`).join(', ')}, updated_at = ? WHERE name = ?`,
      [...merged.values(), now.toISOString(), name]);
  } else {
    await q.run(`INSERT INTO config (name, ${columns.join(', ')}, updated_at) VALUES (?, ${columns.map(() => '?').join(', ')}, ?)`,
      [name, ...merged.values(), now.toISOString()]);
  }
  return getConfig(q, name);
}

/** Sets the `active` flag of a config. */
export async function setConfigActive(q: Queryable, name: string, active: boolean, now = new Date()): Promise<LoadingConfig> {
  await getConfig(q, name);
  await q.run('UPDATE config SET active = ?, updated_at = ? WHERE name = ?', [active ? 1 : 0, now.toISOString(), name]);
  return getConfig(q, name);
}

/** The value of a field as the editor shows it (the text that would store it again). */
export function configFieldText(config: LoadingConfig, field: ConfigField['name']): string {
  const v = storedValue(config, field);
  return v === null ? '' : String(v);
}

/** A config as plain JSON (lists as comma-separated text, flags as 0/1, as stored). */
export function configToJson(config: LoadingConfig): Record<string, string | number> {
  const out: Record<string, string | number> = { name: config.name };
  for (const f of CONFIG_FIELDS) out[f.name] = storedValue(config, f.name) as string | number;
  out.updated_at = config.updated_at;
  return out;
}

function storedValue(config: LoadingConfig, field: ConfigField['name']): SqlValue {
  const v = config[field];
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (Array.isArray(v)) return v.join(',');
  return v as SqlValue;
}

function checkConsistent(name: string, v: Map<string, SqlValue>): void {
  if ((v.get('min_ra') as number) >= (v.get('max_ra') as number)) {
    throw new IppToPspsError('config_value_invalid', `config ${name}: min_ra ${v.get('min_ra')} must be below max_ra ${v.get('max_ra')}`);
  }
  if ((v.get('min_dec') as number) >= (v.get('max_dec') as number)) {
    throw new IppToPspsError('config_value_invalid', `config ${name}: min_dec ${v.get('min_dec')} must be below max_dec ${v.get('max_dec')}`);
  }
}

function splitList(v: unknown): string[] {
  return typeof v === 'string' && v !== '' ? v.split(',') : [];
}

/** A config row as read back, converted to the typed shape. */
export function toConfig(row: Row): LoadingConfig {
  return Object.freeze({
    name: String(row.name),
    datastore_product: String(row.datastore_product),
    datastore_type: String(row.datastore_type),
    datastore_publish: Number(row.datastore_publish) === 1,
    dvo_label: String(row.dvo_label),
    dvo_location: String(row.dvo_location),
    gpc1_label: String(row.gpc1_label ?? ''),
    min_ra: Number(row.min_ra),
    max_ra: Number(row.max_ra),
    min_dec: Number(row.min_dec),
    max_dec: Number(row.max_dec),
    box_size: Number(row.box_size),
    epoch: String(row.epoch),
    batch_types: Object.freeze(splitList(row.batch_types) as BatchType[]),
    delete_datastore_on: Object.freeze(splitList(row.delete_datastore_on)),
    delete_dxlayer_on: Object.freeze(splitList(row.delete_dxlayer_on)),
    delete_local_on: Object.freeze(splitList(row.delete_local_on)),
    max_attempts: Number(row.max_attempts),
    active: Number(row.active) === 1,
    updated_at: String(row.updated_at),
  });
}
