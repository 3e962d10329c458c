import type { Database, Row, SqlValue } from './types.ts';

/** What {@link claimRows} claims and how it marks the rows it took. */
export interface ClaimSpec {
  readonly table: string;
  /** The primary key column. */
  readonly key: string;
  /** Which rows are free to claim, e.g. `state = ?`. */
  readonly where: string;
  readonly whereParams?: readonly SqlValue[];
  /** How a claimed row is marked, e.g. `state = ?, owner = ?`. */
  readonly set: string;
  readonly setParams?: readonly SqlValue[];
  /** The order rows are taken in (default: the key). */
  readonly orderBy?: string;
  readonly limit: number;
  /** Columns returned for each claimed row (default `*`). */
  readonly returning?: string;
}

/**
 * Takes up to `limit` free rows and marks them in one statement, so that many processes
 * claiming at once never take the same row: PostgreSQL skips rows another claimer has locked
 * (`FOR UPDATE SKIP LOCKED`); SQLite runs the statement under its write lock. The rows come
 * back in no particular order.
 */
export async function claimRows<T extends Row = Row>(db: Database, spec: ClaimSpec): Promise<T[]> {
  const limit = Math.max(0, Math.floor(spec.limit));
  if (limit === 0) return [];
  const sql = `UPDATE ${spec.table} SET ${spec.set} WHERE ${spec.key} IN (`
    + `SELECT ${spec.key} FROM ${spec.table} WHERE ${spec.where} ORDER BY ${spec.orderBy ?? spec.key} LIMIT ${limit} ${db.dialect.skipLocked})`
    + ` RETURNING ${spec.returning ?? '*'}`;
  return db.transaction((tx) => tx.all<T>(sql, [...spec.setParams ?? [], ...spec.whereParams ?? []]));
}
