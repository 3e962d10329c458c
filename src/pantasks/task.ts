// Tasks: the rules for making jobs. A task is tried every `period` seconds: its exec returns
// a command (a job to start) or nothing (the original's `break`: no job this time). Options
// bound how many of its jobs may be out at once (npending), how many it makes ever (nmax),
// when it may run (trange), at which nice level, where (local, anyhost, a wanted or needed
// host), with which timeout, and where their output goes; handlers hear how each job ended.
import type { Logger } from '../common/index.ts';
import type { Books, Page } from './book.ts';
import { PantasksError } from './errors.ts';
import type { HostChoice, HostNeed, JobCommand, JobResult, JobSpec, OutputDestination } from './job.ts';
import { parseTimeRange, type TimeRange, type TimeRangeSpec } from './time-range.ts';

/** What a task's exec and handlers are given. */
export interface TaskContext {
  readonly books: Books;
  /** The time of this attempt, ms since the epoch. */
  readonly now: number;
  /** The processing labels this scheduler works on. */
  readonly labels: readonly string[];
  readonly log: Logger;
  /** The task's counters at this moment. */
  readonly task: TaskStatus;
  /** Aborted when the scheduler shuts down. */
  readonly signal: AbortSignal;
}

/** A finished job, as a task's handler sees it. */
export interface FinishedJob {
  readonly id: number;
  readonly task: string;
  readonly command: JobCommand;
  /** The page it worked on (already set to DONE, FAIL, CRASH or TIMEOUT; a handler may change it). */
  readonly page: Page | null;
  readonly data: unknown;
  readonly result: JobResult;
}

/** A handler of finished jobs. */
export type JobHandler = (job: FinishedJob, ctx: TaskContext) => void | Promise<void>;

/** The options of a task that can also be changed while it runs. */
export interface TaskOptions {
  /** Seconds between attempts (default 1; at least 0.005). */
  readonly period?: number;
  /** Jobs one attempt may make, calling exec again while it gives commands (default 1, as the original). */
  readonly burst?: number;
  /** Most jobs of this task out at once (0: no limit). */
  readonly npending?: number;
  /** Most jobs this task makes, ever (0: no limit). */
  readonly nmax?: number;
  /** Windows in which it may run. */
  readonly trange?: readonly TimeRangeSpec[];
  readonly nice?: number;
  /** Off: the task is not tried (its jobs out keep running). */
  readonly active?: boolean;
  /** `local` (default), `anyhost`, or a host name. */
  readonly host?: HostChoice;
  /** For a named host: wanted (default) or needed. */
  readonly hostNeed?: HostNeed;
  /** Seconds a job may run before it is killed and reported as timed out (0: none). */
  readonly timeout?: number;
  readonly stdout?: OutputDestination;
  readonly stderr?: OutputDestination;
}

/** A task as a task module defines it. */
export interface TaskDefinition extends TaskOptions {
  readonly name: string;
  /** Makes the next job, or declines with null. May be async (a database query). */
  exec?(ctx: TaskContext): JobSpec | null | undefined | Promise<JobSpec | null | undefined>;
  /** A fixed command, for a task without exec. */
  readonly command?: JobCommand;
  /** Any job that exited (with any status; 0 is success). */
  readonly onExit?: JobHandler;
  /** A job killed by a signal, or lost with its host too often. */
  readonly onCrash?: JobHandler;
  /** A job that ran past its timeout (hung) and was killed. */
  readonly onTimeout?: JobHandler;
}

/** A task's counters and options, for status. */
export interface TaskStatus {
  readonly name: string;
  readonly module: string | null;
  readonly active: boolean;
  readonly period: number;
  readonly burst: number;
  readonly npending: number;
  readonly nmax: number;
  readonly nice: number;
  readonly host: string;
  readonly hostNeed: HostNeed;
  readonly timeout: number;
  readonly trange: readonly string[];
  /** Whether the time windows allow it now. */
  readonly inWindow: boolean;
  /** Jobs made, ever. */
  readonly jobs: number;
  /** Jobs out now (queued or running). */
  readonly outstanding: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly crashed: number;
  readonly timedOut: number;
  /** Attempts where exec declined. */
  readonly declined: number;
  /** Exec or handler errors, and the last one. */
  readonly errors: number;
  readonly lastError: string | null;
}

