// Batch building: the IN, P2, ST and OB batches of ippToPsps as FITS files shaped like the
// archive's tables (schema/psps/*.xml), with their manifests.
export { buildP2Batch, P2_SOURCE_COLUMNS } from './p2-batch.ts';
export type { P2Source } from './p2-batch.ts';
export { perImageLookup, scratchLookup } from './lookup.ts';
export { checkBatchName } from './output.ts';
export type { BatchSource } from './output.ts';
export type { BatchContext, BatchType, BuiltBatch, DetectionIds, DetectionLookup, TableRows } from './types.ts';
