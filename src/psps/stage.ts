// Loading a batch's CSV files into staging tables of the archive database, one per table and
// batch (`stg_<batch>_<table>`), so that a reload of the batch simply replaces them. PostgreSQL
// gets the file through COPY (typed columns; a value COPY refuses sends the file through the
// value checker to list every offending row); SQLite gets chunked INSERTs, each value checked
// on the way.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { columnInfo, CsvError, readCsv, type ColumnBatch, type ColumnType, type CsvRawRows } from '../table/index.ts';
import type { Queryable, SqlValue } from '../db/index.ts';
import { FitsError, FitsFile, fitsRawRows, fitsTable } from '../fits/index.ts';
import {
  acceptsSource, COPY_BINARY_HEADER, COPY_BINARY_TRAILER, encodeCopyTuples, encodeRawTuples, rawCopyPlan, readRawValues, type RawCopyField, type RawCopyPlan,
} from './pg-binary.ts';
import { hasValueRules, KeyRise, KEYS_ROSE, markStaging, NO_NULLS, referenceHeld, RULES_HELD, stagingMarks, valuesKeepRules } from './validate.ts';
import { BATCH_COLUMN, indexesOn, type Archive } from './archive.ts';
import { archivedKeys } from './key-probe.ts';
import { PspsError } from './errors.ts';
import { ProblemList } from './problems.ts';
import { findTable, type ArchiveColumn, type ArchiveDatatype, type ArchiveTable, type BatchSchema } from './schema.ts';
import { defaultLiteral, quoteText, sqlType } from './sql.ts';

/** A batch name the ODM accepts: it becomes part of table names, so letters, digits and _. */
export const BATCH_NAME = /^[A-Za-z0-9_]{1,32}$/;

/** The staging table of a batch's table. */
export function stagingName(batch: string, table: string): string {
  if (!BATCH_NAME.test(batch)) throw new PspsError('psps_bad_batch', `batch name "${batch}" must be 1-32 letters, digits or _`);
  const name = `stg_${batch}_${table}`.toLowerCase();
  if (name.length > 63) throw new PspsError('psps_bad_batch', `staging table name ${name} is longer than 63 characters; use a shorter batch name`);
  return name;
}

/** One CSV file of a batch. */
export interface StageInput {
  readonly table: ArchiveTable;
  readonly path: string;
}

/**
 * Loads every table of a batch from its CSV file (`files`: table name → path); returns the
 * rows per table, in the schema's order. A missing or unreadable file, a header that is not
 * the schema's and values of the wrong type go to `problems`. PostgreSQL loads two tables at
 * once (one COPY keeps one server core busy), each on a connection of its own, and those two
 * connections then build the indexes a staging table needs (a partitioned archive's, see
 * stagingIndexJobs) as soon as its rows are committed, any index on either connection, so
 * that both server cores stay busy to the end; SQLite has one writer.
 */
export async function stageBatch(
  archive: Archive, batch: string, schema: BatchSchema, files: readonly { name: string; path: string }[],
  problems: ProblemList, signal?: AbortSignal, source: StageSource = {},
): Promise<Record<string, number>> {
  const rows: Record<string, number> = {};
  const pg = archive.dialect.engine === 'postgres';
  const fits = pg ? source.fits : undefined;
  // the largest tables first (each COPY keeps one connection; the small ones fill in after)
  const queue = pg ? await largestFirst(schema.tables, files, fits) : [...schema.tables];
  const jobs: IndexJob[] = [];
  const rawStaged = new Map<string, RawStaged>();
  let copying = 0;
  let stopped = false;
  // a worker with nothing to take waits for the other's COPY to end (and give index builds)
  let wake: () => void = () => undefined;
  const notify = () => wake();
  const changed = () => new Promise<void>((resolve) => { wake = resolve; });
  const stage = async (table: ArchiveTable, conn: StageConnection | undefined): Promise<void> => {
    if (fits !== undefined) {
      try {
        const staged = await stageFits(archive, batch, table, fits, problems, conn!, rawStaged, signal);
        rows[table.name] = staged ?? 0;
        if (staged !== undefined) jobs.push(...await stagingIndexJobs(await conn!.client(), archive, batch, table));
      } catch (error) {
        if (!(error instanceof FitsError || (error instanceof PspsError && error.code === 'psps_cannot_read'))) throw error;
        problems.add({ table: table.name, column: '', row: 0, value: '', rule: 'file', detail: (error as Error).message });
      }
      return;
    }
    const file = files.find((f) => f.name.toLowerCase() === table.name.toLowerCase());
    if (!file) {
      problems.add({ table: table.name, column: '', row: 0, value: '', rule: 'file', detail: 'the batch has no CSV file for this table' });
      return;
    }
    try {
      const staged = await stageCsv(archive, batch, { table, path: file.path }, problems, conn, signal);
      rows[table.name] = staged ?? 0;
      if (staged !== undefined && conn !== undefined) jobs.push(...await stagingIndexJobs(await conn.client(), archive, batch, table));
    } catch (error) {
      if (!(error instanceof PspsError && error.code === 'psps_cannot_read') && (error as Error).name !== 'CsvError') throw error;
      problems.add({ table: table.name, column: '', row: 0, value: '', rule: 'file', detail: (error as Error).message });
    }
  };
  const worker = async () => {
    const conn = pg ? new StageConnection(archive) : undefined;
    try {
      while (!stopped) {
        const table = queue.shift();
        if (table !== undefined) {
          copying++;
          try {
            await stage(table, conn);
          } finally {
            copying--;
            notify();
          }
          continue;
        }
        const job = jobs.shift();
        if (job !== undefined) {
          signal?.throwIfAborted();
          await runIndexJob(await conn!.client(), job);
          continue;
        }
        if (copying === 0) return;
        await changed();
      }
    } catch (error) {
      stopped = true;
      notify();
      throw error;
    } finally {
      await conn?.end();
    }
  };
  const parallel = pg ? 2 : 1;
  // every load ends before a failure is raised, so nothing still writes when the caller cleans up
  const results = await Promise.allSettled(Array.from({ length: parallel }, worker));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  if (problems.total === 0) await proveReferences(archive, batch, schema, rawStaged, signal);
  const ordered: Record<string, number> = {};
  for (const t of schema.tables) if (rows[t.name] !== undefined) ordered[t.name] = rows[t.name];
  return ordered;
}

