// Volumes: the rows, a short-lived cache of them (with free space measured from the file
// system), and the choice of a volume for a new instance.
import { mkdir, stat, statfs } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Database, Queryable } from '../db/index.ts';
import { NebError } from './errors.ts';
import { checkVolumeName } from './key.ts';
import { prepareHashDirectories } from './data-path.ts';
import { VOLUME_STATES, type VolumeInfo, type VolumeState } from './types.ts';

/** A volume row as the server uses it. */
export interface Volume {
  readonly id: number;
  readonly name: string;
  readonly host: string;
  readonly path: string;
  readonly state: VolumeState;
  readonly capacity: number | null;
  readonly free: number | null;
  readonly measured: boolean;
}

/** Below this fraction of free space a volume counts as full (the original kept 2%). */
export const FULL_FRACTION = 0.02;

const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** True when the volume cannot take `need` more bytes (unknown free space counts as room). */
export function isFull(volume: Volume, need = 0): boolean {
  if (volume.free === null) return false;
  const reserve = volume.capacity === null ? 0 : volume.capacity * FULL_FRACTION;
  return volume.free <= need + reserve || volume.free <= 0;
}

/** The public description of a volume. */
export function volumeInfo(volume: Volume, instances?: number): VolumeInfo {
  const { name, host, path, state, capacity, free, measured } = volume;
  return { name, host, path, state, capacity, free, measured, ...(instances === undefined ? {} : { instances }) };
}

function toVolume(row: Record<string, unknown>): Volume {
  return {
    id: Number(row.vol_id),
    name: String(row.name),
    host: String(row.host),
    path: String(row.path),
    state: row.state as VolumeState,
    capacity: row.capacity === null ? null : Number(row.capacity),
    free: row.free === null ? null : Number(row.free),
    measured: Number(row.measured) === 1,
  };
}

/** Every volume, by name. */
export async function listVolumes(q: Queryable): Promise<Volume[]> {
  return (await q.all('SELECT vol_id, name, host, path, state, capacity, free, measured FROM neb_volume ORDER BY name')).map(toVolume);
}

/** Instances recorded per volume id. */
export async function instanceCounts(q: Queryable): Promise<Map<number, number>> {
  const rows = await q.all<{ vol_id: number; n: number }>('SELECT vol_id, count(*) AS n FROM neb_instance GROUP BY vol_id');
  return new Map(rows.map((r) => [Number(r.vol_id), Number(r.n)]));
}

/** What `volume add` takes. */
export interface VolumeSpec {
  readonly host: string;
  /** The volume's name on its host; the full name is `HOST.VOLUME`. */
  readonly volume: string;
  readonly path: string;
  readonly state?: VolumeState;
  readonly capacity?: number;
  readonly free?: number;
  /** Make the 65,536 hash directories now, so that creates never need a mkdir (takes seconds). */
  readonly prepare?: boolean;
}

/** What `volume set` may change. */
export interface VolumeChange {
  readonly state?: VolumeState;
  readonly path?: string;
  readonly capacity?: number | null;
  readonly free?: number | null;
  /** Measure capacity and free space from the file system again (undoes a hand-set value). */
  readonly measure?: boolean;
}

