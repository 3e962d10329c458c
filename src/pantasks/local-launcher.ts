// Local jobs, started by small long-lived launchers rather than by the scheduler itself.
// Starting a process copies the parent's page tables; from a Node process holding 100,000
// pages that costs milliseconds per job, from a small launcher a fraction of one, so a
// launcher starts local jobs several times faster (see bench/pantasks-dispatch.ts). The
// launcher is a short Perl program (perl-base is part of every Debian system): per job it
// forks once, and the child makes itself a session leader (its own process group, so a kill
// reaches everything it starts), sets its nice level, directory, environment and redirections
// itself and execs the command: one fork and one exec per job, as `xargs -P` does, where a
// shell launcher needed a subshell, a waiter and separate setsid and nice programs.
// The scheduler sends one line per job: `J ID NICE CWD OUT ERR NENV ENV... ARGV...` (every
// word but the numbers hex-encoded behind an `x`, `-` for none) and `K PGID` to kill one; the
// launcher answers `S ID PID` when it started and `D ID STATUS` when it ended (the status as a
// shell gives it: the exit code, 128 + the signal, 127 not found, 126 cannot run).
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

const PERL = '/usr/bin/perl';

// SIGCHLD writes a byte to a pipe that select() watches with stdin, so no exit is missed
// between a reap and the next wait. At the end of its input (the scheduler closed it, or
// died) the launcher stays until its jobs have ended, reaping them: an orphan would be left
// to an init that may never reap it (a container's).
const SCRIPT = String.raw`
use strict; use warnings; use POSIX ();
$| = 1; $SIG{PIPE} = 'IGNORE';
pipe(my $wake_r, my $wake_w) or die "pipe: $!";
my $old = select($wake_w); $| = 1; select($old);
$SIG{CHLD} = sub { syswrite($wake_w, 'c') };
my %job;
sub word { my $w = shift; return $w eq '-' ? undef : pack('H*', substr($w, 1)) }
sub reap {
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $id = delete $job{$pid};
    next unless defined $id;
    my $st = $?;
    my $code = ($st & 127) ? 128 + ($st & 127) : ($st >> 8);
    print "D $id $code
";
  }
}
sub start {
  my ($id, $nice, $cwd, $out, $err, $nenv, @rest) = @_;
  my @env = map { word($_) } splice(@rest, 0, $nenv);
  my @argv = map { word($_) } @rest;
  my $pid = fork();
  if (!defined $pid) { print "D $id 126
"; return; }
  if ($pid == 0) {
    $SIG{CHLD} = 'DEFAULT'; $SIG{PIPE} = 'DEFAULT';
    close($wake_r); close($wake_w);
    POSIX::setsid();
    POSIX::nice($nice) if $nice != 0;
    if (defined(my $d = word($cwd))) { chdir($d) or POSIX::_exit(126); }
    for my $kv (@env) { my ($k, $v) = split(/=/, $kv, 2); $ENV{$k} = $v; }
    open(STDIN, '<', '/dev/null') or POSIX::_exit(126);
    open(STDOUT, '>', word($out) // '/dev/null') or POSIX::_exit(126);
    open(STDERR, '>', word($err) // '/dev/null') or POSIX::_exit(126);
    { no warnings; exec { $argv[0] } @argv; }
    POSIX::_exit($!{ENOENT} ? 127 : 126);
  }
  $job{$pid} = $id;
  print "S $id $pid
";
}
my $buf = '';
my $rin = '';
vec($rin, fileno(STDIN), 1) = 1;
vec($rin, fileno($wake_r), 1) = 1;
my $eof = 0;
while (!$eof || %job) {
  my $n = select(my $rout = $rin, undef, undef, undef);
  if ($n < 0) { next if $!{EINTR}; last; }
  if (vec($rout, fileno($wake_r), 1)) { sysread($wake_r, my $drain, 4096); reap(); }
  next if $eof || !vec($rout, fileno(STDIN), 1);
  my $got = sysread(STDIN, my $chunk, 65536);
  if (!$got) { $eof = 1; vec($rin, fileno(STDIN), 1) = 0; next; }
  $buf .= $chunk;
  while ((my $i = index($buf, "
")) >= 0) {
    my $line = substr($buf, 0, $i);
    substr($buf, 0, $i + 1) = '';
    my @w = split(/ /, $line);
    my $tag = shift(@w) // '';
    if ($tag eq 'J') { start(@w); }
    elsif ($tag eq 'K') { kill('KILL', -$w[0]) or kill('KILL', $w[0]); }
  }
}
`;

/** A word of the launcher protocol: `x` + hex, or `-` for none. */
function protocolWord(s: string | null): string {
  return s === null ? '-' : `x${Buffer.from(s, 'utf8').toString('hex')}`;
}

const SIGNALS = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** Whether the launchers can run here (Debian's perl-base). */
export function launcherAvailable(): boolean {
  return existsSync(PERL);
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

  /** Whether a command can go through a launcher (no NUL in any word, environment names without `=`), as exec allows. */
  accepts(req: RunRequest): boolean {
    const words = typeof req.command === 'string' ? [req.command] : req.command;
    const all = [...words, ...Object.entries(req.env).flat(), req.cwd ?? ''];
    return !this.#closed && words.length > 0 && all.every((w) => !w.includes('\u0000'))
      && Object.keys(req.env).every((k) => k !== '' && !k.includes('='));
  }

  /** Starts a job; events as from {@link runProcess}. */
  start(req: RunRequest, events: RunEvents): RunningProcess {
    const launcher = this.#launcher();
    const out = req.captureStdout ? join(this.#o.spoolDir, `${req.id}.out`) : null;
    const err = req.captureStderr ? join(this.#o.spoolDir, `${req.id}.err`) : null;
    const flight: Flight = { req, events, launcher, pid: null, killWanted: false, out, err };
    this.#jobs.set(req.id, flight);
    const argv = typeof req.command === 'string' ? ['/bin/sh', '-c', req.command] : req.command;
    const env = Object.entries(req.env).map(([k, v]) => protocolWord(`${k}=${v}`));
    const line = [
      'J', req.id, req.nice, protocolWord(req.cwd ?? null), protocolWord(out), protocolWord(err), env.length, ...env, ...argv.map(protocolWord),
    ].join(' ');
    const send = (): void => {
      if (launcher.alive) launcher.child.stdin!.write(`${line}\n`);
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
      const child = spawn(PERL, ['-e', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'], env: this.#o.env as NodeJS.ProcessEnv, detached: true });
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
