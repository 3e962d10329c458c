// Local jobs, started by small /bin/sh launchers rather than by the scheduler itself. Starting a
// process copies the parent's page tables; from a Node process holding 100,000 pages that
// costs milliseconds per job, from a shell a fraction of one, so a launcher starts local jobs
// several times faster (see bench/pantasks-dispatch.ts). The scheduler sends each launcher
// one line per job: `J ID COMMAND-LINE` (the line is built and quoted here: cd, the job's
// environment, setsid so the job leads its own process group, nice, the command, its redirections) and `K PGID` to
// kill one; the launcher answers `S ID PID` when it started and `D ID STATUS` when it ended.
// Output goes to files in a spool directory, read back (up to the capture limit) at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../common/index.ts';
import type { RunEvents, RunRequest } from './job.ts';
import { lineSplitter } from './pclient.ts';
import type { RunningProcess } from './process-runner.ts';

// Each job runs in a background brace group that waits for it and reports; dash reaps finished
// background jobs as it goes, so none is left a zombie.
const SCRIPT = `
while IFS= read -r line; do
  case $line in
    "J "*) rest=\${line#J }; id=\${rest%% *}; cmd=\${rest#* }
      { eval "$cmd &"; q=$!; echo "S $id $q"; wait "$q"; echo "D $id $?"; } &
      ;;
    "K "*) kill -KILL -- "-\${line#K }" 2>/dev/null || kill -KILL "\${line#K }" 2>/dev/null ;;
  esac
done
`;

const SIGNALS = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** Quotes one word for /bin/sh. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/** Whether the launchers can run here (a POSIX shell and util-linux setsid). */
export function launcherAvailable(): boolean {
  return existsSync('/bin/sh') && (existsSync('/usr/bin/setsid') || existsSync('/bin/setsid'));
}

interface Flight {
  readonly req: RunRequest;
  readonly events: RunEvents;
  readonly launcher: Launcher;
  pid: number | null;
  killWanted: boolean;
  readonly out: string | null;
  readonly err: string | null;
}

interface Launcher {
  readonly child: ChildProcess;
  alive: boolean;
}

/** Options of a {@link LocalLauncher}. */
export interface LocalLauncherOptions {
  /** The environment jobs start from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where captured output is kept until the job ends. */
  readonly spoolDir: string;
  /** Launchers, used in turn (default 2). */
  readonly launchers?: number;
  readonly log: Logger;
}

/** Starts local jobs through a few long-lived shells. */
export class LocalLauncher {
  readonly #o: LocalLauncherOptions;
  readonly #jobs = new Map<number, Flight>();
  #launchers: Launcher[] = [];
  #next = 0;
  #spoolReady: Promise<void> | null = null;
  #closed = false;

  constructor(options: LocalLauncherOptions) {
    this.#o = options;
  }

