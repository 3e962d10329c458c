// The console raises the room's own errors (IppToPspsError, HttpError); this is the one place
// their codes become HTTP statuses (codes not listed answer 400).
const STATUS_OF: Readonly<Record<string, number>> = {
  config_unknown: 404,
  client_unknown: 404,
  config_exists: 409,
  client_ended: 409,
  writes_disabled: 403,
  // The database layer's codes: the server's trouble, not the caller's.
  db_unreachable: 503,
  db_busy: 503,
  db_closed: 503,
  db_statement_failed: 500,
  db_transaction_closed: 500,
};

/** The HTTP status of an error code the console's handlers raise (for the service kit's `statusOf`). */
export function consoleStatus(code: string): number | undefined {
  return STATUS_OF[code];
}
