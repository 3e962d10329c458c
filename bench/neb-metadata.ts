// Nebulous metadata operations per second through the HTTP server, on SQLite and PostgreSQL:
// create, find, stat, from client processes of their own (kept-alive connections, many calls
// in flight), against the peer of a bare round trip to the same server (GET /v1/health) in the
// same run; then pattern search over a million keys against grep over the same keys.
// Usage: node bench/neb-metadata.ts [--creates N] [--finds N] [--clients P] [--concurrency C] [--keys N]
//   [--engines sqlite,postgres] [--phases metadata,search] [--ops health,create,find,stat,find-many]
// Every figure is printed with its CPU per call (server and clients, user + system) and the
// load average when it was taken, since the rate depends on what else the machine runs.
// PostgreSQL needs IPP_TEST_PG_URL (an admin URL; a throw-away database is made in it).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openDatabase, testEngines, type Database } from '../src/db/index.ts';
import { NEBULOUS_MIGRATIONS, NebulousClient } from '../src/nebulous/index.ts';
import { startServerProcess } from '../src/nebulous/testing.ts';
import { BENCH_DIR, check, reportRate, report, target } from './lib.ts';

const { values } = parseArgs({
  options: {
    creates: { type: 'string', default: '20000' },
    finds: { type: 'string', default: '100000' },
    ops: { type: 'string', default: 'health,create,find,stat,find-many' },
    clients: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '32' },
    keys: { type: 'string', default: '1000000' },
    engines: { type: 'string', default: 'sqlite,postgres' },
    phases: { type: 'string', default: 'metadata,search' },
  },
});
const CREATES = Number(values.creates);
const FINDS = Number(values.finds);
const OPS = String(values.ops).split(',');
const CLIENTS = Number(values.clients);
const CONCURRENCY = Number(values.concurrency);
const KEYS = Number(values.keys);
const LOAD = fileURLToPath(new URL('./neb-load.ts', import.meta.url));
const TOKEN = 'bench';

console.log(`neb-metadata: ${CREATES} creates, ${FINDS} finds (one key a call), ${CLIENTS} client processes x ${CONCURRENCY} calls in flight each; search over ${KEYS} keys; load average ${loadAverage()}`);

