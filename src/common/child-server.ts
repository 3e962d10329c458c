// A server program started as a child process, known by the URL it prints once it listens:
// what the demo, the benchmarks and the tests that kill servers all need. One place decides
// how the URL is read, how an early exit is reported, and how the server is stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { IppError } from './errors.ts';

/** What {@link startServerChild} is told. */
export interface ServerChildOptions {
  /** Where the URL is, in what the server prints: the first capture group (default: the first http:// URL). */
  readonly pattern?: RegExp;
  /** The child's environment (default: this process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called with the server's stderr as it comes (default: kept, and shown only if it fails to start). */
  readonly onStderr?: (text: string) => void;
  /** How long it may take to print its URL (default 60 s); then it is killed. */
  readonly timeoutMs?: number;
  /** How errors name it (default: the command line). */
  readonly what?: string;
}

/** A running server child. */
export interface ServerChild {
  readonly child: ChildProcess;
  readonly url: string;
  /** The first line the server printed (its "listening at" line). */
  readonly banner: string;
  /** Settles with the exit code (or the signal's name) when the process ends; listened for at spawn. */
  readonly exited: Promise<number | string | null>;
  /** The last 16 kB of the server's stderr (empty when onStderr takes it). */
  stderr(): string;
  /** Sends `signal` (default SIGTERM) unless it has ended, then waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const KEEP = 16_384;

/** Starts `command` (argv[0] is the program) and resolves once it prints its URL; rejects, with its stderr, if it ends first. */
export async function startServerChild(command: readonly string[], options: ServerChildOptions = {}): Promise<ServerChild> {
  const what = options.what ?? command.join(' ');
  const pattern = options.pattern ?? /(https?:\/\/[^\s)]+)/;
  const child = spawn(command[0]!, command.slice(1), {
    env: (options.env ?? process.env) as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    if (options.onStderr) options.onStderr(text);
    else err = (err + text).slice(-KEEP);
  });
  let out = '';
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        // Once the URL is known, the rest of stdout is drained and dropped.
        if (out.length > KEEP) return;
        out += text;
        const m = pattern.exec(out);
        if (m?.[1] !== undefined) resolve(m[1].replace(/[.,;]$/, ''));
      });
      child.once('error', (cause) => reject(new IppError('server_start_failed', `cannot start ${what}: ${cause.message}`, { cause })));
      void exited.then((code) => reject(new IppError('server_start_failed',
        `${what} ended (exit ${String(code)}) before it served${err.trim() ? `: ${err.trim().split('\n').slice(-5).join(' | ')}` : ''}`)));
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new IppError('server_start_failed', `${what} printed no URL within ${(options.timeoutMs ?? 60_000) / 1000} s; it was killed`));
      }, options.timeoutMs ?? 60_000);
    });
    return {
      child, url, exited,
      banner: out.split('\n')[0]!.trim(),
      stderr: () => err,
      async stop(signal: NodeJS.Signals = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
      },
    };
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
