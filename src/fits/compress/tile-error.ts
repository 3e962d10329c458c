import { FitsError } from '../errors.ts';

/**
 * A tile that cannot be decompressed, raised by the pure codecs, which know nothing of
 * files; the table reader raises it again with the file, HDU, column and tile named.
 */
export class TileCodecError extends FitsError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('fits_bad_tile', {}, what, options);
  }
}
