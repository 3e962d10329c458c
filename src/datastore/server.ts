// The datastore server: products → filesets → files over HTTP. Filesets are published in one
// streamed request and become visible in one database transaction after all their files are
// in place; readers see whole filesets or none. The original's plain-text index is served
// under /ds/ for pollers; a JSON API under /products serves the client library.
import { createHash, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  HttpError, isIppError, silentLogger, startHttpService,
  type HttpReply, type HttpRequestContext, type HttpRoute, type HttpService, type Logger,
} from '../common/index.ts';
import { applyMigrations, type Database } from '../db/index.ts';
import {
  countFilesets, filesetFiles, findFile, findFileset, getProduct, insertProduct, listFilesets, listProducts,
  registerFileset, removeFilesets, storeCounts, type FilesetRecord, type ProductRecord,
} from './catalog.ts';
import { DatastoreError, datastoreStatus } from './errors.ts';
import { formatFilesetIndex, formatProductIndex, formatRootIndex } from './index-text.ts';
import { DATASTORE_MIGRATIONS } from './migrations.ts';
import { checkDescription, checkName, checkType } from './names.ts';
import { StoreRoot } from './storage.ts';
import type { FilesetDetail, FilesetInfo, FilesetManifest, FilesetPage, ProductInfo, SweepReport } from './types.ts';
import {
  BodyReader, DEFAULT_UPLOAD_LIMITS, isDiskFull, parseManifest, receiveFiles, type UploadLimits,
} from './upload.ts';

/** Options of {@link startDatastoreServer}. */
export interface DatastoreServerOptions {
  /** The root directory of the store (created if needed). */
  readonly root: string;
  /** The store's database (the server applies its migrations); the caller closes it. */
  readonly db: Database;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /**
   * The bearer token that writes (publish, remove, product add) need. Without one, writes are
   * allowed only when the server listens on loopback, and refused (403) otherwise.
   */
  readonly token?: string;
  readonly log?: Logger;
  readonly limits?: Partial<UploadLimits>;
  /** Free bytes the root's file system keeps: uploads that would eat into them get 507 (default 64 MiB). */
  readonly reserveBytes?: number;
  /** Flush each received file to disk before it is committed (default true). */
  readonly fsync?: boolean;
  /** Clock for registration times (tests). */
  readonly now?: () => Date;
}

/** A running datastore server. */
export interface DatastoreServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  /** Absolute path of the root. */
  readonly root: string;
  readonly writable: boolean;
  /** What the start-up sweep removed. */
  readonly sweep: SweepReport;
  /** Stops accepting, cuts off uploads in progress (nothing of them is kept), waits for the rest, releases the root. */
  close(): Promise<void>;
}

/** Bytes of an unwanted publish body of unknown size read before the server closes the connection instead. */
const DRAIN_LIMIT = 64 * 2 ** 20;

