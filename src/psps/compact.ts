// Compaction of an archive partitioned by batch (PostgreSQL): merged batches' partitions are
// folded into larger ones, so that key look-ups and cone searches probe a bounded number of
// partitions while each merge still only attaches its staging table. Tiered by batch count,
// as a log-structured merge tree: K partitions of level L (K^L batches or more, fewer than
// K^(L+1)) fold into one of level L+1, so a row is rewritten once per level (log_K of the
// batch count), and a table of N batches keeps at most (K-1) partitions per level.
// Each fold is one transaction under the ODM's merge lock: a new table of the archive table's
// shape, filled from the folded partitions in key order, given the key and indexes a batch
// partition has and a CHECK on its batches (so ATTACH needs no scan); then the old partitions
// are detached, the new one attached for all their batches and the old ones dropped. A
// failure or a crash at any point rolls the whole fold back; readers see the old partitions
// or the new one.
import type { Queryable } from '../db/index.ts';
import { silentLogger, type Logger } from '../common/index.ts';
import { BATCH_COLUMN, indexesOn, type Archive } from './archive.ts';
import { PspsError } from './errors.ts';
import { partitionsOf } from './key-probe.ts';
import type { ArchiveTable } from './schema.ts';
import { quoteText } from './sql.ts';

/** Options of {@link compactArchive}. */
export interface CompactOptions {
  /** K: partitions of one level folded together (default 16; at least 2). */
  readonly batchesPerPartition?: number;
  /** The most recently merged single-batch partitions left alone per table (default 0). */
  readonly keepRecent?: number;
  /**
   * A level is folded once it holds this many partitions (default and least: K); the K
   * oldest are folded. The ODM asks for 2K while batches wait for it (see odm.ts).
   */
  readonly foldAt?: number;
  /** Only these archive tables (default: every table partitioned by batch). */
  readonly tables?: readonly string[];
  /** Stops between folds and between a fold's steps (the fold in hand rolls back). */
  readonly signal?: AbortSignal;
  readonly log?: Logger;
  /**
   * Called after each step of a fold, inside its transaction (`filled`, `indexed`,
   * `detached`, `attached`, `dropped`): a throw rolls the fold back (tests inject faults here).
   */
  readonly onStep?: (step: CompactStep, fold: CompactFold) => void | Promise<void>;
}

/** A step of one fold (see {@link CompactOptions.onStep}). */
export type CompactStep = 'filled' | 'indexed' | 'detached' | 'attached' | 'dropped';

/** One fold: partitions of a table replaced by one. */
export interface CompactFold {
  readonly table: string;
  /** The level of the partitions folded (0: one batch each). */
  readonly level: number;
  /** The partitions folded. */
  readonly from: readonly string[];
  /** The partition made. */
  readonly into: string;
  /** The batches it holds. */
  readonly batches: number;
  readonly rows: number;
  readonly seconds: number;
}

/** What {@link compactArchive} did. */
export interface CompactResult {
  readonly folds: readonly CompactFold[];
  /** Partitions per table (its DEFAULT partition not counted) before and after. */
  readonly partitions: Readonly<Record<string, { before: number; after: number }>>;
}

/** A partition of an archive table partitioned by batch, with the batches its bound lists. */
export interface BatchPartition {
  readonly name: string;
  readonly batches: readonly string[];
}

/** Default K of {@link compactArchive}: 10,000 batches stay within 4 levels, 60 partitions at most. */
export const DEFAULT_BATCHES_PER_PARTITION = 16;

/** The name prefix of compacted partitions (a batch partition's is `arc_`). */
export const COMPACTED_PREFIX = 'arcc_';

/**
 * The partitions of an archive table partitioned by batch (its DEFAULT partition left out),
 * each with the batches of its bound.
 */
