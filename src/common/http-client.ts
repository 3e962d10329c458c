// The client side of the service kit: JSON calls with a bearer token, errors raised again
// with the server's code, and streamed requests for uploads and downloads. JSON calls to an
// http:// service go over raw kept-alive sockets (http-wire.ts); streams, https:// and calls
// with their own headers go through fetch.
import { IppError } from './errors.ts';
import { WirePool, type WireAnswer, type WireRequest } from './http-wire.ts';

/** An error answered by a service: its HTTP status, and the code and message the server sent. */
export class RemoteError extends IppError {
  readonly status: number;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/** Options of {@link createHttpClient}. */
export interface HttpClientOptions {
  /** The service's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** Shown in messages, e.g. `datastore`. */
  readonly name: string;
  readonly token?: string;
  /** Per-request timeout for JSON calls (default 30 s). */
  readonly timeoutMs?: number;
  /** Connections kept open for JSON calls to an http:// service (default 32). */
  readonly maxSockets?: number;
}

/** A request of {@link HttpClient.request}. */
export interface HttpClientRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A JSON body, or a raw body (bytes or a stream). */
  readonly json?: unknown;
  readonly body?: Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  readonly signal?: AbortSignal;
  /** This call's timeout, instead of the client's (JSON calls; for a streamed request, until its answer's head). */
  readonly timeoutMs?: number;
  /**
   * The exact length of `body`. With it, an upload to an http:// service goes over the raw
   * sockets with a Content-Length (several times less CPU than fetch's chunked stream); its
   * answer is read whole, so use it where answers are small.
   */
  readonly bodyLength?: number;
}

/** A client of one service. */
export interface HttpClient {
  readonly baseUrl: string;
  /** Calls and returns the JSON answer; a non-2xx answer raises {@link RemoteError}. */
  json<T = unknown>(path: string, request?: HttpClientRequest): Promise<T>;
  /** Calls and returns the raw response (2xx only; others raise). */
  request(path: string, request?: HttpClientRequest): Promise<Response>;
  /** Closes the kept-alive connections (idle ones never keep the process alive). */
  close(): void;
}

/** `segments` joined as a URL path, each percent-encoded on its own. */
export function urlPath(...segments: readonly (string | number)[]): string {
  return `/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`;
}

/** Creates a client; nothing is sent until the first call. */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http');
  } catch (cause) {
    throw new IppError('url_invalid', `${options.name} URL "${options.baseUrl}" is not an http:// or https:// URL`, { cause });
  }
  const baseUrl = base.toString().replace(/\/$/, '');
  const prefix = base.pathname.replace(/\/$/, '');
  const defaultTimeout = options.timeoutMs ?? 30_000;
  const wire = base.protocol === 'http:' ? new WirePool({
    host: base.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(base.port || 80), name: options.name, baseUrl,
    headLines: `Host: ${base.host}\r\nAccept: application/json\r\n${options.token ? `Authorization: Bearer ${options.token}\r\n` : ''}`,
    maxSockets: options.maxSockets,
  }) : undefined;

  /** A call over the raw sockets; a non-2xx answer raises RemoteError. */
  async function viaWire(pool: WirePool, path: string, call: Omit<WireRequest, 'path'>): Promise<WireAnswer> {
    const answer = await pool.call({ ...call, path: prefix + path });
    if (answer.status >= 300) throw remoteError(answer.status, answer.reason, answer.body.toString('utf8'), options.name, path);
    return answer;
  }

  async function request(path: string, req: HttpClientRequest = {}, timeoutMs?: number): Promise<Response> {
    const upload = req.body;
    if (wire !== undefined && req.bodyLength !== undefined && upload !== undefined && !(upload instanceof ReadableStream)
      && Object.keys(req.headers ?? {}).every((h) => h.toLowerCase() === 'content-type')) {
      const type = Object.entries(req.headers ?? {}).find(([h]) => h.toLowerCase() === 'content-type')?.[1];
      const answer = await viaWire(wire, path, {
        method: req.method ?? 'POST', timeoutMs: req.timeoutMs ?? timeoutMs ?? Infinity, signal: req.signal,
        stream: { length: req.bodyLength, chunks: upload instanceof Uint8Array ? [upload] : upload, contentType: type ?? 'application/octet-stream' },
      });
      return new Response(answer.body.length === 0 ? null : answer.body, { status: answer.status, statusText: answer.reason });
    }
    const headers: Record<string, string> = { ...req.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: RequestInit['body'] | undefined;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    } else if (req.body !== undefined) {
      body = req.body as RequestInit['body'];
    }
    const timeout = req.timeoutMs ?? timeoutMs;
    const signals = [req.signal, timeout ? AbortSignal.timeout(timeout) : undefined].filter((s) => s !== undefined);
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${path}`, {
        method: req.method ?? (body === undefined ? 'GET' : 'POST'),
        headers, body,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
        ...(body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string' ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (cause) {
      if (req.signal?.aborted) throw cause;
      const reason = (cause as { cause?: { code?: string; message?: string } }).cause;
      throw new IppError('service_unreachable',
        `cannot reach the ${options.name} at ${baseUrl}: ${reason?.code ?? reason?.message ?? (cause as Error).message}; check the URL and that the server runs`,
        { cause });
    }
    if (!response.ok) throw remoteError(response.status, response.statusText, await response.text().catch(() => ''), options.name, path);
    return response;
  }

  function parse<T>(text: string, path: string): T {
    try {
      return (text === '' ? undefined : JSON.parse(text)) as T;
    } catch (cause) {
      throw new IppError('bad_response', `the ${options.name} answered ${path} with something that is not JSON`, { cause });
    }
  }

  return {
    baseUrl,
    request: (path, req) => request(path, req),
    async json<T>(path: string, req: HttpClientRequest = {}): Promise<T> {
      if (wire === undefined || req.body !== undefined || req.headers !== undefined) {
        return parse<T>(await (await request(path, req, defaultTimeout)).text(), path);
      }
      const answer = await viaWire(wire, path, {
        method: req.method ?? (req.json === undefined ? 'GET' : 'POST'),
        body: req.json === undefined ? undefined : JSON.stringify(req.json),
        timeoutMs: req.timeoutMs ?? defaultTimeout, signal: req.signal,
      });
      return parse<T>(answer.body.toString('utf8'), path);
    },
    close() {
      wire?.close();
    },
  };
}

/** The error a non-2xx answer stands for: the server's own code and message when it sent them. */
function remoteError(status: number, reason: string, text: string, name: string, path: string): RemoteError {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string') {
      return new RemoteError(status, parsed.error.code, `${name}: ${parsed.error.message}`);
    }
  } catch { /* not JSON: fall through */ }
  return new RemoteError(status, `http_${status}`, `${name} answered ${status} ${reason} to ${path}${text ? `: ${text.slice(0, 200)}` : ''}`);
}
