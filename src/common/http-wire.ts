// HTTP/1.1 calls on raw kept-alive sockets: the transport of the kit's JSON calls to http://
// services. Clients such as Nebulous's make them by the thousand a second (find, create), and
// the client's CPU then decides how many calls a machine can make: fetch costs about twice
// node:http's CPU per call and node:http ~100 µs, as much as a server's whole answer; this
// writes a pre-formatted request head and reads only the status line, the framing headers
// and the body. One call in flight per socket, several sockets. Answers framed by
// Content-Length, chunked, or ended by closing the connection are all read;
// `Connection: close` answers close the socket after them. Idle sockets do not keep the
// process alive.
import { connect, type Socket } from 'node:net';
import { IppError } from './errors.ts';

/** A finished answer: status, reason phrase and body bytes. */
export interface WireAnswer {
  readonly status: number;
  readonly reason: string;
  readonly body: Buffer;
}

/** Options of {@link WirePool}. */
export interface WirePoolOptions {
  readonly host: string;
  readonly port: number;
  /** Shown in messages, e.g. `Nebulous server`. */
  readonly name: string;
  /** Shown in messages: the base URL. */
  readonly baseUrl: string;
  /** Header lines sent with every request, each ending in CRLF (Host, Accept, Authorization). */
  readonly headLines: string;
  /** Sockets kept open (default 32). */
  readonly maxSockets?: number;
  /**
   * A kept-alive socket idle this long is closed rather than reused (default 4 s): node's
   * server drops idle connections after 5 s, and a request sent just as it does is lost.
   */
  readonly idleMs?: number;
}

/** One request. */
export interface WireRequest {
  readonly method: string;
  /** Path and query, already percent-encoded. */
  readonly path: string;
  /** JSON text of the body, if any. */
  readonly body?: string;
  /**
   * A streamed body instead (an upload): its exact length, sent as Content-Length, and its
   * bytes; `contentType` names them. Sent on a fresh socket, never twice.
   */
  readonly stream?: { readonly length: number; readonly chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>; readonly contentType: string };
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const SWEEP_MS = 100;

/** Sockets to one server and the calls waiting for one. */
export class WirePool {
  readonly #options: WirePoolOptions;
  readonly #max: number;
  readonly #idleMs: number;
  readonly #idle: Connection[] = [];
  readonly #busy = new Set<Connection>();
  readonly #waiting: ((conn: Connection | undefined) => void)[] = [];
  #open = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: WirePoolOptions) {
    this.#options = options;
    this.#max = options.maxSockets ?? 32;
    this.#idleMs = options.idleMs ?? 4000;
  }

  /**
   * Sends a request and reads its answer. When a kept-alive socket turns out to have been
   * closed by the server before any of the answer came (the request was never read), the
   * request is sent once more on a fresh socket.
   */
  async call(request: WireRequest): Promise<WireAnswer> {
    if (/[^\x21-\x7e]/.test(request.path)) {
      throw new IppError('url_invalid', `${this.#options.name}: request path ${JSON.stringify(request.path)} has characters that must be percent-encoded`);
    }
    const { body, stream } = request;
    const content = stream !== undefined ? `Content-Type: ${stream.contentType}\r\nContent-Length: ${stream.length}\r\n`
      : body !== undefined ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '';
    const head = `${request.method} ${request.path} HTTP/1.1\r\n${this.#options.headLines}${content}\r\n`;
    const deadline = Date.now() + request.timeoutMs;
    if (stream !== undefined) return this.#send(head, request, deadline, true);
    const text = body === undefined ? head : head + body;
    try {
      return await this.#send(text, request, deadline);
    } catch (error) {
      if (!(error instanceof StaleSocket)) throw error;
      return this.#send(text, request, deadline, true);
    }
  }

