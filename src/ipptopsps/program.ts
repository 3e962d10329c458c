// The program runner every ippToPsps program (queue, loader, pollodm, cleanup, metrics...)
// runs inside: it registers the program in the clients table, beats its heart, obeys pause and
// stop requests left there, turns the config argument (a name, `all`, `edit`) into configs
// re-read every cycle, repeats after `hours`, logs to stdout and a file, and always marks the
// client exited (claims, stripe and scratch released) however the program ends.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createLogger, UsageError, type Logger, type LogSink } from '../common/index.ts';
import type { Database } from '../db/index.ts';
import { IppToPspsError } from './errors.ts';
import { getConfig, listConfigs, type LoadingConfig } from './configs.ts';
import {
  heartbeatClient, markClientExited, registerClient, setClientItem, type ClientRecord, type ClientState,
} from './clients.ts';
import { editConfig, LineReader } from './prompt.ts';
import type { IppToPspsSettings } from './settings.ts';

/** How a program runs. */
export interface ProgramOptions {
  /** The program's name as the clients table and log file show it (`loader`, `queue`...). */
  readonly program: string;
  /** A config name, `all` (every active config, in turn) or `edit` (prompt, then run it). */
  readonly configArg: string;
  /** Run again this many hours after each pass (undefined: one pass). */
  readonly hours?: number;
  readonly db: Database;
  readonly settings: IppToPspsSettings;
  /** Its level is kept; lines go to `logSink` (default stdout) and the log file. */
  readonly log: Logger;
  /** Ctrl-C / SIGTERM. */
  readonly signal: AbortSignal;
  /** Answers for `edit`. */
  readonly stdin?: AsyncIterable<string | Uint8Array>;
  /** Prompts of `edit`, and log lines unless `logSink` is given. */
  readonly stdout: { write(s: string): unknown };
  /** Where log lines go besides the file (e.g. stderr when stdout carries --json). */
  readonly logSink?: LogSink;
  /** A log directory overriding the settings' `logDir`. */
  readonly logDir?: string;
  readonly host?: string;
  readonly pid?: number;
  /** Heartbeat period (default 5 s). Requests are seen within one period. */
  readonly heartbeatMs?: number;
  /** Lease of an item claim, extended by every heartbeat (default 60 s). */
  readonly leaseMs?: number;
}

/** What a program body gets besides its config. */
export interface ProgramContext {
  readonly client: ClientRecord;
  readonly db: Database;
  readonly settings: IppToPspsSettings;
  readonly log: Logger;
  /** Aborted on a stop request, Ctrl-C or SIGTERM: finish or abandon the current unit, then return. */
  readonly signal: AbortSignal;
  readonly host: string;
  readonly pid: number;
  /** The lease an item claim gets (ms); heartbeats extend it. */
  readonly leaseMs: number;
  /** True once the program should stop. */
  readonly stopping: boolean;
  /** Call between units of work: waits while paused; false when the program should stop. */
  checkpoint(): Promise<boolean>;
  /** The config as stored now (programs pick up edits made while they run). */
  refreshConfig(name: string): Promise<LoadingConfig>;
  /** Records the item being worked on in the clients table (null: none). */
  setCurrentItem(itemId: number | null): Promise<void>;
}

/** A program's work for one config in one pass; `'stop'` ends the program after it. */
export type ProgramBody = (config: LoadingConfig, ctx: ProgramContext) => Promise<void | 'stop'>;

/** How a program ended. */
export interface ProgramResult {
  readonly clientId: number;
  /** Passes over the configs completed. */
  readonly passes: number;
  readonly endedBy: 'done' | 'stop_request' | 'interrupted';
  readonly logPath?: string;
  /** The configs the program ran with, in the last pass. */
  readonly configs: readonly string[];
}

/**
 * Runs a program: edit first when asked, register, then pass over the configs (re-read each
 * pass), repeating after `hours` until stopped. Resolves when it ends cleanly (stop request,
 * Ctrl-C/SIGTERM, or its work done); rejects with the body's error otherwise, after marking
 * the client exited.
 */
