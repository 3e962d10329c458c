// `ipp archive init|query|cone`: the archive database for users: create its tables from the
// schema files, run SQL, search a cone on the sky.
import { UsageError } from '../../common/index.ts';
import { archiveQuery, compactArchive, coneSearch, DEFAULT_BATCHES_PER_PARTITION, openArchive } from '../../psps/index.ts';
import { EXIT, optionalWholeNumber, wholeNumber, type Command, type CommandGroup, type OptionSpec } from '../command.ts';
import { archiveUrl, rowsToCsv, rowsToText, say, schemaDir, schemaDirOption, toJson } from './psps-shared.ts';

const dbOpt: OptionSpec = {
  type: 'string', value: 'URL',
  help: 'the archive database: sqlite:PATH or postgres://user@host/db (default $IPP_ARCHIVE_DB, $IPP_DB, or sqlite:ipp-data/archive.db)',
};

const init: Command = {
  name: 'init',
  summary: 'create the archive tables from the schema files (idempotent; adds new columns)',
  usage: '[--db URL] [--schema-dir DIR] [--partition-by-batch]',
  description: [
    'Tables are plain, and the ODM merges a batch by copying its rows in. With --partition-by-batch',
    '(PostgreSQL, tables not created yet) each batch becomes a partition of its own: merges cost',
    'almost nothing; key look-ups go to the partitions whose keys the batch\'s range holds, but',
    'reference look-ups and cone searches probe every batch\'s partition: for thousands of',
    'batches, fold them with ipp archive compact. The ODM creates missing tables plain, so run',
    'this first.',
  ].join('\n'),
  options: {
    db: dbOpt, 'schema-dir': schemaDirOption,
    'partition-by-batch': { type: 'boolean', help: 'PostgreSQL: one partition per batch, attached at merge instead of copied' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError('usage: ipp archive init [--db URL] [--partition-by-batch]');
    const url = archiveUrl(args, ctx.env, 'db');
    const partitionByBatch = Boolean(args.values['partition-by-batch']);
    if (partitionByBatch && !url.startsWith('postgres')) throw new UsageError('--partition-by-batch needs a PostgreSQL archive (postgres://...)');
    const archive = await openArchive(url, { schemaDir: schemaDir(args), log: ctx.log, partitionByBatch });
    try {
      if (partitionByBatch && archive.partitioned.size === 0) {
        ctx.log.warn(`archive ${archive.url}: its tables existed already as plain tables; --partition-by-batch applies only to tables it creates`);
      }
      say(ctx, `archive ${archive.url}: ${archive.schema.tables.length} tables (${archive.schema.tables.map((t) => t.name).join(', ')}), ${archive.partitioned.size > 0 ? 'partitioned by batch' : 'plain'}; positions indexed with ${archive.q3c ? 'Q3C' : 'a dec index'}`);
    } finally {
      await archive.close();
    }
    return EXIT.ok;
  },
};

const output: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'print the rows as JSON' },
  csv: { type: 'boolean', help: 'print the rows as CSV' },
};

function print(ctx: Parameters<Command['run']>[1], rows: Record<string, unknown>[], json: boolean, csv: boolean): void {
  const columns = rows.length > 0 ? Object.keys(rows[0]) : [];
  if (json) say(ctx, toJson(rows));
  else if (csv) ctx.stdout.write(rowsToCsv(rows, columns));
  else say(ctx, rowsToText(rows, columns));
}

const query: Command = {
  name: 'query',
  summary: 'run one SQL statement on the archive and print its rows',
  usage: '"SQL" [--json|--csv] [--write] [--db URL]',
  description: [
    'Example: ipp archive query "SELECT filterID, count(*) AS n FROM Detection GROUP BY filterID"',
    'The statement runs read-only unless --write is given.',
  ].join('\n'),
  options: { db: dbOpt, 'schema-dir': schemaDirOption, ...output, write: { type: 'boolean', help: 'allow a statement that changes the archive' } },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('usage: ipp archive query "SQL" [--json|--csv]');
    if (args.values.json && args.values.csv) throw new UsageError('choose one of --json and --csv');
    const archive = await openArchive(archiveUrl(args, ctx.env, 'db'), { schemaDir: schemaDir(args), log: ctx.log });
    try {
      const rows = await archiveQuery(archive, args.positionals[0], { write: Boolean(args.values.write) });
      print(ctx, rows, Boolean(args.values.json), Boolean(args.values.csv));
    } finally {
      await archive.close();
    }
    return EXIT.ok;
  },
};

