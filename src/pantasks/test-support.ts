// Helpers for the scheduler's tests and benchmarks: a scheduler on a fresh SQLite database in
// a temporary directory, the commands that start pclient here, and interval arithmetic.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, startServerChild, withTempDir, type Logger } from '../common/index.ts';
import { openDatabase } from '../db/index.ts';
import { defineRun, openGpc1, registerExposures } from '../gpc1/index.ts';
import { Scheduler, type SchedulerOptions } from './scheduler.ts';
import { stageTasks, type StageTasksConfig } from './stage-tasks.ts';
import type { FinishedJob } from './task.ts';
import type { JobResult } from './job.ts';

/** `ipp pclient` as installed here: node running the CLI. */
export const CLI_PCLIENT: readonly string[] = [process.execPath, join(import.meta.dirname, '..', 'cli', 'main.ts'), 'pclient'];

/** A lighter pclient for tests on this machine (no CLI to load): the same protocol. */
export const FIXTURE_PCLIENT: readonly string[] = [process.execPath, join(import.meta.dirname, 'pclient.fixture.ts')];

/** A logger for tests: quiet unless PANTASKS_TEST_LOG names a level. */
export function testLogger(): Logger {
  const level = process.env.PANTASKS_TEST_LOG;
  return level ? createLogger({ level: level as 'debug' }) : createLogger({ level: 'error', sinks: [] });
}

/** Runs `fn` with a scheduler on a new SQLite database in a temp dir; closes it after. */
export async function withScheduler<T>(fn: (s: Scheduler, dir: string) => Promise<T>, options: Partial<SchedulerOptions> = {}): Promise<T> {
  return withTempDir(async (dir) => {
    const s = await Scheduler.open({
      db: `sqlite:${join(dir, 'pantasks.db')}`, log: testLogger(), env: process.env, localPclient: FIXTURE_PCLIENT,
      reconnectDelay: 200, ...options,
    });
    try {
      return await fn(s, dir);
    } finally {
      await s.close();
    }
  }, 'ipp-pantasks-');
}

/** Collects the finished jobs of some tasks. */
export function collect(s: Scheduler): { jobs: FinishedJob[]; of(task: string): FinishedJob[] } {
  const jobs: FinishedJob[] = [];
  s.onJobDone((j) => jobs.push(j));
  return { jobs, of: (task) => jobs.filter((j) => j.task === task) };
}

/** The most intervals open at one moment. */
export function maxOverlap(results: readonly Pick<JobResult, 'startedAt' | 'endedAt'>[]): number {
  const events: [number, number][] = [];
  for (const r of results) events.push([r.startedAt, 1], [r.endedAt, -1]);
  // Ends sort before starts at the same instant: back-to-back jobs do not overlap.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of events) {
    open += d;
    most = Math.max(most, open);
  }
  return most;
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** HH:MM:SS (UTC) of now plus `seconds`. */
export function clockIn(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString().slice(11, 19);
}

/** The stand-in for the pixel programs (stand-in.ts). */
export const STAND_IN = join(import.meta.dirname, 'stand-in.ts');

/** What a simulated night should be and where it runs. */
export interface NightOptions {
  readonly scheduler: Scheduler;
  readonly dir: string;
  readonly gpc1: string;
  readonly exposures: number;
  readonly chips: readonly string[];
  readonly skycells: readonly string[];
  /** Where the stage jobs run: local, anyhost, or a host name. */
  readonly host: string;
  /** About one component in this many faults once (0: none). */
  readonly faultEvery: number;
  readonly timeoutMs: number;
  /** Extra arguments for the stand-in (e.g. --sleep MS). */
  readonly extra?: readonly string[];
}

/** One line of the stand-in's log. */
export interface StandInLine {
  readonly stage: string;
  readonly id: number;
  readonly component: string;
  readonly what: string;
}

/** Reads the stand-in's log. */
export async function readStandInLog(file: string): Promise<StandInLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '').map((l) => {
    const [stage, id, component, what] = l.split(' ');
    return { stage: stage!, id: Number(id), component: component!, what: what! };
  });
}

/** Registers the night's exposures and their chip runs (label night, chain to warp). */
export async function registerNight(gpc1: string, exposures: number, chips: readonly string[]): Promise<number[]> {
  const db = await openGpc1(gpc1);
  try {
    const ids = await registerExposures(db, Array.from({ length: exposures }, (_, i) => ({
      exp_name: `o6000g${String(i).padStart(4, '0')}o`, camera: 'GPC1', telescope: 'PS1', filter: 'r.00000', exp_type: 'object',
      imfiles: chips.map((class_id) => ({ class_id, uri: null })),
    })));
    await defineRun(db, 'chip', { exp_ids: ids, label: 'night', end_stage: 'warp', tess_id: 'RINGS.V3' });
    return ids;
  } finally {
    await db.close();
  }
}

