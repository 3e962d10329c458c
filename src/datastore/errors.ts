import { IppError } from '../common/index.ts';

/**
 * An error of the datastore: a bad name, an unknown product or fileset, a refused upload, a
 * failed download check. Its `code` is stable, so the server sends it and the client raises
 * the same code again.
 */
export class DatastoreError extends IppError {}

// The one place a datastore code becomes an HTTP status (codes not listed answer 400).
const STATUS_OF: Readonly<Record<string, number>> = {
  product_not_found: 404,
  fileset_not_found: 404,
  file_not_found: 404,
  fileset_hidden: 404,
  product_exists: 409,
  fileset_exists: 409,
  upload_too_large: 413,
  range_not_satisfiable: 416,
  writes_disabled: 403,
  insufficient_storage: 507,
  file_missing_on_disk: 500,
  // The database layer's codes: the server's trouble, not the caller's.
  db_unreachable: 503,
  db_busy: 503,
  db_closed: 503,
  db_statement_failed: 500,
  db_transaction_closed: 500,
};

/** The HTTP status of a datastore error code (for the service kit's `statusOf`). */
export function datastoreStatus(code: string): number | undefined {
  return STATUS_OF[code];
}