// The tables in order of the bytes of their rows in the batch (its FITS tables or CSV files),
// largest first; a table whose source cannot be read counts as empty (its stage says why).
async function largestFirst(tables: readonly ArchiveTable[], files: readonly { name: string; path: string }[], fits: string | undefined): Promise<ArchiveTable[]> {
  const bytes = new Map<ArchiveTable, number>();
  if (fits !== undefined) {
    const file = await FitsFile.open(fits).catch(() => undefined);
    try {
      for (const t of tables) {
        const hdu = file?.hdus.find((h) => h.extname?.trim().toLowerCase() === t.name.toLowerCase());
        bytes.set(t, hdu?.dataBytes ?? 0);
      }
    } finally {
      await file?.close();
    }
  } else {
    for (const t of tables) {
      const path = files.find((f) => f.name.toLowerCase() === t.name.toLowerCase())?.path;
      bytes.set(t, path === undefined ? 0 : await stat(path).then((x) => x.size, () => 0));
    }
  }
  return [...tables].sort((a, b) => bytes.get(b)! - bytes.get(a)!);
}

/** Where a batch's rows come from besides its CSV files. */
export interface StageSource {
  /**
   * The batch FITS file (one binary table per archive table, named by EXTNAME): PostgreSQL
   * stages from it by binary COPY, no CSV parsed; SQLite reads the CSV files.
   */
  readonly fits?: string;
}

// Binary COPY of one table of the batch FITS file into its staging table; the columns must be
// the schema's, in order (as the CSV's header must).
async function stageFits(
  archive: Archive, batch: string, table: ArchiveTable, path: string, problems: ProblemList, conn: StageConnection,
  rawStaged: Map<string, RawStaged>, signal?: AbortSignal,
): Promise<number | undefined> {
  const file = await FitsFile.open(path);
  try {
    const hdu = file.hdus.find((h) => (h.kind === 'bintable' || h.kind === 'compressed-table') && h.extname?.trim().toLowerCase() === table.name.toLowerCase());
    if (hdu === undefined) {
      problems.add({ table: table.name, column: '', row: 0, value: '', rule: 'file', detail: `the batch file ${path} has no binary table with EXTNAME ${table.name}` });
      return undefined;
    }
    const source = fitsTable(file, hdu.index);
    const names = source.columns.map((c) => c.name);
    const want = table.columns.map((c) => c.name);
    if (names.length !== want.length || names.some((h, i) => h.toLowerCase() !== want[i].toLowerCase())) {
      problems.add({
        table: table.name, column: '', row: 0, value: names.join(','), rule: 'columns',
        detail: `the FITS table's columns must be the schema's, in order: ${want.join(',')}`,
      });
      return undefined;
    }
    let refused = false;
    for (let c = 0; c < want.length; c++) {
      const info = source.columns[c];
      const scalar = info.type === 'string' ? info.shape.length <= 1 : info.shape.every((d) => d === 1);
      if (!scalar || info.variable || !acceptsSource(table.columns[c].datatype, info.type)) {
        refused = true;
        problems.add({
          table: table.name, column: want[c], row: 0, value: `${info.type}${info.shape.length > 0 ? `[${info.shape.join('x')}]` : ''}`, rule: 'type',
          detail: `a FITS column of this type cannot hold a ${table.columns[c].datatype} column`,
        });
      }
    }
    if (refused) return undefined;
    const copySql = `COPY ${stagingName(batch, table.name)} (${want.join(', ')}) FROM STDIN WITH (FORMAT binary, FREEZE true)`;
    const raw = fitsRawRows(file, hdu.index, path);
    const plan = raw === undefined ? undefined : rawCopyPlan(table.columns, raw);
    if (raw !== undefined && plan !== undefined) {
      const archived = await archivedRows(archive, table, raw, plan, signal);
      const rows = await copyRows(archive, batch, table, copySql, (state) => rawTuples(table, raw, plan, state, archived?.skip, signal), conn, signal, true);
      if (rows !== undefined) rawStaged.set(table.name.toLowerCase(), { raw, plan, ...(archived ? { keys: archived.keys } : {}) });
      return rows;
    }
    const sources = source.columns.map((c) => c.type);
    return await copyRows(archive, batch, table, copySql, async function* (state) {
      yield COPY_BINARY_HEADER;
      let rowBase = 0;
      for await (const b of source.batches({ batchRows: 8192, ...(signal ? { signal } : {}) })) {
        const tuples = encodeCopyTuples(table.name, table.columns, sources, b, rowBase, problems);
        rowBase += b.rowCount;
        for (let c = 0; state.rulesHeld && c < table.columns.length; c++) state.rulesHeld = valuesKeepRules(table.columns[c], b.columns[c].values, b.rowCount);
        state.keys?.rise.add(b.columns[state.keys.column].values, b.rowCount);
        // after a refused value the rest of the file is still read, to list every bad value
        if (tuples === undefined) state.refused = true;
        else if (!state.refused) yield tuples;
      }
      if (state.refused) throw new PspsError('psps_bad_batch', `${table.name}: values refused`);
      yield COPY_BINARY_TRAILER;
    }, conn, signal, true);
  } finally {
    await file.close();
  }
}

