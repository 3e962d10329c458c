// The observing schedule of a simulated survey: exposure k (counted from exp_id 100001) is
// taken on night k / 40, every third night from MJD 55562, in slot k % 40 of 300 s. A survey
// given a later first exp_id is observed after the one that ends there, with other exposure
// names (o<MJD-50000>g<slot>o). The schedule ends before MJD 60000, where names would need a
// fifth digit of MJD.

/** The default first exp_id, where the schedule starts. */
export const FIRST_EXP_ID = 100_001;
/** MJD of the first night. */
export const FIRST_MJD = 55562;
/** Exposures per night and the slot each takes (seconds). */
export const PER_NIGHT = 40;
export const SLOT = 300;
/** Days from one night to the next, and the MJD the schedule ends before. */
export const NIGHT_STEP = 3;
export const LAST_MJD = 60000;

/** The largest first exp_id of a survey of `exposures` whose last exposure is still in the schedule. */
export function maxFirstExpId(exposures: number): number {
  return FIRST_EXP_ID + Math.ceil((LAST_MJD - FIRST_MJD) / NIGHT_STEP) * PER_NIGHT - exposures;
}
