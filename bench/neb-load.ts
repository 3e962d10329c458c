// Load for bench/neb-metadata.ts from a process of its own: `concurrency` calls in flight at
// once over kept-alive connections, `count` calls in all. Argument: a JSON object
// { url, token, op: 'create' | 'find' | 'find-many' | 'stat' | 'health', count, concurrency, prefix, keys, offset }.
// find-many asks for 100 keys a call; `count` counts keys.
// Prints one JSON line: { ops, seconds, errors, cpuMicros }.
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
  /** For create: the first i. */
  offset?: number;
}

const config = JSON.parse(process.argv[2]) as LoadConfig;
const client = new NebulousClient({ url: config.url, token: config.token });
const key = (i: number) => `${config.prefix}/${i % 1000}/obj${i}.fits`;
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
      else if (config.op === 'find') await client.find(key((i * 7919) % config.keys!));
      else if (config.op === 'stat') await client.stat(key((i * 7919) % config.keys!));
      else if (config.op === 'find-many') {
        next += 99;
        const keys = Array.from({ length: 100 }, (_, j) => key(((i + j) * 7919) % config.keys!));
        const found = await client.findMany(keys);
        if (found.some((f) => !('paths' in f))) throw new Error('a key was not found');
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
process.stdout.write(`${JSON.stringify({ ops: config.count, seconds, errors, firstError, cpuMicros: cpu.user + cpu.system })}\n`);