// The binary COPY stream of a FITS table whose every column a plan moves without a check:
// chunks of rows read from the file and turned into tuples column by column, with no
// decoding into column arrays (the rule checks decode the columns that have rules). Rows
// `skip` marks (archived already, see archivedRows) are left out.
async function* rawTuples(table: ArchiveTable, raw: CsvRawRows, plan: RawCopyPlan, state: CopyState, skip: Uint8Array | undefined, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const ruled = plan.fields.map((f, c) => ({ f, column: table.columns[c] })).filter((x) => hasValueRules(x.column));
  let scratch = new Float64Array(0);
  yield COPY_BINARY_HEADER;
  for await (const chunk of rawChunks(table, raw, signal)) {
    const { rows, view } = chunk;
    let n = chunk.n;
    if (skip !== undefined) n = keepRows(rows, plan.rowBytes, skip, chunk.row, n);
    if (n === 0) continue;
    if (scratch.length < n) scratch = new Float64Array(chunk.n);
    for (let i = 0; state.rulesHeld && i < ruled.length; i++) {
      readRawValues(ruled[i].f, view, plan.rowBytes, n, scratch);
      state.rulesHeld = valuesKeepRules(ruled[i].column, scratch, n);
    }
    if (state.keys?.rise.rose) {
      // (doubles keep the order of 64-bit integers: a strict rise of them is one of the keys)
      readRawValues(plan.fields[state.keys.column], view, plan.rowBytes, n, scratch);
      state.keys.rise.add(scratch, n);
    }
    yield encodeRawTuples(plan, rows, n, scratch);
  }
  yield COPY_BINARY_TRAILER;
}

// Moves the rows of a chunk (the file's rows from `first` on) that `skip` does not mark to its
// front, in order; returns how many there are.
function keepRows(rows: Buffer, rowBytes: number, skip: Uint8Array, first: number, n: number): number {
  let kept = 0;
  for (let r = 0; r < n; r++) {
    if (skip[first + r] === 1) continue;
    if (kept !== r) rows.copyWithin(kept * rowBytes, r * rowBytes, (r + 1) * rowBytes);
    kept++;
  }
  return kept;
}

// The raw rows of a FITS table in chunks of about RAW_CHUNK_BYTES (one buffer, reused: a chunk
// is gone once the next is asked for), with the index of the chunk's first row.
async function* rawChunks(table: ArchiveTable, raw: CsvRawRows, signal?: AbortSignal): AsyncGenerator<{ rows: Buffer; view: DataView; row: number; n: number }> {
  const perChunk = Math.max(1, Math.floor(RAW_CHUNK_BYTES / Math.max(1, raw.rowBytes)));
  const rows = Buffer.allocUnsafe(perChunk * raw.rowBytes);
  const view = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
  let handle;
  try {
    handle = await open(raw.path, 'r');
  } catch (cause) {
    throw new PspsError('psps_cannot_read', `${table.name}: cannot read ${raw.path}: ${(cause as Error).message}`, { cause });
  }
  try {
    for (let row = 0; row < raw.rows; row += perChunk) {
      signal?.throwIfAborted();
      const n = Math.min(perChunk, raw.rows - row);
      const bytes = n * raw.rowBytes;
      const { bytesRead } = await handle.read(rows, 0, bytes, raw.start + row * raw.rowBytes);
      if (bytesRead !== bytes) throw new PspsError('psps_cannot_read', `${table.name}: ${raw.path} ends inside row ${row + Math.floor(bytesRead / raw.rowBytes) + 1} of the table`);
      yield { rows, view, row, n };
    }
  } finally {
    await handle.close();
  }
}

