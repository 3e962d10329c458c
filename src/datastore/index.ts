// The datastore: HTTP products → filesets → files, the hand-off between ippToPsps and the DXLayer.
export { DatastoreError, datastoreStatus } from './errors.ts';
export { DATASTORE_MIGRATIONS } from './migrations.ts';
export { checkName, nameProblem, INDEX_NAME } from './names.ts';
export type { NameKind } from './names.ts';
export { startDatastoreServer, MAX_PAGE } from './server.ts';
export type { DatastoreServer, DatastoreServerOptions } from './server.ts';
export { DatastoreClient, fileMd5 } from './client.ts';
export type {
  DatastoreClientOptions, DownloadOptions, DownloadResult, FilesetQuery, ProductSpec, PublishOptions,
} from './client.ts';
export { DEFAULT_UPLOAD_LIMITS, FILESET_BODY_TYPE, fileTypeOf, filesetBody } from './upload.ts';
export type { PublishSource, UploadLimits } from './upload.ts';
export {
  formatFilesetIndex, formatProductIndex, formatRootIndex, indexTime, parseFilesetIndex, parseProductIndex, parseRootIndex,
} from './index-text.ts';
export type {
  DatastoreHealth, FileInfo, FilesetDetail, FilesetInfo, FilesetManifest, FilesetPage, ProductInfo, PublishResult,
  RemoveResult, SweepReport,
} from './types.ts';
