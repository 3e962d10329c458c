// What a job is: the command a task produced, where it may run, and how it ended.
import type { Page } from './book.ts';

/** A command: an argument vector run directly, or one string run by `/bin/sh -c`. */
export type JobCommand = string | readonly string[];

/** Where a task's jobs run: `local` (a child of the scheduler), `anyhost` (any pcontrol host), or a host's name. */
export type HostChoice = string;

/** Whether a named host is wanted (the job may go elsewhere when it is busy or down) or needed (the job waits for it). */
export type HostNeed = 'wanted' | 'needed';

/**
 * Where a stream of a job goes: undefined keeps it for the task's handlers (bounded), null
 * drops it, a path appends it to that file (and keeps it for the handlers too).
 */
export type OutputDestination = string | null | undefined;

/** What a task's exec returns to start a job; everything but the command defaults to the task's options. */
export interface JobSpec {
  readonly command: JobCommand;
  readonly host?: HostChoice;
  readonly hostNeed?: HostNeed;
  readonly nice?: number;
  /** Seconds before the job is killed and reported as timed out. */
  readonly timeout?: number;
  readonly stdout?: OutputDestination;
  readonly stderr?: OutputDestination;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** The page this job works on: set to RUN before the job starts, closed when it ends. */
  readonly page?: Page;
  /** Anything the task wants back in its handlers (the original's task `options`). */
  readonly data?: unknown;
}

/** A job's life: waiting for a slot, running, finished. */
export type JobState = 'pending' | 'busy' | 'done';

/** How a finished job ended: it exited (with a status), it was killed by a signal, or it ran past its timeout (hung). */
export type JobOutcome = 'exit' | 'crash' | 'timeout';

/** A finished job's account. */
export interface JobResult {
  readonly outcome: JobOutcome;
  /** The exit status (exit), or null. 127: the command was not found; 126: it could not be run. */
  readonly status: number | null;
  /** The signal that killed it (crash, timeout), or null. */
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when an output stream was longer than the capture limit and was cut. */
  readonly truncated: boolean;
  /** The host it ran on (`local` for the scheduler's own children). */
  readonly host: string;
  /** Why it ended abnormally, in words (`command not found: foo`, `host h1 went down`...). */
  readonly reason: string | null;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** A request to run one process, as the back-ends take it. */
export interface RunRequest {
  readonly id: number;
  readonly command: JobCommand;
  readonly nice: number;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | null;
  readonly captureStdout: boolean;
  readonly captureStderr: boolean;
  /** Bytes kept per stream. */
  readonly captureLimit: number;
}

/** Events a back-end reports for a job it was given. */
export interface RunEvents {
  /** The job runs; `handle` identifies it to the back-end (a pid, a Slurm job id). */
  started(handle: string | null): void;
  /** The job ended (the outcome is exit or crash; timeouts are the scheduler's). */
  done(result: Omit<JobResult, 'host' | 'startedAt' | 'endedAt'>): void;
}

/** The default bytes kept per output stream. */
export const DEFAULT_CAPTURE_LIMIT = 1 << 20;

/** The command as one line, for status and logs. */
export function commandText(command: JobCommand): string {
  if (typeof command === 'string') return command;
  return command.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}
