// `ipp datastore ...`: the datastore server and its client commands (the original's dsprodtool,
// dsreg, dsget and datastoreRemover, over HTTP).
import { join, resolve } from 'node:path';
import { createProgress, UsageError } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import {
  DATASTORE_MIGRATIONS, DatastoreClient, formatFilesetIndex, formatProductIndex, formatRootIndex, startDatastoreServer,
  type FilesetQuery, type PublishSource,
} from '../../datastore/index.ts';
import { EXIT, portNumber, type Command, type CommandContext, type CommandGroup, type OptionSpec, type ParsedArgs } from '../command.ts';
import { databaseUrl, dbOption, serverToken, serviceEndpoint, serviceOptions } from '../settings.ts';

/** The port `ipp datastore serve` listens on unless told otherwise. */
export const DEFAULT_DATASTORE_PORT = 8470;

const client = serviceOptions('datastore');
const json: Record<string, OptionSpec> = { json: { type: 'boolean', help: 'print JSON instead of the plain-text index' } };

function connect(args: ParsedArgs, ctx: CommandContext): DatastoreClient {
  return new DatastoreClient(serviceEndpoint('datastore', args, ctx.env));
}

function say(ctx: CommandContext, text: string): void {
  ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function positionals(args: ParsedArgs, min: number, max: number, usage: string): string[] {
  const p = args.positionals;
  if (p.length < min || p.length > max) throw new UsageError(`usage: ${usage}`);
  return p;
}

/** A byte count: a whole number with an optional K, M, G or T suffix (powers of 1024). */
function byteCount(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(String(value).trim());
  const scale = m?.[2] ? 1024 ** ('KMGT'.indexOf(m[2][0].toUpperCase()) + 1) : 1;
  const n = m ? Number(m[1]) * scale : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} "${value}" must be a byte count such as 1048576, 512M or 20G`);
  return n;
}

const serve: Command = {
  name: 'serve',
  summary: 'run the datastore server over a root directory until Ctrl-C',
  usage: '--root DIR [--db URL] [--host H] [--port P] [--token T]',
  description: [
    'Serves products, filesets and files from DIR (laid out as DIR/PRODUCT/FILESET/FILE), the',
    'JSON API under /products and the original plain-text index under /ds/.../index.txt.',
    'Writes need --token (or $IPP_DATASTORE_TOKEN); a server without one accepts writes only',
    'when it listens on loopback. The database defaults to DIR/.datastore.db (SQLite), unless',
    '--db, $IPP_DATASTORE_DB or $IPP_DB names one. At start the server removes what a crash left',
    'behind: unfinished uploads and fileset directories that were never registered.',
  ].join('\n'),
  options: {
    root: { type: 'string', value: 'DIR', help: 'the directory that holds the files (created if needed)' },
    db: dbOption('datastore'),
    host: { type: 'string', value: 'HOST', help: 'address to listen on', default: '127.0.0.1' },
    port: { type: 'string', value: 'PORT', help: 'port to listen on (0: any free port)', default: String(DEFAULT_DATASTORE_PORT) },
    token: { type: 'string', value: 'TOKEN', help: 'bearer token that writes need (default $IPP_DATASTORE_TOKEN)' },
    'max-file-bytes': { type: 'string', value: 'N', help: 'largest file accepted (default 32G)' },
    'max-fileset-bytes': { type: 'string', value: 'N', help: 'largest fileset accepted (default 64G)' },
    'reserve-bytes': { type: 'string', value: 'N', help: 'free space the disk keeps; uploads that would use it get 507 (default 64M)' },
    'no-fsync': { type: 'boolean', help: 'do not flush received files to disk before registering them (faster, less safe)' },
  },
  async run(args, ctx) {
    positionals(args, 0, 0, 'ipp datastore serve --root DIR');
    if (typeof args.values.root !== 'string' || args.values.root === '') throw new UsageError('give the root directory: --root DIR');
    const root = resolve(args.values.root);
    const port = portNumber(args.values.port);
    const named = typeof args.values.db === 'string' || Boolean(ctx.env.IPP_DATASTORE_DB) || Boolean(ctx.env.IPP_DB);
    const url = named ? databaseUrl('datastore', args, ctx.env) : `sqlite:${join(root, '.datastore.db')}`;
    const log = ctx.log.child('datastore');
    const db = await openDatabase(url, { migrations: [DATASTORE_MIGRATIONS] });
    try {
      const limits = {
        ...(args.values['max-file-bytes'] !== undefined ? { maxFileBytes: byteCount('max-file-bytes', args.values['max-file-bytes']) } : {}),
        ...(args.values['max-fileset-bytes'] !== undefined ? { maxFilesetBytes: byteCount('max-fileset-bytes', args.values['max-fileset-bytes']) } : {}),
      };
      const server = await startDatastoreServer({
        root, db, log, port, host: String(args.values.host), token: serverToken('datastore', args, ctx.env), limits,
        reserveBytes: byteCount('reserve-bytes', args.values['reserve-bytes']), fsync: !args.values['no-fsync'],
      });
      const writes = serverToken('datastore', args, ctx.env) !== undefined ? 'need the token' : server.writable ? 'open (loopback only, no token set)' : 'refused (no token set)';
      say(ctx, `datastore: serving ${root} at ${server.url} (database ${db.url}); writes ${writes}`);
      await new Promise<void>((done) => {
        if (ctx.signal.aborted) done();
        else ctx.signal.addEventListener('abort', () => done(), { once: true });
      });
      await server.close();
      say(ctx, 'datastore: stopped');
    } finally {
      await db.close();
    }
    return EXIT.ok;
  },
};

const productAdd: Command = {
  name: 'add',
  summary: 'add a product (the original dsprodtool --add)',
  usage: 'NAME --type T --description D [--read-token T]',
  options: {
    ...client,
    type: { type: 'string', value: 'T', help: 'product type, e.g. IPP-PSPS' },
    description: { type: 'string', value: 'TEXT', help: 'what the product holds' },
    'read-token': { type: 'string', value: 'T', help: 'make reads of this product need this token' },
  },
  async run(args, ctx) {
    const [name] = positionals(args, 1, 1, 'ipp datastore product add NAME --type T --description D');
    if (typeof args.values.type !== 'string') throw new UsageError('give the product type: --type T');
    if (typeof args.values.description !== 'string') throw new UsageError('give a description: --description TEXT');
    const readToken = typeof args.values['read-token'] === 'string' ? args.values['read-token'] : undefined;
    const p = await connect(args, ctx).addProduct({ name, type: args.values.type, description: args.values.description, readToken });
    say(ctx, `added product ${p.name} (${p.type})${p.protected ? ', reads need its token' : ''}`);
    return EXIT.ok;
  },
};

const productLs: Command = {
  name: 'ls',
  summary: 'list products (the root index)',
  usage: '[--json]',
  options: { ...client, ...json },
  async run(args, ctx) {
    positionals(args, 0, 0, 'ipp datastore product ls');
    const products = await connect(args, ctx).products();
    say(ctx, args.values.json ? JSON.stringify(products, null, 2) : formatRootIndex(products));
    return EXIT.ok;
  },
};

const productShow: Command = {
  name: 'show',
  summary: 'show one product',
  usage: 'NAME [--json]',
  options: { ...client, ...json },
  async run(args, ctx) {
    const [name] = positionals(args, 1, 1, 'ipp datastore product show NAME');
    const p = await connect(args, ctx).product(name);
    if (args.values.json) {
      say(ctx, JSON.stringify(p, null, 2));
    } else {
      say(ctx, [
        `product:      ${p.name}`, `type:         ${p.type}`, `description:  ${p.description}`,
        `filesets:     ${p.filesets}`, `last fileset: ${p.lastFileset ?? 'none'}`, `last update:  ${p.lastUpdate}`,
        `created:      ${p.created}`, `reads:        ${p.protected ? 'need the product\'s token' : 'open'}`,
      ].join('\n'));
    }
    return EXIT.ok;
  },
};

const productGroup: CommandGroup = {
  name: 'product',
  summary: 'products: add, ls, show',
  commands: [productAdd, productLs, productShow],
};

const ls: Command = {
  name: 'ls',
  summary: 'list a product\'s filesets (or one fileset\'s files), as the plain-text index or JSON',
  usage: 'PRODUCT [FILESET] [--since TIME] [--after FILESET] [--hidden] [--json]',
  options: {
    ...client, ...json,
    since: { type: 'string', value: 'TIME', help: 'only filesets registered at or after this ISO-8601 time' },
    after: { type: 'string', value: 'FILESET', help: 'only filesets registered after this one' },
    hidden: { type: 'boolean', help: 'include hidden filesets' },
  },
  async run(args, ctx) {
    const [product, fileset] = positionals(args, 1, 2, 'ipp datastore ls PRODUCT [FILESET]');
    const ds = connect(args, ctx);
    if (fileset !== undefined) {
      const detail = await ds.fileset(product, fileset);
      say(ctx, args.values.json ? JSON.stringify(detail, null, 2) : formatFilesetIndex(detail.files));
      return EXIT.ok;
    }
    const query: FilesetQuery = {
      since: typeof args.values.since === 'string' ? args.values.since : undefined,
      after: typeof args.values.after === 'string' ? args.values.after : undefined,
      includeHidden: Boolean(args.values.hidden),
    };
    const filesets = await ds.filesets(product, query);
    say(ctx, args.values.json ? JSON.stringify(filesets, null, 2) : formatProductIndex(filesets));
    return EXIT.ok;
  },
};

const get: Command = {
  name: 'get',
  summary: 'download a fileset (md5-checked; resumes a broken download)',
  usage: 'PRODUCT FILESET --out DIR',
  options: {
    ...client,
    out: { type: 'string', value: 'DIR', help: 'directory to put the files in (created if needed)' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress report' },
  },
  async run(args, ctx) {
    const [product, fileset] = positionals(args, 2, 2, 'ipp datastore get PRODUCT FILESET --out DIR');
    if (typeof args.values.out !== 'string' || args.values.out === '') throw new UsageError('give the directory to download into: --out DIR');
    const ds = connect(args, ctx);
    const detail = await ds.fileset(product, fileset);
    const total = detail.files.reduce((s, f) => s + f.bytes, 0);
    const progress = args.values.quiet ? undefined : createProgress({ label: `get ${product}/${fileset}`, total, unit: 'bytes', stream: ctx.stderr });
    let done = 0;
    const results = await ds.get(product, fileset, resolve(args.values.out), {
      signal: ctx.signal, onBytes: (n) => { done += n; progress?.update(done); },
    });
    progress?.finish();
    for (const r of results) say(ctx, `${r.path}\t${r.bytes}\t${r.md5}${r.alreadyComplete ? '\t(already there)' : r.resumedFrom > 0 ? `\t(resumed at ${r.resumedFrom})` : ''}`);
    return EXIT.ok;
  },
};

const publish: Command = {
  name: 'publish',
  summary: 'publish files as one fileset (visible whole, or not at all)',
  usage: 'PRODUCT FILESET FILE... [--type T] [--file-type T] [--replace]',
  options: {
    ...client,
    type: { type: 'string', value: 'T', help: 'fileset type (default: the product\'s type)' },
    'file-type': { type: 'string', value: 'T', help: 'type of every file (default: from the extension: fits, xml, text, tgz)' },
    replace: { type: 'boolean', help: 'replace a fileset of the same name (refused otherwise)' },
  },
  async run(args, ctx) {
    const p = args.positionals;
    if (p.length < 3) throw new UsageError('usage: ipp datastore publish PRODUCT FILESET FILE...');
    const [product, fileset, ...files] = p;
    const fileType = typeof args.values['file-type'] === 'string' ? args.values['file-type'] : undefined;
    const sources: PublishSource[] = files.map((path) => ({ path: resolve(path), type: fileType }));
    const r = await connect(args, ctx).publish(product, fileset, sources, {
      type: typeof args.values.type === 'string' ? args.values.type : undefined, replace: Boolean(args.values.replace), signal: ctx.signal,
    });
    say(ctx, `${r.replaced ? 'replaced' : 'published'} ${product}/${r.name}: ${r.fileCount} files, ${r.bytes} bytes (id ${r.id})`);
    return EXIT.ok;
  },
};

const rm: Command = {
  name: 'rm',
  summary: 'remove a fileset, or a range of filesets by name (the original datastoreRemover)',
  usage: 'PRODUCT FILESET [FILESET_END] [--hide]',
  description: 'With FILESET_END, removes every fileset whose name sorts from FILESET to FILESET_END inclusive. --hide unlists them and keeps their files.',
  options: { ...client, hide: { type: 'boolean', help: 'hide instead of delete: unlisted, files kept' } },
  async run(args, ctx) {
    const [product, first, last] = positionals(args, 2, 3, 'ipp datastore rm PRODUCT FILESET [FILESET_END]');
    const r = await connect(args, ctx).remove(product, first, { to: last, hide: Boolean(args.values.hide) });
    say(ctx, `${r.hidden ? 'hid' : 'removed'} ${r.removed.length} fileset${r.removed.length === 1 ? '' : 's'} of ${product}${r.removed.length ? `: ${r.removed.join(' ')}` : ''}`);
    return EXIT.ok;
  },
};

/** `ipp datastore ...`. */
export const datastoreGroup: CommandGroup = {
  name: 'datastore',
  summary: 'the datastore: serve products/filesets/files over HTTP; publish, list, get, remove',
  commands: [serve, productGroup, ls, get, publish, rm],
};
