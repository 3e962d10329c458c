// GZIP_1 / GZIP_2 tiles are gzip members (cfitsio writes gzip, not raw zlib, streams).
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { TileCodecError } from './tile-error.ts';

const gzipAsync = promisify(zlib.gzip);
const unzipAsync = promisify(zlib.unzip);

/** zlib's default; cfitsio itself uses 1 (fastest), which gives larger files. */
export const DEFAULT_GZIP_LEVEL = 6;

/** Gzips one tile's bytes (on the thread pool, so columns of a tile can overlap). */
export async function gzipTile(bytes: Uint8Array, level = DEFAULT_GZIP_LEVEL): Promise<Uint8Array> {
  const out = await gzipAsync(bytes, { level });
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Inflates one tile that must hold exactly `expected` bytes. The output is capped just
 * above `expected`, so a damaged or hostile tile cannot blow up memory.
 */
export async function gunzipTile(stream: Uint8Array, expected: number): Promise<Uint8Array> {
  let out: Buffer;
  try {
    out = await unzipAsync(stream, { maxOutputLength: expected + 1 });
  } catch (error) {
    throw inflateError(error, stream.length, expected);
  }
  return checkLength(out, expected);
}

function inflateError(error: unknown, length: number, expected: number): TileCodecError {
  if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
    return new TileCodecError(`the tile inflates to more than the ${expected} bytes it should hold`, { cause: error });
  }
  return new TileCodecError(`the tile (${length} bytes) does not inflate: ${(error as Error).message}`, { cause: error });
}

function checkLength(out: Buffer, expected: number): Uint8Array {
  if (out.length !== expected) {
    throw new TileCodecError(`the tile inflates to ${out.length} bytes; it should hold ${expected}`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** {@link gzipTile} on the calling thread: for the many small arrays of a variable-length column. */
export function gzipTileSync(bytes: Uint8Array, level = DEFAULT_GZIP_LEVEL): Uint8Array {
  const out = zlib.gzipSync(bytes, { level });
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** {@link gunzipTile} on the calling thread: for the many small arrays of a variable-length column. */
export function gunzipTileSync(stream: Uint8Array, expected: number): Uint8Array {
  let out: Buffer;
  try {
    out = zlib.unzipSync(stream, { maxOutputLength: expected + 1 });
  } catch (error) {
    throw inflateError(error, stream.length, expected);
  }
  return checkLength(out, expected);
}