  /** Closes every socket; calls in flight fail. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#idle, ...this.#busy]) c.socket.destroy();
    this.#idle.length = 0;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const w of this.#waiting.splice(0)) w(undefined);
  }

  async #send(text: string, request: WireRequest, deadline: number, fresh = false): Promise<WireAnswer> {
    if (request.signal?.aborted) throw request.signal.reason;
    const conn = await this.#acquire(fresh);
    return new Promise<WireAnswer>((resolve, reject) => {
      const signal = request.signal;
      const onAbort = signal ? () => conn.fail(signal.reason as Error) : undefined;
      if (onAbort) signal!.addEventListener('abort', onAbort, { once: true });
      let finished = false;
      let bodySent = request.stream === undefined;
      conn.start(deadline, (error, answer) => {
        finished = true;
        if (onAbort) signal!.removeEventListener('abort', onAbort);
        this.#busy.delete(conn);
        // An answer that came before the whole body went out leaves the socket out of step.
        if (!bodySent) conn.reusable = false;
        if (error instanceof BodyFailed) {
          this.#drop(conn);
          reject(error.cause);
          return;
        }
        if (error === undefined) {
          if (conn.reusable) this.#release(conn);
          else this.#drop(conn);
          resolve(answer!);
          return;
        }
        this.#drop(conn);
        if (error === STALE) reject(new StaleSocket());
        else if (signal?.aborted) reject(signal.reason);
        else if (error instanceof NotHttp) reject(new IppError('bad_response', `the ${this.#options.name} at ${this.#options.baseUrl} answered ${request.method} ${request.path} with something that is not HTTP/1.1: ${error.message}`));
        else if (error === TIMEOUT) reject(new IppError('service_unreachable', `the ${this.#options.name} at ${this.#options.baseUrl} did not answer ${request.method} ${request.path} within ${request.timeoutMs} ms`));
        else {
          const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
          reject(new IppError('service_unreachable', `cannot reach the ${this.#options.name} at ${this.#options.baseUrl}: ${code}; check the URL and that the server runs`, { cause: error }));
        }
      });
      this.#busy.add(conn);
      this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS);
      conn.socket.write(text);
      const stream = request.stream;
      if (stream === undefined) return;
      void (async () => {
        let sent = 0;
        try {
          for await (const chunk of stream.chunks) {
            if (finished) return;
            sent += chunk.length;
            if (sent > stream.length) break;
            if (!conn.socket.write(chunk)) await drained(conn.socket);
          }
          if (sent !== stream.length) {
            throw new IppError('body_length', `${this.#options.name}: the body of ${request.method} ${request.path} was ${sent > stream.length ? 'longer' : 'shorter'} than the ${stream.length} bytes declared`);
          }
          bodySent = true;
        } catch (error) {
          if (!finished) conn.fail(new BodyFailed(error));
        }
      })();
    });
  }

  #acquire(fresh: boolean): Promise<Connection> | Connection {
    if (this.#closed) throw new IppError('service_unreachable', `the client of the ${this.#options.name} was closed`);
    if (!fresh) {
      const now = Date.now();
      while (this.#idle.length > 0) {
        const conn = this.#idle.pop()!;
        if (now - conn.idleSince < this.#idleMs && !conn.socket.destroyed) {
          conn.socket.ref();
          return conn;
        }
        this.#drop(conn);
      }
    }
    if (this.#open < this.#max || fresh) return this.#connect();
    return new Promise<Connection>((resolve, reject) => {
      this.#waiting.push((conn) => {
        if (conn === undefined) reject(new IppError('service_unreachable', `the client of the ${this.#options.name} was closed`));
        else resolve(conn);
      });
    });
  }

  #connect(): Connection {
    this.#open++;
    const socket = connect({ host: this.#options.host, port: this.#options.port, noDelay: true });
    const conn = new Connection(socket);
    socket.once('close', () => {
      if (conn.counted) {
        conn.counted = false;
        this.#open--;
        const i = this.#idle.indexOf(conn);
        if (i >= 0) this.#idle.splice(i, 1);
        this.#wakeWaiter();
      }
    });
    return conn;
  }

  #release(conn: Connection): void {
    const waiter = this.#waiting.shift();
    if (waiter) {
      waiter(conn);
      return;
    }
    conn.idleSince = Date.now();
    conn.socket.unref();
    this.#idle.push(conn);
    if (this.#busy.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #drop(conn: Connection): void {
    conn.socket.destroy();
    if (conn.counted) {
      conn.counted = false;
      this.#open--;
      this.#wakeWaiter();
    }
  }

  /** A waiting call gets a fresh socket once one is closed. */
  #wakeWaiter(): void {
    if (this.#waiting.length > 0 && this.#open < this.#max && !this.#closed) this.#waiting.shift()!(this.#connect());
  }

