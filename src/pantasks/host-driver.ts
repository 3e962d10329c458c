// The port every pcontrol back-end implements: a pclient reached over ssh (or started
// directly), or a Slurm partition. A driver connects, runs the jobs it is given, reports
// their starts and ends, and says when it is up or down; pcontrol does the bookkeeping.
import type { RunEvents, RunRequest } from './job.ts';

/** What a driver reports about its connection. */
export interface HostEvents {
  /** Connected and ready for jobs; `detail` says where (hostname, version). */
  up(detail: string): void;
  /** Lost or could not connect; the jobs it was running are lost with it. */
  down(reason: string): void;
}

/** A job a driver found still running (or finished) after a scheduler restart. */
export interface AdoptedJob {
  readonly jobId: number;
  readonly handle: string;
  /** 'running': events follow as for a job started now; 'gone': the back-end does not know it. */
  readonly state: 'running' | 'gone';
}

/** One back-end of pcontrol. */
export interface HostDriver {
  /** `pclient` or `slurm`. */
  readonly kind: string;
  /** Where it runs jobs, for status (`ssh root@127.0.0.1:2222`, `slurm partition debug`). */
  readonly description: string;
  /** Starts connecting; reports through `events` (up once, down whenever the link fails). */
  connect(events: HostEvents): void;
  /** Runs a job; only called while up. */
  start(req: RunRequest, events: RunEvents): void;
  /** Kills a job it runs (its process group, or scancel). */
  kill(jobId: number): void;
  /** Closes the link and kills its jobs; no events follow. */
  disconnect(): Promise<void>;
  /**
   * After a restart: takes back jobs of an earlier life of this scheduler that may still run
   * (only back-ends whose jobs outlive the scheduler, i.e. Slurm), and cancels those not asked for.
   */
  adopt?(jobs: readonly { jobId: number; handle: string | null }[], events: (jobId: number) => RunEvents): Promise<AdoptedJob[]>;
}
