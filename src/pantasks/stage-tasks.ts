// The stage tasks of ippTasks, for the processing database: for each stage given, a load task
// (pending components of the instance's labels into the stage's book), a run task (the next
// INIT page becomes a job running the stage's command), a revert task (faulted components
// cleared so they are tried again) and an advance task (finished runs set to full and the
// next stage queued). Load, revert and advance talk to the database from the scheduler itself
// (the original ran a tool for each); only the pixel work runs as jobs, and each job records
// its own result in the database (`ipp gpc1 done ...`), as the original's scripts did.
import type { Database } from '../db/index.ts';
import { advance, openGpc1, parseStage, pendingComponents, revertFaults, stage as describeStage, type PendingComponent, type StageName } from '../gpc1/index.ts';
import { FINISHED_STATES, PAGE_STATES, type Book, type Books, type PageWords } from './book.ts';
import { PantasksError } from './errors.ts';
import type { HostNeed, JobCommand, OutputDestination } from './job.ts';
import type { TaskDefinition } from './task.ts';

/** The command and job options of one stage. */
export interface StageCommands {
  /**
   * The command of one component, with placeholders {stage} {id} {component} {label}
   * {data_group} {gpc1} (the database URL). In a list, an argument that is exactly
   * "{component}" is left out for one-component stages.
   */
  readonly command: JobCommand;
  /** For runs whose components are not known yet (a warp run before its skycell map): the command that maps them. */
  readonly mapCommand?: JobCommand;
  readonly host?: string;
  readonly hostNeed?: HostNeed;
  /** Most jobs of the stage at once (default 32). */
  readonly npending?: number;
  /** Jobs made per attempt of the run task (default 32). */
  readonly burst?: number;
  readonly timeout?: number;
  readonly nice?: number;
  readonly stdout?: OutputDestination;
  readonly stderr?: OutputDestination;
  /** Whether the stage has a revert task (default true) and an advance task (default true). */
  readonly revert?: boolean;
  readonly advance?: boolean;
}

/** A program run periodically beside the stages (the ippToPsps programs, when they exist). */
export interface PeriodicProgram {
  readonly name: string;
  readonly command: JobCommand;
  readonly period?: number;
  readonly host?: string;
  readonly npending?: number;
}

/** The configuration of the stage tasks. */
export interface StageTasksConfig {
  /** The processing database URL. */
  readonly gpc1: string;
  readonly stages: Readonly<Partial<Record<StageName, StageCommands>>>;
  readonly programs?: readonly PeriodicProgram[];
  /** Seconds between loads (default 5), run attempts (default 0.05), reverts (default 60), advances (default 10). */
  readonly loadPeriod?: number;
  readonly runPeriod?: number;
  readonly revertPeriod?: number;
  readonly advancePeriod?: number;
  /** Most pending components read per label and load (default 5000). */
  readonly pollLimit?: number;
}

/** What the stage tasks need from their module. */
export interface StageTasksContext {
  readonly books: Books;
  /** Registers what to close when the module goes. */
  onClose(fn: () => Promise<void> | void): void;
}

