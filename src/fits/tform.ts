import { FitsError, type FitsLocation } from './errors.ts';

/** A fixed-width FITS binary-table data type (the letter of a TFORM value). */
export type FixedCode = 'L' | 'X' | 'B' | 'I' | 'J' | 'K' | 'A' | 'E' | 'D' | 'C' | 'M';

/** Every TFORM type letter: the fixed types plus the P (32-bit) and Q (64-bit) array descriptors. */
export type TformCode = FixedCode | 'P' | 'Q';

/**
 * A parsed TFORM value, `rT` or `rPt(emax)` / `rQt(emax)`.
 * For P/Q the repeat is the number of descriptors (0 or 1) and `element` the type they point to.
 */
export interface Tform {
  readonly repeat: number;
  readonly code: TformCode;
  /** For P/Q: the type of the elements in the heap. */
  readonly element?: FixedCode;
  /** For P/Q: the largest element count of any row, when the TFORM states it. */
  readonly maxLength?: number;
  /** For A: the substring width of the `rAw` convention, kept so that it can be written back. */
  readonly substring?: number;
}

/** Bytes one element of each fixed type takes (X counts bits, so it is handled apart). */
const ELEMENT_BYTES: Readonly<Record<FixedCode, number>> = {
  L: 1, X: 1, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16,
};

const TFORM_PATTERN = /^(\d*)([LXBIJKAEDCMPQ])(.*)$/;
const DESCRIPTOR_PATTERN = /^([LXBIJKAEDCM])(?:\((\d+)\))?$/;

// A repeat larger than this cannot describe a row that fits in memory anyway.
const MAX_REPEAT = 2 ** 31 - 1;

/** Parses a TFORM value; throws `fits_bad_tform` naming the column (via `at`) for anything invalid. */
export function parseTform(text: string, at: FitsLocation = {}): Tform {
  const bad = (why: string): FitsError => new FitsError('fits_bad_tform', at, `TFORM '${text}' ${why}`);
  const m = TFORM_PATTERN.exec(text.trim());
  if (!m) throw bad('is not a binary-table format (expected e.g. 1J, 20A, 3D, 1PE(100))');
  const repeat = m[1] === '' ? 1 : Number(m[1]);
  if (!Number.isSafeInteger(repeat) || repeat > MAX_REPEAT) throw bad(`has a repeat count too large to handle (${m[1]})`);
  const code = m[2] as TformCode;
  const rest = m[3];
  if (code === 'P' || code === 'Q') {
    const d = DESCRIPTOR_PATTERN.exec(rest);
    if (!d) throw bad(`has a bad array descriptor "${rest}" (expected ${code}t or ${code}t(emax) with t one of LXBIJKAEDCM)`);
    if (repeat > 1) throw bad(`has repeat ${repeat}; an array descriptor column holds 0 or 1 descriptors`);
    const maxLength = d[2] === undefined ? undefined : Number(d[2]);
    if (maxLength !== undefined && !Number.isSafeInteger(maxLength)) throw bad('has a maximum length too large to handle');
    return { repeat, code, element: d[1] as FixedCode, ...(maxLength !== undefined ? { maxLength } : {}) };
  }
  if (rest !== '') {
    // rAw: fixed-width substrings within a character field (a registered convention).
    if (code === 'A' && /^\d+$/.test(rest)) {
      const substring = Number(rest);
      if (substring < 1 || substring > Math.max(repeat, 1)) throw bad(`has substring width ${substring}, outside 1..${repeat}`);
      return { repeat, code, substring };
    }
    throw bad(`has unexpected characters "${rest}" after the type letter`);
  }
  return { repeat, code };
}

/** The TFORM text of a parsed value (`1J`, `20A`, `1PE(100)`). */
export function formatTform(t: Tform): string {
  if (t.code === 'P' || t.code === 'Q') {
    return `${t.repeat}${t.code}${t.element ?? 'B'}${t.maxLength !== undefined ? `(${t.maxLength})` : ''}`;
  }
  return `${t.repeat}${t.code}${t.substring !== undefined ? t.substring : ''}`;
}

/** Bytes one element of a fixed type takes in a row or the heap (X: one byte per 8 bits, see {@link bitBytes}). */
export function elementBytes(code: FixedCode): number {
  return ELEMENT_BYTES[code];
}

/** Bytes that `bits` bits of an X column take. */
export function bitBytes(bits: number): number {
  return Math.ceil(bits / 8);
}

/** Bytes a column of this TFORM takes in each row. */
export function tformByteWidth(t: Tform): number {
  switch (t.code) {
    case 'P': return 8 * t.repeat;
    case 'Q': return 16 * t.repeat;
    case 'X': return bitBytes(t.repeat);
    default: return t.repeat * ELEMENT_BYTES[t.code];
  }
}

/** Bytes `count` elements of a fixed type take in the heap (the target of a P/Q descriptor). */
export function heapElementBytes(code: FixedCode, count: number): number {
  return code === 'X' ? bitBytes(count) : count * ELEMENT_BYTES[code];
}