export async function runProgram(options: ProgramOptions, body: ProgramBody): Promise<ProgramResult> {
  const { db, settings, program } = options;
  const host = options.host ?? hostname();
  const pid = options.pid ?? process.pid;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const leaseMs = options.leaseMs ?? 60_000;
  if (options.hours !== undefined && !(options.hours > 0 && Number.isFinite(options.hours))) {
    throw new UsageError(`hours must be a positive number, not ${options.hours}`);
  }

  let configArg = options.configArg;
  if (configArg === 'edit') {
    if (!options.stdin) throw new UsageError(`${program} edit asks questions, but there is no input to read answers from`);
    const input = new LineReader(options.stdin);
    try {
      configArg = (await editConfig(db, { input, output: options.stdout })).name;
    } finally {
      await input.close();
    }
  } else if (configArg !== 'all') {
    await getConfig(db, configArg);
  }

  const logDir = options.logDir ?? settings.logDir;
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9._+-]/g, '_');
  const logPath = logDir ? join(logDir, `${safe(program)}_${safe(configArg)}_${safe(host)}_${pid}.log`) : undefined;
  let logFd: number | undefined;
  if (logPath) {
    try {
      mkdirSync(logDir!, { recursive: true });
      logFd = openSync(logPath, 'a');
    } catch (cause) {
      throw new IppToPspsError('log_unwritable', `cannot open the log file ${logPath}: ${(cause as Error).message}`, { cause });
    }
  }
  const sinks: LogSink[] = [options.logSink ?? options.stdout];
  if (logFd !== undefined) {
    const fd = logFd;
    sinks.push({ write: (s: string) => { try { writeSync(fd, s); } catch { /* a full disk must not stop the program */ } } });
  }
  const log = createLogger({ level: options.log.level, sinks, component: program });

  const stop = new AbortController();
  let endedBy: ProgramResult['endedBy'] = 'done';
  const onOuterAbort = (): void => {
    if (endedBy === 'done') endedBy = 'interrupted';
    stop.abort(options.signal.reason);
  };
  if (options.signal.aborted) onOuterAbort();
  else options.signal.addEventListener('abort', onOuterAbort, { once: true });

  const client = await registerClient(db, { program, config: configArg, host, pid, logPath });
  log.info(`started: client ${client.client_id}, config ${configArg}, host ${host}, pid ${pid}${logPath ? `, log ${logPath}` : ''}`);

  let state: ClientState = 'running';
  let wake: (() => void) | undefined;
  const wakeUp = (): void => { const w = wake; wake = undefined; w?.(); };
  stop.signal.addEventListener('abort', wakeUp, { once: true });

  const beat = async (): Promise<void> => {
    try {
      const row = await heartbeatClient(db, client.client_id, { leaseMs });
      if (row.state !== state) {
        if (row.state === 'stopped' && !stop.signal.aborted) {
          log.info('stop requested in the clients table: finishing');
          if (endedBy === 'done') endedBy = 'stop_request';
          stop.abort(new IppToPspsError('stop_requested', 'stop requested in the clients table'));
        } else if (row.state === 'paused') log.info('paused (clients table); waiting for resume');
        else if (row.state === 'running' && state === 'paused') log.info('resumed');
        state = row.state;
        wakeUp();
      }
    } catch (error) {
      log.warn(`heartbeat failed: ${(error as Error).message}`);
    }
  };
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => { beating = beating.then(beat); }, heartbeatMs);

  const ctx: ProgramContext = {
    client, db, settings, log, signal: stop.signal, host, pid, leaseMs,
    get stopping() { return stop.signal.aborted; },
    async checkpoint() {
      while (state === 'paused' && !stop.signal.aborted) {
        await new Promise<void>((resolve) => { wake = resolve; });
      }
      return !stop.signal.aborted;
    },
    refreshConfig: (name) => getConfig(db, name),
    setCurrentItem: (itemId) => setClientItem(db, client.client_id, itemId),
  };

  let passes = 0;
  let lastConfigs: string[] = [];
  let failure: unknown;
  try {
    await beat();
    for (;;) {
      if (!(await ctx.checkpoint())) break;
      const configs = configArg === 'all' ? await listConfigs(db, { activeOnly: true }) : [await getConfig(db, configArg)];
      lastConfigs = configs.map((c) => c.name);
      if (configArg === 'all' && configs.length === 0) log.warn('no active configs');
      let stopAfter = false;
      const errors: unknown[] = [];
      for (const config of configs) {
        if (!(await ctx.checkpoint())) break;
        try {
          if ((await body(config, ctx)) === 'stop') stopAfter = true;
        } catch (error) {
          if (stop.signal.aborted && isAbort(error)) break;
          if (options.hours === undefined && configArg !== 'all') throw error;
          log.error(`config ${config.name}: ${(error as Error).message}`);
          errors.push(error);
        }
      }
      if (stop.signal.aborted) break;
      passes++;
      if (stopAfter || options.hours === undefined) {
        if (errors.length) throw errors[0];
        break;
      }
      log.info(`pass ${passes} done; next in ${options.hours} h`);
      await sleepUnlessStopped(options.hours * 3_600_000, stop.signal);
    }
  } catch (error) {
    failure = error;
  } finally {
    clearInterval(timer);
    options.signal.removeEventListener('abort', onOuterAbort);
    await beating.catch(() => undefined);
    const detail = failure !== undefined ? `failed: ${(failure as Error).message}` : endedBy;
    try {
      await markClientExited(db, client.client_id, detail);
    } catch (error) {
      log.warn(`could not mark client ${client.client_id} exited: ${(error as Error).message}`);
    }
    log.info(`exited (${detail})`);
    if (logFd !== undefined) closeSync(logFd);
  }
  if (failure !== undefined) throw failure;
  return { clientId: client.client_id, passes, endedBy, configs: lastConfigs, ...(logPath ? { logPath } : {}) };
}

/** True for the error an aborted wait or operation throws. */
export function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR'
    || (error instanceof IppToPspsError && error.code === 'stop_requested'));
}

/** Waits `ms`, or less when the signal aborts; never throws. */
export function sleepUnlessStopped(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
