import { IppError } from '../common/index.ts';

/** Where in a FITS file a problem is: the file, the HDU (0 = primary), and a keyword or column. */
export interface FitsLocation {
  file?: string;
  hdu?: number;
  extname?: string;
  keyword?: string;
  column?: string;
  row?: number;
}

/**
 * A FITS file that cannot be read or written as asked. The message names the file, the
 * HDU, the keyword or column, what is wrong, and (where it helps) what to do.
 */
export class FitsError extends IppError {
  readonly location: FitsLocation;

  constructor(code: string, location: FitsLocation, what: string, options?: { cause?: unknown }) {
    super(code, `${describeLocation(location)}${what}`, options);
    this.location = location;
  }
}

/** "file.fits: HDU 2 (XY01.psf): column RA_PSF: " — the prefix of every FITS message. */
export function describeLocation(at: FitsLocation): string {
  const parts: string[] = [];
  if (at.file) parts.push(at.file);
  if (at.hdu !== undefined) parts.push(`HDU ${at.hdu}${at.extname ? ` (${at.extname})` : ''}`);
  if (at.keyword) parts.push(`keyword ${at.keyword}`);
  if (at.column) parts.push(`column ${at.column}`);
  if (at.row !== undefined) parts.push(`row ${at.row}`);
  return parts.length ? `${parts.join(': ')}: ` : '';
}

/** "Not a FITS file" is different from "a broken FITS file" (STIL's distinction). */
export class NotFitsError extends FitsError {
  constructor(location: FitsLocation, what = 'not a FITS file (it does not start with SIMPLE  =)') {
    super('fits_not_fits', location, what);
  }
}
