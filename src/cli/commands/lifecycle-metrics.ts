// `ipp metrics <config|all|edit> [hours] [--json] [--plots DIR]`: the guide's metrics.py.
import { join } from 'node:path';
import { UsageError } from '../../common/index.ts';
import { collectMetrics, formatMetricsSummary, recordMetrics, writeMetricsPlots } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, envMilliseconds, ippToPspsSettings, parseHours, runProgramCommand } from './ipptopsps-shared.ts';

/** `ipp metrics`: the loading summary, stored as a time series and plotted. */
export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'ippToPsps: the loading summary of a config (rates, totals, stage counts), stored in the metrics table and plotted',
  usage: '<config|all|edit> [hours] [--json] [--plots DIR] [--no-plots]',
  description: [
    'Prints the summary metrics.py printed: time, epoch, DVO label; per batch type the batches',
    'published in the last hour, the last 24 hours and per day over the last week, total detections',
    'and the last publication; and for every stage how many batches are pending, succeeded and',
    'failed (DVO = items queued for that type). Each run is stored in the metrics table, and the',
    'PNG plots <config>_batches.png, <config>_detections.png and <config>_<type>_stages.png are',
    'drawn from that series into --plots DIR (default <dataDir>/plots). With [hours], runs again',
    'after that many hours until stopped. Example: ipp metrics all 1',
  ].join('\n'),
  options: {
    db: IPPTOPSPS_OPTIONS.db, settings: IPPTOPSPS_OPTIONS.settings, 'log-file': IPPTOPSPS_OPTIONS['log-file'],
    'data-dir': IPPTOPSPS_OPTIONS['data-dir'],
    json: { type: 'boolean', help: 'print each summary as a JSON line (logs go to stderr)' },
    plots: { type: 'string', value: 'DIR', help: 'where the PNG plots go (default <dataDir>/plots)' },
    'no-plots': { type: 'boolean', help: 'do not draw plots' },
  },
  async run(args, ctx) {
    const [configArg, hoursText, ...extra] = args.positionals;
    if (!configArg) throw new UsageError('give a config name, all or edit: ipp metrics <config|all|edit> [hours]');
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const hours = parseHours(hoursText);
    const json = Boolean(args.values.json);
    const settings = await ippToPspsSettings(args, ctx.env);
    const plotsArg = args.values.plots;
    if (plotsArg !== undefined && (typeof plotsArg !== 'string' || plotsArg.trim() === '')) throw new UsageError('--plots needs a directory');
    const plotDir = args.values['no-plots'] ? undefined : (plotsArg as string | undefined) ?? join(settings.dataDir, 'plots');
    await runProgramCommand(args, ctx, {
      program: 'metrics', configArg, hours, logToStderr: json, heartbeatMs: envMilliseconds(ctx.env, 'IPP_IPPTOPSPS_HEARTBEAT_MS'),
    }, async (config, p) => {
      const summary = await collectMetrics(p.db, config);
      await recordMetrics(p.db, summary);
      ctx.stdout.write(json ? `${JSON.stringify(summary)}\n` : `${formatMetricsSummary(summary)}\n`);
      if (plotDir !== undefined) {
        const files = await writeMetricsPlots(p.db, config, plotDir);
        p.log.info(`${config.name}: ${files.length} plots in ${plotDir}`);
      }
    }, settings);
    return EXIT.ok;
  },
};
