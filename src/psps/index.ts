// The archive side (PSPS): the archive database, the ODM (loader, validator, merger and
// status service) and the DXLayer (datastore → CSV → ODM).
export { PspsError, pspsStatus } from './errors.ts';
export { readArchiveSchema, readBatchSchema, batchSchemaOf, findTable, parseSchemaText } from './schema.ts';
export type {
  ArchiveSchema, ArchiveTable, ArchiveColumn, ArchiveDatatype, ArchiveReference, BatchSchema, MergePolicy, RangeBound,
} from './schema.ts';
export { openArchive, archiveQuery, coneSearch, angularDistance, positionColumns, BATCH_COLUMN } from './archive.ts';
export type { Archive, ArchiveOptions, ConeOptions } from './archive.ts';
export { PSPS_MIGRATIONS } from './migrations.ts';
export { Odm, ODM_STATES } from './odm.ts';
export type { OdmBatchStatus, OdmBatchQuery, OdmOptions, OdmState, OdmSubmission, OdmTableFile } from './odm.ts';
export { startOdmServer } from './odm-server.ts';
export type { OdmServerOptions } from './odm-server.ts';
export { OdmClient } from './odm-client.ts';
export type { OdmHealth } from './odm-client.ts';
export { validateBatch } from './validate.ts';
export { mergeBatch, partitionName } from './merge.ts';
export { batchPartitions, compactArchive, partitionOfBatch, COMPACTED_PREFIX, DEFAULT_BATCHES_PER_PARTITION } from './compact.ts';
export type { BatchPartition, CompactFold, CompactOptions, CompactResult, CompactStep } from './compact.ts';
export { stageBatch, stageTable, stagingName } from './stage.ts';
export type { StageSource } from './stage.ts';
export { encodeCopyTuples } from './pg-binary.ts';
export { ProblemList, formatProblem } from './problems.ts';
export type { Problem } from './problems.ts';
export { runDxlayer, dxlayerPass, dxlayerCursor } from './dxlayer.ts';
export type { DxlayerOptions } from './dxlayer.ts';
export { batchToCsv } from './batch-csv.ts';
export type { BatchCsvFile, BatchHeader } from './batch-csv.ts';
