// The Nebulous server: the operations as an HTTP/JSON API (the original spoke SOAP), a write
// token for changes, request logs and counters, and a maintenance tick that sweeps stale locks
// and records measured free space.
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import {
  HttpError, silentLogger, startHttpService, type HttpRequestContext, type HttpRoute, type HttpService, type HttpStats, type Logger,
} from '../common/index.ts';
import { nebStatusOf, NebError } from './errors.ts';
import { fsck, rebalance, repair } from './housekeeping.ts';
import { compileGlob, compileRegex } from './key.ts';
import { Nebulous, type NebulousOptions } from './service.ts';
import type { VolumeState } from './types.ts';

/** Options of {@link startNebulousServer}. */
export interface NebulousServerOptions extends Omit<NebulousOptions, 'log'> {
  /** Listen address (default 127.0.0.1) and port (default 0: any free port). */
  readonly host?: string;
  readonly port?: number;
  /** Bearer tokens: `write` for changes; `read` (if set) for reads too. */
  readonly tokens?: { readonly read?: string; readonly write?: string };
  readonly log?: Logger;
  /** How often stale locks are swept and measured free space recorded (default 30 s; 0: never). */
  readonly maintenanceMs?: number;
}

/** The counters of a running server. */
export interface NebulousStats extends HttpStats {
  readonly operations: Readonly<Record<string, number>>;
  /** CPU time of the server process (user + system), in microseconds. */
  readonly cpuMicros: number;
  /** The user part of cpuMicros (the server's own code; system is mostly the sockets' kernel work). */
  readonly cpuUserMicros: number;
  /** The system part of cpuMicros. */
  readonly cpuSystemMicros: number;
}

/** A running Nebulous server. */
export interface NebulousServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  /** The operations behind the API (for housekeeping in the same process and for tests). */
  readonly neb: Nebulous;
  /** Request counts by status, calls per operation, and the CPU time the process has used. */
  stats(): NebulousStats;
  /** Stops accepting requests, waits for those in flight, stops the maintenance tick. The database stays open. */
  close(): Promise<void>;
}

