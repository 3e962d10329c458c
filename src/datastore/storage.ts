// The datastore's root directory: committed files as ROOT/PRODUCT/FILESET/FILE (a person can
// read it with ls), uploads in ROOT/.staging on the same file system (so committing a fileset
// is one rename), an id that ties the root to its database, and a lock that keeps a second
// server off the same root.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { lstat, mkdir, readdir, readFile, rename, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Database } from '../db/index.ts';
import type { Logger } from '../common/index.ts';
import { filesetDirs, getStoreId, listProducts, setStoreId } from './catalog.ts';
import { DatastoreError } from './errors.ts';
import type { SweepReport } from './types.ts';

const ID_FILE = '.datastore-id';
const LOCK_FILE = '.lock';
const STAGING = '.staging';

/** A fresh random id (staging directories, store ids, replacement generations). */
export function newId(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}

/** The root directory of one datastore, opened by the one server that uses it. */
export class StoreRoot {
  /** Absolute path of the root. */
  readonly path: string;
  readonly #lockPath: string;

  private constructor(path: string) {
    this.path = path;
    this.#lockPath = join(path, LOCK_FILE);
  }

  /**
   * Opens (creating if needed) a root for the database given: takes the root's lock and checks
   * that the root and the database belong together, so the start-up sweep can never delete
   * the files of another datastore.
   */
  static async open(rootPath: string, db: Database, log: Logger): Promise<StoreRoot> {
    const path = resolve(rootPath);
    try {
      await mkdir(join(path, STAGING), { recursive: true });
    } catch (cause) {
      throw new DatastoreError('root_unusable', `cannot create the datastore root ${path}: ${(cause as Error).message}`, { cause });
    }
    const root = new StoreRoot(path);
    await root.#lock();
    try {
      await root.#checkIdentity(db, log);
    } catch (error) {
      await root.close();
      throw error;
    }
    return root;
  }