/** Registers a volume after checking that its directory exists; creates its `nebulous/` directory. */
export async function addVolume(db: Database, spec: VolumeSpec): Promise<Volume> {
  if (typeof spec.host !== 'string' || !HOST_RE.test(spec.host)) {
    throw new NebError('neb_volume_invalid', `host "${String(spec.host)}" is not a host name: letters, digits, '_' and '-' (no dots: the volume is named HOST.VOLUME)`);
  }
  if (typeof spec.volume !== 'string' || spec.volume === '') throw new NebError('neb_volume_invalid', 'the volume name is empty; e.g. ipp neb volume add ipp004 0 /data/ipp004.0');
  const name = `${spec.host}.${spec.volume}`;
  checkVolumeName(name);
  const state = checkState(spec.state ?? 'available');
  const path = await checkDirectory(spec.path, name);
  if (spec.prepare) await prepareHashDirectories(join(path, 'nebulous'));
  const manual = spec.capacity !== undefined || spec.free !== undefined;
  const measured = manual ? undefined : await measure(path);
  const now = new Date().toISOString();
  return db.transaction(async (tx) => {
    if (await tx.get('SELECT vol_id FROM neb_volume WHERE name = ?', [name])) {
      throw new NebError('neb_volume_exists', `volume ${name} is already registered; change it with ipp neb volume set ${name} ...`);
    }
    await tx.run(`INSERT INTO neb_volume (name, host, path, state, capacity, free, measured, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      name, spec.host, path, state,
      checkBytes(manual ? spec.capacity : measured?.capacity, 'capacity'), checkBytes(manual ? spec.free : measured?.free, 'free'),
      manual ? 0 : 1, now, now,
    ]);
    return toVolume((await tx.get('SELECT * FROM neb_volume WHERE name = ?', [name]))!);
  });
}

/** Changes a volume's state, path or sizes. */
export async function setVolume(db: Database, name: string, change: VolumeChange): Promise<Volume> {
  const state = change.state === undefined ? undefined : checkState(change.state);
  const path = change.path === undefined ? undefined : await checkDirectory(change.path, name);
  const sets: string[] = [];
  const params: (string | number | null)[] = [];
  if (state !== undefined) { sets.push('state = ?'); params.push(state); }
  if (path !== undefined) { sets.push('path = ?'); params.push(path); }
  if (change.measure) {
    const measured = await measure(path ?? (await findVolume(db, name)).path);
    sets.push('capacity = ?', 'free = ?', 'measured = 1');
    params.push(measured?.capacity ?? null, measured?.free ?? null);
  } else if (change.capacity !== undefined || change.free !== undefined) {
    if (change.capacity !== undefined) { sets.push('capacity = ?'); params.push(checkBytes(change.capacity, 'capacity')); }
    if (change.free !== undefined) { sets.push('free = ?'); params.push(checkBytes(change.free, 'free')); }
    sets.push('measured = 0');
  }
  if (sets.length === 0) throw new NebError('neb_request_invalid', `nothing to change on volume ${name}: give --state, --path, --capacity, --free or --measure`);
  sets.push('updated_at = ?');
  params.push(new Date().toISOString(), name);
  const { changes } = await db.run(`UPDATE neb_volume SET ${sets.join(', ')} WHERE name = ?`, params);
  if (changes === 0) throw unknownVolume(name);
  return findVolume(db, name);
}

async function findVolume(q: Queryable, name: string): Promise<Volume> {
  const row = await q.get('SELECT * FROM neb_volume WHERE name = ?', [name]);
  if (!row) throw unknownVolume(name);
  return toVolume(row);
}

/** The error for a volume name nobody registered. */
export function unknownVolume(name: string): NebError {
  return new NebError('neb_volume_unknown', `no volume is named ${name}; list them with ipp neb volume ls, add one with ipp neb volume add HOST VOLUME PATH`);
}

function checkState(state: unknown): VolumeState {
  if (!VOLUME_STATES.includes(state as VolumeState)) {
    throw new NebError('neb_volume_invalid', `volume state "${String(state)}" is not one of ${VOLUME_STATES.join(', ')}`);
  }
  return state as VolumeState;
}

function checkBytes(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new NebError('neb_volume_invalid', `${what} must be a whole number of bytes, not ${String(value)}`);
  }
  return value;
}

async function checkDirectory(path: unknown, name: string): Promise<string> {
  if (typeof path !== 'string' || !isAbsolute(path)) {
    throw new NebError('neb_volume_invalid', `the path of volume ${name} must be absolute, not "${String(path)}"`);
  }
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new NebError('neb_volume_invalid', `volume ${name}: ${path} cannot be read (${(cause as NodeJS.ErrnoException).code}); mount it or create the directory first`, { cause });
  }
  if (!info.isDirectory()) throw new NebError('neb_volume_invalid', `volume ${name}: ${path} is not a directory`);
  await mkdir(join(path, 'nebulous'), { recursive: true }).catch((cause: unknown) => {
    throw new NebError('neb_volume_invalid', `volume ${name}: cannot create ${join(path, 'nebulous')}: ${(cause as Error).message}`, { cause });
  });
  return path.replace(/\/+$/, '') || '/';
}

/** Capacity and free bytes of the file system holding `path`; undefined when it cannot be read. */
export async function measure(path: string): Promise<{ capacity: number; free: number } | undefined> {
  try {
    const fs = await statfs(path);
    return { capacity: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize };
  } catch {
    return undefined;
  }
}

/**
 * The volume table, re-read at most every `ttlMs` (so other servers' changes are seen within
 * it), with the free space of measured volumes taken from the file system at each reading.
 */
export class VolumeCache {
  readonly #db: Queryable;
  readonly #ttlMs: number;
  #volumes: Volume[] = [];
  #loadedAt = -Infinity;
  #loading: Promise<Volume[]> | undefined;

  constructor(db: Queryable, ttlMs = 1000) {
    this.#db = db;
    this.#ttlMs = ttlMs;
  }

  /** Every volume, fresh within the cache's lifetime. */
  async all(): Promise<readonly Volume[]> {
    if (performance.now() - this.#loadedAt < this.#ttlMs) return this.#volumes;
    this.#loading ??= this.#load().finally(() => { this.#loading = undefined; });
    return this.#loading;
  }

  /** Forgets the cached rows (after a change made here). */
  invalidate(): void {
    this.#loadedAt = -Infinity;
  }

  async #load(): Promise<Volume[]> {
    const rows = await listVolumes(this.#db);
    const volumes = await Promise.all(rows.map(async (v) => {
      if (!v.measured || v.state === 'down') return v;
      const m = await measure(v.path);
      return m ? { ...v, ...m } : v;
    }));
    this.#volumes = volumes;
    this.#loadedAt = performance.now();
    return volumes;
  }
}

/** What a new instance needs from its volume. */
export interface Placement {
  /** The volume asked for, if any; `hard` makes it a requirement instead of a wish. */
  readonly name?: string;
  readonly hard?: boolean;
  /** Volumes already holding an instance of the object (never chosen twice). */
  readonly excludeVolumes?: ReadonlySet<number>;
  /** Hosts already holding an instance (avoided; refused when `distinctHost`). */
  readonly avoidHosts?: ReadonlySet<string>;
  readonly distinctHost?: boolean;
  /** Bytes the instance will take. */
  readonly need?: number;
  /** For messages: what is being placed. */
  readonly what: string;
}

/** How many of the emptiest volumes a new instance is spread over at random (the original used 15). */
const SPREAD = 4;

/**
 * Chooses the volume for a new instance: the one asked for when it can take the file (or an
 * error when it was required), otherwise one of the emptiest available volumes, preferring
 * hosts that hold no copy yet.
 */
export function chooseVolume(volumes: readonly Volume[], want: Placement, random: () => number = Math.random): Volume {
  const need = want.need ?? 0;
  if (want.name !== undefined) {
    const named = volumes.find((v) => v.name === want.name);
    if (!named) throw unknownVolume(want.name);
    const why = unusable(named, want, need);
    if (why === undefined) return named;
    if (want.hard) throw why;
  }
  const open = volumes.filter((v) => unusable(v, want, need) === undefined);
  const elsewhere = open.filter((v) => !want.avoidHosts?.has(v.host));
  const pool = elsewhere.length > 0 || want.distinctHost ? elsewhere : open;
  if (pool.length === 0) {
    const reasons = volumes.map((v) => `${v.name}: ${unusable(v, want, need)?.message.replace(/^volume \S+ /, '') ?? 'holds a copy on the same host'}`);
    throw new NebError('neb_no_volume', `no volume can take ${want.what}${reasons.length ? ` (${reasons.join('; ')})` : ': no volumes are registered; add one with ipp neb volume add HOST VOLUME PATH'}`);
  }
  const ranked = [...pool].sort((a, b) => freeOf(b) - freeOf(a));
  return ranked[Math.floor(random() * Math.min(SPREAD, ranked.length))];
}

function freeOf(v: Volume): number {
  return v.free ?? Number.MAX_SAFE_INTEGER;
}

function unusable(v: Volume, want: Placement, need: number): NebError | undefined {
  if (v.state !== 'available') return new NebError('neb_volume_unavailable', `volume ${v.name} is ${v.state} and takes no new files`);
  if (isFull(v, need)) return new NebError('neb_volume_full', `volume ${v.name} is full (${v.free} bytes free)`);
  if (want.excludeVolumes?.has(v.id)) return new NebError('neb_exists', `volume ${v.name} already holds a copy of ${want.what}`);
  return undefined;
}
