// Test helpers of the datastore room: a real server on loopback over a temporary root and a
// fresh database of each engine, and raw HTTP requests that bypass URL normalisation.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, withTempDir, type Logger } from '../common/index.ts';
import { openDatabase, type Database, type TestEngine } from '../db/index.ts';
import { DATASTORE_MIGRATIONS } from './migrations.ts';
import { startDatastoreServer, type DatastoreServer, type DatastoreServerOptions } from './server.ts';
import { FILESET_BODY_TYPE } from './upload.ts';

/** What a test gets: the running server, its database, its temp dir and the log lines. */
export interface DatastoreFixture {
  readonly server: DatastoreServer;
  readonly db: Database;
  readonly dir: string;
  readonly dbUrl: string;
  readonly logLines: string[];
  readonly log: Logger;
}

/** Runs `fn` against a fresh server (root in a temp dir, a fresh database of the engine). */
export async function withDatastore<T>(
  engine: TestEngine, options: Partial<DatastoreServerOptions>, fn: (f: DatastoreFixture) => Promise<T>,
): Promise<T> {
  return engine.withUrl((dbUrl) => withTempDir(async (dir) => {
    const logLines: string[] = [];
    const log = createLogger({ level: 'debug', sinks: [{ write: (s: string) => logLines.push(s) }] });
    const url = engine.name === 'sqlite' ? `sqlite:${join(dir, 'datastore.db')}` : dbUrl;
    const db = await openDatabase(url, { migrations: [DATASTORE_MIGRATIONS] });
    try {
      const server = await startDatastoreServer({ root: join(dir, 'root'), db, log, reserveBytes: 0, fsync: false, ...options });
      try {
        return await fn({ server, db, dir, dbUrl: url, logLines, log });
      } finally {
        await server.close();
      }
    } finally {
      await db.close();
    }
  }, 'ipp-ds-'));
}

/** The md5 of some bytes, as hex. */
export function md5(data: Uint8Array | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** Deterministic bytes for test files. */
export function bytesOf(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A raw HTTP request: the path is sent exactly as given (fetch would normalise dot segments). */
export function rawRequest(
  base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An upload whose body stops after `first` bytes of its one file until `release` resolves. */
export function stalledUpload(url: string, product: string, fileset: string, data: Buffer, first: number, release: Promise<void>, signal?: AbortSignal) {
  const manifest = Buffer.from(`${JSON.stringify({ files: [{ name: 'data.fits', bytes: data.length, md5: md5(data) }] })}\n`);
  async function* body() {
    yield manifest;
    yield data.subarray(0, first);
    await release;
    yield data.subarray(first);
  }
  return fetch(`${url}/products/${product}/filesets/${fileset}`, {
    method: 'PUT', headers: { 'content-type': FILESET_BODY_TYPE }, body: body() as unknown as RequestInit['body'], duplex: 'half', signal,
  } as RequestInit);
}

/** Polls `check` until it holds (10 s at most). */
export async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}
