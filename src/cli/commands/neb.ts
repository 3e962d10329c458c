// `ipp neb ...`: the Nebulous server and its client commands (the original's neb-* tools:
// neb-touch/create, neb-replicate, neb-cull, neb-rm, neb-locate/find, neb-ls, neb-stat,
// neb-lock, neb-mv, neb-cp, neb-swap, neb-voladd/voladm, neb-fsck).
import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { UsageError } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import {
  MAX_FIND_MANY, NEBULOUS_MIGRATIONS, NebulousClient, VOLUME_STATES, startNebulousServer,
  type FsckReport, type HousekeepingReport, type ObjectStat, type VolumeState,
} from '../../nebulous/index.ts';
import { EXIT, optionalWholeNumber, portNumber, wholeNumber, type Command, type CommandContext, type CommandGroup, type OptionSpec, type ParsedArgs } from '../command.ts';
import { databaseUrl, dbOption, serverToken, serviceEndpoint, serviceOptions } from '../settings.ts';

/** The port `ipp neb serve` listens on unless told otherwise. */
export const DEFAULT_NEB_PORT = 8380;

const client = serviceOptions('neb');
const json: Record<string, OptionSpec> = { json: { type: 'boolean', help: 'print JSON' } };
const volumeOption: OptionSpec = { type: 'string', value: 'VOL', help: 'the volume (HOST.VOL): a wish, ~VOL a requirement' };

/** The lock holder of the command line: stable across invocations, so a later command can unlock. */
function cliHolder(args: ParsedArgs): string {
  if (typeof args.values.holder === 'string') return args.values.holder;
  let user = 'user';
  try { user = userInfo().username; } catch { /* no passwd entry */ }
  return `${user}@${hostname()}`;
}

async function withClient<T>(args: ParsedArgs, ctx: CommandContext, fn: (c: NebulousClient) => Promise<T>): Promise<T> {
  const c = new NebulousClient({ ...serviceEndpoint('neb', args, ctx.env), holder: cliHolder(args) });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function say(ctx: CommandContext, text: string): void {
  ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function positionals(args: ParsedArgs, min: number, max: number, usage: string): string[] {
  const p = args.positionals;
  if (p.length < min || p.length > max) throw new UsageError(`usage: ipp neb ${usage}`);
  return p;
}

function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A byte count: a whole number with an optional K, M, G or T suffix (powers of 1024). */
function byteCount(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(String(value).trim());
  const scale = m?.[2] ? 1024 ** ('KMGT'.indexOf(m[2][0].toUpperCase()) + 1) : 1;
  const n = m ? Number(m[1]) * scale : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} "${String(value)}" must be a byte count such as 1048576, 512M or 20T`);
  return n;
}

function seconds(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} "${String(value)}" must be a number of seconds`);
  return n * 1000;
}

