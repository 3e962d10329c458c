// `ipp dxlayer`: polls a datastore product, converts each new batch to CSV and hands it to
// the ODM (the PSPS DXLayer).
import { resolve } from 'node:path';
import { UsageError } from '../../common/index.ts';
import { DatastoreClient } from '../../datastore/index.ts';
import { openDatabase } from '../../db/index.ts';
import { OdmClient, PSPS_MIGRATIONS, runDxlayer } from '../../psps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { databaseUrl, dbOption } from '../settings.ts';
import { prefixedEndpoint, prefixedServiceOptions, say } from './psps-shared.ts';

/** `ipp dxlayer --product P --dir DIR [--once] [--interval S]`. */
export const dxlayerCommand: Command = {
  name: 'dxlayer',
  summary: 'the DXLayer: take new batches from the datastore, convert them to CSV, hand them to the ODM',
  usage: '--product P --dir DIR [--once] [--interval S] [--db URL] [--datastore-url U] [--odm-url U]',
  description: [
    'Polls the datastore product for filesets after the last one taken (recorded in the psps',
    'database, so a restart neither skips nor repeats one), downloads each into DIR/BATCH',
    '(md5-checked, resuming a broken download), writes one CSV per table of the batch FITS file',
    'and hands them to the ODM. A datastore or ODM that is down is waited for. --once: one pass.',
  ].join('\n'),
  options: {
    product: { type: 'string', value: 'P', help: 'the datastore product to poll' },
    dir: { type: 'string', value: 'DIR', help: 'where batches are downloaded and converted (shared with the ODM)' },
    once: { type: 'boolean', help: 'take what is there, then stop' },
    interval: { type: 'string', value: 'S', help: 'seconds between polls when nothing is new (default 30)' },
    db: dbOption('psps'),
    ...prefixedServiceOptions('datastore'),
    ...prefixedServiceOptions('odm'),
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError('usage: ipp dxlayer --product P --dir DIR');
    if (typeof args.values.product !== 'string' || args.values.product === '') throw new UsageError('give the datastore product: --product P');
    if (typeof args.values.dir !== 'string' || args.values.dir === '') throw new UsageError('give the DXLayer directory: --dir DIR');
    const interval = args.values.interval === undefined ? 30 : Number(args.values.interval);
    if (!Number.isFinite(interval) || interval <= 0) throw new UsageError(`--interval "${String(args.values.interval)}" must be a number of seconds above 0`);
    const datastore = new DatastoreClient(prefixedEndpoint('datastore', args, ctx.env));
    const odm = new OdmClient(prefixedEndpoint('odm', args, ctx.env));
    const db = await openDatabase(databaseUrl('psps', args, ctx.env), { migrations: [PSPS_MIGRATIONS] });
    try {
      const handed = await runDxlayer({
        db, datastore, odm, product: args.values.product, dir: resolve(args.values.dir), log: ctx.log.child('dxlayer'),
        signal: ctx.signal, intervalMs: interval * 1000, once: Boolean(args.values.once),
      });
      say(ctx, `dxlayer: handed ${handed.length} batch${handed.length === 1 ? '' : 'es'} to the ODM${handed.length ? `: ${handed.join(' ')}` : ''}`);
    } finally {
      await db.close();
    }
    return EXIT.ok;
  },
};
