// PostgreSQL's binary COPY format written from column batches: a batch's FITS tables go into
// staging without a text round trip (PostgreSQL's per-field text parsing dominated text COPY).
// Every value is converted to its archive column's type on the way; a value the type cannot
// hold (an integer out of range, a fraction for an integer column, a float beyond REAL) is a
// problem naming table, row and column, as the text path's value checker names it.
import type { ColumnBatch, ColumnType, ColumnValues } from '../table/index.ts';
import type { ProblemList } from './problems.ts';
import type { ArchiveColumn, ArchiveDatatype } from './schema.ts';

/** The bytes a binary COPY stream starts with (signature, flags, header extension length). */
export const COPY_BINARY_HEADER = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
/** The bytes a binary COPY stream ends with (a tuple of -1 fields). */
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

const WIDTH: Record<ArchiveDatatype, number> = { long: 8, int: 4, short: 2, unsignedByte: 2, float: 4, double: 8, boolean: 1, char: -1 };
const INT_RANGE: Partial<Record<ArchiveDatatype, [number, number]>> = {
  int: [-2147483648, 2147483647], short: [-32768, 32767], unsignedByte: [-32768, 32767],
};
const FLOAT32_MAX = 3.4028234663852886e38;
const INT64_MAX = 2n ** 63n - 1n;

/** Which source column types a column of an archive datatype can be taken from. */
export function acceptsSource(datatype: ArchiveDatatype, source: ColumnType): boolean {
  if (datatype === 'char') return source === 'string';
  if (datatype === 'boolean') return source === 'boolean' || source === 'uint8' || source === 'int8';
  return source !== 'string' && source !== 'complex64' && source !== 'complex128' && source !== 'bit' && source !== 'boolean';
}

/**
 * Encodes the rows of a batch as binary COPY tuples of `columns` (`sources[i]`: the source
 * column type of column i, in the batch's column order). Values a column cannot hold go to
 * `problems` (rows numbered from `rowBase` + 1); returns the tuples, or undefined when a
 * value was refused.
 */
export function encodeCopyTuples(
  table: string, columns: readonly ArchiveColumn[], sources: readonly ColumnType[], batch: ColumnBatch, rowBase: number, problems: ProblemList,
): Buffer | undefined {
  const n = batch.rowCount;
  const ncol = columns.length;
  let fixed = 2;
  const strings: (Buffer[] | undefined)[] = [];
  let stringBytes = 0;
  for (let c = 0; c < ncol; c++) {
    const w = WIDTH[columns[c].datatype];
    if (w >= 0) {
      fixed += 4 + w;
      strings.push(undefined);
      continue;
    }
    fixed += 4;
    const values = batch.columns[c].values as string[];
    const bytes = new Array<Buffer>(n);
    for (let r = 0; r < n; r++) {
      // FITS pads strings with spaces; the text path wrote them trimmed too
      const b = Buffer.from(values[r].trimEnd(), 'utf8');
      bytes[r] = b;
      stringBytes += b.length;
    }
    strings.push(bytes);
  }
  const out = Buffer.allocUnsafe(fixed * n + stringBytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let bad = false;
  const refuse = (c: number, r: number, value: unknown, detail: string) => {
    bad = true;
    problems.add({ table, column: columns[c].name, row: rowBase + r + 1, value: String(value), rule: 'type', detail });
  };
  // one column at a time (a tight loop per type), each row's fields at their offsets
  const rowStart = new Float64Array(n);
  if (stringBytes === 0) {
    for (let r = 0; r < n; r++) rowStart[r] = r * fixed;
  } else {
    let at = 0;
    for (let r = 0; r < n; r++) {
      rowStart[r] = at;
      at += fixed;
      for (let c = 0; c < ncol; c++) at += strings[c]?.[r].length ?? 0;
    }
  }
  const fieldAt = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    view.setInt16(rowStart[r], ncol);
    fieldAt[r] = rowStart[r] + 2;
  }
  for (let c = 0; c < ncol; c++) {
    const col = columns[c];
    const values = batch.columns[c].values;
    const src = sources[c];
    const str = strings[c];
    if (str !== undefined) {
      for (let r = 0; r < n; r++) {
        const at = fieldAt[r];
        const b = str[r];
        view.setInt32(at, b.length);
        b.copy(out, at + 4);
        fieldAt[r] = at + 4 + b.length;
      }
      continue;
    }
    const w = WIDTH[col.datatype];
    if (!writeColumn(view, fieldAt, n, w, col.datatype, src, values, (r, v, why) => refuse(c, r, v, why))) bad = true;
    for (let r = 0; r < n; r++) fieldAt[r] += 4 + w;
  }
  return bad ? undefined : out;
}

