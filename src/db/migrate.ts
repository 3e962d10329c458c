import { DbError } from './errors.ts';
import type { Database, Queryable, RoomMigrations } from './types.ts';

const HISTORY = 'ipp_schema_migrations';

/**
 * Applies the migrations of each room that the database has not seen yet, in version order,
 * all in one transaction (so a failed migration leaves the schema as it was). Many processes
 * may open the same database at once: PostgreSQL serialises them with an advisory lock,
 * SQLite with its write lock. A history that disagrees with the code (a recorded migration
 * renamed or missing, a version newer than the code knows) is refused.
 */
export async function applyMigrations(db: Database, rooms: readonly RoomMigrations[], options: { existing?: boolean } = {}): Promise<number> {
  for (const room of rooms) checkOrder(room);
  return db.transaction(async (tx) => {
    if (tx.dialect.engine === 'postgres') await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_schema_migrations'))");
    await tx.exec(`CREATE TABLE IF NOT EXISTS ${HISTORY} (
      room TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL,
      PRIMARY KEY (room, version))`);
    let applied = 0;
    for (const room of rooms) applied += await applyRoom(tx, room, db.url, options.existing === true);
    return applied;
  });
}

async function applyRoom(tx: Queryable, { room, migrations }: RoomMigrations, url: string, existing: boolean): Promise<number> {
  const done = await tx.all<{ version: number; name: string }>(
    `SELECT version, name FROM ${HISTORY} WHERE room = ? ORDER BY version`, [room]);
  // Only schemas already made are brought up to date (the transaction undoes the history table).
  if (existing && done.length === 0) throw new DbError('db_not_found', `${url} holds no ${room} tables; check the URL`);
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const row of done) {
    const migration = known.get(row.version);
    if (migration === undefined) {
      throw new DbError('db_schema_newer', `${url}: the ${room} schema is at migration ${row.version} (${row.name}), which this version of ipp does not know; upgrade ipp or use another database`);
    }
    if (migration.name !== row.name) {
      throw new DbError('db_migration_mismatch', `${url}: ${room} migration ${row.version} was applied as "${row.name}" but this code calls it "${migration.name}"; the database was made by a different ipp`);
    }
  }
  const seen = new Set(done.map((r) => r.version));
  let applied = 0;
  for (const migration of migrations) {
    if (seen.has(migration.version)) continue;
    try {
      await tx.exec(migration.up(tx.dialect));
    } catch (cause) {
      throw new DbError('db_migration_failed', `${url}: ${room} migration ${migration.version} (${migration.name}) failed; nothing was changed`, { cause });
    }
    await tx.run(`INSERT INTO ${HISTORY} (room, version, name, applied_at) VALUES (?, ?, ?, ?)`,
      [room, migration.version, migration.name, new Date().toISOString()]);
    applied++;
  }
  return applied;
}

/**
 * Whose tables a database holds: the rooms its migration history names, and how many tables
 * it has in all (a database with tables and no history was not made by ipp).
 */
export async function schemaOwners(db: Queryable): Promise<{ rooms: string[]; tables: number }> {
  const names = (db.dialect.engine === 'postgres'
    ? await db.all<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")
    : await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")).map((r) => r.name.toLowerCase());
  const rooms = names.includes(HISTORY)
    ? (await db.all<{ room: string }>(`SELECT DISTINCT room FROM ${HISTORY} ORDER BY room`)).map((r) => r.room)
    : [];
  return { rooms, tables: names.length };
}

function checkOrder({ room, migrations }: RoomMigrations): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new DbError('db_migration_order', `${room} migrations must be numbered 1, 2, 3... in order; found ${m.version} at position ${i + 1}`);
    }
  });
}
