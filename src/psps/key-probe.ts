// Key look-ups in an archive table partitioned by batch (PostgreSQL). Looking a key up in the
// partitioned table descends every partition's key index, so in a live archive each staged row
// cost one probe per partition (300,000 P2 detections after four batches: validation 0.08 ->
// 0.93 s, merge 0.04 -> 1.99 s). Only a partition holding some key inside the staged rows' key
// range can match one of them: a single descent of each partition's key index tells which, and
// the look-ups go to those partitions alone, one statement each, so that PostgreSQL joins each
// partition the cheaper way for its size (walking both key indexes side by side over the staged
// range, or probing by index), which it cannot choose per partition under one query. A batch's
// detection, frame and image keys come from its own exposures, so they rarely interleave with
// another batch's and most loads look up none. Keys that recur across batches (object stubs of
// overlapping fields, merged by keep or replace) interleave with those of every partition of
// the same sky, so such a table has a key table besides (archive.ts): all its batch
// partitions' keys in one b-tree, kept by the merge (~0.3 s for 300,000 new stubs), where a
// staged key is looked up once whatever the partition count (after 20 batches of interleaving
// object IDs, the keep merge 1.80 -> 0.80 s), and where the stage looks up the stubs' keys
// before their COPY, so that those archived already are not staged (archivedKeys).
import type { Queryable } from '../db/index.ts';
import { PspsError } from './errors.ts';
import { quoteText } from './sql.ts';

/** The relations that can hold a staged key, and the staged keys' range. */
export interface KeyRangeHolders {
  /** Partitions, or a key table and a DEFAULT partition. */
  readonly partitions: readonly string[];
  /** A condition on a holder's rows, aliased a, that keeps a look-up inside the staged range. */
  readonly inRange: string;
}

/**
 * The key table of an archive table partitioned by batch whose keys recur across batches
 * (keep, replace): every key its batch partitions hold, one b-tree, kept by the merge.
 */
export function keyTableName(table: string): string {
  return `arck_${table.toLowerCase()}`;
}

