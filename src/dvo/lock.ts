// Region locks, after DVO's soft (read) and exclusive (write) catalogue locks, as files in
// `<db>/locks/`:
//   <key>.xlock                      the one exclusive holder (created with O_EXCL)
//   <key>.<pid>.<random>.slock       one per soft holder
// Each file holds JSON {pid, host, time, token}. A writer creates its .xlock, then waits until
// no soft lock is left; a reader creates its .slock, then backs off (removes it and waits) while
// an .xlock exists. So writers never starve and a reader never reads while a writer writes.
// A lock whose holder is a process of this host that no longer runs is broken with a warning
// (under a short-lived `<key>.break` file so that two processes never break the same lock
// twice); a lock held from another host is waited for, and after the timeout the error says
// which file to remove once that process is known to be gone.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../common/index.ts';
import { DvoError } from './errors.ts';

/** Read (soft) or write (exclusive). */
export type LockMode = 'soft' | 'exclusive';

/** Options of {@link acquireLocks}. */
export interface LockOptions {
  /** Give up after this many milliseconds (default 120,000). */
  readonly timeoutMs?: number;
  /** Where warnings about broken locks go. */
  readonly log?: Pick<Logger, 'warn'>;
  readonly signal?: AbortSignal;
}

/** The lock options of an operation's options (`lockTimeoutMs`, `log`, `signal`). */
export function lockOptions(options: { readonly lockTimeoutMs?: number; readonly log?: Pick<Logger, 'warn'>; readonly signal?: AbortSignal }): LockOptions {
  return {
    ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/** Locks held; `release` removes them (safe to call twice). */
export interface HeldLocks {
  readonly keys: readonly string[];
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  time: string;
  token: string;
}

const HOST = hostname();
// A .break file older than this belongs to a process that died while breaking a lock.
const BREAK_STALE_MS = 10_000;

/** The lock directory of a database. */
export function lockDir(db: string): string {
  return join(db, 'locks');
}

function fileKey(key: string): string {
  return key.replace(/[^A-Za-z0-9_-]/g, '_');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** True unless the holder is a process of this host that is gone. */
export function holderAlive(h: Pick<Holder, 'pid' | 'host'>): boolean {
  if (h.host !== HOST) return true;
  // pid -1 stands for a holder that died before writing itself into the file (and kill(-1)
  // would ask about every process there is).
  if (!(h.pid > 0)) return false;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    const h = JSON.parse(text) as Holder;
    return typeof h.pid === 'number' ? h : { pid: -1, host: HOST, time: '', token: '' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // A holder that died between creating and writing the file leaves it empty: treat as dead
    // once it is old enough that a live writer would have finished.
    const s = await stat(path).catch(() => undefined);
    if (!s) return undefined;
    return Date.now() - s.mtimeMs > BREAK_STALE_MS ? { pid: -1, host: HOST, time: '', token: '' } : { pid: process.pid, host: HOST, time: '', token: 'young' };
  }
}

async function createExclusive(path: string, holder: Holder): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DvoError('dvo_lock_failed', `cannot create lock file ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await handle.writeFile(JSON.stringify(holder));
  } catch (error) {
    // A lock file without its holder (a full disk) would look held until it is old: remove it.
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw new DvoError('dvo_lock_failed', `cannot write lock file ${path}: ${(error as Error).message}`, { cause: error });
  }
  await handle.close();
  return true;
}

/** Removes a lock file whose holder is dead, once, with a warning. */
async function breakLock(dir: string, key: string, path: string, dead: Holder, log?: Pick<Logger, 'warn'>): Promise<void> {
  const breaker = join(dir, `${key}.break`);
  const me: Holder = { pid: process.pid, host: HOST, time: new Date().toISOString(), token: randomUUID() };
  if (!await createExclusive(breaker, me)) {
    const s = await stat(breaker).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > BREAK_STALE_MS) await unlink(breaker).catch(() => {});
    return;
  }
  try {
    const now = await readHolder(path);
    if (now && now.token === dead.token && now.pid === dead.pid) {
      await unlink(path).catch(() => {});
      log?.warn(`broke lock ${path}: its holder, process ${dead.pid} on ${dead.host} (since ${dead.time || 'unknown'}), is no longer running`);
    }
  } finally {
    await unlink(breaker).catch(() => {});
  }
}

async function softLocks(dir: string, key: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`${key}.`) && n.endsWith('.slock')).map((n) => join(dir, n));
}

function lockedError(path: string, holder: Holder | undefined, timeoutMs: number): DvoError {
  const waited = `waited ${Math.round(timeoutMs / 1000)} s`;
  // A lock file still being written names no holder yet (readHolder's 'young').
  if (!holder || holder.token === 'young') return new DvoError('dvo_locked', `${path} is being taken by another process; ${waited}. Run again, or give a longer --lock-timeout`);
  const who = `process ${holder.pid} on ${holder.host}${holder.time ? ` since ${holder.time}` : ''}`;
  // A holder on this host is known to be running (a dead one's lock is broken); one elsewhere may be gone.
  const what = holder.host === HOST
    ? 'It is running: wait for it to finish, or give a longer --lock-timeout'
    : 'If that process is gone (a host that crashed), remove the lock file and run again';
  return new DvoError('dvo_locked', `${path} is held by ${who}; ${waited}. ${what}`);
}

async function acquireOne(dir: string, key: string, mode: LockMode, options: LockOptions, deadline: number): Promise<() => Promise<void>> {
  const k = fileKey(key);
  const xpath = join(dir, `${k}.xlock`);
  const holder: Holder = { pid: process.pid, host: HOST, time: new Date().toISOString(), token: randomUUID() };
  let wait = 5;
  const pause = async (): Promise<void> => {
    await sleep(wait, options.signal);
    wait = Math.min(100, wait * 2);
  };
  if (mode === 'exclusive') {
    for (;;) {
      if (await createExclusive(xpath, holder)) break;
      const h = await readHolder(xpath);
      if (h && !holderAlive(h)) { await breakLock(dir, k, xpath, h, options.log); continue; }
      if (Date.now() > deadline) throw lockedError(xpath, h, options.timeoutMs ?? 120_000);
      await pause();
    }
    const release = async (): Promise<void> => {
      const h = await readHolder(xpath);
      if (h?.token === holder.token) await unlink(xpath).catch(() => {});
    };
    try {
      // Wait for the readers that came first.
      for (;;) {
        let live: { path: string; holder: Holder } | undefined;
        for (const p of await softLocks(dir, k)) {
          const h = await readHolder(p);
          if (!h) continue;
          if (holderAlive(h)) { live ??= { path: p, holder: h }; continue; }
          await unlink(p).catch(() => {});
          options.log?.warn(`removed read lock ${p}: its holder, process ${h.pid} on ${h.host}, is no longer running`);
        }
        if (!live) break;
        if (Date.now() > deadline) throw lockedError(live.path, live.holder, options.timeoutMs ?? 120_000);
        await pause();
      }
    } catch (error) {
      await release();
      throw error;
    }
    return release;
  }
  const spath = join(dir, `${k}.${process.pid}.${holder.token.slice(0, 8)}.slock`);
  for (;;) {
    await createExclusive(spath, holder);
    const h = await readHolder(xpath);
    if (!h) break;
    await unlink(spath).catch(() => {});
    if (!holderAlive(h)) { await breakLock(dir, k, xpath, h, options.log); continue; }
    if (Date.now() > deadline) throw lockedError(xpath, h, options.timeoutMs ?? 120_000);
    await pause();
  }
  return () => unlink(spath).catch(() => {});
}

/**
 * Takes locks on several keys (region names, `Images`, ...), in sorted order so that two
 * processes never wait on each other; on failure releases what it took.
 */
export async function acquireLocks(db: string, keys: readonly string[], mode: LockMode, options: LockOptions = {}): Promise<HeldLocks> {
  const dir = lockDir(db);
  await mkdir(dir, { recursive: true });
  const sorted = [...new Set(keys)].sort();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const releases: (() => Promise<void>)[] = [];
  const release = async (): Promise<void> => {
    while (releases.length) await releases.pop()!();
  };
  try {
    for (const key of sorted) releases.push(await acquireOne(dir, key, mode, options, deadline));
  } catch (error) {
    await release();
    throw error;
  }
  return { keys: sorted, release };
}

/** Runs `fn` holding locks on `keys`; releases them on every path. */
export async function withLocks<T>(db: string, keys: readonly string[], mode: LockMode, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const held = await acquireLocks(db, keys, mode, options);
  try {
    return await fn();
  } finally {
    await held.release();
  }
}
