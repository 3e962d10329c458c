// The ODM (loader and merger): takes batches the DXLayer hands over, loads their CSV files
// into staging tables, validates them, marks them merge-worthy or failed with reasons, and
// merges the merge-worthy ones into the archive. Its state lives in the psps database; one
// worker takes one step of one batch at a time, oldest batch first, each step ending in a
// state change that names the batch's generation, so a reload or a crash at any point leaves
// nothing half-done (steps are redone from the last recorded state on start; a merge is
// recorded in the archive in its own transaction and never repeated). On PostgreSQL a second
// lane loads the next batch while the worker validates and merges (and compacts after) the
// one before: staging writes only the batch's own tables, so it may overlap; validation
// still waits for every older batch to be merged, since it checks references to merged rows.
import { rm, stat } from 'node:fs/promises';
import { basename, isAbsolute, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../common/index.ts';
import { DbError, type Database, type SqlValue } from '../db/index.ts';
import type { Archive } from './archive.ts';
import { PspsError } from './errors.ts';
import { compactArchive, DEFAULT_BATCHES_PER_PARTITION, type CompactOptions } from './compact.ts';
import { mergeBatch, mergedGeneration } from './merge.ts';
import { ProblemList } from './problems.ts';
import { batchSchemaOf, findTable, type BatchSchema } from './schema.ts';
import { BATCH_NAME, dropStaging, stageBatch, stagingIntact } from './stage.ts';
import { validateBatch } from './validate.ts';

/** The states of a batch in the ODM, in the order they are reached. */
export const ODM_STATES = ['received', 'loaded', 'merge_worthy', 'failed', 'merged'] as const;
/** One of {@link ODM_STATES}. */
export type OdmState = (typeof ODM_STATES)[number];

/** A batch as the status service reports it. */
export interface OdmBatchStatus {
  readonly name: string;
  readonly product: string;
  readonly type: string;
  readonly state: OdmState;
  readonly receivedAt: string;
  readonly loadedAt: string | null;
  readonly mergeWorthyAt: string | null;
  readonly failedAt: string | null;
  readonly mergedAt: string | null;
  readonly reasons: string[];
  /** Rows per table of the batch (as loaded). */
  readonly rows: Record<string, number>;
  /** How many times this batch name was handed over (a reload makes a new generation). */
  readonly generation: number;
  /** The md5 of the batch FITS file handed over, when the DXLayer gave it. */
  readonly md5: string | null;
  /** When the DXLayer's copy was deleted (through DELETE /batches/:name/copy). */
  readonly copyDeletedAt: string | null;
  readonly updatedAt: string;
}

/** One CSV file of a batch handed over. */
export interface OdmTableFile {
  /** The archive table. */
  readonly name: string;
  /** Absolute path of the CSV file on the ODM's host. */
  readonly path: string;
  readonly rows?: number;
}

/** A batch handed to the ODM by the DXLayer (`POST /batches`). */
export interface OdmSubmission {
  readonly name: string;
  readonly product: string;
  readonly type: string;
  readonly md5?: string;
  /** The DXLayer's directory holding this batch (deleted by `DELETE /batches/:name/copy`). */
  readonly dir?: string;
  readonly tables: readonly OdmTableFile[];
  /**
   * Absolute path of the batch FITS file on the ODM's host, when the DXLayer gives it: a
   * PostgreSQL archive then stages from it by binary COPY (the CSV files are not read).
   */
  readonly fits?: string;
  /** The datastore fileset the batch came from (its id): a new fileset of the same md5 is still a reload. */
  readonly filesetId?: number;
  /** Set when the DXLayer could not convert the batch: the batch is failed at once with this reason. */
  readonly error?: string;
}

/** Which batches a listing wants. */
export interface OdmBatchQuery {
  readonly state?: OdmState;
  readonly type?: string;
  readonly product?: string;
  /** Only batches changed at or after this ISO-8601 time. */
  readonly since?: string;
  readonly limit?: number;
}

/** Options of {@link Odm.start}. */
export interface OdmOptions {
  /** The psps database (PSPS_MIGRATIONS applied). */
  readonly db: Database;
  readonly archive: Archive;
  readonly log?: Logger;
  /** Offending rows listed per failed batch (default 20). */
  readonly maxReasons?: number;
  /** Wait before retrying after the database was unreachable (default 1000 ms). */
  readonly retryMs?: number;
  /** When set, DELETE /batches/:name/copy only removes directories inside this one (the DXLayer's root on the shared disk). */
  readonly copyRoot?: string;
  /**
   * An archive partitioned by batch: after each merge, fold the batch's tables' partitions
   * (compactArchive, when a level has K of them; default K; while other batches wait, only
   * once a level has 2K, the rest after the queue empties). On by default: cone searches,
   * reference look-ups into tables without a key table and key look-ups whose range meets many
   * partitions go to each of them, so without folds they slow with the batch count.
   * `false`: no folds here (a fold holds the merge lock, so the worker merges nothing
   * meanwhile, though the second lane keeps loading); run `ipp archive compact` instead.
   */
  readonly compact?: false | Pick<CompactOptions, 'batchesPerPartition' | 'keepRecent'>;
  /**
   * Load the next batch while the worker validates and merges the one before (see the file
   * comment). Default: on for a PostgreSQL archive; SQLite has one writer at a time, so off.
   */
  readonly stageAhead?: boolean;
}

type BatchRow = {
  name: string; product: string; batch_type: string; generation: number; state: string; md5: string | null; dir: string | null;
  tables_json: string; rows_json: string | null; received_at: string; loaded_at: string | null; merge_worthy_at: string | null;
  failed_at: string | null; merged_at: string | null; copy_deleted_at: string | null; updated_at: string; fileset_id: number | null;
  fits_path: string | null;
};

const PENDING = ['received', 'loaded', 'merge_worthy'];

/** The ODM: see the file comment. */
export class Odm {
  readonly db: Database;
  readonly archive: Archive;
  readonly #log: Logger;
  readonly #maxReasons: number;
  readonly #retryMs: number;
  readonly #copyRoot: string | undefined;
  readonly #compact: OdmOptions['compact'];
  readonly #stop = new AbortController();
  // each lane naps when it has nothing to do, until woken or 2 s have passed
  readonly #worker = new Nap();
  #loop: Promise<void> = Promise.resolve();
  #busy = false;
  #idleWaiters: (() => void)[] = [];
  readonly #stageAhead: boolean;
  #ahead: Promise<void> = Promise.resolve();
  readonly #aheadNap = new Nap();
  // The batch the ahead lane is loading (its name and the step's end), and the one the worker
  // is on: each lane claims its batch in the same turn as it checks the other's claim.
  #loading: { name: string; done: Promise<void> } | undefined;
  #workerOn: string | undefined;

  private constructor(options: OdmOptions) {
    this.db = options.db;
    this.archive = options.archive;
    this.#log = options.log ?? silentLogger;
    this.#maxReasons = options.maxReasons ?? 20;
    this.#retryMs = options.retryMs ?? 1000;
    this.#copyRoot = options.copyRoot === undefined ? undefined : resolve(options.copyRoot);
    this.#compact = options.compact ?? {};
    this.#stageAhead = options.stageAhead ?? this.archive.dialect.engine === 'postgres';
  }

  /** Starts the ODM: its worker picks up any batch a previous run left unfinished. */
  static async start(options: OdmOptions): Promise<Odm> {
    const odm = new Odm(options);
    const left = await odm.db.all<{ name: string; state: string }>(`SELECT name, state FROM odm_batch WHERE state IN ('received', 'loaded', 'merge_worthy') ORDER BY received_at`);
    if (left.length > 0) odm.#log.info(`odm: resuming ${left.length} unfinished batch${left.length === 1 ? '' : 'es'}: ${left.map((b) => `${b.name} (${b.state})`).join(', ')}`);
    if (odm.archive.partitioned.size > 0) {
      // a partition is written once, in the transaction that creates it: WAL for it is only
      // needed for replication or archiving (see the psps README, the archive's server)
      const wal = (await odm.archive.db.get<{ w: string }>('SELECT current_setting(\'wal_level\') AS w'))?.w;
      if (wal !== undefined && wal !== 'minimal') odm.#log.info(`odm: the archive's server has wal_level=${wal}: each batch's rows and indexes are written twice (data and WAL); a server without replicas or WAL archiving loads ~10% faster with wal_level=minimal`);
    }
    odm.#loop = odm.#run();
    if (odm.#stageAhead) odm.#ahead = odm.#runAhead();
    return odm;
  }

  /**
   * Takes a batch handed over. A batch already held with the same md5 from the same fileset
   * is not loaded again (a DXLayer that repeats a hand-over after a crash); otherwise a new
   * generation replaces whatever the ODM held under that name.
   */
  async submit(s: OdmSubmission): Promise<{ status: OdmBatchStatus; accepted: boolean }> {
    checkSubmission(s);
    if (s.error === undefined) batchSchemaOf(this.archive.schema, s.type);
    const now = new Date().toISOString();
    const accepted = await this.db.transaction(async (tx) => {
      const old = await tx.get<BatchRow>('SELECT * FROM odm_batch WHERE name = ?', [s.name]);
      const sameFileset = (old?.fileset_id ?? null) === null ? s.filesetId === undefined : Number(old!.fileset_id) === s.filesetId;
      if (old && s.md5 !== undefined && old.md5 === s.md5 && sameFileset) return false;
      const generation = Number(old?.generation ?? 0) + 1;
      const values: SqlValue[] = [s.product, s.type, generation, s.md5 ?? null, s.dir ?? null, JSON.stringify(s.tables), s.filesetId ?? null, s.fits ?? null, now, now];
      if (old) {
        await tx.run(`UPDATE odm_batch SET product = ?, batch_type = ?, generation = ?, state = 'received', md5 = ?, dir = ?, tables_json = ?,
          fileset_id = ?, fits_path = ?, rows_json = NULL, received_at = ?, loaded_at = NULL, merge_worthy_at = NULL, failed_at = NULL, merged_at = NULL,
          copy_deleted_at = NULL, updated_at = ? WHERE name = ?`, [...values, s.name]);
      } else {
        await tx.run(`INSERT INTO odm_batch (product, batch_type, generation, state, md5, dir, tables_json, fileset_id, fits_path, received_at, updated_at, name)
          VALUES (?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?)`, [...values, s.name]);
      }
      await tx.run('DELETE FROM odm_reason WHERE name = ?', [s.name]);
      if (s.error !== undefined) {
        await tx.run(`UPDATE odm_batch SET state = 'failed', failed_at = ? WHERE name = ?`, [now, s.name]);
        await tx.run('INSERT INTO odm_reason (name, seq, reason) VALUES (?, 1, ?)', [s.name, `the DXLayer could not convert the batch: ${s.error}`]);
      }
      return true;
    });
    if (accepted) {
      this.#log.info(`odm: received ${s.name} (${s.type}, ${s.tables.length} tables)`);
      this.#worker.wake();
      this.#aheadNap.wake();
    }
    return { status: await this.status(s.name), accepted };
  }

  /** One batch's status; `unknown_batch` when the ODM never got it. */
  async status(name: string): Promise<OdmBatchStatus> {
    const row = await this.db.get<BatchRow>('SELECT * FROM odm_batch WHERE name = ?', [name]);
    if (!row) throw new PspsError('unknown_batch', `the ODM has no batch ${name}`);
    return this.#toStatus(row, (await this.#reasonsOf([name])).get(name) ?? []);
  }

  /** Batches by state, type, product and time of their last change. */
  async list(query: OdmBatchQuery = {}): Promise<OdmBatchStatus[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (query.state !== undefined) { where.push('state = ?'); params.push(query.state); }
    if (query.type !== undefined) { where.push('batch_type = ?'); params.push(query.type); }
    if (query.product !== undefined) { where.push('product = ?'); params.push(query.product); }
    if (query.since !== undefined) { where.push('updated_at >= ?'); params.push(query.since); }
    params.push(query.limit ?? 100_000);
    const rows = await this.db.all<BatchRow>(
      `SELECT * FROM odm_batch${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at, name LIMIT ?`, params);
    const reasons = await this.#reasonsOf(rows.filter((r) => r.state === 'failed').map((r) => r.name));
    return rows.map((r) => this.#toStatus(r, reasons.get(r.name) ?? []));
  }

  /** Counts of batches per state. */
  async counts(): Promise<Record<string, number>> {
    const rows = await this.db.all<{ state: string; n: number }>('SELECT state, count(*) AS n FROM odm_batch GROUP BY state');
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /**
   * Deletes the DXLayer's copy of a batch (its directory, recorded when it was handed over or
   * taken); idempotent. Refused (`batch_busy`) while the batch waits to be loaded from it.
   */
  async deleteCopy(name: string): Promise<{ name: string; deleted: boolean }> {
    const row = await this.db.get<BatchRow>('SELECT * FROM odm_batch WHERE name = ?', [name]);
    const taken = await this.db.all<{ dir: string }>('SELECT DISTINCT dir FROM dxlayer_batch WHERE name = ?', [name]);
    if (!row && taken.length === 0) throw new PspsError('unknown_batch', `neither the ODM nor the DXLayer has a batch ${name}`);
    if (row?.state === 'received') throw new PspsError('batch_busy', `batch ${name} is waiting to be loaded from the DXLayer's copy; ask again once it is loaded`);
    const dirs = new Set<string>(taken.map((t) => t.dir));
    if (row?.dir) dirs.add(row.dir);
    let deleted = false;
    for (const dir of dirs) {
      // only a directory named after the batch is ever removed
      if (!isAbsolute(dir) || basename(dir) !== name) continue;
      if (this.#copyRoot !== undefined && !resolve(dir).startsWith(`${this.#copyRoot}${sep}`)) {
        this.#log.warn(`odm: not deleting ${dir}: it is outside the DXLayer directory ${this.#copyRoot}`);
        continue;
      }
      const there = await stat(dir).then((s) => s.isDirectory(), () => false);
      if (!there) continue;
      await rm(dir, { recursive: true, force: true });
      deleted = true;
    }
    const now = new Date().toISOString();
    if (row) await this.db.run('UPDATE odm_batch SET copy_deleted_at = COALESCE(copy_deleted_at, ?) WHERE name = ?', [now, name]);
    await this.db.run(`UPDATE dxlayer_batch SET state = 'deleted', deleted_at = COALESCE(deleted_at, ?) WHERE name = ?`, [now, name]);
    if (deleted) this.#log.info(`odm: deleted the DXLayer copy of ${name}`);
    return { name, deleted };
  }

  /** Resolves when the worker has nothing left to do (for tests and `--once` runs). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#worker.wake();
    });
  }

  /** Stops the worker after the step it is taking. */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#worker.wake();
    this.#aheadNap.wake();
    await Promise.all([this.#loop, this.#ahead]);
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let next: BatchRow | undefined;
      try {
        next = await this.#oldestPending();
      } catch (error) {
        if (signal.aborted) return;
        this.#log.warn(`odm: cannot read the batch table: ${(error as Error).message}; retrying`);
        await sleep(this.#retryMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!next) {
        for (const w of this.#idleWaiters.splice(0)) w();
        await this.#worker.sleep();
        continue;
      }
      const loading = this.#loading;
      if (loading?.name === next.name) {
        // the ahead lane is loading it: its result decides the next step
        await loading.done;
        continue;
      }
      this.#busy = true;
      this.#workerOn = next.name;
      this.#aheadNap.wake();
      try {
        await this.#step(next, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (isRetryable(error)) {
          this.#log.warn(`odm: ${next.name}: ${(error as Error).message}; retrying in ${this.#retryMs} ms`);
          await sleep(this.#retryMs, undefined, { signal }).catch(() => undefined);
        } else {
          await this.#stepFailed(next, error);
        }
      } finally {
        this.#busy = false;
        this.#workerOn = undefined;
      }
    }
  }

  // The ahead lane: loads the oldest received batch while the worker is busy with an older
  // one, when no loaded batch waits for validation already (one batch ahead at most: staged
  // rows take the archive's disk). The worker does every other step, in order.
  async #runAhead(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let next: BatchRow | undefined;
      try {
        const oldest = await this.#oldestPending();
        const waiting = await this.db.get<{ n: number }>(`SELECT count(*) AS n FROM odm_batch WHERE state = 'loaded'`);
        if (oldest !== undefined && Number(waiting?.n ?? 0) === 0) {
          next = await this.db.get<BatchRow>(
            `SELECT * FROM odm_batch WHERE state = 'received' AND name <> ? ORDER BY received_at, name LIMIT 1`, [oldest.name]);
        }
      } catch (error) {
        if (signal.aborted) return;
        this.#log.warn(`odm: cannot read the batch table: ${(error as Error).message}; retrying`);
      }
      if (!next || next.name === this.#workerOn || signal.aborted) {
        await this.#aheadNap.sleep();
        continue;
      }
      const b = next;
      let pause = false;
      const done = this.#step(b, signal).catch(async (error: unknown) => {
        if (signal.aborted) return;
        if (isRetryable(error)) {
          // the worker loads it when it comes to it
          this.#log.warn(`odm: ${b.name}: ${(error as Error).message}; the worker loads it when it comes to it`);
          pause = true;
          return;
        }
        await this.#stepFailed(b, error);
      });
      this.#loading = { name: b.name, done };
      await done;
      this.#loading = undefined;
      this.#worker.wake();
      if (pause) await sleep(this.#retryMs, undefined, { signal }).catch(() => undefined);
    }
  }

  // The batch the worker takes next: the oldest not merged or failed.
  #oldestPending(): Promise<BatchRow | undefined> {
    return this.db.get<BatchRow>(
      `SELECT * FROM odm_batch WHERE state IN (${PENDING.map(() => '?').join(', ')}) ORDER BY received_at, name LIMIT 1`, PENDING);
  }

  // A step that failed for good: logged, and the batch failed with the step it could not take.
  async #stepFailed(b: BatchRow, error: unknown): Promise<void> {
    this.#log.error(`odm: ${b.name}: ${(error as Error).message}`);
    await this.#fail(b, [`the ODM could not ${b.state === 'merge_worthy' ? 'merge' : b.state === 'loaded' ? 'validate' : 'load'} the batch: ${(error as Error).message}`])
      .catch((e: Error) => this.#log.error(`odm: ${b.name}: cannot record the failure: ${e.message}`));
  }

  async #step(b: BatchRow, signal: AbortSignal): Promise<void> {
    const schema = batchSchemaOf(this.archive.schema, b.batch_type);
    const generation = Number(b.generation);
    if (b.state === 'received') {
      const problems = new ProblemList(this.#maxReasons);
      const rows = await this.#load(b, schema, problems, signal);
      if (problems.total > 0) {
        await this.#fail(b, problems.reasons());
        return;
      }
      if (await this.#move(b, 'received', 'loaded', { loaded_at: now(), rows_json: JSON.stringify(rows) })) {
        this.#log.info(`odm: loaded ${b.name}: ${Object.entries(rows).map(([t, n]) => `${t} ${n}`).join(', ')}`);
      }
    } else if (b.state === 'loaded') {
      if (!(await this.#stagingKept(b, schema))) return;
      const problems = await validateBatch(this.archive, b.name, schema, this.#maxReasons);
      if (problems.total > 0) {
        await this.#fail(b, problems.reasons());
        return;
      }
      if (await this.#move(b, 'loaded', 'merge_worthy', { merge_worthy_at: now() })) this.#log.info(`odm: ${b.name} is merge-worthy`);
    } else if (b.state === 'merge_worthy') {
      if (await mergedGeneration(this.archive.db, b.name) !== generation) {
        if (!(await this.#stagingKept(b, schema))) return;
        const result = await mergeBatch(this.archive, b.name, generation, schema);
        if (result.merged) this.#log.info(`odm: merged ${b.name}: ${Object.entries(result.rows).map(([t, n]) => `${t} ${n}`).join(', ')}`);
      }
      await this.#move(b, 'merge_worthy', 'merged', { merged_at: now() });
      await this.#compactAfterMerge(schema, signal);
    }
  }

  // The compaction asked for after a merge; one that fails leaves the archive as it was (and
  // the batch merged), so it is reported and tried again after the next merge. Loading comes
  // first: while other batches wait, a level is folded only once it holds 2K partitions (a
  // fold holds the merge lock, and rewrites its rows, for seconds to minutes); the folds left
  // run once the queue is empty. Loading no longer needs them (key tables, key-probe.ts);
  // cone searches do, so the partition count stays bounded through a long run.
  async #compactAfterMerge(schema: BatchSchema, signal: AbortSignal): Promise<void> {
    if (this.#compact === false || this.archive.partitioned.size === 0) return;
    const k = this.#compact?.batchesPerPartition ?? DEFAULT_BATCHES_PER_PARTITION;
    try {
      const waiting = await this.#oldestPending();
      await compactArchive(this.archive, {
        ...this.#compact, ...(waiting === undefined ? {} : { foldAt: 2 * k }), tables: schema.tables.map((t) => t.name), signal, log: this.#log,
      });
    } catch (error) {
      if (signal.aborted) return;
      this.#log.warn(`odm: compaction after a merge failed, the archive is as before it: ${(error as Error).message}`);
    }
  }

  // A batch whose staged rows were lost (a PostgreSQL crash empties UNLOGGED tables) goes
  // back to received and is loaded again from the DXLayer's files.
  async #stagingKept(b: BatchRow, schema: BatchSchema): Promise<boolean> {
    const rows = b.rows_json ? JSON.parse(b.rows_json) as Record<string, number> : {};
    if (await stagingIntact(this.archive.db, b.name, schema, rows)) return true;
    if (await this.#move(b, b.state as OdmState, 'received', { loaded_at: null, merge_worthy_at: null, rows_json: null })) {
      this.#log.warn(`odm: ${b.name}: its staged rows are gone (a database restart empties staging); loading it again`);
    }
    return false;
  }

  async #load(b: BatchRow, schema: BatchSchema, problems: ProblemList, signal: AbortSignal): Promise<Record<string, number>> {
    const files = JSON.parse(b.tables_json) as OdmTableFile[];
    const rows: Record<string, number> = {};
    for (const f of files) {
      if (!findTable(schema.tables, f.name)) {
        problems.add({ table: f.name, column: '', row: 0, value: '', rule: 'file', detail: `a ${schema.type} batch has no table ${f.name}; it has ${schema.tables.map((t) => t.name).join(', ')}` });
      }
    }
    Object.assign(rows, await stageBatch(this.archive, b.name, schema, files, problems, signal, b.fits_path ? { fits: b.fits_path } : {}));
    return rows;
  }

  async #fail(b: BatchRow, reasons: string[]): Promise<void> {
    const schema = this.archive.schema.batches.find((s) => s.type === b.batch_type);
    const moved = await this.db.transaction(async (tx) => {
      const t = now();
      const r = await tx.run(`UPDATE odm_batch SET state = 'failed', failed_at = ?, updated_at = ? WHERE name = ? AND generation = ? AND state = ?`,
        [t, t, b.name, b.generation, b.state]);
      if (r.changes === 0) return false;
      await tx.run('DELETE FROM odm_reason WHERE name = ?', [b.name]);
      for (let i = 0; i < reasons.length; i++) await tx.run('INSERT INTO odm_reason (name, seq, reason) VALUES (?, ?, ?)', [b.name, i + 1, reasons[i]]);
      return true;
    });
    if (schema) await dropStaging(this.archive.db, b.name, schema.tables).catch(() => undefined);
    if (moved) this.#log.warn(`odm: ${b.name} failed: ${reasons[0]}${reasons.length > 1 ? ` (+${reasons.length - 1} more)` : ''}`);
  }

  // A state change of the generation seen; false when a reload (or another ODM) got there first.
  async #move(b: BatchRow, from: OdmState, to: OdmState, fields: Record<string, SqlValue>): Promise<boolean> {
    const names = Object.keys(fields);
    const r = await this.db.run(
      `UPDATE odm_batch SET state = ?, updated_at = ?${names.map((n) => `, ${n} = ?`).join('')} WHERE name = ? AND generation = ? AND state = ?`,
      [to, now(), ...names.map((n) => fields[n]), b.name, b.generation, from]);
    return r.changes > 0;
  }

  async #reasonsOf(names: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      const rows = await this.db.all<{ name: string; reason: string }>(
        `SELECT name, reason FROM odm_reason WHERE name IN (${chunk.map(() => '?').join(', ')}) ORDER BY name, seq`, chunk);
      for (const r of rows) {
        const list = out.get(r.name) ?? [];
        list.push(r.reason);
        out.set(r.name, list);
      }
    }
    return out;
  }

  #toStatus(r: BatchRow, reasons: string[]): OdmBatchStatus {
    return {
      name: r.name, product: r.product, type: r.batch_type, state: r.state as OdmState,
      receivedAt: r.received_at, loadedAt: r.loaded_at, mergeWorthyAt: r.merge_worthy_at, failedAt: r.failed_at, mergedAt: r.merged_at,
      reasons, rows: r.rows_json ? JSON.parse(r.rows_json) as Record<string, number> : {},
      generation: Number(r.generation), md5: r.md5, copyDeletedAt: r.copy_deleted_at, updatedAt: r.updated_at,
    };
  }

  /** True while a step is being taken (for tests). */
  get busy(): boolean {
    return this.#busy;
  }
}

