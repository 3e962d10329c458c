import { existsSync } from 'node:fs';
import { DbError } from './errors.ts';
import { applyMigrations } from './migrate.ts';
import { PostgresDatabase, type PostgresOptions } from './postgres.ts';
import { SqliteDatabase } from './sqlite.ts';
import { parseDbUrl } from './url.ts';
import type { Database, RoomMigrations } from './types.ts';

/** Options of {@link openDatabase}. */
export interface OpenOptions extends PostgresOptions {
  /** The rooms whose migrations are applied on open. */
  readonly migrations?: readonly RoomMigrations[];
  /** Resolves relative SQLite paths (default: the current directory). */
  readonly cwd?: string;
  /**
   * Refuse a SQLite file that does not exist yet, or a database (either engine) without the
   * rooms' tables, instead of creating them (`db_not_found`): for commands that only read or
   * change what is there, so a mistyped path or name is not an empty database.
   */
  readonly existing?: boolean;
}

/**
 * Opens the database a URL names (`sqlite:...` or `postgres://...`) and brings the schemas
 * of the rooms given up to date. Nothing above this layer knows which engine it talks to.
 */
export async function openDatabase(url: string, options: OpenOptions = {}): Promise<Database> {
  const location = parseDbUrl(url, options.cwd);
  if (options.existing && location.engine === 'sqlite' && location.path !== ':memory:' && !existsSync(location.path)) {
    throw new DbError('db_not_found', `there is no database at ${location.display} (a relative path is taken from ${options.cwd ?? process.cwd()}); check the URL`);
  }
  const db = location.engine === 'sqlite'
    ? SqliteDatabase.open(location.path, location.display)
    : await PostgresDatabase.open(location.connectionString, location.display, options);
  if (options.migrations?.length) {
    try {
      await applyMigrations(db, options.migrations, { existing: options.existing === true });
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  return db;
}

/** Opens a database, runs `fn`, and closes it on every path. */
export async function withDatabase<T>(url: string, options: OpenOptions, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(url, options);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
