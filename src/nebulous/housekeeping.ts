// Housekeeping: the consistency sweep (fsck), repair of missing copies, rebalancing full
// volumes. They run in the server, next to the operations they must not trip over: files of
// copies in flight are left alone, and files younger than a grace period are too (another
// server sharing the database may be writing them).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestFile, PART_SUFFIX, removeFile } from './data-path.ts';
import { NebError } from './errors.ts';
import { staleLocks } from './locks.ts';
import {
  deleteInstances, forUpdate, instancePath, instancesAfter, instancesOf, instancesOnVolume, markDeleted,
  type InstanceRow,
} from './objects.ts';
import type { Nebulous } from './service.ts';
import type { FsckProblem, FsckReport, HousekeepingReport } from './types.ts';
import type { Volume } from './volumes.ts';

/** Options of {@link fsck}. */
export interface FsckOptions {
  /** Remove what is wrong (bad instances, orphans, stale locks) and re-replicate (default: only report). */
  readonly fix?: boolean;
  /** Read every file and compare its SHA-256 with the recorded one (default: sizes only). */
  readonly checksum?: boolean;
  /** Files younger than this are not orphans yet (default 300 s). */
  readonly graceMs?: number;
  /** Only these volumes (default: all). */
  readonly volumes?: readonly string[];
  readonly signal?: AbortSignal;
}

const HEX2 = /^[0-9a-f]{2}$/;
const INSTANCE_FILE = /^(\d+)\.(.+)$/;
const WALK_CHUNK = 2000;

type Bad = { row: InstanceRow & { ext_id: string }; kind: 'missing' | 'size' | 'checksum'; detail: string };

/**
 * The consistency sweep: every instance's file must exist (with the recorded size, and with
 * `checksum` the recorded SHA-256); every file under a volume's `nebulous/` must belong to an
 * instance; live objects must keep their copies; locks must have live holders. With `fix`,
 * bad instances are removed (never an object's last readable data) and re-replicated, lost
 * objects marked deleted, orphans and leftover temporary files removed, stale locks released.
 */
export async function fsck(neb: Nebulous, options: FsckOptions = {}): Promise<FsckReport> {
  const fix = options.fix ?? false;
  const graceMs = options.graceMs ?? 300_000;
  const problems: FsckProblem[] = [];
  const volumes = await neb.volumes.all();
  const only = options.volumes ? new Set(options.volumes) : undefined;
  for (const name of only ?? []) {
    if (!volumes.some((v) => v.name === name)) throw new NebError('neb_volume_unknown', `no volume is named ${name}`);
  }
  const inScope = (name: string) => only === undefined || only.has(name);

  // Pass 1: instances against their files.
  const bad: Bad[] = [];
  let instancesChecked = 0;
  for (let after = 0; ;) {
    options.signal?.throwIfAborted();
    const rows = await instancesAfter(neb.db, after, WALK_CHUNK);
    if (rows.length === 0) break;
    after = Number(rows[rows.length - 1].ins_id);
    for (const row of rows) {
      if (row.vol_state === 'down' || !inScope(row.vol_name) || neb.inFlight.has(Number(row.ins_id))) continue;
      instancesChecked++;
      const path = instancePath(row);
      const info = await stat(path).catch(() => undefined);
      if (!info) {
        bad.push({ row, kind: 'missing', detail: `file ${path} is missing` });
      } else if (row.size !== null && info.size !== Number(row.size)) {
        bad.push({ row, kind: 'size', detail: `file ${path} has ${info.size} bytes; ${row.size} were recorded` });
      } else if (options.checksum && row.checksum !== null) {
        const digest = await digestFile(path).catch(() => undefined);
        if (digest?.checksum !== row.checksum) {
          bad.push({ row, kind: 'checksum', detail: `file ${path} has SHA-256 ${digest?.checksum ?? '(unreadable)'}; ${row.checksum} was recorded` });
        }
      }
    }
  }
  let replicated = 0;
  for (const [soId, list] of groupBy(bad, (b) => Number(b.row.so_id))) {
    const outcome = await settleBadInstances(neb, soId, list, fix);
    problems.push(...outcome.problems);
    replicated += outcome.replicated;
  }

  // Pass 2: files on the volumes against the instances.
  let filesScanned = 0;
  const volumesScanned: string[] = [];
  const volumesSkipped: string[] = [];
  for (const volume of volumes) {
    if (!inScope(volume.name)) continue;
    if (volume.state === 'down') { volumesSkipped.push(volume.name); continue; }
    volumesScanned.push(volume.name);
    filesScanned += await scanVolume(neb, volume, { fix, graceMs, problems, signal: options.signal });
  }

  // Pass 3: objects without instances or short of copies.
  if (only === undefined) replicated += await checkCopies(neb, fix, problems);

  // Pass 4: locks of holders that stopped sending heartbeats.
  const stale = fix ? await neb.sweepLocks() : await staleLocks(neb.db, neb.lockCutoff());
  for (const s of stale) {
    problems.push({ kind: 'stale-lock', key: s.key, detail: `${s.mode} lock of ${s.holder}, no heartbeat since ${s.heartbeatAt}`, fixed: fix });
  }
  return { instancesChecked, filesScanned, volumesScanned, volumesSkipped, problems, replicated, clean: problems.length === 0 };
}

