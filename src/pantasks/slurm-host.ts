// A Slurm partition as one pcontrol host: each job becomes a batch job (`sbatch`), named after
// this scheduler and the job id so it can be found again after a restart. The batch script
// runs the command and writes its exit status to a file beside the job's output; a poll
// reads those files (cheap: no Slurm call per job) and asks `squeue` now and then which jobs
// Slurm still has, so one that vanished without a status (cancelled, node failure, time
// limit) is reported with what `scontrol`/`sacct` say about it. Slurm jobs outlive the
// scheduler, so after a restart the jobs of pages still in RUN are taken back (`adopt`).
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { PantasksError } from './errors.ts';
import type { AdoptedJob, HostDriver, HostEvents } from './host-driver.ts';
import type { RunEvents, RunRequest } from './job.ts';

/** Options of a {@link SlurmHost}. */
export interface SlurmHostOptions {
  /** The partition to submit to (default: the cluster's default partition). */
  readonly partition?: string;
  /** A directory every node sees, for batch scripts, outputs and exit statuses. */
  readonly spoolDir: string;
  /** Names this scheduler's jobs: `<prefix><job id>`. */
  readonly jobPrefix: string;
  /** ms between polls of the status files (default 1000); squeue is asked every fifth poll. */
  readonly pollInterval?: number;
  /** Extra sbatch arguments (e.g. `--time=60`, `--mem=2G`). */
  readonly sbatchArgs?: readonly string[];
  /** The environment of the Slurm commands (SLURM_CONF...) and, with `--export=ALL`, of the jobs. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface InFlight {
  readonly jobId: number;
  slurmId: string | null;
  readonly events: RunEvents;
  readonly req: RunRequest | null;
  readonly files: { script: string; out: string; err: string; status: string };
  killed: boolean;
  missing: number;
  submittedAt: number;
}

interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

const SIGNALS = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** A Slurm partition used as a pcontrol host. */
export class SlurmHost implements HostDriver {
  readonly kind = 'slurm';
  readonly description: string;
  readonly #o: SlurmHostOptions;
  readonly #jobs = new Map<number, InFlight>();
  #events: HostEvents | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polls = 0;
  #polling = false;
  #generation = 0;

  constructor(options: SlurmHostOptions) {
    if (options.partition !== undefined && !/^[A-Za-z0-9_.-]+$/.test(options.partition)) {
      throw new PantasksError('pantasks_bad_host', `Slurm partition ${JSON.stringify(options.partition)} is not a partition name`);
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(options.jobPrefix)) throw new PantasksError('pantasks_bad_host', `Slurm job prefix ${JSON.stringify(options.jobPrefix)} must be letters, digits, _ . -`);
    this.#o = options;
    this.description = `slurm partition ${options.partition ?? '(default)'}`;
  }

