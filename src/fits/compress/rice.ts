// RICE_1 for tile-compressed FITS (FITS 4.0 §10.4.1, the algorithm of cfitsio's ricecomp.c):
// the first value verbatim, then blocks of 32 differences, each block opened by a code that
// says how many low bits are sent as they are (fs), or that the block is all zero, or that
// the differences are sent raw. The bit stream must match cfitsio's exactly, so the choice
// of fs follows its formula to the letter.
import { TileCodecError } from './tile-error.ts';

/** Bytes per value RICE_1 handles: 1 (FITS B), 2 (I), 4 (J). */
export type RiceWidth = 1 | 2 | 4;

/** Values per block; cfitsio always uses 32 for tables (and ZVAL1 defaults to it for images). */
export const RICE_BLOCK_SIZE = 32;

interface RiceParams {
  readonly fsBits: number;
  readonly fsMax: number;
  readonly bBits: number;
}

// cfitsio's parameters per value size: bits of the block code, largest split, raw bits.
const PARAMS: Readonly<Record<RiceWidth, RiceParams>> = {
  1: { fsBits: 3, fsMax: 6, bBits: 8 },
  2: { fsBits: 4, fsMax: 14, bBits: 16 },
  4: { fsBits: 5, fsMax: 25, bBits: 32 },
};

function paramsOf(width: number): RiceParams {
  const p = PARAMS[width as RiceWidth];
  if (!p) throw new TileCodecError(`RICE_1 handles values of 1, 2 or 4 bytes, not ${width}`);
  return p;
}

/**
 * Big-endian values of `width` bytes, read as unsigned numbers; the difference arithmetic
 * wraps at the value width, so signedness does not change the stream.
 */
function readUnsigned(bytes: Uint8Array, width: RiceWidth): Uint32Array {
  const n = bytes.length / width;
  const out = new Uint32Array(n);
  if (width === 1) {
    out.set(bytes);
  } else if (width === 2) {
    for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = (bytes[j] << 8) | bytes[j + 1];
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      out[i] = ((bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3]) >>> 0;
    }
  }
  return out;
}

/**
 * Compresses big-endian integers (`bytes.length / width` of them) with RICE_1, block size
 * 32, producing the same bytes as cfitsio's fits_rcomp / fits_rcomp_short / fits_rcomp_byte.
 */
export function riceCompress(bytes: Uint8Array, width: RiceWidth): Uint8Array {
  const { fsBits, fsMax, bBits } = paramsOf(width);
  if (bytes.length % width !== 0) throw new TileCodecError(`RICE_1 input of ${bytes.length} bytes is not a whole number of ${width}-byte values`);
  const values = readUnsigned(bytes, width);
  const n = values.length;
  const shift = 32 - bBits; // wraps a difference to the value width, keeping its sign
  const mask = bBits === 32 ? 0xffffffff : (1 << bBits) - 1;

  // Worst case is every block raw: code bits plus bBits per value, plus the first value.
  let out = new Uint8Array(width + Math.ceil((Math.ceil(n / RICE_BLOCK_SIZE) * fsBits + n * bBits) / 8) + 16);
  let pos = 0;
  let acc = 0; // pending bits, fewer than 8 between writes
  let pending = 0;
  const put = (bits: number, count: number): void => {
    // count <= 24, so acc never holds more than 31 bits.
    acc = (acc << count) | (bits & ((1 << count) - 1));
    pending += count;
    while (pending >= 8) {
      pending -= 8;
      if (pos >= out.length) {
        const bigger = new Uint8Array(out.length * 2);
        bigger.set(out);
        out = bigger;
      }
      out[pos++] = (acc >>> pending) & 0xff;
    }
    acc &= (1 << pending) - 1;
  };
  const putWide = (bits: number, count: number): void => {
    if (count > 16) {
      put(bits >>> 16, count - 16);
      put(bits & 0xffff, 16);
    } else {
      put(bits, count);
    }
  };

  if (n === 0) return new Uint8Array(0);
  putWide(values[0] & mask, bBits);
  let last = values[0];
  const diff = new Uint32Array(RICE_BLOCK_SIZE);
  for (let i = 0; i < n; i += RICE_BLOCK_SIZE) {
    const count = Math.min(RICE_BLOCK_SIZE, n - i);
    let sum = 0;
    for (let j = 0; j < count; j++) {
      const next = values[i + j];
      const d = ((next - last) << shift) >> shift;
      const mapped = (d < 0 ? ~(d << 1) : d << 1) >>> 0;
      diff[j] = mapped;
      sum += mapped;
      last = next;
    }
    // cfitsio: dpsum = (pixelsum - (thisblock/2) - 1) / thisblock, in doubles, the half
    // in integer division; then fs is the bit length of (unsigned)dpsum >> 1.
    let dpsum = (sum - Math.floor(count / 2) - 1) / count;
    if (dpsum < 0) dpsum = 0;
    const psum = Math.trunc(dpsum) >>> 1;
    const fs = psum === 0 ? 0 : 32 - Math.clz32(psum);
    if (fs >= fsMax) {
      put(fsMax + 1, fsBits);
      for (let j = 0; j < count; j++) putWide(diff[j], bBits);
    } else if (fs === 0 && sum === 0) {
      put(0, fsBits);
    } else {
      put(fs + 1, fsBits);
      const low = (1 << fs) - 1;
      for (let j = 0; j < count; j++) {
        const v = diff[j];
        let top = v >>> fs;
        while (top >= 24) {
          put(0, 24);
          top -= 24;
        }
        put(1, top + 1);
        if (fs > 0) put(v & low, fs);
      }
    }
  }
  if (pending > 0) put(0, 8 - pending);
  return out.subarray(0, pos);
}

