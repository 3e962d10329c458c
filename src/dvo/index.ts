// DVO: the sky-partitioned object database, addstar, and the look-ups ippToPsps needs.
export { DvoError } from './errors.ts';
export {
  AVERAGE_COLUMNS, MEASURE_COLUMNS, SECFILT_COLUMNS, IMAGE_COLUMNS, SKY_REGION_COLUMNS, PHOTCODE_COLUMNS,
  IMAGE_INDEX_COLUMNS, EXTNAME, rowBytes,
} from './layouts.ts';
export { objectId, detectionId, ippIdetOf, externIdOf, zoneId, ZONE_HEIGHT } from './ids.ts';
export {
  FILTERS, PhotcodeTable, defaultPhotcodes, readPhotcodes, writePhotcodes, secCode, chipPhotcodeName, stackPhotcodeName,
} from './photcodes.ts';
export type { Photcode, PhotcodeType, MatchClass, Filter } from './photcodes.ts';
export { SkyTable, DensityGrid, buildSkyTable, readSkyTable, writeSkyTable, normRa, BANDS, BAND_HEIGHT } from './sky-table.ts';
export type { SkyRegion, PartitionOptions } from './sky-table.ts';
export { createDvo, openDvo, dvoExists, skyTablePath, photcodesPath } from './database.ts';
export type { DvoDatabase, CreateOptions } from './database.ts';
export { ImageTable, readImages, writeImages, imagesPath, IMAGE_PENDING } from './images.ts';
export type { ImageInfo, ImageStatus } from './images.ts';
export { readCatalogue } from './catalogue.ts';
export type { Catalogue, CatalogueImage } from './catalogue.ts';
export { addstar, associate, DEFAULT_RADIUS } from './addstar.ts';
export type { AddstarOptions, AddstarResult, FileResult, DetectionBatch } from './addstar.ts';
export { mergeDvo } from './merge.ts';
export type { MergeOptions, MergeResult } from './merge.ts';
export { grabImage, grabImages, GRAB_COLUMNS } from './grab.ts';
export type { GrabResult, GrabOptions } from './grab.ts';
export { exportBox, openScratch, grabFromScratch, SCRATCH_MIGRATIONS } from './box-export.ts';
export type { SkyBox, BoxExportResult, BoxExportOptions } from './box-export.ts';
export { exportRegion } from './region-export.ts';
export type { RegionObjects } from './region-export.ts';
export { dvoStats, listRegions } from './stats.ts';
export type { DvoStats, RegionSummary } from './stats.ts';
export { verifyDvo } from './verify.ts';
export type { DvoVerifyReport, DvoVerifyOptions, VerifyFault } from './verify.ts';
export { acquireLocks, withLocks, lockDir } from './lock.ts';
export type { LockMode, LockOptions, HeldLocks } from './lock.ts';
export { regionPath, recoverRegion, REGION_EXTENSIONS } from './region-files.ts';