function volumeState(value: unknown): VolumeState | undefined {
  if (value === undefined) return undefined;
  if (!VOLUME_STATES.includes(value as VolumeState)) throw new UsageError(`--state "${String(value)}" must be one of ${VOLUME_STATES.join(', ')}`);
  return value as VolumeState;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const serve: Command = {
  name: 'serve',
  summary: 'run the Nebulous server until Ctrl-C',
  usage: '[--db URL] [--host H] [--port P] [--token T] [--read-token T]',
  description: [
    'Serves the Nebulous operations as HTTP/JSON. Volumes are directories this machine can',
    'reach; the server itself copies files (replicate, copy, import) and checks them (fsck).',
    'Changes need --token (or $IPP_NEB_TOKEN); without one the server listens on loopback only.',
    'Every 30 s it releases the locks of clients that stopped sending heartbeats and records the',
    'measured free space of volumes. The database defaults to sqlite:ipp-data/neb.db.',
  ].join('\n'),
  options: {
    db: dbOption('neb'),
    host: { type: 'string', value: 'HOST', help: 'address to listen on', default: '127.0.0.1' },
    port: { type: 'string', value: 'PORT', help: 'port to listen on (0: any free port)', default: String(DEFAULT_NEB_PORT) },
    token: { type: 'string', value: 'TOKEN', help: 'bearer token that changes need (default $IPP_NEB_TOKEN)' },
    'read-token': { type: 'string', value: 'TOKEN', help: 'bearer token that reads need (default: reads are open)' },
    'lock-timeout': { type: 'string', value: 'SECONDS', help: 'release locks of clients silent this long (default 300)' },
    'no-fsync': { type: 'boolean', help: 'do not flush copies to disk before they are recorded (faster, less safe)' },
  },
  async run(args, ctx) {
    positionals(args, 0, 0, 'serve [--db URL] [--port P]');
    const port = portNumber(args.values.port);
    const host = String(args.values.host);
    const token = serverToken('neb', args, ctx.env);
    if (token === undefined && !LOOPBACK.has(host)) {
      throw new UsageError(`a server on ${host} needs a write token: pass --token or set IPP_NEB_TOKEN (without one it may listen on loopback only)`);
    }
    const url = databaseUrl('neb', args, ctx.env);
    const log = ctx.log.child('neb');
    const db = await openDatabase(url, { migrations: [NEBULOUS_MIGRATIONS], maxConnections: 8 });
    try {
      const server = await startNebulousServer({
        db, log, host, port, tokens: { write: token, read: str(args, 'read-token') },
        lockTimeoutMs: seconds('lock-timeout', args.values['lock-timeout']), syncData: !args.values['no-fsync'],
      });
      say(ctx, `nebulous: serving at ${server.url} (database ${db.url}); changes ${token ? 'need the token' : 'open (loopback only, no token set)'}`);
      await new Promise<void>((done) => {
        if (ctx.signal.aborted) done();
        else ctx.signal.addEventListener('abort', () => done(), { once: true });
      });
      await server.close();
      say(ctx, 'nebulous: stopped');
    } finally {
      await db.close();
    }
    return EXIT.ok;
  },
};

const volumeAdd: Command = {
  name: 'add',
  summary: 'register volume HOST.VOLUME at a directory (the original neb-voladd)',
  usage: 'HOST VOLUME PATH [--state S] [--capacity BYTES --free BYTES] [--prepare]',
  description: 'Without --capacity/--free the server measures them from the file system.',
  options: {
    ...client,
    prepare: { type: 'boolean', help: 'make the 65,536 hash directories now (the original mkdirs step; takes seconds)' },
    state: { type: 'string', value: 'S', help: `${VOLUME_STATES.join(', ')} (default available)` },
    capacity: { type: 'string', value: 'BYTES', help: 'capacity set by hand, e.g. 20T' },
    free: { type: 'string', value: 'BYTES', help: 'free space set by hand' },
  },
  async run(args, ctx) {
    const [host, volume, path] = positionals(args, 3, 3, 'volume add HOST VOLUME PATH');
    const v = await withClient(args, ctx, (c) => c.addVolume({
      host, volume, path: resolve(path), state: volumeState(args.values.state),
      capacity: byteCount('capacity', args.values.capacity), free: byteCount('free', args.values.free),
      prepare: args.values.prepare === true,
    }));
    say(ctx, `added volume ${v.name} on ${v.host} at ${v.path} (${v.state})`);
    return EXIT.ok;
  },
};

const volumeSet: Command = {
  name: 'set',
  summary: 'change a volume: state (available, read-only, down), path, sizes (the original neb-voladm)',
  usage: 'NAME [--state S] [--path DIR] [--capacity BYTES] [--free BYTES] [--measure]',
  options: {
    ...client,
    state: { type: 'string', value: 'S', help: VOLUME_STATES.join(', ') },
    path: { type: 'string', value: 'DIR', help: 'the new mount path' },
    capacity: { type: 'string', value: 'BYTES', help: 'capacity set by hand' },
    free: { type: 'string', value: 'BYTES', help: 'free space set by hand' },
    measure: { type: 'boolean', help: 'measure capacity and free space from the file system again' },
  },
  async run(args, ctx) {
    const [name] = positionals(args, 1, 1, 'volume set NAME [--state S] ...');
    const path = str(args, 'path');
    const v = await withClient(args, ctx, (c) => c.setVolume(name, {
      state: volumeState(args.values.state), path: path === undefined ? undefined : resolve(path),
      capacity: byteCount('capacity', args.values.capacity), free: byteCount('free', args.values.free),
      measure: args.values.measure === true ? true : undefined,
    }));
    say(ctx, `volume ${v.name}: ${v.state}, ${v.path}, ${formatSpace(v.free, v.capacity)}`);
    return EXIT.ok;
  },
};

function formatSpace(free: number | null, capacity: number | null): string {
  const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;
  return free === null ? 'free space unknown' : `${gb(free)} free${capacity ? ` of ${gb(capacity)} (${((100 * free) / capacity).toFixed(0)}%)` : ''}`;
}

const volumeLs: Command = {
  name: 'ls',
  summary: 'list volumes: host, state, space, instances',
  usage: '[--json]',
  options: { ...client, ...json },
  async run(args, ctx) {
    positionals(args, 0, 0, 'volume ls [--json]');
    const volumes = await withClient(args, ctx, (c) => c.volumes());
    if (args.values.json) {
      say(ctx, JSON.stringify(volumes, null, 2));
      return EXIT.ok;
    }
    const rows = volumes.map((v) => [v.name, v.host, v.state, formatSpace(v.free, v.capacity) + (v.measured ? '' : ' (set by hand)'), String(v.instances ?? 0), v.path]);
    say(ctx, table(['VOLUME', 'HOST', 'STATE', 'SPACE', 'INSTANCES', 'PATH'], rows));
    return EXIT.ok;
  },
};

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

const volumeGroup: CommandGroup = {
  name: 'volume',
  summary: 'storage volumes: add, set, ls',
  commands: [volumeAdd, volumeSet, volumeLs],
};

const create: Command = {
  name: 'create',
  summary: 'create a storage object; prints the path to write (the original neb-touch)',
  usage: 'KEY [--volume VOL] [--copies N]',
  description: 'KEY is a path (gpc1/raw/o5197g0123o.ota01.fits) or a neb: URI (neb://ipp004.0/gpc1/...).',
  options: { ...client, volume: volumeOption, copies: { type: 'string', value: 'N', help: 'copies on distinct hosts to keep (default 1)' } },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'create KEY [--volume VOL]');
    const placed = await withClient(args, ctx, (c) => c.create(key, { volume: str(args, 'volume'), copies: optionalWholeNumber(args.values.copies, '--copies', 1, 16) }));
    say(ctx, placed.path);
    return EXIT.ok;
  },
};