/** An angle in degrees, or with a unit suffix: `d` (degrees), `m` (arcmin), `s` (arcsec). */
function angle(name: string, text: string): number {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([dms]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`${name} "${text}" must be a number of degrees (or with a unit: 30s, 2m, 0.5d)`);
  const v = Number(m[1]);
  return m[2] === 's' ? v / 3600 : m[2] === 'm' ? v / 60 : v;
}

const cone: Command = {
  name: 'cone',
  summary: 'rows of a table within RADIUS of RA DEC (degrees), nearest first',
  usage: 'RA DEC RADIUS [--table T] [--limit N] [--json|--csv]',
  description: 'RA and DEC in degrees; RADIUS in degrees, or 30s (arcsec) / 2m (arcmin). Uses Q3C on PostgreSQL.\nA negative DEC goes after --, e.g. ipp archive cone --json -- 10.5 -5.2 30s',
  options: {
    db: dbOpt, 'schema-dir': schemaDirOption, ...output,
    table: { type: 'string', value: 'T', help: 'the table (default ObjectThin)' },
    limit: { type: 'string', value: 'N', help: 'at most N rows (default 10000)' },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 3) throw new UsageError('usage: ipp archive cone RA DEC RADIUS');
    const [ra, dec, radius] = args.positionals;
    const limit = args.values.limit === undefined ? undefined : wholeNumber(String(args.values.limit), '--limit', 1);
    const archive = await openArchive(archiveUrl(args, ctx.env, 'db'), { schemaDir: schemaDir(args), log: ctx.log });
    try {
      const rows = await coneSearch(archive, angle('RA', ra), angle('DEC', dec), angle('RADIUS', radius), {
        ...(typeof args.values.table === 'string' ? { table: args.values.table } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      print(ctx, rows, Boolean(args.values.json), Boolean(args.values.csv));
    } finally {
      await archive.close();
    }
    return EXIT.ok;
  },
};

const compact: Command = {
  name: 'compact',
  summary: 'fold the merged batches\' partitions of a partitioned archive into larger ones (tiered)',
  usage: '[--db URL] [--batches-per-partition K] [--keep-recent N] [--json]',
  description: [
    'For an archive made with --partition-by-batch: K partitions of one level (one batch each at',
    `level 0) are folded into one of the next level, K of those into one again (K = ${DEFAULT_BATCHES_PER_PARTITION} by default),`,
    'so key look-ups and cone searches probe few partitions while each merge still attaches its',
    'batch. Each fold is one transaction under the ODM\'s merge lock: merges wait for it, queries go',
    'on, and a fold stopped half way leaves the archive as it was. Plain tables have nothing to fold.',
  ].join('\n'),
  options: {
    db: dbOpt, 'schema-dir': schemaDirOption,
    'batches-per-partition': { type: 'string', value: 'K', help: `partitions folded into one at each level (default ${DEFAULT_BATCHES_PER_PARTITION}, at least 2)` },
    'keep-recent': { type: 'string', value: 'N', help: 'leave the N most recently merged batches in partitions of their own (default 0)' },
    json: { type: 'boolean', help: 'print what was folded as JSON' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError('usage: ipp archive compact [--db URL] [--batches-per-partition K] [--keep-recent N] [--json]');
    const k = optionalWholeNumber(args.values['batches-per-partition'], '--batches-per-partition', 2);
    const keepRecent = optionalWholeNumber(args.values['keep-recent'], '--keep-recent', 0);
    const archive = await openArchive(archiveUrl(args, ctx.env, 'db'), { schemaDir: schemaDir(args), log: ctx.log });
    try {
      const result = await compactArchive(archive, {
        ...(k !== undefined ? { batchesPerPartition: k } : {}), ...(keepRecent !== undefined ? { keepRecent } : {}), signal: ctx.signal, log: ctx.log,
      });
      if (args.values.json) {
        say(ctx, toJson(result));
      } else if (archive.partitioned.size === 0) {
        say(ctx, `archive ${archive.url}: its tables are not partitioned by batch; nothing to compact`);
      } else {
        for (const f of result.folds) say(ctx, `${f.table}: folded ${f.from.length} partitions of level ${f.level} (${f.batches} batches, ${f.rows} rows) into ${f.into} in ${f.seconds.toFixed(2)} s`);
        const counts = Object.entries(result.partitions).map(([t, c]) => `${t} ${c.before} -> ${c.after}`).join(', ');
        say(ctx, `archive ${archive.url}: ${result.folds.length} fold${result.folds.length === 1 ? '' : 's'}; partitions per table: ${counts}`);
      }
    } finally {
      await archive.close();
    }
    return EXIT.ok;
  },
};

/** `ipp archive ...`. */
export const archiveGroup: CommandGroup = {
  name: 'archive',
  summary: 'the archive database (PSPS): init from the schema files, SQL queries, cone searches, compaction',
  commands: [init, query, cone, compact],
};
