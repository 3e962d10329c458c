// Checking values that callers (and JSON files) hand in, so that bad input is a Gpc1Error
// naming the field, never a database error or a silent NULL.
import { Gpc1Error } from './errors.ts';
import type { ColumnKind } from './stages.ts';
import type { SqlValue } from '../db/index.ts';

/** Names a field for a message; a function when building the name costs more than the check (hot loops). */
export type What = string | (() => string);

function named(what: What): string {
  return typeof what === 'string' ? what : what();
}

/** A value checked against a column kind; `what` names the field for the message. */
export function checkValue(kind: ColumnKind, value: unknown, what: What): SqlValue {
  if (value === null || value === undefined) return null;
  if (kind === 'text') {
    if (typeof value === 'string') return value;
    throw new Gpc1Error('gpc1_bad_input', `${named(what)} must be text, not ${describe(value)}`);
  }
  if (kind === 'int') {
    // INTEGER columns: 32 bits on PostgreSQL, so the same range on SQLite.
    if (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) return value;
    throw new Gpc1Error('gpc1_bad_input', `${named(what)} must be a whole number from ${-(2 ** 31)} to ${2 ** 31 - 1}, not ${describe(value)}`);
  }
  if (kind === 'bigint') {
    if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
    if (typeof value === 'bigint') return value;
    throw new Gpc1Error('gpc1_bad_input', `${named(what)} must be a whole number, not ${describe(value)}`);
  }
  // A real: NaN is no value (NULL); an infinity is refused, not stored as NULL.
  if (typeof value === 'number' && Number.isNaN(value)) return null;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new Gpc1Error('gpc1_bad_input', `${named(what)} must be a finite number, not ${describe(value)}`);
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * An ISO-8601 time (a date, or a date and time; UTC unless it names its offset) as its UTC
 * ISO string. Anything else, or a day or time that does not exist (2010-02-30), is refused.
 */
export function checkTime(value: unknown, what: What): string {
  const m = typeof value === 'string' ? ISO_TIME.exec(value.trim()) : null;
  if (m) {
    const [, y, mo, d, h = '00', mi = '00', sec = '00', fraction = '', zone = 'Z'] = m;
    const daysInMonth = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
    const exists = Number(mo) >= 1 && Number(mo) <= 12 && Number(d) >= 1 && Number(d) <= daysInMonth
      && Number(h) <= 23 && Number(mi) <= 59 && Number(sec) <= 59;
    const t = new Date(`${y}-${mo}-${d}T${h}:${mi}:${sec}${fraction}${zone.toUpperCase()}`);
    if (exists && !Number.isNaN(t.getTime())) return t.toISOString();
  }
  throw new Gpc1Error('gpc1_bad_input', `${named(what)} ${describe(value)} is not an ISO-8601 time such as 2010-05-01T10:11:12Z`);
}

/** A run id (or any row id): a positive whole number. */
export function checkId(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  throw new Gpc1Error('gpc1_bad_input', `${what} must be a positive whole number, not ${describe(value)}`);
}

/** A non-empty list of ids, without repeats. */
export function checkIds(values: unknown, what: string): number[] {
  if (!Array.isArray(values) || values.length === 0) {
    throw new Gpc1Error('gpc1_bad_input', `${what} must be a non-empty list of ids`);
  }
  const ids = values.map((v, i) => checkId(v, `${what}[${i}]`));
  return [...new Set(ids)];
}

/** A required, non-empty text field. */
export function checkName(value: unknown, what: What): string {
  if (typeof value === 'string' && value.trim() !== '') return value;
  throw new Gpc1Error('gpc1_bad_input', `${named(what)} is required (non-empty text), got ${describe(value)}`);
}

/** A fault or quality code: a whole number from 0 to 32767 (the original's SMALLINT). */
export function checkCode(value: unknown, what: What): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 32767) return value;
  throw new Gpc1Error('gpc1_bad_input', `${named(what)} must be a whole number from 0 to 32767, not ${describe(value)}`);
}

/** Refuses keys that are not in `known`, so a misspelt field is an error rather than lost. */
export function checkKeys(object: object, known: ReadonlySet<string>, what: What): void {
  let unknown: string[] | undefined;
  for (const k in object) if (!known.has(k)) (unknown ??= []).push(k);
  if (unknown !== undefined) {
    throw new Gpc1Error('gpc1_unknown_column',
      `${named(what)}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the fields are ${[...known].join(', ')}`);
  }
}

/** A value shown in a message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}`;
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (typeof value === 'object') return 'an object';
  return String(value);
}
