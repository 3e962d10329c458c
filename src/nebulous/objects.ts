// The SQL of storage objects and instances: one function per statement, set-based where a
// statement touches many rows.
import { join } from 'node:path';
import { insertRows, type Queryable, type SqlValue } from '../db/index.ts';
import { NebError } from './errors.ts';
import { printable } from './key.ts';
import type { InstanceInfo, VolumeState } from './types.ts';

/** A storage object row. */
export type ObjectRow = {
  readonly so_id: number;
  readonly ext_id: string;
  readonly tomb: number;
  readonly state: 'live' | 'deleted';
  readonly size: number | null;
  readonly checksum: string | null;
  readonly copies: number;
  readonly read_locks: number;
  readonly write_holder: string | null;
  readonly lock_time: string | null;
  readonly created_at: string;
  readonly modified_at: string;
  readonly deleted_at: string | null;
};

/** An instance row with its volume. */
export type InstanceRow = {
  readonly ins_id: number;
  readonly so_id: number;
  readonly vol_id: number;
  readonly rel_path: string;
  readonly pinned: number;
  readonly created_at: string;
  readonly vol_name: string;
  readonly vol_host: string;
  readonly vol_path: string;
  readonly vol_state: VolumeState;
};

/** `FOR UPDATE` on PostgreSQL (row locks for the rest of the transaction); SQLite's transactions hold the write lock already. */
export function forUpdate(q: Queryable): string {
  return q.dialect.engine === 'postgres' ? ' FOR UPDATE' : '';
}

/** The absolute path of an instance's file. */
export function instancePath(row: Pick<InstanceRow, 'vol_path' | 'rel_path'>): string {
  return join(row.vol_path, row.rel_path);
}

/** The public description of an instance. */
export function instanceInfo(row: InstanceRow, fileSize?: number | null): InstanceInfo {
  return {
    id: Number(row.ins_id), volume: row.vol_name, host: row.vol_host, path: instancePath(row),
    volumeState: row.vol_state, pinned: Number(row.pinned) === 1, createdAt: row.created_at,
    ...(fileSize === undefined ? {} : { fileSize }),
  };
}

/** The live object of a key (row-locked when `lock`), or the error saying why there is none. */
export async function liveObject(q: Queryable, key: string, lock = false): Promise<ObjectRow> {
  const row = await q.get<ObjectRow>(`SELECT * FROM neb_storage_object WHERE ext_id = ? AND tomb = 0${lock ? forUpdate(q) : ''}`, [key]);
  if (row === undefined) throw await missingObject(q, key);
  return row;
}

/** `neb_deleted` when the key's last object was deleted, `neb_not_found` when it never existed. */
export async function missingObject(q: Queryable, key: string): Promise<NebError> {
  const gone = await q.get<{ deleted_at: string }>(
    'SELECT deleted_at FROM neb_storage_object WHERE ext_id = ? AND tomb <> 0 ORDER BY so_id DESC LIMIT 1', [key]);
  return gone
    ? new NebError('neb_deleted', `storage object ${printable(key)} was deleted at ${gone.deleted_at}`)
    : new NebError('neb_not_found', `no storage object has the key ${printable(key)}`);
}

/** The most recent object of a key, live or deleted (for stat). */
export async function latestObject(q: Queryable, key: string): Promise<ObjectRow | undefined> {
  return q.get<ObjectRow>('SELECT * FROM neb_storage_object WHERE ext_id = ? ORDER BY tomb = 0 DESC, so_id DESC LIMIT 1', [key]);
}

const INSTANCE_COLUMNS = `i.ins_id, i.so_id, i.vol_id, i.rel_path, i.pinned, i.created_at,
  v.name AS vol_name, v.host AS vol_host, v.path AS vol_path, v.state AS vol_state`;

/** What find needs of an instance: its path, its volume's name, host and state, and its order. */
export type FoundRow = Pick<InstanceRow, 'ins_id' | 'rel_path' | 'vol_name' | 'vol_host' | 'vol_path' | 'vol_state'> & { readonly ext_id: string };

/**
 * The instances of the live objects of some keys, with what find needs of their volumes (the
 * hot path of find: only those columns, since every value read costs a conversion).
 */
export async function instancesByKeys(q: Queryable, keys: readonly string[]): Promise<FoundRow[]> {
  const select = `SELECT o.ext_id, i.ins_id, i.rel_path, v.name AS vol_name, v.host AS vol_host, v.path AS vol_path, v.state AS vol_state
    FROM neb_storage_object o JOIN neb_instance i ON i.so_id = o.so_id JOIN neb_volume v ON v.vol_id = i.vol_id`;
  if (q.dialect.engine === 'postgres') {
    // One parameter, a JSON list: PostgreSQL plans every statement it is sent, and a list of
    // 128 parameters costs more to plan than to run.
    return q.all(`${select} WHERE o.ext_id = ANY (ARRAY(SELECT jsonb_array_elements_text(?::jsonb))) AND o.tomb = 0 ORDER BY i.ins_id`, [JSON.stringify(keys)]);
  }
  // The list is padded to a power of two so that few distinct statements are prepared.
  let size = 1;
  while (size < keys.length) size *= 2;
  const params = Array.from({ length: size }, (_, i) => keys[Math.min(i, keys.length - 1)]);
  return q.all(`${select} WHERE o.ext_id IN (${params.map(() => '?').join(', ')}) AND o.tomb = 0 ORDER BY i.ins_id`, params);
}

