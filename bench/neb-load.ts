// Load for bench/neb-metadata.ts from a process of its own: `concurrency` calls in flight at
// once over kept-alive connections, `count` calls in all. Argument: a JSON object
// { url, token, op: 'create' | 'find' | 'find-many' | 'stat' | 'health', count, concurrency, prefix, keys, offset }.
// find-many asks for 100 keys a call; `count` counts keys. Every find's answer is checked:
// its first path must be an instance file of the key asked for.
// Prints one JSON line: { ops, seconds, errors, firstError, cpuMicros, userMicros, systemMicros }.
import './usage.ts';
import { NebulousClient } from '../src/nebulous/index.ts';

interface LoadConfig {
  url: string;
  token?: string;
  op: 'create' | 'find' | 'find-many' | 'stat' | 'health';
  count: number;
  concurrency: number;
  /** Keys are `${prefix}/${i % 1000}/obj${i}.fits`. */
  prefix: string;
  /** For find and stat: how many keys exist (calls pick among them). */
  keys?: number;
  /** For create: the first i; for look-ups: where this process's sequence starts. */
  offset?: number;
}

const config = JSON.parse(process.argv[2]) as LoadConfig;
const client = new NebulousClient({ url: config.url, token: config.token });
const key = (i: number) => `${config.prefix}/${i % 1000}/obj${i}.fits`;
/** An instance file's name ends with its key, slashes as colons (instanceRelPath). */
const isInstanceOf = (path: string | undefined, k: string) => path !== undefined && path.endsWith(`.${k.replaceAll('/', ':')}`);
/** The i-th key looked up: spread over the keys, and another sequence in each process (offset), so that processes do not ask for the same key at the same moment. */
const pick = (i: number) => (((config.offset ?? 0) + i) * 7919) % config.keys!;
let next = 0;
let errors = 0;
let firstError: string | undefined;
const started = performance.now();
const cpuBefore = process.cpuUsage();
await Promise.all(Array.from({ length: config.concurrency }, async () => {
  while (next < config.count) {
    const i = next++;
    try {
      if (config.op === 'create') await client.create(key((config.offset ?? 0) + i));
      else if (config.op === 'find') {
        const k = key(pick(i));
        const paths = await client.find(k);
        if (!isInstanceOf(paths[0], k)) throw new Error(`find ${k} answered ${JSON.stringify(paths)}`);
      } else if (config.op === 'stat') await client.stat(key(pick(i)));
      else if (config.op === 'find-many') {
        next += 99;
        const keys = Array.from({ length: 100 }, (_, j) => key(pick(i + j)));
        const found = await client.findMany(keys);
        if (found.some((f, j) => !('paths' in f) || !isInstanceOf(f.paths[0], keys[j]!))) throw new Error('a key was not found, or found elsewhere');
      }
      else await client.health();
    } catch (error) {
      errors++;
      firstError ??= (error as Error).message;
    }
  }
}));
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
client.close();
process.stdout.write(`${JSON.stringify({
  ops: config.count, seconds, errors, firstError, cpuMicros: cpu.user + cpu.system, userMicros: cpu.user, systemMicros: cpu.system,
})}\n`);
