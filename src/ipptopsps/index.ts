// ippToPsps: the tracking database, loading configs, clients and the program runner, the
// queue, the loader and publishing (batch building itself is in ./batch).
export { IppToPspsError } from './errors.ts';
export { IPPTOPSPS_MIGRATIONS, BATCH_STAGES } from './migrations.ts';
export type { BatchStage, StageState } from './migrations.ts';
export { openIppToPsps, DEFAULT_TRACKING_DB } from './tracking-db.ts';
export {
  CONFIG_FIELDS, QUEUED_BATCH_TYPES, DELETION_TRIGGERS, RESERVED_CONFIG_NAMES,
  configField, configFieldText, configNameProblem, configToJson, findConfig, getConfig, listConfigs,
  parseConfigValue, saveConfig, setConfigActive, toConfig,
} from './configs.ts';
export type { AnyBatchType, BatchType, ConfigField, LoadingConfig } from './configs.ts';
export {
  findClient, heartbeatClient, listClients, markClientExited, markLostClients, registerClient, requestClient,
  requestClients, setClientItem,
} from './clients.ts';
export type { ClientIdentity, ClientRecord, ClientRequest, ClientState } from './clients.ts';
export { DEFAULT_SETTINGS, SETTINGS_FIELDS, readSettingsFile } from './settings.ts';
export type { IppToPspsSettings, SettingsField, SettingsFileValues } from './settings.ts';
export { LineReader, editConfig } from './prompt.ts';
export type { PromptIo } from './prompt.ts';
export { runProgram, isAbort, sleepUnlessStopped } from './program.ts';
export type { ProgramBody, ProgramContext, ProgramOptions, ProgramResult } from './program.ts';
export { ensureGrid, insertIgnoring } from './grid.ts';
export type { Grid, GridBox } from './grid.ts';
export { dvoDirOf, exposureCandidates, queueConfig, regionCandidates, stackCandidates } from './queue.ts';
export type { QueueCandidate, QueueSources, QueueSummary, QueueTypeSummary } from './queue.ts';
export * from './lifecycle/index.ts';
export { batchEvents, batchIdOf, batchName, createBatch, findBatch, setBatchStage, toBatch } from './batches.ts';
export type { BatchRecord, NewBatch } from './batches.ts';
export { listScratch, releaseScratch, setupScratch, takeScratch } from './scratch.ts';
export type { ScratchRecord } from './scratch.ts';
export { runLoader } from './loader.ts';
export type { LoadedBatch, LoaderOptions, LoaderSummary, LookupMode } from './loader.ts';
// The batch builders (helper S's room), re-exported as part of the room's surface.
export {
  buildInBatch, buildObBatch, buildP2Batch, buildStBatch, perImageLookup, scratchLookup, checkBatchName,
} from './batch/index.ts';
export type { BatchContext, BuiltBatch, DetectionIds, DetectionLookup } from './batch/index.ts';
export { removeFromDatastore } from './datastore-remove.ts';
export type { RemovedBatch } from './datastore-remove.ts';