/** The instances of an object, with their volumes. */
export async function instancesOf(q: Queryable, soId: number): Promise<InstanceRow[]> {
  return q.all<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM neb_instance i JOIN neb_volume v ON v.vol_id = i.vol_id
    WHERE i.so_id = ? ORDER BY i.ins_id`, [soId]);
}

/** Instances with ids after `after`, in id order, with their objects' keys and checksums (fsck's walk). */
export async function instancesAfter(q: Queryable, after: number, limit: number): Promise<(InstanceRow & Pick<ObjectRow, 'ext_id' | 'size' | 'checksum'>)[]> {
  return q.all(`SELECT ${INSTANCE_COLUMNS}, o.ext_id, o.size, o.checksum FROM neb_instance i
    JOIN neb_volume v ON v.vol_id = i.vol_id JOIN neb_storage_object o ON o.so_id = i.so_id
    WHERE i.ins_id > ? ORDER BY i.ins_id LIMIT ${Math.floor(limit)}`, [after]);
}

/** The instances of one volume among the given ids: fsck's check of the files it finds. */
export async function instancesOnVolume(q: Queryable, volId: number, ids: readonly number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const rows = await q.all<{ ins_id: number; rel_path: string }>(
    `SELECT ins_id, rel_path FROM neb_instance WHERE vol_id = ? AND ins_id IN (${ids.map(() => '?').join(', ')})`, [volId, ...ids]);
  return new Map(rows.map((r) => [Number(r.ins_id), r.rel_path]));
}

/** A new object and its first instance, as {@link insertObjects} and {@link insertInstances} take them. */
export interface NewObject {
  readonly soId: number;
  readonly key: string;
  readonly size: number | null;
  readonly checksum: string | null;
  readonly copies: number;
  readonly now: string;
}

/** A new instance row. */
export interface NewInstance {
  readonly insId: number;
  readonly soId: number;
  readonly volId: number;
  readonly relPath: string;
  readonly pinned: boolean;
  readonly now: string;
}

const OBJECT_CHUNK = 1000;

/**
 * Inserts live objects in few statements; a key that already has a live object is skipped.
 * Returns the ids inserted.
 */
export async function insertObjects(q: Queryable, objects: readonly NewObject[]): Promise<Set<number>> {
  const inserted = new Set<number>();
  for (let start = 0; start < objects.length; start += OBJECT_CHUNK) {
    const chunk = objects.slice(start, start + OBJECT_CHUNK);
    const params: SqlValue[] = [];
    for (const o of chunk) params.push(o.soId, o.key, o.size, o.checksum, o.copies, o.now, o.now);
    const rows = await q.all<{ so_id: number }>(`INSERT INTO neb_storage_object
      (so_id, ext_id, tomb, state, size, checksum, copies, read_locks, created_at, modified_at)
      VALUES ${chunk.map(() => "(?, ?, 0, 'live', ?, ?, ?, 0, ?, ?)").join(', ')}
      ON CONFLICT (ext_id, tomb) DO NOTHING RETURNING so_id`, params);
    for (const r of rows) inserted.add(Number(r.so_id));
  }
  return inserted;
}

/** Inserts instance rows (one statement per chunk). */
export async function insertInstances(q: Queryable, instances: readonly NewInstance[]): Promise<void> {
  await insertRows(q, 'neb_instance', ['ins_id', 'so_id', 'vol_id', 'rel_path', 'pinned', 'created_at'],
    instances.map((i) => [i.insId, i.soId, i.volId, i.relPath, i.pinned ? 1 : 0, i.now]));
}

/** Removes instance rows; returns how many went. */
export async function deleteInstances(q: Queryable, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const { changes } = await q.run(`DELETE FROM neb_instance WHERE ins_id IN (${ids.map(() => '?').join(', ')})`, ids);
  return changes;
}

/** Marks an object deleted (freeing its key for a new object) and removes its instance rows and locks; attributes stay as history. */
export async function markDeleted(q: Queryable, soId: number, now: string): Promise<void> {
  await q.run('DELETE FROM neb_instance WHERE so_id = ?', [soId]);
  await q.run('DELETE FROM neb_lock WHERE so_id = ?', [soId]);
  await q.run(`UPDATE neb_storage_object SET state = 'deleted', tomb = so_id, deleted_at = ?, modified_at = ?,
    read_locks = 0, write_holder = NULL, lock_time = NULL WHERE so_id = ?`, [now, now, soId]);
}

/** Records size and checksum when none is recorded yet (the first time the content is known final). */
export async function recordDigest(q: Queryable, soId: number, size: number, checksum: string): Promise<void> {
  await q.run('UPDATE neb_storage_object SET size = ?, checksum = ? WHERE so_id = ? AND checksum IS NULL', [size, checksum, soId]);
}

/** The user attributes of an object. */
export async function attributesOf(q: Queryable, soId: number): Promise<Record<string, string>> {
  const rows = await q.all<{ name: string; value: string }>('SELECT name, value FROM neb_attr WHERE so_id = ? ORDER BY name', [soId]);
  return Object.fromEntries(rows.map((r) => [r.name, r.value]));
}
