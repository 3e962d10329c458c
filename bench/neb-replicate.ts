// The Nebulous data path: replicate (through the server: read, SHA-256, write to a temporary
// name, flush, rename, record) against a plain copy of the same file in the same run: `cp`
// followed by `sync FILE` (flushed, like ours), and `cp` alone against ours without the flush.
// Usage: node bench/neb-replicate.ts [--mb 512] [--runs 3]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NebulousClient } from '../src/nebulous/index.ts';
import { startServerProcess } from '../src/nebulous/testing.ts';
import { BENCH_DIR, check, mb, reportRate, rng, timeCommand } from './lib.ts';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '512' }, runs: { type: 'string', default: '3' } } });
const BYTES = Number(values.mb) * 1e6;
const RUNS = Number(values.runs);
const dir = join(BENCH_DIR, 'neb-replicate');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

// Incompressible content, so that no layer can cheat.
const source = join(dir, 'source.bin');
const block = Buffer.alloc(1 << 20);
const next = rng(7);
for (let i = 0; i < block.length; i += 4) block.writeUInt32LE(Math.floor(next() * 2 ** 32), i);
const blocks: Buffer[] = [];
for (let left = BYTES; left > 0; left -= block.length) blocks.push(block.subarray(0, Math.min(block.length, left)));
writeFileSync(source, Buffer.concat(blocks));
const sourceSum = await sha256(source);
console.log(`neb-replicate: ${mb(BYTES).toFixed(0)} MB file, best of ${RUNS}; load average ${spawnSync('cut', ['-d', ' ', '-f1-3', '/proc/loadavg'], { encoding: 'utf8' }).stdout.trim()}`);

const copy = join(dir, 'copy.bin');
const cpSeconds = best(() => { rmSync(copy, { force: true }); return timeCommand('cp', [source, copy]).seconds; });
const cpSyncSeconds = best(() => { rmSync(copy, { force: true }); return timeCommand('sh', ['-c', `cp '${source}' '${copy}' && sync '${copy}'`]).seconds; });
rmSync(copy, { force: true });

for (const syncData of [true, false]) {
  const root = join(dir, syncData ? 'flushed' : 'unflushed');
  const volumes = ['a', 'b'].map((host) => ({ host, path: join(root, host) }));
  for (const v of volumes) mkdirSync(v.path, { recursive: true });
  const server = await startServerProcess({ db: `sqlite:${join(root, 'neb.db')}`, volumes, token: 'bench', syncData }, { inheritStderr: true });
  const client = new NebulousClient({ url: server.url, token: 'bench' });
  try {
    const t0 = performance.now();
    const imported = await client.import(source, 'bench/replicate.bin', { volume: '~a.0' });
    const importSeconds = (performance.now() - t0) / 1000;
    check(await sha256(imported.path) === sourceSum, 'the imported copy has the source content');
    let seconds = Infinity;
    for (let run = 0; run < RUNS; run++) {
      const start = performance.now();
      const placed = await client.replicate('bench/replicate.bin', { volume: '~b.0' });
      seconds = Math.min(seconds, (performance.now() - start) / 1000);
      check(statSync(placed.path).size === BYTES, 'the replica has every byte');
      if (run === 0) check(await sha256(placed.path) === sourceSum, 'the replica has the source content');
      await client.cull('bench/replicate.bin', { path: placed.path });
    }
    const label = syncData ? 'flushed' : 'not flushed';
    reportRate(`neb replicate, ${label} (checked by SHA-256)`, mb(BYTES) / seconds, syncData ? 'cp + sync FILE' : 'cp', mb(BYTES) / (syncData ? cpSyncSeconds : cpSeconds));
    console.log(`  import of the same file (${label}): ${(mb(BYTES) / importSeconds).toFixed(0)} MB/s`);
  } finally {
    client.close();
    server.child.kill('SIGTERM');
    await server.exited;
  }
}
rmSync(dir, { recursive: true, force: true });

function best(fn: () => number): number {
  let b = Infinity;
  for (let i = 0; i < RUNS; i++) b = Math.min(b, fn());
  return b;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

