// Shared pieces of the datastore benchmarks: the real server (`ipp datastore serve`) in its own
// process, and a load generator run as several child processes (bench/datastore-load.ts).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startServerChild, type ServerChild } from '../src/common/index.ts';

const NODE = process.execPath;
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const LOAD = fileURLToPath(new URL('./datastore-load.ts', import.meta.url));

/** A server in a child process. */
export type ServerProcess = Pick<ServerChild, 'url' | 'stop'>;

/** Starts `ipp datastore serve --root ROOT --port 0` with the extra arguments, quiet. */
export async function startDatastore(root: string, extra: string[] = []): Promise<ServerProcess> {
  return startServerChild([NODE, MAIN, 'datastore', 'serve', '--root', root, '--port', '0', '--log-level', 'warn', ...extra], {
    env: { ...process.env, IPP_DATASTORE_TOKEN: '' }, pattern: /at (http:\/\/\S+) /, what: 'ipp datastore serve',
  });
}

/** Starts the peer of the index benchmark: a plain node:http server answering a fixed body of `bytes` bytes. */
export async function startStaticServer(bytes: number): Promise<ServerProcess> {
  return startServerChild([NODE, LOAD, '--static', String(bytes)], { pattern: /^URL (\S+)/m, what: 'static server' });
}

/** What the load processes measured together. */
export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** Runs `processes` load generators, each with `connections` keep-alive connections, GETting `path` for `seconds`. */
export async function runLoad(url: string, path: string, seconds: number, processes: number, connections: number): Promise<LoadResult> {
  const runs = Array.from({ length: processes }, async () => {
    const child = spawn(NODE, [LOAD, url, path, String(seconds), String(connections)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    const [code] = await once(child, 'exit');
    if (code !== 0) throw new Error(`load generator failed (${code})`);
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as { requests: number; errors: number; seconds: number };
  });
  const results = await Promise.all(runs);
  const requests = results.reduce((s, r) => s + r.requests, 0);
  const errors = results.reduce((s, r) => s + r.errors, 0);
  const elapsed = Math.max(...results.map((r) => r.seconds));
  return { requests, errors, seconds: elapsed, perSecond: requests / elapsed };
}