  /** Whether a command can go through a launcher (one line: no newline in any word; environment names the shell can export). */
  accepts(req: RunRequest): boolean {
    const words = typeof req.command === 'string' ? [req.command] : req.command;
    const all = [...words, ...Object.entries(req.env).flat(), req.cwd ?? ''];
    return !this.#closed && all.every((w) => !w.includes('\n') && !w.includes('\r') && !w.includes('\u0000'))
      && Object.keys(req.env).every((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  }

  /** Starts a job; events as from {@link runProcess}. */
  start(req: RunRequest, events: RunEvents): RunningProcess {
    const launcher = this.#launcher();
    const out = req.captureStdout ? join(this.#o.spoolDir, `${req.id}.out`) : null;
    const err = req.captureStderr ? join(this.#o.spoolDir, `${req.id}.err`) : null;
    const flight: Flight = { req, events, launcher, pid: null, killWanted: false, out, err };
    this.#jobs.set(req.id, flight);
    const argv = typeof req.command === 'string' ? ['/bin/sh', '-c', req.command] : req.command;
    const exports = Object.entries(req.env).map(([k, v]) => `export ${k}=${shellWord(v)}; `).join('');
    const nice = req.nice !== 0 ? ['nice', '-n', String(req.nice)] : [];
    const line = `(${req.cwd ? `cd ${shellWord(req.cwd)} || exit 126; ` : ''}${exports}exec setsid ${[...nice, ...argv.map(shellWord)].join(' ')})`
      + ` </dev/null >${out ? shellWord(out) : '/dev/null'} 2>${err ? shellWord(err) : '/dev/null'}`;
    const send = (): void => {
      if (launcher.alive) launcher.child.stdin!.write(`J ${req.id} ${line}\n`);
    };
    if (out || err) {
      this.#spoolReady ??= mkdir(this.#o.spoolDir, { recursive: true }).then(() => {});
      void this.#spoolReady.then(send, (e: Error) => this.#end(flight, { status: 126, reason: `cannot create ${this.#o.spoolDir}: ${e.message}` }));
    } else send();
    return {
      get pid() {
        return flight.pid;
      },
      kill: () => {
        flight.killWanted = true;
        if (flight.pid !== null && launcher.alive) launcher.child.stdin!.write(`K ${flight.pid}\n`);
      },
    };
  }

  /** Kills every job and ends the launchers. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const f of this.#jobs.values()) if (f.pid !== null && f.launcher.alive) f.launcher.child.stdin!.write(`K ${f.pid}\n`);
    await Promise.all(this.#launchers.map((l) => new Promise<void>((resolve) => {
      if (!l.alive) return resolve();
      l.child.once('exit', () => resolve());
      l.child.stdin!.end();
      setTimeout(() => l.child.kill('SIGKILL'), 2000).unref();
    })));
    if (this.#spoolReady) await rm(this.#o.spoolDir, { recursive: true, force: true }).catch(() => {});
  }

  #launcher(): Launcher {
    this.#launchers = this.#launchers.filter((l) => l.alive);
    const want = this.#o.launchers ?? 2;
    if (this.#launchers.length < want) {
      const child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'], env: this.#o.env as NodeJS.ProcessEnv, detached: true });
      const launcher: Launcher = { child, alive: true };
      child.stdin!.on('error', () => {});
      child.stdout!.on('data', lineSplitter((l) => this.#onLine(l), () => {}));
      const gone = (why: string) => {
        if (!launcher.alive) return;
        launcher.alive = false;
        if (!this.#closed) this.#o.log.warn(`local launcher ${child.pid} ended (${why}); its jobs are lost`);
        for (const f of [...this.#jobs.values()]) {
          if (f.launcher === launcher) this.#end(f, { status: null, reason: `the local launcher ended (${why})`, crash: true });
        }
      };
      child.on('exit', (code, signal) => gone(signal ? `signal ${signal}` : `exit ${code}`));
      child.on('error', (e) => gone(e.message));
      this.#launchers.push(launcher);
      return launcher;
    }
    return this.#launchers[this.#next++ % this.#launchers.length]!;
  }

  #onLine(line: string): void {
    const [tag, idText, value] = line.split(' ');
    const f = this.#jobs.get(Number(idText));
    if (!f) return;
    if (tag === 'S') {
      f.pid = Number(value);
      f.events.started(value ?? null);
      if (f.killWanted && f.launcher.alive) f.launcher.child.stdin!.write(`K ${f.pid}\n`);
    } else if (tag === 'D') {
      void this.#finish(f, Number(value));
    }
  }

  async #finish(f: Flight, st: number): Promise<void> {
    const argv0 = typeof f.req.command === 'string' ? '/bin/sh' : f.req.command[0]!;
    const signal = st > 128 && st < 128 + 65 ? (SIGNALS.get(st - 128) ?? `signal ${st - 128}`) : null;
    const reason = signal ? `killed by ${signal}` : st === 127 ? `command not found: ${argv0}` : st === 126 ? `cannot run ${argv0}` : null;
    const [stdout, stderr] = await Promise.all([readCapped(f.out, f.req.captureLimit), readCapped(f.err, f.req.captureLimit)]);
    this.#end(f, { status: signal ? null : st, signal, reason, stdout, stderr });
  }

  #end(f: Flight, r: { status: number | null; signal?: string | null; reason: string | null; crash?: boolean; stdout?: Captured; stderr?: Captured }): void {
    if (this.#jobs.get(f.req.id) !== f) return;
    this.#jobs.delete(f.req.id);
    if (f.pid === null) f.events.started(null);
    f.events.done({
      outcome: r.signal || r.crash ? 'crash' : 'exit', status: r.status, signal: r.signal ?? null,
      stdout: r.stdout?.text ?? '', stderr: r.stderr?.text ?? '', truncated: Boolean(r.stdout?.truncated || r.stderr?.truncated), reason: r.reason,
    });
  }
}

interface Captured {
  readonly text: string;
  readonly truncated: boolean;
}

/** The first `limit` bytes of a file (removed after), and whether there were more. */
async function readCapped(path: string | null, limit: number): Promise<Captured> {
  if (path === null) return { text: '', truncated: false };
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return { text: '', truncated: false };
  }
  try {
    const size = (await handle.stat()).size;
    const buf = Buffer.alloc(Math.min(size, limit));
    if (buf.length > 0) await handle.read(buf, 0, buf.length, 0);
    return { text: buf.toString('utf8'), truncated: size > limit };
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
}
