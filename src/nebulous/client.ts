// The Nebulous client library: one method per server operation. Errors come back as
// RemoteError with the server's code (neb_not_found, neb_locked, ...). A client that holds
// locks sends heartbeats so that the server's sweep keeps them.
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { createHttpClient, IppError, urlPath, type HttpClient } from '../common/index.ts';
import type { FsckOptions, RebalanceOptions } from './housekeeping.ts';
import type { SweptLock } from './locks.ts';
import type { NebulousStats } from './server.ts';
import type { FoundPaths } from './service.ts';
import type {
  FsckReport, HousekeepingReport, ObjectStat, PlacedInstance, VolumeInfo, VolumeState,
} from './types.ts';
import type { VolumeChange, VolumeSpec } from './volumes.ts';

/** Options of {@link NebulousClient}. */
export interface NebulousClientOptions {
  /** The server, e.g. `http://host:8300`. */
  readonly url: string;
  readonly token?: string;
  /** Who this client's locks belong to (default `host:pid`). */
  readonly holder?: string;
  /** Per-call timeout for metadata calls (default 30 s); housekeeping calls wait up to an hour. */
  readonly timeoutMs?: number;
  /** Interval of heartbeats while locks are held (default 60 s). */
  readonly heartbeatMs?: number;
}

const LONG_MS = 3_600_000;