// The rows of a table merged by keep whose key the archive holds already (`skip`, a mask;
// undefined when none), with every row's key: they would be staged, indexed and then taken
// out by the merge for nothing. In a survey's steady state most object stubs of a P2 or ST
// batch are of objects seen before. Only for a table with a key table (key-probe.ts) whose
// keys never leave it: no batch type merges the table by insert, whose reload is what takes
// keys out. A key the archive gains after this look (another batch merged meanwhile) is
// still taken out by the merge.
async function archivedRows(
  archive: Archive, table: ArchiveTable, raw: CsvRawRows, plan: RawCopyPlan, signal?: AbortSignal,
): Promise<{ skip: Uint8Array; keys: BigInt64Array } | undefined> {
  const target = findTable(archive.schema.tables, table.name);
  const key = integerKey(table);
  if (table.merge !== 'keep' || key === undefined || target === undefined || !archive.keyed.has(target.name.toLowerCase())) return undefined;
  if (archive.schema.batches.some((b) => findTable(b.tables, table.name)?.merge === 'insert')) return undefined;
  const keys = await readRawIntegers(table, raw, plan.fields[key], signal);
  const skip = await archivedKeys(archive.db, target.name, table.columns[key].name, keys);
  return skip === undefined ? undefined : { skip, keys };
}

// Every row's value of an integer field of a FITS table's raw rows, exactly.
async function readRawIntegers(table: ArchiveTable, raw: CsvRawRows, field: RawCopyField, signal?: AbortSignal): Promise<BigInt64Array> {
  const out = new BigInt64Array(raw.rows);
  let scratch = new Float64Array(0);
  for await (const { view, row, n } of rawChunks(table, raw, signal)) {
    if (field.code === 'K') {
      for (let r = 0, p = field.src; r < n; r++, p += raw.rowBytes) out[row + r] = view.getBigInt64(p);
    } else {
      if (scratch.length < n) scratch = new Float64Array(n);
      readRawValues(field, view, raw.rowBytes, n, scratch);
      for (let r = 0; r < n; r++) out[row + r] = BigInt(scratch[r]);
    }
  }
  return out;
}

// What the stage of a batch FITS file keeps of each table it staged by the raw path, for
// proving references inside the batch once every table is staged (see proveReferences).
interface RawStaged {
  readonly raw: CsvRawRows;
  readonly plan: RawCopyPlan;
  /** Every row's key, when rows archived already were left out (archivedRows). */
  readonly keys?: BigInt64Array;
}

// A reference whose every value is the key of a row of the same batch file is held before
// validation looks: that row is staged, or was left out because the archive holds its key,
// which it keeps (archivedRows). The staging table is marked (referenceHeld) and validation
// skips the look-up, which for a key left out would probe the key table once per row
// (300,000 detections of objects seen before: ~0.3 s). Only for references into a table
// whose archived rows were left out: the others validation checks against the staged rows,
// side by side (~0.05 s).
async function proveReferences(
  archive: Archive, batch: string, schema: BatchSchema, staged: ReadonlyMap<string, RawStaged>, signal?: AbortSignal,
): Promise<void> {
  for (const table of schema.tables) {
    const mine = staged.get(table.name.toLowerCase());
    if (mine === undefined) continue;
    const held: string[] = [];
    for (const ref of table.references) {
      const target = staged.get(ref.table.toLowerCase());
      const c = table.columns.findIndex((x) => x.name === ref.column);
      if (target?.keys === undefined || c < 0 || !INTEGER_TYPES.includes(table.columns[c].datatype)) continue;
      const values = await readRawIntegers(table, mine.raw, mine.plan.fields[c], signal);
      if (allAmong(values, target.keys)) held.push(referenceHeld(ref.column, ref.table));
    }
    if (held.length === 0) continue;
    const stg = stagingName(batch, table.name);
    await archive.db.exec(markStaging(stg, [...await stagingMarks(archive.db, stg), ...held]));
  }
}

// True when every one of `values` is one of `keys` (both sorted in place).
function allAmong(values: BigInt64Array, keys: BigInt64Array): boolean {
  values.sort();
  keys.sort();
  let k = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    while (k < keys.length && keys[k] < v) k++;
    if (k === keys.length || keys[k] !== v) return false;
  }
  return true;
}

// Bytes of FITS rows read per chunk of the raw path (its tuples, about twice that, stay in cache).
const RAW_CHUNK_BYTES = 1 << 20;

// What a COPY source found: a value refused (nothing kept), every value within its column's rules.
// (`keys`: the key's rise, followed when the table's key is one integer column)
interface CopyState { refused: boolean; rulesHeld: boolean; keys?: { column: number; rise: KeyRise } }

