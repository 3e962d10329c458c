// Jobs dispatched per second by the scheduler with 100,000 pages in its books, per back-end,
// and the scheduler's own cost per job. A run task takes the next INIT page of the book, marks
// it RUN (written to the database before the job starts), runs `/bin/true` and closes the page.
//
//   node bench/pantasks-dispatch.ts [pages=100000] [localJobs=5000]
//
// - scheduler alone: jobs go to a pcontrol host whose driver ends each job at once (no
//   process), so the rate is the scheduler's: exec, books, database writes, pcontrol.
// - local: the scheduler's local jobs (started by its /bin/sh launchers). Peer: `xargs -P`
//   running the same number of /bin/true with the same parallelism (a plain process pool, no
//   bookkeeping); and the same jobs started from the scheduler's own Node process.
// - ssh (when IPP_TEST_SSH_* name a server, scripts/test-sshd.sh): one pclient over one ssh
//   connection. Peer: one ssh connection per job, as a naive dispatcher would (same parallelism).
// - Slurm (when IPP_TEST_SLURM=1, scripts/test-slurm.sh): batch jobs. Peer: `sbatch --wrap`
//   per job from a shell loop, waiting for the queue to empty.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../src/common/index.ts';
import { loadavg } from 'node:os';
import {
  PAGE_STATES, Scheduler, type Book, type HostDriver, type HostEvents, type RunEvents, type RunRequest, type SchedulerOptions,
} from '../src/pantasks/index.ts';
import { BENCH_DIR, check, reportRate, target } from './lib.ts';

const pages = Number(process.argv[2] ?? 100_000);
const localJobs = Number(process.argv[3] ?? 5000);
const PARALLEL = 64;
const env = process.env;

/** A pcontrol host that runs nothing: every job ends as soon as it starts. */
class InstantHost implements HostDriver {
  readonly kind = 'instant';
  readonly description = 'no process: jobs end at once';
  connect(events: HostEvents): void {
    queueMicrotask(() => events.up('instant'));
  }
  start(req: RunRequest, events: RunEvents): void {
    queueMicrotask(() => {
      events.started(null);
      events.done({ outcome: 'exit', status: 0, signal: null, stdout: '', stderr: '', truncated: false, reason: null });
    });
  }
  kill(): void {}
  async disconnect(): Promise<void> {}
}

const dir = join(BENCH_DIR, 'pantasks');
rmSync(dir, { recursive: true, force: true });

/** A scheduler with `pages` INIT pages in its book, written to its database. */
async function openWithPages(name: string, options: Partial<SchedulerOptions> = {}): Promise<{ s: Scheduler; book: Book; seconds: number }> {
  const s = await Scheduler.open({
    db: `sqlite:${join(dir, `${name}.db`)}`, log: createLogger({ level: 'error' }), env, maxLocalJobs: PARALLEL, spoolRoot: join(dir, 'spool'), ...options,
  });
  const book = s.books.book('bench');
  const t0 = performance.now();
  for (let i = 0; i < pages; i++) book.add(`${i}/XY${String(i % 60).padStart(2, '0')}`, { id: i, component: `XY${i % 60}` });
  await s.store.flush(s.books);
  return { s, book, seconds: (performance.now() - t0) / 1000 };
}

/** Jobs asked of each book, to check that each closed exactly its page. */
const dispatched = new Map<Book, number>();

/** Runs `n` jobs of a run task on `host`; returns jobs per second and µs of scheduling per job. */
async function dispatch(s: Scheduler, book: Book, name: string, host: string, n: number): Promise<{ rate: number; overheadUs: number }> {
  let made = 0;
  let finished = 0;
  const stop = s.onJobDone((j) => {
    if (j.task === name) finished++;
  });
  const before = s.status();
  s.addTask({
    name, host, hostNeed: host === 'local' ? 'wanted' : 'needed', period: 0.005, burst: PARALLEL, npending: PARALLEL * 2, stdout: null, stderr: null,
    exec: () => {
      if (made >= n) return null;
      const page = book.first(PAGE_STATES.init);
      if (!page) return null;
      made++;
      return { command: ['/bin/true'], page };
    },
  });
  const start = performance.now();
  dispatched.set(book, (dispatched.get(book) ?? 0) + n);
  await s.run();
  await s.until(() => finished >= n, 600_000, `${n} jobs on ${host}`);
  const seconds = (performance.now() - start) / 1000;
  await s.stop();
  s.removeTask(name);
  stop();
  const after = s.status();
  const busyUs = after.overheadPerJobUs * Math.max(1, after.jobs.submitted) - before.overheadPerJobUs * Math.max(1, before.jobs.submitted);
  return { rate: n / seconds, overheadUs: busyUs / n };
}

