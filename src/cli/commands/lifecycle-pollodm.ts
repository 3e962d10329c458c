// `ipp pollodm <config|all|edit> <P2|ST|OB|all> <unloaded|unmergeworthy|unmerged|all> [hours]`:
// the guide's pollOdm.py.
import { UsageError } from '../../common/index.ts';
import { OdmClient, POLL_BATCH_TYPES, POLL_STAGES, pollOdm, type PollReport, type PollStage } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, envMilliseconds, ippToPspsSettings, parseHours, runProgramCommand } from './ipptopsps-shared.ts';

const USAGE = '<config|all|edit> <P2|ST|OB|all> <unloaded|unmergeworthy|unmerged|all> [hours]';

/** `ipp pollodm`: records the ODM's view of each batch in the tracking database. */
export const pollodmCommand: Command = {
  name: 'pollodm',
  summary: 'ippToPsps: ask the ODM how each loaded batch is doing and record it (failed batches become loadable again)',
  usage: `${USAGE} [--json]`,
  description: [
    'Stages: unloaded = batches on their way to the ODM (loaded_to_odm pending); unmergeworthy =',
    'loaded but not yet judged; unmerged = merge-worthy but not yet merged; all = every one of them.',
    'Each answer sets loaded_to_odm, merge_worthy and merged (with the ODM\'s times and reasons, and a',
    'batch_event per change). A batch the ODM failed sends its queue item back to pending so that a',
    'loader builds it again (failed for good after max_attempts). While the ODM is down, pollodm',
    'backs off and retries. With [hours], runs again after that many hours until stopped.',
    'Example: ipp pollodm all all all 1',
  ].join('\n'),
  options: {
    db: IPPTOPSPS_OPTIONS.db, settings: IPPTOPSPS_OPTIONS.settings, 'log-file': IPPTOPSPS_OPTIONS['log-file'],
    'odm-url': IPPTOPSPS_OPTIONS['odm-url'], 'odm-token': IPPTOPSPS_OPTIONS['odm-token'],
    json: { type: 'boolean', help: 'print each config\'s pass as a JSON line (logs go to stderr)' },
  },
  async run(args, ctx) {
    const [configArg, typeArg, stageArg, hoursText, ...extra] = args.positionals;
    if (!configArg || !typeArg || !stageArg) throw new UsageError(`usage: ipp pollodm ${USAGE}`);
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    if (!POLL_BATCH_TYPES.includes(typeArg)) throw new UsageError(`batch type "${typeArg}" is not one of ${POLL_BATCH_TYPES.join(', ')}`);
    if (!(POLL_STAGES as readonly string[]).includes(stageArg)) throw new UsageError(`stage "${stageArg}" is not one of ${POLL_STAGES.join(', ')}`);
    const hours = parseHours(hoursText);
    const json = Boolean(args.values.json);
    const settings = await ippToPspsSettings(args, ctx.env);
    if (!settings.odmUrl) throw new UsageError('pollodm needs the ODM: give --odm-url, the settings file\'s odmUrl or IPP_ODM_URL');
    const batchTypes = typeArg === 'all' ? ['P2', 'ST', 'OB', 'IN'] : [typeArg];
    await runProgramCommand(args, ctx, {
      program: 'pollodm', configArg, hours, logToStderr: json, heartbeatMs: envMilliseconds(ctx.env, 'IPP_IPPTOPSPS_HEARTBEAT_MS'),
    }, async (config, p) => {
      const odm = new OdmClient({ url: settings.odmUrl!, token: settings.odmToken, log: p.log });
      const report: PollReport = await pollOdm(p.db, config, {
        odm, batchTypes, stage: stageArg as PollStage, log: p.log, signal: p.signal,
        onBatch: async () => { await p.checkpoint(); },
      });
      if (json) ctx.stdout.write(`${JSON.stringify(report)}\n`);
      else {
        p.log.info(`${config.name}: asked about ${report.asked} batches: ${report.changed} changed, ${report.unknown} not at the ODM yet, `
          + `${report.failed} failed (${report.requeued} items back to pending, ${report.exhausted} failed for good)`);
      }
    }, settings);
    return EXIT.ok;
  },
};
