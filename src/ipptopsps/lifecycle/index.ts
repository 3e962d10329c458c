// The batch lifecycle after loading: pollodm (ODM status → batch rows), cleanup (the deletion
// policy), metrics (the loading summary, its time series and plots) and plotter (density maps).
export { OdmClient, transient } from './odm-client.ts';
export type { OdmBatchStatus, OdmClientOptions, OdmListQuery, OdmState, RetryPolicy } from './odm-client.ts';
export { BATCH_COLUMNS, STAGES, lockBatch, setStage, toBatchRow } from './batch-stages.ts';
export type { BatchRow, StageChange } from './batch-stages.ts';
export { POLL_BATCH_TYPES, POLL_STAGES, odmOutcome, pollOdm, pollStageWhere, recordOdmStatus } from './poll-odm.ts';
export type { OdmOutcome, PollOdmOptions, PollReport, PollStage, RecordedStatus } from './poll-odm.ts';
export {
  BATCH_COPIES, batchTriggers, cleanupConfig, copyMayExist, deletionStage, deletionsDue,
} from './cleanup.ts';
export type { BatchCopy, CleanupOptions, CleanupReport, CleanupServices, DeletionPolicy } from './cleanup.ts';
export {
  ago, collectMetrics, formatMetricsSummary, metricValues, readMetricSeries, recordMetrics, stageCounts, writeMetricsPlots,
} from './metrics.ts';
export type { MetricSeries, MetricValue, MetricsPlotOptions, MetricsSummary, StageCountRow, StageCounts, TypeMetrics } from './metrics.ts';
export { defaultCellSize, fileTimestamp, pendingDensity, writeDensityPlots } from './plotter.ts';
export type { DensityPlot, DensityPlotOptions } from './plotter.ts';
