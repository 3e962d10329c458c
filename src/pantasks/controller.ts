// pcontrol: a pool of hosts, each with a number of job slots, and the jobs waiting for them.
// A job names `anyhost`, or a host it wants (it may go elsewhere when that host is full or
// down) or needs (it waits for that host). Each host keeps its own queues of needed and
// wanted jobs and there is one queue for anyhost jobs, so a free slot finds its next job in
// O(number of hosts), never by scanning the jobs. A host that goes down gives its running
// jobs back: they are queued again at the front and run elsewhere (or wait, when they need
// that host), up to `maxAttempts` starts, after which they end as crashed.
import type { Logger } from '../common/index.ts';
import { PantasksError } from './errors.ts';
import type { HostDriver } from './host-driver.ts';
import type { HostNeed, JobResult, RunEvents, RunRequest } from './job.ts';
import { Queue } from './queue.ts';

/** A host's state: off (turned off by the user), down (lost or unreachable), connecting, idle (up, nothing running), busy (up, running jobs). */
export type HostState = 'off' | 'down' | 'connecting' | 'idle' | 'busy';

/** A job as pcontrol holds it. */
export interface ControlledJob {
  readonly id: number;
  /** `anyhost` or a host name. */
  readonly host: string;
  readonly need: HostNeed;
  readonly request: RunRequest;
  /** How many times it was started (a host lost under it counts). */
  attempts: number;
  /** The host running it, while busy. */
  assigned: string | null;
  /** Set once it ended or was withdrawn; a queued copy is skipped. */
  finished: boolean;
  onStarted(host: string, handle: string | null): void;
  onDone(result: JobResult): void;
}

/** A host as shown by status. */
export interface HostStatus {
  readonly name: string;
  readonly kind: string;
  readonly description: string;
  readonly state: HostState;
  readonly slots: number;
  readonly running: number;
  /** Jobs queued for this host (needed + wanted). */
  readonly queued: number;
  readonly jobsDone: number;
  readonly jobsLost: number;
  /** Why it is down, or where it is up. */
  readonly detail: string;
}

interface HostRecord {
  readonly name: string;
  readonly driver: HostDriver;
  slots: number;
  link: 'off' | 'connecting' | 'up' | 'down';
  /** Bumped on every (re)connect, so events of an old link are ignored. */
  generation: number;
  readonly running: Map<number, ControlledJob>;
  readonly needed: Queue<ControlledJob>;
  readonly wanted: Queue<ControlledJob>;
  detail: string;
  retryDelay: number;
  retryTimer: NodeJS.Timeout | null;
  jobsDone: number;
  jobsLost: number;
  removed: boolean;
}

/** Options of a {@link Controller}. */
export interface ControllerOptions {
  readonly log: Logger;
  /** Called whenever something changed that the scheduler may act on (a job ended, a slot freed). */
  readonly onChange?: () => void;
  /** Starts per job before a host lost under it ends it as crashed (default 3). */
  readonly maxAttempts?: number;
  /** First wait before reconnecting a down host, ms (default 2000; doubles up to 60 s). */
  readonly reconnectDelay?: number;
}

/** pcontrol: hosts, slots, queued and running jobs. */
export class Controller {
  readonly #hosts = new Map<string, HostRecord>();
  readonly #anyhost = new Queue<ControlledJob>();
  /** Jobs that need a host not known (yet), by host name. */
  readonly #unknownHost = new Map<string, Queue<ControlledJob>>();
  readonly #log: Logger;
  readonly #onChange: () => void;
  readonly #maxAttempts: number;
  readonly #reconnectDelay: number;
  #queued = 0;
  #closed = false;

  constructor(options: ControllerOptions) {
    this.#log = options.log;
    this.#onChange = options.onChange ?? (() => {});
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#reconnectDelay = options.reconnectDelay ?? 2000;
  }