const replicate: Command = {
  name: 'replicate',
  summary: 'add a checked copy on another volume (another host when one can take it); prints its path',
  usage: 'KEY [--volume VOL]',
  options: { ...client, volume: volumeOption },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'replicate KEY [--volume VOL]');
    say(ctx, (await withClient(args, ctx, (c) => c.replicate(key, { volume: str(args, 'volume') }))).path);
    return EXIT.ok;
  },
};

const cull: Command = {
  name: 'cull',
  summary: 'remove one instance (by --path, on --volume, or the newest); never the last unless --force',
  usage: 'KEY [--volume VOL | --path PATH] [--force]',
  options: {
    ...client, volume: { type: 'string', value: 'VOL', help: 'remove the instance on this volume' },
    path: { type: 'string', value: 'PATH', help: 'remove the instance at this path' },
    force: { type: 'boolean', help: 'remove even the last instance (deleting the object)' },
  },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'cull KEY [--volume VOL | --path PATH] [--force]');
    const r = await withClient(args, ctx, (c) => c.cull(key, { volume: str(args, 'volume'), path: str(args, 'path'), force: args.values.force === true }));
    say(ctx, `removed ${r.removed}${r.deleted ? ` (it was the last instance: ${key} is deleted)` : ''}`);
    return EXIT.ok;
  },
};

const del: Command = {
  name: 'delete',
  summary: 'delete storage objects and every instance (the original neb-rm)',
  usage: 'KEY...',
  options: { ...client },
  async run(args, ctx) {
    const keys = positionals(args, 1, Infinity, 'delete KEY...');
    await withClient(args, ctx, async (c) => {
      for (const key of keys) {
        const r = await c.delete(key);
        say(ctx, `deleted ${r.key} (${r.removed.length} instance${r.removed.length === 1 ? '' : 's'})`);
      }
    });
    return EXIT.ok;
  },
};

