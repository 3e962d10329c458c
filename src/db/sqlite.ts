import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { DbError } from './errors.ts';
import type { Database, Dialect, Queryable, Row, SqlValue, TransactionOptions } from './types.ts';

/** SQLite's pieces of SQL. */
export const SQLITE_DIALECT: Dialect = Object.freeze({
  engine: 'sqlite',
  idColumn: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  bigint: 'INTEGER',
  double: 'REAL',
  blob: 'BLOB',
  skipLocked: '',
});

const BUSY_TIMEOUT_MS = 30_000;
const STATEMENT_CACHE = 500;
type Param = null | number | bigint | string | Uint8Array;

/** One connection to a file, shared by every handle this process opened on it. */
interface Connection {
  readonly db: DatabaseSync;
  readonly statements: Map<string, StatementSync>;
  queue: Promise<unknown>;
  handles: number;
}

/**
 * Connections by file. Two connections of one process to one file would deadlock: node:sqlite
 * waits for the write lock synchronously, so the connection holding it could never go on.
 * Handles of one file therefore share one connection (and its queue).
 */
const connections = new Map<string, Connection>();

/**
 * The embedded engine (`node:sqlite`). One connection per file per process; statements and
 * transactions of this process take turns (a promise queue), and transactions of other
 * processes are kept apart by SQLite's write lock, taken at BEGIN IMMEDIATE and waited for up
 * to 30 s. WAL mode lets readers go on while one process writes.
 */
export class SqliteDatabase implements Database {
  readonly dialect = SQLITE_DIALECT;
  readonly url: string;
  readonly #path: string;
  readonly #connection: Connection;
  #closed = false;

  private constructor(path: string, connection: Connection, url: string) {
    this.#path = path;
    this.#connection = connection;
    this.url = url;
  }

  /** Opens (creating if needed) the database file at `path`, or `:memory:` (never shared). */
  static open(path: string, display: string): SqliteDatabase {
    let connection = path === ':memory:' ? undefined : connections.get(path);
    if (connection === undefined) {
      let db: DatabaseSync;
      try {
        if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
        db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
        db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
      } catch (cause) {
        throw new DbError('db_unreachable',
          `cannot open SQLite database ${display}: ${(cause as Error).message}; check that the directory exists and is writable`,
          { cause });
      }
      connection = { db, statements: new Map(), queue: Promise.resolve(), handles: 0 };
      if (path !== ':memory:') connections.set(path, connection);
    }
    connection.handles++;
    return new SqliteDatabase(path, connection, display);
  }

  all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#turn(() => this.#all<T>(sql, params));
  }

  async get<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    return this.#turn(() => this.#run(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.#turn(() => this.#exec(sql));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const retries = options.retries ?? 3;
    return this.#turn(async () => {
      for (let attempt = 0; ; attempt++) {
        let open = true;
        const tx: Queryable = {
          dialect: SQLITE_DIALECT,
          all: async <R extends Row = Row>(sql: string, params: readonly SqlValue[] = []) => {
            check(open); return this.#all<R>(sql, params);
          },
          get: async <R extends Row = Row>(sql: string, params: readonly SqlValue[] = []) => {
            check(open); return this.#all<R>(sql, params)[0];
          },
          run: async (sql: string, params: readonly SqlValue[] = []) => { check(open); return this.#run(sql, params); },
          exec: async (sql: string) => { check(open); this.#exec(sql); },
        };
        try {
          this.#exec('BEGIN IMMEDIATE');
        } catch (error) {
          if (attempt < retries && isBusy(error)) continue;
          throw error;
        }
        try {
          const result = await fn(tx);
          this.#exec('COMMIT');
          return result;
        } catch (error) {
          try { this.#connection.db.exec('ROLLBACK'); } catch { /* the transaction may already be gone */ }
          if (attempt < retries && isBusy(error)) continue;
          throw error;
        } finally {
          open = false;
        }
      }
    });
  }

  async close(): Promise<void> {
    await this.#turn(async () => {
      this.#closed = true;
      const c = this.#connection;
      if (--c.handles > 0) return;
      if (connections.get(this.#path) === c) connections.delete(this.#path);
      c.statements.clear();
      c.db.close();
    }).catch((error: unknown) => {
      if (!(error instanceof DbError && error.code === 'db_closed')) throw error;
    });
  }

  /** Runs `fn` after everything queued before it on this connection, so it is never used by two callers at once. */
  #turn<T>(fn: () => T | Promise<T>): Promise<T> {
    const c = this.#connection;
    const result = c.queue.then(() => {
      if (this.#closed) throw new DbError('db_closed', `database ${this.url} is closed`);
      return fn();
    });
    c.queue = result.catch(() => undefined);
    return result;
  }

  #statement(sql: string): StatementSync {
    let statement = this.#connection.statements.get(sql);
    if (statement === undefined) {
      try {
        statement = this.#connection.db.prepare(sql);
      } catch (cause) {
        throw statementError(cause, sql, this.url);
      }
      statement.setReadBigInts(true);
      if (this.#connection.statements.size >= STATEMENT_CACHE) this.#connection.statements.clear();
      this.#connection.statements.set(sql, statement);
    }
    return statement;
  }

  #all<T>(sql: string, params: readonly SqlValue[]): T[] {
    const statement = this.#statement(sql);
    let rows: Record<string, unknown>[];
    try {
      rows = statement.all(...params.map(toParam));
    } catch (cause) {
      throw statementError(cause, sql, this.url);
    }
    for (const row of rows) {
      for (const key in row) {
        const value = row[key];
        if (typeof value === 'bigint' && value <= MAX_SAFE && value >= MIN_SAFE) row[key] = Number(value);
      }
    }
    return rows as T[];
  }

  #run(sql: string, params: readonly SqlValue[]): { changes: number } {
    try {
      const result = this.#statement(sql).run(...params.map(toParam));
      return { changes: Number(result.changes) };
    } catch (cause) {
      throw statementError(cause, sql, this.url);
    }
  }

  #exec(sql: string): void {
    try {
      this.#connection.db.exec(sql);
    } catch (cause) {
      throw statementError(cause, sql, this.url);
    }
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

function toParam(value: SqlValue): Param {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

function check(open: boolean): void {
  if (!open) throw new DbError('db_transaction_closed', 'a statement ran on a transaction that has already ended');
}

function isBusy(error: unknown): boolean {
  const code = sqliteCode(error instanceof DbError ? error.cause : error);
  return code === 5 || code === 6; // SQLITE_BUSY, SQLITE_LOCKED
}

function sqliteCode(error: unknown): number | undefined {
  const code = (error as { errcode?: unknown } | undefined)?.errcode;
  return typeof code === 'number' ? code & 0xff : undefined;
}

function statementError(cause: unknown, sql: string, url: string): DbError {
  const message = (cause as Error).message ?? String(cause);
  const code = sqliteCode(cause);
  const kind = code === 19 ? 'db_constraint' : code === 5 || code === 6 ? 'db_busy' : 'db_statement_failed';
  return new DbError(kind, `${url}: ${message} (in: ${oneLine(sql)})`, { cause });
}

/** The statement shortened to one line for an error message. */
export function oneLine(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 160 ? `${flat.slice(0, 157)}...` : flat;
}