/** Removes an object's bad instances (keeping its last readable data) and restores its copies. */
async function settleBadInstances(neb: Nebulous, soId: number, list: readonly Bad[], fix: boolean): Promise<{ problems: FsckProblem[]; replicated: number }> {
  const problems: FsckProblem[] = [];
  if (!fix) {
    for (const b of list) problems.push(problem(b, false));
    return { problems, replicated: 0 };
  }
  const outcome = await neb.db.transaction(async (tx) => {
    const object = await tx.get<{ ext_id: string; state: string; copies: number }>(
      `SELECT ext_id, state, copies FROM neb_storage_object WHERE so_id = ?${forUpdate(tx)}`, [soId]);
    const current = await instancesOf(tx, soId);
    const ids = new Set(current.map((i) => Number(i.ins_id)));
    // Instances removed since the walk saw them are not problems any more.
    const still = list.filter((b) => ids.has(Number(b.row.ins_id)));
    const badIds = new Set(still.map((b) => Number(b.row.ins_id)));
    const good = current.filter((i) => !badIds.has(Number(i.ins_id)));
    const missing = still.filter((b) => b.kind === 'missing');
    const damaged = still.filter((b) => b.kind !== 'missing');
    if (object?.state !== 'live' || still.length === 0) return { still, removed: [] as Bad[], lost: false, target: 0, key: '' };
    let removed: Bad[];
    let lost = false;
    if (good.length > 0) {
      removed = still;
    } else if (damaged.length > 0) {
      // No good copy is left: keep the damaged data, drop only records of missing files.
      removed = missing;
    } else {
      removed = still;
      lost = true;
    }
    if (lost) await markDeleted(tx, soId, new Date().toISOString());
    else await deleteInstances(tx, removed.map((b) => Number(b.row.ins_id)));
    return { still, removed, lost, target: Math.max(Number(object.copies), current.length) - (current.length - removed.length), key: object.ext_id };
  });
  const removedIds = new Set(outcome.removed.map((b) => Number(b.row.ins_id)));
  for (const b of outcome.still) {
    const fixed = removedIds.has(Number(b.row.ins_id));
    if (fixed && b.kind !== 'missing') await removeFile(instancePath(b.row));
    problems.push(problem(b, fixed, fixed ? undefined : 'the only data left; kept'));
  }
  if (outcome.lost) {
    problems.push({ kind: 'lost', key: outcome.key, detail: `every instance of ${outcome.key} is missing; the object is marked deleted`, fixed: true });
    return { problems, replicated: 0 };
  }
  let replicated = 0;
  for (let i = 0; i < outcome.target; i++) {
    try {
      await neb.replicate(outcome.key);
      replicated++;
    } catch (error) {
      problems.push({ kind: 'under-replicated', key: outcome.key, detail: `cannot re-replicate: ${(error as Error).message}`, fixed: false });
      break;
    }
  }
  return { problems, replicated };
}

function problem(b: Bad, fixed: boolean, note?: string): FsckProblem {
  return {
    kind: b.kind, key: b.row.ext_id, path: instancePath(b.row), volume: b.row.vol_name,
    detail: note ? `${b.detail} (${note})` : b.detail, fixed,
  };
}

