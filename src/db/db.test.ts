import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withTempDir } from '../common/index.ts';
import {
  DbError, applyMigrations, claimRows, insertRows, transactionScope, openDatabase, parseDbUrl, redact, testEngines,
  type Migration, type RoomMigrations,
} from './index.ts';
import { toNumberedParams } from './placeholders.ts';

const run = promisify(execFile);

const first: Migration = {
  version: 1, name: 'items',
  up: (d) => `CREATE TABLE item (item_id ${d.idColumn}, name TEXT NOT NULL UNIQUE, big ${d.bigint}, x ${d.double}, data ${d.blob});`,
};
const second: Migration = {
  version: 2, name: 'jobs',
  up: (d) => `CREATE TABLE job (id ${d.idColumn}, owner TEXT);
              CREATE INDEX job_owner ON job (owner);`,
};
const rooms: RoomMigrations[] = [{ room: 'testroom', migrations: [first, second] }];

describe('database URLs', () => {
  it('parses SQLite and PostgreSQL URLs and hides passwords', () => {
    assert.deepEqual(parseDbUrl('sqlite:data/x.db', '/base'), { engine: 'sqlite', path: '/base/data/x.db', display: 'sqlite:/base/data/x.db' });
    assert.equal(parseDbUrl('sqlite:///abs/x.db').engine, 'sqlite');
    assert.equal(parseDbUrl('sqlite::memory:').display, 'sqlite::memory:');
    const pg = parseDbUrl('postgres://me:secret@db.example:5433/gpc1');
    assert.equal(pg.engine, 'postgres');
    assert.equal(pg.display, 'postgres://me:***@db.example:5433/gpc1');
    assert.equal(redact('postgresql://u:p@h/d'), 'postgresql://u:***@h/d');
  });

  it('refuses bad URLs with a message that says what to write', () => {
    for (const bad of ['', 'mysql://h/db', 'data.db', 'sqlite:', 'sqlite://host/x.db', 'postgres://h', 'postgres://:5432/db']) {
      assert.throws(() => parseDbUrl(bad), (e: unknown) => e instanceof DbError && e.code === 'db_url_invalid' && e.usage && /sqlite:|postgres:/.test(e.message), bad);
    }
  });

  it('rewrites ? parameters for PostgreSQL outside strings and comments', () => {
    assert.equal(toNumberedParams("SELECT ? , '?' , \"a?\" -- ?\n, ? /* ? */"), "SELECT $1 , '?' , \"a?\" -- ?\n, $2 /* ? */");
    assert.equal(toNumberedParams("x = 'it''s ?' AND y = ?"), "x = 'it''s ?' AND y = $1");
  });
});

describe('unreachable databases', () => {
  it('names the server and says what to check (PostgreSQL refused)', async () => {
    await assert.rejects(openDatabase('postgres://nobody:pw@127.0.0.1:1/none', { connectTimeoutMs: 2000 }),
      (e: unknown) => e instanceof DbError && e.code === 'db_unreachable' && e.message.includes('127.0.0.1:1') && !e.message.includes('pw@'));
  });

  it('names the file when SQLite cannot create it', async () => {
    await withTempDir(async (dir) => {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(`${dir}/file`, 'x');
      await assert.rejects(openDatabase(`sqlite:${dir}/file/sub/x.db`),
        (e: unknown) => e instanceof DbError && e.code === 'db_unreachable' && e.message.includes(`${dir}/file/sub/x.db`));
    });
  });
});

describe('opening only an existing database', () => {
  it('refuses a SQLite file that is not there, naming it, and makes neither file nor directory', async () => {
    await withTempDir(async (dir) => {
      const { existsSync } = await import('node:fs');
      await assert.rejects(openDatabase(`sqlite:${dir}/typo/x.db`, { existing: true, migrations: rooms }),
        (e: unknown) => e instanceof DbError && e.code === 'db_not_found' && e.message.includes(`${dir}/typo/x.db`));
      assert.equal(existsSync(`${dir}/typo`), false);
      const made = await openDatabase(`sqlite:${dir}/x.db`, { migrations: rooms });
      await made.close();
      const again = await openDatabase(`sqlite:${dir}/x.db`, { existing: true });
      assert.equal((await again.all('SELECT name FROM item')).length, 0);
      await again.close();
    });
  });
});

