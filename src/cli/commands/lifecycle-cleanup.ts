// `ipp cleanup <config|all|edit> [hours]`: the guide's cleanup.py.
import { UsageError } from '../../common/index.ts';
import { DatastoreClient } from '../../datastore/index.ts';
import { OdmClient, cleanupConfig } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, envMilliseconds, ippToPspsSettings, parseHours, runProgramCommand } from './ipptopsps-shared.ts';

/** `ipp cleanup`: deletes the copies of batches by each config's deletion policy. */
export const cleanupCommand: Command = {
  name: 'cleanup',
  summary: 'ippToPsps: delete the datastore, DXLayer and local copies of batches by the config\'s deletion policy',
  usage: '<config|all|edit> [hours] [--json]',
  description: [
    "The policy is in each config: delete_datastore_on, delete_dxlayer_on and delete_local_on list the",
    "batch states (loaded, merge_worthy, merged, failed) after which that copy goes; by default the",
    "datastore and DXLayer copies go once the ODM judged a batch merge-worthy or failed, the local copy",
    "once it is merged. A batch with purged = 1 loses every copy. Each deletion is recorded",
    "(deleted_* and a batch_event); one that fails is marked failed with the reason and retried on",
    "the next pass. With [hours], runs again after that many hours until stopped. Example: ipp cleanup all 1",
  ].join('\n'),
  options: {
    db: IPPTOPSPS_OPTIONS.db, settings: IPPTOPSPS_OPTIONS.settings, 'log-file': IPPTOPSPS_OPTIONS['log-file'],
    'datastore-url': IPPTOPSPS_OPTIONS['datastore-url'], 'datastore-token': IPPTOPSPS_OPTIONS['datastore-token'],
    'odm-url': IPPTOPSPS_OPTIONS['odm-url'], 'odm-token': IPPTOPSPS_OPTIONS['odm-token'],
    json: { type: 'boolean', help: 'print each config\'s pass as a JSON line (logs go to stderr)' },
  },
  async run(args, ctx) {
    const [configArg, hoursText, ...extra] = args.positionals;
    if (!configArg) throw new UsageError('give a config name, all or edit: ipp cleanup <config|all|edit> [hours]');
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const hours = parseHours(hoursText);
    const json = Boolean(args.values.json);
    const settings = await ippToPspsSettings(args, ctx.env);
    await runProgramCommand(args, ctx, {
      program: 'cleanup', configArg, hours, logToStderr: json, heartbeatMs: envMilliseconds(ctx.env, 'IPP_IPPTOPSPS_HEARTBEAT_MS'),
    }, async (config, p) => {
      if (!settings.datastoreUrl) p.log.warn('no datastore URL (--datastore-url, settings datastoreUrl, IPP_DATASTORE_URL): datastore deletions will fail');
      if (!settings.odmUrl) p.log.warn('no ODM URL (--odm-url, settings odmUrl, IPP_ODM_URL): DXLayer deletions will fail');
      const datastore = settings.datastoreUrl ? new DatastoreClient({ url: settings.datastoreUrl, token: settings.datastoreToken }) : undefined;
      // A short retry budget: a deletion the ODM cannot take now is marked failed and retried next pass.
      const odm = settings.odmUrl
        ? new OdmClient({ url: settings.odmUrl, token: settings.odmToken, log: p.log, retry: { initialMs: 500, maxMs: 5000, giveUpMs: 15_000 } })
        : undefined;
      const report = await cleanupConfig(p.db, config, {
        datastore, odm, log: p.log, signal: p.signal, onDeletion: async () => { await p.checkpoint(); },
      });
      if (json) ctx.stdout.write(`${JSON.stringify(report)}\n`);
      else {
        const d = report.deleted;
        const f = report.failed;
        p.log.info(`${config.name}: ${report.batches} batches due; deleted ${d.datastore} datastore, ${d.dxlayer} DXLayer, ${d.local} local copies`
          + `${f.datastore + f.dxlayer + f.local ? `; failed ${f.datastore} datastore, ${f.dxlayer} DXLayer, ${f.local} local (retried next pass)` : ''}`);
      }
    }, settings);
    return EXIT.ok;
  },
};
