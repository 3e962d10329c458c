import { IppError } from '../common/index.ts';

/**
 * An error of the archive side (archive database, ODM, DXLayer): a bad schema file, an
 * unknown batch, a refused hand-over, a failed query. Its `code` is stable, so the ODM sends
 * it and its clients raise the same code again.
 */
export class PspsError extends IppError {}

// The one place a psps code becomes an HTTP status (codes not listed answer 400).
const STATUS_OF: Readonly<Record<string, number>> = {
  unknown_batch: 404,
  batch_busy: 409,
  psps_bad_batch: 400,
  psps_cannot_read: 400,
  // The database layer's codes: the server's trouble, not the caller's.
  db_unreachable: 503,
  db_busy: 503,
  db_closed: 503,
  db_statement_failed: 500,
  db_transaction_closed: 500,
};

/** The HTTP status of a psps error code (for the service kit's `statusOf`). */
export function pspsStatus(code: string): number | undefined {
  return STATUS_OF[code];
}
