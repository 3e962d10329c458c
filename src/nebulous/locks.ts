// Locks on storage objects: any number of read locks or one write lock, each held by a named
// client that sends heartbeats; the locks of a client whose heartbeats stopped are swept.
import type { Database, Queryable } from '../db/index.ts';
import { NebError } from './errors.ts';
import { printable } from './key.ts';
import { forUpdate, liveObject, type ObjectRow } from './objects.ts';
import type { LockInfo } from './types.ts';

/** A lock mode. */
export type LockMode = 'read' | 'write';

/** Checks a lock mode given by a caller. */
export function checkMode(mode: unknown): LockMode {
  if (mode !== 'read' && mode !== 'write') throw new NebError('neb_request_invalid', `lock mode "${String(mode)}" is not read or write`);
  return mode;
}

/** Checks a holder name: who a lock belongs to (default `host:pid` of the client). */
export function checkHolder(holder: unknown): string {
  if (typeof holder !== 'string' || holder === '' || holder.length > 200 || printable(holder) !== holder) {
    throw new NebError('neb_request_invalid', `lock holder "${printable(String(holder))}" must be 1 to 200 printable characters, e.g. host:pid`);
  }
  return holder;
}

/**
 * Refuses a change to an object another client has locked: a write lock held by someone else
 * always; read locks too unless the change only reads the content (`readOnly`).
 */
export function assertUnlocked(object: ObjectRow, holder: string | undefined, what: string, readOnly = false): void {
  if (object.write_holder !== null && object.write_holder !== holder) {
    throw new NebError('neb_locked', `cannot ${what} ${printable(object.ext_id)}: it is write-locked by ${object.write_holder} since ${object.lock_time}`);
  }
  if (!readOnly && Number(object.read_locks) > 0) {
    throw new NebError('neb_locked', `cannot ${what} ${printable(object.ext_id)}: it has ${object.read_locks} read lock(s)`);
  }
}

/** Takes a lock, or raises `neb_locked` when it conflicts with the locks held. */
export async function acquireLock(db: Database, key: string, mode: LockMode, holder: string): Promise<void> {
  const now = new Date().toISOString();
  await db.transaction(async (tx) => {
    const object = await liveObject(tx, key, true);
    const taken = mode === 'write'
      ? await tx.run(`UPDATE neb_storage_object SET write_holder = ?, lock_time = ?
          WHERE so_id = ? AND write_holder IS NULL AND read_locks = 0`, [holder, now, object.so_id])
      : await tx.run(`UPDATE neb_storage_object SET read_locks = read_locks + 1, lock_time = ?
          WHERE so_id = ? AND write_holder IS NULL`, [now, object.so_id]);
    if (taken.changes === 0) {
      throw new NebError('neb_locked', object.write_holder !== null
        ? `cannot ${mode}-lock ${printable(key)}: it is write-locked by ${object.write_holder} since ${object.lock_time}`
        : `cannot write-lock ${printable(key)}: it has ${object.read_locks} read lock(s)`);
    }
    await tx.run('INSERT INTO neb_lock (so_id, holder, mode, acquired_at) VALUES (?, ?, ?, ?)', [object.so_id, holder, mode, now]);
    await touchHolder(tx, holder, now);
  });
}

/** Releases a lock the holder has; `neb_not_locked` when it has none of that mode. */
export async function releaseLock(db: Database, key: string, mode: LockMode, holder: string): Promise<void> {
  await db.transaction(async (tx) => {
    const object = await liveObject(tx, key, true);
    const lock = await tx.get<{ lock_id: number }>(
      `SELECT lock_id FROM neb_lock WHERE so_id = ? AND holder = ? AND mode = ? ORDER BY lock_id LIMIT 1${forUpdate(tx)}`,
      [object.so_id, holder, mode]);
    if (lock === undefined) {
      const held = mode === 'write' && object.write_holder !== null ? ` (it is write-locked by ${object.write_holder})`
        : mode === 'read' && object.write_holder !== null ? ` (it is write-locked by ${object.write_holder}, so it has no read locks)`
          : mode === 'read' && Number(object.read_locks) > 0 ? ` (its ${object.read_locks} read lock(s) belong to other holders)` : '';
      throw new NebError('neb_not_locked', `${holder} holds no ${mode} lock on ${printable(key)}${held}`);
    }
    await tx.run('DELETE FROM neb_lock WHERE lock_id = ?', [lock.lock_id]);
    if (mode === 'write') {
      await tx.run('UPDATE neb_storage_object SET write_holder = NULL, lock_time = NULL WHERE so_id = ?', [object.so_id]);
    } else {
      await tx.run('UPDATE neb_storage_object SET read_locks = read_locks - 1 WHERE so_id = ? AND read_locks > 0', [object.so_id]);
    }
  });
}

