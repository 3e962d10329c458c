import { FitsError, type FitsFile, type HduInfo } from '../../fits/index.ts';
import type { FileRef } from '../file-ref.ts';

/** The HDU a file reference names; without one, `fallback` ('table' = the first table HDU). */
export function resolveHdu(file: FitsFile, ref: FileRef, fallback: number | 'table'): HduInfo {
  if (ref.hdu !== undefined) {
    return typeof ref.hdu === 'string' ? file.find(ref.hdu, ref.extver) : file.hdu(ref.hdu);
  }
  if (fallback !== 'table') return file.hdu(fallback);
  const table = file.hdus.find((h) => h.kind === 'bintable' || h.kind === 'compressed-table');
  if (!table) throw new FitsError('fits_no_table', { file: file.name }, 'the file has no binary table HDU; name one with FILE[EXT]');
  return table;
}
