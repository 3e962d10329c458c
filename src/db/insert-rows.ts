import type { Queryable, Row, SqlValue } from './types.ts';

/** Parameters per statement: under SQLite's and PostgreSQL's limits, big enough to amortise the round trip. */
const MAX_PARAMS = 30_000;

/**
 * Inserts many rows with few statements (multi-row VALUES, chunked under the engines'
 * parameter limits). `returning` names columns to read back, in row order.
 */
export async function insertRows<T extends Row = Row>(
  q: Queryable, table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[],
  options: { returning?: readonly string[] } = {},
): Promise<T[]> {
  const out: T[] = [];
  if (rows.length === 0 || columns.length === 0) return out;
  const perChunk = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const returning = options.returning?.length ? ` RETURNING ${options.returning.join(', ')}` : '';
  for (let start = 0; start < rows.length; start += perChunk) {
    const chunk = rows.slice(start, start + perChunk);
    const params: SqlValue[] = [];
    for (const row of chunk) {
      for (let c = 0; c < columns.length; c++) params.push(row[c] ?? null);
    }
    const sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${Array(chunk.length).fill(tuple).join(', ')}${returning}`;
    if (returning) out.push(...await q.all<T>(sql, params));
    else await q.run(sql, params);
  }
  return out;
}