const find: Command = {
  name: 'find',
  summary: 'print the path of every readable instance, best first (the original neb-locate)',
  usage: 'KEY... [--host H] [--volume VOL]',
  description: 'With one KEY, one path per line. With several, one line per key: the key, then its paths (asked in one call).',
  options: { ...client, host: { type: 'string', value: 'HOST', help: 'prefer instances on this host' }, volume: volumeOption },
  async run(args, ctx) {
    const keys = positionals(args, 1, MAX_FIND_MANY, 'find KEY... [--host H]');
    const where = { host: str(args, 'host'), volume: str(args, 'volume') };
    if (keys.length === 1) {
      say(ctx, (await withClient(args, ctx, (c) => c.find(keys[0], where))).join('\n'));
      return EXIT.ok;
    }
    const results = await withClient(args, ctx, (c) => c.findMany(keys, where));
    let failed = false;
    for (const r of results) {
      if ('paths' in r) {
        say(ctx, `${r.key} ${r.paths.join(' ')}`);
      } else {
        ctx.stderr.write(`ipp neb find: ${r.key}: error [${r.error.code}]: ${r.error.message}\n`);
        failed = true;
      }
    }
    return failed ? EXIT.failed : EXIT.ok;
  },
};

const open: Command = {
  name: 'open',
  summary: 'print the path to read (or with --write, to write: the other instances are culled first)',
  usage: 'KEY [--write] [--host H] [--volume VOL]',
  options: {
    ...client, write: { type: 'boolean', help: 'open for writing' },
    host: { type: 'string', value: 'HOST', help: 'prefer the instance on this host' }, volume: volumeOption,
    holder: { type: 'string', value: 'NAME', help: 'the lock holder this command acts for (default user@host)' },
  },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'open KEY [--write]');
    const r = await withClient(args, ctx, (c) => c.open(key, args.values.write ? 'write' : 'read', { host: str(args, 'host'), volume: str(args, 'volume') }));
    say(ctx, r.path);
    return EXIT.ok;
  },
};

const glob: Command = {
  name: 'glob',
  summary: 'list the keys matching a glob (* within a segment, ** across, ?, [...]) or with --regex a regular expression',
  usage: 'PATTERN [--regex] [--limit N]',
  options: {
    ...client, regex: { type: 'boolean', help: 'PATTERN is a (JavaScript) regular expression' },
    limit: { type: 'string', value: 'N', help: 'stop after N keys' },
  },
  async run(args, ctx) {
    const [pattern] = positionals(args, 1, 1, 'glob PATTERN [--regex]');
    const limit = optionalWholeNumber(args.values.limit, '--limit', 1, Number.MAX_SAFE_INTEGER);
    await withClient(args, ctx, async (c) => {
      const keys = args.values.regex ? c.regex(pattern, { limit, signal: ctx.signal }) : c.glob(pattern, { limit, signal: ctx.signal });
      let lines: string[] = [];
      for await (const key of keys) {
        lines.push(key);
        if (lines.length >= 1000) {
          ctx.stdout.write(`${lines.join('\n')}\n`);
          lines = [];
        }
      }
      if (lines.length) ctx.stdout.write(`${lines.join('\n')}\n`);
    });
    return EXIT.ok;
  },
};

const statCommand: Command = {
  name: 'stat',
  summary: 'show a storage object: size, checksum, copies, locks, attributes, instances',
  usage: 'KEY [--json]',
  options: { ...client, ...json },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'stat KEY [--json]');
    const s = await withClient(args, ctx, (c) => c.stat(key));
    say(ctx, args.values.json ? JSON.stringify(s, null, 2) : formatStat(s));
    return EXIT.ok;
  },
};

function formatStat(s: ObjectStat): string {
  const lines = [
    `key:       ${s.key}`,
    `id:        ${s.id}`,
    `state:     ${s.state}${s.deletedAt ? ` (at ${s.deletedAt})` : ''}`,
    `size:      ${s.size ?? '(not recorded yet)'}`,
    `sha256:    ${s.checksum ?? '(not recorded yet)'}`,
    `copies:    ${s.copies}`,
    `locks:     ${s.writeLock ? `write by ${s.writeLock.holder} since ${s.writeLock.time}` : s.readLocks ? `${s.readLocks} read (${s.locks.map((l) => l.holder).join(', ')})` : 'none'}`,
    `created:   ${s.createdAt}`,
    `modified:  ${s.modifiedAt}`,
  ];
  for (const [name, value] of Object.entries(s.attributes)) lines.push(`attribute: ${name} = ${value}`);
  for (const i of s.instances) {
    lines.push(`instance:  ${i.path} (${i.volume}, ${i.volumeState}${i.pinned ? ', pinned' : ''}, ${i.fileSize === null ? 'file missing or volume down' : `${i.fileSize} bytes`})`);
  }
  return lines.join('\n');
}

