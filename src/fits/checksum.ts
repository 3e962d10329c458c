// FITS checksums (standard, appendix J): the 32-bit ones' complement sum of an HDU's
// big-endian words. Ones' complement addition is arithmetic modulo 2^32 - 1, so a chunk's
// sum can be computed alone and shifted to its place: a chunk that starts k bytes past a
// word boundary contributes its own sum rotated right by 8k bits. That is why chunks may
// have any length and start anywhere (the writer sums rows and heap as they stream out).
import { endianness } from 'node:os';
import { FitsError, type FitsLocation } from './errors.ts';
import type { Header } from './header.ts';

const M = 0xffffffff; // 2^32 - 1: "negative zero", the sum of a correct HDU
const LITTLE_ENDIAN = endianness() === 'LE';
// Word pairs summed in int32 lanes between moves into the byte sums: a lane holds a 16-bit
// sum of bytes, which 256 words' worth of bytes cannot overflow.
const LANE_WORDS = 512;

/** Reduces a non-negative integer (< 2^53) modulo 2^32 - 1 the way end-around carry does: only 0 stays 0. */
export function reduceSum(x: number): number {
  return x === 0 ? 0 : (x % M) || M;
}

/** Rotates a 32-bit sum left by `bits` (modulo 32): a sum moved `bits / 8` bytes towards the word's start. */
export function rotateSum(x: number, bits: number): number {
  bits &= 31;
  if (bits === 0) return x;
  return ((x << bits) | (x >>> (32 - bits))) >>> 0;
}

/** Adds two ones' complement 32-bit sums. */
export function addSums(a: number, b: number): number {
  const s = a + b;
  return s > M ? s - M : s;
}

/**
 * The ones' complement sum of `bytes` taken as big-endian 32-bit words starting at a word
 * boundary (a short last word is padded with zeros, which add nothing).
 */
export function sumWords(bytes: Uint8Array): number {
  const words = bytes.length >>> 2;
  // s0..s3: sums of the first..fourth byte of every big-endian word, weighted at the end by
  // their place in the word (a rotation, modulo 2^32 - 1).
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  if (LITTLE_ENDIAN) {
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice(0, words * 4);
    const u32 = new Uint32Array(aligned.buffer, aligned.byteOffset, words);
    // Each little-endian word splits into two lanes of two bytes (masks 0x00ff00ff), two
    // words a step; the lanes add up in int32 arithmetic and move into the byte sums (doubles)
    // once per LANE_WORDS words.
    const even = words & ~1;
    for (let start = 0; start < even; start += LANE_WORDS) {
      const end = Math.min(even, start + LANE_WORDS);
      let a = 0;
      let b = 0;
      let c = 0;
      let d = 0;
      for (let i = start; i < end; i += 2) {
        const w = u32[i];
        const v = u32[i + 1];
        a = (a + (w & 0x00ff00ff)) | 0;
        b = (b + ((w >>> 8) & 0x00ff00ff)) | 0;
        c = (c + (v & 0x00ff00ff)) | 0;
        d = (d + ((v >>> 8) & 0x00ff00ff)) | 0;
      }
      s0 += (a & 0xffff) + (c & 0xffff);
      s2 += (a >>> 16) + (c >>> 16);
      s1 += (b & 0xffff) + (d & 0xffff);
      s3 += (b >>> 16) + (d >>> 16);
    }
    if (even < words) {
      const w = u32[even];
      s0 += w & 0xff;
      s1 += (w >>> 8) & 0xff;
      s2 += (w >>> 16) & 0xff;
      s3 += w >>> 24;
    }
  } else {
    for (let i = 0; i < words * 4; i += 4) {
      s0 += bytes[i];
      s1 += bytes[i + 1];
      s2 += bytes[i + 2];
      s3 += bytes[i + 3];
    }
  }
  // A short last word: its bytes are the first bytes of a word padded with zeros.
  const rest = bytes.length & 3;
  if (rest > 0) s0 += bytes[words * 4];
  if (rest > 1) s1 += bytes[words * 4 + 1];
  if (rest > 2) s2 += bytes[words * 4 + 2];
  return addSums(addSums(rotateSum(reduceSum(s0), 24), rotateSum(reduceSum(s1), 16)), addSums(rotateSum(reduceSum(s2), 8), reduceSum(s3)));
}

/**
 * An incremental ones' complement sum over an HDU (or its data). Chunks may come in any
 * order, with any length and position: `position` is the chunk's byte offset from the start
 * of what is summed (the header or data start, which are whole 2880-byte blocks).
 */
