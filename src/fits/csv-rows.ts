// Where a binary table's rows lie in its file, for writers that read row ranges themselves
// (the CSV formatting threads read and format the big-endian bytes with no decoding pass).
import type { CsvRawField, CsvRawRows } from '../table/index.ts';
import type { FitsColumnDef } from './column-defs.ts';
import type { FitsFile } from './fits-file.ts';

// The field of a column the raw readers handle: a scalar integer or float, stored as it
// is or through the standard unsigned offset. Scaled, array, string, logical, bit, complex
// and heap columns are left to the general path (undefined).
function rawField(def: FitsColumnDef): CsvRawField | undefined {
  const code = def.code;
  if (code !== 'B' && code !== 'I' && code !== 'J' && code !== 'K' && code !== 'E' && code !== 'D') return undefined;
  if (def.repeat !== 1 || def.info.shape.length > 0 || def.info.variable) return undefined;
  if (def.conversion === 'scaled') return undefined;
  const flip = def.conversion === 'offset';
  if (def.tnull === undefined) return { offset: def.byteOffset, code, flip };
  if (code === 'E' || code === 'D') return undefined;
  if (code === 'K') {
    const t = BigInt.asIntN(64, BigInt(def.tnull));
    return { offset: def.byteOffset, code, flip, nullLo: Number(BigInt.asIntN(32, t)), nullHi: Number(BigInt.asIntN(32, t >> 32n)) };
  }
  return { offset: def.byteOffset, code, flip, nullValue: Number(def.tnull) };
}

/**
 * The rows of binary table HDU `ref` of `file`, opened from `path`, as fixed-width records
 * in that file; undefined for HDUs whose rows cannot be read that way (compressed tables,
 * tables with a heap). Columns the raw readers do not handle have no field.
 */
export function fitsRawRows(file: FitsFile, ref: number | string, path: string): CsvRawRows | undefined {
  const h = file.hdu(ref);
  if (h.kind !== 'bintable' || h.rows === undefined) return undefined;
  const { defs, rowBytes } = file.columnDefs(h.index);
  if (rowBytes === 0 || defs.some((d) => d.code === 'P' || d.code === 'Q')) return undefined;
  // (opening the file checked that the rows lie within it)
  return { path, start: h.dataStart, rowBytes, rows: h.rows, fields: defs.map(rawField) };
}