const holderOption: OptionSpec = { type: 'string', value: 'NAME', help: 'lock holder (default user@host, the same for every command of this user here)' };

const lock: Command = {
  name: 'lock',
  summary: 'take a read lock (or --write, the write lock) on a storage object',
  usage: 'KEY [--write] [--wait SECONDS] [--holder NAME]',
  description: 'Locks of a holder that sends no heartbeat (ipp neb heartbeat) are released after the server\'s lock timeout.',
  options: {
    ...client, write: { type: 'boolean', help: 'the write lock' }, holder: holderOption,
    wait: { type: 'string', value: 'SECONDS', help: 'keep trying this long while someone else holds a conflicting lock' },
  },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'lock KEY [--write]');
    const mode = args.values.write ? 'write' : 'read';
    await withClient(args, ctx, (c) => c.lock(key, mode, { waitMs: seconds('wait', args.values.wait) }));
    say(ctx, `${mode}-locked ${key} for ${cliHolder(args)}`);
    return EXIT.ok;
  },
};

const unlock: Command = {
  name: 'unlock',
  summary: 'release a read lock (or --write, the write lock) this holder has',
  usage: 'KEY [--write] [--holder NAME]',
  options: { ...client, write: { type: 'boolean', help: 'the write lock' }, holder: holderOption },
  async run(args, ctx) {
    const [key] = positionals(args, 1, 1, 'unlock KEY [--write]');
    const mode = args.values.write ? 'write' : 'read';
    await withClient(args, ctx, (c) => c.unlock(key, mode));
    say(ctx, `released the ${mode} lock of ${cliHolder(args)} on ${key}`);
    return EXIT.ok;
  },
};

const heartbeat: Command = {
  name: 'heartbeat',
  summary: 'keep this holder\'s locks alive',
  usage: '[--holder NAME]',
  options: { ...client, holder: holderOption },
  async run(args, ctx) {
    positionals(args, 0, 0, 'heartbeat [--holder NAME]');
    const n = await withClient(args, ctx, (c) => c.heartbeat());
    say(ctx, `${cliHolder(args)} holds ${n} lock${n === 1 ? '' : 's'}`);
    return EXIT.ok;
  },
};

const copy: Command = {
  name: 'copy',
  summary: 'create a new object from a checked copy of an existing one (the original neb-cp)',
  usage: 'FROM TO [--volume VOL]',
  options: { ...client, volume: volumeOption },
  async run(args, ctx) {
    const [from, to] = positionals(args, 2, 2, 'copy FROM TO');
    say(ctx, (await withClient(args, ctx, (c) => c.copy(from, to, { volume: str(args, 'volume') }))).path);
    return EXIT.ok;
  },
};

const move: Command = {
  name: 'move',
  summary: 'rename a storage object (the original neb-mv)',
  usage: 'FROM TO',
  options: { ...client },
  async run(args, ctx) {
    const [from, to] = positionals(args, 2, 2, 'move FROM TO');
    const r = await withClient(args, ctx, (c) => c.move(from, to));
    say(ctx, `moved ${r.from} to ${r.to}`);
    return EXIT.ok;
  },
};

const swap: Command = {
  name: 'swap',
  summary: 'exchange the keys of two storage objects',
  usage: 'KEY1 KEY2',
  options: { ...client },
  async run(args, ctx) {
    const [a, b] = positionals(args, 2, 2, 'swap KEY1 KEY2');
    await withClient(args, ctx, (c) => c.swap(a, b));
    say(ctx, `swapped ${a} and ${b}`);
    return EXIT.ok;
  },
};