/** Starts the server on an open database (migrated with NEBULOUS_MIGRATIONS). */
export async function startNebulousServer(options: NebulousServerOptions): Promise<NebulousServer> {
  const log = options.log ?? silentLogger;
  const neb = new Nebulous({ ...options, log });
  const operations: Record<string, number> = {};
  // Housekeeping runs one at a time: two sweeps at once would report each other's work.
  let housekeeping: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = housekeeping.then(fn, fn);
    housekeeping = run.catch(() => undefined);
    return run;
  };

  const route = (method: HttpRoute['method'], path: string, access: HttpRoute['access'], name: string,
    fn: (ctx: HttpRequestContext, body: Body) => Promise<unknown>): HttpRoute => ({
    method, path, access,
    async handler(ctx) {
      operations[name] = (operations[name] ?? 0) + 1;
      const body = method === 'GET' ? new Body(Object.fromEntries(ctx.url.searchParams), name) : new Body(await ctx.json(), name);
      const result = await fn(ctx, body);
      return result === undefined ? undefined : { json: result };
    },
  });

  const routes: HttpRoute[] = [
    // First, since the kit tries routes in order and most calls are finds; the query is read
    // and the answer written without the general steps, which cost more than the look-up.
    {
      method: 'GET', path: '/v1/find', access: 'read',
      async handler(ctx) {
        operations.find = (operations.find ?? 0) + 1;
        const query = ctx.url.searchParams;
        const key = query.get('key');
        if (key === null) throw new HttpError(400, 'neb_request_invalid', 'find: field "key" must be text');
        const paths = await neb.find(key, { host: query.get('host') ?? undefined, volume: query.get('volume') ?? undefined });
        answerJson(ctx.res, { paths });
        return undefined;
      },
    },
    route('GET', '/v1/health', 'open', 'health', async () => ({ ok: true, service: 'nebulous' })),
    route('GET', '/v1/stats', 'read', 'stats', async () => stats()),
    route('GET', '/v1/volumes', 'read', 'volumes', async () => ({ volumes: await neb.listVolumes() })),
    route('POST', '/v1/volumes', 'write', 'volume_add', async (_, b) => ({
      volume: await neb.addVolume({
        host: b.str('host'), volume: b.str('volume'), path: b.str('path'),
        state: b.optStr('state') as VolumeState | undefined, capacity: b.optNum('capacity'), free: b.optNum('free'),
        prepare: b.optBool('prepare'),
      }),
    })),
    route('PUT', '/v1/volumes/:name', 'write', 'volume_set', async (ctx, b) => ({
      volume: await neb.setVolume(ctx.params.name, {
        state: b.optStr('state') as VolumeState | undefined, path: b.optStr('path'),
        capacity: b.optNum('capacity'), free: b.optNum('free'), measure: b.optBool('measure'),
      }),
    })),
    route('POST', '/v1/create', 'write', 'create', async (_, b) =>
      neb.create(b.str('key'), { volume: b.optStr('volume'), copies: b.optNum('copies'), holder: b.optStr('holder') })),
    route('POST', '/v1/replicate', 'write', 'replicate', async (_, b) =>
      neb.replicate(b.str('key'), { volume: b.optStr('volume'), holder: b.optStr('holder') })),
    route('POST', '/v1/cull', 'write', 'cull', async (_, b) =>
      neb.cull(b.str('key'), { volume: b.optStr('volume'), path: b.optStr('path'), force: b.optBool('force'), holder: b.optStr('holder') })),
    route('POST', '/v1/delete', 'write', 'delete', async (_, b) => neb.delete(b.str('key'), { holder: b.optStr('holder') })),
    route('POST', '/v1/find-many', 'read', 'find_many', async (_, b) =>
      ({ results: await neb.findMany(b.strList('keys'), { host: b.optStr('host'), volume: b.optStr('volume') }) })),
    route('GET', '/v1/open', 'read', 'open_read', async (_, b) =>
      neb.open(b.str('key'), 'read', { host: b.optStr('host'), volume: b.optStr('volume') })),
    route('POST', '/v1/open', 'write', 'open_write', async (_, b) =>
      neb.open(b.str('key'), 'write', { host: b.optStr('host'), volume: b.optStr('volume'), holder: b.optStr('holder') })),
    route('GET', '/v1/stat', 'read', 'stat', async (_, b) => neb.stat(b.str('key'))),
    route('GET', '/v1/search', 'read', 'search', async (ctx, b) => search(ctx, b)),
    route('POST', '/v1/lock', 'write', 'lock', async (_, b) => {
      await neb.lock(b.str('key'), b.str('mode') as 'read' | 'write', b.str('holder'));
      return { locked: true };
    }),
    route('POST', '/v1/unlock', 'write', 'unlock', async (_, b) => {
      await neb.unlock(b.str('key'), b.str('mode') as 'read' | 'write', b.str('holder'));
      return { unlocked: true };
    }),
    route('POST', '/v1/heartbeat', 'write', 'heartbeat', async (_, b) => ({ locks: await neb.heartbeat(b.str('holder')) })),
    route('POST', '/v1/copy', 'write', 'copy', async (_, b) =>
      neb.copy(b.str('from'), b.str('to'), { volume: b.optStr('volume'), holder: b.optStr('holder') })),
    route('POST', '/v1/move', 'write', 'move', async (_, b) => neb.move(b.str('from'), b.str('to'), { holder: b.optStr('holder') })),
    route('POST', '/v1/swap', 'write', 'swap', async (_, b) => neb.swap(b.str('a'), b.str('b'), { holder: b.optStr('holder') })),
    route('POST', '/v1/import', 'write', 'import', async (_, b) =>
      neb.import(b.str('path'), b.str('key'), { volume: b.optStr('volume'), copies: b.optNum('copies'), move: b.optBool('move') })),
    route('POST', '/v1/attr', 'write', 'attr', async (_, b) =>
      ({ attributes: await neb.setAttribute(b.str('key'), b.str('name'), b.optStr('value') ?? null) })),
    route('POST', '/v1/copies', 'write', 'copies', async (_, b) => {
      await neb.setCopies(b.str('key'), b.num('copies'));
      return { copies: b.num('copies') };
    }),
    route('POST', '/v1/fsck', 'write', 'fsck', async (ctx, b) => exclusive(() => fsck(neb, {
      fix: b.optBool('fix'), checksum: b.optBool('checksum'), graceMs: b.optNum('graceMs'),
      volumes: b.optStrList('volumes'), signal: ctx.signal,
    }))),
    route('POST', '/v1/repair', 'write', 'repair', async (ctx) => exclusive(() => repair(neb, { signal: ctx.signal }))),
    route('POST', '/v1/rebalance', 'write', 'rebalance', async (ctx, b) => exclusive(() =>
      rebalance(neb, { minFree: b.optNum('minFree'), maxMoves: b.optNum('maxMoves'), signal: ctx.signal }))),
    route('POST', '/v1/sweep-locks', 'write', 'sweep_locks', async (_, b) => ({
      released: await neb.sweepLocks({ timeoutMs: b.optNum('timeoutMs'), before: b.optStr('before') }),
    })),
  ];

  /** Streams matching keys as JSON lines, then a `{"done":true,"count":N}` line the client checks for. */
  async function search(ctx: HttpRequestContext, b: Body): Promise<undefined> {
    const glob = b.optStr('glob');
    const regex = b.optStr('regex');
    if ((glob === undefined) === (regex === undefined)) throw new NebError('neb_request_invalid', 'search needs exactly one of glob= or regex=');
    const pattern = glob !== undefined ? compileGlob(glob) : compileRegex(regex!);
    const limit = b.optNum('limit');
    const batches = neb.search(pattern, { limit: limit === undefined || limit <= 0 ? undefined : limit, signal: ctx.signal });
    // The first batch is read before the answer starts, so that a failing query is still a clean error.
    let next = await batches.next();
    ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8' });
    let count = 0;
    while (!next.done) {
      count += next.value.length;
      if (!ctx.res.write(`${next.value.map((k) => JSON.stringify(k)).join('\n')}\n`)) await once(ctx.res, 'drain', { signal: ctx.signal });
      next = await batches.next();
    }
    ctx.res.end(`${JSON.stringify({ done: true, count })}\n`);
    return undefined;
  }

  const service: HttpService = await startHttpService({
    name: 'nebulous', routes, host: options.host, port: options.port, tokens: options.tokens, log,
    statusOf: nebStatusOf,
  });

  function stats(): NebulousStats {
    const cpu = process.cpuUsage();
    return { ...service.stats(), operations: { ...operations }, cpuMicros: cpu.user + cpu.system, cpuUserMicros: cpu.user, cpuSystemMicros: cpu.system };
  }

  const every = options.maintenanceMs ?? 30_000;
  const timer = every > 0 ? setInterval(() => {
    void exclusive(async () => {
      await neb.sweepLocks();
      await neb.recordMeasuredSpace();
    }).catch((error: unknown) => log.error(`nebulous maintenance: ${(error as Error).message}`));
  }, every) : undefined;
  timer?.unref();

  return {
    url: service.url,
    port: service.port,
    neb,
    stats,
    async close() {
      if (timer) clearInterval(timer);
      await service.close();
      await housekeeping;
      await neb.close();
    },
  };
}

