// The batch builders' shared types: what a build is given and what it hands back.
import type { Logger } from '../../common/index.ts';

/** The four batch types of the guide. */
export type BatchType = 'IN' | 'P2' | 'ST' | 'OB';

/** Where and under which name a batch is built. */
export interface BatchContext {
  /** The batch name: `B` + 8-digit batch_id (`B00000042`). */
  readonly name: string;
  readonly config: string;
  /** The datastore product (recorded in the manifest). */
  readonly product: string;
  /** The batch is written as `<outDir>/<name>.fits` and `<outDir>/<name>.manifest.json`. */
  readonly outDir: string;
  /** The schema files' directory (default PSPS_SCHEMA_DIR). */
  readonly schemaDir?: string;
  /** --test: P2 only OTA 33 (XY33); unknown objIDs and missing required values drop rows with a warning. */
  readonly test?: boolean;
  /** surveyID written in the rows (default: from the smf OBJECT keyword, else 0). */
  readonly surveyId?: number;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
}

/** Detections of one image (by IMAGEID = DVO EXTERN_ID): parallel columns, sorted by IPP_IDET. */
export interface DetectionIds {
  readonly ippIdet: Uint32Array;
  readonly detectId: BigInt64Array;
  readonly objId: BigInt64Array;
}

/**
 * Looks up the DVO IDs of an image's detections. `many`, when present, looks up several
 * images at once (each DVO region read once for all of them).
 */
export interface DetectionLookup {
  (imageId: number): Promise<DetectionIds>;
  many?: (imageIds: readonly number[]) => Promise<DetectionIds[]>;
}

/** Rows of one archive table in a batch. */
export interface TableRows {
  readonly name: string;
  readonly rows: number;
}

/** A batch written to disk: the FITS file and its manifest. */
export interface BuiltBatch {
  readonly name: string;
  readonly type: BatchType;
  readonly fitsPath: string;
  readonly manifestPath: string;
  readonly tables: readonly TableRows[];
  /** Rows of the main table (Detection, StackObjectThin, ObjectThin; all tables for IN). */
  readonly mainRows: number;
  /** Size and md5 (hex) of the FITS file. */
  readonly bytes: number;
  readonly md5: string;
  readonly warnings: readonly string[];
  /** Milliseconds per step (read, lookup, convert, validate, write), for benches and logs. */
  readonly timings?: Readonly<Record<string, number>>;
}
