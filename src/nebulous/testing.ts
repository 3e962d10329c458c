// Test support: a real Nebulous server on loopback over a fresh database of one engine, with
// volumes as temporary directories, and a client for it.
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { startServerChild, withTempDir, type ServerChild } from '../common/index.ts';
import { openDatabase, type Database, type TestEngine } from '../db/index.ts';
import { NebulousClient } from './client.ts';
import { NEBULOUS_MIGRATIONS } from './migrations.ts';
import { startNebulousServer, type NebulousServer, type NebulousServerOptions } from './server.ts';
import type { VolumeState } from './types.ts';

/** A volume the test world registers: `HOST.0` on host HOST. */
export interface TestVolume {
  readonly host: string;
  readonly state?: VolumeState;
  /** Hand-set sizes (default: measured from the file system). */
  readonly capacity?: number;
  readonly free?: number;
}

/** The usual test volumes, after the original's test setup: three available hosts, one read-only, one down, one full. */
export const TEST_VOLUMES: readonly TestVolume[] = [
  { host: 'node01' }, { host: 'node02' }, { host: 'node03' },
  { host: 'node04', state: 'read-only' }, { host: 'node05', state: 'down' },
  { host: 'node06', capacity: 10_000_000_000, free: 0 },
];

/** What a test gets. */
export interface NebWorld {
  readonly dir: string;
  readonly url: string;
  readonly server: NebulousServer;
  readonly db: Database;
  readonly client: NebulousClient;
  /** The directory of volume `HOST.0`. */
  volumePath(host: string): string;
  /** Another client (closed with the world). */
  newClient(holder?: string): NebulousClient;
}

/** Runs `fn` against a fresh server, database and volumes; everything is closed and removed afterwards. */
export async function withNebWorld<T>(
  engine: TestEngine, fn: (world: NebWorld) => Promise<T>,
  options: { volumes?: readonly TestVolume[]; server?: Partial<NebulousServerOptions> } = {},
): Promise<T> {
  return withTempDir((dir) => engine.withUrl(async (url) => {
    const db = await openDatabase(url, { migrations: [NEBULOUS_MIGRATIONS], maxConnections: 8 });
    const clients: NebulousClient[] = [];
    let server: NebulousServer | undefined;
    try {
      server = await startNebulousServer({ db, tokens: { write: 'secret' }, maintenanceMs: 0, syncData: false, ...options.server });
      const newClient = (holder?: string) => {
        const c = new NebulousClient({ url: server!.url, token: 'secret', holder });
        clients.push(c);
        return c;
      };
      const client = newClient('test-client');
      const volumePath = (host: string) => join(dir, `${host}.0`);
      for (const v of options.volumes ?? TEST_VOLUMES) {
        await mkdir(volumePath(v.host), { recursive: true });
        await client.addVolume({ host: v.host, volume: '0', path: volumePath(v.host), state: v.state, capacity: v.capacity, free: v.free });
      }
      return await fn({ dir, url: server.url, server, db, client, volumePath, newClient });
    } finally {
      for (const c of clients) c.close();
      await server?.close();
      await db.close();
    }
  }), 'ipp-neb-');
}

const SERVER_FIXTURE = fileURLToPath(new URL('./server.fixture.ts', import.meta.url));

/** A Nebulous server in a child process of its own (for kill -9 tests and benchmarks). */
export type ServerProcess = ServerChild;

/** Starts `server.fixture.ts` with `config` and waits for its READY line; its stderr is kept for the error, or passed through. */
export function startServerProcess(config: object, options: { inheritStderr?: boolean } = {}): Promise<ServerProcess> {
  return startServerChild([process.execPath, SERVER_FIXTURE, JSON.stringify(config)], {
    // preparing volumes (every hash directory made ahead) can take minutes on a busy machine
    pattern: /READY (\S+)/, what: 'the Nebulous server fixture', timeoutMs: 600_000,
    ...(options.inheritStderr ? { onStderr: (text: string) => process.stderr.write(text) } : {}),
  });
}