for (const engine of testEngines()) {
  describe(`database layer on ${engine.name}`, { skip: engine.skip }, () => {
    it('opening only an existing schema refuses a database without the room\'s tables, and leaves it as it was', () => engine.withUrl(async (url) => {
      await (await openDatabase(url)).close(); // an empty database (on SQLite, an empty file)
      await assert.rejects(openDatabase(url, { migrations: rooms, existing: true }),
        (e: unknown) => e instanceof DbError && e.code === 'db_not_found' && /holds no testroom tables/.test(e.message));
      const bare = await openDatabase(url);
      try {
        const tables = await bare.all<{ n: number }>(bare.dialect.engine === 'postgres'
          ? "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'ipp_schema_migrations'"
          : "SELECT count(*) AS n FROM sqlite_master WHERE name = 'ipp_schema_migrations'");
        assert.equal(Number(tables[0]!.n), 0, 'no history table left behind');
      } finally {
        await bare.close();
      }
      await (await openDatabase(url, { migrations: rooms })).close();
      await (await openDatabase(url, { migrations: rooms, existing: true })).close();
    }));

    it('applies migrations once, in order, and records them', () => engine.withUrl(async (url) => {
      const db = await openDatabase(url, { migrations: rooms });
      try {
        assert.equal(await applyMigrations(db, rooms), 0);
        const history = await db.all('SELECT room, version, name FROM ipp_schema_migrations ORDER BY version');
        assert.deepEqual(history.map((r) => ({ ...r })), [
          { room: 'testroom', version: 1, name: 'items' }, { room: 'testroom', version: 2, name: 'jobs' }]);
      } finally {
        await db.close();
      }
      // Reopening applies nothing; a renamed or unknown migration is refused.
      await (await openDatabase(url, { migrations: rooms })).close();
      await assert.rejects(openDatabase(url, { migrations: [{ room: 'testroom', migrations: [{ ...first, name: 'renamed' }, second] }] }),
        (e: unknown) => e instanceof DbError && e.code === 'db_migration_mismatch');
      await assert.rejects(openDatabase(url, { migrations: [{ room: 'testroom', migrations: [first] }] }),
        (e: unknown) => e instanceof DbError && e.code === 'db_schema_newer');
    }));

    it('rolls a failed migration back whole', () => engine.withUrl(async (url) => {
      const broken: Migration = { version: 1, name: 'broken', up: () => 'CREATE TABLE half (a INTEGER); CREATE TABLE oops (' };
      await assert.rejects(openDatabase(url, { migrations: [{ room: 'b', migrations: [broken] }] }),
        (e: unknown) => e instanceof DbError && e.code === 'db_migration_failed' && e.message.includes('broken'));
      const db = await openDatabase(url);
      try {
        await assert.rejects(db.all('SELECT * FROM half'), (e: unknown) => e instanceof DbError && e.code === 'db_statement_failed');
      } finally {
        await db.close();
      }
    }));

    it('round-trips values: 64-bit integers, doubles, text, blobs, NULL', () => engine.withUrl(async (url) => {
      const db = await openDatabase(url, { migrations: rooms });
      try {
        const big = 123456789012345678n;
        const inserted = await insertRows<{ item_id: number }>(db, 'item', ['name', 'big', 'x', 'data'], [
          ['a', big, 1.5, new Uint8Array([1, 2, 255])],
          ['b', 42, -0.25, null],
          ["it's ?", -big, null, null],
        ], { returning: ['item_id'] });
        assert.deepEqual(inserted.map((r) => r.item_id), [1, 2, 3]);
        const rows = await db.all<{ name: string; big: number | bigint; x: number | null; data: Uint8Array | null }>(
          'SELECT name, big, x, data FROM item ORDER BY item_id');
        assert.equal(rows[0]!.big, big);
        assert.equal(rows[1]!.big, 42);
        assert.equal(typeof rows[1]!.big, 'number');
        assert.equal(rows[2]!.big, -big);
        assert.equal(rows[2]!.name, "it's ?");
        assert.deepEqual([...rows[0]!.data!], [1, 2, 255]);
        assert.equal(rows[1]!.data, null);
        assert.equal(rows[1]!.x, -0.25);
        const count = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM item WHERE name <> ?', ['a']);
        assert.equal(count!.n, 2);
        await assert.rejects(db.run('INSERT INTO item (name) VALUES (?)', ['a']),
          (e: unknown) => e instanceof DbError && e.code === 'db_constraint');
      } finally {
        await db.close();
      }
    }));

    it('inserts many rows in chunks', () => engine.withUrl(async (url) => {
      const db = await openDatabase(url, { migrations: rooms });
      try {
        const rows = Array.from({ length: 25_000 }, (_, i) => [`n${i}`, i, i / 2, null]);
        await insertRows(db, 'item', ['name', 'big', 'x', 'data'], rows);
        const r = await db.get<{ n: number; s: number }>('SELECT COUNT(*) AS n, SUM(big) AS s FROM item');
        assert.equal(r!.n, 25_000);
        assert.equal(Number(r!.s), (25_000 * 24_999) / 2);
      } finally {
        await db.close();
      }
    }));

    it('commits a transaction, or rolls it back when the callback throws', () => engine.withUrl(async (url) => {
      const db = await openDatabase(url, { migrations: rooms });
      try {
        await db.transaction(async (tx) => { await tx.run('INSERT INTO job (owner) VALUES (?)', ['kept']); });
        await assert.rejects(db.transaction(async (tx) => {
          await tx.run('INSERT INTO job (owner) VALUES (?)', ['lost']);
          throw new Error('boom');
        }), /boom/);
        const owners = await db.all<{ owner: string }>('SELECT owner FROM job');
        assert.deepEqual(owners.map((r) => r.owner), ['kept']);
        // Concurrent transactions of one process take turns and all land.
        await Promise.all(Array.from({ length: 10 }, (_, i) => db.transaction(async (tx) => {
          const n = await tx.get<{ n: number }>('SELECT COUNT(*) AS n FROM job');
          await tx.run('INSERT INTO job (owner) VALUES (?)', [`t${i}-${n!.n}`]);
        })));
        assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM job'))!.n, 11);
      } finally {
        await db.close();
      }
    }));

    it('lets two handles of one process write to the same database at once', () => engine.withUrl(async (url) => {
      const a = await openDatabase(url, { migrations: rooms });
      const b = await openDatabase(url, { migrations: rooms });
      try {
        // On SQLite a second connection would wait synchronously for the first one's write lock: a deadlock.
        await Promise.all([
          a.transaction(async (tx) => {
            await tx.run('INSERT INTO job (owner) VALUES (?)', ['a1']);
            await new Promise((r) => setTimeout(r, 30));
            await tx.run('INSERT INTO job (owner) VALUES (?)', ['a2']);
          }),
          b.run('INSERT INTO job (owner) VALUES (?)', ['b1']),
        ]);
        await a.close();
        assert.equal((await b.get<{ n: number }>('SELECT COUNT(*) AS n FROM job'))!.n, 3, 'the other handle stays open');
        await assert.rejects(a.get('SELECT 1 AS x'), (e: unknown) => e instanceof DbError && (e.code === 'db_closed' || e.code === 'db_unreachable' || e.code === 'db_statement_failed'));
      } finally {
        await a.close();
        await b.close();
      }
    }));

    it('runs operations that open their own transactions inside one outer transaction', () => engine.withUrl(async (url) => {
      const db = await openDatabase(url, { migrations: rooms });
      try {
        // An operation written against Database, as the rooms write them.
        const addJob = (d: typeof db, owner: string) => d.transaction((tx) => tx.run('INSERT INTO job (owner) VALUES (?)', [owner]));
        await assert.rejects(db.transaction(async (tx) => {
          const scope = transactionScope(tx, db.url);
          await addJob(scope, 'one');
          await addJob(scope, 'two');
          throw new Error('later step failed');
        }), /later step failed/);
        assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM job'))!.n, 0, 'both rolled back with the outer transaction');
        await db.transaction(async (tx) => {
          const scope = transactionScope(tx, db.url);
          await addJob(scope, 'one');
          await addJob(scope, 'two');
        });
        assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM job'))!.n, 2);
      } finally {
        await db.close();
      }
    }));

    it('claims rows from several processes without taking any twice', () => engine.withUrl(async (url) => {
      const db = await openDatabase(url, { migrations: rooms });
      const jobs = 300;
      try {
        await insertRows(db, 'job', ['owner'], Array.from({ length: jobs }, () => [null]));
        // A claim in this process first: the limit is honoured and rows are marked.
        const mine = await claimRows<{ id: number }>(db, { table: 'job', key: 'id', where: 'owner IS NULL', set: 'owner = ?', setParams: ['main'], limit: 5, returning: 'id' });
        assert.deepEqual(mine.map((r) => r.id).sort((a, b) => a - b), [1, 2, 3, 4, 5]);
      } finally {
        await db.close();
      }
      const worker = fileURLToPath(new URL('./claim-worker.fixture.ts', import.meta.url));
      const results = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((w) => run(process.execPath, [worker, url, w])));
      const taken = results.flatMap((r) => JSON.parse(r.stdout) as number[]);
      assert.equal(taken.length, jobs - 5, 'every free job claimed');
      assert.equal(new Set(taken).size, taken.length, 'no job claimed twice');
      const check = await openDatabase(url);
      try {
        const free = await check.get<{ n: number }>('SELECT COUNT(*) AS n FROM job WHERE owner IS NULL');
        assert.equal(free!.n, 0);
      } finally {
        await check.close();
      }
    }));
  });
}