const importCommand: Command = {
  name: 'import',
  summary: 'adopt an existing file as a new object (copied in; the original stays unless --move)',
  usage: 'FILE KEY [--volume VOL] [--copies N] [--move]',
  description: 'FILE is read by the server, so it must be a path the server can reach.',
  options: {
    ...client, volume: volumeOption, copies: { type: 'string', value: 'N', help: 'copies on distinct hosts to keep' },
    move: { type: 'boolean', help: 'remove FILE once it is recorded' },
  },
  async run(args, ctx) {
    const [file, key] = positionals(args, 2, 2, 'import FILE KEY');
    const placed = await withClient(args, ctx, (c) => c.import(resolve(file), key, {
      volume: str(args, 'volume'), copies: optionalWholeNumber(args.values.copies, '--copies', 1, 16), move: args.values.move === true,
    }));
    say(ctx, placed.path);
    return EXIT.ok;
  },
};

const attr: Command = {
  name: 'attr',
  summary: 'show, set (NAME VALUE) or --delete a user attribute of a storage object',
  usage: 'KEY [NAME [VALUE]] [--delete]',
  options: { ...client, delete: { type: 'boolean', help: 'remove attribute NAME' } },
  async run(args, ctx) {
    const [key, name, value] = positionals(args, 1, 3, 'attr KEY [NAME [VALUE]] [--delete]');
    const attributes = await withClient(args, ctx, async (c) => {
      if (name === undefined) return (await c.stat(key)).attributes;
      if (args.values.delete) {
        if (value !== undefined) throw new UsageError('--delete takes no VALUE');
        return c.setAttribute(key, name, null);
      }
      if (value === undefined) {
        const all = (await c.stat(key)).attributes;
        if (!(name in all)) throw new UsageError(`${key} has no attribute ${name}`);
        return { [name]: all[name] };
      }
      return c.setAttribute(key, name, value);
    });
    const lines = Object.entries(attributes).map(([k, v]) => `${k}=${v}`);
    if (lines.length) say(ctx, lines.join('\n'));
    return EXIT.ok;
  },
};

const copies: Command = {
  name: 'copies',
  summary: 'set how many copies on distinct hosts an object keeps (ipp neb repair adds missing ones)',
  usage: 'KEY N',
  options: { ...client },
  async run(args, ctx) {
    const [key, n] = positionals(args, 2, 2, 'copies KEY N');
    const count = wholeNumber(String(n), 'N', 1, 16);
    await withClient(args, ctx, (c) => c.setCopies(key, count));
    say(ctx, `${key} keeps ${count} cop${count === 1 ? 'y' : 'ies'}`);
    return EXIT.ok;
  },
};

const fsckCommand: Command = {
  name: 'fsck',
  summary: 'check that the database and the volumes agree; --fix repairs (exit 1 while problems remain)',
  usage: '[--fix] [--checksum] [--grace SECONDS] [--volume VOL]... [--json]',
  description: [
    'Reports instances whose file is missing, has another size or (with --checksum) another',
    'SHA-256 than recorded, files on volumes that no instance names (orphans, unfinished copies),',
    'objects short of copies, and locks of silent holders. --fix removes bad instances (never an',
    'object\'s last data) and replicates again, removes orphans, releases stale locks.',
  ].join('\n'),
  options: {
    ...client, ...json, fix: { type: 'boolean', help: 'repair what is found' },
    checksum: { type: 'boolean', help: 'read every file and compare its SHA-256' },
    grace: { type: 'string', value: 'SECONDS', help: 'files younger than this are not orphans yet (default 300)' },
    volume: { type: 'string', multiple: true, value: 'VOL', help: 'check only this volume (repeatable)' },
  },
  async run(args, ctx) {
    positionals(args, 0, 0, 'fsck [--fix] [--checksum]');
    const volumes = args.values.volume as string[] | undefined;
    const report = await withClient(args, ctx, (c) => c.fsck({
      fix: args.values.fix === true, checksum: args.values.checksum === true, graceMs: seconds('grace', args.values.grace),
      volumes: volumes?.length ? volumes : undefined,
    }));
    say(ctx, args.values.json ? JSON.stringify(report, null, 2) : formatFsck(report));
    return report.problems.every((p) => p.fixed) ? EXIT.ok : EXIT.failed;
  },
};

