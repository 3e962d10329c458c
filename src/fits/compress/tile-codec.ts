// One column of one tile: its bytes (big-endian values, row after row) to a compressed
// stream and back, by the algorithm named in ZCTYPn.
import { gunzipTile, gunzipTileSync, gzipTile, gzipTileSync, DEFAULT_GZIP_LEVEL } from './gzip.ts';
import { riceCompress, riceDecompress, type RiceWidth } from './rice.ts';
import { shuffleBytes, unshuffleBytes } from './shuffle.ts';
import { TileCodecError } from './tile-error.ts';

/** The table compression algorithms of FITS 4.0 §10.3 (ZCTYPn values). */
export type TileAlgorithm = 'RICE_1' | 'GZIP_1' | 'GZIP_2';

/** Every {@link TileAlgorithm}, for validation. */
export const TILE_ALGORITHMS: readonly TileAlgorithm[] = ['RICE_1', 'GZIP_1', 'GZIP_2'];

/**
 * Compresses one tile of one column. `width` is the value size the algorithm works on:
 * RICE_1's integer size (1, 2, 4), or GZIP_2's shuffle width (1 means no shuffle);
 * GZIP_1 ignores it.
 */
export async function compressTile(algorithm: TileAlgorithm, bytes: Uint8Array, width: number, level = DEFAULT_GZIP_LEVEL): Promise<Uint8Array> {
  switch (algorithm) {
    case 'RICE_1': return riceCompress(bytes, riceWidth(width));
    case 'GZIP_1': return gzipTile(bytes, level);
    case 'GZIP_2': return gzipTile(width > 1 ? shuffleBytes(bytes, width) : bytes, level);
  }
}

/**
 * Decompresses one tile of one column into exactly `byteLength` bytes; throws
 * {@link TileCodecError} when the stream is damaged or holds another amount.
 */
export async function decompressTile(algorithm: TileAlgorithm, stream: Uint8Array, width: number, byteLength: number): Promise<Uint8Array> {
  switch (algorithm) {
    case 'RICE_1': return riceDecompress(stream, riceCount(byteLength, riceWidth(width)), riceWidth(width));
    case 'GZIP_1': return gunzipTile(stream, byteLength);
    case 'GZIP_2': {
      const planes = await gunzipTile(stream, byteLength);
      return width > 1 ? unshuffleBytes(planes, width) : planes;
    }
  }
}

/** {@link compressTile} on the calling thread, for the many small arrays of a variable-length column. */
export function compressTileSync(algorithm: TileAlgorithm, bytes: Uint8Array, width: number, level = DEFAULT_GZIP_LEVEL): Uint8Array {
  switch (algorithm) {
    case 'RICE_1': return riceCompress(bytes, riceWidth(width));
    case 'GZIP_1': return gzipTileSync(bytes, level);
    case 'GZIP_2': return gzipTileSync(width > 1 ? shuffleBytes(bytes, width) : bytes, level);
  }
}

/** {@link decompressTile} on the calling thread, for the many small arrays of a variable-length column. */
export function decompressTileSync(algorithm: TileAlgorithm, stream: Uint8Array, width: number, byteLength: number): Uint8Array {
  switch (algorithm) {
    case 'RICE_1': return riceDecompress(stream, riceCount(byteLength, riceWidth(width)), riceWidth(width));
    case 'GZIP_1': return gunzipTileSync(stream, byteLength);
    case 'GZIP_2': {
      const planes = gunzipTileSync(stream, byteLength);
      return width > 1 ? unshuffleBytes(planes, width) : planes;
    }
  }
}

function riceCount(byteLength: number, width: RiceWidth): number {
  if (byteLength % width !== 0) throw new TileCodecError(`RICE_1 tile of ${byteLength} bytes is not a whole number of ${width}-byte values`);
  return byteLength / width;
}

function riceWidth(width: number): RiceWidth {
  if (width === 1 || width === 2 || width === 4) return width;
  throw new TileCodecError(`RICE_1 handles 1, 2 or 4-byte integers, not ${width}-byte values`);
}
