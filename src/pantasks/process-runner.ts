// Runs one command as a child process: in its own process group (so a timeout or a shutdown
// kills everything it started), at its nice level, with its output kept up to a limit. Used
// by the scheduler for local jobs and by pclient on every host.
import { spawn, type ChildProcess } from 'node:child_process';
import type { RunEvents, RunRequest } from './job.ts';

/** A running child: kill it (and its process group). */
export interface RunningProcess {
  readonly pid: number | null;
  kill(): void;
}

class Capture {
  readonly #limit: number;
  readonly #parts: Buffer[] = [];
  #size = 0;
  truncated = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(chunk: Buffer): void {
    if (this.#size >= this.#limit) {
      this.truncated = true;
      return;
    }
    const room = this.#limit - this.#size;
    if (chunk.length > room) {
      this.#parts.push(chunk.subarray(0, room));
      this.#size = this.#limit;
      this.truncated = true;
    } else {
      this.#parts.push(chunk);
      this.#size += chunk.length;
    }
  }

  text(): string {
    return this.#parts.length === 0 ? '' : Buffer.concat(this.#parts).toString('utf8');
  }
}

/** Kills a process group, or the process alone when it has none. */
export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  }
}

/**
 * Starts a request; reports `started` with the pid, then `done` once the process and its
 * output streams are closed. A command that cannot be started ends as a shell would report
 * it: status 127 when it does not exist, 126 when it cannot be run, with the reason on stderr.
 */
export function runProcess(req: RunRequest, baseEnv: Readonly<Record<string, string | undefined>>, events: RunEvents): RunningProcess {
  const command = typeof req.command === 'string' ? ['/bin/sh', '-c', req.command] : req.command;
  // nice(1) sets the level before the command starts; setting it after spawn would race the
  // command's first instructions.
  const argv = req.nice !== 0 ? ['nice', '-n', String(req.nice), ...command] : command;
  const out = req.captureStdout ? new Capture(req.captureLimit) : null;
  const err = req.captureStderr ? new Capture(req.captureLimit) : null;
  let child: ChildProcess;
  let finished = false;
  const finish = (status: number | null, signal: string | null, reason: string | null, extraErr = ''): void => {
    if (finished) return;
    finished = true;
    events.done({
      outcome: signal !== null ? 'crash' : 'exit', status, signal,
      stdout: out?.text() ?? '', stderr: (err?.text() ?? '') + extraErr,
      truncated: Boolean(out?.truncated || err?.truncated), reason,
    });
  };
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      cwd: req.cwd ?? undefined,
      env: Object.keys(req.env).length === 0 ? baseEnv : { ...baseEnv, ...req.env },
      stdio: ['ignore', out ? 'pipe' : 'ignore', err ? 'pipe' : 'ignore'],
      detached: true,
    });
  } catch (cause) {
    // Synchronous failures: a bad cwd type, an argument with a NUL byte.
    queueMicrotask(() => {
      events.started(null);
      finish(126, null, `cannot run ${argv[0]}: ${(cause as Error).message}`, `pantasks: cannot run ${argv[0]}: ${(cause as Error).message}\n`);
    });
    return { pid: null, kill: () => {} };
  }
  if (out) child.stdout!.on('data', (c: Buffer) => out.add(c));
  if (err) child.stderr!.on('data', (c: Buffer) => err.add(c));
  let spawned = false;
  child.once('spawn', () => {
    spawned = true;
    events.started(child.pid === undefined ? null : String(child.pid));
  });
  child.once('error', (e: NodeJS.ErrnoException) => {
    if (spawned) return;
    events.started(null);
    const missing = e.code === 'ENOENT';
    const why = missing ? `command not found: ${argv[0]}` : `cannot run ${argv[0]}: ${e.message}`;
    finish(missing ? 127 : 126, null, why, `pantasks: ${why}${req.cwd ? ` (in ${req.cwd})` : ''}\n`);
  });
  child.once('close', (code, signal) => {
    if (!spawned) return;
    finish(code, signal, signal ? `killed by ${signal}` : null);
  });
  return {
    get pid() {
      return child.pid ?? null;
    },
    kill: () => {
      if (child.pid !== undefined && !finished) killGroup(child.pid);
    },
  };
}
