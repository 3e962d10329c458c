import { isAbsolute, resolve } from 'node:path';
import { DbError } from './errors.ts';

/** Where a database is, parsed from its URL. */
export type DbLocation =
  | { readonly engine: 'sqlite'; readonly path: string; readonly display: string }
  | { readonly engine: 'postgres'; readonly connectionString: string; readonly display: string };

const SQLITE_HELP = 'use sqlite:path/to/file.db, sqlite:/absolute/path.db or sqlite::memory:';
const POSTGRES_HELP = 'use postgres://user[:password]@host[:port]/database';

/**
 * Parses a database URL: `sqlite:relative/path.db`, `sqlite:/abs/path.db`,
 * `sqlite:///abs/path.db`, `sqlite::memory:`, or `postgres://` / `postgresql://`. Relative
 * SQLite paths are resolved against `cwd`. `display` is the URL without its password, for
 * messages and logs.
 */
export function parseDbUrl(url: string, cwd = process.cwd()): DbLocation {
  const text = url.trim();
  if (text === '') throw new DbError('db_url_invalid', `empty database URL: ${SQLITE_HELP}, or ${POSTGRES_HELP}`, { usage: true });
  if (text.startsWith('sqlite:')) {
    let rest = text.slice('sqlite:'.length);
    if (rest === ':memory:') return { engine: 'sqlite', path: ':memory:', display: 'sqlite::memory:' };
    if (rest.startsWith('//')) {
      rest = rest.slice(2);
      if (!rest.startsWith('/')) {
        throw new DbError('db_url_invalid', `database URL ${text} names a host; SQLite files are local: ${SQLITE_HELP}`, { usage: true });
      }
    }
    if (rest === '') throw new DbError('db_url_invalid', `database URL ${text} has no file path: ${SQLITE_HELP}`, { usage: true });
    const path = isAbsolute(rest) ? rest : resolve(cwd, rest);
    return { engine: 'sqlite', path, display: `sqlite:${path}` };
  }
  if (text.startsWith('postgres://') || text.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch (cause) {
      throw new DbError('db_url_invalid', `database URL ${redact(text)} is not a valid URL: ${POSTGRES_HELP}`, { cause, usage: true });
    }
    if (parsed.hostname === '' && !parsed.searchParams.has('host')) {
      throw new DbError('db_url_invalid', `database URL ${redact(text)} has no host: ${POSTGRES_HELP}`, { usage: true });
    }
    if (parsed.pathname.length <= 1) {
      throw new DbError('db_url_invalid', `database URL ${redact(text)} names no database: ${POSTGRES_HELP}`, { usage: true });
    }
    return { engine: 'postgres', connectionString: text, display: redact(text) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1];
  throw new DbError('db_url_invalid', scheme
    ? `database URL scheme "${scheme}:" is not supported: ${SQLITE_HELP}, or ${POSTGRES_HELP}`
    : `"${text}" is not a database URL: ${SQLITE_HELP}, or ${POSTGRES_HELP}`, { usage: true });
}

/** The URL with any password replaced by `***`. */
export function redact(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
