// pclient: the long-lived shell that pcontrol keeps on every host (through one ssh
// connection), running the commands it is sent. The original answered polls ("status") with
// the state of its one job; this one runs several jobs at once and pushes an event when each
// starts and ends, one JSON object per line each way:
//
//   in:  {"op":"job","id":7,"command":["prog","arg"],"nice":0,"env":{},"cwd":null,"out":true,"err":true,"limit":1048576}
//        {"op":"kill","id":7}   {"op":"ping","t":1}   {"op":"exit"}
//   out: {"ev":"hello","version":1,"host":"ipp004","pid":123,"cpus":8}
//        {"ev":"started","id":7,"handle":"4567"}
//        {"ev":"done","id":7,"outcome":"exit","status":0,"signal":null,"stdout":"...","stderr":"...","truncated":false,"reason":null}
//        {"ev":"pong","t":1}   {"ev":"error","message":"..."}
//
// When its input closes (the ssh connection or the scheduler is gone) it kills its jobs and
// exits, so no job outlives the scheduler that can no longer hear of it.
import { availableParallelism, hostname } from 'node:os';
import type { JobCommand, RunRequest } from './job.ts';
import { runProcess, type RunningProcess } from './process-runner.ts';

/** The protocol version pclient speaks. */
export const PCLIENT_VERSION = 1;

/** Longest line accepted either way (a job with a huge environment is still far below). */
export const MAX_LINE = 64 << 20;

/** A message to pclient. */
export type PclientRequest =
  | { op: 'job'; id: number; command: JobCommand; nice?: number; env?: Record<string, string>; cwd?: string | null; out?: boolean; err?: boolean; limit?: number }
  | { op: 'kill'; id: number }
  | { op: 'ping'; t?: number }
  | { op: 'exit' };

/** A message from pclient. */
export type PclientEvent =
  | { ev: 'hello'; version: number; host: string; pid: number; cpus: number }
  | { ev: 'started'; id: number; handle: string | null }
  | { ev: 'done'; id: number; outcome: 'exit' | 'crash'; status: number | null; signal: string | null; stdout: string; stderr: string; truncated: boolean; reason: string | null }
  | { ev: 'pong'; t?: number }
  | { ev: 'error'; message: string };

/** Splits a byte stream into lines; a line longer than `max` is reported as an error and skipped. */
export function lineSplitter(onLine: (line: string) => void, onTooLong: () => void, max = MAX_LINE): (chunk: Buffer) => void {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  return (chunk: Buffer) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) {
        if (!skipping) {
          parts.push(chunk.subarray(start));
          size += chunk.length - start;
          if (size > max) {
            skipping = true;
            parts = [];
            size = 0;
            onTooLong();
          }
        }
        return;
      }
      if (!skipping) {
        parts.push(chunk.subarray(start, nl));
        const line = Buffer.concat(parts).toString('utf8');
        parts = [];
        size = 0;
        if (line.trim() !== '') onLine(line);
      }
      skipping = false;
      start = nl + 1;
    }
  };
}

/** Where pclient reads and writes, and the environment its jobs start from. */
export interface PclientIo {
  readonly input: NodeJS.ReadableStream;
  readonly output: { write(s: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Ends pclient (killing its jobs) when aborted (SIGTERM, Ctrl-C). */
  readonly signal?: AbortSignal;
}

function checkJob(m: Record<string, unknown>): RunRequest | string {
  if (!Number.isSafeInteger(m.id) || (m.id as number) < 0) return 'job: id must be a whole number';
  const c = m.command;
  const okCommand = (typeof c === 'string' && c !== '') || (Array.isArray(c) && c.length > 0 && c.every((a) => typeof a === 'string'));
  if (!okCommand) return `job ${m.id}: command must be a non-empty string or list of strings`;
  const env = m.env ?? {};
  if (env === null || typeof env !== 'object' || Object.values(env).some((v) => typeof v !== 'string')) return `job ${m.id}: env must map names to strings`;
  if (m.cwd !== undefined && m.cwd !== null && typeof m.cwd !== 'string') return `job ${m.id}: cwd must be a string`;
  const nice = m.nice ?? 0;
  if (!Number.isInteger(nice)) return `job ${m.id}: nice must be a whole number`;
  const limit = m.limit ?? 1 << 20;
  if (!Number.isInteger(limit) || (limit as number) < 0) return `job ${m.id}: limit must be a whole number of bytes`;
  return {
    id: m.id as number, command: c as JobCommand, nice: nice as number, env: env as Record<string, string>,
    cwd: (m.cwd as string | null | undefined) ?? null, captureStdout: m.out !== false, captureStderr: m.err !== false,
    captureLimit: limit as number,
  };
}

/** Runs pclient until its input closes or it is told to exit; resolves with the exit code. */
export function runPclient(io: PclientIo): Promise<number> {
  const jobs = new Map<number, RunningProcess>();
  const send = (event: PclientEvent): void => {
    io.output.write(`${JSON.stringify(event)}\n`);
  };
  send({ ev: 'hello', version: PCLIENT_VERSION, host: hostname(), pid: process.pid, cpus: availableParallelism() });
  return new Promise<number>((resolve) => {
    let ended = false;
    const end = (code: number): void => {
      if (ended) return;
      ended = true;
      for (const job of jobs.values()) job.kill();
      jobs.clear();
      resolve(code);
    };
    const onLine = (line: string): void => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line) as Record<string, unknown>;
        if (m === null || typeof m !== 'object') throw new Error('not an object');
      } catch {
        send({ ev: 'error', message: `not a JSON request: ${line.slice(0, 200)}` });
        return;
      }
      switch (m.op) {
        case 'job': {
          const req = checkJob(m);
          if (typeof req === 'string') {
            send({ ev: 'error', message: req });
            return;
          }
          if (jobs.has(req.id)) {
            send({ ev: 'error', message: `job ${req.id} is running already` });
            return;
          }
          const running = runProcess(req, io.env, {
            started: (handle) => send({ ev: 'started', id: req.id, handle }),
            done: (r) => {
              jobs.delete(req.id);
              send({ ev: 'done', id: req.id, ...r, outcome: r.outcome === 'timeout' ? 'crash' : r.outcome });
            },
          });
          jobs.set(req.id, running);
          return;
        }
        case 'kill':
          jobs.get(m.id as number)?.kill();
          return;
        case 'ping':
          send({ ev: 'pong', t: m.t as number | undefined });
          return;
        case 'exit':
          end(0);
          return;
        default:
          send({ ev: 'error', message: `unknown op ${JSON.stringify(m.op)}; the ops are job, kill, ping, exit` });
      }
    };
    const split = lineSplitter(onLine, () => send({ ev: 'error', message: `a request line is longer than ${MAX_LINE} bytes; skipped` }));
    io.input.on('data', (chunk: Buffer | string) => split(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    io.input.on('end', () => end(0));
    io.input.on('close', () => end(0));
    io.input.on('error', () => end(1));
    if (io.signal?.aborted) end(130);
    io.signal?.addEventListener('abort', () => end(130), { once: true });
  });
}