/** Filesets per page of the JSON listing. */
export const MAX_PAGE = 10_000;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Starts a datastore server: opens and sweeps the root, then listens. */
export async function startDatastoreServer(options: DatastoreServerOptions): Promise<DatastoreServer> {
  const log = options.log ?? silentLogger;
  const { db } = options;
  const limits: UploadLimits = { ...DEFAULT_UPLOAD_LIMITS, ...options.limits };
  const reserve = options.reserveBytes ?? 64 * 2 ** 20;
  const fsync = options.fsync ?? true;
  const clock = options.now ?? (() => new Date());
  const now = () => clock().toISOString();
  const host = options.host ?? '127.0.0.1';
  const writable = options.token !== undefined || LOOPBACK.test(host);
  const started = Date.now();

  await applyMigrations(db, [DATASTORE_MIGRATIONS]);
  const root = await StoreRoot.open(options.root, db, log);
  const uploads = new Map<IncomingMessage, Promise<unknown>>();
  let receiving = 0;
  const productLocks = new KeyedLock();
  let service: HttpService;
  let sweep: SweepReport;

  const requireWritable = (): void => {
    if (!writable) {
      throw new DatastoreError('writes_disabled',
        `this datastore server has no write token and listens on ${host}, so it refuses changes; restart it with --token (or IPP_DATASTORE_TOKEN)`);
    }
  };

  /** The product a read names, if the caller may read it (its read token, or the server's token). */
  const readableProduct = async (ctx: HttpRequestContext): Promise<ProductRecord> => {
    const product = await getProduct(db, checkName('product', ctx.params.product));
    checkReadToken(product, ctx.req, options.token);
    return product;
  };

  const productInfo = (p: ProductRecord, filesets: number): ProductInfo => ({
    name: p.name, type: p.type, description: p.description, protected: p.readTokenSha256 !== null,
    created: p.created, lastFileset: p.lastFileset, lastUpdate: p.lastUpdate, filesets,
  });

  /** Products the caller may see: protected ones only with their token (or the server's). */
  const visibleProducts = async (req: IncomingMessage) =>
    (await listProducts(db)).filter((p) => mayRead(p, req, options.token));

  const filesetPage = async (ctx: HttpRequestContext, product: ProductRecord, afterName: string | undefined, paged: boolean): Promise<FilesetPage> => {
    const q = ctx.url.searchParams;
    let afterId = intParam(q, 'after_id', 0);
    const after = afterName ?? q.get('after') ?? undefined;
    if (after !== undefined && after !== '') {
      const named = await findFileset(db, product.id, checkName('fileset', after));
      if (named === undefined) {
        throw new DatastoreError('fileset_not_found',
          `fileset "${after}" (the one to list after) is not in product "${product.name}"; it may have been removed: poll by id (after_id) instead`);
      }
      afterId = Math.max(afterId ?? 0, named.id);
    }
    const limit = paged ? intParam(q, 'limit', 1) ?? MAX_PAGE : undefined;
    if (limit !== undefined && limit > MAX_PAGE) throw new DatastoreError('query_invalid', `limit is at most ${MAX_PAGE}`);
    const rows = await listFilesets(db, product.id, {
      afterId, since: timeParam(q.get('since')), includeHidden: flag(q.get('hidden')),
      limit: limit === undefined ? undefined : limit + 1,
    });
    const more = limit !== undefined && rows.length > limit;
    return { product: product.name, filesets: (more ? rows.slice(0, limit) : rows).map(publicFileset), more };
  };

  const filesetDetail = async (ctx: HttpRequestContext): Promise<FilesetDetail> => {
    const product = await readableProduct(ctx);
    const name = checkName('fileset', ctx.params.fileset);
    const fileset = await findFileset(db, product.id, name);
    if (fileset === undefined) throw filesetNotFound(product.name, name);
    if (fileset.hidden && !flag(ctx.url.searchParams.get('hidden'))) {
      throw new DatastoreError('fileset_hidden', `fileset "${name}" of product "${product.name}" has been hidden (removed with --hide)`);
    }
    return { product: product.name, ...publicFileset(fileset), files: await filesetFiles(db, fileset.id) };
  };

  /** The checks a publish passes before a byte is stored (also answered alone, for a publisher's preflight). */
  async function precheck(ctx: HttpRequestContext, manifestLine: string): Promise<{ product: ProductRecord; name: string; manifest: FilesetManifest; replace: boolean }> {
    requireWritable();
    const product = await getProduct(db, checkName('product', ctx.params.product));
    const name = checkName('fileset', ctx.params.fileset);
    const replace = flag(ctx.url.searchParams.get('replace'));
    const manifest = parseManifest(manifestLine, limits);
    if (!replace && await findFileset(db, product.id, name) !== undefined) throw filesetExists(product.name, name);
    const total = manifest.files.reduce((s, f) => s + f.bytes, 0);
    const free = await root.freeBytes();
    if (total + reserve > free) {
      throw new DatastoreError('insufficient_storage',
        `the fileset is ${total} bytes but the datastore has ${Math.max(0, free - reserve)} bytes free (keeping ${reserve} in reserve); nothing was registered`);
    }
    return { product, name, manifest, replace };
  }

  async function publish(ctx: HttpRequestContext): Promise<HttpReply> {
    const reader = new BodyReader(ctx.req as AsyncIterable<Buffer>);
    let staging: string | undefined;
    let bodyDone = false;
    let remaining: number | undefined;
    try {
      const { product, name, manifest, replace } = await precheck(ctx, await reader.readLine(limits.maxManifestBytes));
      remaining = manifest.files.reduce((s, f) => s + f.bytes, 0);
      staging = await root.stagingDir();
      receiving++;
      try {
        await receiveFiles(reader, manifest.files, staging, fsync);
      } finally {
        receiving--;
      }
      bodyDone = true;
      const staged = staging;
      const { fileset, replacedDir } = await productLocks.run(product.name, async () => {
        const dir = await root.place(staged, product.name, name);
        staging = undefined;
        try {
          return await db.transaction((tx) => registerFileset(tx, {
            productId: product.id, name, type: manifest.type ?? product.type, dir, files: manifest.files, replace,
          }, now));
        } catch (error) {
          await root.remove(root.abs(dir), log);
          throw error;
        }
      });
      if (replacedDir !== null) await root.remove(root.abs(replacedDir), log);
      log.info(`published ${product.name}/${name}: ${fileset.fileCount} files, ${fileset.bytes} bytes${replacedDir !== null ? ' (replaced)' : ''}`);
      return {
        status: replacedDir !== null ? 200 : 201,
        json: { product: product.name, ...publicFileset(fileset), files: manifest.files, replaced: replacedDir !== null },
      };
    } catch (error) {
      if (staging !== undefined) await root.remove(staging, log);
      const answer = uploadError(error, ctx.signal);
      if (!bodyDone && !ctx.signal.aborted && (answer as { code?: string }).code !== 'upload_aborted') {
        // A publisher sends its whole body before it reads the answer, so read (and drop) what
        // is left of a body of known size; past DRAIN_LIMIT of unknown size, close instead.
        const ended = await reader.drain(remaining !== undefined ? remaining + limits.maxManifestBytes : DRAIN_LIMIT).catch(() => false);
        if (!ended) ctx.res.setHeader('connection', 'close');
      }
      throw answer;
    }
  }

  async function remove(ctx: HttpRequestContext): Promise<HttpReply> {
    requireWritable();
    const product = await getProduct(db, checkName('product', ctx.params.product));
    const from = checkName('fileset', ctx.params.fileset);
    const toParam = ctx.url.searchParams.get('to');
    const to = toParam === null || toParam === '' ? undefined : checkName('fileset', toParam);
    if (to !== undefined && to < from) {
      throw new DatastoreError('range_invalid', `the range ${from} .. ${to} is empty: the last name sorts before the first`);
    }
    const hide = flag(ctx.url.searchParams.get('hide'));
    const removed = await productLocks.run(product.name, () => db.transaction((tx) => removeFilesets(tx, product.id, from, to, hide)));
    if (removed.length === 0 && to === undefined) {
      const existing = await findFileset(db, product.id, from);
      if (existing === undefined) throw filesetNotFound(product.name, from);
    }
    if (!hide) for (const f of removed) await root.remove(root.abs(f.dir), log);
    log.info(`${hide ? 'hid' : 'removed'} ${removed.length} filesets of ${product.name} (${from}${to !== undefined ? ` .. ${to}` : ''})`);
    return { json: { product: product.name, removed: removed.map((f) => f.name), hidden: hide } };
  }

  async function download(ctx: HttpRequestContext): Promise<HttpReply | undefined> {
    const product = await readableProduct(ctx);
    const fileset = checkName('fileset', ctx.params.fileset);
    const name = checkName('file', ctx.params.file);
    const file = await findFile(db, product.id, fileset, name);
    if (file === undefined) {
      if (await findFileset(db, product.id, fileset) === undefined) throw filesetNotFound(product.name, fileset);
      throw new DatastoreError('file_not_found', `fileset "${fileset}" of product "${product.name}" has no file "${name}"`);
    }
    if (file.hidden) throw new DatastoreError('fileset_hidden', `fileset "${fileset}" of product "${product.name}" has been hidden`);
    const path = root.abs(`${file.dir}/${file.name}`);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (cause) {
      log.error(`registered file ${path} cannot be opened: ${(cause as Error).message}`);
      throw new DatastoreError('file_missing_on_disk', `file "${name}" of ${product.name}/${fileset} is registered but missing on the server's disk; tell the datastore's operator`, { cause });
    }
    try {
      const size = (await handle.stat()).size;
      if (size !== file.bytes) {
        log.error(`registered file ${path} is ${size} bytes on disk, not ${file.bytes}`);
        throw new DatastoreError('file_missing_on_disk', `file "${name}" of ${product.name}/${fileset} is damaged on the server's disk; tell the datastore's operator`);
      }
      const etag = `"${file.md5}"`;
      const ifRange = ctx.req.headers['if-range'];
      const range = ifRange === undefined || ifRange === etag ? parseRange(ctx.req.headers.range, size) : undefined;
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'accept-ranges': 'bytes',
        etag,
        'x-md5': file.md5,
      };
      let start = 0;
      let end = size - 1;
      let status = 200;
      if (range === 'unsatisfiable') {
        ctx.res.setHeader('content-range', `bytes */${size}`);
        throw new DatastoreError('range_not_satisfiable', `the range ${ctx.req.headers.range} is outside file "${name}" (${size} bytes)`);
      }
      if (range !== undefined) {
        ({ start, end } = range);
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${size}`;
      }
      headers['content-length'] = String(Math.max(0, end - start + 1));
      ctx.res.writeHead(status, headers);
      if (ctx.req.method === 'HEAD' || end < start) {
        ctx.res.end();
        return undefined;
      }
      const stream = handle.createReadStream({ start, end, highWaterMark: 1 << 20, autoClose: false });
      try {
        await pipeline(stream, ctx.res);
      } catch (error) {
        // The client went away mid-download: nothing to answer.
        if (!ctx.signal.aborted) throw error;
      }
      return undefined;
    } finally {
      await handle.close();
    }
  }

  const routes: HttpRoute[] = [
    {
      method: 'GET', path: '/health', access: 'open',
      handler: async () => {
        const stats = service.stats();
        return {
          json: {
            status: 'ok', ...await storeCounts(db), uploadsInProgress: receiving, freeBytes: await root.freeBytes(),
            uptimeSeconds: Math.round((Date.now() - started) / 1000), requests: stats.requests, byStatus: stats.byStatus,
            sweep, writable,
          },
        };
      },
    },
    {
      method: 'GET', path: '/products', access: 'open',
      handler: async (ctx) => ({ json: { products: (await visibleProducts(ctx.req)).map((p) => productInfo(p, p.filesets)) } }),
    },
    {
      method: 'POST', path: '/products', access: 'write',
      handler: async (ctx) => {
        requireWritable();
        const body = await ctx.json<{ name?: unknown; type?: unknown; description?: unknown; readToken?: unknown }>();
        const name = checkName('product', body?.name);
        const type = checkType('product type', body?.type);
        const description = checkDescription(body?.description);
        let hash: string | null = null;
        if (body.readToken !== undefined && body.readToken !== null) {
          if (typeof body.readToken !== 'string' || !/^[\x21-\x7e]{8,256}$/.test(body.readToken)) {
            throw new DatastoreError('token_invalid', 'a read token is 8 to 256 printable characters without spaces');
          }
          hash = sha256(body.readToken);
        }
        await db.transaction((tx) => insertProduct(tx, { name, type, description, readTokenSha256: hash }, now()));
        await root.productDir(name);
        log.info(`added product ${name} (${type})${hash ? ', read token set' : ''}`);
        return { status: 201, json: productInfo(await getProduct(db, name), 0) };
      },
    },
    {
      method: 'GET', path: '/products/:product', access: 'open',
      handler: async (ctx) => {
        const product = await readableProduct(ctx);
        return { json: productInfo(product, await countFilesets(db, product.id)) };
      },
    },
    {
      method: 'GET', path: '/products/:product/filesets', access: 'open',
      handler: async (ctx) => ({ json: await filesetPage(ctx, await readableProduct(ctx), undefined, true) }),
    },
    {
      method: 'GET', path: '/products/:product/filesets/:fileset', access: 'open',
      handler: async (ctx) => ({ json: await filesetDetail(ctx) }),
    },
    {
      method: 'POST', path: '/products/:product/filesets/:fileset/check', access: 'write',
      handler: async (ctx) => {
        const body = await ctx.json(limits.maxManifestBytes);
        await precheck(ctx, JSON.stringify(body));
        return { json: { ok: true } };
      },
    },
    {
      method: 'PUT', path: '/products/:product/filesets/:fileset', access: 'write',
      handler: (ctx) => track(uploads, ctx.req, publish(ctx)),
    },
    { method: 'DELETE', path: '/products/:product/filesets/:fileset', access: 'write', handler: remove },
    { method: 'GET', path: '/products/:product/filesets/:fileset/files/:file', access: 'open', handler: download },
    // The original's plain-text index and file URLs, for pollers written against it.
    {
      method: 'GET', path: '/ds/index.txt', access: 'open',
      handler: async (ctx) => ({ text: formatRootIndex((await visibleProducts(ctx.req)).map((p) => productInfo(p, p.filesets))) }),
    },
    {
      method: 'GET', path: '/ds/:product/index.txt', access: 'open',
      handler: async (ctx) => {
        const product = await readableProduct(ctx);
        // The original takes the query string itself as the fileset to list after (index.txt?NAME).
        const raw = ctx.url.search.slice(1);
        const after = raw !== '' && !raw.includes('=') ? decodeQuery(raw) : undefined;
        return { text: formatProductIndex((await filesetPage(ctx, product, after, false)).filesets) };
      },
    },
    {
      method: 'GET', path: '/ds/:product/:fileset/index.txt', access: 'open',
      handler: async (ctx) => ({ text: formatFilesetIndex((await filesetDetail(ctx)).files) }),
    },
    { method: 'GET', path: '/ds/:product/:fileset/:file', access: 'open', handler: download },
  ];

  try {
    sweep = await root.sweep(db, log);
    if (sweep.stagingRemoved + sweep.orphansRemoved + sweep.missing > 0) {
      log.warn(`start-up sweep: removed ${sweep.stagingRemoved} unfinished uploads and ${sweep.orphansRemoved} unregistered fileset directories; ${sweep.missing} registered filesets are missing`);
    }
    service = await startHttpService({
      name: 'datastore', routes, host, port: options.port ?? 0, log,
      tokens: options.token !== undefined ? { write: options.token } : undefined,
      statusOf: datastoreStatus,
    });
  } catch (error) {
    await root.close();
    throw error;
  }
  let closed = false;
  if (!writable) log.warn(`no write token and not on loopback (${host}): this server refuses changes`);
  return {
    url: service.url,
    port: service.port,
    root: root.path,
    writable,
    sweep,
    async close() {
      if (closed) return;
      closed = true;
      for (const req of uploads.keys()) req.destroy();
      await Promise.allSettled(uploads.values());
      await service.close();
      await root.close();
    },
  };
}

function publicFileset(f: FilesetRecord): FilesetInfo {
  return { id: f.id, name: f.name, type: f.type, registered: f.registered, hidden: f.hidden, fileCount: f.fileCount, bytes: f.bytes };
}

function filesetNotFound(product: string, name: string): DatastoreError {
  return new DatastoreError('fileset_not_found', `product "${product}" has no fileset "${name}"`);
}

function filesetExists(product: string, name: string): DatastoreError {
  return new DatastoreError('fileset_exists', `fileset "${name}" already exists in product "${product}"; remove it first or publish with --replace`);
}

/** The error a failed upload answers with: disk full → 507, the client gone → upload_aborted. */
function uploadError(error: unknown, signal: AbortSignal): unknown {
  if (isDiskFull(error)) {
    return new DatastoreError('insufficient_storage', 'the datastore\'s disk is full; nothing was registered (free space on the server and publish again)', { cause: error });
  }
  if (isIppError(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (signal.aborted || code === 'ECONNRESET' || (error as Error | undefined)?.message === 'aborted') {
    return new DatastoreError('upload_aborted', 'the publisher went away mid-upload; nothing was registered', { cause: error });
  }
  return error;
}

function track<T>(uploads: Map<IncomingMessage, Promise<unknown>>, req: IncomingMessage, work: Promise<T>): Promise<T> {
  uploads.set(req, work.catch(() => undefined));
  return work.finally(() => uploads.delete(req));
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function bearer(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function mayRead(product: ProductRecord, req: IncomingMessage, serverToken: string | undefined): boolean {
  if (product.readTokenSha256 === null) return true;
  const given = bearer(req);
  if (given === undefined) return false;
  return sameText(sha256(given), product.readTokenSha256) || (serverToken !== undefined && sameText(given, serverToken));
}

function checkReadToken(product: ProductRecord, req: IncomingMessage, serverToken: string | undefined): void {
  if (mayRead(product, req, serverToken)) return;
  if (bearer(req) === undefined) {
    throw new HttpError(401, 'unauthorized', `product "${product.name}" needs its read token: pass --token or set IPP_DATASTORE_TOKEN`);
  }
  throw new HttpError(403, 'forbidden', `the token given may not read product "${product.name}"`);
}

function flag(value: string | null): boolean {
  return value !== null && value !== '0' && value !== 'false' && value !== 'no';
}

function intParam(q: URLSearchParams, name: string, min: number): number | undefined {
  const raw = q.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
    throw new DatastoreError('query_invalid', `${name}=${JSON.stringify(raw)} must be a whole number >= ${min}`);
  }
  return n;
}

/** An ISO-8601 time as stored (UTC, milliseconds); a date alone or a time without zone counts as UTC. */
export function timeParam(raw: string | null): string | undefined {
  if (raw === null || raw === '') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/.exec(raw.trim());
  const ms = m === null ? NaN : Date.parse(`${m[1]}T${m[2] ?? '00:00:00'}${m[3] ?? 'Z'}`);
  if (Number.isNaN(ms)) {
    throw new DatastoreError('time_invalid', `since=${JSON.stringify(raw)} is not an ISO-8601 time such as 2026-05-01T12:00:00Z`);
  }
  return new Date(ms).toISOString();
}

function decodeQuery(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch (cause) {
    throw new DatastoreError('query_invalid', `the query "${raw}" is not valid percent-encoding`, { cause });
  }
}

type RangeResult = { start: number; end: number } | 'unsatisfiable' | undefined;

/** One `bytes=` range of a file of `size` bytes; undefined (serve it whole) for anything else. */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** Runs tasks one at a time per key (the commit of filesets of one product). */
class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

