// A JSON transport with kept-alive connections. The service kit's client uses fetch, which
// costs about twice the CPU per call of node:http, and node:http costs several times that of
// raw sockets (wire.ts); at the many small calls a second that Nebulous clients make (find,
// create), the client's CPU decides how many calls a machine can make. JSON calls to http://
// go over wire.ts; streams (search) and https:// over node:http. Errors are the kit's:
// RemoteError with the server's code, `service_unreachable` for no answer.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { IppError, RemoteError } from '../common/index.ts';
import { WirePool, type WireAnswer } from './wire.ts';

/** Options of {@link createJsonTransport}. */
export interface JsonTransportOptions {
  readonly baseUrl: string;
  /** Shown in messages, e.g. `Nebulous server`. */
  readonly name: string;
  readonly token?: string;
  /** Per-call timeout (default 30 s). */
  readonly timeoutMs?: number;
  /** Connections kept open to the server (default 32). */
  readonly maxSockets?: number;
}

/** One call. */
export interface TransportCall {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Path with query string, e.g. `/v1/find?key=a%2Fb`. */
  readonly path: string;
  readonly body?: unknown;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Calls a JSON service. */
export interface JsonTransport {
  readonly baseUrl: string;
  /** Calls and parses the JSON answer; a non-2xx answer raises RemoteError. */
  json<T>(call: TransportCall): Promise<T>;
  /** Calls and returns the answer's stream (2xx only). */
  stream(call: TransportCall): Promise<IncomingMessage>;
  /** Closes the kept-alive connections. */
  close(): void;
}

/** Creates a transport; nothing is sent until the first call. */
export function createJsonTransport(options: JsonTransportOptions): JsonTransport {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http');
  } catch (cause) {
    throw new IppError('url_invalid', `${options.name} URL "${options.baseUrl}" is not an http:// or https:// URL`, { cause });
  }
  const secure = base.protocol === 'https:';
  const module = secure ? https : http;
  const agent = new module.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 32 });
  const baseUrl = base.toString().replace(/\/$/, '');
  const prefix = base.pathname.replace(/\/$/, '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const wire = secure ? undefined : new WirePool({
    host: base.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(base.port || 80), name: options.name, baseUrl,
    headLines: `Host: ${base.host}\r\nAccept: application/json\r\n${options.token ? `Authorization: Bearer ${options.token}\r\n` : ''}`,
    maxSockets: options.maxSockets,
  });

  /**
   * Sends a call; when a kept-alive connection turns out to have been closed by the server
   * just as it was reused (the server saw nothing), sends it once more on a fresh one.
   */
  async function send(call: TransportCall): Promise<IncomingMessage> {
    try {
      return await sendOnce(call);
    } catch (error) {
      if (!(error instanceof StaleSocket)) throw error;
      return sendOnce(call);
    }
  }

  function sendOnce(call: TransportCall): Promise<IncomingMessage> {
    const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    }
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = module.request({
        agent, method: call.method, host: base.hostname, port: base.port || undefined, path: prefix + call.path, headers,
        timeout: call.timeoutMs ?? timeoutMs, signal: call.signal,
      }, resolve);
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (cause: NodeJS.ErrnoException) => {
        if (call.signal?.aborted) reject(cause);
        else if (req.reusedSocket && (cause.code === 'ECONNRESET' || cause.code === 'EPIPE')) reject(new StaleSocket());
        else reject(new IppError('service_unreachable', `cannot reach the ${options.name} at ${baseUrl}: ${cause.code ?? cause.message}; check the URL and that the server runs`, { cause }));
      });
      req.end(body);
    });
  }

  async function read(res: IncomingMessage): Promise<string> {
    res.setEncoding('utf8');
    let text = '';
    for await (const chunk of res) text += chunk as string;
    return text;
  }

  async function failure(res: IncomingMessage, path: string): Promise<RemoteError> {
    return remoteError(res.statusCode ?? 0, res.statusMessage ?? '', await read(res).catch(() => ''), path);
  }

  function remoteError(status: number, reason: string, text: string, path: string): RemoteError {
    try {
      const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      if (typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string') {
        return new RemoteError(status, parsed.error.code, `${options.name}: ${parsed.error.message}`);
      }
    } catch { /* not JSON */ }
    return new RemoteError(status, `http_${status}`, `${options.name} answered ${status} ${reason} to ${path}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }

  function parse<T>(text: string, path: string): T {
    try {
      return (text === '' ? undefined : JSON.parse(text)) as T;
    } catch (cause) {
      throw new IppError('bad_response', `the ${options.name} answered ${path} with something that is not JSON`, { cause });
    }
  }

  async function wireJson<T>(pool: WirePool, call: TransportCall): Promise<T> {
    const answer: WireAnswer = await pool.call({
      method: call.method, path: prefix + call.path, body: call.body === undefined ? undefined : JSON.stringify(call.body),
      timeoutMs: call.timeoutMs ?? timeoutMs, signal: call.signal,
    });
    const text = answer.body.toString('utf8');
    if (answer.status >= 300) throw remoteError(answer.status, answer.reason, text, call.path);
    return parse<T>(text, call.path);
  }

  return {
    baseUrl,
    async json<T>(call: TransportCall): Promise<T> {
      if (wire) return wireJson<T>(wire, call);
      const res = await send(call);
      if ((res.statusCode ?? 0) >= 300) throw await failure(res, call.path);
      return parse<T>(await read(res), call.path);
    },
    async stream(call: TransportCall): Promise<IncomingMessage> {
      const res = await send(call);
      if ((res.statusCode ?? 0) >= 300) throw await failure(res, call.path);
      return res;
    },
    close() {
      agent.destroy();
      wire?.close();
    },
  };
}

/** A kept-alive connection the server had closed: the call never reached it. */
class StaleSocket extends Error {}
