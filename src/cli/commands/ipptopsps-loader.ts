// `ipp loader <config|all|edit> [init] [--test]`: build and publish the queued batches.
import { UsageError } from '../../common/index.ts';
import { DatastoreClient } from '../../datastore/index.ts';
import {
  batchIdOf, runLoader, type LoaderSummary, type LookupMode,
} from '../../ipptopsps/index.ts';
import { EXIT, wholeNumber, type Command } from '../command.ts';
import { resolveInputPath } from '../file-ref.ts';
import { IPPTOPSPS_OPTIONS, envMilliseconds, ippToPspsSettings, parseHours, runProgramCommand } from './ipptopsps-shared.ts';

/** `ipp loader`: the original's loader.py. */
export const loaderCommand: Command = {
  name: 'loader',
  summary: 'ippToPsps: build the queued batches (P2, ST, OB) and publish them to the datastore; init: the IN batch',
  usage: '<config|all|edit> [init] [hours] [--test] [--json] [options]',
  description: [
    'Claims queued items one at a time (any number of loaders may run at once, on any hosts',
    'sharing a PostgreSQL tracking database), reserving an RA stripe no other loader holds (else',
    'the stripe with the most pending items) and working through its boxes. Each batch is built',
    'in <data-dir>/tmp/<batch>.<pid>, moved to <data-dir>/<config>/<type>/<batch>/, published',
    'to the config\'s datastore product (unless datastore_publish is 0) and recorded stage by',
    'stage. A failed item keeps its reason and is queued again by ipp queue below max_attempts',
    '(or at once with --retry). Per box, DVO IDs come from per-image look-ups or from a',
    'pre-ingest of the box into a scratch database, by the ratio of queued files to DVO size.',
    '',
    '  init    build and publish the IN batch (filters, surveys, photometric codes, flags), stop',
    '  --test  only the first queued exposure, only OTA 33, tolerating missing values; stop',
    '',
    'Stops cleanly on Ctrl-C, SIGTERM or a stop request in the clients table: the batch under',
    'way is abandoned (its temporary files removed, its item released).',
  ].join('\n'),
  options: {
    ...IPPTOPSPS_OPTIONS,
    test: { type: 'boolean', help: 'test mode: the first queued exposure, OTA 33 only' },
    json: { type: 'boolean', help: 'print a JSON summary at the end (logs go to stderr)' },
    scratch: { type: 'string', value: 'URL', help: 'scratch database for box pre-ingests (default: settings scratchUrl, a free one registered by ipp setup-scratch, else an embedded SQLite file)' },
    lookup: { type: 'string', value: 'MODE', help: 'DVO look-ups: auto (by the ratio), per-image, box (default auto)' },
    'pre-ingest-ratio': { type: 'string', value: 'X', help: 'auto: pre-ingest a box with at least X queued files per MB of DVO region files (default 0.25)' },
    'max-items': { type: 'string', value: 'N', help: 'stop after N items' },
    retry: { type: 'string', value: 'BATCH|all', help: 'first put failed items back in the queue: the item of one failed batch, or all' },
  },
  async run(args, ctx) {
    const [configArg, ...rest] = args.positionals;
    if (!configArg) throw new UsageError('give a config name, all or edit: ipp loader <config|all|edit> [init] [--test]');
    let init = false;
    let hours: number | undefined;
    for (const word of rest) {
      if (word === 'init' && !init) init = true;
      else if (hours === undefined && /^[\d.]+$/.test(word)) hours = parseHours(word);
      else throw new UsageError(`unexpected argument "${word}"; usage: ipp loader <config|all|edit> [init] [hours] [--test]`);
    }
    const test = Boolean(args.values.test);
    if (init && test) throw new UsageError('init and --test do not go together');
    const lookup = (args.values.lookup as string | undefined) ?? 'auto';
    if (!['auto', 'per-image', 'box'].includes(lookup)) throw new UsageError(`--lookup must be auto, per-image or box, not "${lookup}"`);
    const ratioText = args.values['pre-ingest-ratio'] as string | undefined;
    const ratio = ratioText === undefined ? undefined : Number(ratioText);
    if (ratio !== undefined && !(ratio > 0)) throw new UsageError(`--pre-ingest-ratio must be a positive number, not "${ratioText}"`);
    const maxText = args.values['max-items'] as string | undefined;
    const maxItems = maxText === undefined ? undefined : wholeNumber(maxText, '--max-items', 1);
    const retry = args.values.retry as string | undefined;
    if (retry !== undefined && retry !== 'all') batchIdOf(retry);
    const json = Boolean(args.values.json);

    const settings = await ippToPspsSettings(args, ctx.env);
    const datastore = settings.datastoreUrl ? new DatastoreClient({ url: settings.datastoreUrl, ...(settings.datastoreToken ? { token: settings.datastoreToken } : {}) }) : undefined;
    const summaries: LoaderSummary[] = [];
    let retried = false;
    const { result } = await runProgramCommand(args, ctx, {
      program: 'loader', configArg, hours, logToStderr: json,
      heartbeatMs: envMilliseconds(ctx.env, 'IPP_IPPTOPSPS_HEARTBEAT_MS'), leaseMs: envMilliseconds(ctx.env, 'IPP_IPPTOPSPS_LEASE_MS'),
    }, async (config, p) => {
      if (retry && !retried) {
        const { changes } = retry === 'all'
          ? await p.db.run(`UPDATE queue_item SET state = 'pending', updated_at = ? WHERE config = ? AND state = 'failed'`, [new Date().toISOString(), config.name])
          : await p.db.run(`UPDATE queue_item SET state = 'pending', updated_at = ? WHERE state = 'failed' AND config = ? AND item_id = (SELECT item_id FROM batch WHERE name = ?)`,
            [new Date().toISOString(), config.name, retry]);
        p.log.info(`--retry ${retry}: ${changes} failed item(s) of ${config.name} back in the queue`);
        retried = configArg !== 'all';
      }
      const summary = await runLoader(config, p, {
        dataDir: settings.dataDir, datastore, test, init, lookup: lookup as LookupMode, progress: ctx.stderr,
        ...(ctx.env.IPP_NEB_URL ? { resolvePath: (key: string) => resolveInputPath(key, ctx.env) } : {}),
        ...(settings.scratchUrl ? { scratchUrl: settings.scratchUrl } : {}),
        ...(ratio !== undefined ? { preIngestFilesPerMb: ratio } : {}),
        ...(maxItems !== undefined ? { maxItems } : {}),
      });
      summaries.push(summary);
      return init || test ? 'stop' : undefined;
    }, settings);
    const failed = summaries.reduce((n, s) => n + s.failed, 0);
    const done = summaries.reduce((n, s) => n + s.done, 0);
    if (json) {
      ctx.stdout.write(`${JSON.stringify({ endedBy: result.endedBy, clientId: result.clientId, done, failed, configs: summaries })}\n`);
    } else {
      ctx.stdout.write(`loader: ${done} batches done, ${failed} failed${result.endedBy !== 'done' ? ` (ended by ${result.endedBy.replace('_', ' ')})` : ''}\n`);
    }
    if (result.endedBy === 'interrupted') return EXIT.interrupted;
    if (init || test) return failed || done === 0 ? EXIT.failed : EXIT.ok;
    return EXIT.ok;
  },
};
