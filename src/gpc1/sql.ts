// Small pieces of SQL shared by the operations.
import type { Queryable } from '../db/index.ts';

/** Ids per `IN (...)` list: far under both engines' parameter limits, few statements for big sets. */
export const IN_CHUNK = 1000;

/** `?, ?, ?` for `n` parameters. */
export function marks(n: number): string {
  return Array(n).fill('?').join(', ');
}

/** The array in slices of at most `size`. */
export function chunks<T>(items: readonly T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The current time as the schema stores it: ISO-8601 UTC text. */
export function now(): string {
  return new Date().toISOString();
}

/**
 * A warp run (`w`) joined back along its chain to its chip run (`ch`, whose exp_id names the
 * exposure): `FROM ${WARP_TO_CHIP_RUN} JOIN ...`.
 */
export const WARP_TO_CHIP_RUN = `warpRun w JOIN fakeRun f ON f.fake_id = w.fake_id JOIN camRun c ON c.cam_id = f.cam_id
       JOIN chipRun ch ON ch.chip_id = c.chip_id`;

/**
 * After rows were inserted with their ids given: moves PostgreSQL's identity sequence of
 * `table.key` past them (it does not see ids given explicitly). SQLite needs nothing.
 */
export async function moveSequencePast(tx: Queryable, table: string, key: string): Promise<void> {
  if (tx.dialect.engine === 'postgres') await tx.get(`SELECT setval(pg_get_serial_sequence('${table.toLowerCase()}', '${key}'), (SELECT MAX(${key}) FROM ${table}))`);
}
