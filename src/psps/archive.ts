// The archive database: the PS1 tables created from the schema files (SQLite by default,
// PostgreSQL with Q3C for scale), bookkeeping of merged batches, queries and cone searches.
import { openDatabase, parseDbUrl, type Database, type Dialect, type Queryable, type Row, type SqlValue } from '../db/index.ts';
import { PSPS_SCHEMA_DIR, silentLogger, type Logger } from '../common/index.ts';
import { PspsError } from './errors.ts';
import { defaultPartition, keyTableName } from './key-probe.ts';
import { findTable, readArchiveSchema, type ArchiveSchema, type ArchiveTable } from './schema.ts';
import { quoteText, sqlType } from './sql.ts';

/** The column every archive table gets besides the schema's: the batch that brought the row. */
export const BATCH_COLUMN = 'odm_batch';

/** Options of {@link openArchive}. */
export interface ArchiveOptions {
  /** The schema files (default: the package's schema/psps). */
  readonly schemaDir?: string;
  readonly log?: Logger;
  /** Resolves relative SQLite paths. */
  readonly cwd?: string;
  /** PostgreSQL connections kept open (default 4). */
  readonly maxConnections?: number;
  /**
   * PostgreSQL, for tables created by this call: one partition per batch, so a merge attaches
   * the validated staging table instead of copying its rows. Merges cost almost nothing; key
   * look-ups go to the partitions holding keys in the batch's key range (key-probe.ts), but
   * reference look-ups and cone searches probe each batch's partition, so the layout suits an
   * archive of hundreds of batches (a load database); compactArchive folds the batches'
   * partitions so that thousands stay few partitions.
   * Default: plain tables, merged by copying, whose look-ups do not grow with the batch count.
   */
  readonly partitionByBatch?: boolean;
}

/** An open archive database. */
export interface Archive {
  readonly db: Database;
  readonly schema: ArchiveSchema;
  readonly dialect: Dialect;
  /** The URL without its password. */
  readonly url: string;
  /** For PostgreSQL: the connection string (COPY needs a connection of its own). */
  readonly connectionString?: string;
  /** True when positions are indexed with Q3C (PostgreSQL with the extension). */
  readonly q3c: boolean;
  /**
   * The archive tables (lower-case names) partitioned by batch (PostgreSQL archives created
   * since): a validated staging table becomes the batch's partition instead of being copied.
   */
  readonly partitioned: ReadonlySet<string>;
  /**
   * The tables of `partitioned` (lower-case names) whose keys recur across batches (merged by
   * keep or replace) and have a key table: every key their batch partitions hold, one b-tree
   * kept by the merge, where a staged key is looked up once (key-probe.ts).
   */
  readonly keyed: ReadonlySet<string>;
  /** The archive table of a name (case ignored); `psps_unknown_table` otherwise. */
  table(name: string): ArchiveTable;
  close(): Promise<void>;
}

/**
 * Opens (creating when needed) the archive database a URL names and makes its tables match
 * the schema files: every table of every file (columns united), primary keys, indexes on
 * reference columns and the batch column, and positions (ra, dec) indexed with Q3C on
 * PostgreSQL when the extension is there (a plain dec index and a warning otherwise).
 */