/**
 * Decompresses a RICE_1 stream of `count` values of `width` bytes into big-endian bytes.
 * Throws {@link TileCodecError} when the stream ends early, holds a bad block code or an
 * out-of-range value, or holds bytes beyond the `count` values (the wrong count).
 */
export function riceDecompress(stream: Uint8Array, count: number, width: RiceWidth): Uint8Array {
  const { fsBits, fsMax, bBits } = paramsOf(width);
  // Each block of 32 values takes at least its code: a stream too short to hold `count`
  // values is refused before their memory is taken.
  const mostValues = (Math.floor(Math.max(0, stream.length * 8 - bBits) / fsBits) + 1) * RICE_BLOCK_SIZE;
  if (!Number.isSafeInteger(count) || count < 0 || (count > 0 && count > mostValues)) {
    throw new TileCodecError(`RICE_1 stream of ${stream.length} bytes cannot hold ${count} values (the tile is truncated or damaged)`);
  }
  const out = new Uint8Array(count * width);
  if (count === 0) {
    if (stream.length !== 0) throw new TileCodecError(`RICE_1 stream of ${stream.length} bytes for 0 values`);
    return out;
  }
  const len = stream.length;
  const valueMask = bBits === 32 ? 0xffffffff : (1 << bBits) - 1;
  let pos = 0;
  let acc = 0; // the low `nbits` bits are unread
  let nbits = 0;
  const short = (): TileCodecError =>
    new TileCodecError(`RICE_1 stream of ${len} bytes ends before its ${count} values are decoded (the tile is truncated or damaged)`);
  const take = (n: number): number => {
    // n <= 24
    while (nbits < n) {
      if (pos >= len) throw short();
      acc = ((acc << 8) | stream[pos++]) & 0x7fffffff;
      nbits += 8;
    }
    nbits -= n;
    const v = (acc >>> nbits) & ((1 << n) - 1);
    acc &= (1 << nbits) - 1;
    return v;
  };
  const takeWide = (n: number): number => (n > 16 ? ((take(n - 16) << 16) | take(16)) >>> 0 : take(n));

  let last = takeWide(bBits);
  let o = 0;
  const emit = (v: number): void => {
    if (width === 1) {
      out[o++] = v;
    } else if (width === 2) {
      out[o++] = v >>> 8;
      out[o++] = v;
    } else {
      out[o++] = v >>> 24;
      out[o++] = v >>> 16;
      out[o++] = v >>> 8;
      out[o++] = v;
    }
  };
  const unmap = (m: number): number => ((m & 1) === 0 ? m >>> 1 : ~(m >>> 1));

  for (let i = 0; i < count; i += RICE_BLOCK_SIZE) {
    const blockEnd = Math.min(count, i + RICE_BLOCK_SIZE);
    const fs = take(fsBits) - 1;
    if (fs < 0) {
      for (let j = i; j < blockEnd; j++) emit(last);
    } else if (fs === fsMax) {
      for (let j = i; j < blockEnd; j++) {
        last = (last + unmap(takeWide(bBits))) & valueMask;
        emit(last);
      }
    } else if (fs > fsMax) {
      throw new TileCodecError(`RICE_1 block ${i / RICE_BLOCK_SIZE + 1} has code ${fs + 1}; codes above ${fsMax + 1} do not exist (the tile is damaged)`);
    } else {
      const maxTop = valueMask >>> fs;
      for (let j = i; j < blockEnd; j++) {
        // Unary part: zeros up to the next one bit.
        let top = 0;
        for (;;) {
          if (nbits === 0) {
            if (pos >= len) throw short();
            acc = stream[pos++];
            nbits = 8;
          }
          if (acc === 0) {
            top += nbits;
            nbits = 0;
            if (top > maxTop) throw new TileCodecError(`RICE_1 value ${j + 1} is larger than ${bBits} bits (the tile is damaged)`);
            continue;
          }
          const used = 32 - Math.clz32(acc); // position of the one bit, counted from 1
          top += nbits - used;
          nbits = used - 1;
          acc &= (1 << nbits) - 1;
          break;
        }
        if (top > maxTop) throw new TileCodecError(`RICE_1 value ${j + 1} is larger than ${bBits} bits (the tile is damaged)`);
        const mapped = fs > 0 ? ((top << fs) | take(fs)) >>> 0 : top;
        last = (last + unmap(mapped)) & valueMask;
        emit(last);
      }
    }
  }
  if (pos !== len) {
    throw new TileCodecError(`RICE_1 stream holds ${len - pos} bytes after its ${count} values; the tile does not hold the expected number of values`);
  }
  return out;
}
