// A PNG encoder (RGBA truecolour and indexed colour), enough for the plots that metrics and
// the plotter write and the console serves: no native or npm image library is needed for that.
import { crc32, deflateSync } from 'node:zlib';
import { IppError } from './errors.ts';

/** An RGBA raster: `data` holds 4 bytes per pixel, rows top to bottom. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** Options of the encoders. */
export interface PngOptions {
  /** tEXt chunks (Latin-1 keys of 1–79 characters, e.g. `Title`, `Software`). */
  readonly text?: Readonly<Record<string, string>>;
  /** zlib level 0–9 (default 6). */
  readonly level?: number;
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** PNG caps each dimension at 2^31-1; we cap far lower so a mistaken size cannot exhaust memory. */
const MAX_SIDE = 1 << 15;

/** Encodes an RGBA raster as a truecolour-with-alpha PNG (8 bits per sample, adaptive row filters). */
export function encodePng(image: RgbaImage, options: PngOptions = {}): Uint8Array {
  const { width, height, data } = image;
  checkSize(width, height);
  if (data.length !== width * height * 4) {
    throw new IppError('png_bad_data', `RGBA data of ${data.length} bytes does not match ${width}x${height} pixels (${width * height * 4} bytes expected)`);
  }
  const raw = filterRows(data, width * 4, height, 4);
  return assemble(width, height, 8, 6, [], raw, options);
}

/**
 * Encodes an indexed-colour PNG: `indices` holds one palette index per pixel, `palette` RGB
 * triples (at most 256), `alpha` optional per-entry opacity. Small palettes are packed to 1, 2
 * or 4 bits per pixel.
 */
export function encodeIndexedPng(
  width: number, height: number, indices: Uint8Array, palette: Uint8Array, alpha?: Uint8Array, options: PngOptions = {},
): Uint8Array {
  checkSize(width, height);
  const entries = palette.length / 3;
  if (!Number.isInteger(entries) || entries < 1 || entries > 256) {
    throw new IppError('png_bad_palette', `a palette needs 1 to 256 RGB triples; got ${palette.length} bytes`);
  }
  if (alpha !== undefined && alpha.length > entries) {
    throw new IppError('png_bad_palette', `${alpha.length} alpha entries for a palette of ${entries} colours`);
  }
  if (indices.length !== width * height) {
    throw new IppError('png_bad_data', `${indices.length} indices do not match ${width}x${height} pixels`);
  }
  for (let i = 0; i < indices.length; i++) {
    if (indices[i] >= entries) {
      throw new IppError('png_bad_data', `pixel ${i % width},${Math.floor(i / width)} has index ${indices[i]} outside the palette of ${entries} colours`);
    }
  }
  const depth = entries <= 2 ? 1 : entries <= 4 ? 2 : entries <= 16 ? 4 : 8;
  const perByte = 8 / depth;
  const stride = Math.ceil(width / perByte);
  // Indexed rows compress best unfiltered (the PNG specification's own advice).
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const out = y * (stride + 1) + 1;
    const src = y * width;
    if (depth === 8) {
      raw.set(indices.subarray(src, src + width), out);
      continue;
    }
    for (let x = 0; x < width; x++) {
      const shift = 8 - depth * ((x % perByte) + 1);
      raw[out + Math.floor(x / perByte)] |= indices[src + x] << shift;
    }
  }
  const chunks: Uint8Array[] = [chunk('PLTE', palette)];
  if (alpha !== undefined && alpha.length > 0) chunks.push(chunk('tRNS', alpha));
  return assemble(width, height, depth, 3, chunks, raw, options);
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
    throw new IppError('png_bad_size', `an image must be 1 to ${MAX_SIDE} pixels on each side; got ${width}x${height}`);
  }
}

function assemble(
  width: number, height: number, depth: number, colourType: number, extra: readonly Uint8Array[], raw: Uint8Array, options: PngOptions,
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = depth;
  ihdr[9] = colourType;
  // compression 0 (deflate), filter method 0, interlace 0: the only ones in general use.
  const parts: Uint8Array[] = [SIGNATURE, chunk('IHDR', ihdr), ...extra];
  for (const [key, value] of Object.entries(options.text ?? {})) parts.push(textChunk(key, value));
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new IppError('png_bad_option', `zlib level ${level} is not 0 to 9`);
  parts.push(chunk('IDAT', deflateSync(raw, { level })));
  parts.push(chunk('IEND', new Uint8Array(0)));
  return concat(parts);
}

function textChunk(key: string, value: string): Uint8Array {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(key) || key.startsWith(' ') || key.endsWith(' ')) {
    throw new IppError('png_bad_option', `text key "${key}" must be 1-79 Latin-1 characters without leading or trailing spaces`);
  }
  const body = new Uint8Array(key.length + 1 + value.length);
  for (let i = 0; i < key.length; i++) body[i] = key.charCodeAt(i);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    body[key.length + 1 + i] = c < 256 ? c : 0x3f;
  }
  return chunk('tEXt', body);
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Filters each row with the filter whose output has the smallest sum of absolute values (the
 * usual heuristic): plots are mostly flat colour, which Sub and Up turn into runs of zeros.
 */
function filterRows(data: Uint8Array, stride: number, height: number, bpp: number): Uint8Array {
  const out = new Uint8Array((stride + 1) * height);
  const trial = new Uint8Array(stride);
  const zero = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zero;
    let best = -1;
    let bestSum = Infinity;
    const target = out.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let f = 0; f < 5; f++) {
      let sum = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const b = prev[i];
        const c = i >= bpp ? prev[i - bpp] : 0;
        let v: number;
        switch (f) {
          case 0: v = row[i]; break;
          case 1: v = row[i] - a; break;
          case 2: v = row[i] - b; break;
          case 3: v = row[i] - ((a + b) >> 1); break;
          default: v = row[i] - paeth(a, b, c); break;
        }
        v &= 0xff;
        trial[i] = v;
        sum += v < 128 ? v : 256 - v;
      }
      if (sum < bestSum) {
        bestSum = sum;
        best = f;
        target.set(trial);
      }
    }
    out[y * (stride + 1)] = best;
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}