// Writes one fixed-width column (length word and value) at each row's field offset; false
// when a value was refused.
function writeColumn(
  view: DataView, fieldAt: Float64Array, n: number, w: number, datatype: ArchiveDatatype, src: ColumnType, values: ColumnValues,
  refuse: (row: number, value: unknown, why: string) => void,
): boolean {
  let ok = true;
  for (let r = 0; r < n; r++) view.setInt32(fieldAt[r], w);
  if (src === 'int64' || src === 'uint64') {
    const big = values as BigInt64Array | BigUint64Array;
    for (let r = 0; r < n; r++) {
      const at = fieldAt[r] + 4;
      const v = big[r];
      if (datatype === 'long') {
        if (v > INT64_MAX) { refuse(r, v, 'must be an integer from -9223372036854775808 to 9223372036854775807 (long)'); ok = false; continue; }
        view.setBigInt64(at, v);
      } else if (datatype === 'double') {
        view.setFloat64(at, Number(v));
      } else if (datatype === 'float') {
        view.setFloat32(at, Number(v));
      } else {
        const [lo, hi] = INT_RANGE[datatype]!;
        if (v < BigInt(lo) || v > BigInt(hi)) { refuse(r, v, `must be an integer from ${lo} to ${hi} (${datatype})`); ok = false; continue; }
        if (datatype === 'int') view.setInt32(at, Number(v));
        else view.setInt16(at, Number(v));
      }
    }
    return ok;
  }
  const num = values as Exclude<ColumnValues, string[] | BigInt64Array | BigUint64Array>;
  const integral = src !== 'float32' && src !== 'float64';
  switch (datatype) {
    case 'double':
      for (let r = 0; r < n; r++) view.setFloat64(fieldAt[r] + 4, num[r]);
      return ok;
    case 'float':
      for (let r = 0; r < n; r++) {
        const v = num[r];
        if (!integral && Math.abs(v) > FLOAT32_MAX && Number.isFinite(v)) { refuse(r, v, 'must fit a 32-bit float (float)'); ok = false; continue; }
        view.setFloat32(fieldAt[r] + 4, v);
      }
      return ok;
    case 'boolean':
      for (let r = 0; r < n; r++) {
        const v = num[r];
        // FITS logicals read as 0/1; the text 'T'/'F' bytes too
        const b = v === 1 || v === 84 ? 1 : v === 0 || v === 70 ? 0 : -1;
        if (b < 0) { refuse(r, v, 'must be true or false (boolean)'); ok = false; continue; }
        view.setUint8(fieldAt[r] + 4, b);
      }
      return ok;
    case 'long':
      for (let r = 0; r < n; r++) {
        const v = num[r];
        if (!integral && !Number.isSafeInteger(v)) { refuse(r, v, 'must be an integer from -9223372036854775808 to 9223372036854775807 (long)'); ok = false; continue; }
        const at = fieldAt[r] + 4;
        view.setInt32(at, Math.floor(v / 4294967296));
        view.setUint32(at + 4, v >>> 0);
      }
      return ok;
    default: {
      const [lo, hi] = INT_RANGE[datatype]!;
      const four = datatype === 'int';
      for (let r = 0; r < n; r++) {
        const v = num[r];
        if (v < lo || v > hi || (!integral && !Number.isInteger(v))) { refuse(r, v, `must be an integer from ${lo} to ${hi} (${datatype})`); ok = false; continue; }
        if (four) view.setInt32(fieldAt[r] + 4, v);
        else view.setInt16(fieldAt[r] + 4, v);
      }
      return ok;
    }
  }
}
