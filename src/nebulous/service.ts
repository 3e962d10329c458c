// The Nebulous operations, as the server runs them: metadata in the database, files on the
// volumes. Volumes are directories this process can reach, so the data path (replicate, copy,
// import, fsck) runs here, in the server. Every operation that changes files orders its steps
// so that a crash at any point leaves only what fsck recognises and repairs:
//  - a new file is written first (a new instance under a temporary name, renamed when
//    complete and checked) and recorded afterwards; a crash in between leaves an orphan file;
//  - a removal is recorded first and the file unlinked afterwards; a crash in between leaves
//    an orphan file too. A recorded instance always names a complete file.
import { stat as statFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { silentLogger, type Logger } from '../common/index.ts';
import type { Database, Queryable } from '../db/index.ts';
import { DbError } from '../db/index.ts';
import { copyVerified, createEmptyFile, removeFile } from './data-path.ts';
import { NebError } from './errors.ts';
import { IdAllocator } from './id-allocator.ts';
import { instanceRelPath, parseNebKey, parseVolumeRequest, printable, type KeyPattern, type NebKey } from './key.ts';
import {
  acquireLock, assertUnlocked, checkHolder, checkMode, heartbeat, locksOf, releaseLock, sweepLocks,
  type LockMode, type SweptLock,
} from './locks.ts';
import {
  attributesOf, deleteInstances, forUpdate, insertInstances, insertObjects, instanceInfo, instancePath,
  instancesByKeys, instancesOf, type FoundRow, latestObject, liveObject, markDeleted, missingObject, recordDigest,
  type InstanceRow, type NewInstance, type NewObject, type ObjectRow,
} from './objects.ts';
import { searchKeys, type SearchOptions } from './search.ts';
import type { ObjectStat, PlacedInstance, VolumeInfo } from './types.ts';
import {
  addVolume, chooseVolume, instanceCounts, setVolume, unknownVolume, VolumeCache, volumeInfo,
  type Volume, type VolumeChange, type VolumeSpec,
} from './volumes.ts';

/** Options of {@link Nebulous}. */
export interface NebulousOptions {
  /** An open database with the Nebulous migrations applied. */
  readonly db: Database;
  readonly log?: Logger;
  /** Flush each copy to disk before it is renamed into place (default true). */
  readonly syncData?: boolean;
  /** Locks of a holder silent for this long are released by the sweep (default 300 s). */
  readonly lockTimeoutMs?: number;
  /** How long the volume table is cached (default 1000 ms). */
  readonly volumeCacheMs?: number;
  /** The random source of volume placement (tests make it fixed). */
  readonly random?: () => number;
}

/** The most keys one find-many call takes. */
export const MAX_FIND_MANY = 10_000;

/** One key's answer in a find-many: its paths, best first, or why there are none. */
export type FoundPaths =
  | { readonly key: string; readonly paths: string[] }
  | { readonly key: string; readonly error: { readonly code: string; readonly message: string } };

/** Who asks: a lock holder's name (defaults to none, which owns no locks). */
export interface Caller {
  readonly holder?: string;
}

/** The shape of a create, replicate, copy or import request's placement. */
export interface PlaceOptions extends Caller {
  /** `VOL` (a wish), `~VOL` (a requirement) or `any`. */
  readonly volume?: string;
}

/** The SQL-level constraint violation of a unique key, as the engines report it. */
function isUniqueViolation(error: unknown): boolean {
  return error instanceof DbError && error.code === 'db_constraint';
}

/** The Nebulous operations over one database and the volumes it names. */
export class Nebulous {
  readonly db: Database;
  readonly log: Logger;
  readonly volumes: VolumeCache;
  readonly ids: IdAllocator;
  readonly lockTimeoutMs: number;
  /** Instance ids whose files are being written now: fsck leaves them alone. */
  readonly inFlight = new Set<number>();
  readonly #sync: boolean;
  readonly #random: () => number;
  readonly #creates: CreateBatcher;
  readonly #lookups: LookupBatcher;

  constructor(options: NebulousOptions) {
    this.db = options.db;
    this.log = options.log ?? silentLogger;
    this.volumes = new VolumeCache(options.db, options.volumeCacheMs ?? 1000);
    this.ids = new IdAllocator(options.db);
    this.lockTimeoutMs = options.lockTimeoutMs ?? 300_000;
    this.#sync = options.syncData ?? true;
    this.#random = options.random ?? Math.random;
    this.#creates = new CreateBatcher(options.db);
    this.#lookups = new LookupBatcher(options.db);
  }

  // ---- volumes

  /** Registers a volume `HOST.VOLUME` at a directory. */
  async addVolume(spec: VolumeSpec): Promise<VolumeInfo> {
    const volume = await addVolume(this.db, spec);
    this.volumes.invalidate();
    return volumeInfo(volume);
  }

  /** Changes a volume's state, path or sizes. */
  async setVolume(name: string, change: VolumeChange): Promise<VolumeInfo> {
    const volume = await setVolume(this.db, name, change);
    this.volumes.invalidate();
    return volumeInfo(volume);
  }

  /** Every volume with its instance count; measured volumes show the file system's figures now. */
  async listVolumes(): Promise<VolumeInfo[]> {
    this.volumes.invalidate();
    const [volumes, counts] = await Promise.all([this.volumes.all(), instanceCounts(this.db)]);
    return volumes.map((v) => volumeInfo(v, counts.get(v.id) ?? 0));
  }

  /** Writes the measured capacity and free space of volumes to the table (for other readers). */
  async recordMeasuredSpace(): Promise<void> {
    this.volumes.invalidate();
    for (const v of await this.volumes.all()) {
      if (v.measured && v.free !== null) {
        await this.db.run('UPDATE neb_volume SET capacity = ?, free = ? WHERE vol_id = ? AND measured = 1', [v.capacity, v.free, v.id]);
      }
    }
  }

  // ---- creating and copying

  /**
   * Creates a storage object and its first instance, an empty file; returns the path the
   * caller writes. The file exists before the rows do, so a crash leaves at most an orphan.
   */
  async create(keyText: string, options: PlaceOptions & { copies?: number } = {}): Promise<PlacedInstance> {
    const parsed = parseNebKey(keyText, options.volume);
    const copies = checkCopies(options.copies ?? 1);
    const volume = chooseVolume(await this.volumes.all(), {
      name: parsed.volume, hard: parsed.hardVolume, what: `new object ${printable(parsed.key)}`,
    }, this.#random);
    const [soId, insId] = await Promise.all([this.ids.next('object'), this.ids.next('instance')]);
    const relPath = instanceRelPath(parsed.key, insId);
    const path = instancePath({ vol_path: volume.path, rel_path: relPath });
    const now = new Date().toISOString();
    let created: boolean;
    this.inFlight.add(insId);
    try {
      await createEmptyFile(path);
      try {
        created = await this.#creates.submit(
          { soId, key: parsed.key, size: null, checksum: null, copies, now },
          { insId, soId, volId: volume.id, relPath, pinned: parsed.volume === volume.name, now });
      } catch (error) {
        await removeFile(path);
        throw error;
      }
    } finally {
      this.inFlight.delete(insId);
    }
    if (!created) {
      await removeFile(path);
      throw new NebError('neb_exists', `storage object ${printable(parsed.key)} already exists; delete it first or choose another key`);
    }
    return { key: parsed.key, path, volume: volume.name, host: volume.host, instance: insId };
  }

  /**
   * Adds an instance of an object on another volume (on another host when one can take it):
   * copies a live instance's file, checks its SHA-256 against the recorded one (recording it
   * when none is), and records the new instance.
   */
  async replicate(keyText: string, options: PlaceOptions & { distinctHost?: boolean } = {}): Promise<PlacedInstance> {
    const parsed = parseNebKey(keyText, options.volume);
    const object = await liveObject(this.db, parsed.key);
    assertUnlocked(object, options.holder, 'replicate', true);
    const instances = await instancesOf(this.db, object.so_id);
    const sources = readable(instances);
    if (sources.length === 0) throw noInstance(parsed.key, instances);
    // Before its size is recorded, the object is as large as its file is now.
    const need = object.size ?? await statFile(instancePath(sources[0])).then((s) => s.size, () => 0);
    const volume = chooseVolume(await this.volumes.all(), {
      name: parsed.volume, hard: parsed.hardVolume, what: printable(parsed.key), need: Number(need),
      excludeVolumes: new Set(instances.map((i) => Number(i.vol_id))),
      avoidHosts: new Set(instances.map((i) => i.vol_host)), distinctHost: options.distinctHost,
    }, this.#random);
    return this.#copyIn(object, sources.map(instancePath), volume, parsed, options.holder);
  }

  /** Copies one of `sources` to a new instance of `object` on `volume` and records it. */
  async #copyIn(object: ObjectRow, sources: readonly string[], volume: Volume, parsed: NebKey, holder?: string): Promise<PlacedInstance> {
    const insId = await this.ids.next('instance');
    const relPath = instanceRelPath(object.ext_id, insId);
    const path = instancePath({ vol_path: volume.path, rel_path: relPath });
    this.inFlight.add(insId);
    try {
      const digest = await this.#copyFromAny(sources, path, object.checksum);
      try {
        await this.db.transaction(async (tx) => {
          const now = await tx.get<ObjectRow>(`SELECT * FROM neb_storage_object WHERE so_id = ?${forUpdate(tx)}`, [object.so_id]);
          if (!now || now.state !== 'live') throw await missingObject(tx, object.ext_id);
          assertUnlocked(now, holder, 'replicate', true);
          if (await tx.get('SELECT ins_id FROM neb_instance WHERE so_id = ? AND vol_id = ?', [object.so_id, volume.id])) {
            throw new NebError('neb_exists', `another copy of ${printable(object.ext_id)} was placed on ${volume.name} meanwhile`);
          }
          await insertInstances(tx, [{ insId, soId: object.so_id, volId: volume.id, relPath, pinned: parsed.volume === volume.name, now: new Date().toISOString() }]);
          await recordDigest(tx, object.so_id, digest.size, digest.checksum);
        });
      } catch (error) {
        await removeFile(path);
        throw error;
      }
      return { key: object.ext_id, path, volume: volume.name, host: volume.host, instance: insId };
    } finally {
      this.inFlight.delete(insId);
    }
  }

  /** Copies the first source that reads back with the expected checksum. */
  async #copyFromAny(sources: readonly string[], dest: string, expect: string | null) {
    let last: unknown;
    for (const source of sources) {
      try {
        return await copyVerified(source, dest, { expect, sync: this.#sync });
      } catch (error) {
        const code = (error as NebError).code;
        if (code !== 'neb_checksum_mismatch' && code !== 'neb_source_missing') throw error;
        this.log.warn(`${(error as Error).message}; trying another copy`);
        last = error;
      }
    }
    throw last;
  }

  /** Creates a new object `to` with one instance copied from a live instance of `from`; copies and attributes carry over. */
  async copy(fromText: string, toText: string, options: PlaceOptions = {}): Promise<PlacedInstance> {
    const from = parseNebKey(fromText);
    const to = parseNebKey(toText, options.volume);
    const source = await liveObject(this.db, from.key);
    assertUnlocked(source, options.holder, 'copy', true);
    const sources = readable(await instancesOf(this.db, source.so_id));
    if (sources.length === 0) throw noInstance(from.key, []);
    const volume = chooseVolume(await this.volumes.all(), {
      name: to.volume, hard: to.hardVolume, what: `copy ${printable(to.key)}`, need: source.size ?? 0,
    }, this.#random);
    return this.#newObjectFrom(sources.map(instancePath), to, volume, source.checksum, source.copies, source.so_id);
  }

  /**
   * Adopts an existing file as a new object: copies it into a new instance (the original is
   * left as it was unless `move`, which removes it once the copy is recorded).
   */
  async import(sourcePath: string, keyText: string, options: PlaceOptions & { copies?: number; move?: boolean } = {}): Promise<PlacedInstance> {
    if (typeof sourcePath !== 'string' || !isAbsolute(sourcePath)) {
      throw new NebError('neb_request_invalid', `the file to import must be an absolute path on the server, not "${String(sourcePath)}"`);
    }
    const info = await statFile(sourcePath).catch((cause: unknown) => {
      throw new NebError('neb_source_missing', `cannot import ${sourcePath}: ${(cause as NodeJS.ErrnoException).code}`, { cause });
    });
    if (!info.isFile()) throw new NebError('neb_source_missing', `cannot import ${sourcePath}: not a regular file`);
    const to = parseNebKey(keyText, options.volume);
    const copies = checkCopies(options.copies ?? 1);
    const volume = chooseVolume(await this.volumes.all(), {
      name: to.volume, hard: to.hardVolume, what: `import ${printable(to.key)}`, need: info.size,
    }, this.#random);
    const placed = await this.#newObjectFrom([sourcePath], to, volume, null, copies);
    if (options.move) await removeFile(sourcePath);
    return placed;
  }

  async #newObjectFrom(sources: readonly string[], to: NebKey, volume: Volume, expect: string | null, copies: number, attributesFrom?: number): Promise<PlacedInstance> {
    const [soId, insId] = await Promise.all([this.ids.next('object'), this.ids.next('instance')]);
    const relPath = instanceRelPath(to.key, insId);
    const path = instancePath({ vol_path: volume.path, rel_path: relPath });
    this.inFlight.add(insId);
    try {
      const digest = await this.#copyFromAny(sources, path, expect);
      const now = new Date().toISOString();
      let created = false;
      try {
        created = await this.db.transaction(async (tx) => {
          const inserted = await insertObjects(tx, [{ soId, key: to.key, size: digest.size, checksum: digest.checksum, copies, now }]);
          if (!inserted.has(soId)) return false;
          await insertInstances(tx, [{ insId, soId, volId: volume.id, relPath, pinned: to.volume === volume.name, now }]);
          if (attributesFrom !== undefined) {
            await tx.run('INSERT INTO neb_attr (so_id, name, value) SELECT ?, name, value FROM neb_attr WHERE so_id = ?', [soId, attributesFrom]);
          }
          return true;
        });
      } finally {
        if (!created) await removeFile(path);
      }
      if (!created) throw new NebError('neb_exists', `storage object ${printable(to.key)} already exists; delete it first or choose another key`);
      return { key: to.key, path, volume: volume.name, host: volume.host, instance: insId };
    } finally {
      this.inFlight.delete(insId);
    }
  }

  // ---- removing

  /**
   * Removes one instance: the one at `path`, or on `volume`, or the newest. Neither the last
   * instance nor one the object's copies need goes unless `force` (the last then deletes the object).
   */
  async cull(keyText: string, options: Caller & { volume?: string; path?: string; force?: boolean } = {}): Promise<{ removed: string; deleted: boolean }> {
    const parsed = parseNebKey(keyText);
    const wanted = options.volume === undefined ? undefined : parseVolumeRequest(options.volume).volume;
    const now = new Date().toISOString();
    const { victim, deleted } = await this.db.transaction(async (tx) => {
      const object = await liveObject(tx, parsed.key, true);
      assertUnlocked(object, options.holder, 'cull');
      const instances = await instancesOf(tx, object.so_id);
      const victim = pickVictim(instances, parsed.key, options.path, wanted);
      if (instances.length === 1) {
        if (!options.force) {
          throw new NebError('neb_last_instance', `${instancePath(victim)} is the last instance of ${printable(parsed.key)}; use delete (or cull --force) to remove the object`);
        }
        await markDeleted(tx, object.so_id, now);
        return { victim, deleted: true };
      }
      if (instances.length - 1 < Number(object.copies) && !options.force) {
        throw new NebError('neb_copies_needed', `${printable(parsed.key)} keeps ${object.copies} copies and has ${instances.length}; lower its copies first, or cull --force`);
      }
      await deleteInstances(tx, [Number(victim.ins_id)]);
      return { victim, deleted: false };
    });
    await this.#unlink([victim]);
    return { removed: instancePath(victim), deleted };
  }

  /** Deletes an object: its state becomes deleted (freeing the key) and every instance's file is removed. */
  async delete(keyText: string, options: Caller = {}): Promise<{ key: string; removed: string[] }> {
    const parsed = parseNebKey(keyText);
    const now = new Date().toISOString();
    const instances = await this.db.transaction(async (tx) => {
      const object = await liveObject(tx, parsed.key, true);
      assertUnlocked(object, options.holder, 'delete');
      const instances = await instancesOf(tx, object.so_id);
      await markDeleted(tx, object.so_id, now);
      return instances;
    });
    await this.#unlink(instances);
    return { key: parsed.key, removed: instances.map(instancePath) };
  }

  /** Removes the files of instances whose rows are gone; a down volume's files wait for fsck. */
  async #unlink(instances: readonly InstanceRow[]): Promise<void> {
    for (const i of instances) {
      if (i.vol_state === 'down') continue;
      const failure = await removeFile(instancePath(i));
      if (failure) this.log.warn(`cannot remove ${instancePath(i)} (${(failure as NodeJS.ErrnoException).code}); fsck will report it as an orphan`);
    }
  }

  // ---- finding and reading

  /**
   * The paths of an object's instances that can be read (volumes not down): those on the
   * preferred host or volume first, then available volumes before read-only ones. A required
   * volume (`~VOL`) returns only its instance.
   */
  async find(keyText: string, options: { host?: string; volume?: string } = {}): Promise<string[]> {
    const parsed = parseNebKey(keyText, options.volume);
    if (parsed.volume !== undefined && !(await this.volumes.all()).some((v) => v.name === parsed.volume)) throw unknownVolume(parsed.volume);
    const rows = await this.#lookups.get(parsed.key);
    if (rows.length === 0) throw await missingObject(this.db, parsed.key);
    let usable = readable(rows);
    if (parsed.hardVolume) {
      usable = usable.filter((r) => r.vol_name === parsed.volume);
      if (usable.length === 0) throw new NebError('neb_no_instance', `${printable(parsed.key)} has no readable instance on volume ${parsed.volume}`);
    }
    if (usable.length === 0) throw noInstance(parsed.key, rows);
    return rank(usable, options.host, parsed.volume).map(instancePath);
  }

  /** {@link find} for many keys at once: each key's paths, or its error's code and message. */
  async findMany(keys: readonly string[], options: { host?: string; volume?: string } = {}): Promise<FoundPaths[]> {
    if (!Array.isArray(keys) || keys.length > MAX_FIND_MANY) {
      throw new NebError('neb_request_invalid', `find-many takes a list of at most ${MAX_FIND_MANY} keys`);
    }
    return Promise.all(keys.map((key) => this.find(key, options).then(
      (paths): FoundPaths => ({ key, paths }),
      (error: unknown): FoundPaths => {
        if (!(error instanceof NebError)) throw error;
        return { key, error: { code: error.code, message: error.message } };
      })));
  }

  /**
   * Opens an object: for read, the path of the best readable instance; for write, every
   * instance but one is culled first (so the copies cannot disagree) and the recorded
   * checksum is cleared, since the content is about to change.
   */
  async open(keyText: string, mode: LockMode, options: Caller & { host?: string; volume?: string } = {}): Promise<{ key: string; path: string; culled: string[] }> {
    checkMode(mode);
    if (mode === 'read') {
      const [path] = await this.find(keyText, options);
      return { key: parseNebKey(keyText).key, path, culled: [] };
    }
    const parsed = parseNebKey(keyText, options.volume);
    const now = new Date().toISOString();
    const { keep, culled } = await this.db.transaction(async (tx) => {
      const object = await liveObject(tx, parsed.key, true);
      assertUnlocked(object, options.holder, 'open for write');
      const instances = await instancesOf(tx, object.so_id);
      const writable = instances.filter((i) => i.vol_state === 'available');
      if (writable.length === 0) {
        throw new NebError('neb_volume_unavailable', `${printable(parsed.key)} has no instance on an available volume to write (${instances.map((i) => `${i.vol_name}: ${i.vol_state}`).join(', ')})`);
      }
      const [keep] = rank(writable, options.host, parsed.volume);
      const culled = instances.filter((i) => i.ins_id !== keep.ins_id);
      await deleteInstances(tx, culled.map((i) => Number(i.ins_id)));
      await tx.run('UPDATE neb_storage_object SET size = NULL, checksum = NULL, modified_at = ? WHERE so_id = ?', [now, object.so_id]);
      return { keep, culled };
    });
    await this.#unlink(culled);
    return { key: parsed.key, path: instancePath(keep), culled: culled.map(instancePath) };
  }

  /** What is known about an object: recorded size and checksum, locks, attributes, and each instance with its file's size now. */
  async stat(keyText: string): Promise<ObjectStat> {
    const parsed = parseNebKey(keyText);
    const object = await latestObject(this.db, parsed.key);
    if (!object) throw await missingObject(this.db, parsed.key);
    const [instances, locks, attributes] = await Promise.all([
      instancesOf(this.db, object.so_id), locksOf(this.db, object.so_id), attributesOf(this.db, object.so_id),
    ]);
    const infos = await Promise.all(instances.map(async (i) => {
      if (i.vol_state === 'down') return instanceInfo(i, null);
      const size = await statFile(instancePath(i)).then((s) => s.size, () => null);
      return instanceInfo(i, size);
    }));
    return {
      key: object.ext_id, id: Number(object.so_id), state: object.state,
      size: object.size === null ? null : Number(object.size), checksum: object.checksum,
      copies: Number(object.copies), readLocks: Number(object.read_locks),
      writeLock: object.write_holder === null ? null : { holder: object.write_holder, time: object.lock_time ?? '' },
      locks, createdAt: object.created_at, modifiedAt: object.modified_at, deletedAt: object.deleted_at,
      instances: infos, attributes,
    };
  }

  /** The live keys matching a pattern, in key order, a batch at a time. */
  search(pattern: KeyPattern, options: SearchOptions = {}): AsyncGenerator<string[]> {
    return searchKeys(this.db, pattern, options);
  }

  // ---- renaming

  /** Renames an object (its files keep their names; the rows say where they are). */
  async move(fromText: string, toText: string, options: Caller = {}): Promise<{ from: string; to: string }> {
    const from = parseNebKey(fromText).key;
    const to = parseNebKey(toText).key;
    if (from === to) throw new NebError('neb_request_invalid', `cannot move ${printable(from)} onto itself`);
    try {
      await this.db.transaction(async (tx) => {
        const object = await liveObject(tx, from, true);
        assertUnlocked(object, options.holder, 'move');
        if (await tx.get('SELECT so_id FROM neb_storage_object WHERE ext_id = ? AND tomb = 0', [to])) throw exists(to);
        await tx.run('UPDATE neb_storage_object SET ext_id = ?, modified_at = ? WHERE so_id = ?', [to, new Date().toISOString(), object.so_id]);
      });
    } catch (error) {
      throw isUniqueViolation(error) ? exists(to) : error;
    }
    return { from, to };
  }

  /** Exchanges the keys of two objects in one transaction. */
  async swap(aText: string, bText: string, options: Caller = {}): Promise<{ a: string; b: string }> {
    const a = parseNebKey(aText).key;
    const b = parseNebKey(bText).key;
    if (a === b) throw new NebError('neb_request_invalid', `cannot swap ${printable(a)} with itself`);
    await this.db.transaction(async (tx) => {
      const first = await liveObject(tx, a, true);
      const second = await liveObject(tx, b, true);
      assertUnlocked(first, options.holder, 'swap');
      assertUnlocked(second, options.holder, 'swap');
      const now = new Date().toISOString();
      // The first object steps aside (a negative tomb frees its key), the second takes its key, the first takes the second's.
      await tx.run('UPDATE neb_storage_object SET tomb = -so_id WHERE so_id = ?', [first.so_id]);
      await tx.run('UPDATE neb_storage_object SET ext_id = ?, modified_at = ? WHERE so_id = ?', [a, now, second.so_id]);
      await tx.run('UPDATE neb_storage_object SET ext_id = ?, tomb = 0, modified_at = ? WHERE so_id = ?', [b, now, first.so_id]);
    });
    return { a, b };
  }

  // ---- locks, attributes, policy

  /** Takes a read or write lock for `holder`. */
  async lock(keyText: string, mode: LockMode, holder: string): Promise<void> {
    await acquireLock(this.db, parseNebKey(keyText).key, checkMode(mode), checkHolder(holder));
  }

  /** Releases a lock `holder` has. */
  async unlock(keyText: string, mode: LockMode, holder: string): Promise<void> {
    await releaseLock(this.db, parseNebKey(keyText).key, checkMode(mode), checkHolder(holder));
  }

  /** Keeps `holder`'s locks alive; returns how many it holds. */
  async heartbeat(holder: string): Promise<number> {
    return heartbeat(this.db, checkHolder(holder));
  }

  /**
   * Releases the locks of holders silent for longer than the lock timeout (or `timeoutMs`), or
   * with no heartbeat since the ISO time `before`.
   */
  async sweepLocks(options: { timeoutMs?: number; before?: string } = {}): Promise<SweptLock[]> {
    const swept = await sweepLocks(this.db, this.lockCutoff(options));
    for (const s of swept) this.log.warn(`released ${s.mode} lock of ${s.holder} on ${s.key} (no heartbeat since ${s.heartbeatAt})`);
    return swept;
  }

  /** The heartbeat time before which a holder counts as dead. */
  lockCutoff(options: { timeoutMs?: number; before?: string } = {}): string {
    if (options.before !== undefined) {
      if (Number.isNaN(Date.parse(options.before))) throw new NebError('neb_request_invalid', `"${options.before}" is not an ISO time`);
      return new Date(options.before).toISOString();
    }
    const timeout = options.timeoutMs ?? this.lockTimeoutMs;
    if (!(timeout >= 0)) throw new NebError('neb_request_invalid', `a lock timeout must be zero or more milliseconds, not ${timeout}`);
    return new Date(Date.now() - timeout).toISOString();
  }

  /** Sets (or with `null` removes) a user attribute of an object. */
  async setAttribute(keyText: string, name: string, value: string | null): Promise<Record<string, string>> {
    const key = parseNebKey(keyText).key;
    if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/.test(name)) {
      throw new NebError('neb_request_invalid', `attribute name "${printable(String(name))}" must start with a letter or _ and hold letters, digits, '_', '.', ':' or '-' (at most 64)`);
    }
    if (value !== null && (typeof value !== 'string' || value.length > 4096)) {
      throw new NebError('neb_request_invalid', `attribute ${name}: the value must be text of at most 4096 characters`);
    }
    return this.db.transaction(async (tx) => {
      const object = await liveObject(tx, key, true);
      if (value === null) {
        const { changes } = await tx.run('DELETE FROM neb_attr WHERE so_id = ? AND name = ?', [object.so_id, name]);
        if (changes === 0) throw new NebError('neb_not_found', `${printable(key)} has no attribute ${name}`);
      } else {
        await tx.run(`INSERT INTO neb_attr (so_id, name, value) VALUES (?, ?, ?)
          ON CONFLICT (so_id, name) DO UPDATE SET value = excluded.value`, [object.so_id, name, value]);
      }
      return attributesOf(tx, object.so_id);
    });
  }

  /** Sets how many copies (on distinct hosts) an object must keep; repair adds the missing ones. */
  async setCopies(keyText: string, copies: number): Promise<void> {
    const key = parseNebKey(keyText).key;
    const n = checkCopies(copies);
    await this.db.transaction(async (tx) => {
      const object = await liveObject(tx, key, true);
      await tx.run('UPDATE neb_storage_object SET copies = ? WHERE so_id = ?', [n, object.so_id]);
    });
  }

  /** Waits for the creates in flight. */
  async close(): Promise<void> {
    await this.#creates.idle();
  }
}

/** Instances whose volume can be read. */
function readable<T extends Pick<InstanceRow, 'vol_state'>>(rows: readonly T[]): T[] {
  return rows.filter((r) => r.vol_state !== 'down');
}

/** What ranking reads of an instance. */
type RankedRow = Pick<InstanceRow, 'vol_host' | 'vol_name' | 'vol_state' | 'ins_id'>;

/** Instances best first: on the host asked for, on the volume asked for, on an available volume, oldest. */
function rank<T extends RankedRow>(rows: readonly T[], host?: string, volume?: string): T[] {
  const score = (r: RankedRow) => (host !== undefined && r.vol_host === host ? 0 : 4)
    + (volume !== undefined && r.vol_name === volume ? 0 : 2) + (r.vol_state === 'available' ? 0 : 1);
  return [...rows].sort((a, b) => score(a) - score(b) || Number(a.ins_id) - Number(b.ins_id));
}

function pickVictim(instances: readonly InstanceRow[], key: string, path?: string, volume?: string): InstanceRow {
  if (path !== undefined) {
    const hit = instances.find((i) => instancePath(i) === path);
    if (!hit) throw new NebError('neb_instance_unknown', `no instance of ${printable(key)} is at ${path}`);
    return hit;
  }
  if (volume !== undefined) {
    const hit = instances.filter((i) => i.vol_name === volume).at(-1);
    if (!hit) throw new NebError('neb_instance_unknown', `${printable(key)} has no instance on volume ${volume}`);
    return hit;
  }
  return instances.at(-1)!;
}

function noInstance(key: string, rows: readonly Pick<InstanceRow, 'vol_name' | 'vol_state'>[]): NebError {
  return new NebError('neb_no_instance', `${printable(key)} has no readable instance: ${rows.length === 0 ? 'it has none' : rows.map((r) => `${r.vol_name} is ${r.vol_state}`).join(', ')}`);
}

function exists(key: string): NebError {
  return new NebError('neb_exists', `storage object ${printable(key)} already exists; delete or move it first`);
}

function checkCopies(copies: unknown): number {
  if (typeof copies !== 'number' || !Number.isInteger(copies) || copies < 1 || copies > 16) {
    throw new NebError('neb_request_invalid', `copies must be a whole number from 1 to 16, not ${String(copies)}`);
  }
  return copies;
}

interface PendingCreate {
  readonly object: NewObject;
  readonly instance: NewInstance;
  resolve(created: boolean): void;
  reject(error: unknown): void;
}

/**
 * Group commit of creates: the creates that arrive while a transaction runs are inserted
 * together by the next one (set-based), so many clients creating at once share transactions.
 */
class CreateBatcher {
  readonly #db: Database;
  #queue: PendingCreate[] = [];
  #running: Promise<void> | undefined;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Inserts the object and its instance; resolves false when the key already has a live object. */
  submit(object: NewObject, instance: NewInstance): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ object, instance, resolve, reject });
      this.#running ??= this.#drain().finally(() => { this.#running = undefined; });
    });
  }

  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, 1000);
      try {
        const inserted = await this.#db.transaction((tx) => insertBatch(tx, batch));
        for (const p of batch) p.resolve(inserted.has(p.object.soId));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
  }
}