/** A client of one Nebulous server. */
export class NebulousClient {
  /** The holder name sent with locks and changes. */
  readonly holder: string;
  readonly #http: HttpClient;
  readonly #heartbeatMs: number;
  #locks = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: NebulousClientOptions) {
    this.#http = createHttpClient({ baseUrl: options.url, name: 'Nebulous server', token: options.token, timeoutMs: options.timeoutMs });
    this.holder = options.holder ?? `${hostname()}:${process.pid}`;
    this.#heartbeatMs = options.heartbeatMs ?? 60_000;
  }

  /** The server's base URL. */
  get url(): string {
    return this.#http.baseUrl;
  }

  #get<T>(path: string, query: Record<string, string | number | boolean | undefined>): Promise<T> {
    return this.#http.json<T>(`${path}?${encodeQuery(query)}`);
  }

  #post<T>(path: string, body: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    return this.#http.json<T>(path, { method: 'POST', json: body, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }

  // ---- volumes

  /** Every volume with its state, space and instance count. */
  async volumes(): Promise<VolumeInfo[]> {
    return (await this.#get<{ volumes: VolumeInfo[] }>('/v1/volumes', {})).volumes;
  }

  /** Registers volume `HOST.VOLUME` at `path` (a directory the server can reach). */
  async addVolume(spec: VolumeSpec): Promise<VolumeInfo> {
    return (await this.#post<{ volume: VolumeInfo }>('/v1/volumes', { ...spec })).volume;
  }

  /** Changes a volume: state, path, capacity, free, or measure them again. */
  async setVolume(name: string, change: VolumeChange): Promise<VolumeInfo> {
    return (await this.#http.json<{ volume: VolumeInfo }>(urlPath('v1', 'volumes', name), { method: 'PUT', json: { ...change } })).volume;
  }

  // ---- objects

  /** Creates an object and its first instance (an empty file); returns the path to write. */
  create(key: string, options: { volume?: string; copies?: number } = {}): Promise<PlacedInstance> {
    return this.#post('/v1/create', { key, ...options, holder: this.holder });
  }

  /** Adds an instance on another volume (copied and checked by the server). */
  replicate(key: string, options: { volume?: string } = {}): Promise<PlacedInstance> {
    return this.#post('/v1/replicate', { key, ...options, holder: this.holder }, LONG_MS);
  }

  /** Removes one instance (by path, volume, or the newest); never the last unless `force`. */
  cull(key: string, options: { volume?: string; path?: string; force?: boolean } = {}): Promise<{ removed: string; deleted: boolean }> {
    return this.#post('/v1/cull', { key, ...options, holder: this.holder });
  }

  /** Deletes an object and every instance's file. */
  delete(key: string): Promise<{ key: string; removed: string[] }> {
    return this.#post('/v1/delete', { key, holder: this.holder });
  }

  /** The readable instances' paths, best first (`host`/`volume` preferred; `~VOL` required). */
  async find(key: string, options: { host?: string; volume?: string } = {}): Promise<string[]> {
    return (await this.#get<{ paths: string[] }>('/v1/find', { key, ...options })).paths;
  }

  /** {@link find} for many keys in one call (at most 10,000): each key's paths, or its error. */
  async findMany(keys: readonly string[], options: { host?: string; volume?: string } = {}): Promise<FoundPaths[]> {
    return (await this.#post<{ results: FoundPaths[] }>('/v1/find-many', { keys, ...options })).results;
  }

  /** Opens for read (the best instance's path) or write (other instances culled, checksum cleared). */
  open(key: string, mode: 'read' | 'write', options: { host?: string; volume?: string } = {}): Promise<{ key: string; path: string; culled: string[] }> {
    return mode === 'read'
      ? this.#get('/v1/open', { key, ...options })
      : this.#post('/v1/open', { key, ...options, holder: this.holder });
  }

  /** Size, checksum, copies, locks, attributes and instances of an object. */
  stat(key: string): Promise<ObjectStat> {
    return this.#get('/v1/stat', { key });
  }

  /** Creates `to` from a copy of an instance of `from`. */
  copy(from: string, to: string, options: { volume?: string } = {}): Promise<PlacedInstance> {
    return this.#post('/v1/copy', { from, to, ...options, holder: this.holder }, LONG_MS);
  }

  /** Renames an object. */
  move(from: string, to: string): Promise<{ from: string; to: string }> {
    return this.#post('/v1/move', { from, to, holder: this.holder });
  }

  /** Exchanges two objects' keys. */
  swap(a: string, b: string): Promise<{ a: string; b: string }> {
    return this.#post('/v1/swap', { a, b, holder: this.holder });
  }

  /** Adopts a file the server can read (absolute path) as a new object. */
  import(path: string, key: string, options: { volume?: string; copies?: number; move?: boolean } = {}): Promise<PlacedInstance> {
    return this.#post('/v1/import', { path, key, ...options }, LONG_MS);
  }

  /** Sets a user attribute (null removes it); returns all of them. */
  async setAttribute(key: string, name: string, value: string | null): Promise<Record<string, string>> {
    return (await this.#post<{ attributes: Record<string, string> }>('/v1/attr', { key, name, value })).attributes;
  }

  /** Sets how many copies on distinct hosts the object keeps. */
  async setCopies(key: string, copies: number): Promise<void> {
    await this.#post('/v1/copies', { key, copies });
  }

  // ---- locks

  /**
   * Takes a read or write lock. When it is held by someone else, tries again for up to
   * `waitMs` (default 0: fail at once with `neb_locked`), pausing between attempts.
   */
  async lock(key: string, mode: 'read' | 'write', options: { waitMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (let pause = 50; ; pause = Math.min(pause * 2, 1000)) {
      try {
        await this.#post('/v1/lock', { key, mode, holder: this.holder });
        this.#held(1);
        return;
      } catch (error) {
        if ((error as IppError).code !== 'neb_locked' || Date.now() + pause > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  /** Releases a lock this client holds. */
  async unlock(key: string, mode: 'read' | 'write'): Promise<void> {
    await this.#post('/v1/unlock', { key, mode, holder: this.holder });
    this.#held(-1);
  }

  /** Tells the server this client is alive (done automatically while locks are held). */
  async heartbeat(): Promise<number> {
    return (await this.#post<{ locks: number }>('/v1/heartbeat', { holder: this.holder })).locks;
  }

  #held(delta: number): void {
    this.#locks = Math.max(0, this.#locks + delta);
    if (this.#locks > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => { this.heartbeat().catch(() => undefined); }, this.#heartbeatMs);
      this.#timer.unref();
    } else if (this.#locks === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  // ---- search

  /** Live keys matching a glob (`*` within a path segment, `**` across, `?`, `[...]`), in key order. */
  glob(pattern: string, options: { limit?: number; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    return this.#search({ glob: pattern, limit: options.limit }, options.signal);
  }

  /** Live keys matching a JavaScript regular expression, in key order. */
  regex(pattern: string, options: { limit?: number; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    return this.#search({ regex: pattern, limit: options.limit }, options.signal);
  }

  async *#search(query: Record<string, string | number | undefined>, signal?: AbortSignal): AsyncGenerator<string> {
    const response = await this.#http.request(`/v1/search?${encodeQuery(query)}`, { timeoutMs: LONG_MS, ...(signal ? { signal } : {}) });
    const res = Readable.fromWeb(response.body! as ReadableStream<Uint8Array>);
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    let done: { count: number } | undefined;
    let count = 0;
    try {
      for await (const line of lines) {
        if (line === '') continue;
        const value = JSON.parse(line) as unknown;
        if (typeof value === 'string') {
          count++;
          yield value;
        } else {
          done = value as { count: number };
        }
      }
    } finally {
      lines.close();
      res.destroy();
    }
    if (done === undefined || done.count !== count) {
      throw new IppError('neb_search_truncated', `the Nebulous server's answer to a search ended early after ${count} keys; try again`);
    }
  }

  // ---- housekeeping

  /** The consistency sweep (report; `fix` to repair). */
  fsck(options: Omit<FsckOptions, 'signal'> = {}): Promise<FsckReport> {
    return this.#post('/v1/fsck', { ...options }, LONG_MS);
  }

  /** Adds missing copies. */
  repair(): Promise<HousekeepingReport> {
    return this.#post('/v1/repair', {}, LONG_MS);
  }

  /** Moves unpinned instances off volumes short of space. */
  rebalance(options: Omit<RebalanceOptions, 'signal'> = {}): Promise<HousekeepingReport> {
    return this.#post('/v1/rebalance', { ...options }, LONG_MS);
  }

  /** Releases locks of silent holders: silent for `timeoutMs` (default the server's timeout) or since the ISO time `before`. */
  async sweepLocks(options: { timeoutMs?: number; before?: string } = {}): Promise<SweptLock[]> {
    return (await this.#post<{ released: SweptLock[] }>('/v1/sweep-locks', { ...options })).released;
  }

  /** Whether the server answers (no token needed). */
  health(): Promise<{ ok: boolean; service: string }> {
    return this.#get('/v1/health', {});
  }

  /** Request counts of the server and its CPU time. */
  stats(): Promise<NebulousStats> {
    return this.#get('/v1/stats', {});
  }

  /** Stops heartbeats and closes connections. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#http.close();
  }
}

function encodeQuery(query: Record<string, string | number | boolean | undefined>): string {
  return Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}

/** The volume states a client may set. */
export type { VolumeState };