function timeShell(script: string, args: readonly string[] = []): number {
  const start = performance.now();
  const r = spawnSync('/bin/sh', ['-c', script, 'sh', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  if (r.status !== 0) throw new Error(`peer failed: ${r.stderr}`);
  return (performance.now() - start) / 1000;
}

const { s, book, seconds } = await openWithPages('pantasks');
console.log(`${pages} pages added and written in ${seconds.toFixed(2)} s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

// Scheduler alone.
s.controller.addHost('instant', new InstantHost(), PARALLEL);
await s.until(() => s.controller.hosts()[0]!.state === 'idle', 10_000, 'instant host');
const alone = await dispatch(s, book, 'alone', 'instant', 20_000);
console.log(`scheduler alone (no processes): ${alone.rate.toFixed(0)} jobs/s, ${alone.overheadUs.toFixed(1)} µs of scheduling per job`);
await s.controller.removeHost('instant');

// Local child processes, against xargs -P, and started from Node itself (no launchers).
const local = await dispatch(s, book, 'local', 'local', localJobs);
const xargs = localJobs / timeShell(`seq ${localJobs} | xargs -P ${PARALLEL} -n 1 /bin/true`);
reportRate(`local (${PARALLEL} at once, ${localJobs} jobs)`, local.rate, `xargs -P ${PARALLEL}`, xargs, 'jobs/s');
console.log(`  scheduling per local job: ${local.overheadUs.toFixed(1)} µs`);
target('≥ 1,000 jobs/s locally', local.rate >= 1000);
const plain = await openWithPages('direct', { localLaunchers: false });
const direct = await dispatch(plain.s, plain.book, 'direct', 'local', Math.min(localJobs, 2000));
check(plain.book.count(PAGE_STATES.done) === dispatched.get(plain.book), 'the direct run closed its pages');
await plain.s.close();
reportRate('local through launchers', local.rate, 'spawned from the scheduler\'s Node process', direct.rate, 'jobs/s');
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

// ssh: one pclient connection against one ssh connection per job.
if (env.IPP_TEST_SSH_PORT && env.IPP_TEST_SSH_KEY) {
  const sshOptions = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
  const host = env.IPP_TEST_SSH_HOST ?? '127.0.0.1';
  await s.addHost({
    kind: 'ssh', name: 'ssh1', slots: 16, host, port: Number(env.IPP_TEST_SSH_PORT), user: env.IPP_TEST_SSH_USER, key: env.IPP_TEST_SSH_KEY,
    pclient: `${process.execPath} ${join(import.meta.dirname, '..', 'src', 'cli', 'main.ts')} pclient`, options: ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null'],
  });
  await s.until(() => s.controller.hosts().some((h) => h.name === 'ssh1' && h.state === 'idle'), 30_000, 'ssh host');
  const n = 2000;
  const ssh = await dispatch(s, book, 'ssh', 'ssh1', n);
  const peerJobs = 200;
  const target = `${env.IPP_TEST_SSH_USER ?? 'root'}@${host}`;
  const peer = peerJobs / timeShell(`seq ${peerJobs} | xargs -P 16 -I{} ssh ${sshOptions.join(' ')} -p "$1" -i "$2" "$3" true`, [env.IPP_TEST_SSH_PORT, env.IPP_TEST_SSH_KEY, target]);
  reportRate(`ssh (16 slots, ${n} jobs)`, ssh.rate, 'one ssh connection per job (16 at once)', peer, 'jobs/s');
  await s.removeHost('ssh1');
} else {
  console.log('ssh: skipped (IPP_TEST_SSH_PORT/KEY not set; source scripts/test-sshd.sh)');
}

// Slurm: our batch jobs against sbatch from a shell loop.
if (env.IPP_TEST_SLURM === '1') {
  await s.addHost({ kind: 'slurm', name: 'slurm1', slots: 200, partition: env.IPP_TEST_SLURM_PARTITION, pollInterval: 200 });
  await s.until(() => s.controller.hosts().some((h) => h.name === 'slurm1' && h.state === 'idle'), 30_000, 'Slurm host');
  const n = 200;
  const slurm = await dispatch(s, book, 'slurm', 'slurm1', n);
  const peerDir = join(dir, 'sbatch-peer');
  execFileSync('mkdir', ['-p', peerDir]);
  const peer = n / timeShell(`cd "$1" && for i in $(seq ${n}); do sbatch -J peer-bench -o /dev/null --wrap true >/dev/null || exit 1; done;
    while [ -n "$(squeue -h -n peer-bench -o %i)" ]; do sleep 0.2; done`, [peerDir]);
  reportRate(`Slurm (${n} jobs)`, slurm.rate, 'sbatch --wrap per job, then wait', peer, 'jobs/s');
  await s.removeHost('slurm1');
} else {
  console.log('Slurm: skipped (IPP_TEST_SLURM not set; source scripts/test-slurm.sh)');
}

const left = book.count(PAGE_STATES.init);
console.log(`pages still INIT at the end: ${left} (of ${pages})`);
check(book.count(PAGE_STATES.done) === dispatched.get(book) && left === pages - dispatched.get(book)!, 'every job closed its own page, once');
await s.close();
rmSync(dir, { recursive: true, force: true });
