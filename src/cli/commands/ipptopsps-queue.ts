// `ipp queue <config|all|edit> [hours]`: fill the ippToPsps queue from gpc1 and DVO.
import { UsageError } from '../../common/index.ts';
import { openGpc1 } from '../../gpc1/index.ts';
import { queueConfig, type QueueSummary, type QueueTypeSummary } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, envMilliseconds, ippToPspsSettings, parseHours, runProgramCommand } from './ipptopsps-shared.ts';

/** `ipp queue`: the original's queue.py. */
export const queueCommand: Command = {
  name: 'queue',
  summary: 'ippToPsps: queue the exposures (P2), stacks (ST) and DVO regions (OB) of a config to load',
  usage: '<config|all|edit> [hours] [--json]',
  description: [
    "Divides the config's RA/Dec region into stripes of box_size and boxes, and queues:",
    "  P2  camera runs (cam_id) that gpc1's addRun lists as merged (full) into the config's DVO",
    '  ST  stacks (stack_id) whose skycal catalogue addRun lists as merged into that DVO',
    '  OB  DVO regions (SkyTable INDEX) holding objects inside the region',
    'leaving out items published since the config epoch and items that failed max_attempts',
    'times (failed items below that are queued again). A rerun adds nothing new. With [hours],',
    'runs again after that many hours until stopped (Ctrl-C, SIGTERM, or a stop request in the',
    "clients table). 'all' takes every active config in turn; 'edit' asks for a config first.",
  ].join('\n'),
  options: { ...IPPTOPSPS_OPTIONS, json: { type: 'boolean', help: 'print the summary of each pass as JSON (logs go to stderr)' } },
  async run(args, ctx) {
    const [configArg, hoursText, ...extra] = args.positionals;
    if (!configArg) throw new UsageError('give a config name, all or edit: ipp queue <config|all|edit> [hours]');
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const hours = parseHours(hoursText);
    const json = Boolean(args.values.json);
    let pass: QueueSummary[] = [];
    const settings = await ippToPspsSettings(args, ctx.env);
    const gpc1 = await openGpc1(settings.gpc1Db, { existing: true });
    let endedBy: string;
    try {
      ({ result: { endedBy } } = await runProgramCommand(args, ctx, {
        program: 'queue', configArg, hours, logToStderr: json, heartbeatMs: envMilliseconds(ctx.env, 'IPP_IPPTOPSPS_HEARTBEAT_MS'),
      }, async (config, p) => {
        const summary = await queueConfig(p.db, config, { gpc1, log: p.log });
        pass.push(summary);
        if (!json) {
          for (const [type, t] of Object.entries(summary.types) as [string, QueueTypeSummary][]) {
            ctx.stdout.write(`${config.name} ${type}: ${t.candidates} listed, ${t.added} added, ${t.requeued} re-queued, ${t.pending} pending`
              + ` (left out: ${t.published} published since ${config.epoch}, ${t.failedOut} failed ${config.max_attempts} times, ${t.outside} outside the region)\n`);
          }
        }
        if (json && (configArg !== 'all' || hours !== undefined)) {
          ctx.stdout.write(`${JSON.stringify(summary)}\n`);
          pass = [];
        }
      }, settings));
    } finally {
      await gpc1.close();
    }
    if (json && pass.length) ctx.stdout.write(`${JSON.stringify({ configs: pass })}\n`);
    return endedBy === 'interrupted' ? EXIT.interrupted : EXIT.ok;
  },
};
