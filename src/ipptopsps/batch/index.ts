// Batch building: the IN, P2, ST and OB batches of ippToPsps as FITS files shaped like the
// archive's tables (schema/psps/*.xml), with their manifests.
export { buildP2Batch, P2_SOURCE_COLUMNS } from './p2-batch.ts';
export type { P2Source } from './p2-batch.ts';
export { buildStBatch, ST_SOURCE_COLUMNS } from './st-batch.ts';
export type { StSource } from './st-batch.ts';
export { buildObBatch } from './ob-batch.ts';
export type { ObSource } from './ob-batch.ts';
export { buildInBatch } from './in-batch.ts';
export type { InSource } from './in-batch.ts';
export { perImageLookup, scratchLookup } from './lookup.ts';
export { checkBatchName } from './output.ts';
export type { BatchSource } from './output.ts';
export type { BatchContext, BatchType, BuiltBatch, DetectionIds, DetectionLookup, TableRows } from './types.ts';
