// `ipp odm serve|status`: the ODM (loader, validator, merger and status service) and its client.
import { UsageError } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import { Odm, OdmClient, ODM_STATES, openArchive, PSPS_MIGRATIONS, startOdmServer, type OdmBatchStatus, type OdmState } from '../../psps/index.ts';
import { EXIT, portNumber, type Command, type CommandGroup } from '../command.ts';
import { databaseUrl, dbOption, serverToken, serviceEndpoint, serviceOptions } from '../settings.ts';
import { archiveUrl, say, schemaDir, schemaDirOption, toJson } from './psps-shared.ts';

/** The port `ipp odm serve` listens on unless told otherwise. */
export const DEFAULT_ODM_PORT = 8471;

const serve: Command = {
  name: 'serve',
  summary: 'run the ODM: take batches from the DXLayer, load, validate, merge; serve their status',
  usage: '[--db URL] [--archive URL] [--dir DIR] [--host H] [--port P] [--token-write T] [--token-read T] [--no-compact] [--one-lane]',
  description: [
    'The status API: GET /batches?state=&type=&product=&since=, GET /batches/NAME,',
    'DELETE /batches/NAME/copy (deletes the DXLayer\'s copy); the DXLayer hands batches over',
    'with POST /batches (CSV files on this host). Writes need --token-write (or $IPP_ODM_TOKEN),',
    'reads --token-read (or $IPP_ODM_READ_TOKEN) when set. Batches left unfinished by a previous',
    'run are taken up again at start. --dir is the DXLayer\'s directory: copies are only ever',
    'deleted inside it. An archive partitioned by batch is compacted after each merge that leaves',
    'a level with K partitions (K = 16; `ipp archive compact`); a fold holds the merge lock, so',
    'with --no-compact nothing is folded here and `ipp archive compact` is run at quiet times.',
    'On a PostgreSQL archive the ODM loads the next batch while it validates and merges the one',
    'before (one batch ahead; validation and merges stay in the order batches arrived);',
    '--one-lane takes one step of one batch at a time, as on SQLite.',
  ].join('\n'),
  options: {
    db: dbOption('psps'),
    archive: { type: 'string', value: 'URL', help: 'the archive database (default $IPP_ARCHIVE_DB, $IPP_DB, or sqlite:ipp-data/archive.db)' },
    dir: { type: 'string', value: 'DIR', help: 'the DXLayer\'s directory (copies are deleted only inside it)' },
    'schema-dir': schemaDirOption,
    host: { type: 'string', value: 'HOST', help: 'address to listen on', default: '127.0.0.1' },
    port: { type: 'string', value: 'PORT', help: 'port to listen on (0: any free port)', default: String(DEFAULT_ODM_PORT) },
    'token-write': { type: 'string', value: 'TOKEN', help: 'bearer token that hand-overs and deletions need (default $IPP_ODM_TOKEN)' },
    'token-read': { type: 'string', value: 'TOKEN', help: 'bearer token that status reads need (default $IPP_ODM_READ_TOKEN; none: open)' },
    'no-compact': { type: 'boolean', help: 'never compact a partitioned archive after a merge (run `ipp archive compact` instead)' },
    'one-lane': { type: 'boolean', help: 'do not load the next batch while the one before merges (PostgreSQL)' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError('usage: ipp odm serve [--db URL] [--archive URL] [--port P]');
    const port = portNumber(args.values.port);
    const log = ctx.log.child('odm');
    const write = serverToken('odm', { values: { token: args.values['token-write'] }, positionals: [] }, ctx.env);
    const read = typeof args.values['token-read'] === 'string' ? args.values['token-read'] : ctx.env.IPP_ODM_READ_TOKEN || undefined;
    const archive = await openArchive(archiveUrl(args, ctx.env, 'archive'), { schemaDir: schemaDir(args), log });
    try {
      const db = await openDatabase(databaseUrl('psps', args, ctx.env), { migrations: [PSPS_MIGRATIONS] });
      try {
        const odm = await Odm.start({
          db, archive, log, ...(typeof args.values.dir === 'string' ? { copyRoot: args.values.dir } : {}),
          ...(args.values['no-compact'] === true ? { compact: false as const } : {}),
          ...(args.values['one-lane'] === true ? { stageAhead: false } : {}),
        });
        try {
          const server = await startOdmServer({
            odm, log, port, host: String(args.values.host),
            tokens: { ...(write ? { write } : {}), ...(read ? { read } : {}) },
          });
          say(ctx, `odm: serving at ${server.url} (psps database ${db.url}, archive ${archive.url}${archive.q3c ? ', Q3C' : ''}); writes ${write ? 'need the token' : 'open'}`);
          await new Promise<void>((done) => {
            if (ctx.signal.aborted) done();
            else ctx.signal.addEventListener('abort', () => done(), { once: true });
          });
          await server.close();
        } finally {
          await odm.close();
        }
        say(ctx, 'odm: stopped');
      } finally {
        await db.close();
      }
    } finally {
      await archive.close();
    }
    return EXIT.ok;
  },
};

function line(b: OdmBatchStatus): string {
  const at = b.mergedAt ?? b.failedAt ?? b.mergeWorthyAt ?? b.loadedAt ?? b.receivedAt;
  const rows = Object.entries(b.rows).map(([t, n]) => `${t}=${n}`).join(' ');
  return `${b.name.padEnd(10)} ${b.type.padEnd(3)} ${b.state.padEnd(12)} ${at}  ${rows}`;
}

const status: Command = {
  name: 'status',
  summary: 'ask the ODM about one batch, or list batches by state, type and product',
  usage: '[BATCH] [--state S] [--type T] [--product P] [--since TIME] [--json]',
  options: {
    ...serviceOptions('odm'),
    state: { type: 'string', value: 'S', help: `only batches in this state (${ODM_STATES.join(', ')})` },
    type: { type: 'string', value: 'T', help: 'only batches of this type (IN, P2, ST, OB)' },
    product: { type: 'string', value: 'P', help: 'only batches of this datastore product' },
    since: { type: 'string', value: 'TIME', help: 'only batches changed at or after this ISO-8601 time' },
    json: { type: 'boolean', help: 'print JSON' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 1) throw new UsageError('usage: ipp odm status [BATCH]');
    const client = new OdmClient(serviceEndpoint('odm', args, ctx.env));
    const [name] = args.positionals;
    if (name !== undefined) {
      const b = await client.batch(name);
      if (args.values.json) say(ctx, toJson(b));
      else {
        say(ctx, [
          `batch:        ${b.name} (${b.type}, product ${b.product}, generation ${b.generation})`,
          `state:        ${b.state}`,
          `received:     ${b.receivedAt}`, `loaded:       ${b.loadedAt ?? ''}`, `merge-worthy: ${b.mergeWorthyAt ?? ''}`,
          `failed:       ${b.failedAt ?? ''}`, `merged:       ${b.mergedAt ?? ''}`,
          `rows:         ${Object.entries(b.rows).map(([t, n]) => `${t} ${n}`).join(', ')}`,
          ...b.reasons.map((r, i) => `${i === 0 ? 'reasons:      ' : '              '}${r}`),
        ].join('\n'));
      }
      return EXIT.ok;
    }
    const state = typeof args.values.state === 'string' ? args.values.state : undefined;
    if (state !== undefined && !ODM_STATES.includes(state as OdmState)) throw new UsageError(`--state "${state}" must be one of ${ODM_STATES.join(', ')}`);
    const batches = await client.batches({
      ...(state ? { state: state as OdmState } : {}),
      ...(typeof args.values.type === 'string' ? { type: args.values.type } : {}),
      ...(typeof args.values.product === 'string' ? { product: args.values.product } : {}),
      ...(typeof args.values.since === 'string' ? { since: args.values.since } : {}),
    });
    if (args.values.json) say(ctx, toJson(batches));
    else say(ctx, batches.length === 0 ? 'no batches' : batches.map(line).join('\n'));
    return EXIT.ok;
  },
};

/** `ipp odm ...`. */
export const odmGroup: CommandGroup = {
  name: 'odm',
  summary: 'the ODM (PSPS loader and merger): serve, status',
  commands: [serve, status],
};
