// The database layer: one interface over embedded SQLite and PostgreSQL, numbered migrations per room.
export { DbError } from './errors.ts';
export { parseDbUrl, redact } from './url.ts';
export type { DbLocation } from './url.ts';
export type {
  Database, Dialect, Migration, Queryable, Row, RoomMigrations, SqlValue, TransactionOptions,
} from './types.ts';
export { openDatabase, withDatabase } from './open-database.ts';
export type { OpenOptions } from './open-database.ts';
export { applyMigrations, schemaOwners } from './migrate.ts';
export { insertRows } from './insert-rows.ts';
export { claimRows } from './claim-rows.ts';
export { transactionScope } from './transaction-scope.ts';
export type { ClaimSpec } from './claim-rows.ts';
export { SQLITE_DIALECT } from './sqlite.ts';
export { POSTGRES_DIALECT } from './postgres.ts';
export { testEngines } from './testing.ts';
export type { TestEngine } from './testing.ts';
