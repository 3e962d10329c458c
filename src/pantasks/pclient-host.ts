// The pcontrol side of a pclient: starts the command that reaches it (ssh to a host running
// `ipp pclient`, or pclient started directly on this machine), speaks its JSON-lines protocol,
// and watches the link: no hello within the connect timeout, no answer to a ping, or the ssh
// process ending all mean the host is down, with ssh's own last words as the reason.
import { spawn, type ChildProcess } from 'node:child_process';
import { PantasksError } from './errors.ts';
import type { HostDriver, HostEvents } from './host-driver.ts';
import type { RunEvents, RunRequest } from './job.ts';
import { lineSplitter, PCLIENT_VERSION, type PclientEvent, type PclientRequest } from './pclient.ts';

/** How to reach a host over ssh. */
export interface SshTarget {
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
  /** A private key file (`-i`). */
  readonly key?: string;
  /** The command that runs pclient there (default `ipp pclient`). */
  readonly pclient?: string;
  /**
   * Extra `-o` options, e.g. `StrictHostKeyChecking=no`. By default an unknown host key is
   * accepted the first time and a changed one refused (`accept-new`).
   */
  readonly options?: readonly string[];
}

/** The ssh command line that starts pclient on a host: one connection, kept for many jobs. */
export function sshArgv(target: SshTarget): string[] {
  if (typeof target.host !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(target.host)) {
    throw new PantasksError('pantasks_bad_host', `ssh host ${JSON.stringify(target.host)} is not a host name or address`);
  }
  if (target.port !== undefined && (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535)) {
    throw new PantasksError('pantasks_bad_host', `ssh port ${target.port} must be 1-65535`);
  }
  const options = target.options ?? [];
  const argv = ['ssh', '-T', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=15', '-o', 'LogLevel=ERROR'];
  if (!options.some((o) => o.startsWith('StrictHostKeyChecking'))) argv.push('-o', 'StrictHostKeyChecking=accept-new');
  for (const o of options) argv.push('-o', o);
  if (target.port !== undefined) argv.push('-p', String(target.port));
  if (target.key !== undefined) argv.push('-i', target.key);
  argv.push(target.user ? `${target.user}@${target.host}` : target.host, target.pclient ?? 'ipp pclient');
  return argv;
}

/** Options of a {@link PclientHost}. */
export interface PclientHostOptions {
  /** The command that starts pclient (see {@link sshArgv}), run with its stdin and stdout as the link. */
  readonly argv: readonly string[];
  readonly description: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** ms to wait for pclient's hello (default 30 s). */
  readonly connectTimeout?: number;
  /** ms between pings (default 10 s); a ping unanswered for three intervals means the host is down. */
  readonly pingInterval?: number;
}

/** A pclient reached through a child process (ssh, or pclient itself). */
export class PclientHost implements HostDriver {
  readonly kind = 'pclient';
  readonly description: string;
  readonly #options: PclientHostOptions;
  #child: ChildProcess | null = null;
  #jobs = new Map<number, RunEvents>();
  #stderrTail = '';
  #timers: NodeJS.Timeout[] = [];
  #lastPong = 0;
  #up = false;

  constructor(options: PclientHostOptions) {
    if (!Array.isArray(options.argv) || options.argv.length === 0) throw new PantasksError('pantasks_bad_host', 'a pclient host needs the command that starts pclient');
    this.#options = options;
    this.description = options.description;
  }

  connect(events: HostEvents): void {
    this.#close();
    this.#stderrTail = '';
    this.#up = false;
    const [cmd, ...args] = this.#options.argv;
    let child: ChildProcess;
    try {
      child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], env: this.#options.env as NodeJS.ProcessEnv | undefined });
    } catch (error) {
      queueMicrotask(() => events.down(`cannot start ${cmd}: ${(error as Error).message}`));
      return;
    }
    this.#child = child;
    const down = (why: string): void => {
      if (this.#child !== child) return;
      this.#close();
      const tail = this.#stderrTail.trim().split('\n').slice(-3).join(' / ');
      events.down(tail ? `${why}: ${tail}` : why);
    };
    child.on('error', (e: NodeJS.ErrnoException) => down(e.code === 'ENOENT' ? `command not found: ${cmd}` : `${cmd}: ${e.message}`));
    child.stdin!.on('error', () => {});
    child.stderr!.on('data', (c: Buffer) => {
      this.#stderrTail = (this.#stderrTail + c.toString('utf8')).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      // Give stderr a moment to drain so the reason carries ssh's message.
      setTimeout(() => down(`${this.#up ? 'connection closed' : 'could not start pclient'} (${signal ? `signal ${signal}` : `exit ${code}`})`), 20);
    });
    child.stdout!.on('data', lineSplitter(
      (line) => this.#onLine(line, events, down),
      () => down('pclient sent a line longer than the limit'),
    ));
    const connectTimeout = this.#options.connectTimeout ?? 30_000;
    this.#timers.push(setTimeout(() => {
      if (!this.#up) down(`no hello from pclient within ${Math.round(connectTimeout / 1000)} s`);
    }, connectTimeout));
    const pingInterval = this.#options.pingInterval ?? 10_000;
    const ping = setInterval(() => {
      if (!this.#up) return;
      if (Date.now() - this.#lastPong > 3 * pingInterval) {
        down(`no answer to pings for ${Math.round((3 * pingInterval) / 1000)} s (host hung?)`);
        return;
      }
      this.#send({ op: 'ping', t: Date.now() });
    }, pingInterval);
    ping.unref();
    this.#timers.push(ping);
  }

  start(req: RunRequest, events: RunEvents): void {
    if (!this.#up || !this.#child) throw new PantasksError('pantasks_protocol', `${this.description} is not connected`);
    this.#jobs.set(req.id, events);
    this.#send({
      op: 'job', id: req.id, command: typeof req.command === 'string' ? req.command : [...req.command], nice: req.nice,
      env: { ...req.env }, cwd: req.cwd, out: req.captureStdout, err: req.captureStderr, limit: req.captureLimit,
    });
  }

  kill(jobId: number): void {
    if (this.#jobs.has(jobId)) this.#send({ op: 'kill', id: jobId });
  }

  async disconnect(): Promise<void> {
    const child = this.#child;
    this.#close();
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      try {
        child.stdin!.end(`${JSON.stringify({ op: 'exit' })}\n`);
      } catch {
        child.kill('SIGKILL');
      }
    });
  }

  #send(req: PclientRequest): void {
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed || !stdin.writable) return;
    stdin.write(`${JSON.stringify(req)}\n`);
  }

  #onLine(line: string, events: HostEvents, down: (why: string) => void): void {
    let m: PclientEvent;
    try {
      m = JSON.parse(line) as PclientEvent;
    } catch {
      // ssh banners or a login script's chatter before pclient starts: ignored until the hello.
      if (this.#up) down(`pclient sent a line that is not JSON: ${line.slice(0, 120)}`);
      return;
    }
    switch (m.ev) {
      case 'hello':
        if (m.version !== PCLIENT_VERSION) {
          down(`pclient speaks protocol ${m.version}, this scheduler ${PCLIENT_VERSION}; install the same ipp on the host`);
          return;
        }
        this.#up = true;
        this.#lastPong = Date.now();
        events.up(`${m.host} (pclient pid ${m.pid}, ${m.cpus} cpus)`);
        return;
      case 'started':
        this.#jobs.get(m.id)?.started(m.handle);
        return;
      case 'done': {
        const ev = this.#jobs.get(m.id);
        this.#jobs.delete(m.id);
        ev?.done({
          outcome: m.outcome === 'crash' ? 'crash' : 'exit', status: m.status, signal: m.signal, stdout: m.stdout ?? '', stderr: m.stderr ?? '',
          truncated: Boolean(m.truncated), reason: m.reason ?? null,
        });
        return;
      }
      case 'pong':
        this.#lastPong = Date.now();
        return;
      case 'error':
        // A request it refused: a bug here, not there. Said loudly, the link stays.
        this.#stderrTail = (this.#stderrTail + `pclient: ${m.message}\n`).slice(-2000);
        return;
      default:
        down(`pclient sent an unknown event: ${line.slice(0, 120)}`);
    }
  }

  #close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    this.#jobs.clear();
    this.#up = false;
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      // ssh normally ends with its stdin; a hung one is killed.
      setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }, 3000).unref();
    }
  }
}
