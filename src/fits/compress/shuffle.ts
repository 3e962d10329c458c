// GZIP_2's byte shuffle: the first byte of every value, then every second byte, and so on.
// Big-endian values thus put their slowly varying high bytes together, which gzip likes.
import { TileCodecError } from './tile-error.ts';

/** Reorders big-endian values of `width` bytes into byte planes (a new array). */
export function shuffleBytes(bytes: Uint8Array, width: number): Uint8Array {
  if (width === 1) return bytes.slice();
  checkWhole(bytes, width);
  const n = bytes.length / width;
  const out = new Uint8Array(bytes.length);
  for (let k = 0; k < width; k++) {
    const plane = k * n;
    for (let i = 0, j = k; i < n; i++, j += width) out[plane + i] = bytes[j];
  }
  return out;
}

/** Undoes {@link shuffleBytes}: byte planes back into big-endian values (a new array). */
export function unshuffleBytes(planes: Uint8Array, width: number): Uint8Array {
  if (width === 1) return planes.slice();
  checkWhole(planes, width);
  const n = planes.length / width;
  const out = new Uint8Array(planes.length);
  for (let k = 0; k < width; k++) {
    const plane = k * n;
    for (let i = 0, j = k; i < n; i++, j += width) out[j] = planes[plane + i];
  }
  return out;
}

function checkWhole(bytes: Uint8Array, width: number): void {
  if (!Number.isInteger(width) || width < 1 || bytes.length % width !== 0) {
    throw new TileCodecError(`${bytes.length} bytes are not a whole number of ${width}-byte values`);
  }
}