/** The stage-task configuration of a night whose jobs run the stand-in. */
export function nightConfig(o: Pick<NightOptions, 'dir' | 'gpc1' | 'skycells' | 'host' | 'faultEvery' | 'extra'>): StageTasksConfig {
  const base = [process.execPath, STAND_IN, '--db', '{gpc1}', '--stage', '{stage}', '--id', '{id}', '--log', join(o.dir, 'stand-in.log'), ...(o.extra ?? [])];
  const command = [...base, '--component={component}', ...(o.faultEvery > 0 ? ['--fault-every', String(o.faultEvery), '--fault-dir', join(o.dir, 'faults')] : [])];
  const job = { host: o.host, npending: 6, burst: 6, timeout: 120 };
  return {
    gpc1: o.gpc1, loadPeriod: 0.2, runPeriod: 0.05, revertPeriod: 0.4, advancePeriod: 0.25,
    stages: {
      chip: { command, ...job }, camera: { command, ...job }, fake: { command, ...job },
      warp: { command, mapCommand: [...base, '--map', o.skycells.join(',')], ...job },
    },
  };
}

/** The runs of each chain stage, by exposure, with their states. */
export async function chainRuns(gpc1: string): Promise<{ stage: string; exp_id: number; id: number; state: string }[]> {
  // Read-only and without migrations: a second SQLite connection of this process that asked
  // for the write lock would wait synchronously for the stage tasks' connection, which can
  // only let go when this process runs again.
  const db = await openDatabase(gpc1);
  try {
    return (await db.all<{ stage: string; exp_id: number; id: number; state: string }>(`
      SELECT 'chip' AS stage, c.exp_id, c.chip_id AS id, c.state FROM chipRun c
      UNION ALL SELECT 'camera', c.exp_id, m.cam_id, m.state FROM camRun m JOIN chipRun c ON c.chip_id = m.chip_id
      UNION ALL SELECT 'fake', c.exp_id, f.fake_id, f.state FROM fakeRun f JOIN camRun m ON m.cam_id = f.cam_id JOIN chipRun c ON c.chip_id = m.chip_id
      UNION ALL SELECT 'warp', c.exp_id, w.warp_id, w.state FROM warpRun w JOIN fakeRun f ON f.fake_id = w.fake_id
        JOIN camRun m ON m.cam_id = f.cam_id JOIN chipRun c ON c.chip_id = m.chip_id`)).map((r) => ({ ...r, exp_id: Number(r.exp_id), id: Number(r.id) }));
  } finally {
    await db.close();
  }
}

/** Loads the stage tasks, runs until every exposure's warp run is full, and stops trying tasks. */
export async function runNight(o: NightOptions): Promise<void> {
  const s = o.scheduler;
  await registerNight(o.gpc1, o.exposures, o.chips);
  const closers: (() => Promise<void> | void)[] = [];
  for (const t of stageTasks(nightConfig(o), { books: s.books, onClose: (fn) => closers.push(fn) })) s.addTask(t);
  try {
    await s.addLabels(['night']);
    await s.run();
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      const runs = await chainRuns(o.gpc1);
      if (runs.filter((r) => r.stage === 'warp' && r.state === 'full').length === o.exposures) break;
      if (Date.now() > deadline) throw new Error(`the night did not finish in ${o.timeoutMs} ms: ${JSON.stringify(runs)}; ${JSON.stringify(s.status().tasks.filter((t) => t.errors || t.failed || t.crashed))}`);
      await sleep(250);
    }
    await s.stop();
    await s.until(() => s.status().jobs.pending + s.status().jobs.busy === 0, 30_000, 'the last jobs');
  } finally {
    for (const fn of closers) await fn();
  }
}

/** A pantasks server running as its own process (`ipp pantasks server`), to be killed with -9. */
export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  /** What it wrote to stderr so far (the last 16 kB). */
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `ipp pantasks server` on a database and waits for the URL it prints. */
export async function startServerProcess(db: string, extra: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<ServerProcess> {
  const server = await startServerChild([process.execPath, join(import.meta.dirname, '..', 'cli', 'main.ts'), 'pantasks', 'server', '--db', db, ...extra], {
    env, pattern: /listening at (\S+)/, what: 'ipp pantasks server',
  });
  return { url: server.url, pid: server.child.pid!, log: () => server.stderr(), kill: (signal = 'SIGKILL') => server.stop(signal) };
}
