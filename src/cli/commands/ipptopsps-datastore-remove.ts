// `ipp datastore-remove <config> BATCH [BATCH_END]`: the original's datastoreRemover.
import { UsageError } from '../../common/index.ts';
import { DatastoreClient } from '../../datastore/index.ts';
import { IppToPspsError, removeFromDatastore, type RemovedBatch } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, ippToPspsSettings, runProgramCommand } from './ipptopsps-shared.ts';

/** `ipp datastore-remove`. */
export const datastoreRemoveCommand: Command = {
  name: 'datastore-remove',
  summary: 'ippToPsps: remove one batch or a range of batches of a config from the datastore',
  usage: '<config> BATCH [BATCH_END] [--json]',
  description: 'Removes the batches (e.g. B00328287, or B00328287 B00328300) from the config\'s datastore product and sets deleted_datastore in the batch table, with an event per batch.',
  options: { ...IPPTOPSPS_OPTIONS, json: { type: 'boolean', help: 'print the outcome per batch as JSON' } },
  async run(args, ctx) {
    const [config, first, last, ...extra] = args.positionals;
    if (!config || !first) throw new UsageError('usage: ipp datastore-remove <config> BATCH [BATCH_END]');
    if (config === 'all' || config === 'edit') throw new UsageError('datastore-remove takes one config name');
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const settings = await ippToPspsSettings(args, ctx.env);
    if (!settings.datastoreUrl) throw new UsageError('no datastore given: pass --datastore-url, set datastoreUrl in the settings file, or IPP_DATASTORE_URL');
    const datastore = new DatastoreClient({ url: settings.datastoreUrl, ...(settings.datastoreToken ? { token: settings.datastoreToken } : {}) });
    let removed: RemovedBatch[] = [];
    await runProgramCommand(args, ctx, { program: 'datastore-remove', configArg: config, logToStderr: true }, async (c, p) => {
      removed = await removeFromDatastore(p.db, datastore, c, first, last, { signal: p.signal });
    }, settings);
    if (args.values.json) ctx.stdout.write(`${JSON.stringify({ batches: removed })}\n`);
    else for (const r of removed) ctx.stdout.write(`${r.name}\t${r.state}${r.detail ? `\t${r.detail}` : ''}\n`);
    const failed = removed.filter((r) => r.state === 'failed');
    if (failed.length) throw new IppToPspsError('datastore_remove_failed', `${failed.length} of ${removed.length} batches could not be removed: ${failed.map((f) => `${f.name} (${f.detail})`).join('; ')}`);
    return EXIT.ok;
  },
};