  /** Adds a host and starts connecting to it. */
  addHost(name: string, driver: HostDriver, slots: number): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/.test(name) || name === 'local' || name === 'anyhost') {
      throw new PantasksError('pantasks_bad_host', `host name ${JSON.stringify(name)} must be letters, digits, . _ : - (and not local or anyhost)`);
    }
    if (this.#hosts.has(name)) throw new PantasksError('pantasks_duplicate_host', `host ${name} is there already; remove it first or pick another name`);
    if (!Number.isInteger(slots) || slots < 1 || slots > 10_000) throw new PantasksError('pantasks_bad_host', `host ${name}: slots must be a whole number from 1 to 10000, not ${slots}`);
    const host: HostRecord = {
      name, driver, slots, link: 'off', generation: 0, running: new Map(), needed: new Queue(), wanted: new Queue(),
      detail: '', retryDelay: this.#reconnectDelay, retryTimer: null, jobsDone: 0, jobsLost: 0, removed: false,
    };
    this.#hosts.set(name, host);
    const waiting = this.#unknownHost.get(name);
    if (waiting) {
      this.#unknownHost.delete(name);
      for (let job = waiting.shift(); job; job = waiting.shift()) if (!job.finished) host.needed.push(job);
    }
    this.#connect(host);
  }

  /** Whether a host of that name exists. */
  hasHost(name: string): boolean {
    return this.#hosts.has(name);
  }

  /** The driver of a host (for adopting jobs after a restart). */
  driver(name: string): HostDriver | undefined {
    return this.#hosts.get(name)?.driver;
  }

  /** Turns a host off (its running jobs are killed and queued again elsewhere) or back on. */
  async setHostOn(name: string, on: boolean): Promise<void> {
    const host = this.#host(name);
    if (on) {
      if (host.link === 'off') {
        host.retryDelay = this.#reconnectDelay;
        this.#connect(host);
      }
      return;
    }
    if (host.link === 'off') return;
    await this.#drop(host, 'turned off', 'off');
  }

  /** Removes a host; its running jobs are queued again, its queued jobs move to anyhost or wait (needed). */
  async removeHost(name: string): Promise<void> {
    const host = this.#host(name);
    host.removed = true;
    await this.#drop(host, 'removed', 'off');
    this.#hosts.delete(name);
    // Jobs that need it wait for it to come back; jobs that want it go anywhere.
    for (const q of [host.wanted, host.needed]) {
      for (let job = q.shift(); job; job = q.shift()) {
        if (job.finished) continue;
        this.#queued--;
        this.#enqueue(job);
      }
    }
    this.#pump();
  }

  /** Changes a host's slots. */
  setSlots(name: string, slots: number): void {
    const host = this.#host(name);
    if (!Number.isInteger(slots) || slots < 1 || slots > 10_000) throw new PantasksError('pantasks_bad_host', `host ${name}: slots must be a whole number from 1 to 10000`);
    host.slots = slots;
    this.#pump();
  }

  /** Queues a job and starts what can start. */
  submit(job: ControlledJob): void {
    if (this.#closed) throw new PantasksError('pantasks_stopped', 'pcontrol is shut down');
    this.#enqueue(job);
    this.#pump();
  }

  /** Queues many jobs, then assigns slots once. */
  submitMany(jobs: readonly ControlledJob[]): void {
    if (this.#closed) throw new PantasksError('pantasks_stopped', 'pcontrol is shut down');
    for (const job of jobs) this.#enqueue(job);
    this.#pump();
  }

  /** Kills a running job (the driver reports its end) or withdraws a queued one (no report). */
  kill(job: ControlledJob): void {
    if (job.assigned !== null) {
      this.#hosts.get(job.assigned)?.driver.kill(job.id);
      return;
    }
    if (!job.finished) {
      job.finished = true;
      this.#queued--;
    }
  }

  /** Takes over a job that an earlier life of the scheduler started on a host (Slurm), as running there. */
  adoptRunning(hostName: string, job: ControlledJob): RunEvents {
    const host = this.#host(hostName);
    job.assigned = host.name;
    job.attempts = Math.max(job.attempts, 1);
    host.running.set(job.id, job);
    return this.#eventsFor(host, host.generation, job);
  }

  /** Jobs queued, waiting for a slot. */
  get queued(): number {
    return this.#queued;
  }

  /** Jobs running on hosts. */
  get running(): number {
    let n = 0;
    for (const h of this.#hosts.values()) n += h.running.size;
    return n;
  }

  /** The hosts, for status. */
  hosts(): HostStatus[] {
    return [...this.#hosts.values()].map((h) => ({
      name: h.name, kind: h.driver.kind, description: h.driver.description, state: stateOf(h), slots: h.slots,
      running: h.running.size, queued: h.needed.length + h.wanted.length, jobsDone: h.jobsDone, jobsLost: h.jobsLost, detail: h.detail,
    }));
  }

  /** Why a queued job waits, for status. */
  pendingReason(job: ControlledJob): string {
    if (job.host === 'anyhost') return this.#hosts.size === 0 ? 'no hosts: add one with host add' : 'all hosts busy or down';
    const h = this.#hosts.get(job.host);
    if (!h) return job.need === 'needed' ? `needs host ${job.host}, which is not known` : `host ${job.host} is not known; waiting for any host`;
    return `${job.need === 'needed' ? 'needs' : 'wants'} host ${job.host} (${stateOf(h)})`;
  }

  /** Disconnects every host (their jobs are killed); queued jobs are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#hosts.values()].map((h) => this.#drop(h, 'shut down', 'off', false)));
  }

  #host(name: string): HostRecord {
    const h = this.#hosts.get(name);
    if (!h) throw new PantasksError('pantasks_unknown_host', `no host named ${name}; the hosts are ${[...this.#hosts.keys()].join(', ') || '(none)'}`);
    return h;
  }

  #enqueue(job: ControlledJob, front = false): void {
    job.assigned = null;
    let q: Queue<ControlledJob> = this.#anyhost;
    if (job.host !== 'anyhost') {
      const h = this.#hosts.get(job.host);
      if (h) q = job.need === 'needed' ? h.needed : h.wanted;
      else if (job.need === 'needed') {
        // Its host is not known (yet): it waits aside and moves to the host when it is added.
        let waiting = this.#unknownHost.get(job.host);
        if (!waiting) this.#unknownHost.set(job.host, (waiting = new Queue()));
        q = waiting;
      }
    }
    if (front) q.unshift(job);
    else q.push(job);
    this.#queued++;
  }

  /** Fills free slots of up hosts with queued jobs. */
  #pump(): void {
    if (this.#closed || this.#queued === 0) return;
    let started = true;
    // Round-robin over hosts, one job per host per pass, so that anyhost jobs spread out.
    while (started && this.#queued > 0) {
      started = false;
      for (const host of this.#hosts.values()) {
        if (host.link !== 'up' || host.running.size >= host.slots) continue;
        const job = this.#take(host);
        if (!job) continue;
        this.#start(host, job);
        started = true;
      }
    }
  }

  /** The next job for a host with a free slot: its needed, its wanted, anyhost, then others' wanted jobs. */
  #take(host: HostRecord): ControlledJob | undefined {
    for (const q of [host.needed, host.wanted]) {
      const job = this.#shiftLive(q);
      if (job) return job;
    }
    const job = this.#shiftLive(this.#anyhost);
    if (job) return job;
    // Jobs that want another host may come here when that host is full or down.
    for (const other of this.#hosts.values()) {
      if (other === host || other.wanted.length === 0) continue;
      if (other.link === 'up' && other.running.size < other.slots) continue;
      const job = this.#shiftLive(other.wanted);
      if (job) return job;
    }
    return undefined;
  }

  #shiftLive(q: Queue<ControlledJob>): ControlledJob | undefined {
    while (q.length > 0) {
      const job = q.shift()!;
      if (job.finished) continue;
      this.#queued--;
      return job;
    }
    return undefined;
  }

  #start(host: HostRecord, job: ControlledJob): void {
    job.assigned = host.name;
    job.attempts++;
    host.running.set(job.id, job);
    try {
      host.driver.start(job.request, this.#eventsFor(host, host.generation, job));
    } catch (error) {
      this.#log.warn(`host ${host.name}: could not start job ${job.id}: ${(error as Error).message}`);
      void this.#lost(host, `could not start a job: ${(error as Error).message}`);
    }
  }

  #eventsFor(host: HostRecord, generation: number, job: ControlledJob): RunEvents {
    let startedAt = Date.now();
    return {
      started: (handle) => {
        if (host.generation !== generation || job.finished || job.assigned !== host.name) return;
        startedAt = Date.now();
        job.onStarted(host.name, handle);
      },
      done: (r) => {
        if (host.generation !== generation || job.finished || job.assigned !== host.name) return;
        host.running.delete(job.id);
        host.jobsDone++;
        job.finished = true;
        job.assigned = null;
        job.onDone({ ...r, host: host.name, startedAt, endedAt: Date.now() });
        this.#pump();
        this.#onChange();
      },
    };
  }

  #connect(host: HostRecord): void {
    if (this.#closed || host.removed) return;
    host.link = 'connecting';
    host.detail = `connecting to ${host.driver.description}`;
    const generation = ++host.generation;
    host.driver.connect({
      up: (detail) => {
        if (host.generation !== generation || host.link !== 'connecting') return;
        host.link = 'up';
        host.detail = detail;
        host.retryDelay = this.#reconnectDelay;
        this.#log.info(`host ${host.name} up: ${detail}`);
        this.#pump();
        this.#onChange();
      },
      down: (reason) => {
        if (host.generation !== generation || host.link === 'off' || host.link === 'down') return;
        void this.#lost(host, reason);
      },
    });
  }

  /** A host went down: its jobs go back to the queues; it is tried again later. */
  async #lost(host: HostRecord, reason: string): Promise<void> {
    this.#log.warn(`host ${host.name} down: ${reason}`);
    await this.#drop(host, reason, 'down');
    if (this.#closed || host.removed) return;
    const delay = host.retryDelay;
    host.retryDelay = Math.min(host.retryDelay * 2, 60_000);
    host.retryTimer = setTimeout(() => {
      host.retryTimer = null;
      if (host.link === 'down') this.#connect(host);
    }, delay);
    host.retryTimer.unref();
  }

  async #drop(host: HostRecord, reason: string, link: 'off' | 'down', requeue = true): Promise<void> {
    host.generation++;
    host.link = link;
    host.detail = reason;
    if (host.retryTimer) {
      clearTimeout(host.retryTimer);
      host.retryTimer = null;
    }
    const lost = [...host.running.values()];
    host.running.clear();
    try {
      await host.driver.disconnect();
    } catch (error) {
      this.#log.warn(`host ${host.name}: disconnect failed: ${(error as Error).message}`);
    }
    for (const job of lost) {
      host.jobsLost++;
      job.assigned = null;
      if (job.finished) continue;
      if (!requeue || job.attempts >= this.#maxAttempts) {
        job.finished = true;
        const now = Date.now();
        job.onDone({
          outcome: 'crash', status: null, signal: null, stdout: '', stderr: '', truncated: false, host: host.name,
          reason: requeue ? `host ${host.name} went down (${reason}) under it ${job.attempts} times` : `host ${host.name} ${reason}`,
          startedAt: now, endedAt: now,
        });
      } else {
        this.#log.info(`job ${job.id}: host ${host.name} ${reason}; queued again (start ${job.attempts} of ${this.#maxAttempts})`);
        this.#enqueue(job, true);
      }
    }
    this.#pump();
    this.#onChange();
  }
}

function stateOf(h: HostRecord): HostState {
  if (h.link !== 'up') return h.link;
  return h.running.size === 0 ? 'idle' : 'busy';
}