for (const engine of testEngines()) {
  if (!String(values.engines).split(',').includes(engine.name)) continue;
  if (engine.skip) {
    console.log(`(${engine.name} skipped: ${engine.skip})`);
    continue;
  }
  const dir = join(BENCH_DIR, `neb-${engine.name}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await engine.withUrl(async (url) => {
    const dbUrl = engine.name === 'sqlite' ? `sqlite:${join(dir, 'neb.db')}` : url;
    // Prepared volumes, as in production (the original's mkdirs step): no create pays for a mkdir.
    const volumes = ['a', 'b', 'c'].map((host) => ({ host, path: join(dir, host), prepare: true }));
    for (const v of volumes) mkdirSync(v.path);
    const server = await startServerProcess({ db: dbUrl, volumes, token: TOKEN, logLevel: 'warn' }, { inheritStderr: true });
    const client = new NebulousClient({ url: server.url, token: TOKEN });
    try {
      const phases = String(values.phases).split(',');
      if (phases.includes('metadata')) await metadata(engine.name, server.url, client);
      if (!phases.includes('search')) return;
      const db = await openDatabase(dbUrl, { migrations: [NEBULOUS_MIGRATIONS] });
      try {
        await search(engine.name, db, client, dir);
      } finally {
        await db.close();
      }
    } finally {
      client.close();
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.once('exit', r));
    }
  });
  rmSync(dir, { recursive: true, force: true });
}

async function metadata(engine: string, url: string, client: NebulousClient): Promise<void> {
  const peer = await phase(url, client, 'health', 20_000, 0);
  console.log(`  bare round trip (GET /v1/health): ${peer.rate.toFixed(0)}/s; ${cpuLine(peer)}`);
  // The creates make the keys the other phases look up, so they always run.
  const create = await phase(url, client, 'create', CREATES, 0);
  const line = (name: string, p: Phase) => reportRate(`neb ${name} (${engine})`, p.rate, 'bare HTTP round trip', peer.rate, 'ops/s');
  const results: Phase[] = [create];
  if (OPS.includes('create')) {
    line('create', create);
    console.log(`  per create: ${cpuLine(create)}`);
    target('≥ 2,000 creates/s', create.rate >= 2000);
  }
  if (OPS.includes('find')) {
    const find = await phase(url, client, 'find', FINDS, CREATES);
    results.push(find);
    line(`find, one key a call, ${CLIENTS} clients x ${CONCURRENCY} in flight`, find);
    console.log(`  per find: ${cpuLine(find)}`);
    target('≥ 10,000 finds/s', find.rate >= 10_000);
  }
  if (OPS.includes('stat')) {
    const stat = await phase(url, client, 'stat', CREATES, CREATES);
    results.push(stat);
    line('stat', stat);
    console.log(`  per stat: ${cpuLine(stat)}`);
  }
  if (OPS.includes('find-many')) {
    const many = await phase(url, client, 'find-many', 20 * CREATES, CREATES);
    results.push(many);
    line('find, 100 keys a call (not counted as finds)', many);
    console.log(`  per key found: ${cpuLine(many)}`);
  }
  const errors = results.reduce((n, p) => n + p.errors, 0);
  check(errors === 0, `no call failed (${results.find((p) => p.firstError)?.firstError ?? ''})`);
}

interface Phase {
  rate: number;
  /** Server CPU per call, user and system, µs. */
  serverUser: number;
  serverSystem: number;
  /** Client CPU per call (all client processes), user and system, µs. */
  clientUser: number;
  clientSystem: number;
  errors: number;
  firstError?: string;
  load: string;
}

/** CPU per call of the server and of the clients, what one core would do, and the load average. */
function cpuLine(p: Phase): string {
  const server = p.serverUser + p.serverSystem;
  const clients = p.clientUser + p.clientSystem;
  return `CPU server ${server.toFixed(1)} µs (user ${p.serverUser.toFixed(1)} + system ${p.serverSystem.toFixed(1)}; one core: ${(1e6 / server).toFixed(0)}/s), `
    + `clients ${clients.toFixed(1)} µs (user ${p.clientUser.toFixed(1)} + system ${p.clientSystem.toFixed(1)}), together ${(server + clients).toFixed(1)} µs; `
    + `${p.errors} errors; load average ${p.load}`;
}

/** Runs `count` calls of `op` split over the client processes; the rate is calls over the wall time of the slowest. */
async function phase(url: string, client: NebulousClient, op: string, count: number, keys: number): Promise<Phase> {
  const before = await client.stats();
  const t0 = performance.now();
  const per = Math.ceil(count / CLIENTS);
  const results = await Promise.all(Array.from({ length: CLIENTS }, (_, p) => runLoad({
    url, token: TOKEN, op, count: per, concurrency: CONCURRENCY, prefix: 'bench', keys, offset: p * per,
  })));
  const seconds = (performance.now() - t0) / 1000;
  const after = await client.stats();
  const ops = per * CLIENTS;
  return {
    rate: ops / seconds,
    serverUser: (after.cpuUserMicros - before.cpuUserMicros) / ops,
    serverSystem: (after.cpuSystemMicros - before.cpuSystemMicros) / ops,
    clientUser: results.reduce((n, r) => n + r.userMicros, 0) / ops,
    clientSystem: results.reduce((n, r) => n + r.systemMicros, 0) / ops,
    errors: results.reduce((n, r) => n + r.errors, 0),
    firstError: results.find((r) => r.firstError)?.firstError,
    load: loadAverage(),
  };
}

interface LoadResult { errors: number; firstError?: string; userMicros: number; systemMicros: number }

async function runLoad(config: object): Promise<LoadResult> {
  const child = spawn(process.execPath, [LOAD, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const status = await new Promise<number | null>((r) => child.once('exit', r));
  if (status !== 0) throw new Error(`load process failed (${status}): ${out}`);
  return JSON.parse(out.trim().split('\n').pop()!) as LoadResult;
}


/** The key of the i-th bench object: 60 chips of an exposure, 100 exposures a night. */
function benchKey(i: number): string {
  const chip = i % 60;
  const exposure = Math.floor(i / 60);
  const night = 20100101 + Math.floor(exposure / 100);
  const name = `o${5197 + Math.floor(exposure / 100)}g${String(exposure % 100).padStart(4, '0')}o`;
  return `gpc1/raw/${night}/${name}/${name}.ota${String(Math.floor(chip / 8))}${chip % 8}.fits`;
}

async function search(engine: string, db: Database, client: NebulousClient, dir: string): Promise<void> {
  const t0 = performance.now();
  const now = new Date().toISOString();
  const chunk = 5000;
  let soId = 10_000_000;
  for (let start = 0; start < KEYS; start += chunk) {
    const n = Math.min(chunk, KEYS - start);
    const params: (string | number)[] = [];
    for (let i = 0; i < n; i++) params.push(soId++, benchKey(start + i), now, now);
    await db.transaction((tx) => tx.run(`INSERT INTO neb_storage_object (so_id, ext_id, tomb, state, copies, read_locks, created_at, modified_at)
      VALUES ${Array(n).fill("(?, ?, 0, 'live', 1, 0, ?, ?)").join(', ')}`, params));
  }
  console.log(`  (${KEYS} keys inserted straight into the database in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const keyFile = join(dir, 'keys.txt');
  const lines: string[] = [];
  for (let i = 0; i < KEYS; i++) lines.push(benchKey(i));
  writeFileSync(keyFile, `${lines.join('\n')}\n`);

  const cases: { name: string; kind: 'glob' | 'regex'; pattern: string; grep: string }[] = [
    { name: 'glob, one night (literal prefix)', kind: 'glob', pattern: 'gpc1/raw/20100105/**', grep: '^gpc1/raw/20100105/' },
    { name: 'glob, four chips of every exposure', kind: 'glob', pattern: 'gpc1/raw/*/*/*.ota4[0-3].fits', grep: '^gpc1/raw/[^/]*/[^/]*/[^/]*\\.ota4[0-3]\\.fits$' },
    { name: 'regex, unanchored', kind: 'regex', pattern: 'ota(11|22|33)\\.fits$', grep: 'ota(11|22|33)\\.fits$' },
    { name: 'regex, anchored prefix', kind: 'regex', pattern: '^gpc1/raw/2010011[0-4]/', grep: '^gpc1/raw/2010011[0-4]/' },
  ];
  let worst = 0;
  for (const c of cases) {
    let ours = Infinity;
    let found = 0;
    for (let run = 0; run < 2; run++) {
      const start = performance.now();
      found = 0;
      for await (const _ of c.kind === 'glob' ? client.glob(c.pattern) : client.regex(c.pattern)) found++;
      ours = Math.min(ours, (performance.now() - start) / 1000);
    }
    const g0 = performance.now();
    const grep = spawnSync('grep', ['-c', '-E', c.grep, keyFile], { encoding: 'utf8' });
    const grepSeconds = (performance.now() - g0) / 1000;
    check(Number(grep.stdout.trim()) === found, `${c.name}: we found ${found} keys, grep ${grep.stdout.trim()}`);
    report(`neb search over ${KEYS} keys, ${c.name} (${engine}, ${found} found)`, ours, 'grep -E on a text file of the keys', grepSeconds);
    worst = Math.max(worst, ours);
  }
  target(`pattern search over ${KEYS} keys < 1 s`, worst < 1);
}

function loadAverage(): string {
  return spawnSync('cut', ['-d', ' ', '-f1-3', '/proc/loadavg'], { encoding: 'utf8' }).stdout.trim();
}
