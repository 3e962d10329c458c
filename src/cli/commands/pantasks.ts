// `ipp pantasks server|client ...` and `ipp pclient`: the scheduler in the background, the
// client that drives it (the original's pantasks_server, pantasks_client and their commands),
// and the long-lived shell that pcontrol keeps on every host.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../../common/index.ts';
import {
  PantasksClient, runPclient, startPantasksServer, type HostConfig, type SchedulerStatus, type TaskOptions,
} from '../../pantasks/index.ts';
import { EXIT, type Command, type CommandContext, type CommandGroup, type OptionSpec, type ParsedArgs } from '../command.ts';
import { databaseUrl, dbOption, serverToken, serviceEndpoint, serviceOptions } from '../settings.ts';

/** The command that runs this very `ipp` with node, for pclient started on this machine. */
export const LOCAL_PCLIENT: readonly string[] = [process.execPath, join(import.meta.dirname, '..', 'main.ts'), 'pclient'];

const clientOptions = serviceOptions('pantasks');
const json: OptionSpec = { type: 'boolean', help: 'print JSON instead of text' };

function connect(args: ParsedArgs, ctx: CommandContext): PantasksClient {
  const { url, token } = serviceEndpoint('pantasks', args, ctx.env);
  return new PantasksClient(url, token);
}

function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

function strings(args: ParsedArgs, name: string): string[] | undefined {
  const v = args.values[name];
  return Array.isArray(v) && v.length > 0 ? v : undefined;
}

function whole(args: ParsedArgs, name: string, min = 0): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) throw new UsageError(`--${name} "${v}" must be a whole number${min > 0 ? ` of at least ${min}` : ''}`);
  return Number(v);
}

function number(args: ParsedArgs, name: string): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} "${v}" must be a number`);
  return n;
}

function noPositionals(args: ParsedArgs, usage: string): void {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"; usage: ${usage}`);
}

function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** Status as text: the scheduler, its tasks, hosts and books. */
export function formatStatus(s: SchedulerStatus, part?: string): string {
  const out: string[] = [];
  if (!part) {
    out.push(`pantasks ${s.instance}: ${s.running ? 'running' : 'stopped'}; labels: ${s.labels.join(', ') || '(none)'}; jobs: ${s.jobs.pending} pending, ${s.jobs.busy} busy, ${s.jobs.submitted} made, ${s.jobs.finished} finished; ${s.overheadPerJobUs.toFixed(0)} µs of scheduling per job\n`);
    for (const m of s.modules) if (m.error) out.push(`module ${m.module}: ERROR ${m.error}\n`);
  }
  if (!part || part === 'tasks') {
    out.push(s.tasks.length === 0 ? 'no tasks (load a module with: ipp pantasks client load FILE)\n' : table(
      ['TASK', 'ACTIVE', 'HOST', 'PERIOD', 'NPENDING', 'NMAX', 'OUT', 'JOBS', 'OK', 'FAIL', 'CRASH', 'TIMEOUT', 'DECLINED', 'ERRORS'],
      s.tasks.map((t) => [
        t.name, t.active ? (t.inWindow ? 'yes' : 'out of trange') : 'no', t.hostNeed === 'needed' ? `${t.host} (needed)` : t.host, String(t.period),
        String(t.npending || '-'), String(t.nmax || '-'), String(t.outstanding), String(t.jobs), String(t.succeeded), String(t.failed),
        String(t.crashed), String(t.timedOut), String(t.declined), t.errors ? `${t.errors}: ${t.lastError}` : '0',
      ])));
  }
  if (!part || part === 'hosts') {
    out.push(s.hosts.length === 0 ? 'no hosts (local jobs only; add one with: ipp pantasks client host add NAME ...)\n' : table(
      ['HOST', 'KIND', 'STATE', 'SLOTS', 'RUNNING', 'QUEUED', 'DONE', 'LOST', 'DETAIL'],
      s.hosts.map((h) => [h.name, h.kind, h.state, String(h.slots), String(h.running), String(h.queued), String(h.jobsDone), String(h.jobsLost), h.detail])));
  }
  if (!part || part === 'books') {
    out.push(s.books.length === 0 ? 'no books\n' : table(['BOOK', 'PAGES', 'STATES'],
      s.books.map((b) => [b.name, String(b.pages), `${Object.entries(b.states).map(([k, v]) => `${k}=${v}`).join(' ')}${b.stale ? ' (stale until reloaded)' : ''}`])));
  }
  return out.join('');
}