/** Walks `<volume>/nebulous/<h1>/<h2>/` and reports (and with `fix` removes) files no instance names. */
async function scanVolume(neb: Nebulous, volume: Volume, run: { fix: boolean; graceMs: number; problems: FsckProblem[]; signal?: AbortSignal }): Promise<number> {
  const root = join(volume.path, 'nebulous');
  let files = 0;
  const report = async (path: string, kind: 'orphan' | 'temp' | 'foreign', detail: string) => {
    const info = await stat(path).catch(() => undefined);
    if (!info) return; // gone meanwhile (a delete finishing)
    if (Date.now() - info.mtimeMs < run.graceMs) return;
    const fixed = run.fix && kind !== 'foreign' && (await removeFile(path)) === undefined;
    run.problems.push({ kind, path, volume: volume.name, detail, fixed });
  };
  for (const top of await entries(root)) {
    const topPath = join(root, top.name);
    if (!top.isDirectory() || !HEX2.test(top.name)) {
      await report(topPath, 'foreign', `${topPath} is not a Nebulous hash directory; left alone`);
      continue;
    }
    for (const sub of await entries(topPath)) {
      run.signal?.throwIfAborted();
      const dir = join(topPath, sub.name);
      if (!sub.isDirectory() || !HEX2.test(sub.name)) {
        await report(dir, 'foreign', `${dir} is not a Nebulous hash directory; left alone`);
        continue;
      }
      const names = (await entries(dir)).map((e) => e.name);
      files += names.length;
      const ids = new Map<string, number>();
      for (const name of names) {
        const m = INSTANCE_FILE.exec(name.endsWith(PART_SUFFIX) ? name.slice(0, -PART_SUFFIX.length) : name);
        if (m) ids.set(name, Number(m[1]));
      }
      const known = await instancesOnVolume(neb.db, volume.id, [...new Set(ids.values())].filter((id) => Number.isSafeInteger(id)));
      for (const name of names) {
        const path = join(dir, name);
        const id = ids.get(name);
        if (id === undefined) {
          await report(path, 'foreign', `${path} is not named like an instance; left alone`);
          continue;
        }
        if (neb.inFlight.has(id)) continue;
        const rel = `nebulous/${top.name}/${sub.name}/${name}`;
        if (name.endsWith(PART_SUFFIX)) {
          await report(path, 'temp', `${path} is a copy that never finished`);
        } else if (known.get(id) !== rel) {
          await report(path, 'orphan', `${path} belongs to no instance`);
        }
      }
    }
  }
  return files;
}

async function entries(dir: string) {
  return readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new NebError('neb_io', `cannot list ${dir}: ${error.code ?? error.message}`, { cause: error });
  });
}

/** Live objects without instances (lost) or with fewer readable copies on distinct hosts than they need. */
async function checkCopies(neb: Nebulous, fix: boolean, problems: FsckProblem[]): Promise<number> {
  const rows = await shortObjects(neb);
  let replicated = 0;
  for (const r of rows) {
    if (r.instances === 0) {
      if (fix) await neb.db.transaction(async (tx) => markDeleted(tx, r.so_id, new Date().toISOString()));
      problems.push({ kind: 'lost', key: r.ext_id, detail: `${r.ext_id} has no instance${fix ? '; marked deleted' : ''}`, fixed: fix });
      continue;
    }
    let fixed = false;
    let detail = `${r.ext_id} has readable copies on ${r.hosts} host(s); it needs ${r.copies}`;
    if (fix) {
      const done = await addCopies(neb, r.ext_id, r.copies - r.hosts);
      replicated += done.added;
      fixed = done.error === undefined;
      if (done.error) detail += `; ${done.error}`;
    }
    problems.push({ kind: 'under-replicated', key: r.ext_id, detail, fixed });
  }
  return replicated;
}

type ShortObject = { so_id: number; ext_id: string; copies: number; hosts: number; instances: number };

async function shortObjects(neb: Nebulous): Promise<ShortObject[]> {
  const rows = await neb.db.all<ShortObject>(`SELECT o.so_id, o.ext_id, o.copies,
      count(DISTINCT CASE WHEN v.state <> 'down' THEN v.host END) AS hosts, count(i.ins_id) AS instances
    FROM neb_storage_object o LEFT JOIN neb_instance i ON i.so_id = o.so_id LEFT JOIN neb_volume v ON v.vol_id = i.vol_id
    WHERE o.tomb = 0 GROUP BY o.so_id, o.ext_id, o.copies
    HAVING count(i.ins_id) = 0 OR (o.copies > 1 AND count(DISTINCT CASE WHEN v.state <> 'down' THEN v.host END) < o.copies)
    ORDER BY o.ext_id`);
  return rows.map((r) => ({ ...r, so_id: Number(r.so_id), copies: Number(r.copies), hosts: Number(r.hosts), instances: Number(r.instances) }));
}