export async function batchPartitions(q: Queryable, table: string): Promise<BatchPartition[]> {
  const out: BatchPartition[] = [];
  for (const r of await partitionsOf(q, table)) {
    const m = /^FOR VALUES IN \((.*)\)$/s.exec(r.bound);
    if (!m) continue;
    // batch names are letters, digits and _ (BATCH_NAME): no quote inside a value
    out.push({ name: r.name, batches: [...m[1].matchAll(/'([^']*)'/g)].map((x) => x[1]) });
  }
  return out;
}

/** The partition of an archive table whose bound holds a batch, if any. */
export async function partitionOfBatch(q: Queryable, table: string, batch: string): Promise<string | undefined> {
  const row = await q.get<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = to_regclass(?) AND strpos(pg_get_expr(c.relpartbound, c.oid), ?) > 0 LIMIT 1`,
    [table.toLowerCase(), quoteText(batch)]);
  return row?.name;
}

// The level of a partition of n batches: the largest L with K^L <= n.
function levelOf(n: number, k: number): number {
  let level = 0;
  for (let span = k; span <= n; span *= k) level++;
  return level;
}

/**
 * Folds merged batches' partitions of an archive partitioned by batch into larger ones (see
 * the file comment): repeatedly, per table, the K oldest partitions of the lowest level that
 * has K of them (single-batch partitions: oldest merge first, the `keepRecent` newest left
 * alone). An archive with plain tables, or SQLite, has nothing to compact.
 */
export async function compactArchive(archive: Archive, options: CompactOptions = {}): Promise<CompactResult> {
  const k = options.batchesPerPartition ?? DEFAULT_BATCHES_PER_PARTITION;
  if (!Number.isInteger(k) || k < 2) throw new PspsError('psps_bad_compaction', `batches per partition ${k} must be a whole number of at least 2`);
  const keepRecent = options.keepRecent ?? 0;
  if (!Number.isInteger(keepRecent) || keepRecent < 0) throw new PspsError('psps_bad_compaction', `keepRecent ${keepRecent} must be a whole number of at least 0`);
  const foldAt = options.foldAt ?? k;
  if (!Number.isInteger(foldAt) || foldAt < k) throw new PspsError('psps_bad_compaction', `foldAt ${foldAt} must be a whole number of at least K (${k})`);
  const log = options.log ?? silentLogger;
  const folds: CompactFold[] = [];
  const partitions: Record<string, { before: number; after: number }> = {};
  if (archive.dialect.engine !== 'postgres' || archive.partitioned.size === 0) return { folds, partitions };
  const tables = archive.schema.tables.filter((t) => archive.partitioned.has(t.name.toLowerCase())
    && (options.tables === undefined || options.tables.some((n) => n.toLowerCase() === t.name.toLowerCase())));
  for (const table of tables) {
    const before = (await batchPartitions(archive.db, table.name)).length;
    for (;;) {
      options.signal?.throwIfAborted();
      const fold = await foldOnce(archive, table, k, foldAt, keepRecent, options);
      if (fold === undefined) break;
      folds.push(fold);
      log.info(`archive compact: ${table.name}: ${fold.from.length} partitions of level ${fold.level} (${fold.batches} batches, ${fold.rows} rows) -> ${fold.into} in ${fold.seconds.toFixed(2)} s`);
    }
    partitions[table.name] = { before, after: (await batchPartitions(archive.db, table.name)).length };
  }
  return { folds, partitions };
}

// One fold of a table in one transaction, chosen under the merge lock; undefined when no
// level has K partitions to fold.
async function foldOnce(archive: Archive, table: ArchiveTable, k: number, foldAt: number, keepRecent: number, options: CompactOptions): Promise<CompactFold | undefined> {
  const started = performance.now();
  return archive.db.transaction(async (tx) => {
    // merges and compactions of an archive take turns (merge.ts takes the same lock)
    await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_psps_merge'))");
    await tx.exec('SET LOCAL jit = off');
    await tx.exec("SET LOCAL maintenance_work_mem = '256MB'");
    const chosen = await chooseFold(tx, table, k, foldAt, keepRecent);
    if (chosen === undefined) return undefined;
    const { level, from } = chosen;
    const batches = from.flatMap((p) => p.batches).sort();
    const parent = table.name.toLowerCase();
    const into = `${COMPACTED_PREFIX}${parent.slice(0, 30)}_${Date.now().toString(36)}${Math.floor(Math.random() * 46656).toString(36).padStart(3, '0')}`;
    const cols = [...table.columns.map((c) => c.name), BATCH_COLUMN].join(', ');
    const list = batches.map(quoteText).join(', ');
    const fold = (rows: number): CompactFold => ({
      table: table.name, level, from: from.map((p) => p.name), into, batches: batches.length, rows, seconds: (performance.now() - started) / 1000,
    });
    const step = async (name: CompactStep, rows: number) => {
      options.signal?.throwIfAborted();
      await options.onStep?.(name, fold(rows));
    };
    // the CHECK, checked as rows go in, lets ATTACH skip its scan of them
    await tx.exec(`CREATE TABLE ${into} (LIKE ${parent} INCLUDING DEFAULTS, CONSTRAINT ${into}_batches CHECK (${BATCH_COLUMN} IS NOT NULL AND ${BATCH_COLUMN} IN (${list})))`);
    const order = table.primaryKey.length > 0 ? ` ORDER BY ${table.primaryKey.join(', ')}` : '';
    const union = from.map((p) => `SELECT ${cols} FROM ${p.name}`).join(' UNION ALL ');
    const rows = (await tx.run(`INSERT INTO ${into} (${cols}) SELECT ${cols} FROM (${union}) u${order}`)).changes;
    await step('filled', rows);
    // the key and indexes of a batch partition, which ATTACH takes as the parent's
    if (table.primaryKey.length > 0) await tx.exec(`ALTER TABLE ${into} ADD CONSTRAINT ${into}_pk PRIMARY KEY (${[...table.primaryKey, BATCH_COLUMN].join(', ')})`);
    const defs = await tx.all<{ def: string }>(
      'SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = to_regclass(?) AND NOT indisprimary', [parent]);
    for (const create of indexesOn(defs.map((d) => d.def), into)) await tx.exec(create);
    await tx.exec(`ANALYZE ${into}`);
    await step('indexed', rows);
    for (const p of from) await tx.exec(`ALTER TABLE ${parent} DETACH PARTITION ${p.name}`);
    await step('detached', rows);
    await tx.exec(`ALTER TABLE ${parent} ATTACH PARTITION ${into} FOR VALUES IN (${list})`);
    await step('attached', rows);
    for (const p of from) await tx.exec(`DROP TABLE ${p.name}`);
    await step('dropped', rows);
    return fold(rows);
  });
}

// The partitions to fold next: the lowest level with at least `foldAt` partitions (batch
// partitions in merge order, the keepRecent newest left out), its K oldest.
async function chooseFold(tx: Queryable, table: ArchiveTable, k: number, foldAt: number, keepRecent: number): Promise<{ level: number; from: BatchPartition[] } | undefined> {
  const parts = await batchPartitions(tx, table.name);
  if (parts.length < foldAt) return undefined;
  const byLevel = new Map<number, BatchPartition[]>();
  for (const p of parts) {
    if (p.batches.length === 0) continue;
    const level = levelOf(p.batches.length, k);
    let list = byLevel.get(level);
    if (list === undefined) byLevel.set(level, list = []);
    list.push(p);
  }
  // (the ODM asks after every merge: most times no level has enough to fold)
  if (![...byLevel].some(([level, list]) => list.length >= foldAt + (level === 0 ? keepRecent : 0))) return undefined;
  const merged = new Map<string, string>();
  for (const r of await tx.all<{ batch: string; at: string }>('SELECT batch, merged_at AS at FROM archive_merge')) merged.set(r.batch, r.at);
  // a partition's age: its newest batch's merge (a batch never recorded sorts first)
  const age = (p: BatchPartition) => p.batches.reduce((m, b) => { const at = merged.get(b) ?? ''; return at > m ? at : m; }, '');
  for (const level of [...byLevel.keys()].sort((a, b) => a - b)) {
    const sorted = byLevel.get(level)!.map((p) => ({ p, at: age(p) })).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.p.name < b.p.name ? -1 : 1)).map((x) => x.p);
    const eligible = level === 0 ? sorted.slice(0, Math.max(0, sorted.length - keepRecent)) : sorted;
    if (eligible.length >= foldAt) return { level, from: eligible.slice(0, k) };
  }
  return undefined;
}