const server: Command = {
  name: 'server',
  summary: 'run the scheduler in the background, with its API on loopback, until Ctrl-C or shutdown',
  usage: '[--db URL] [--port P] [--url-file F] [--label L...] [--run] [--token T]',
  description: [
    'Opens the scheduler database (books, hosts, loaded modules; default sqlite:ipp-data/pantasks.db),',
    'recovers from an earlier life (pages whose jobs are gone go back to INIT; Slurm jobs still running',
    'are taken back), then serves the client API. --label names the processing labels the stage tasks',
    'work on (kept in the database). Tasks are tried after `client run` (or with --run).',
  ].join('\n'),
  options: {
    db: dbOption('pantasks'),
    host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1; others need --token)' },
    port: { type: 'string', value: 'PORT', help: 'port to listen on (default 0: any free port)' },
    'url-file': { type: 'string', value: 'FILE', help: 'write the server URL to FILE once it listens' },
    token: { type: 'string', value: 'TOKEN', help: 'bearer token every request needs (default $IPP_PANTASKS_TOKEN)' },
    label: { type: 'string', multiple: true, value: 'LABEL', help: 'a processing label for the stage tasks (repeatable)' },
    run: { type: 'boolean', help: 'start trying tasks at once' },
    'max-local-jobs': { type: 'string', value: 'N', help: 'most local jobs at once (default 64)' },
    'spool-dir': { type: 'string', value: 'DIR', help: 'where Slurm hosts keep batch scripts and outputs (default beside the database)' },
  },
  async run(args, ctx) {
    noPositionals(args, 'ipp pantasks server [options]');
    const port = whole(args, 'port') ?? 0;
    if (port > 65535) throw new UsageError('--port must be 0-65535');
    const srv = await startPantasksServer({
      db: databaseUrl('pantasks', args, ctx.env), log: ctx.log.child('pantasks'), env: ctx.env,
      labels: strings(args, 'label'), host: str(args, 'host'), port, token: serverToken('pantasks', args, ctx.env),
      run: Boolean(args.values.run), maxLocalJobs: whole(args, 'max-local-jobs', 1), localPclient: LOCAL_PCLIENT,
      spoolRoot: str(args, 'spool-dir') === undefined ? undefined : resolve(str(args, 'spool-dir')!),
    });
    try {
      const urlFile = str(args, 'url-file');
      if (urlFile !== undefined) await writeFile(urlFile, `${srv.url}\n`);
      ctx.stdout.write(`pantasks server ${srv.scheduler.instance} listening at ${srv.url} (${srv.scheduler.running ? 'running' : 'stopped: ipp pantasks client run'})\n`);
      await new Promise<void>((done) => {
        if (ctx.signal.aborted) done();
        ctx.signal.addEventListener('abort', () => done(), { once: true });
        void srv.shutdownRequested.then(done);
      });
    } finally {
      await srv.close();
    }
    ctx.stdout.write('pantasks server stopped\n');
    return EXIT.ok;
  },
};

const status: Command = {
  name: 'status',
  summary: 'show the scheduler: tasks, hosts, books (or one of them)',
  usage: '[tasks|hosts|books] [--json]',
  options: { ...clientOptions, json },
  async run(args, ctx) {
    const part = args.positionals[0];
    if (args.positionals.length > 1 || (part !== undefined && !['tasks', 'hosts', 'books'].includes(part))) throw new UsageError('usage: ipp pantasks client status [tasks|hosts|books]');
    const s = await connect(args, ctx).status();
    if (args.values.json) printJson(ctx, part ? s[part as 'tasks'] : s);
    else ctx.stdout.write(formatStatus(s, part));
    return EXIT.ok;
  },
};