  connect(events: HostEvents): void {
    this.#events = events;
    const generation = ++this.#generation;
    void (async () => {
      try {
        await mkdir(this.#o.spoolDir, { recursive: true });
      } catch (error) {
        events.down(`cannot create the spool directory ${this.#o.spoolDir}: ${(error as Error).message}`);
        return;
      }
      const r = await this.#run('sinfo', ['-h', '-o', '%P %a %D', ...(this.#o.partition ? ['-p', this.#o.partition] : [])]);
      if (generation !== this.#generation) return;
      if (r.code !== 0) {
        events.down(`sinfo failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
        return;
      }
      const line = r.stdout.trim().split('\n')[0] ?? '';
      if (line === '') {
        events.down(`sinfo lists no partition${this.#o.partition ? ` named ${this.#o.partition}` : ''}`);
        return;
      }
      if (!/\bup\b/.test(line)) {
        events.down(`partition is not up (sinfo: ${line})`);
        return;
      }
      this.#schedulePoll(generation);
      events.up(`slurm ${line}`);
    })();
  }

  start(req: RunRequest, events: RunEvents): void {
    const name = `${this.#o.jobPrefix}${req.id}`;
    const base = join(this.#o.spoolDir, name);
    const job: InFlight = {
      jobId: req.id, slurmId: null, events, req, killed: false, missing: 0, submittedAt: Date.now(),
      files: { script: `${base}.sh`, out: `${base}.out`, err: `${base}.err`, status: `${base}.status` },
    };
    this.#jobs.set(req.id, job);
    const generation = this.#generation;
    void this.#submit(job, name, generation);
  }

  kill(jobId: number): void {
    const job = this.#jobs.get(jobId);
    if (!job) return;
    job.killed = true;
    if (job.slurmId) void this.#run('scancel', [job.slurmId]);
  }

  async disconnect(): Promise<void> {
    this.#generation++;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ids = [...this.#jobs.values()].map((j) => j.slurmId).filter((id): id is string => id !== null);
    this.#jobs.clear();
    if (ids.length > 0) await this.#run('scancel', ids);
  }

  async adopt(wanted: readonly { jobId: number; handle: string | null }[], eventsFor: (jobId: number) => RunEvents): Promise<AdoptedJob[]> {
    const queue = await this.#queue();
    if (queue === null) return wanted.map((w) => ({ jobId: w.jobId, handle: w.handle ?? '', state: 'gone' as const }));
    const byName = new Map(queue.map((q) => [q.name, q]));
    const out: AdoptedJob[] = [];
    const taken = new Set<string>();
    for (const w of wanted) {
      const name = `${this.#o.jobPrefix}${w.jobId}`;
      const base = join(this.#o.spoolDir, name);
      const files = { script: `${base}.sh`, out: `${base}.out`, err: `${base}.err`, status: `${base}.status` };
      const q = byName.get(name);
      const hasStatus = await readFile(files.status, 'utf8').then(() => true, () => false);
      if (!q && !hasStatus) {
        out.push({ jobId: w.jobId, handle: w.handle ?? '', state: 'gone' });
        continue;
      }
      const slurmId = q?.id ?? w.handle;
      if (q) taken.add(q.id);
      this.#jobs.set(w.jobId, {
        jobId: w.jobId, slurmId, events: eventsFor(w.jobId), req: null, files, killed: false, missing: 0, submittedAt: Date.now(),
      });
      out.push({ jobId: w.jobId, handle: slurmId ?? '', state: 'running' });
    }
    // Jobs of an earlier life that no page waits for: nobody would read their results.
    const orphans = queue.filter((q) => q.name.startsWith(this.#o.jobPrefix) && !taken.has(q.id)).map((q) => q.id);
    if (orphans.length > 0) await this.#run('scancel', orphans);
    return out;
  }

  async #submit(job: InFlight, name: string, generation: number): Promise<void> {
    const req = job.req!;
    const cwd = req.cwd ?? this.#o.spoolDir;
    const command = typeof req.command === 'string' ? `/bin/sh -c ${quote(req.command)}` : req.command.map(quote).join(' ');
    const script = [
      '#!/bin/sh',
      `# pantasks job ${req.id}`,
      ...Object.entries(req.env).map(([k, v]) => `${k}=${quote(v)}; export ${k}`),
      `cd ${quote(cwd)} || exit 126`,
      command,
      'st=$?',
      `printf '%s\\n' "$st" > ${quote(`${job.files.status}.tmp`)} && mv ${quote(`${job.files.status}.tmp`)} ${quote(job.files.status)}`,
      'exit $st',
      '',
    ].join('\n');
    try {
      await rm(job.files.status, { force: true });
      await writeFile(job.files.script, script, { mode: 0o755 });
    } catch (error) {
      this.#fail(generation, `cannot write the batch script ${job.files.script}: ${(error as Error).message}`);
      return;
    }
    const args = [
      '--parsable', '--job-name', name, '--chdir', this.#o.spoolDir,
      '-o', req.captureStdout ? job.files.out : '/dev/null', '-e', req.captureStderr ? job.files.err : '/dev/null',
      ...(this.#o.partition ? ['--partition', this.#o.partition] : []),
      ...(req.nice > 0 ? [`--nice=${req.nice}`] : []),
      ...(this.#o.sbatchArgs ?? []),
      job.files.script,
    ];
    const r = await this.#run('sbatch', args);
    if (generation !== this.#generation || !this.#jobs.has(job.jobId)) {
      // Disconnected meanwhile: this job was given back to pcontrol; do not leave it running.
      const id = r.stdout.trim().split(';')[0];
      if (r.code === 0 && id) void this.#run('scancel', [id]);
      return;
    }
    if (r.code !== 0) {
      this.#fail(generation, `sbatch failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
      return;
    }
    job.slurmId = r.stdout.trim().split(';')[0]!;
    if (job.killed) void this.#run('scancel', [job.slurmId]);
    job.events.started(job.slurmId);
  }

  #fail(generation: number, reason: string): void {
    if (generation !== this.#generation) return;
    this.#events?.down(reason);
  }

  #schedulePoll(generation: number): void {
    if (generation !== this.#generation) return;
    this.#timer = setTimeout(() => void this.#poll(generation), this.#o.pollInterval ?? 1000);
  }

  async #poll(generation: number): Promise<void> {
    if (this.#polling || generation !== this.#generation) return;
    this.#polling = true;
    try {
      this.#polls++;
      const waiting: InFlight[] = [];
      for (const job of [...this.#jobs.values()]) {
        if (await this.#finishFromStatus(job)) continue;
        if (job.slurmId !== null) waiting.push(job);
      }
      const mustAsk = waiting.some((j) => j.killed || j.missing > 0);
      if (waiting.length > 0 && (mustAsk || this.#polls % 5 === 0)) {
        const queue = await this.#queue();
        if (queue !== null && generation === this.#generation) {
          const live = new Set(queue.map((q) => q.id));
          for (const job of waiting) {
            if (live.has(job.slurmId!)) {
              job.missing = 0;
              continue;
            }
            // Gone from the queue: its status file may land a moment later (shared file systems).
            if (await this.#finishFromStatus(job)) continue;
            if (++job.missing >= (job.killed ? 1 : 3)) await this.#finishVanished(job);
          }
        }
      }
    } finally {
      this.#polling = false;
      this.#schedulePoll(generation);
    }
  }

  async #finishFromStatus(job: InFlight): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(job.files.status, 'utf8');
    } catch {
      return false;
    }
    if (this.#jobs.get(job.jobId) !== job) return true;
    const st = Number(text.trim());
    const [stdout, stderr] = await Promise.all([this.#output(job.files.out, job.req), this.#output(job.files.err, job.req)]);
    this.#jobs.delete(job.jobId);
    await this.#cleanup(job);
    const signal = st > 128 && st < 128 + 65 ? (SIGNALS.get(st - 128) ?? `signal ${st - 128}`) : null;
    job.events.done({
      outcome: signal ? 'crash' : 'exit', status: signal ? null : st, signal,
      stdout: stdout.text, stderr: stderr.text, truncated: stdout.truncated || stderr.truncated,
      reason: signal ? `killed by ${signal}` : null,
    });
    return true;
  }

  async #finishVanished(job: InFlight): Promise<void> {
    if (this.#jobs.get(job.jobId) !== job) return;
    let what = 'no record';
    const sc = await this.#run('scontrol', ['show', 'job', '-o', job.slurmId!]);
    const state = /JobState=(\S+)/.exec(sc.stdout)?.[1];
    if (sc.code === 0 && state) {
      what = `JobState=${state}${/Reason=(\S+)/.exec(sc.stdout)?.[1] ? ` Reason=${/Reason=(\S+)/.exec(sc.stdout)![1]}` : ''}`;
    } else {
      const sa = await this.#run('sacct', ['-n', '-X', '-P', '-j', job.slurmId!, '-o', 'State,ExitCode']);
      if (sa.code === 0 && sa.stdout.trim() !== '') what = `sacct ${sa.stdout.trim().split('\n')[0]}`;
    }
    const [stdout, stderr] = await Promise.all([this.#output(job.files.out, job.req), this.#output(job.files.err, job.req)]);
    this.#jobs.delete(job.jobId);
    await this.#cleanup(job);
    job.events.done({
      outcome: 'crash', status: null, signal: job.killed ? 'SIGTERM' : null, stdout: stdout.text, stderr: stderr.text,
      truncated: stdout.truncated || stderr.truncated,
      reason: `Slurm job ${job.slurmId} ended without an exit status (${what})`,
    });
  }

  async #output(path: string, req: RunRequest | null): Promise<{ text: string; truncated: boolean }> {
    const limit = req?.captureLimit ?? 1 << 20;
    try {
      const buf = await readFile(path);
      return { text: buf.subarray(0, limit).toString('utf8'), truncated: buf.length > limit };
    } catch {
      return { text: '', truncated: false };
    }
  }

  async #cleanup(job: InFlight): Promise<void> {
    await Promise.all([...Object.values(job.files), `${job.files.status}.tmp`].map((f) => rm(f, { force: true }).catch(() => {})));
  }

  /** Every job Slurm holds (id, name, state), or null when squeue fails. */
  async #queue(): Promise<{ id: string; name: string; state: string }[] | null> {
    const r = await this.#run('squeue', ['-h', '-o', '%i|%j|%T']);
    if (r.code !== 0) return null;
    return r.stdout.split('\n').filter((l) => l.includes('|')).map((l) => {
      const [id, name, state] = l.split('|');
      return { id: id!.trim(), name: name!.trim(), state: state!.trim() };
    });
  }

  #run(cmd: string, args: readonly string[]): Promise<CommandResult> {
    return new Promise((resolve) => {
      execFile(cmd, args, { env: this.#o.env as NodeJS.ProcessEnv, timeout: 60_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
        const code = error ? (typeof (error as NodeJS.ErrnoException).code === 'number' ? (error as unknown as { code: number }).code : 1) : 0;
        const why = error && (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd}: command not found (install Debian's slurm-client)` : '';
        resolve({ code, stdout: String(stdout), stderr: why || String(stderr) });
      });
    });
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}
