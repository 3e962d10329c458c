// Test support for the command tests: run `ipp` in this process with its output captured.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { runApp } from './app.ts';
import { rootGroup } from './registry.ts';

/** What one `ipp` run printed, and its exit code. */
export interface IppRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command still running (a server): its output so far, and its exit code when it ends. */
export interface IppProcess {
  stdout(): string;
  stderr(): string;
  readonly done: Promise<number>;
}

/** Options of {@link startIpp}. */
export interface IppOptions {
  /** The environment the command sees (default: none). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Aborting it is Ctrl-C. */
  readonly signal?: AbortSignal;
  /** What the user types, line by line (for interactive prompts). */
  readonly input?: readonly string[];
}

/** Starts `ipp ARGS...` in this process and returns at once (for servers, stopped by the signal). */
export function startIpp(args: readonly string[], options: IppOptions = {}): IppProcess {
  // Real streams: some commands pipe into stdout and wait for it to drain.
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  err.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const done = runApp(rootGroup, args, {
    stdout: out,
    stderr: err,
    env: options.env ?? {},
    ...(options.input ? { stdin: Readable.from(options.input.map((l) => `${l}\n`)) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs `ipp ARGS...` in this process to the end, with the environment given (default: none). */
export async function runIpp(args: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Promise<IppRun> {
  const run = startIpp(args, { env });
  const code = await run.done;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/**
 * Runs `ipp neb serve` (SQLite in `dir`, token `tok`, a free port) until `fn` is done and
 * gives `fn` the server's URL; checks that it stops cleanly.
 */
export async function withNebServer(dir: string, fn: (url: string) => Promise<void>): Promise<void> {
  const stop = new AbortController();
  const serve = startIpp(['neb', 'serve', '--db', `sqlite:${join(dir, 'neb.db')}`, '--port', '0', '--token', 'tok', '--log-level', 'warn'], { signal: stop.signal });
  let url: string | undefined;
  for (let i = 0; i < 500 && !url; i++) {
    url = /serving at (http:\/\/\S+)/.exec(serve.stdout())?.[1];
    if (!url) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(url, `serve printed its URL: ${serve.stdout()} ${serve.stderr()}`);
  try {
    await fn(url);
  } finally {
    stop.abort();
    assert.equal(await serve.done, 0);
    assert.match(serve.stdout(), /nebulous: stopped/);
  }
}
