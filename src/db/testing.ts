// Test support: the same suite runs on every engine. SQLite always; PostgreSQL when the test
// command has started a server and named it in IPP_TEST_PG_URL (scripts/test-postgres.sh).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { withTempDir } from '../common/index.ts';
import { PostgresDatabase } from './postgres.ts';
import { parseDbUrl } from './url.ts';

/** An engine the tests run on; `withUrl` gives each test a fresh, empty database. */
export interface TestEngine {
  readonly name: 'sqlite' | 'postgres';
  /** Set when the engine is not available here: the reason, for `describe(..., { skip })`. */
  readonly skip: string | false;
  withUrl<T>(fn: (url: string) => Promise<T>): Promise<T>;
}

/** SQLite and PostgreSQL, for tests that loop over both. */
export function testEngines(): TestEngine[] {
  const admin = process.env.IPP_TEST_PG_URL;
  return [
    {
      name: 'sqlite',
      skip: false,
      withUrl: (fn) => withTempDir((dir) => fn(`sqlite:${join(dir, 'test.db')}`), 'ipp-db-'),
    },
    {
      name: 'postgres',
      skip: admin ? false : 'IPP_TEST_PG_URL is not set (npm run test:all starts a PostgreSQL server and sets it)',
      withUrl: (fn) => withPostgresDatabase(admin ?? '', fn),
    },
  ];
}

async function withPostgresDatabase<T>(adminUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  const location = parseDbUrl(adminUrl);
  if (location.engine !== 'postgres') throw new Error(`IPP_TEST_PG_URL must be a postgres:// URL, not ${adminUrl}`);
  const name = `ipp_test_${randomBytes(6).toString('hex')}`;
  const admin = await PostgresDatabase.open(location.connectionString, location.display, { maxConnections: 1 });
  try {
    await admin.exec(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    try {
      return await fn(url.toString());
    } finally {
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.close();
  }
}