const INTEGER_TYPES: readonly ArchiveDatatype[] = ['long', 'int', 'short', 'unsignedByte'];

// The column of a table's key when it is one integer column (whose rise a load can follow).
function integerKey(table: ArchiveTable): number | undefined {
  if (table.primaryKey.length !== 1) return undefined;
  const c = table.columns.findIndex((x) => x.name === table.primaryKey[0]);
  return c >= 0 && INTEGER_TYPES.includes(table.columns[c].datatype) ? c : undefined;
}

/**
 * The connection of one stage worker (a pooled connection cannot stream a COPY): opened when
 * first needed, kept for the worker's COPYs and index builds, and replaced after a failed
 * COPY may have left it in an unknown state.
 */
class StageConnection {
  readonly #archive: Archive;
  #client: pg.Client | undefined;

  constructor(archive: Archive) {
    this.#archive = archive;
  }

  async client(): Promise<pg.Client> {
    if (this.#client !== undefined) return this.#client;
    const client = new pg.Client({ connectionString: this.#archive.connectionString });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (cause) {
      throw new PspsError('db_unreachable', `cannot connect to ${this.#archive.url} for COPY: ${(cause as Error).message}`, { cause });
    }
    // the bulk load needs no durability of its own: the batch's state moves on only after it
    await client.query("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'");
    this.#client = client;
    return client;
  }

  async end(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}

// Creates the staging table and runs one COPY from `source` in the creating transaction (so
// COPY may FREEZE the rows: validation and merge then read them without setting hint bits,
// which rewrites every page), and commits; returns the rows loaded, or undefined when the
// source refused its own values (problems listed, nothing kept).
async function copyRows(
  archive: Archive, batch: string, table: ArchiveTable, sql: string,
  source: (state: CopyState) => AsyncGenerator<Buffer>, conn: StageConnection, signal: AbortSignal | undefined, binary: boolean,
): Promise<number | undefined> {
  const name = stagingName(batch, table.name);
  const client = await conn.client();
  const key = binary ? integerKey(table) : undefined;
  const state: CopyState = { refused: false, rulesHeld: binary, ...(key !== undefined ? { keys: { column: key, rise: new KeyRise() } } : {}) };
  await client.query('BEGIN');
  try {
    await client.query(`DROP TABLE IF EXISTS ${name}`);
    const ddl = stagingDdl(archive, batch, table, name, { keysNotNull: binary });
    await client.query(ddl.create);
    const copy = client.query(copyFrom(sql));
    await (signal ? pipeline(source(state), copy, { signal }) : pipeline(source(state), copy));
    for (const statement of ddl.after) await client.query(statement);
    // validation then skips its scan for the column rules, its check of the key's uniqueness
    const marks = [...(state.rulesHeld ? [RULES_HELD] : []), ...(state.keys?.rise.rose ? [KEYS_ROSE] : []), ...(binary ? [NO_NULLS] : [])];
    if (marks.length > 0) await client.query(markStaging(name, marks));
    await client.query('COMMIT');
    return copy.rowCount;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    // (a COPY that failed may leave the connection in any state)
    await conn.end();
    if (state.refused) return undefined;
    throw error;
  }
}

/** Creates an empty staging table (dropping an older one of the same name). */
export async function createStagingTable(q: Queryable, batch: string, table: ArchiveTable): Promise<string> {
  const name = stagingName(batch, table.name);
  await q.exec(`DROP TABLE IF EXISTS ${name}`);
  await q.exec(`CREATE TABLE ${name} (${table.columns.map((c) => `${c.name} ${sqlType(c.datatype, q.dialect)}`).join(', ')})`);
  return name;
}

/**
 * True when every staging table of a loaded batch is still there, holding rows if its load
 * counted any (`rows`: table → rows). A server crash empties PostgreSQL's UNLOGGED staging
 * tables (see stagingDdl), whole: such a batch must be loaded again, never validated and
 * merged as empty. (Whether a table holds a row is one look; counting them cost ~0.06 s a
 * 300,000-row table, twice a batch, on the worker's path.)
 */
export async function stagingIntact(q: Queryable, batch: string, schema: BatchSchema, rows: Readonly<Record<string, number>>): Promise<boolean> {
  if (q.dialect.engine !== 'postgres') return true;
  for (const t of schema.tables) {
    const want = rows[t.name];
    if (want === undefined) continue;
    const name = stagingName(batch, t.name);
    const there = await q.get<{ r: string | null }>('SELECT to_regclass(?) AS r', [name]);
    if (there?.r === null || there?.r === undefined) return false;
    if (want > 0 && (await q.get(`SELECT 1 AS x FROM ${name} LIMIT 1`)) === undefined) return false;
  }
  return true;
}

/**
 * The statements that make a PostgreSQL staging table: `create` before its COPY, `after` once
 * the rows are in. For an archive table partitioned by batch it gets the archive table's
 * shape (the batch column fixed by a constraint; the columns the batch lacks added after the
 * COPY with their defaults, which PostgreSQL then keeps in its catalogue instead of writing
 * them into every row) so that the merge can attach it as the batch's partition; it is
 * logged, as it becomes archive data. Otherwise it has the batch's columns only and is
 * UNLOGGED: it writes no WAL (a server crash empties it; the ODM then loads again, see
 * stagingIntact). `keysNotNull`, for loads that write no nulls (binary COPY): the key columns
 * are declared NOT NULL, so that making the primary key needs no scan of the rows.
 */
export function stagingDdl(archive: Archive, batch: string, table: ArchiveTable, name: string, options: { keysNotNull?: boolean } = {}): { create: string; after: string[] } {
  const target = findTable(archive.schema.tables, table.name);
  // (a key column the COPY leaves null is for validation to list, unless the load writes no nulls)
  const notNull = (c: ArchiveColumn) => (options.keysNotNull && target?.primaryKey.includes(c.name) ? ' NOT NULL' : '');
  const own = table.columns.map((c) => `${c.name} ${sqlType(c.datatype, archive.dialect)}${notNull(c)}`);
  if (target === undefined || !archive.partitioned.has(target.name.toLowerCase())) {
    return { create: `CREATE UNLOGGED TABLE ${name} (${own.join(', ')})`, after: [] };
  }
  // NOT NULL and the CHECK let ATTACH PARTITION skip its scan of the rows
  own.push(`${BATCH_COLUMN} TEXT NOT NULL DEFAULT ${quoteText(batch)} CHECK (${BATCH_COLUMN} = ${quoteText(batch)})`);
  const staged = new Set(table.columns.map((c) => c.name.toLowerCase()));
  const rest = target.columns.filter((c) => !staged.has(c.name.toLowerCase())).map((c) => {
    const dflt = defaultLiteral(c, archive.dialect);
    return `ADD COLUMN ${c.name} ${sqlType(c.datatype, archive.dialect)}${dflt === 'NULL' ? '' : ` DEFAULT ${dflt}`}`;
  });
  // autovacuum's ANALYZE of the fresh rows holds a lock the merge's rename then waits a
  // second for (the rows are frozen by COPY; the merge turns it back on for the partition)
  return { create: `CREATE TABLE ${name} (${own.join(', ')}) WITH (autovacuum_enabled = false)`, after: rest.length > 0 ? [`ALTER TABLE ${name} ${rest.join(', ')}`] : [] };
}

/** The name of a staging (then partition) table's primary key constraint. */
export function keyConstraintName(table: string): string {
  return table.length <= 60 ? `${table}_pk` : `${table.slice(0, 51)}_${hashHex(table)}`;
}

function hashHex(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** One index a staging table needs, built once its rows are committed (see stagingIndexJobs). */
interface IndexJob {
  readonly sql: string;
  /** The unique index that becomes the primary key, once the table's last index is built. */
  readonly key?: string;
  readonly table: { readonly name: string; left: number; keyBuilt: boolean };
}

// The indexes a staging table of an archive table partitioned by batch needs before it is
// attached as the batch's partition: the archive's primary key (the key and the batch
// column; rows that break it leave it to validation, which lists them) and the archive
// table's other indexes, which ATTACH PARTITION then takes as they are. Each is a statement
// of its own on a committed table, so the two stage connections can build any of them,
// several on one table at once (CREATE INDEX locks share); the key is built as a unique
// index, whose constraint (a lock of the whole table) is added after the table's last index.
async function stagingIndexJobs(client: pg.Client, archive: Archive, batch: string, table: ArchiveTable): Promise<IndexJob[]> {
  const target = findTable(archive.schema.tables, table.name);
  if (target === undefined || !archive.partitioned.has(target.name.toLowerCase())) return [];
  const name = stagingName(batch, table.name);
  const defs = await client.query<{ def: string }>(
    'SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = to_regclass($1) AND NOT indisprimary', [target.name.toLowerCase()]);
  const creates = indexesOn(defs.rows.map((r) => r.def), name);
  const shared = { name, left: creates.length, keyBuilt: false };
  // the costlier builds first, so that the last to end is a short one: an expression index
  // (Q3C's computes a function of each row), the key (wider entries, checked unique), the rest
  const expression = creates.filter((sql) => /\(\s*\w+\(/.test(sql));
  const jobs: IndexJob[] = expression.map((sql) => ({ sql, table: shared }));
  if (target.primaryKey.length > 0) {
    const key = keyConstraintName(name);
    shared.left++;
    jobs.push({ sql: `CREATE UNIQUE INDEX ${key} ON ${name} (${[...target.primaryKey, BATCH_COLUMN].join(', ')})`, key, table: shared });
  }
  for (const sql of creates) if (!expression.includes(sql)) jobs.push({ sql, table: shared });
  return jobs;
}

// Builds one index of a staging table; after the table's last one, makes its unique key index
// the primary key.
async function runIndexJob(client: pg.Client, job: IndexJob): Promise<void> {
  if (job.key === undefined) {
    await client.query(job.sql);
  } else {
    try {
      await client.query(job.sql);
      job.table.keyBuilt = true;
    } catch (error) {
      if (!String((error as { code?: string }).code ?? '').startsWith('23')) throw error;
    }
  }
  if (--job.table.left > 0 || !job.table.keyBuilt) return;
  const key = keyConstraintName(job.table.name);
  await client.query(`ALTER TABLE ${job.table.name} ADD CONSTRAINT ${key} PRIMARY KEY USING INDEX ${key}`);
}

/** Drops every staging table of a batch (after its merge, or when it failed). */
export async function dropStaging(q: Queryable, batch: string, tables: readonly ArchiveTable[]): Promise<void> {
  for (const t of tables) await q.exec(`DROP TABLE IF EXISTS ${stagingName(batch, t.name)}`);
}

/**
 * Loads one CSV file into its staging table (created afresh, with the indexes a partitioned
 * archive's staging table needs); returns the rows loaded, or 0 with `problems` filled when
 * the file's header or values do not fit the table.
 */
export async function stageTable(archive: Archive, batch: string, input: StageInput, problems: ProblemList, signal?: AbortSignal): Promise<number> {
  if (archive.dialect.engine !== 'postgres') return (await stageCsv(archive, batch, input, problems, undefined, signal)) ?? 0;
  const conn = new StageConnection(archive);
  try {
    const rows = await stageCsv(archive, batch, input, problems, conn, signal);
    if (rows === undefined) return 0;
    for (const job of await stagingIndexJobs(await conn.client(), archive, batch, input.table)) await runIndexJob(await conn.client(), job);
    return rows;
  } finally {
    await conn.end();
  }
}

// stageTable on a stage connection (PostgreSQL); undefined when nothing was staged.
async function stageCsv(archive: Archive, batch: string, input: StageInput, problems: ProblemList, conn: StageConnection | undefined, signal?: AbortSignal): Promise<number | undefined> {
  const { table, path } = input;
  const header = await readHeader(path, table.name);
  const want = table.columns.map((c) => c.name);
  if (header.length !== want.length || header.some((h, i) => h !== want[i])) {
    problems.add({
      table: table.name, column: '', row: 0, value: header.join(','), rule: 'columns',
      detail: `the CSV's columns must be the schema's, in order: ${want.join(',')}`,
    });
    return undefined;
  }
  if (conn !== undefined) return copyTable(archive, batch, input, problems, conn, signal);
  return insertTable(archive, batch, input, problems, signal);
}

async function readHeader(path: string, table: string): Promise<string[]> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw new PspsError('psps_cannot_read', `${table}: cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const end = text.indexOf('\n');
    const line = (end < 0 ? text : text.slice(0, end)).replace(/\r$/, '');
    return line === '' ? [] : line.split(',').map((s) => s.replace(/^"(.*)"$/, '$1').trim());
  } finally {
    await handle.close();
  }
}

async function copyTable(archive: Archive, batch: string, input: StageInput, problems: ProblemList, conn: StageConnection, signal?: AbortSignal): Promise<number | undefined> {
  const cols = input.table.columns.map((c) => c.name).join(', ');
  const sql = `COPY ${stagingName(batch, input.table.name)} (${cols}) FROM STDIN WITH (FORMAT csv, HEADER true, FREEZE true)`;
  try {
    // (a CSV file's values are checked by COPY, and their rules by validation)
    return await copyRows(archive, batch, input.table, sql, async function* () {
      yield* createReadStream(input.path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
    }, conn, signal, false);
  } catch (error) {
    const state = (error as { code?: string }).code ?? '';
    if (!state.startsWith('22')) throw error;
    // a value PostgreSQL cannot take: find every offending row with the checker
    const before = problems.total;
    await checkFile(input, problems, signal);
    if (problems.total === before) {
      problems.add({ table: input.table.name, column: '', row: 0, value: '', rule: 'type', detail: `PostgreSQL refused the file: ${(error as Error).message}` });
    }
    return undefined;
  }
}

// Rows per INSERT statement: under SQLite's 32,766 parameters.
const MAX_PARAMS = 30_000;

// Column types the CSV reader parses SQLite's staging values into: numbers as numbers (the
// reader's byte parsers are far cheaper than strings checked and bound as text), unsignedByte
// wide enough that 0..255 stays a range rule with its own reason.
const READ_TYPE: Record<ArchiveDatatype, ColumnType> = {
  long: 'int64', int: 'int32', short: 'int16', unsignedByte: 'int16', float: 'float64', double: 'float64', char: 'string', boolean: 'boolean',
};

async function insertTable(archive: Archive, batch: string, input: StageInput, problems: ProblemList, signal?: AbortSignal): Promise<number> {
  const { table, path } = input;
  const ncol = table.columns.length;
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / ncol));
  const tuple = `(${table.columns.map(() => '?').join(',')})`;
  const csv = await readCsv(path, { schema: table.columns.map((c) => columnInfo(c.name, READ_TYPE[c.datatype])), ...(signal ? { signal } : {}) });
  try {
    return await archive.db.transaction(async (tx) => {
      const name = await createStagingTable(tx, batch, table);
      const full = `INSERT INTO ${name} VALUES ${Array(perStatement).fill(tuple).join(',')}`;
      let rows = 0;
      for await (const b of csv.batches({ batchRows: perStatement * 8, ...(signal ? { signal } : {}) })) {
        for (let start = 0; start < b.rowCount; start += perStatement) {
          const n = Math.min(perStatement, b.rowCount - start);
          const params: SqlValue[] = new Array(n * ncol);
          for (let c = 0; c < ncol; c++) {
            const { values, valid } = b.columns[c];
            const v = values as ArrayLike<SqlValue>;
            for (let r = start, k = c; r < start + n; r++, k += ncol) params[k] = valid !== undefined && valid[r] === 0 ? null : v[r];
          }
          await tx.run(n === perStatement ? full : `INSERT INTO ${name} VALUES ${Array(n).fill(tuple).join(',')}`, params);
        }
        rows += b.rowCount;
      }
      return rows;
    }, { retries: 0 });
  } catch (error) {
    if (!(error instanceof CsvError && error.code === 'csv_bad_value')) throw error;
    // a value the reader refused: the checker lists every offending row (nothing was staged)
    const before = problems.total;
    await checkFile(input, problems, signal);
    if (problems.total === before) problems.add({ table: table.name, column: '', row: 0, value: '', rule: 'type', detail: error.message });
    return 0;
  }
}

// Checks every value of a batch of rows (strings); true when one is bad.
function checkBatch(table: ArchiveTable, b: ColumnBatch, checkers: readonly ((s: string) => string | undefined)[], rowBase: number, problems: ProblemList): boolean {
  let bad = false;
  for (let c = 0; c < checkers.length; c++) {
    const col = b.columns[c];
    const values = col.values as string[];
    const valid = col.valid;
    const check = checkers[c];
    for (let r = 0; r < b.rowCount; r++) {
      if (valid !== undefined && valid[r] === 0) continue;
      const why = check(values[r]);
      if (why === undefined) continue;
      bad = true;
      problems.add({ table: table.name, column: table.columns[c].name, row: rowBase + r + 1, value: values[r], rule: 'type', detail: why });
    }
  }
  return bad;
}

/** Sends a whole file through the value checker, adding every bad value to `problems`. */
export async function checkFile(input: StageInput, problems: ProblemList, signal?: AbortSignal): Promise<void> {
  const { table, path } = input;
  const checkers = table.columns.map((c) => valueChecker(c));
  const csv = await readCsv(path, { schema: table.columns.map((c) => columnInfo(c.name, 'string')), ...(signal ? { signal } : {}) });
  let rows = 0;
  for await (const b of csv.batches(signal ? { signal } : {})) {
    checkBatch(table, b, checkers, rows, problems);
    rows += b.rowCount;
  }
}

const INTEGER = /^\s*[+-]?\d+\s*$/;
const FLOAT = /^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf|infinity)\s*$/i;
const BOOLEAN = /^\s*(t|true|f|false|1|0)\s*$/i;
const INT_LIMITS: Partial<Record<ArchiveDatatype, [bigint, bigint]>> = {
  long: [-(2n ** 63n), 2n ** 63n - 1n],
  int: [-(2n ** 31n), 2n ** 31n - 1n],
  short: [-32768n, 32767n],
  unsignedByte: [-32768n, 32767n], // stored as SMALLINT: 0..255 is a range rule, checked after loading
};
const FLOAT32_MAX = 3.4028234663852886e38;

/** A function that says why a CSV value is not of a column's type (undefined when it is). */
export function valueChecker(column: ArchiveColumn): (text: string) => string | undefined {
  const d = column.datatype;
  const limits = INT_LIMITS[d];
  if (limits) {
    const [lo, hi] = limits;
    const what = `must be an integer from ${lo} to ${hi} (${d})`;
    return (s) => {
      if (!INTEGER.test(s)) return what;
      if (s.length < 10) return undefined;
      const v = BigInt(s.trim());
      return v < lo || v > hi ? what : undefined;
    };
  }
  if (d === 'float' || d === 'double') {
    const what = `must be a number (${d})`;
    return (s) => {
      if (!FLOAT.test(s)) return what;
      if (d === 'float') {
        const v = Math.abs(Number(s));
        if (Number.isFinite(v) && v > FLOAT32_MAX) return `must fit a 32-bit float (${d})`;
      }
      return undefined;
    };
  }
  if (d === 'boolean') return (s) => (BOOLEAN.test(s) ? undefined : 'must be true or false (boolean)');
  return () => undefined;
}