function bad(message: string): PantasksError {
  return new PantasksError('pantasks_bad_config', `stage tasks: ${message}`);
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/** Fills a command template from a page's words. */
export function fillCommand(template: JobCommand, words: PageWords, gpc1: string): JobCommand {
  const value = (name: string): string | null => {
    if (name === 'gpc1') return gpc1;
    const v = words[name];
    return v === undefined || v === null ? null : String(v);
  };
  const fill = (text: string, quote: boolean): string => text.replace(/\{([a-z_0-9]+)\}/g, (all, name: string) => {
    if (!['stage', 'id', 'component', 'label', 'data_group', 'gpc1', 'state'].includes(name)) return all;
    const v = value(name) ?? '';
    return quote ? shellQuote(v) : v;
  });
  if (typeof template === 'string') return fill(template, true);
  const out: string[] = [];
  for (const arg of template) {
    if (arg === '{component}' && value('component') === null) continue;
    out.push(fill(arg, false));
  }
  return out;
}

/**
 * Brings a book in line with the pending rows read when the book's change counter was
 * `snapshot`: rows not in the book are added (INIT); finished pages, and INIT pages whose
 * rows are no longer pending, are dropped when they have not changed since the snapshot (a
 * page closed after the rows were read stays until the next refresh, so a row done meanwhile
 * is not added back). With `complete` false (the read hit its limit) no INIT page is dropped.
 */
export function refreshBook(book: Book, rows: readonly { key: string; words: PageWords }[], snapshot: number, complete: boolean): { added: number; dropped: number } {
  const pending = new Set(rows.map((r) => r.key));
  let dropped = 0;
  for (const page of [...book.pages()]) {
    if (page.changed > snapshot) continue;
    const finished = FINISHED_STATES.has(page.state);
    if (finished || (complete && page.state === PAGE_STATES.init && !pending.has(page.key))) {
      book.delete(page);
      dropped++;
    }
  }
  let added = 0;
  for (const r of rows) if (!book.has(r.key) && book.add(r.key, r.words)) added++;
  return { added, dropped };
}

/**
 * One connection per database URL for every module of this process. node:sqlite waits for a
 * lock synchronously, so a second connection of the same process asking for the write lock
 * while the first holds it (between two awaits of a transaction) would stop the process for
 * the whole busy timeout; sharing the connection keeps its transactions in one queue.
 */
const shared = new Map<string, { db: Promise<Database>; refs: number }>();

function shareGpc1(url: string): Promise<Database> {
  let entry = shared.get(url);
  if (!entry) {
    const db = openGpc1(url);
    entry = { db, refs: 0 };
    shared.set(url, entry);
    db.catch(() => shared.delete(url));
  }
  entry.refs++;
  return entry.db;
}

async function releaseGpc1(url: string): Promise<void> {
  const entry = shared.get(url);
  if (!entry || --entry.refs > 0) return;
  shared.delete(url);
  await (await entry.db).close();
}

function pageKey(p: PendingComponent): string {
  return `${p.id}/${p.component ?? '-'}`;
}

/** The load, run, revert and advance tasks of each stage configured, and the periodic programs. */
export function stageTasks(config: StageTasksConfig, ctx: StageTasksContext): TaskDefinition[] {
  if (config === null || typeof config !== 'object') throw bad('give { gpc1, stages: { chip: { command }, ... } }');
  if (typeof config.gpc1 !== 'string' || config.gpc1 === '') throw bad('gpc1 must name the processing database (sqlite:PATH or postgres://...)');
  if (config.stages === null || typeof config.stages !== 'object') throw bad('stages must map stage names to { command, ... }');
  const gpc1Url = config.gpc1;
  let db: Promise<Database> | null = null;
  const database = (): Promise<Database> => {
    db ??= shareGpc1(gpc1Url).catch((error: unknown) => {
      db = null;
      throw error;
    });
    return db;
  };
  ctx.onClose(async () => {
    if (db) await releaseGpc1(gpc1Url).catch(() => {});
  });
  const limit = config.pollLimit ?? 5000;
  const tasks: TaskDefinition[] = [];
  for (const [name, c] of Object.entries(config.stages)) {
    const stage = (() => {
      try {
        return parseStage(name);
      } catch (error) {
        throw bad((error as Error).message);
      }
    })();
    if (c === null || typeof c !== 'object' || c.command === undefined) throw bad(`stage ${name} needs a command`);
    const d = describeStage(stage);
    const book = ctx.books.book(`${stage}Pending`);
    tasks.push({
      name: `${stage}.load`, host: 'local', period: config.loadPeriod ?? 5,
      async exec(tctx) {
        if (tctx.labels.length === 0) return null;
        const handle = await database();
        const snapshot = book.changeCount;
        const rows: { key: string; words: PageWords }[] = [];
        let complete = true;
        for (const label of tctx.labels) {
          const pending = await pendingComponents(handle, stage, { label, limit });
          if (pending.length >= limit) complete = false;
          for (const p of pending) {
            if (p.component === null && d.componentColumn !== null && c.mapCommand === undefined) continue;
            rows.push({ key: pageKey(p), words: { stage, id: p.id, component: p.component, label: p.label, data_group: p.data_group, state: p.state } });
          }
        }
        refreshBook(book, rows, snapshot, complete);
        book.stale = false;
        return null;
      },
    });
    tasks.push({
      name: `${stage}.run`, host: c.host ?? 'local', hostNeed: c.hostNeed, period: config.runPeriod ?? 0.05,
      npending: c.npending ?? 32, burst: c.burst ?? 32, timeout: c.timeout, nice: c.nice, stdout: c.stdout, stderr: c.stderr,
      exec() {
        // After a restart the book may name rows finished meanwhile: wait for the next load.
        if (book.stale) return null;
        const page = book.first(PAGE_STATES.init);
        if (!page) return null;
        const mapping = page.words.component === null && d.componentColumn !== null;
        const template = mapping ? c.mapCommand! : c.command;
        return { command: fillCommand(template, page.words, gpc1Url), page };
      },
      onExit(job, tctx) {
        if (job.result.status !== 0) {
          const last = job.result.stderr.trim().split('\n').pop() ?? '';
          tctx.log.warn(`${job.page?.key ?? job.id}: exit ${job.result.status}${last ? `: ${last}` : ''}`);
        }
      },
      onCrash(job, tctx) {
        tctx.log.warn(`${job.page?.key ?? job.id}: crashed on ${job.result.host} (${job.result.reason ?? 'signal'})`);
      },
      onTimeout(job, tctx) {
        tctx.log.warn(`${job.page?.key ?? job.id}: timed out on ${job.result.host}`);
      },
    });
    if (c.revert !== false) {
      tasks.push({
        name: `${stage}.revert`, host: 'local', period: config.revertPeriod ?? 60,
        async exec(tctx) {
          const handle = await database();
          for (const label of tctx.labels) {
            const n = await revertFaults(handle, { stage, label });
            if (n > 0) tctx.log.info(`reverted ${n} faulted ${stage} component(s) of ${label}`);
          }
          return null;
        },
      });
    }
    if (c.advance !== false) {
      tasks.push({
        name: `${stage}.advance`, host: 'local', period: config.advancePeriod ?? 10,
        async exec(tctx) {
          const handle = await database();
          for (const label of tctx.labels) await advance(handle, { stage, label });
          return null;
        },
      });
    }
  }
  for (const p of config.programs ?? []) {
    if (p === null || typeof p !== 'object' || typeof p.name !== 'string') throw bad('each program needs a name and a command');
    tasks.push({ name: p.name, command: p.command, period: p.period ?? 60, host: p.host ?? 'local', npending: p.npending ?? 1 });
  }
  return tasks;
}