interface PendingLookup {
  readonly key: string;
  resolve(rows: FoundRow[]): void;
  reject(error: unknown): void;
}

/**
 * The lookups of find, batched: the keys asked for while a query runs are looked up together
 * by the next one, so many clients finding at once cost one round trip per batch, not per key.
 * A batch starts only once the event loop has read every request that came in with the first
 * (setImmediate): SQLite answers synchronously, so a batch started at once would always hold
 * one key, and one key a statement costs SQLite ~20 µs against ~3-6 µs a key at 64-128 a
 * statement.
 */
class LookupBatcher {
  readonly #db: Database;
  /** Batches looked up at once: one on SQLite (synchronous), several on PostgreSQL, whose round trips would otherwise leave the server waiting. */
  readonly #parallel: number;
  #queue: PendingLookup[] = [];
  #active = 0;
  #scheduled = false;

  constructor(db: Database) {
    this.#db = db;
    this.#parallel = db.dialect.engine === 'postgres' ? 4 : 1;
  }

  /** The instances of a key's live object (none when there is no live object). */
  get(key: string): Promise<FoundRow[]> {
    return new Promise<FoundRow[]>((resolve, reject) => {
      this.#queue.push({ key, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#active >= this.#parallel || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      while (this.#queue.length > 0 && this.#active < this.#parallel) {
        this.#active++;
        void this.#lookUp(this.#queue.splice(0, 128)).finally(() => {
          this.#active--;
          this.#schedule();
        });
      }
    });
  }

  async #lookUp(batch: readonly PendingLookup[]): Promise<void> {
    try {
      const rows = await instancesByKeys(this.#db, [...new Set(batch.map((p) => p.key))]);
      const byKey = new Map<string, FoundRow[]>();
      for (const row of rows) {
        const list = byKey.get(row.ext_id);
        if (list) list.push(row);
        else byKey.set(row.ext_id, [row]);
      }
      for (const p of batch) p.resolve(byKey.get(p.key) ?? []);
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}

async function insertBatch(tx: Queryable, batch: readonly PendingCreate[]): Promise<Set<number>> {
  const inserted = await insertObjects(tx, batch.map((p) => p.object));
  await insertInstances(tx, batch.filter((p) => inserted.has(p.object.soId)).map((p) => p.instance));
  return inserted;
}
