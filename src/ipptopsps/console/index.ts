// `ipp console`: the web page for running a loading campaign (configs, clients, batches,
// metrics and plots over the tracking database).
export { startConsoleServer, consoleFields } from './server.ts';
export type {
  ConfigJson, ConsoleErrorBody, ConsoleOverview, ConsolePlot, ConsolePlotSource, ConsoleServer, ConsoleServerOptions, ConsoleWrites,
} from './server.ts';
export { consoleStatus } from './errors.ts';
export { lifecyclePlotSource } from './plots.ts';
export type { LifecyclePlotOptions } from './plots.ts';
export { clientViews, failedBatches, failedItems, latestBatches, latestMetrics, stageTable } from './queries.ts';
export type { BatchView, ClientView, FailedItemView, MetricsView, StageRow } from './queries.ts';
export type { StageCounts } from '../lifecycle/metrics.ts';