const jobs: Command = {
  name: 'jobs',
  summary: 'list the jobs out now (pending, busy), and with --finished the last finished ones',
  usage: '[--finished] [--limit N] [--json]',
  options: { ...clientOptions, json, finished: { type: 'boolean', help: 'also the last finished jobs' }, limit: { type: 'string', value: 'N', help: 'at most N' } },
  async run(args, ctx) {
    noPositionals(args, 'ipp pantasks client jobs');
    const list = await connect(args, ctx).jobs({ finished: Boolean(args.values.finished), limit: whole(args, 'limit', 1) });
    if (args.values.json) printJson(ctx, list);
    else {
      ctx.stdout.write(table(['JOB', 'TASK', 'STATE', 'HOST', 'PAGE', 'OUTCOME', 'COMMAND'], list.map((j) => [
        String(j.id), j.task, j.state, j.host, j.page ?? '-',
        j.state === 'done' ? `${j.outcome}${j.status !== null ? ` ${j.status}` : ''}${j.reason ? ` (${j.reason})` : ''}` : j.waiting ?? '',
        j.command.length > 80 ? `${j.command.slice(0, 77)}...` : j.command,
      ])));
    }
    return EXIT.ok;
  },
};

const book: Command = {
  name: 'book',
  summary: 'list the pages of a book (or empty it with --clear)',
  usage: 'BOOK [--state S] [--limit N] [--clear] [--json]',
  options: {
    ...clientOptions, json, state: { type: 'string', value: 'S', help: 'only pages in this state' }, limit: { type: 'string', value: 'N', help: 'at most N pages (default 1000)' },
    clear: { type: 'boolean', help: 'remove every page (the original book init)' },
  },
  async run(args, ctx) {
    const [name, ...extra] = args.positionals;
    if (name === undefined || extra.length > 0) throw new UsageError('usage: ipp pantasks client book BOOK');
    const client = connect(args, ctx);
    if (args.values.clear) {
      await client.clearBook(name);
      ctx.stdout.write(`book ${name} cleared\n`);
      return EXIT.ok;
    }
    const b = await client.book(name, { state: str(args, 'state'), limit: whole(args, 'limit', 1) });
    if (args.values.json) printJson(ctx, b);
    else {
      ctx.stdout.write(`book ${b.book}: ${b.pages} pages (${Object.entries(b.states).map(([k, v]) => `${k}=${v}`).join(' ')})${b.stale ? ', stale until reloaded' : ''}\n`);
      ctx.stdout.write(table(['PAGE', 'STATE', 'JOB', 'HOST', 'WORDS'], b.list.map((p) => [p.key, p.state, p.job === null ? '-' : String(p.job), p.host ?? '-', JSON.stringify(p.words)])));
    }
    return EXIT.ok;
  },
};