function formatFsck(r: FsckReport): string {
  const lines = r.problems.map((p) => `${p.fixed ? 'fixed' : 'found'} ${p.kind}: ${p.key ? `${p.key}: ` : ''}${p.detail}`);
  lines.push(`fsck: ${r.instancesChecked} instances checked, ${r.filesScanned} files on ${r.volumesScanned.length} volume(s)`
    + `${r.volumesSkipped.length ? ` (${r.volumesSkipped.join(', ')} down, not checked)` : ''}; `
    + `${r.problems.length === 0 ? 'clean' : `${r.problems.length} problem(s), ${r.problems.filter((p) => p.fixed).length} fixed`}`
    + `${r.replicated ? `, ${r.replicated} copies made` : ''}`);
  return lines.join('\n');
}

function formatHousekeeping(what: string, r: HousekeepingReport): string {
  const lines = r.done.map((d) => `${d.key}: ${d.from ? `${d.from} -> ` : ''}${d.to} ${d.path}`);
  for (const f of r.failed) lines.push(`failed ${f.key}: ${f.reason}`);
  lines.push(`${what}: ${r.examined} examined, ${r.done.length} done, ${r.failed.length} failed`);
  return lines.join('\n');
}

const repairCommand: Command = {
  name: 'repair',
  summary: 'add the copies objects need on distinct hosts',
  usage: '[--json]',
  options: { ...client, ...json },
  async run(args, ctx) {
    positionals(args, 0, 0, 'repair');
    const r = await withClient(args, ctx, (c) => c.repair());
    say(ctx, args.values.json ? JSON.stringify(r, null, 2) : formatHousekeeping('repair', r));
    return r.failed.length ? EXIT.failed : EXIT.ok;
  },
};

const rebalanceCommand: Command = {
  name: 'rebalance',
  summary: 'move unpinned instances off volumes short of free space',
  usage: '[--min-free FRACTION] [--max-moves N] [--json]',
  options: {
    ...client, ...json,
    'min-free': { type: 'string', value: 'FRACTION', help: 'volumes with less free space than this give instances away (default 0.1)' },
    'max-moves': { type: 'string', value: 'N', help: 'at most this many moves (default 1000)' },
  },
  async run(args, ctx) {
    positionals(args, 0, 0, 'rebalance');
    const minFree = args.values['min-free'] === undefined ? undefined : Number(args.values['min-free']);
    if (minFree !== undefined && !(minFree >= 0 && minFree <= 1)) throw new UsageError(`--min-free "${String(args.values['min-free'])}" must be a fraction from 0 to 1`);
    const r = await withClient(args, ctx, (c) => c.rebalance({ minFree, maxMoves: optionalWholeNumber(args.values['max-moves'], '--max-moves', 0, 10_000_000) }));
    say(ctx, args.values.json ? JSON.stringify(r, null, 2) : formatHousekeeping('rebalance', r));
    return r.failed.length ? EXIT.failed : EXIT.ok;
  },
};

const sweepCommand: Command = {
  name: 'sweep-locks',
  summary: 'release the locks of holders that sent no heartbeat for the lock timeout',
  usage: '[--timeout SECONDS]',
  options: { ...client, timeout: { type: 'string', value: 'SECONDS', help: 'silence that counts as dead (default: the server\'s)' } },
  async run(args, ctx) {
    positionals(args, 0, 0, 'sweep-locks');
    const released = await withClient(args, ctx, (c) => c.sweepLocks({ timeoutMs: seconds('timeout', args.values.timeout) }));
    for (const l of released) say(ctx, `released ${l.mode} lock of ${l.holder} on ${l.key} (last heartbeat ${l.heartbeatAt})`);
    say(ctx, `${released.length} lock(s) released`);
    return EXIT.ok;
  },
};

/** `ipp neb ...`: Nebulous, the file-location service. */
export const nebGroup: CommandGroup = {
  name: 'neb',
  summary: 'Nebulous: storage objects on volumes (serve, create, find, replicate, glob, fsck, ...)',
  commands: [
    serve, volumeGroup, create, replicate, cull, del, find, open, glob, statCommand, lock, unlock, heartbeat,
    copy, move, swap, importCommand, attr, copies, repairCommand, fsckCommand, rebalanceCommand, sweepCommand,
  ],
};