/** Answers 200 with a JSON body, as the kit's `send` does, with fewer steps. */
function answerJson(res: ServerResponse, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(200, ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body))]);
  res.end(body);
}

/** A request's fields (JSON body or query string), read with their types checked. */
class Body {
  readonly #data: Record<string, unknown>;
  readonly #op: string;

  constructor(data: unknown, op: string) {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new HttpError(400, 'neb_request_invalid', `${op}: the request body must be a JSON object`);
    }
    this.#data = data as Record<string, unknown>;
    this.#op = op;
  }

  str(name: string): string {
    const v = this.#data[name];
    if (typeof v !== 'string') throw this.#bad(name, 'text');
    return v;
  }

  optStr(name: string): string | undefined {
    const v = this.#data[name];
    return v === undefined || v === null ? undefined : this.str(name);
  }

  num(name: string): number {
    let v = this.#data[name];
    if (typeof v === 'string' && v.trim() !== '') v = Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.#bad(name, 'a number');
    return v;
  }

  optNum(name: string): number | undefined {
    const v = this.#data[name];
    return v === undefined || v === null || v === '' ? undefined : this.num(name);
  }

  optBool(name: string): boolean | undefined {
    const v = this.#data[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw this.#bad(name, 'true or false');
  }

  optStrList(name: string): string[] | undefined {
    const v = this.#data[name];
    if (v === undefined || v === null) return undefined;
    return this.strList(name);
  }

  strList(name: string): string[] {
    const v = this.#data[name];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw this.#bad(name, 'a list of text');
    return v as string[];
  }

  #bad(name: string, what: string): HttpError {
    return new HttpError(400, 'neb_request_invalid', `${this.#op}: field "${name}" must be ${what}`);
  }
}