  #sweep(): void {
    const now = Date.now();
    for (const conn of this.#busy) if (now >= conn.deadline) conn.fail(TIMEOUT);
    if (this.#busy.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

/** Resolves when the socket can take more, or has closed. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Producing a streamed body failed: the call fails with that error. */
class BodyFailed extends Error {
  constructor(cause: unknown) {
    super('the request body failed', { cause });
  }
}

const STALE = Symbol('stale');
const TIMEOUT = Symbol('timeout');
type Failure = Error | typeof STALE | typeof TIMEOUT;

/** A kept-alive connection the server had closed: the call never reached it. */
class StaleSocket extends Error {}

/** The connection ended before the whole answer came. */
function closedEarly(): Error {
  return Object.assign(new Error('the connection was closed before the answer'), { code: 'ECONNRESET' });
}

/** The bytes that came back are not an HTTP/1.x answer. */
class NotHttp extends Error {}

/** One socket and the answer it is reading. */
class Connection {
  readonly socket: Socket;
  /** Whether the pool still counts this socket as open. */
  counted = true;
  /** Whether the socket may carry another request after this answer. */
  reusable = true;
  idleSince = 0;
  deadline = Infinity;
  /** Calls this socket has carried before the current one. */
  #served = 0;
  #done: ((error: Failure | undefined, answer?: WireAnswer) => void) | undefined;
  #buffer: Buffer | undefined;
  #received = 0;
  #ended = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('end', () => {
      this.#ended = true;
      this.#parse();
      if (this.#done) this.#lost(closedEarly());
    });
    socket.on('error', (error: Error) => this.#lost(error));
    socket.on('close', () => this.#lost(closedEarly()));
  }

  /** Starts reading the answer to a request about to be written. */
  start(deadline: number, done: (error: Failure | undefined, answer?: WireAnswer) => void): void {
    this.deadline = deadline;
    this.#done = done;
    this.#buffer = undefined;
    this.#received = 0;
  }

  /** Ends the current call with an error and closes the socket. */
  fail(error: Failure): void {
    this.reusable = false;
    this.#finish(error);
    this.socket.destroy();
  }

  #lost(error: Error): void {
    this.reusable = false;
    if (this.#done === undefined) return;
    // Nothing of the answer came on a socket that had served before: the server closed an idle
    // connection as the request went out, so it never saw the request.
    const code = (error as NodeJS.ErrnoException).code ?? error.message;
    if (this.#served > 0 && this.#received === 0 && (code === 'ECONNRESET' || code === 'EPIPE')) this.#finish(STALE);
    else this.#finish(error);
  }

  #finish(error: Failure | undefined, answer?: WireAnswer): void {
    const done = this.#done;
    if (done === undefined) return;
    this.#done = undefined;
    this.#buffer = undefined;
    this.deadline = Infinity;
    this.#served++;
    done(error, answer);
  }

  #data(chunk: Buffer): void {
    if (this.#done === undefined) {
      // Bytes nobody asked for: the stream is out of step, so the socket cannot be trusted.
      this.reusable = false;
      this.socket.destroy();
      return;
    }
    this.#received += chunk.length;
    this.#buffer = this.#buffer === undefined ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#parse();
  }

  /** Finishes the call when the buffer holds a whole answer. */
  #parse(): void {
    const buf = this.#buffer;
    if (buf === undefined || this.#done === undefined) return;
    let start = 0;
    for (;;) {
      const end = buf.indexOf(CRLF2, start);
      if (end < 0) {
        if (buf.length - start > 65536) this.#finish(new NotHttp('its head is over 64 KiB'));
        return;
      }
      const head = buf.toString('latin1', start, end);
      const answer = parseHead(head);
      if (answer === undefined) {
        this.reusable = false;
        this.#finish(new NotHttp('malformed status line or framing headers'));
        this.socket.destroy();
        return;
      }
      const bodyStart = end + 4;
      // 1xx answers come before the real one.
      if (answer.status < 200) {
        start = bodyStart;
        continue;
      }
      if (answer.close) this.reusable = false;
      if (answer.status === 204 || answer.status === 304) {
        this.#complete(answer, Buffer.alloc(0), buf.length > bodyStart);
        return;
      }
      if (answer.chunked) {
        const body = dechunk(buf, bodyStart);
        if (body === CHUNK_ERROR) {
          this.reusable = false;
          this.#finish(new NotHttp('malformed chunked body'));
          this.socket.destroy();
        } else if (body !== undefined) {
          this.#complete(answer, body.data, body.end < buf.length);
        }
        return;
      }
      if (answer.length >= 0) {
        if (buf.length - bodyStart >= answer.length) {
          this.#complete(answer, buf.subarray(bodyStart, bodyStart + answer.length), buf.length > bodyStart + answer.length);
        }
        return;
      }
      // Neither a length nor chunks: the body runs until the server closes the connection.
      this.reusable = false;
      if (this.#ended) this.#complete(answer, buf.subarray(bodyStart), false);
      return;
    }
  }

  #complete(head: Head, body: Buffer, extra: boolean): void {
    if (extra) this.reusable = false;
    this.#finish(undefined, { status: head.status, reason: head.reason, body });
  }
}

interface Head {
  status: number;
  reason: string;
  /** Content-Length, or -1. */
  length: number;
  chunked: boolean;
  close: boolean;
}

/** The status line and the headers that frame the body; undefined when it is not HTTP/1.x. */
function parseHead(head: string): Head | undefined {
  if (!head.startsWith('HTTP/1.')) return undefined;
  const lineEnd = head.indexOf('\r\n');
  const statusLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
  const status = Number(statusLine.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || statusLine[8] !== ' ') return undefined;
  const result: Head = { status, reason: statusLine.slice(13), length: -1, chunked: false, close: head[7] === '0' };
  let pos = lineEnd < 0 ? head.length : lineEnd + 2;
  while (pos < head.length) {
    let next = head.indexOf('\r\n', pos);
    if (next < 0) next = head.length;
    const colon = head.indexOf(':', pos);
    if (colon > pos && colon < next) {
      const nameLength = colon - pos;
      // Only the framing headers matter; the lengths pick them out before any lower-casing.
      if (nameLength === 14 || nameLength === 17 || nameLength === 10) {
        const name = head.slice(pos, colon).toLowerCase();
        const value = head.slice(colon + 1, next).trim().toLowerCase();
        if (name === 'content-length') {
          const n = Number(value);
          if (!/^\d+$/.test(value) || (result.length >= 0 && result.length !== n)) return undefined;
          result.length = n;
        } else if (name === 'transfer-encoding') {
          result.chunked = value.split(',').map((s) => s.trim()).at(-1) === 'chunked';
          if (!result.chunked) result.close = true;
        } else if (name === 'connection') {
          const tokens = value.split(',').map((s) => s.trim());
          if (tokens.includes('close')) result.close = true;
          else if (head[7] === '0' && tokens.includes('keep-alive')) result.close = false;
        }
      }
    }
    pos = next + 2;
  }
  // Chunked framing wins over a length (RFC 9112 6.3).
  if (result.chunked) result.length = -1;
  return result;
}

const CHUNK_ERROR = Symbol('chunk error');

/** The body of a chunked answer starting at `pos`, undefined while incomplete. */
function dechunk(buf: Buffer, pos: number): { data: Buffer; end: number } | undefined | typeof CHUNK_ERROR {
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
    if (lineEnd < 0) return undefined;
    const sizeText = buf.toString('latin1', pos, lineEnd).split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) return CHUNK_ERROR;
    const size = parseInt(sizeText, 16);
    pos = lineEnd + 2;
    if (size === 0) {
      // Trailers, then an empty line.
      for (;;) {
        const end = buf.indexOf('\r\n', pos, 'latin1');
        if (end < 0) return undefined;
        if (end === pos) return { data: Buffer.concat(parts), end: end + 2 };
        pos = end + 2;
      }
    }
    if (buf.length < pos + size + 2) return undefined;
    parts.push(buf.subarray(pos, pos + size));
    if (buf[pos + size] !== 13 || buf[pos + size + 1] !== 10) return CHUNK_ERROR;
    pos += size + 2;
  }
}
