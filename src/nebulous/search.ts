// Pattern search over keys, the reason the original chose a central server. The keys are
// scanned in key order, in chunks that travel as one string each (a million one-row objects
// would cost more than the scan), over only the index range the pattern's literal prefix
// allows; SQLite's GLOB or PostgreSQL's LIKE drops most non-matches before they leave the
// database, and the exact test runs here.
import type { Queryable, SqlValue } from '../db/index.ts';
import { prefixUpperBound, type KeyPattern } from './key.ts';

/** Options of {@link searchKeys}. */
export interface SearchOptions {
  /** Stop after this many matches (default: all). */
  readonly limit?: number;
  /** Keys per database round trip (default 100,000). */
  readonly chunk?: number;
  readonly signal?: AbortSignal;
}

/** The live keys that match a pattern, in key order, a batch at a time. */
export async function* searchKeys(q: Queryable, pattern: KeyPattern, options: SearchOptions = {}): AsyncGenerator<string[]> {
  const chunk = Math.max(1, Math.floor(options.chunk ?? 100_000));
  let remaining = options.limit ?? Infinity;
  const upper = pattern.prefix === '' ? undefined : prefixUpperBound(pattern.prefix);
  const where: string[] = ['tomb = 0', 'ext_id >= ?'];
  const fixed: SqlValue[] = [];
  if (upper !== undefined) { where.push('ext_id < ?'); fixed.push(upper); }
  if (q.dialect.engine === 'sqlite' && pattern.sqliteGlob !== undefined && pattern.sqliteGlob !== pattern.prefix) {
    where.push('ext_id GLOB ?');
    fixed.push(pattern.sqliteGlob);
  } else if (q.dialect.engine === 'postgres' && pattern.like !== undefined) {
    // `ext_id || ''` is what the trigram index holds (see migrations.ts).
    where.push("(ext_id || '') LIKE ? ESCAPE '\\'");
    fixed.push(pattern.like);
  } else if (q.dialect.engine === 'postgres' && pattern.postgresRegex !== undefined) {
    where.push("(ext_id || '') ~ ?");
    fixed.push(pattern.postgresRegex);
  }
  const page = (start: string): string => {
    const inner = `SELECT ext_id FROM neb_storage_object WHERE ${where.join(' AND ').replace('ext_id >= ?', start)} ORDER BY ext_id LIMIT ${chunk}`;
    // The page is already in key order; an ORDER BY inside the aggregate would sort it again (2-3x slower on SQLite).
    return q.dialect.engine === 'postgres'
      ? `SELECT string_agg(ext_id, E'\\n') AS keys, count(*) AS n, max(ext_id) AS last FROM (${inner}) AS page`
      : `SELECT group_concat(ext_id, char(10)) AS keys, count(*) AS n, max(ext_id) AS last FROM (${inner})`;
  };
  const first = page('ext_id >= ?');
  const next = page('ext_id > ?');
  // The first page starts at the prefix itself; later pages start after the last key seen.
  let from = pattern.prefix;
  let inclusive = true;
  const test = pattern.regex;
  while (remaining > 0) {
    options.signal?.throwIfAborted();
    const row = await q.get<{ keys: string | null; n: number; last: string | null }>(inclusive ? first : next, [from, ...fixed]);
    const n = Number(row?.n ?? 0);
    if (n === 0 || row?.keys == null || row.last == null) return;
    const matches: string[] = [];
    for (const key of row.keys.split('\n')) {
      if (test.test(key)) {
        matches.push(key);
        if (--remaining === 0) break;
      }
    }
    if (matches.length > 0) yield matches;
    if (n < chunk) return;
    from = row.last;
    inclusive = false;
  }
}