function now(): string {
  return new Date().toISOString();
}

function isRetryable(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return (error instanceof DbError || error instanceof PspsError) && (code === 'db_unreachable' || code === 'db_busy' || code === 'db_closed');
}

function checkSubmission(s: OdmSubmission): void {
  const bad = (what: string) => new PspsError('psps_bad_batch', `batch hand-over: ${what}`);
  if (typeof s !== 'object' || s === null) throw bad('the body must be a JSON object');
  if (typeof s.name !== 'string' || !BATCH_NAME.test(s.name)) throw bad(`name "${String(s.name)}" must be 1-32 letters, digits or _`);
  if (typeof s.product !== 'string' || s.product === '') throw bad('product must be a non-empty string');
  if (typeof s.type !== 'string' || s.type === '') throw bad('type must be a batch type such as P2');
  if (s.md5 !== undefined && (typeof s.md5 !== 'string' || !/^[0-9a-f]{32}$/.test(s.md5))) throw bad('md5 must be 32 lower-case hex digits');
  if (s.filesetId !== undefined && !Number.isSafeInteger(s.filesetId)) throw bad('filesetId must be a whole number');
  if (s.dir !== undefined && (typeof s.dir !== 'string' || !isAbsolute(s.dir))) throw bad('dir must be an absolute path');
  if (s.error !== undefined && typeof s.error !== 'string') throw bad('error must be a string');
  if (s.fits !== undefined && (typeof s.fits !== 'string' || !isAbsolute(s.fits))) throw bad('fits must be an absolute path');
  if (!Array.isArray(s.tables)) throw bad('tables must be a list of { name, path }');
  for (const t of s.tables) {
    if (typeof t?.name !== 'string' || typeof t.path !== 'string' || !isAbsolute(t.path)) throw bad('each table needs a name and an absolute path');
  }
}

// A lane's pause when it has nothing to do: until woken, or 2 s at most (a batch handed to
// another process's ODM, a state changed by hand).
class Nap {
  #wake: (() => void) | undefined;

  sleep(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.#wake = undefined; resolve(); }, 2000);
      this.#wake = () => { clearTimeout(timer); this.#wake = undefined; resolve(); };
    });
  }

  wake(): void {
    this.#wake?.();
  }
}
