// pantasks: the loop that tries every task, turns what their exec returns into jobs, runs
// them (as its own children for `local`, through pcontrol otherwise) and hands each finished
// job back to its task. One pass (a tick) goes: finished jobs to their tasks and pages; every
// task that is due tried (up to its burst, within npending, nmax and its time windows); the
// books' changes written in one transaction; only then the new jobs started. So a page is RUN
// in the database before its job exists, and a restart knows every page that may have one.
//
// After a restart (a server killed with -9 included): local jobs of the earlier life are
// found by the marker in their environment and killed; pages in RUN whose jobs are gone go
// back to INIT and their books are marked stale (a stage task refreshes them from the
// processing database before running them again); Slurm jobs that still run are taken back.
import { appendFile, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/index.ts';
import { parseDbUrl } from '../db/index.ts';
import { Books, FINISHED_STATES, PAGE_STATES, type Page } from './book.ts';
import { BookStore } from './book-store.ts';
import { Controller, type ControlledJob, type HostStatus } from './controller.ts';
import { PantasksError } from './errors.ts';
import { checkHostConfig, createHostDriver, defaultSlots, type HostConfig } from './hosts.ts';
import { commandText, DEFAULT_CAPTURE_LIMIT, type HostNeed, type JobCommand, type JobResult, type JobSpec, type JobState, type OutputDestination, type RunRequest } from './job.ts';
import { LocalLauncher, launcherAvailable } from './local-launcher.ts';
import { killGroup, runProcess, type RunningProcess } from './process-runner.ts';
import { Queue } from './queue.ts';
import {
  checkCommand, checkHost, checkTaskDefinition, resolveOptions, type FinishedJob, type ResolvedTaskOptions,
  type TaskContext, type TaskDefinition, type TaskOptions, type TaskStatus,
} from './task.ts';
import { countTimeRangeRun, timeRangesAllow } from './time-range.ts';

/** The environment variable that marks a job's processes with its scheduler and job id. */
export const JOB_MARKER = 'IPP_PANTASKS_JOB';

/**
 * Marks the scheduler's own children (local jobs) with its instance: a restarted scheduler
 * kills the processes that carry it. Jobs on hosts do not carry it, since a Slurm job on
 * this same machine may outlive the scheduler on purpose.
 */
export const LOCAL_MARKER = 'IPP_PANTASKS_LOCAL';

/** Options of {@link Scheduler.open}. */
export interface SchedulerOptions {
  /** The scheduler's own database (books, hosts, modules): `sqlite:...` or `postgres://...`. */
  readonly db: string;
  readonly log: Logger;
  /** The environment jobs and ssh start from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Processing labels the stage tasks work on. */
  readonly labels?: readonly string[];
  /** Most local jobs running at once (default 64); more wait as pending. */
  readonly maxLocalJobs?: number;
  /**
   * Start local jobs through Perl launchers (default, where /usr/bin/perl exists) rather than from
   * the scheduler's own process: several times faster (see local-launcher.ts).
   */
  readonly localLaunchers?: number | false;
  /** Bytes of stdout and of stderr kept per job (default 1 MiB). */
  readonly captureLimit?: number;
  /** The command that starts pclient on this machine (pclient hosts; default `ipp pclient` from PATH). */
  readonly localPclient?: readonly string[];
  /** Where Slurm hosts spool by default (default: beside an SQLite database, or the temp dir). */
  readonly spoolRoot?: string;
  /** pcontrol: starts per job before host losses end it (default 3), first reconnect delay (ms). */
  readonly maxAttempts?: number;
  readonly reconnectDelay?: number;
  /** pclient: ms to wait for its hello, and between pings. */
  readonly connectTimeout?: number;
  readonly pingInterval?: number;
  /** Loads a task module (the server passes the module loader; tests may pass definitions). */
  readonly loadModule?: (module: string, config: unknown, scheduler: Scheduler) => Promise<ModuleLoad>;
  /** Jobs kept in the finished-jobs history (default 1000). */
  readonly history?: number;
}

/** What loading a module gave: its tasks, and what to run when it is unloaded. */
export interface ModuleLoad {
  readonly tasks: readonly TaskDefinition[];
  readonly close?: () => Promise<void> | void;
}

/** A job, as status shows it. */
export interface JobStatus {
  readonly id: number;
  readonly task: string;
  readonly state: JobState;
  readonly host: string;
  readonly command: string;
  readonly page: string | null;
  readonly handle: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  /** Why a pending job waits. */
  readonly waiting: string | null;
  /** For finished jobs: how it ended. */
  readonly outcome: string | null;
  readonly status: number | null;
  readonly reason: string | null;
}

/** A loaded module, as status shows it. */
export interface ModuleStatus {
  readonly module: string;
  readonly tasks: readonly string[];
  readonly error: string | null;
}

/** A book, as status shows it. */
export interface BookStatus {
  readonly name: string;
  readonly pages: number;
  readonly states: Readonly<Record<string, number>>;
  readonly stale: boolean;
}

/** The whole scheduler, as status shows it. */
export interface SchedulerStatus {
  readonly instance: string;
  readonly running: boolean;
  readonly labels: readonly string[];
  readonly tasks: readonly TaskStatus[];
  readonly hosts: readonly HostStatus[];
  readonly books: readonly BookStatus[];
  readonly modules: readonly ModuleStatus[];
  readonly jobs: { readonly pending: number; readonly busy: number; readonly submitted: number; readonly finished: number };
  /** Time spent in the scheduler's own passes, µs per job made (bookkeeping, not the jobs). */
  readonly overheadPerJobUs: number;
}

interface TaskRecord {
  readonly def: TaskDefinition;
  options: ResolvedTaskOptions;
  module: string | null;
  jobs: number;
  outstanding: number;
  succeeded: number;
  failed: number;
  crashed: number;
  timedOut: number;
  declined: number;
  errors: number;
  lastError: string | null;
  nextAttempt: number;
}

interface Job {
  readonly id: number;
  readonly task: string;
  readonly command: JobCommand;
  readonly host: string;
  readonly need: HostNeed;
  readonly page: Page | null;
  readonly data: unknown;
  readonly timeout: number;
  readonly stdout: OutputDestination;
  readonly stderr: OutputDestination;
  readonly req: RunRequest;
  readonly createdAt: number;
  state: JobState;
  ranOn: string;
  handle: string | null;
  startedAt: number | null;
  timer: NodeJS.Timeout | null;
  timedOut: boolean;
  finished: boolean;
  local: RunningProcess | null;
  controlled: ControlledJob | null;
}

interface FinishedRecord {
  readonly job: Job;
  readonly result: JobResult;
}

/** The scheduler: tasks, books, jobs, pcontrol. */
export class Scheduler {
  readonly books = new Books();
  readonly controller: Controller;
  readonly store: BookStore;
  readonly #o: SchedulerOptions;
  readonly #log: Logger;
  readonly #tasks = new Map<string, TaskRecord>();
  readonly #jobs = new Map<number, Job>();
  readonly #finished: FinishedRecord[] = [];
  readonly #localQueue = new Queue<Job>();
  readonly #history: JobStatus[] = [];
  readonly #modules = new Map<string, { config: unknown; tasks: string[]; error: string | null; close?: () => Promise<void> | void }>();
  readonly #hostConfigs = new Map<string, HostConfig>();
  readonly #labels: string[];
  readonly #abort = new AbortController();
  readonly #baseEnv: Readonly<Record<string, string | undefined>>;
  readonly #doneListeners = new Set<(job: FinishedJob) => void>();
  #launcher: LocalLauncher | null = null;
  #localRunning = 0;
  #jobSeq = 0;
  #running = false;
  #closed = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #kicked = false;
  #submitted = 0;
  #finishedCount = 0;
  #busyNs = 0n;

  private constructor(options: SchedulerOptions, store: BookStore) {
    this.#o = options;
    this.#log = options.log;
    this.store = store;
    this.#labels = [];
    this.#baseEnv = Object.freeze({ ...options.env });
    this.controller = new Controller({
      log: options.log.child('pcontrol'), onChange: () => this.#kick(),
      maxAttempts: options.maxAttempts, reconnectDelay: options.reconnectDelay,
    });
  }

  /**
   * Opens the scheduler's database and recovers from an earlier life: books read back, hosts
   * added again, modules loaded again, jobs of pages in RUN adopted or their pages reset.
   * The loop starts at once; tasks are tried only while the scheduler runs (see {@link run}).
   */
  static async open(options: SchedulerOptions): Promise<Scheduler> {
    const store = await BookStore.open(options.db);
    const s = new Scheduler(options, store);
    try {
      await s.#recover();
    } catch (error) {
      await s.controller.close();
      await store.close();
      throw error;
    }
    s.#loop = s.#runLoop();
    return s;
  }

  /** This scheduler's id (carried by its jobs). */
  get instance(): string {
    return this.store.instance;
  }

  /** The labels the stage tasks work on. */
  get labels(): readonly string[] {
    return this.#labels;
  }

  /** Whether tasks are being tried. */
  get running(): boolean {
    return this.#running;
  }

  /** Starts trying tasks (the original's `run`). */
  async run(): Promise<void> {
    this.#running = true;
    await this.store.setMeta('running', 'true');
    this.#kick();
  }

  /** Stops trying tasks; jobs out keep running and their ends are still handled. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.store.setMeta('running', 'false');
  }

  /** Adds labels; returns the labels. */
  async addLabels(labels: readonly string[]): Promise<readonly string[]> {
    for (const l of labels) {
      if (typeof l !== 'string' || !/^[A-Za-z0-9_.:+-]{1,64}$/.test(l)) throw new PantasksError('pantasks_bad_option', `label ${JSON.stringify(l)} must be 1-64 letters, digits, _ . : + -`);
      if (!this.#labels.includes(l)) this.#labels.push(l);
    }
    await this.store.setMeta('labels', JSON.stringify(this.#labels));
    this.#kick();
    return this.#labels;
  }

  /** Removes labels; returns the labels. */
  async removeLabels(labels: readonly string[]): Promise<readonly string[]> {
    for (const l of labels) {
      const at = this.#labels.indexOf(l);
      if (at >= 0) this.#labels.splice(at, 1);
    }
    await this.store.setMeta('labels', JSON.stringify(this.#labels));
    return this.#labels;
  }

  /** Adds (or replaces) a task. */
  addTask(def: TaskDefinition, module: string | null = null): void {
    const options = checkTaskDefinition(def);
    const old = this.#tasks.get(def.name);
    this.#tasks.set(def.name, {
      def, options, module, jobs: old?.jobs ?? 0, outstanding: old?.outstanding ?? 0, succeeded: old?.succeeded ?? 0, failed: old?.failed ?? 0,
      crashed: old?.crashed ?? 0, timedOut: old?.timedOut ?? 0, declined: 0, errors: 0, lastError: null, nextAttempt: 0,
    });
    this.#kick();
  }

  /** Removes a task; its jobs out run to their end (their pages are still closed). */
  removeTask(name: string): void {
    if (!this.#tasks.delete(name)) throw this.#unknownTask(name);
  }

  /** Changes options of a running task (active, npending, nmax, period, trange, host...). */
  setTaskOptions(name: string, patch: TaskOptions): TaskStatus {
    const t = this.#tasks.get(name);
    if (!t) throw this.#unknownTask(name);
    t.options = resolveOptions(name, patch, t.options);
    t.nextAttempt = 0;
    this.#kick();
    return this.#taskStatus(t, Date.now());
  }

  /** Loads a task module (again): its old tasks are replaced; an error leaves the old ones. */
  async loadModule(module: string, config: unknown = {}): Promise<ModuleStatus> {
    if (!this.#o.loadModule) throw new PantasksError('pantasks_task_module_failed', 'this scheduler was opened without a module loader');
    let load: ModuleLoad;
    try {
      load = await this.#o.loadModule(module, config, this);
      for (const def of load.tasks) checkTaskDefinition(def);
      const names = load.tasks.map((d) => d.name);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup) {
        await load.close?.();
        throw new PantasksError('pantasks_duplicate_task', `task module ${module} defines task ${dup} twice`);
      }
    } catch (error) {
      const message = error instanceof PantasksError ? error.message : `task module ${module} failed: ${(error as Error)?.message ?? String(error)}`;
      const old = this.#modules.get(module);
      if (old) old.error = message;
      else this.#modules.set(module, { config, tasks: [], error: message });
      throw error instanceof PantasksError ? error : new PantasksError('pantasks_task_module_failed', message, { cause: error });
    }
    await this.#unloadModule(module);
    const names = load.tasks.map((d) => d.name);
    for (const def of load.tasks) this.addTask(def, module);
    this.#modules.set(module, { config, tasks: names, error: null, close: load.close });
    await this.#saveModules();
    return { module, tasks: names, error: null };
  }

  /** Unloads a module: its tasks go (their jobs out run to their end). */
  async unloadModule(module: string): Promise<void> {
    if (!this.#modules.has(module)) throw new PantasksError('pantasks_task_module_failed', `no module ${module} is loaded`);
    await this.#unloadModule(module);
    this.#modules.delete(module);
    await this.#saveModules();
  }

  /** Adds a host to pcontrol (and remembers it for restarts). */
  async addHost(config: HostConfig): Promise<void> {
    const c = checkHostConfig(config);
    this.#addHostNow(c);
    this.#hostConfigs.set(c.name, c);
    await this.#saveHosts();
  }

  /** Removes a host; its running jobs are queued again elsewhere. */
  async removeHost(name: string): Promise<void> {
    await this.controller.removeHost(name);
    this.#hostConfigs.delete(name);
    await this.#saveHosts();
  }

  /** Turns a host on or off. */
  async setHostOn(name: string, on: boolean): Promise<void> {
    await this.controller.setHostOn(name, on);
  }

  /** Listens to every finished job (after its task's handler); returns a function that stops listening. */
  onJobDone(listener: (job: FinishedJob) => void): () => void {
    this.#doneListeners.add(listener);
    return () => this.#doneListeners.delete(listener);
  }

  /** Jobs out now (pending and busy), and the last finished ones when `finished` is set. */
  jobs(options: { finished?: boolean; limit?: number } = {}): JobStatus[] {
    const out = [...this.#jobs.values()].map((j) => this.#jobStatus(j, null));
    if (options.finished) out.push(...this.#history);
    return options.limit === undefined ? out : out.slice(0, options.limit);
  }

  /** Everything, for `status`. */
  status(): SchedulerStatus {
    const now = Date.now();
    let busy = 0;
    for (const j of this.#jobs.values()) if (j.state === 'busy') busy++;
    const made = Math.max(1, this.#submitted);
    return {
      instance: this.instance, running: this.#running, labels: [...this.#labels],
      tasks: [...this.#tasks.values()].map((t) => this.#taskStatus(t, now)),
      hosts: this.controller.hosts(),
      books: this.books.all().map((b) => ({ name: b.name, pages: b.count(), states: b.counts(), stale: b.stale })),
      modules: [...this.#modules.entries()].map(([module, m]) => ({ module, tasks: m.tasks, error: m.error })),
      jobs: { pending: this.#jobs.size - busy, busy, submitted: this.#submitted, finished: this.#finishedCount },
      overheadPerJobUs: Number(this.#busyNs / 1000n) / made,
    };
  }

  /** Resolves once `predicate` holds (checked after every pass), or rejects after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (this.#closed) throw new PantasksError('pantasks_stopped', `scheduler closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new PantasksError('pantasks_stopped', `timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Shuts down: stops trying tasks, kills every job (local and on hosts; Slurm jobs are
   * cancelled), puts their pages back to INIT, writes the books, closes modules and the database.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#running = false;
    this.#abort.abort();
    this.#kick();
    await this.#loop;
    for (const job of this.#jobs.values()) {
      job.finished = true;
      if (job.timer) clearTimeout(job.timer);
      job.local?.kill();
      if (job.page && this.#pageOf(job)) this.books.existing(job.page.book).setState(job.page, PAGE_STATES.init);
    }
    this.#jobs.clear();
    await this.#launcher?.close();
    await this.controller.close();
    for (const module of [...this.#modules.keys()]) await this.#unloadModule(module);
    try {
      await this.store.flush(this.books, this.#jobSeq);
    } finally {
      await this.store.close();
    }
  }

  // ----- the loop -----

  #kick(): void {
    this.#kicked = true;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #runLoop(): Promise<void> {
    while (!this.#closed) {
      this.#kicked = false;
      let next: number;
      const t0 = process.hrtime.bigint();
      try {
        next = await this.#tick();
      } catch (error) {
        this.#log.error(`scheduler pass failed: ${(error as Error)?.stack ?? String(error)}`);
        next = Date.now() + 1000;
      }
      this.#busyNs += process.hrtime.bigint() - t0;
      if (this.#closed) break;
      if (this.#kicked || this.#finished.length > 0) {
        // Let I/O in (child exits, requests) before the next pass.
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const wait = Math.max(0, Math.min(next - Date.now(), 1000));
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#wake = null;
          resolve();
        }, wait);
      });
    }
  }

  /** One pass; returns when the next task is due (ms since the epoch). */
  async #tick(): Promise<number> {
    let next = Date.now() + 1000;
    for (let rec = this.#finished.shift(); rec; rec = this.#finished.shift()) await this.#complete(rec);
    const created: Job[] = [];
    if (this.#running && !this.#closed) {
      for (const t of [...this.#tasks.values()]) {
        if (this.#tasks.get(t.def.name) !== t) continue;
        next = Math.min(next, await this.#attempt(t, created));
      }
    }
    if (this.books.pendingChanges > 0 || created.length > 0) {
      try {
        await this.store.flush(this.books, this.#jobSeq);
      } catch (error) {
        // Nothing may start that the database does not know of: undo this pass's jobs.
        this.#log.error(`cannot write the books: ${(error as Error).message}; ${created.length} job(s) not started, tried again shortly`);
        for (const job of created) this.#withdraw(job);
        return Date.now() + 1000;
      }
    }
    if (created.length > 0) this.#launch(created);
    return next;
  }

  /** Tries one task; returns when it is next due. */
  async #attempt(t: TaskRecord, created: Job[]): Promise<number> {
    const o = t.options;
    const now = Date.now();
    if (!o.active) return now + 1000;
    if ((o.nmax > 0 && t.jobs >= o.nmax) || (o.npending > 0 && t.outstanding >= o.npending)) {
      // Blocked by its own limits: tried again as soon as a job of it ends (the pass after).
      return now + 1000;
    }
    if (now < t.nextAttempt) return t.nextAttempt;
    t.nextAttempt = now + o.period * 1000;
    if (!timeRangesAllow(o.ranges, now)) return t.nextAttempt;
    for (let i = 0; i < o.burst; i++) {
      if ((o.nmax > 0 && t.jobs >= o.nmax) || (o.npending > 0 && t.outstanding >= o.npending)) break;
      if (i > 0 && !timeRangesAllow(o.ranges, now)) break;
      let spec: JobSpec | null | undefined;
      try {
        spec = t.def.exec ? await t.def.exec(this.#context(t, now)) : { command: t.def.command! };
      } catch (error) {
        this.#taskError(t, `exec failed: ${(error as Error)?.message ?? String(error)}`);
        break;
      }
      if (this.#tasks.get(t.def.name) !== t) break;
      if (spec === null || spec === undefined) {
        t.declined++;
        break;
      }
      let job: Job;
      try {
        job = this.#createJob(t, spec, now);
      } catch (error) {
        this.#taskError(t, (error as Error).message);
        break;
      }
      created.push(job);
      t.jobs++;
      t.outstanding++;
      this.#submitted++;
      countTimeRangeRun(o.ranges, now);
    }
    return t.nextAttempt;
  }

  #createJob(t: TaskRecord, spec: JobSpec, now: number): Job {
    const name = t.def.name;
    if (spec === null || typeof spec !== 'object') throw new PantasksError('pantasks_bad_task', `task ${name}: exec must return a job ({ command, ... }) or null, not ${JSON.stringify(spec)}`);
    const command = checkCommand(name, spec.command);
    const o = t.options;
    const { host, hostNeed } = spec.host !== undefined || spec.hostNeed !== undefined
      ? checkHost(name, spec.host ?? o.host, spec.hostNeed ?? (spec.host !== undefined ? 'wanted' : o.hostNeed))
      : { host: o.host, hostNeed: o.hostNeed };
    const patch = resolveOptions(name, {
      ...(spec.nice !== undefined ? { nice: spec.nice } : {}), ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
      ...('stdout' in spec ? { stdout: spec.stdout } : {}), ...('stderr' in spec ? { stderr: spec.stderr } : {}),
    }, o);
    const env = spec.env ?? {};
    if (env === null || typeof env !== 'object' || Object.values(env).some((v) => typeof v !== 'string')) {
      throw new PantasksError('pantasks_bad_task', `task ${name}: env must map names to strings`);
    }
    if (spec.cwd !== undefined && typeof spec.cwd !== 'string') throw new PantasksError('pantasks_bad_task', `task ${name}: cwd must be a directory path`);
    const page = spec.page ?? null;
    if (page !== null) {
      const book = this.books.existing(page.book);
      if (book.get(page.key) !== page) throw new PantasksError('pantasks_bad_page', `task ${name}: page ${page.book}/${page.key} is not in its book (deleted?)`);
      if (page.state === PAGE_STATES.run && page.jobId !== null) {
        throw new PantasksError('pantasks_bad_page', `task ${name}: page ${page.book}/${page.key} is RUN with job ${page.jobId}; a page is never given two jobs`);
      }
    }
    const id = ++this.#jobSeq;
    const req: RunRequest = {
      id, command, nice: patch.nice, env: { ...env, [JOB_MARKER]: `${this.instance}:${id}` }, cwd: spec.cwd ?? null,
      captureStdout: patch.stdout !== null, captureStderr: patch.stderr !== null,
      captureLimit: this.#o.captureLimit ?? DEFAULT_CAPTURE_LIMIT,
    };
    const job: Job = {
      id, task: name, command, host, need: hostNeed, page, data: spec.data, timeout: patch.timeout,
      stdout: patch.stdout, stderr: patch.stderr, req, createdAt: now, state: 'pending', ranOn: host,
      handle: null, startedAt: null, timer: null, timedOut: false, finished: false, local: null, controlled: null,
    };
    if (page) this.books.existing(page.book).setState(page, PAGE_STATES.run, { id, host });
    this.#jobs.set(id, job);
    return job;
  }

  /** Takes back a job the database never heard of (the write failed). */
  #withdraw(job: Job): void {
    this.#jobs.delete(job.id);
    const t = this.#tasks.get(job.task);
    if (t) {
      t.outstanding--;
      t.jobs--;
    }
    this.#submitted--;
    if (job.page && this.#pageOf(job)) this.books.existing(job.page.book).setState(job.page, PAGE_STATES.init);
  }

  #launch(jobs: readonly Job[]): void {
    const remote: ControlledJob[] = [];
    for (const job of jobs) {
      if (job.finished) continue;
      if (job.host === 'local') {
        this.#localQueue.push(job);
        continue;
      }
      job.controlled = this.#controlled(job);
      remote.push(job.controlled);
    }
    this.#startLocal();
    if (remote.length > 0) this.controller.submitMany(remote);
  }

  #controlled(job: Job): ControlledJob {
    return {
      id: job.id, host: job.host, need: job.need, request: job.req, attempts: 0, assigned: null, finished: false,
      onStarted: (host, handle) => this.#started(job, host, handle),
      onDone: (result) => this.#ended(job, result),
    };
  }

  #startLocal(): void {
    const max = this.#o.maxLocalJobs ?? 64;
    while (this.#localRunning < max && this.#localQueue.length > 0) {
      const job = this.#localQueue.shift()!;
      if (job.finished) continue;
      this.#localRunning++;
      let startedAt = Date.now();
      const req = { ...job.req, env: { ...job.req.env, [LOCAL_MARKER]: this.instance } };
      const events = {
        started: (handle: string | null) => {
          startedAt = Date.now();
          this.#started(job, 'local', handle);
        },
        done: (r: Omit<JobResult, 'host' | 'startedAt' | 'endedAt'>) => {
          this.#localRunning--;
          this.#ended(job, { ...r, host: 'local', startedAt, endedAt: Date.now() });
          this.#startLocal();
        },
      };
      const launcher = this.#localLauncher();
      job.local = launcher && launcher.accepts(req) ? launcher.start(req, events) : runProcess(req, this.#baseEnv, events);
    }
  }

  #localLauncher(): LocalLauncher | null {
    if (this.#launcher === null && this.#o.localLaunchers !== false && launcherAvailable()) {
      this.#launcher = new LocalLauncher({
        env: this.#baseEnv, spoolDir: join(this.#spoolRoot(), `local-${this.instance}`), launchers: this.#o.localLaunchers || 2, log: this.#log,
      });
    }
    return this.#launcher;
  }

  #started(job: Job, host: string, handle: string | null): void {
    if (job.finished) return;
    job.state = 'busy';
    job.ranOn = host;
    job.handle = handle;
    job.startedAt = Date.now();
    // The page learns where its job went (anyhost → a host) and, for jobs that outlive the
    // scheduler (Slurm), their handle; a local job's handle is not worth a write.
    if (job.page && this.#pageOf(job) && (job.page.jobHost !== host || this.controller.driver(host)?.adopt)) {
      this.books.existing(job.page.book).setState(job.page, PAGE_STATES.run, { id: job.id, host, handle });
    }
    // A job started again elsewhere (its host went down) gets its whole timeout again.
    if (job.timeout > 0 && !job.timedOut) {
      if (job.timer) clearTimeout(job.timer);
      job.timer = setTimeout(() => this.#timeOut(job), job.timeout * 1000);
      job.timer.unref();
    }
  }

  #timeOut(job: Job): void {
    if (job.finished) return;
    job.timedOut = true;
    this.#log.warn(`job ${job.id} (${job.task}) ran past its timeout of ${job.timeout} s on ${job.ranOn}; killing it`);
    if (job.local) job.local.kill();
    else if (job.controlled) this.controller.kill(job.controlled);
    // A host that does not answer any more: give up waiting for its report.
    job.timer = setTimeout(() => {
      if (job.finished) return;
      if (job.controlled) job.controlled.finished = true;
      const now = Date.now();
      this.#ended(job, {
        outcome: 'timeout', status: null, signal: null, stdout: '', stderr: '', truncated: false, host: job.ranOn,
        reason: `no report from ${job.ranOn} after the kill`, startedAt: job.startedAt ?? now, endedAt: now,
      });
    }, 10_000);
    job.timer.unref();
  }

  #ended(job: Job, result: JobResult): void {
    if (job.finished) return;
    job.finished = true;
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    const final: JobResult = job.timedOut
      ? { ...result, outcome: 'timeout', reason: `ran past its timeout of ${job.timeout} s and was killed` }
      : result;
    this.#finished.push({ job, result: final });
    this.#kick();
  }

  async #complete({ job, result }: FinishedRecord): Promise<void> {
    this.#jobs.delete(job.id);
    this.#finishedCount++;
    const t = this.#tasks.get(job.task);
    if (t) {
      t.outstanding = Math.max(0, t.outstanding - 1);
      if (result.outcome === 'exit') {
        if (result.status === 0) t.succeeded++;
        else t.failed++;
      } else if (result.outcome === 'crash') t.crashed++;
      else t.timedOut++;
    }
    const page = job.page && this.#pageOf(job) ? job.page : null;
    if (page) {
      const state = result.outcome === 'exit' ? (result.status === 0 ? PAGE_STATES.done : PAGE_STATES.fail)
        : result.outcome === 'crash' ? PAGE_STATES.crash : PAGE_STATES.timeout;
      this.books.existing(page.book).setState(page, state);
    }
    for (const [dest, text] of [[job.stdout, result.stdout], [job.stderr, result.stderr]] as const) {
      if (typeof dest === 'string' && text !== '') {
        try {
          await appendFile(dest, text);
        } catch (error) {
          if (t) this.#taskError(t, `cannot write job output to ${dest}: ${(error as Error).message}`);
        }
      }
    }
    const finished: FinishedJob = { id: job.id, task: job.task, command: job.command, page, data: job.data, result };
    if (t) {
      const handler = result.outcome === 'exit' ? t.def.onExit : result.outcome === 'crash' ? t.def.onCrash : t.def.onTimeout;
      if (handler) {
        try {
          await handler(finished, this.#context(t, Date.now()));
        } catch (error) {
          this.#taskError(t, `handler failed for job ${job.id}: ${(error as Error)?.message ?? String(error)}`);
        }
      }
    }
    if (result.outcome !== 'exit' || result.status !== 0) {
      this.#log.debug(`job ${job.id} (${job.task}) on ${result.host}: ${result.outcome}${result.status !== null ? ` ${result.status}` : ''}${result.reason ? ` (${result.reason})` : ''}`);
    }
    this.#history.unshift(this.#jobStatus(job, result));
    if (this.#history.length > (this.#o.history ?? 1000)) this.#history.pop();
    for (const listener of this.#doneListeners) {
      try {
        listener(finished);
      } catch (error) {
        this.#log.warn(`a job listener failed: ${(error as Error).message}`);
      }
    }
  }

  /** True while the job's page is still the one it was given (not deleted, not handed on). */
  #pageOf(job: Job): boolean {
    const p = job.page!;
    const book = this.books.find(p.book);
    return book !== undefined && book.get(p.key) === p && p.jobId === job.id;
  }

  #context(t: TaskRecord, now: number): TaskContext {
    return { books: this.books, now, labels: [...this.#labels], log: this.#log.child(t.def.name), task: this.#taskStatus(t, now), signal: this.#abort.signal };
  }

  #taskError(t: TaskRecord, message: string): void {
    t.errors++;
    t.lastError = message;
    this.#log.warn(`task ${t.def.name}: ${message}`);
  }

  #unknownTask(name: string): PantasksError {
    return new PantasksError('pantasks_unknown_task', `no task named ${name}; the tasks are ${[...this.#tasks.keys()].join(', ') || '(none)'}`);
  }

  #taskStatus(t: TaskRecord, now: number): TaskStatus {
    const o = t.options;
    return {
      name: t.def.name, module: t.module, active: o.active, period: o.period, burst: o.burst, npending: o.npending, nmax: o.nmax,
      nice: o.nice, host: o.host, hostNeed: o.hostNeed, timeout: o.timeout, trange: o.ranges.map((r) => r.text),
      inWindow: o.ranges.length === 0 || timeRangesAllow(o.ranges.map((r) => ({ ...r })), now),
      jobs: t.jobs, outstanding: t.outstanding, succeeded: t.succeeded, failed: t.failed, crashed: t.crashed, timedOut: t.timedOut,
      declined: t.declined, errors: t.errors, lastError: t.lastError,
    };
  }

  #jobStatus(j: Job, result: JobResult | null): JobStatus {
    return {
      id: j.id, task: j.task, state: result ? 'done' : j.state, host: result ? result.host : j.ranOn, command: commandText(j.command),
      page: j.page ? `${j.page.book}/${j.page.key}` : null, handle: j.handle, createdAt: j.createdAt, startedAt: j.startedAt,
      waiting: !result && j.state === 'pending' ? (j.controlled ? this.controller.pendingReason(j.controlled) : 'waiting for a local slot') : null,
      outcome: result ? result.outcome : null, status: result ? result.status : null, reason: result ? result.reason : null,
    };
  }

  // ----- hosts, modules, recovery -----

  #addHostNow(c: HostConfig): void {
    const driver = createHostDriver(c, {
      instance: this.instance, env: this.#baseEnv, spoolRoot: this.#spoolRoot(),
      localPclient: this.#o.localPclient ?? ['ipp', 'pclient'],
      connectTimeout: this.#o.connectTimeout, pingInterval: this.#o.pingInterval,
    });
    this.controller.addHost(c.name, driver, defaultSlots(c));
  }

  #spoolRoot(): string {
    if (this.#o.spoolRoot) return this.#o.spoolRoot;
    const loc = parseDbUrl(this.#o.db);
    return loc.engine === 'sqlite' && loc.path !== ':memory:' ? join(dirname(loc.path), 'pantasks-spool') : join(this.#baseEnv.TMPDIR ?? '/tmp', `pantasks-spool-${this.instance}`);
  }

  async #saveHosts(): Promise<void> {
    await this.store.setMeta('hosts', JSON.stringify([...this.#hostConfigs.values()]));
  }

  async #saveModules(): Promise<void> {
    await this.store.setMeta('modules', JSON.stringify([...this.#modules.entries()].filter(([, m]) => m.error === null).map(([module, m]) => ({ module, config: m.config }))));
  }

  async #unloadModule(module: string): Promise<void> {
    const m = this.#modules.get(module);
    if (!m) return;
    for (const name of m.tasks) if (this.#tasks.get(name)?.module === module) this.#tasks.delete(name);
    m.tasks = [];
    try {
      await m.close?.();
    } catch (error) {
      this.#log.warn(`module ${module}: close failed: ${(error as Error).message}`);
    }
    m.close = undefined;
  }

  async #recover(): Promise<void> {
    this.#jobSeq = await this.store.lastJobId();
    // Labels given at start join those of the earlier life, and are kept for the next one.
    const labels = await this.store.getMeta('labels');
    if (labels) for (const l of JSON.parse(labels) as string[]) if (!this.#labels.includes(l)) this.#labels.push(l);
    if ((this.#o.labels ?? []).length > 0) await this.addLabels(this.#o.labels!);
    const pages = await this.store.load();
    let maxOrd = 0;
    for (const p of pages) {
      this.books.book(p.book).restore({ key: p.key, ord: p.ord, state: p.state, words: p.words, jobId: p.jobId, jobHost: p.jobHost, jobHandle: p.jobHandle });
      maxOrd = Math.max(maxOrd, p.ord);
      if (p.jobId !== null) this.#jobSeq = Math.max(this.#jobSeq, p.jobId);
    }
    this.books.restoreOrd(maxOrd);
    // Local jobs of an earlier life: their results cannot reach us any more.
    const killed = await killMarkedProcesses(`${LOCAL_MARKER}=${this.instance}`);
    if (killed > 0) this.#log.warn(`killed ${killed} process(es) left running by an earlier life of this scheduler`);
    await rm(join(this.#spoolRoot(), `local-${this.instance}`), { recursive: true, force: true });
    const hosts = JSON.parse(await this.store.getMeta('hosts') ?? '[]') as unknown[];
    for (const h of hosts) {
      try {
        const c = checkHostConfig(h);
        this.#addHostNow(c);
        this.#hostConfigs.set(c.name, c);
      } catch (error) {
        this.#log.warn(`stored host ${JSON.stringify(h)} not added again: ${(error as Error).message}`);
      }
    }
    await this.#adoptOrReset();
    const modules = JSON.parse(await this.store.getMeta('modules') ?? '[]') as { module: string; config: unknown }[];
    for (const m of modules) {
      try {
        await this.loadModule(m.module, m.config);
      } catch (error) {
        this.#log.warn(`stored module ${m.module} not loaded again: ${(error as Error).message}`);
      }
    }
    await this.store.flush(this.books, this.#jobSeq);
    if (await this.store.getMeta('running') === 'true') this.#running = true;
  }

  /**
   * Pages in RUN: jobs that outlive us (Slurm) are taken back; the others' pages go back to
   * INIT. Every back-end that can adopt is asked about every RUN page (a job queued for
   * anyhost may have reached Slurm just before the crash, before its page learnt where), and
   * cancels the jobs of ours that no page waits for.
   */
  async #adoptOrReset(): Promise<void> {
    const running: Page[] = [];
    for (const book of this.books.all()) running.push(...book.inState(PAGE_STATES.run));
    const alive = new Set<Page>();
    for (const host of this.#hostConfigs.keys()) {
      const driver = this.controller.driver(host);
      if (!driver?.adopt) continue;
      const candidates = running.filter((p) => p.jobId !== null && !alive.has(p));
      const byJob = new Map(candidates.map((p) => [p.jobId!, p]));
      const jobs = new Map<number, Job>();
      const answers = await driver.adopt(candidates.map((p) => ({ jobId: p.jobId!, handle: p.jobHost === host ? p.jobHandle : null })), (jobId) => {
        const job = this.#adoptedJob(byJob.get(jobId)!, host);
        jobs.set(jobId, job);
        job.controlled = this.#controlled(job);
        return this.controller.adoptRunning(host, job.controlled);
      });
      for (const a of answers) {
        if (a.state !== 'running') continue;
        const job = jobs.get(a.jobId)!;
        job.handle = a.handle;
        this.#jobs.set(job.id, job);
        alive.add(byJob.get(a.jobId)!);
        if (job.page && job.page.jobHost !== host) this.books.existing(job.page.book).setState(job.page, PAGE_STATES.run, { id: job.id, host, handle: a.handle });
      }
    }
    let reset = 0;
    for (const p of running) {
      if (alive.has(p)) continue;
      const book = this.books.existing(p.book);
      book.setState(p, PAGE_STATES.init);
      book.stale = true;
      reset++;
    }
    if (running.length > 0) this.#log.warn(`restart: ${alive.size} running job(s) taken back, ${reset} page(s) whose jobs are gone reset to INIT`);
  }

  #adoptedJob(page: Page, host: string): Job {
    const id = page.jobId!;
    return {
      id, task: String(page.words.task ?? '(earlier life)'), command: '(taken back after a restart)', host, need: 'wanted', page, data: undefined,
      timeout: 0, stdout: undefined, stderr: undefined,
      req: { id, command: 'true', nice: 0, env: {}, cwd: null, captureStdout: true, captureStderr: true, captureLimit: DEFAULT_CAPTURE_LIMIT },
      createdAt: Date.now(), state: 'busy', ranOn: host, handle: page.jobHandle, startedAt: Date.now(), timer: null, timedOut: false,
      finished: false, local: null, controlled: null,
    };
  }
}

/** Kills every process whose environment holds `marker` (Linux /proc); returns how many. */
export async function killMarkedProcesses(marker: string): Promise<number> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return 0;
  }
  let killed = 0;
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e) || Number(e) === process.pid) continue;
    let env: Buffer;
    try {
      env = await readFile(`/proc/${e}/environ`);
    } catch {
      continue;
    }
    if (env.includes(`\u0000${marker}\u0000`) || env.subarray(0, marker.length + 1).toString() === `${marker}\u0000`) {
      killGroup(Number(e));
      killed++;
    }
  }
  return killed;
}

export { FINISHED_STATES };