const load: Command = {
  name: 'load',
  summary: 'load (or reload) a task module: a .ts/.js file, or a built-in name (gpc1-stages)',
  usage: 'MODULE [--config JSON|FILE]',
  description: 'A module\'s default export is a list of tasks or a function of the module context returning one. Loading it again replaces its tasks.',
  options: { ...clientOptions, config: { type: 'string', value: 'JSON', help: 'the module\'s configuration: inline JSON or a JSON file' } },
  async run(args, ctx) {
    const [module, ...extra] = args.positionals;
    if (module === undefined || extra.length > 0) throw new UsageError('usage: ipp pantasks client load MODULE [--config JSON|FILE]');
    let config: unknown = {};
    const text = str(args, 'config');
    if (text !== undefined) {
      const inline = /^\s*[[{]/.test(text);
      let source = text;
      if (!inline) {
        try {
          source = await readFile(text, 'utf8');
        } catch (cause) {
          throw new UsageError(`--config: cannot read ${text}: ${(cause as Error).message}`, { cause });
        }
      }
      try {
        config = JSON.parse(source);
      } catch (cause) {
        throw new UsageError(`--config: ${inline ? 'the JSON given' : text} is not valid JSON: ${(cause as Error).message}`, { cause });
      }
    }
    const name = /^[a-z0-9][a-z0-9-]*$/.test(module) ? module : resolve(module);
    const m = await connect(args, ctx).load(name, config);
    ctx.stdout.write(`loaded ${m.module}: ${m.tasks.length} task${m.tasks.length === 1 ? '' : 's'} (${m.tasks.join(', ')})\n`);
    return EXIT.ok;
  },
};

const unload: Command = {
  name: 'unload',
  summary: 'unload a task module (its tasks go; their jobs out finish)',
  usage: 'MODULE',
  options: { ...clientOptions },
  async run(args, ctx) {
    const [module, ...extra] = args.positionals;
    if (module === undefined || extra.length > 0) throw new UsageError('usage: ipp pantasks client unload MODULE');
    await connect(args, ctx).unload(/^[a-z0-9][a-z0-9-]*$/.test(module) ? module : resolve(module));
    ctx.stdout.write(`unloaded ${module}\n`);
    return EXIT.ok;
  },
};

function simple(name: string, summary: string, act: (c: PantasksClient) => Promise<unknown>, said: string): Command {
  return {
    name, summary, usage: '', options: { ...clientOptions },
    async run(args, ctx) {
      noPositionals(args, `ipp pantasks client ${name}`);
      await act(connect(args, ctx));
      ctx.stdout.write(`${said}\n`);
      return EXIT.ok;
    },
  };
}

const hostAdd: Command = {
  name: 'add',
  summary: 'add a host: ssh (pclient over ssh), pclient (on this machine) or slurm (a partition)',
  usage: 'NAME [--kind ssh|pclient|slurm] [--slots N] [ssh: --address A --port P --user U --key K --pclient CMD --ssh-option O...] [slurm: --partition P --spool DIR --sbatch-arg A... --poll-ms N]',
  options: {
    ...clientOptions,
    kind: { type: 'string', value: 'KIND', help: 'ssh (default), pclient or slurm' },
    slots: { type: 'string', value: 'N', help: 'jobs at once (default 1; slurm 100)' },
    address: { type: 'string', value: 'HOST', help: 'ssh: address to connect to (default: NAME)' },
    port: { type: 'string', value: 'P', help: 'ssh: port' },
    user: { type: 'string', value: 'U', help: 'ssh: user' },
    key: { type: 'string', value: 'FILE', help: 'ssh: private key' },
    pclient: { type: 'string', value: 'CMD', help: 'ssh: the command that runs pclient there (default: ipp pclient)' },
    'ssh-option': { type: 'string', multiple: true, value: 'OPT', help: 'ssh: an -o option, e.g. StrictHostKeyChecking=no' },
    partition: { type: 'string', value: 'P', help: 'slurm: partition' },
    spool: { type: 'string', value: 'DIR', help: 'slurm: a directory every node sees (default beside the scheduler database)' },
    'sbatch-arg': { type: 'string', multiple: true, value: 'ARG', help: 'slurm: an extra sbatch argument, e.g. --time=60' },
    'poll-ms': { type: 'string', value: 'N', help: 'slurm: ms between polls (default 1000)' },
  },
  async run(args, ctx) {
    const [name, ...extra] = args.positionals;
    if (name === undefined || extra.length > 0) throw new UsageError('usage: ipp pantasks client host add NAME [--kind ssh|pclient|slurm] ...');
    const kind = str(args, 'kind') ?? 'ssh';
    const slots = whole(args, 'slots', 1);
    let config: HostConfig;
    if (kind === 'ssh') {
      const port = whole(args, 'port', 1);
      config = {
        kind, name, slots, host: str(args, 'address'), port, user: str(args, 'user'), key: str(args, 'key') === undefined ? undefined : resolve(str(args, 'key')!),
        pclient: str(args, 'pclient'), options: strings(args, 'ssh-option'),
      };
    } else if (kind === 'pclient') {
      config = { kind, name, slots };
    } else if (kind === 'slurm') {
      config = {
        kind, name, slots, partition: str(args, 'partition'), spoolDir: str(args, 'spool') === undefined ? undefined : resolve(str(args, 'spool')!),
        sbatchArgs: strings(args, 'sbatch-arg'), pollInterval: whole(args, 'poll-ms', 50),
      };
    } else throw new UsageError(`--kind "${kind}" must be ssh, pclient or slurm`);
    const clean = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as unknown as HostConfig;
    await connect(args, ctx).addHost(clean);
    ctx.stdout.write(`added ${kind} host ${name}\n`);
    return EXIT.ok;
  },
};

function hostAction(name: 'rm' | 'on' | 'off', summary: string): Command {
  return {
    name, summary, usage: 'NAME', options: { ...clientOptions },
    async run(args, ctx) {
      const [host, ...extra] = args.positionals;
      if (host === undefined || extra.length > 0) throw new UsageError(`usage: ipp pantasks client host ${name} NAME`);
      const c = connect(args, ctx);
      if (name === 'rm') await c.removeHost(host);
      else await c.setHost(host, name);
      ctx.stdout.write(`host ${host}: ${name === 'rm' ? 'removed' : name}\n`);
      return EXIT.ok;
    },
  };
}

const hostSlots: Command = {
  name: 'slots', summary: 'change how many jobs a host runs at once', usage: 'NAME N', options: { ...clientOptions },
  async run(args, ctx) {
    const [host, n, ...extra] = args.positionals;
    if (host === undefined || n === undefined || extra.length > 0 || !/^[0-9]+$/.test(n)) throw new UsageError('usage: ipp pantasks client host slots NAME N');
    await connect(args, ctx).setSlots(host, Number(n));
    ctx.stdout.write(`host ${host}: ${n} slots\n`);
    return EXIT.ok;
  },
};

const task: Command = {
  name: 'task',
  summary: 'change a task\'s options while it runs (or remove it)',
  usage: 'NAME [--active on|off] [--npending N] [--nmax N] [--period S] [--burst N] [--nice N] [--timeout S] [--host H [--needed]] [--trange "A B"...] [--no-trange] [--remove]',
  options: {
    ...clientOptions, json,
    active: { type: 'string', value: 'on|off', help: 'turn the task on or off' },
    npending: { type: 'string', value: 'N', help: 'most jobs out at once (0: no limit)' },
    nmax: { type: 'string', value: 'N', help: 'most jobs ever (0: no limit)' },
    period: { type: 'string', value: 'S', help: 'seconds between attempts' },
    burst: { type: 'string', value: 'N', help: 'jobs per attempt' },
    nice: { type: 'string', value: 'N', help: 'nice level of its jobs' },
    timeout: { type: 'string', value: 'S', help: 'seconds before a job is killed as hung (0: none)' },
    host: { type: 'string', value: 'H', help: 'local, anyhost or a host name' },
    needed: { type: 'boolean', help: 'with --host NAME: the job must run there' },
    trange: { type: 'string', multiple: true, value: 'RANGE', help: 'a time window "START END [-exclude] [-nmax N]" (replaces the windows)' },
    'no-trange': { type: 'boolean', help: 'remove every time window' },
    remove: { type: 'boolean', help: 'remove the task' },
  },
  async run(args, ctx) {
    const [name, ...extra] = args.positionals;
    if (name === undefined || extra.length > 0) throw new UsageError('usage: ipp pantasks client task NAME [options]');
    const c = connect(args, ctx);
    if (args.values.remove) {
      await c.removeTask(name);
      ctx.stdout.write(`task ${name} removed\n`);
      return EXIT.ok;
    }
    const patch: Record<string, unknown> = {};
    const active = str(args, 'active');
    if (active !== undefined) {
      if (!['on', 'off', 'true', 'false'].includes(active)) throw new UsageError('--active must be on or off');
      patch.active = active === 'on' || active === 'true';
    }
    for (const k of ['npending', 'nmax', 'burst'] as const) if (whole(args, k) !== undefined) patch[k] = whole(args, k);
    for (const k of ['period', 'nice', 'timeout'] as const) if (number(args, k) !== undefined) patch[k] = number(args, k);
    if (str(args, 'host') !== undefined) {
      patch.host = str(args, 'host');
      patch.hostNeed = args.values.needed ? 'needed' : 'wanted';
    } else if (args.values.needed) throw new UsageError('--needed goes with --host NAME');
    if (args.values['no-trange']) patch.trange = [];
    else if (strings(args, 'trange')) patch.trange = strings(args, 'trange');
    if (Object.keys(patch).length === 0) throw new UsageError('give at least one option to change (see --help)');
    const t = await c.setTask(name, patch as TaskOptions);
    if (args.values.json) printJson(ctx, t);
    else ctx.stdout.write(`task ${t.name}: active ${t.active}, host ${t.host}${t.hostNeed === 'needed' ? ' (needed)' : ''}, period ${t.period} s, npending ${t.npending || '-'}, nmax ${t.nmax || '-'}, trange ${t.trange.join('; ') || '-'}\n`);
    return EXIT.ok;
  },
};

const labels: Command = {
  name: 'labels',
  summary: 'show, add or remove the processing labels the stage tasks work on',
  usage: '[--add L...] [--remove L...]',
  options: {
    ...clientOptions,
    add: { type: 'string', multiple: true, value: 'LABEL', help: 'add a label' },
    remove: { type: 'string', multiple: true, value: 'LABEL', help: 'remove a label' },
  },
  async run(args, ctx) {
    noPositionals(args, 'ipp pantasks client labels [--add L] [--remove L]');
    const r = await connect(args, ctx).labels({ add: strings(args, 'add'), remove: strings(args, 'remove') });
    ctx.stdout.write(`labels: ${r.labels.join(', ') || '(none)'}\n`);
    return EXIT.ok;
  },
};

/** `ipp pantasks client ...` */
const clientGroup: CommandGroup = {
  name: 'client',
  summary: 'drive a running server: load modules, add hosts, status, run and stop, task options',
  commands: [
    status, jobs, book, load, unload,
    simple('run', 'start trying tasks', (c) => c.run(), 'running'),
    simple('stop', 'stop trying tasks (jobs out finish)', (c) => c.stop(), 'stopped'),
    {
      name: 'host', summary: 'pcontrol hosts: add, rm, on, off, slots',
      commands: [hostAdd, hostAction('rm', 'remove a host (its jobs run elsewhere)'), hostAction('on', 'turn a host on'), hostAction('off', 'turn a host off (its jobs run elsewhere)'), hostSlots],
    },
    task, labels,
    simple('shutdown', 'shut the server down (its jobs are killed, their pages go back to INIT)', (c) => c.shutdown(), 'shutting down'),
  ],
};

/** `ipp pantasks ...`: the scheduler. */
export const pantasksGroup: CommandGroup = {
  name: 'pantasks',
  summary: 'the scheduler: tasks, books, pcontrol hosts (ssh, Slurm); server and client',
  commands: [server, clientGroup],
};

/** `ipp pclient`: the shell pcontrol runs on each host (through ssh); reads JSON requests on stdin. */
export const pclientCommand: Command = {
  name: 'pclient',
  summary: 'the long-lived job shell pcontrol keeps on each host (speaks JSON lines on stdin/stdout)',
  usage: '',
  description: 'Started by the scheduler through ssh; not meant to be run by hand. Ends, killing its jobs, when its input closes.',
  options: {},
  async run(args, ctx) {
    noPositionals(args, 'ipp pclient');
    // pclient's input is the ssh channel: the process's own stdin, the one thing the context lacks.
    return runPclient({ input: process.stdin, output: ctx.stdout, env: ctx.env, signal: ctx.signal });
  },
};