  async #lock(): Promise<void> {
    const mine = `${process.pid} ${hostname()}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(this.#lockPath, mine, { flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new DatastoreError('root_unusable', `cannot lock the datastore root ${this.path}: ${(error as Error).message}`, { cause: error });
        }
      }
      const [pid, host] = (await readFile(this.#lockPath, 'utf8').catch(() => '')).trim().split(' ');
      if (host !== undefined && host !== hostname()) {
        throw new DatastoreError('root_locked',
          `the datastore root ${this.path} is locked by process ${pid} on ${host}; if that server is gone, delete ${this.#lockPath}`);
      }
      if (isAlive(Number(pid))) {
        throw new DatastoreError('root_locked',
          `the datastore root ${this.path} is in use by process ${pid}; one server per root (stop it, or give another --root)`);
      }
      // A lock left by a server that died (kill -9): take it over.
      await unlink(this.#lockPath).catch(() => undefined);
    }
    throw new DatastoreError('root_locked', `cannot take the lock ${this.#lockPath}; another server may be starting`);
  }

  async #checkIdentity(db: Database, log: Logger): Promise<void> {
    const onDisk = (await readFile(join(this.path, ID_FILE), 'utf8').catch(() => '')).trim() || undefined;
    const inDb = await getStoreId(db);
    if (onDisk !== undefined && inDb !== undefined) {
      if (onDisk !== inDb) {
        throw new DatastoreError('store_mismatch',
          `the root ${this.path} belongs to datastore ${onDisk} but the database ${db.url} to datastore ${inDb}; start the server with the database this root was used with`);
      }
      return;
    }
    if (onDisk !== undefined) {
      throw new DatastoreError('store_mismatch',
        `the root ${this.path} belongs to datastore ${onDisk} but the database ${db.url} has never been used with it; give the database this root was used with (--db)`);
    }
    const contents = (await readdir(this.path)).filter((e) => !e.startsWith('.'));
    if (contents.length > 0) {
      throw new DatastoreError('store_mismatch',
        `the root ${this.path} is not empty (${contents.slice(0, 3).join(', ')}...) and is not a datastore root; give an empty or new directory`);
    }
    const id = inDb ?? newId(16);
    if (inDb === undefined) await setStoreId(db, id, new Date().toISOString());
    const tmp = join(this.path, `${ID_FILE}.${newId()}`);
    await writeFile(tmp, `${id}\n`);
    await rename(tmp, join(this.path, ID_FILE));
    log.info(`new datastore ${id} at ${this.path}`);
  }

  /** The absolute path of a path relative to the root (directories the database recorded). */
  abs(rel: string): string {
    return join(this.path, rel);
  }

  /** Creates a fresh staging directory for one upload; returns its absolute path. */
  async stagingDir(): Promise<string> {
    const dir = join(this.path, STAGING, `${Date.now().toString(36)}-${newId()}`);
    await mkdir(dir);
    return dir;
  }

  /**
   * Moves a staged fileset to its place: PRODUCT/FILESET, or PRODUCT/FILESET@GEN while an older
   * generation of the same fileset still occupies that name (a replacement). Returns the
   * directory relative to the root. Callers serialise this per product.
   */
  async place(staging: string, product: string, fileset: string): Promise<string> {
    await mkdir(join(this.path, product), { recursive: true });
    let rel = `${product}/${fileset}`;
    if (await exists(this.abs(rel))) rel = `${product}/${fileset}@${newId(4)}`;
    await rename(staging, this.abs(rel));
    return rel;
  }

  /** Creates a product's directory (products appear on disk when they are added). */
  async productDir(product: string): Promise<void> {
    await mkdir(join(this.path, product), { recursive: true });
  }

  /** Deletes a directory and everything in it; logged, never thrown (the next sweep retries). */
  async remove(absPath: string, log: Logger): Promise<void> {
    try {
      await rm(absPath, { recursive: true, force: true });
    } catch (error) {
      log.warn(`could not delete ${absPath}: ${(error as Error).message}; the next start-up sweep will`);
    }
  }

  /** Bytes free for this server on the root's file system. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.path);
    return Number(s.bavail) * Number(s.bsize);
  }

  /**
   * The start-up sweep: deletes staging directories (uploads cut off by a crash) and fileset
   * directories that no registered fileset owns (renamed into place but never committed, or
   * replaced or removed just before a crash). Only directories of products the database knows
   * are touched; anything else in the root is reported and left alone.
   */
  async sweep(db: Database, log: Logger): Promise<SweepReport> {
    let stagingRemoved = 0;
    for (const entry of await readdir(join(this.path, STAGING))) {
      await this.remove(join(this.path, STAGING, entry), log);
      stagingRemoved++;
    }
    let orphansRemoved = 0;
    let missing = 0;
    const products = await listProducts(db);
    const known = new Set(products.map((p) => p.name));
    for (const product of products) {
      const owned = new Set((await filesetDirs(db, product.id)).map((d) => d.slice(d.indexOf('/') + 1)));
      let entries: string[];
      try {
        entries = await readdir(join(this.path, product.name));
      } catch {
        entries = [];
      }
      const present = new Set(entries);
      for (const entry of entries) {
        if (owned.has(entry)) continue;
        log.warn(`sweep: removing ${product.name}/${entry}, which no registered fileset owns`);
        await this.remove(join(this.path, product.name, entry), log);
        orphansRemoved++;
      }
      for (const dir of owned) {
        if (!present.has(dir)) {
          log.error(`sweep: fileset directory ${product.name}/${dir} is missing; its files cannot be served`);
          missing++;
        }
      }
    }
    for (const entry of await readdir(this.path)) {
      if (!entry.startsWith('.') && !known.has(entry)) log.warn(`sweep: ${entry} in the root is not a product of this datastore; left alone`);
    }
    return { stagingRemoved, orphansRemoved, missing };
  }

  /** Releases the root's lock. */
  async close(): Promise<void> {
    const content = await readFile(this.#lockPath, 'utf8').catch(() => '');
    if (content.startsWith(`${process.pid} `)) await unlink(this.#lockPath).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