export async function openArchive(url: string, options: ArchiveOptions = {}): Promise<Archive> {
  const log = options.log ?? silentLogger;
  const schema = await readArchiveSchema(options.schemaDir ?? PSPS_SCHEMA_DIR);
  const location = parseDbUrl(url, options.cwd);
  const db = await openDatabase(url, { ...(options.cwd ? { cwd: options.cwd } : {}), maxConnections: options.maxConnections ?? 4 });
  try {
    const q3c = await ensureArchive(db, schema, log, options.partitionByBatch ?? false);
    const partitioned = new Set<string>();
    const keyed = new Set<string>();
    if (db.dialect.engine === 'postgres') {
      // the partitioned tables and the key tables (key-probe.ts), in one look
      const rows = await db.all<{ name: string; kind: string }>(
        `SELECT c.relname AS name, c.relkind AS kind FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
         AND (c.relkind = 'p' OR (c.relkind = 'r' AND c.relname LIKE ?))`, [`${keyTableName('')}%`]);
      const relations = new Set(rows.filter((r) => r.kind === 'r').map((r) => r.name.toLowerCase()));
      for (const r of rows) if (r.kind === 'p') partitioned.add(r.name.toLowerCase());
      for (const t of schema.tables) if (relations.has(keyTableName(t.name))) keyed.add(t.name.toLowerCase());
    }
    return {
      db, schema, dialect: db.dialect, url: db.url, q3c, partitioned, keyed,
      ...(location.engine === 'postgres' ? { connectionString: location.connectionString } : {}),
      table: (name) => {
        const t = findTable(schema.tables, name);
        if (!t) throw new PspsError('psps_unknown_table', `the archive has no table "${name}"; it has ${schema.tables.map((x) => x.name).join(', ')}`);
        return t;
      },
      close: () => db.close(),
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}

async function ensureArchive(db: Database, schema: ArchiveSchema, log: Logger, partitionByBatch: boolean): Promise<boolean> {
  let q3c = false;
  if (db.dialect.engine === 'postgres') {
    try {
      await db.exec('CREATE EXTENSION IF NOT EXISTS q3c');
      q3c = true;
    } catch (error) {
      log.warn(`archive: the q3c extension is not available (${(error as Error).message}); positions get a plain dec index and cone searches a slower scan. Install Debian's postgresql-15-q3c for sky indexing.`);
    }
  }
  await db.transaction(async (tx) => {
    if (tx.dialect.engine === 'postgres') await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_psps_archive'))");
    await tx.exec(`CREATE TABLE IF NOT EXISTS archive_merge (
      batch TEXT PRIMARY KEY, generation INTEGER NOT NULL, batch_type TEXT NOT NULL, merged_at TEXT NOT NULL, rows_json TEXT NOT NULL)`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS archive_schema (file TEXT PRIMARY KEY, md5 TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    for (const table of schema.tables) {
      const existing = await existingColumns(tx, table.name);
      const pg = tx.dialect.engine === 'postgres';
      if (existing.size === 0) {
        const cols = table.columns.map((c) => `${c.name} ${sqlType(c.datatype, tx.dialect)}${table.primaryKey.includes(c.name) ? ' NOT NULL' : ''}`);
        // partitioned by batch: a key is unique across batches through validation and merge
        // (both look it up in every partition), as a partitioned key must hold the batch
        const byBatch = pg && partitionByBatch;
        cols.push(`${BATCH_COLUMN} TEXT${byBatch ? " NOT NULL DEFAULT ''" : ''}`);
        const key = byBatch ? [...table.primaryKey, BATCH_COLUMN] : table.primaryKey;
        if (table.primaryKey.length > 0) cols.push(`PRIMARY KEY (${key.join(', ')})`);
        await tx.exec(`CREATE TABLE ${table.name} (${cols.join(', ')})${byBatch ? ` PARTITION BY LIST (${BATCH_COLUMN})` : ''}`);
        // rows written other than by a merge (no batch) land in a default partition
        if (byBatch) await tx.exec(`CREATE TABLE ${table.name.toLowerCase().slice(0, 55)}_nobatch PARTITION OF ${table.name} DEFAULT`);
      } else {
        for (const c of table.columns) {
          if (!existing.has(c.name.toLowerCase())) await tx.exec(`ALTER TABLE ${table.name} ADD COLUMN ${c.name} ${sqlType(c.datatype, tx.dialect)}`);
        }
        if (!existing.has(BATCH_COLUMN)) await tx.exec(`ALTER TABLE ${table.name} ADD COLUMN ${BATCH_COLUMN} TEXT`);
      }
      const lower = table.name.toLowerCase();
      const byBatch = pg && await isPartitioned(tx, table.name);
      if (byBatch && table.primaryKey.length > 0 && table.merge !== 'insert') await ensureKeyTable(tx, table);
      // a batch's rows go in together, so on PostgreSQL a block-range index finds them at
      // far less cost per inserted row than a b-tree entry (a partition per batch needs none)
      const using = pg ? ' USING brin' : '';
      if (!byBatch) await tx.exec(`CREATE INDEX IF NOT EXISTS ${lower}_${BATCH_COLUMN}_idx ON ${table.name}${using} (${BATCH_COLUMN})`);
      for (const r of table.references) {
        if (table.primaryKey[0] === r.column) continue;
        await tx.exec(`CREATE INDEX IF NOT EXISTS ${lower}_${r.column.toLowerCase()}_idx ON ${table.name} (${r.column})`);
      }
      const pos = positionColumns(table);
      if (pos) {
        if (q3c) await tx.exec(`CREATE INDEX IF NOT EXISTS ${lower}_q3c_idx ON ${table.name} (q3c_ang2ipix(${pos.ra}, ${pos.dec}))`);
        else await tx.exec(`CREATE INDEX IF NOT EXISTS ${lower}_dec_idx ON ${table.name} (${pos.dec})`);
      }
    }
    // referenced columns that are not a whole primary key need an index for the checks
    for (const table of schema.tables) {
      for (const r of table.references) {
        const target = findTable(schema.tables, r.table);
        if (!target) throw new PspsError('psps_bad_schema', `TABLE ${table.name}: references ${r.table}.${r.refColumn}, but no schema file has a table ${r.table}`);
        if (!target.columns.some((c) => c.name === r.refColumn)) throw new PspsError('psps_bad_schema', `TABLE ${table.name}: references ${r.table}.${r.refColumn}, which is not a column of ${r.table}`);
        if (target.primaryKey.length === 1 && target.primaryKey[0] === r.refColumn) continue;
        await tx.exec(`CREATE INDEX IF NOT EXISTS ${target.name.toLowerCase()}_${r.refColumn.toLowerCase()}_idx ON ${target.name} (${r.refColumn})`);
      }
    }
    const now = new Date().toISOString();
    for (const b of schema.batches) {
      await tx.run(`INSERT INTO archive_schema (file, md5, applied_at) VALUES (?, ?, ?)
        ON CONFLICT (file) DO UPDATE SET md5 = excluded.md5, applied_at = excluded.applied_at`, [b.file, b.md5, now]);
    }
  });
  return q3c;
}

// The key table of an archive table partitioned by batch whose keys recur across batches
// (key-probe.ts): the keep merge of object stubs looks each staged key up once there, where
// with one partition per batch it read every partition whose keys interleave with the
// batch's (as object IDs of overlapping fields do). An archive partitioned before key tables
// existed gets its batch partitions' keys, once.
async function ensureKeyTable(tx: Queryable, table: ArchiveTable): Promise<void> {
  const name = keyTableName(table.name);
  if ((await tx.get<{ r: string | null }>('SELECT to_regclass(?) AS r', [name]))?.r != null) return;
  const key = table.primaryKey.join(', ');
  const cols = table.primaryKey.map((k) => `${k} ${sqlType(table.columns.find((c) => c.name === k)!.datatype, tx.dialect)} NOT NULL`);
  await tx.exec(`CREATE TABLE ${name} (${cols.join(', ')}, PRIMARY KEY (${key}))`);
  const dflt = await defaultPartition(tx, table.name);
  await tx.exec(`INSERT INTO ${name} (${key}) SELECT DISTINCT ${key} FROM ${table.name}${dflt === undefined ? '' : ` WHERE tableoid <> ${quoteText(dflt)}::regclass`}`);
}

async function isPartitioned(tx: { get<T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> }, table: string): Promise<boolean> {
  const row = await tx.get<{ kind: string }>('SELECT relkind AS kind FROM pg_class WHERE oid = to_regclass(?)', [table.toLowerCase()]);
  return row?.kind === 'p';
}

async function existingColumns(tx: { dialect: Dialect; all<T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> }, table: string): Promise<Set<string>> {
  if (tx.dialect.engine === 'postgres') {
    const rows = await tx.all<{ column_name: string }>(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table.toLowerCase()]);
    return new Set(rows.map((r) => r.column_name.toLowerCase()));
  }
  const rows = await tx.all<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, [table]);
  return new Set(rows.map((r) => r.name.toLowerCase()));
}

/**
 * A partitioned archive table's index definitions (pg_get_indexdef of each index but the key)
 * made again on `table`: what a table needs to be attached as a partition without more builds.
 */
export function indexesOn(defs: readonly string[], table: string): string[] {
  const creates: string[] = [];
  for (const def of defs) {
    const create = def.replace(/^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ /, `CREATE $1INDEX ON ${table} `);
    if (create !== def) creates.push(create);
  }
  return creates;
}

// The position columns of PS1 tables, by preference: a detection's (ra, dec), an object's
// mean position, its stack position.
const POSITIONS = [['ra', 'dec'], ['raMean', 'decMean'], ['raStack', 'decStack']] as const;

/** The columns holding a table's positions on the sky (RA, Dec in degrees), if it has any. */
export function positionColumns(table: ArchiveTable): { ra: string; dec: string } | undefined {
  const has = (n: string) => table.columns.some((c) => c.name === n && (c.datatype === 'double' || c.datatype === 'float'));
  const pair = POSITIONS.find(([ra, dec]) => has(ra) && has(dec));
  return pair ? { ra: pair[0], dec: pair[1] } : undefined;
}

/**
 * Runs one user statement on the archive and returns its rows. Read-only unless `write`:
 * PostgreSQL runs it in a READ ONLY transaction, SQLite with `query_only` on, so a query
 * typed to look at the archive cannot change it.
 */
export async function archiveQuery(archive: Archive, sql: string, options: { write?: boolean } = {}): Promise<Row[]> {
  if (sql.trim() === '') throw new PspsError('psps_bad_query', 'the query is empty; give one SQL statement, e.g. "SELECT count(*) FROM Detection"');
  if (options.write) return archive.db.all(sql);
  if (archive.dialect.engine === 'postgres') {
    return archive.db.transaction(async (tx) => {
      await tx.exec('SET TRANSACTION READ ONLY');
      return tx.all(sql);
    }, { retries: 0 });
  }
  await archive.db.exec('PRAGMA query_only = ON');
  try {
    return await archive.db.all(sql);
  } finally {
    await archive.db.exec('PRAGMA query_only = OFF');
  }
}

/** Options of {@link coneSearch}. */
export interface ConeOptions {
  /** The table (default ObjectThin). */
  readonly table?: string;
  /** At most this many rows, nearest first (default 10,000). */
  readonly limit?: number;
}

/**
 * The rows of a table within `radius` degrees of (ra, dec) (of its position columns, see
 * {@link positionColumns}), nearest first, each with its
 * distance in arcseconds (`distance_arcsec`). Q3C's radial query on PostgreSQL; elsewhere a
 * dec band and RA window that an index can serve, then the exact angular distance.
 */
export async function coneSearch(archive: Archive, ra: number, dec: number, radius: number, options: ConeOptions = {}): Promise<Row[]> {
  if (!Number.isFinite(ra) || ra < 0 || ra >= 360) throw new PspsError('psps_bad_cone', `RA ${ra} must be a number of degrees in [0, 360)`);
  if (!Number.isFinite(dec) || dec < -90 || dec > 90) throw new PspsError('psps_bad_cone', `Dec ${dec} must be a number of degrees in [-90, 90]`);
  if (!Number.isFinite(radius) || radius <= 0 || radius > 180) throw new PspsError('psps_bad_cone', `radius ${radius} must be a number of degrees in (0, 180]`);
  const table = archive.table(options.table ?? 'ObjectThin');
  const pos = positionColumns(table);
  if (!pos) throw new PspsError('psps_bad_cone', `table ${table.name} has no position columns (ra/dec, raMean/decMean or raStack/decStack)`);
  const { ra: raCol, dec: decCol } = pos;
  const limit = options.limit ?? 10_000;
  if (archive.q3c) {
    return archive.db.all(
      `SELECT *, q3c_dist(${raCol}, ${decCol}, ?, ?) * 3600 AS distance_arcsec FROM ${table.name}
       WHERE q3c_radial_query(${raCol}, ${decCol}, ?, ?, ?) ORDER BY distance_arcsec LIMIT ?`,
      [ra, dec, ra, dec, radius, limit]);
  }
  const lo = dec - radius;
  const hi = dec + radius;
  const conditions = [`${decCol} BETWEEN ? AND ?`];
  const params: SqlValue[] = [lo, hi];
  const extreme = Math.max(Math.abs(lo), Math.abs(hi));
  if (extreme < 90 && radius < 90) {
    // widest RA half-extent of the cap, plus a little for rounding
    const half = rad2deg(Math.asin(Math.min(1, Math.sin(deg2rad(radius)) / Math.cos(deg2rad(extreme))))) + 1e-9;
    if (half < 180) {
      const a = ra - half;
      const b = ra + half;
      if (a < 0) { conditions.push(`(${raCol} >= ? OR ${raCol} <= ?)`); params.push(a + 360, b); }
      else if (b >= 360) { conditions.push(`(${raCol} >= ? OR ${raCol} <= ?)`); params.push(a, b - 360); }
      else { conditions.push(`${raCol} BETWEEN ? AND ?`); params.push(a, b); }
    }
  }
  const rows = await archive.db.all(`SELECT * FROM ${table.name} WHERE ${conditions.join(' AND ')}`, params);
  const out: Row[] = [];
  for (const row of rows) {
    // PostgreSQL names columns in lower case
    const d = angularDistance(ra, dec, Number(row[raCol] ?? row[raCol.toLowerCase()]), Number(row[decCol] ?? row[decCol.toLowerCase()]));
    if (d <= radius) out.push({ ...row, distance_arcsec: d * 3600 });
  }
  out.sort((x, y) => (x.distance_arcsec as number) - (y.distance_arcsec as number));
  return out.slice(0, limit);
}

/** The angle between two positions, in degrees (haversine: exact for small angles too). */
export function angularDistance(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d1 = deg2rad(dec1);
  const d2 = deg2rad(dec2);
  const s1 = Math.sin((d2 - d1) / 2);
  const s2 = Math.sin(deg2rad(ra2 - ra1) / 2);
  const h = s1 * s1 + Math.cos(d1) * Math.cos(d2) * s2 * s2;
  return rad2deg(2 * Math.asin(Math.min(1, Math.sqrt(h))));
}

function deg2rad(d: number): number { return (d * Math.PI) / 180; }
function rad2deg(r: number): number { return (r * 180) / Math.PI; }