async function addCopies(neb: Nebulous, key: string, need: number): Promise<{ added: number; error?: string; paths: { to: string; path: string }[] }> {
  const paths: { to: string; path: string }[] = [];
  for (let i = 0; i < need; i++) {
    try {
      const placed = await neb.replicate(key, { distinctHost: true });
      paths.push({ to: placed.volume, path: placed.path });
    } catch (error) {
      return { added: paths.length, error: (error as Error).message, paths };
    }
  }
  return { added: paths.length, paths };
}

/** Adds the copies that objects need on distinct hosts (`ipp neb repair`). */
export async function repair(neb: Nebulous, options: { signal?: AbortSignal } = {}): Promise<HousekeepingReport> {
  const rows = (await shortObjects(neb)).filter((r) => r.instances > 0);
  const done: { key: string; to: string; path: string }[] = [];
  const failed: { key: string; reason: string }[] = [];
  for (const r of rows) {
    options.signal?.throwIfAborted();
    const result = await addCopies(neb, r.ext_id, r.copies - r.hosts);
    for (const p of result.paths) done.push({ key: r.ext_id, ...p });
    if (result.error) failed.push({ key: r.ext_id, reason: result.error });
  }
  return { examined: rows.length, done, failed };
}

/** Options of {@link rebalance}. */
export interface RebalanceOptions {
  /** A volume with less than this fraction free gives instances away (default 0.1). */
  readonly minFree?: number;
  /** At most this many moves (default 1000). */
  readonly maxMoves?: number;
  readonly signal?: AbortSignal;
}

/**
 * Moves instances that no client pinned from volumes short of free space to the emptiest
 * volumes that hold no copy of the object: a copy is made (and checked) before the old
 * instance is culled. Hand-set free space is adjusted by the bytes moved.
 */
export async function rebalance(neb: Nebulous, options: RebalanceOptions = {}): Promise<HousekeepingReport> {
  const minFree = options.minFree ?? 0.1;
  let moves = options.maxMoves ?? 1000;
  const done: { key: string; from: string; to: string; path: string }[] = [];
  const failed: { key: string; reason: string }[] = [];
  let examined = 0;
  const fraction = (v: Volume) => (v.capacity && v.free !== null ? v.free / v.capacity : 1);
  neb.volumes.invalidate();
  const sources = (await neb.volumes.all()).filter((v) => v.state !== 'down' && fraction(v) < minFree);
  for (const source of sources) {
    const candidates = await neb.db.all<{ ext_id: string; ins_id: number; rel_path: string; size: number | null }>(
      `SELECT o.ext_id, i.ins_id, i.rel_path, o.size FROM neb_instance i JOIN neb_storage_object o ON o.so_id = i.so_id
       WHERE i.vol_id = ? AND i.pinned = 0 AND o.tomb = 0 AND o.write_holder IS NULL AND o.read_locks = 0
       ORDER BY o.size DESC, i.ins_id LIMIT ${Math.max(0, moves)}`, [source.id]);
    for (const c of candidates) {
      options.signal?.throwIfAborted();
      neb.volumes.invalidate();
      const all = await neb.volumes.all();
      const now = all.find((v) => v.id === source.id);
      if (!now || fraction(now) >= minFree || moves <= 0) break;
      examined++;
      const from = join(source.path, c.rel_path);
      const size = c.size ?? (await stat(from).then((s) => s.size, () => 0));
      const targets = all.filter((v) => v.id !== source.id && v.state === 'available' && fraction(v) >= minFree
        && (v.free === null || v.free > size));
      if (targets.length === 0) {
        failed.push({ key: c.ext_id, reason: `no volume with more than ${minFree * 100}% free can take it` });
        break;
      }
      const target = [...targets].sort((a, b) => fraction(b) - fraction(a))[0];
      try {
        const placed = await neb.replicate(c.ext_id, { volume: target.name });
        await neb.cull(c.ext_id, { path: from });
        await adjustFree(neb, source, size);
        const to = all.find((v) => v.name === placed.volume);
        if (to) await adjustFree(neb, to, -size);
        done.push({ key: c.ext_id, from: source.name, to: placed.volume, path: placed.path });
        moves--;
      } catch (error) {
        failed.push({ key: c.ext_id, reason: (error as Error).message });
      }
    }
  }
  return { examined, done, failed };
}

async function adjustFree(neb: Nebulous, volume: Volume, bytes: number): Promise<void> {
  await neb.db.run('UPDATE neb_volume SET free = free + ? WHERE vol_id = ? AND measured = 0 AND free IS NOT NULL', [bytes, volume.id]);
  neb.volumes.invalidate();
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const map = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}
