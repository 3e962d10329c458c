import { IppError } from '../common/index.ts';

/**
 * An error of the Nebulous room: a bad key or pattern, an unknown or full volume, a locked,
 * missing or deleted storage object, a file that could not be copied. The code is stable (the
 * server sends it, the client raises it again); the message names the key, volume or file.
 */
export class NebError extends IppError {}

/** The HTTP status of each Nebulous error code (codes not listed answer 400). */
export const NEB_STATUS: Readonly<Record<string, number>> = Object.freeze({
  neb_key_invalid: 400,
  neb_pattern_invalid: 400,
  neb_request_invalid: 400,
  neb_volume_invalid: 400,
  neb_not_found: 404,
  neb_volume_unknown: 404,
  neb_instance_unknown: 404,
  neb_deleted: 410,
  neb_exists: 409,
  neb_volume_exists: 409,
  neb_last_instance: 409,
  neb_copies_needed: 409,
  neb_not_locked: 409,
  neb_checksum_mismatch: 409,
  neb_source_missing: 409,
  neb_locked: 423,
  neb_volume_unavailable: 503,
  neb_no_instance: 503,
  neb_volume_full: 507,
  neb_no_volume: 507,
  neb_io: 500,
});

/** The status for a Nebulous code, for the service kit's `statusOf`. */
export function nebStatusOf(code: string): number | undefined {
  return NEB_STATUS[code];
}
