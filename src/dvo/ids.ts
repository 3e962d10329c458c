// The 64-bit identifiers DVO hands to the archive.
//
// Objects: the PS1 objID of MAST's "PS1 Object Identifiers" from the position where the
// object was first seen (so it never changes as the mean position moves):
//   zid = (dec + 90) / 0.0083333, izone = floor(zid), zresid = zid - izone,
//   objID = izone·10^13 + floor(ra·10^6)·10^4 + floor(zresid·10^4).
//
// Detections: EXTERN_ID (the catalogue's IMAGEID, 32 bits) in the high word and IPP_IDET
// (the detection's number in its chip table, 32 bits) in the low word. It depends only on
// the input, so re-ingest and merge give the same ID, and the low word gives back IPP_IDET.
import { endianness } from 'node:os';

/** Height of an archive zone in degrees (MAST's value, not 1/120). */
export const ZONE_HEIGHT = 0.0083333;

/** The archive zoneID of a declination. */
export function zoneId(dec: number): number {
  return Math.floor((90 + dec) / ZONE_HEIGHT);
}

/** The PS1 objID of a position (ra in [0, 360), dec in [-90, 90]). */
export function objectId(ra: number, dec: number): bigint {
  const zid = (dec + 90) / ZONE_HEIGHT;
  const izone = Math.floor(zid);
  const zresid = zid - izone;
  // The low part stays below 2^53, so it is exact as a number.
  const low = Math.floor(ra * 1e6) * 1e4 + Math.floor(zresid * 1e4);
  return BigInt(izone) * 10_000_000_000_000n + BigInt(low);
}

// 10^13 = HI13 · 2^32 + LO13.
const HI13 = 2328;
const LO13 = 1_316_134_912;

/**
 * Writes {@link objectId} of a position into element `at` of a BigUint64Array seen as its
 * 32-bit words (little-endian host), without a BigInt: izone·10^13 is split at 2^32, and
 * every partial sum stays below 2^53, so the words are exact.
 */
export function setObjectId(words: Uint32Array, at: number, ra: number, dec: number): void {
  setObjectIdWords(words, 2 * at, ra, dec);
}

/** {@link setObjectId} into words `index` (low) and `index + 1` (high). */
export function setObjectIdWords(words: Uint32Array, index: number, ra: number, dec: number): void {
  const zid = (dec + 90) / ZONE_HEIGHT;
  const izone = Math.floor(zid);
  const zresid = zid - izone;
  const low = Math.floor(ra * 1e6) * 1e4 + Math.floor(zresid * 1e4);
  const sum = izone * LO13 + low;
  const carry = Math.floor(sum / 4294967296);
  words[index] = sum - carry * 4294967296;
  words[index + 1] = izone * HI13 + carry;
}

/** True when {@link setObjectId} can be used (the host is little-endian). */
export const OBJECT_ID_WORDS = endianness() === 'LE';

/** The detection ID of IPP_IDET in the image whose EXTERN_ID is `externId`. */
export function detectionId(externId: number, ippIdet: number): bigint {
  return (BigInt(externId >>> 0) << 32n) | BigInt(ippIdet >>> 0);
}

/** IPP_IDET back from a detection ID. */
export function ippIdetOf(detectionId: bigint): number {
  return Number(detectionId & 0xffffffffn);
}

/** EXTERN_ID back from a detection ID. */
export function externIdOf(detectionId: bigint): number {
  return Number(detectionId >> 32n);
}

const LITTLE = endianness() === 'LE';

/**
 * Fills `out[from..from+n)` with detection IDs of one image without a BigInt per row
 * (the hot path of catalogue reading): the two 32-bit halves are written directly.
 */
export function fillDetectionIds(out: BigUint64Array, from: number, externId: number, ippIdet: ArrayLike<number>, n: number): void {
  if (!LITTLE) {
    for (let i = 0; i < n; i++) out[from + i] = detectionId(externId, ippIdet[i]);
    return;
  }
  const words = new Uint32Array(out.buffer, out.byteOffset + from * 8, n * 2);
  const hi = externId >>> 0;
  for (let i = 0; i < n; i++) {
    words[2 * i] = ippIdet[i] >>> 0;
    words[2 * i + 1] = hi;
  }
}
