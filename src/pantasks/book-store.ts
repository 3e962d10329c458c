// Writes the books to the database and reads them back after a restart. The scheduler writes
// the changes of a tick in one transaction before it starts that tick's jobs, so a page is in
// state RUN in the database before its job exists: a server killed at any moment comes back
// knowing every page that may have a job, and never hands a row to a second job unknowingly.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { openDatabase, type Database, type Queryable, type SqlValue } from '../db/index.ts';
import type { Books, Page, PageWords } from './book.ts';
import { PANTASKS_MIGRATIONS } from './migrations.ts';

const COLUMNS = ['book', 'page_key', 'ord', 'state', 'words', 'job_id', 'job_host', 'job_handle'];
/** Rows per statement: under both engines' parameter limits. */
const ROWS_PER_STATEMENT = 3000;
const KEYS_PER_DELETE = 1000;

/** The rows a restarted scheduler reads back. */
export interface StoredPage {
  readonly book: string;
  readonly key: string;
  readonly ord: number;
  readonly state: string;
  readonly words: PageWords;
  readonly jobId: number | null;
  readonly jobHost: string | null;
  readonly jobHandle: string | null;
}

/** The scheduler's database: its instance id and its books. */
export class BookStore {
  readonly db: Database;
  /** This scheduler's id, made once per database; child processes and Slurm jobs carry it. */
  readonly instance: string;
  #writes = 0;
  #savedJobId = -1;

  private constructor(db: Database, instance: string) {
    this.db = db;
    this.instance = instance;
  }

  /** Opens (creating when new) the scheduler's database. */
  static async open(url: string): Promise<BookStore> {
    const db = await openDatabase(url, { migrations: [PANTASKS_MIGRATIONS] });
    try {
      const instance = await db.transaction(async (tx) => {
        const row = await tx.get<{ value: string }>("SELECT value FROM pantasksMeta WHERE name = 'instance'");
        if (row) return row.value;
        const id = randomUUID().slice(0, 8);
        await tx.run("INSERT INTO pantasksMeta (name, value) VALUES ('instance', ?)", [id]);
        return id;
      });
      await db.run(
        "INSERT INTO pantasksMeta (name, value) VALUES ('server', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString() })]);
      return new BookStore(db, instance);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** Every stored page, in creation order. */
  async load(): Promise<StoredPage[]> {
    const rows = await this.db.all<{
      book: string; page_key: string; ord: number; state: string; words: string;
      job_id: number | null; job_host: string | null; job_handle: string | null;
    }>('SELECT book, page_key, ord, state, words, job_id, job_host, job_handle FROM pantasksPage ORDER BY ord');
    return rows.map((r) => ({
      book: r.book, key: r.page_key, ord: Number(r.ord), state: r.state, words: JSON.parse(r.words) as PageWords,
      jobId: r.job_id === null ? null : Number(r.job_id), jobHost: r.job_host, jobHandle: r.job_handle,
    }));
  }

  /**
   * Writes the books' pending changes, and the last job id handed out, in one transaction;
   * returns how many pages were written. When it fails the changes are given back to the books.
   */
  async flush(books: Books, lastJobId?: number): Promise<number> {
    const { put, removed } = books.takeChanges();
    const seq = lastJobId !== undefined && lastJobId !== this.#savedJobId ? lastJobId : undefined;
    if (put.length === 0 && removed.length === 0 && seq === undefined) return 0;
    try {
      await this.db.transaction(async (tx) => {
        await writeChanges(tx, put, removed);
        if (seq !== undefined) await setMeta(tx, 'job_seq', String(seq));
      });
    } catch (error) {
      for (const p of put) books.put(p);
      for (const p of removed) books.remove(p);
      throw error;
    }
    if (seq !== undefined) this.#savedJobId = seq;
    this.#writes += put.length + removed.length;
    return put.length + removed.length;
  }

  /** A stored setting (hosts, modules, labels...), or null. */
  async getMeta(name: string): Promise<string | null> {
    const row = await this.db.get<{ value: string }>('SELECT value FROM pantasksMeta WHERE name = ?', [name]);
    return row ? row.value : null;
  }

  /** Stores a setting. */
  async setMeta(name: string, value: string): Promise<void> {
    await setMeta(this.db, name, value);
  }

  /** The last job id handed out by an earlier life of this scheduler (0 when new). */
  async lastJobId(): Promise<number> {
    const v = Number(await this.getMeta('job_seq') ?? 0);
    this.#savedJobId = v;
    return v;
  }

  /** Pages written since the store was opened. */
  get writes(): number {
    return this.#writes;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

async function setMeta(q: Queryable, name: string, value: string): Promise<void> {
  await q.run('INSERT INTO pantasksMeta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [name, value]);
}

async function writeChanges(tx: Queryable, put: readonly Page[], removed: readonly Page[]): Promise<void> {
  const byBook = new Map<string, string[]>();
  for (const p of removed) {
    let keys = byBook.get(p.book);
    if (!keys) byBook.set(p.book, (keys = []));
    keys.push(p.key);
  }
  for (const [book, keys] of byBook) {
    for (let i = 0; i < keys.length; i += KEYS_PER_DELETE) {
      const part = keys.slice(i, i + KEYS_PER_DELETE);
      await tx.run(`DELETE FROM pantasksPage WHERE book = ? AND page_key IN (${part.map(() => '?').join(', ')})`, [book, ...part]);
    }
  }
  const tuple = `(${COLUMNS.map(() => '?').join(', ')})`;
  for (let i = 0; i < put.length; i += ROWS_PER_STATEMENT) {
    const part = put.slice(i, i + ROWS_PER_STATEMENT);
    const params: SqlValue[] = [];
    for (const p of part) params.push(p.book, p.key, p.ord, p.state, JSON.stringify(p.words), p.jobId, p.jobHost, p.jobHandle);
    await tx.run(`INSERT INTO pantasksPage (${COLUMNS.join(', ')}) VALUES ${Array(part.length).fill(tuple).join(', ')}
      ON CONFLICT (book, page_key) DO UPDATE SET state = excluded.state, words = excluded.words,
        job_id = excluded.job_id, job_host = excluded.job_host, job_handle = excluded.job_handle`, params);
  }
}
