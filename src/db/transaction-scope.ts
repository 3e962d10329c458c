import type { Database, Queryable } from './types.ts';

/**
 * A `Database` that runs everything inside a transaction already open: operations written
 * against `Database` (which open transactions of their own) then commit or roll back
 * together with the outer one. Their own transactions become part of the outer one;
 * `close` does nothing (the outer owner closes the database).
 */
export function transactionScope(tx: Queryable, url: string): Database {
  return {
    dialect: tx.dialect,
    url,
    all: (sql, params) => tx.all(sql, params),
    get: (sql, params) => tx.get(sql, params),
    run: (sql, params) => tx.run(sql, params),
    exec: (sql) => tx.exec(sql),
    transaction: (fn) => fn(tx),
    close: async () => undefined,
  };
}
