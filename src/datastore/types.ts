// The shapes the server answers with and the client returns: the same objects on both sides.

/** A product: a named stream of filesets (e.g. one per ippToPsps configuration). */
export interface ProductInfo {
  readonly name: string;
  readonly type: string;
  readonly description: string;
  /** True when reading the product needs its read token. */
  readonly protected: boolean;
  readonly created: string;
  /** The most recently registered visible fileset, if any. */
  readonly lastFileset: string | null;
  /** When the product or its last fileset was registered (ISO-8601 UTC). */
  readonly lastUpdate: string;
  /** Visible filesets. */
  readonly filesets: number;
}

/** A fileset as listed: registered whole, never partly. */
export interface FilesetInfo {
  /** Registration order within the store; a poller's cursor (`afterId`). */
  readonly id: number;
  readonly name: string;
  readonly type: string;
  /** Registration time, ISO-8601 UTC with milliseconds. */
  readonly registered: string;
  readonly hidden: boolean;
  readonly fileCount: number;
  readonly bytes: number;
}

/** One file of a fileset. */
export interface FileInfo {
  readonly name: string;
  readonly bytes: number;
  /** Lower-case hex MD5 of the whole file. */
  readonly md5: string;
  readonly type: string;
}

/** A fileset with its files. */
export interface FilesetDetail extends FilesetInfo {
  readonly product: string;
  readonly files: readonly FileInfo[];
}

/** A page of a fileset listing; `more` says another page follows (ask again with `afterId` = the last id). */
export interface FilesetPage {
  readonly product: string;
  readonly filesets: readonly FilesetInfo[];
  readonly more: boolean;
}

/** The answer of `GET /health`: counts of the store and of the running service. */
export interface DatastoreHealth {
  readonly status: 'ok';
  readonly products: number;
  readonly filesets: number;
  readonly hiddenFilesets: number;
  readonly files: number;
  readonly bytes: number;
  /** Uploads that passed their checks and are being received now. */
  readonly uploadsInProgress: number;
  /** Free bytes on the root's file system. */
  readonly freeBytes: number;
  readonly uptimeSeconds: number;
  readonly requests: number;
  readonly byStatus: Readonly<Record<string, number>>;
  /** What the start-up sweep removed. */
  readonly sweep: SweepReport;
  /** Whether this server accepts writes (a token is set, or it listens on loopback only). */
  readonly writable: boolean;
}

/** What the start-up sweep found and removed. */
export interface SweepReport {
  /** Upload staging directories left by a server that stopped mid-upload. */
  readonly stagingRemoved: number;
  /** Fileset directories on disk that no registered fileset owns (never committed, or replaced/removed before a crash). */
  readonly orphansRemoved: number;
  /** Registered filesets whose directory is missing (reported, not changed). */
  readonly missing: number;
}

/** The description of a fileset a publisher sends ahead of the file bytes. */
export interface FilesetManifest {
  /** The fileset type (default: the product's type). */
  readonly type?: string;
  readonly files: readonly FileInfo[];
}

/** The result of a publish: the fileset as registered, and whether it replaced one. */
export interface PublishResult extends FilesetDetail {
  readonly replaced: boolean;
}

/** The result of a removal: the filesets removed or hidden, by name. */
export interface RemoveResult {
  readonly product: string;
  readonly removed: readonly string[];
  readonly hidden: boolean;
}