/** The partitions of a partitioned table (its DEFAULT one included), by name, with their bounds as PostgreSQL writes them. */
export function partitionsOf(q: Queryable, parent: string): Promise<{ name: string; bound: string }[]> {
  return q.all<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = to_regclass(?) ORDER BY c.relname`, [parent.toLowerCase()]);
}

/** The DEFAULT partition of a partitioned table (rows written other than by a merge), if any. */
export async function defaultPartition(q: Queryable, parent: string): Promise<string | undefined> {
  const row = await q.get<{ name: string | null }>(
    'SELECT c.relname AS name FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partdefid WHERE p.partrelid = to_regclass(?)', [parent.toLowerCase()]);
  return row?.name ?? undefined;
}

// Those of `relations` holding a value of `column` between the least and the greatest of
// `staged`'s (none when it is empty).
async function holdersInRange(q: Queryable, relations: readonly string[], staged: string, column: string): Promise<KeyRangeHolders> {
  const none = { partitions: [], inRange: 'false' };
  if (relations.length === 0) return none;
  // the bounds as text literals, which PostgreSQL reads as the column's type: exact for every
  // key type, and estimated by the planner as the constants they are
  const range = await q.get<{ lo: string | null; hi: string | null }>(`SELECT min(${column})::text AS lo, max(${column})::text AS hi FROM ${staged}`);
  if (range?.lo == null || range.hi == null) return none;
  const inRange = `a.${column} BETWEEN ${quoteText(range.lo)} AND ${quoteText(range.hi)}`;
  // one query, one index descent per relation
  const rows = await q.all<{ name: string }>(relations.map((name) =>
    `SELECT ${quoteText(name)} AS name WHERE EXISTS (SELECT 1 FROM ${name} a WHERE ${inRange})`).join(' UNION ALL '));
  return { partitions: rows.map((r) => r.name), inRange };
}

/**
 * The partitions of `parent` (its DEFAULT partition included) holding a value of `column`, the
 * first column of the archive's key, between the least and the greatest of `staged`'s; with
 * `keyTable`, instead of its batch partitions, its key table (see {@link keyTableName}).
 */
export async function partitionsInKeyRange(q: Queryable, parent: string, staged: string, column: string, keyTable = false): Promise<KeyRangeHolders> {
  let relations: string[];
  if (keyTable) {
    const dflt = await defaultPartition(q, parent);
    relations = [keyTableName(parent), ...(dflt === undefined ? [] : [dflt])];
  } else {
    relations = (await partitionsOf(q, parent)).map((r) => r.name);
  }
  return holdersInRange(q, relations, staged, column);
}

/**
 * Runs `each` for every relation {@link partitionsInKeyRange} gives, with the condition that
 * keeps its look-up inside the staged range. Meanwhile (inside a transaction) the planner may
 * only walk both key indexes side by side or probe by index: the partitions attached from
 * staging tables have no statistics yet, and left to itself it sorted both sides on disk
 * (0.16 s a partition of 300,000 object stubs) or hashed the staged rows and read a whole
 * partition.
 */
export async function eachHoldingPartition<T>(
  q: Queryable, parent: string, staged: string, key: readonly string[], each: (partition: string, inRange: string) => Promise<T>, keyTable = false,
): Promise<T[]> {
  if (key.length === 0) return [];
  const { partitions, inRange } = await partitionsInKeyRange(q, parent, staged, key[0], keyTable);
  if (partitions.length === 0) return [];
  const out: T[] = [];
  const off = ['enable_hashjoin', 'enable_sort', 'enable_bitmapscan'];
  await q.exec(off.map((o) => `SET LOCAL ${o} = off`).join('; '));
  try {
    for (const p of partitions) out.push(await each(p, inRange));
  } finally {
    await q.exec(off.map((o) => `RESET ${o}`).join('; '));
  }
  return out;
}

/**
 * The rows of `partitions` as one relation (`columns` of each; a partition's columns may lie in
 * another order than its parent's), to be given an alias and looked up by key. PostgreSQL
 * pushes a key condition on it into each partition, so a look-up stays one index probe each.
 */
export function unionOf(partitions: readonly string[], columns: readonly string[]): string {
  const cols = columns.join(', ');
  return `(${partitions.map((p) => `SELECT ${cols} FROM ${p}`).join(' UNION ALL ')})`;
}

/**
 * Which of `keys` (the integer key of a table with a key table, one per staged row) the key
 * table holds: a mask, 1 for a row whose key is archived; undefined when none is, or when too
 * few are for the look-ups to pay (less than `least`, a fraction, of a sample of the keys:
 * leaving a row out saves its COPY, its index entries and its removal by the merge, ~4 µs,
 * where looking a key up costs ~1 µs). Keys lying apart from the archive's cost one descent of
 * the key table's index; each other key one probe of it (its entries alone are read).
 */
export async function archivedKeys(q: Queryable, parent: string, column: string, keys: BigInt64Array, least = 0.25): Promise<Uint8Array | undefined> {
  if (keys.length === 0) return undefined;
  let lo = keys[0];
  let hi = keys[0];
  for (const k of keys) {
    if (k < lo) lo = k;
    else if (k > hi) hi = k;
  }
  const table = keyTableName(parent);
  if ((await q.get(`SELECT 1 AS x FROM ${table} WHERE ${column} BETWEEN ${lo} AND ${hi} LIMIT 1`)) === undefined) return undefined;
  // the answer as one text of a 0 or 1 per key, in the keys' order (one row to read, not one per key)
  const held = async (some: BigInt64Array): Promise<{ mask: Uint8Array; hits: number }> => {
    const row = await q.get<{ m: string | null }>(
      `SELECT string_agg(CASE WHEN hit.x IS NULL THEN '0' ELSE '1' END, '' ORDER BY u.i) AS m FROM unnest(?::bigint[]) WITH ORDINALITY u(k, i)
       LEFT JOIN LATERAL (SELECT 1 AS x FROM ${table} a WHERE a.${column} = u.k LIMIT 1) hit ON true`, [`{${some.join(',')}}`]);
    const mask = Buffer.from(row?.m ?? '', 'latin1');
    if (mask.length !== some.length) throw new PspsError('db_statement_failed', `key look-up in ${table} answered for ${mask.length} of ${some.length} keys`);
    let hits = 0;
    for (let i = 0; i < mask.length; i++) hits += (mask[i] -= 48);
    return { mask, hits };
  };
  if (keys.length > KEY_SAMPLE) {
    // rows scattered by a multiplicative hash, so that no stride in the rows' order aliases
    const sample = new BigInt64Array(KEY_SAMPLE);
    for (let j = 0; j < KEY_SAMPLE; j++) sample[j] = keys[(Math.imul(j + 1, 2654435761) >>> 0) % keys.length];
    if ((await held(sample)).hits < least * KEY_SAMPLE) return undefined;
  }
  const { mask, hits } = await held(keys);
  return hits === 0 ? undefined : new Uint8Array(mask.buffer, mask.byteOffset, mask.length);
}

// Keys looked up first to judge whether looking them all up pays (see archivedKeys).
const KEY_SAMPLE = 2048;
