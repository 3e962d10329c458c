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
// Words summed between reductions, so that the lane sums stay exact in a double.
const FOLD_WORDS = 1 << 24;

/** Reduces a non-negative integer (< 2^53) modulo 2^32 - 1 the way end-around carry does: only 0 stays 0. */
function reduce(x: number): number {
  return x === 0 ? 0 : (x % M) || M;
}

function rotl(x: number, bits: number): number {
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
  let total = 0;
  if (LITTLE_ENDIAN) {
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice(0, words * 4);
    const u32 = new Uint32Array(aligned.buffer, aligned.byteOffset, words);
    // Lane sums of the little-endian words: a holds bytes 0 and 2, b bytes 1 and 3 of each
    // big-endian word; modulo 2^32 - 1 the big-endian sum is a·2^24 + b·2^16.
    for (let start = 0; start < words; start += FOLD_WORDS) {
      const end = Math.min(words, start + FOLD_WORDS);
      let a = 0;
      let b = 0;
      for (let i = start; i < end; i++) {
        const w = u32[i];
        a += w & 0x00ff00ff;
        b += (w >>> 8) & 0x00ff00ff;
      }
      total = addSums(total, addSums(rotl(reduce(a), 24), rotl(reduce(b), 16)));
    }
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let acc = 0;
    for (let i = 0; i < words; i++) {
      acc += dv.getUint32(i * 4);
      if ((i & 0xfffff) === 0xfffff) { total = addSums(total, reduce(acc)); acc = 0; }
    }
    total = addSums(total, reduce(acc));
  }
  const rest = bytes.length & 3;
  if (rest) {
    let w = 0;
    for (let k = 0; k < rest; k++) w += bytes[words * 4 + k] * 2 ** (24 - 8 * k);
    total = addSums(total, w);
  }
  return total;
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
    this.total = addSums(this.total, rotl(s, 32 - 8 * (position & 3)));
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