export class Checksum {
  private total = 0;

  /** Adds a chunk that sits at `position`. */
  add(bytes: Uint8Array, position = 0): this {
    const s = sumWords(bytes);
    this.total = addSums(this.total, rotateSum(s, 32 - 8 * (position & 3)));
    return this;
  }

  /** Adds a sum computed elsewhere (for example DATASUM). */
  addSum(sum: number): this {
    this.total = addSums(this.total, sum);
    return this;
  }

  /** The sum so far (unsigned 32-bit). */
  get sum(): number {
    return this.total;
  }
}

const EXCLUDED = new Set([0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60]);

/**
 * The 16-character ASCII encoding of a 32-bit value (appendix J): each byte is spread over
 * four characters from '0' up, avoiding punctuation, then the string is rotated by one.
 * CHECKSUM holds the encoding of the complement of the HDU's sum.
 */
export function encodeChecksum(value: number): string {
  const asc = new Array<number>(16);
  for (let i = 0; i < 4; i++) {
    const byte = (value >>> (24 - 8 * i)) & 0xff;
    const quotient = (byte >>> 2) + 0x30;
    const ch = [quotient + (byte & 3), quotient, quotient, quotient];
    for (let changed = true; changed;) {
      changed = false;
      for (let k = 0; k < 4; k += 2) {
        if (EXCLUDED.has(ch[k]) || EXCLUDED.has(ch[k + 1])) {
          ch[k]++;
          ch[k + 1]--;
          changed = true;
        }
      }
    }
    for (let j = 0; j < 4; j++) asc[4 * j + i] = ch[j];
  }
  let out = '';
  for (let i = 0; i < 16; i++) out += String.fromCharCode(asc[(i + 15) % 16]);
  return out;
}

/** The value a 16-character CHECKSUM string encodes (inverse of {@link encodeChecksum}). */
export function decodeChecksum(text: string): number {
  const asc = new Array<number>(16);
  for (let i = 0; i < 16; i++) asc[(i + 15) % 16] = text.charCodeAt(i) - 0x30;
  let value = 0;
  for (let i = 0; i < 4; i++) {
    let byte = 0;
    for (let j = 0; j < 4; j++) byte += asc[4 * j + i];
    value = value * 256 + (byte & 0xff);
  }
  return value;
}

/** The placeholder CHECKSUM value that the header is summed with. */
export const CHECKSUM_PLACEHOLDER = '0000000000000000';

/**
 * Sets DATASUM to the data's sum and CHECKSUM so that the whole HDU sums to negative zero.
 * Adds the cards at the end if missing; call it with the cards already present (any value)
 * when the header's size must not change.
 */
export function setChecksums(header: Header, datasum: number): Header {
  if (!header.has('CHECKSUM')) header.set('CHECKSUM', CHECKSUM_PLACEHOLDER, 'HDU checksum');
  header.set('DATASUM', String(datasum >>> 0), 'data unit checksum');
  header.set('CHECKSUM', CHECKSUM_PLACEHOLDER);
  const total = addSums(sumWords(header.toBytes()), datasum >>> 0);
  header.set('CHECKSUM', encodeChecksum(~total >>> 0));
  return header;
}

/**
 * Checks an HDU's CHECKSUM and DATASUM against the header bytes as read and the data's sum;
 * returns what is wrong (empty when both agree or are absent).
 */
export function verifyChecksums(header: Header, headerBytes: Uint8Array, datasum: number, at: FitsLocation = {}): FitsError[] {
  const problems: FitsError[] = [];
  const stated = header.get('DATASUM');
  if (stated !== undefined && stated !== null) {
    const n = typeof stated === 'string' ? Number(stated.trim()) : Number(stated);
    if (!(n === datasum >>> 0)) {
      problems.push(new FitsError('fits_bad_datasum', { ...at, keyword: 'DATASUM' }, `DATASUM says ${String(stated)} but the data sum to ${datasum >>> 0}; the data are damaged`));
    }
  }
  const checksum = header.get('CHECKSUM');
  if (checksum !== undefined && checksum !== null) {
    const total = addSums(sumWords(headerBytes), datasum >>> 0);
    if (total !== M) {
      problems.push(new FitsError('fits_bad_checksum', { ...at, keyword: 'CHECKSUM' }, `CHECKSUM ${String(checksum)} does not match: the HDU sums to ${total} instead of ${M}; the header or data are damaged`));
    }
  }
  return problems;
}
