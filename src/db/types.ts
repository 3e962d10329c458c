/** A value bound to a statement parameter. Booleans are stored as 0/1. */
export type SqlValue = null | number | bigint | string | boolean | Uint8Array;

/**
 * A row read back. Integers come back as `number` when they fit in 53 bits and as `bigint`
 * otherwise, on both engines; text as string, blobs as Uint8Array, NULL as null.
 */
export type Row = Record<string, unknown>;

/** The engine-specific pieces of SQL a migration or query needs; everything else is shared. */
export interface Dialect {
  readonly engine: 'sqlite' | 'postgres';
  /** Column definition of an auto-numbered 64-bit primary key. */
  readonly idColumn: string;
  /** Type names. */
  readonly bigint: string;
  readonly double: string;
  readonly blob: string;
  /** Appended to the inner SELECT of a claim: row locks skipped by other claimers (PostgreSQL); SQLite serialises writers instead. */
  readonly skipLocked: string;
}

/** Something statements run on: the database itself or the transaction a callback was given. */
export interface Queryable {
  readonly dialect: Dialect;
  /** Runs one statement (parameters as `?`) and returns every row. */
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs one statement and returns its first row, if any. */
  get<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs one statement and returns how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /** Runs a script of statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** Options of a transaction. */
export interface TransactionOptions {
  /** Retries of the whole callback after a deadlock or a busy database (default 3). */
  readonly retries?: number;
}

/** An open database, named by a URL; close it when done. */
export interface Database extends Queryable {
  /** The URL without its password. */
  readonly url: string;
  /**
   * Runs `fn` in one transaction on one connection, committing when it resolves and rolling
   * back when it throws. On SQLite the transaction takes the write lock at its start (so
   * claims by many processes are serialised); on PostgreSQL use `dialect.skipLocked`.
   * `fn` may be run again after a deadlock, so it should only touch the database.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  close(): Promise<void>;
}

/** One numbered schema change of a room. `up` returns a script of statements. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(dialect: Dialect): string;
}

/** The migrations of one room, applied in version order on open. */
export interface RoomMigrations {
  readonly room: string;
  readonly migrations: readonly Migration[];
}