/** Records that a holder is alive (its locks are kept). */
export async function heartbeat(db: Database, holder: string): Promise<number> {
  return db.transaction(async (tx) => {
    await touchHolder(tx, holder, new Date().toISOString());
    const row = await tx.get<{ n: number }>('SELECT count(*) AS n FROM neb_lock WHERE holder = ?', [holder]);
    return Number(row?.n ?? 0);
  });
}

async function touchHolder(q: Queryable, holder: string, now: string): Promise<void> {
  await q.run(`INSERT INTO neb_holder (holder, heartbeat_at) VALUES (?, ?)
    ON CONFLICT (holder) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, [holder, now]);
}

/** The locks on an object. */
export async function locksOf(q: Queryable, soId: number): Promise<LockInfo[]> {
  const rows = await q.all<{ holder: string; mode: 'read' | 'write'; acquired_at: string }>(
    'SELECT holder, mode, acquired_at FROM neb_lock WHERE so_id = ? ORDER BY lock_id', [soId]);
  return rows.map((r) => ({ holder: r.holder, mode: r.mode, acquiredAt: r.acquired_at }));
}

/** The locks whose holders have sent no heartbeat since `cutoff` (what a sweep would release). */
export async function staleLocks(q: Queryable, cutoff: string): Promise<SweptLock[]> {
  const rows = await q.all<{ ext_id: string; holder: string; mode: LockMode; heartbeat_at: string }>(
    `SELECT o.ext_id, l.holder, l.mode, h.heartbeat_at FROM neb_lock l JOIN neb_holder h ON h.holder = l.holder
     JOIN neb_storage_object o ON o.so_id = l.so_id WHERE h.heartbeat_at < ? ORDER BY l.lock_id`, [cutoff]);
  return rows.map((r) => ({ key: r.ext_id, holder: r.holder, mode: r.mode, heartbeatAt: r.heartbeat_at }));
}

/** A lock released by a sweep. */
export interface SweptLock {
  readonly key: string;
  readonly holder: string;
  readonly mode: LockMode;
  readonly heartbeatAt: string;
}

/**
 * Releases every lock of holders whose last heartbeat is before `cutoff` (an ISO time: the
 * clients that died holding them) and forgets those holders.
 */
export async function sweepLocks(db: Database, cutoff: string): Promise<SweptLock[]> {
  return db.transaction(async (tx) => {
    const stale = await tx.all<{ holder: string; heartbeat_at: string }>(
      `SELECT holder, heartbeat_at FROM neb_holder WHERE heartbeat_at < ? ORDER BY holder${forUpdate(tx)}`, [cutoff]);
    if (stale.length === 0) return [];
    const holders = stale.map((s) => s.holder);
    const beats = new Map(stale.map((s) => [s.holder, s.heartbeat_at]));
    const list = holders.map(() => '?').join(', ');
    const locks = await tx.all<{ so_id: number; ext_id: string; holder: string; mode: LockMode }>(
      `SELECT l.so_id, o.ext_id, l.holder, l.mode FROM neb_lock l JOIN neb_storage_object o ON o.so_id = l.so_id
       WHERE l.holder IN (${list}) ORDER BY l.lock_id`, holders);
    await tx.run(`UPDATE neb_storage_object SET write_holder = NULL, lock_time = NULL WHERE write_holder IN (${list})`, holders);
    await tx.run(`UPDATE neb_storage_object SET read_locks = read_locks - (
        SELECT count(*) FROM neb_lock l WHERE l.so_id = neb_storage_object.so_id AND l.mode = 'read' AND l.holder IN (${list}))
      WHERE so_id IN (SELECT so_id FROM neb_lock WHERE mode = 'read' AND holder IN (${list}))`, [...holders, ...holders]);
    await tx.run(`DELETE FROM neb_lock WHERE holder IN (${list})`, holders);
    await tx.run(`DELETE FROM neb_holder WHERE holder IN (${list})`, holders);
    return locks.map((l) => ({ key: l.ext_id, holder: l.holder, mode: l.mode, heartbeatAt: beats.get(l.holder)! }));
  });
}
