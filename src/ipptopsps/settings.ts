// The settings file: what does not change per loading campaign (database URLs, where batches
// and logs go, the services' addresses). JSON, checked field by field when read; a bad field
// is an error naming the file and the field. The CLI merges it under its flags.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { IppToPspsError } from './errors.ts';

/** The resolved settings every ippToPsps program runs with (frozen). */
export interface IppToPspsSettings {
  /** The tracking database URL. */
  readonly trackingDb: string;
  /** The gpc1 database URL (queue reads addRun, camRun, stacks from it). */
  readonly gpc1Db: string;
  /** Where loaders keep their local copies of batches (`<dataDir>/<config>/<type>/<batch>/`). */
  readonly dataDir: string;
  /** Where programs write their log files; undefined = stdout only. */
  readonly logDir?: string;
  /** A scratch database for the box pre-ingest; undefined = take a registered one, else embedded. */
  readonly scratchUrl?: string;
  readonly datastoreUrl?: string;
  readonly datastoreToken?: string;
  readonly odmUrl?: string;
  readonly odmToken?: string;
  /** The settings file these came from, if any. */
  readonly file?: string;
}

/** The fields a settings file may hold (camelCase keys of {@link IppToPspsSettings}, less `file`). */
export const SETTINGS_FIELDS = Object.freeze([
  'trackingDb', 'gpc1Db', 'dataDir', 'logDir', 'scratchUrl', 'datastoreUrl', 'datastoreToken', 'odmUrl', 'odmToken',
] as const);

/** One field of a settings file. */
export type SettingsField = (typeof SETTINGS_FIELDS)[number];

/** What a settings file held, checked; relative paths already resolved against the file's directory. */
export type SettingsFileValues = Partial<Record<SettingsField, string>>;

const PATH_FIELDS: readonly SettingsField[] = ['dataDir', 'logDir'];
const DB_FIELDS: readonly SettingsField[] = ['trackingDb', 'gpc1Db', 'scratchUrl'];
const HTTP_FIELDS: readonly SettingsField[] = ['datastoreUrl', 'odmUrl'];

/**
 * Reads and checks a settings file. Unknown fields, non-string values, bad URLs are
 * `settings_invalid` errors naming the file and the field; relative directories and
 * `sqlite:` paths are taken relative to the file.
 */
export async function readSettingsFile(path: string): Promise<SettingsFileValues> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new IppToPspsError('settings_unreadable', `settings file ${path} cannot be read: ${(cause as Error).message}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new IppToPspsError('settings_invalid', `settings file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new IppToPspsError('settings_invalid', `settings file ${path} must hold one JSON object with the fields ${SETTINGS_FIELDS.join(', ')}`);
  }
  const base = dirname(resolve(path));
  const out: SettingsFileValues = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const bad = (what: string): never => {
      throw new IppToPspsError('settings_invalid', `settings file ${path}: field "${key}" ${what}`);
    };
    if (!(SETTINGS_FIELDS as readonly string[]).includes(key)) bad(`is not a settings field; the fields are ${SETTINGS_FIELDS.join(', ')}`);
    const field = key as SettingsField;
    if (value === null) continue;
    if (typeof value !== 'string') bad(`must be a string, not ${Array.isArray(value) ? 'an array' : typeof value}`);
    const v = (value as string).trim();
    if (v === '') bad('is empty (leave it out for the default)');
    if (PATH_FIELDS.includes(field)) out[field] = isAbsolute(v) ? v : resolve(base, v);
    else if (DB_FIELDS.includes(field)) out[field] = checkDbUrl(v, base, bad);
    else if (HTTP_FIELDS.includes(field)) out[field] = checkHttpUrl(v, bad);
    else out[field] = v;
  }
  return out;
}

function checkDbUrl(v: string, base: string, bad: (what: string) => never): string {
  if (v.startsWith('sqlite:')) {
    const p = v.slice('sqlite:'.length);
    if (p === '') bad('names no SQLite file (sqlite:PATH)');
    return p === ':memory:' || isAbsolute(p) ? v : `sqlite:${resolve(base, p)}`;
  }
  if (/^postgres(ql)?:\/\//.test(v)) {
    try { new URL(v); } catch { bad(`is not a valid URL: ${v}`); }
    return v;
  }
  return bad(`must be sqlite:PATH or postgres://user@host/db, not ${v}`);
}

function checkHttpUrl(v: string, bad: (what: string) => never): string {
  let url: URL;
  try { url = new URL(v); } catch { return bad(`is not a valid URL: ${v}`); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad(`must be an http:// or https:// URL, not ${v}`);
  return v.replace(/\/+$/, '');
}

/** Defaults when neither flag, settings file nor environment say: everything embedded under ./ipp-data. */
export const DEFAULT_SETTINGS = Object.freeze({
  trackingDb: 'sqlite:ipp-data/ipptopsps.db',
  gpc1Db: 'sqlite:ipp-data/gpc1.db',
  dataDir: 'ipp-data/ipptopsps',
});
