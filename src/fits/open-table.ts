import { readCompressedTable } from './compress/index.ts';
import type { FitsFile } from './fits-file.ts';
import type { Table } from '../table/index.ts';

/** A table HDU as a Table, whether plain or tile-compressed (then decompressed tile by tile). */
export function fitsTable(file: FitsFile, ref: number | string): Table {
  const h = file.hdu(ref);
  return h.kind === 'compressed-table' ? readCompressedTable(file, h) : file.table(h.index);
}