/** Normalised options, with every default filled in. */
export interface ResolvedTaskOptions {
  period: number;
  burst: number;
  npending: number;
  nmax: number;
  ranges: TimeRange[];
  nice: number;
  active: boolean;
  host: string;
  hostNeed: HostNeed;
  timeout: number;
  stdout: OutputDestination;
  stderr: OutputDestination;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

function bad(task: string, message: string): PantasksError {
  return new PantasksError('pantasks_bad_task', `task ${task}: ${message}`);
}

function wholeNumber(task: string, name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(task, `${name} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not ${JSON.stringify(v)}`);
  return v;
}

function seconds(task: string, name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw bad(task, `${name} must be a number of seconds of at least ${min}, not ${JSON.stringify(v)}`);
  return v;
}

function destination(task: string, name: string, v: unknown): OutputDestination {
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string' || v === '') throw bad(task, `${name} must be a file path, null (drop it) or absent (keep it for the handlers)`);
  return v;
}

/** Checks a host choice. */
export function checkHost(task: string, host: unknown, need: unknown): { host: string; hostNeed: HostNeed } {
  if (typeof host !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/.test(host)) throw bad(task, `host must be local, anyhost or a host name, not ${JSON.stringify(host)}`);
  const h = host.toLowerCase() === 'local' ? 'local' : host.toLowerCase() === 'anyhost' ? 'anyhost' : host;
  if (need !== 'wanted' && need !== 'needed') throw bad(task, `hostNeed must be wanted or needed, not ${JSON.stringify(need)}`);
  if (need === 'needed' && (h === 'local' || h === 'anyhost')) throw bad(task, `hostNeed needed applies to a named host, not ${h}`);
  return { host: h, hostNeed: need };
}

/** Applies option changes over resolved options, checking each. */
export function resolveOptions(task: string, patch: TaskOptions, base?: ResolvedTaskOptions): ResolvedTaskOptions {
  if (patch === null || typeof patch !== 'object') throw bad(task, 'options must be an object');
  const known = new Set(['period', 'burst', 'npending', 'nmax', 'trange', 'nice', 'active', 'host', 'hostNeed', 'timeout', 'stdout', 'stderr']);
  const o: ResolvedTaskOptions = base ? { ...base, ranges: base.ranges } : {
    period: 1, burst: 1, npending: 0, nmax: 0, ranges: [], nice: 0, active: true, host: 'local', hostNeed: 'wanted', timeout: 0,
    stdout: undefined, stderr: undefined,
  };
  for (const key of Object.keys(patch)) {
    if (!known.has(key)) throw bad(task, `unknown option ${key}; the options are ${[...known].join(', ')}`);
  }
  if (patch.period !== undefined) o.period = seconds(task, 'period', patch.period, 0.005);
  if (patch.burst !== undefined) o.burst = wholeNumber(task, 'burst', patch.burst, 1, 100_000);
  if (patch.npending !== undefined) o.npending = wholeNumber(task, 'npending', patch.npending, 0);
  if (patch.nmax !== undefined) o.nmax = wholeNumber(task, 'nmax', patch.nmax, 0);
  if (patch.nice !== undefined) o.nice = wholeNumber(task, 'nice', patch.nice, -20, 19);
  if (patch.timeout !== undefined) o.timeout = seconds(task, 'timeout', patch.timeout, 0);
  if (patch.active !== undefined) {
    if (typeof patch.active !== 'boolean') throw bad(task, 'active must be true or false');
    o.active = patch.active;
  }
  if (patch.host !== undefined || patch.hostNeed !== undefined) {
    Object.assign(o, checkHost(task, patch.host ?? o.host, patch.hostNeed ?? (patch.host !== undefined ? 'wanted' : o.hostNeed)));
  }
  if (patch.trange !== undefined) {
    if (!Array.isArray(patch.trange)) throw bad(task, 'trange must be a list of windows');
    try {
      o.ranges = patch.trange.map((r) => parseTimeRange(r));
    } catch (error) {
      throw bad(task, (error as Error).message);
    }
  }
  if ('stdout' in patch) o.stdout = destination(task, 'stdout', patch.stdout);
  if ('stderr' in patch) o.stderr = destination(task, 'stderr', patch.stderr);
  return o;
}

/** Checks a definition and resolves its options; a clear error naming the task otherwise. */
export function checkTaskDefinition(def: TaskDefinition): ResolvedTaskOptions {
  if (def === null || typeof def !== 'object') throw new PantasksError('pantasks_bad_task', `a task must be an object with a name and an exec or a command, not ${JSON.stringify(def)}`);
  const name = def.name;
  if (typeof name !== 'string' || !NAME.test(name)) throw new PantasksError('pantasks_bad_task', `task name ${JSON.stringify(name)} must start with a letter and hold letters, digits, _ . : - (at most 64)`);
  if (def.exec !== undefined && typeof def.exec !== 'function') throw bad(name, 'exec must be a function');
  if (def.exec === undefined) {
    if (def.command === undefined) throw bad(name, 'give an exec function or a command');
    checkCommand(name, def.command);
  }
  for (const h of ['onExit', 'onCrash', 'onTimeout'] as const) {
    if (def[h] !== undefined && typeof def[h] !== 'function') throw bad(name, `${h} must be a function`);
  }
  const { name: _n, exec: _e, command: _c, onExit: _x, onCrash: _r, onTimeout: _t, ...options } = def;
  return resolveOptions(name, options);
}

/** Checks a command: a non-empty string, or a non-empty list of strings. */
export function checkCommand(task: string, command: unknown): JobCommand {
  if (typeof command === 'string' && command.trim() !== '') return command;
  if (Array.isArray(command) && command.length > 0 && command.every((a) => typeof a === 'string') && command[0] !== '') return command;
  throw bad(task, `a command must be a non-empty string (run by /bin/sh) or a list of strings, not ${JSON.stringify(command)}`);
}
