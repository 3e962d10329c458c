// A thin HTTP/JSON service kit on node:http, shared by the datastore, Nebulous and the ODM
// status service: routes with path parameters, bearer tokens for reads and writes, one place
// that maps errors to statuses, request logs and counters.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { IppError, isIppError } from './errors.ts';
import { silentLogger, type Logger } from './log.ts';

/** An error a handler throws to answer with a given HTTP status (4xx for the caller's mistakes). */
export class HttpError extends IppError {
  readonly status: number;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/** HTTP methods a route may answer. HEAD is served by the GET route of the same path. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Who may call a route: anyone, holders of the read (or write) token, holders of the write token. */
export type HttpAccess = 'open' | 'read' | 'write';

/** What a handler gets. */
export interface HttpRequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Path parameters, decoded (`/products/:product` → `{ product }`). */
  readonly params: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** Aborted when the client goes away before the response is finished. */
  readonly signal: AbortSignal;
  /** Reads the request body as JSON (at most `limitBytes`, default 1 MiB); 400/413 otherwise. */
  json<T = unknown>(limitBytes?: number): Promise<T>;
}

/** A handler's answer; a handler that streams writes to `res` itself and returns nothing. */
export interface HttpReply {
  readonly status?: number;
  readonly json?: unknown;
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One route of a service. */
export interface HttpRoute {
  readonly method: HttpMethod;
  /** `/a/:name/b`: segments starting with `:` are parameters. */
  readonly path: string;
  readonly access: HttpAccess;
  handler(ctx: HttpRequestContext): Promise<HttpReply | undefined>;
}

/** Options of {@link startHttpService}. */
export interface HttpServiceOptions {
  /** Shown in logs and errors, e.g. `datastore`. */
  readonly name: string;
  readonly routes: readonly HttpRoute[];
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Bearer tokens. Without `write`, write routes are open; without `read`, read routes are. */
  readonly tokens?: { readonly read?: string; readonly write?: string };
  readonly log?: Logger;
  /** The status for an error code a room raises (e.g. `fileset_exists` → 409); default 400. */
  statusOf?(code: string): number | undefined;
}

/** Counts of a running service. */
export interface HttpStats {
  readonly requests: number;
  readonly inFlight: number;
  readonly byStatus: Readonly<Record<string, number>>;
}

/** A running service. */
export interface HttpService {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  stats(): HttpStats;
  /** Stops accepting, waits for requests in flight, closes idle connections. */
  close(): Promise<void>;
}

interface CompiledRoute {
  readonly route: HttpRoute;
  readonly segments: readonly string[];
}

/** Starts a service on loopback (by default) and resolves once it listens. */
export async function startHttpService(options: HttpServiceOptions): Promise<HttpService> {
  const log = options.log ?? silentLogger;
  const compiled: CompiledRoute[] = options.routes.map((route) => ({ route, segments: split(route.path) }));
  const byStatus: Record<string, number> = {};
  let requests = 0;
  let inFlight = 0;

  const server = createServer((req, res) => {
    requests++;
    inFlight++;
    const started = performance.now();
    res.on('close', () => {
      inFlight--;
      const status = res.writableFinished ? res.statusCode : 499;
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      log.info(`${req.method} ${req.url} ${status} ${(performance.now() - started).toFixed(1)}ms`);
    });
    void serve(req, res);
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    res.on('close', () => { if (!res.writableFinished) controller.abort(); });
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const segments = splitRaw(url.pathname);
      let allowed: string[] = [];
      for (const { route, segments: pattern } of compiled) {
        const params = match(pattern, segments);
        if (params === undefined) continue;
        if (route.method !== method) {
          allowed.push(route.method);
          continue;
        }
        allowed = [];
        authorize(route.access, req.headers.authorization, options.tokens);
        const reply = await route.handler({
          req, res, url, params, log, signal: controller.signal,
          json: (limit) => readJson(req, limit ?? 1 << 20),
        });
        if (reply !== undefined) send(res, reply);
        return;
      }
      if (allowed.length > 0) {
        throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}; use ${[...new Set(allowed)].join(' or ')}`);
      }
      throw new HttpError(404, 'not_found', `no such endpoint: ${url.pathname}`);
    } catch (error) {
      fail(res, error);
    }
  }

  function fail(res: ServerResponse, error: unknown): void {
    let status: number;
    let code: string;
    let message: string;
    if (error instanceof HttpError) {
      ({ status, code, message } = error);
    } else if (isIppError(error)) {
      status = options.statusOf?.(error.code) ?? 400;
      ({ code, message } = error);
    } else {
      status = 500;
      code = 'internal';
      message = `internal error in ${options.name}; see the server log`;
      log.error(`${options.name}: ${error instanceof Error ? error.stack : String(error)}`);
    }
    if (res.headersSent) {
      res.destroy(error instanceof Error ? error : undefined);
      return;
    }
    send(res, { status, json: { error: { code, message } } });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) => reject(new IppError('listen_failed',
      `${options.name}: cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${cause.message}; choose another --port`, { cause })));
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stats: () => ({ requests, inFlight, byStatus: { ...byStatus } }),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    }),
  };
}

/** Sends a reply: JSON (the default), text, or an empty body. */
export function send(res: ServerResponse, reply: HttpReply): void {
  const headers: Record<string, string> = { ...reply.headers };
  let body: string | undefined;
  if (reply.json !== undefined) {
    body = `${JSON.stringify(reply.json)}\n`;
    headers['content-type'] ??= 'application/json; charset=utf-8';
  } else if (reply.text !== undefined) {
    body = reply.text;
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  }
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(reply.status ?? 200, headers);
  res.end(body);
}

function authorize(access: HttpAccess, header: string | undefined, tokens: HttpServiceOptions['tokens']): void {
  if (access === 'open') return;
  const wanted = access === 'write' ? [tokens?.write] : [tokens?.read, tokens?.write];
  if (access === 'read' && tokens?.read === undefined) return;
  if (access === 'write' && tokens?.write === undefined) return;
  const given = /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim();
  if (given === undefined) {
    throw new HttpError(401, 'unauthorized', `this ${access === 'write' ? 'change' : 'read'} needs a token: pass --token or set the service's token environment variable`);
  }
  if (!wanted.some((t) => t !== undefined && sameSecret(t, given))) {
    throw new HttpError(403, 'forbidden', `the token given may not ${access === 'write' ? 'change' : 'read'} this service`);
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readJson<T>(req: IncomingMessage, limit: number): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'body_too_large', `request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch (cause) {
    throw new HttpError(400, 'bad_json', `request body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** Splits a raw path and decodes each segment on its own, so an encoded `/` stays inside its segment. */
function splitRaw(pathname: string): string[] {
  return split(pathname).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch (cause) {
      throw new HttpError(400, 'bad_path', `path segment "${s}" is not valid percent-encoding`, { cause });
    }
  });
}

function match(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = segments[i]!;
    else if (p !== segments[i]) return undefined;
  }
  return params;
}
