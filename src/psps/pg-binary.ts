// PostgreSQL's binary COPY format written from column batches: a batch's FITS tables go into
// staging without a text round trip (PostgreSQL's per-field text parsing dominated text COPY).
// Every value is converted to its archive column's type on the way; a value the type cannot
// hold (an integer out of range, a fraction for an integer column, a float beyond REAL) is a
// problem naming table, row and column, as the text path's value checker names it.
import type { ColumnBatch, ColumnType, ColumnValues, CsvRawCode, CsvRawRows } from '../table/index.ts';
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

// How a raw FITS field becomes its binary COPY field with no value that could be refused:
// the same bytes (both big-endian), or a value read and written wider or as a float.
type RawMove = 'bytes' | 'value';

/** A plan for turning a FITS table's raw rows straight into binary COPY tuples (see rawCopyPlan). */
export interface RawCopyPlan {
  /** Bytes of one FITS row. */
  readonly rowBytes: number;
  /** Bytes of one COPY tuple (every field fixed-width). */
  readonly tupleBytes: number;
  /** One tuple's field count and length words, values zero: every tuple of a chunk starts as it. */
  readonly template: Buffer;
  readonly fields: readonly RawCopyField[];
}

/** One column of a {@link RawCopyPlan}. */
export interface RawCopyField {
  /** Offset of the value in the FITS row, and of the value (after its length word) in the tuple. */
  readonly src: number;
  readonly dst: number;
  readonly code: CsvRawCode;
  /** The column holds the other signedness through the standard offset (see CsvRawField). */
  readonly flip: boolean;
  readonly datatype: ArchiveDatatype;
  readonly move: RawMove;
}

// The values a raw field can hold, as [lo, hi] (floats: undefined).
function rawRange(code: CsvRawCode, flip: boolean): [number, number] | undefined {
  switch (code) {
    case 'B': return flip ? [-128, 127] : [0, 255];
    case 'I': return flip ? [0, 65535] : [-32768, 32767];
    case 'J': return flip ? [0, 4294967295] : [-2147483648, 2147483647];
    case 'K': return flip ? [0, 2 ** 64] : [-(2 ** 63), 2 ** 63];
    default: return undefined;
  }
}

const SAME: Partial<Record<CsvRawCode, ArchiveDatatype[]>> = { I: ['short', 'unsignedByte'], J: ['int'], K: ['long'], E: ['float'], D: ['double'] };

/**
 * A plan that encodes binary COPY tuples of `columns` straight from the table's raw rows
 * (`raw`: its FITS fields, see fitsRawRows), when every column is a plain scalar whose every
 * stored value its archive column takes as encodeCopyTuples would (same bytes, an integer
 * widened, an integer or a 32-bit float as a float); undefined otherwise (the decoded path
 * then converts and refuses values one by one).
 */
export function rawCopyPlan(columns: readonly ArchiveColumn[], raw: CsvRawRows): RawCopyPlan | undefined {
  if (raw.fields.length !== columns.length) return undefined;
  const fields: RawCopyField[] = [];
  let dst = 2;
  for (let c = 0; c < columns.length; c++) {
    const f = raw.fields[c];
    const datatype = columns[c].datatype;
    const w = WIDTH[datatype];
    if (f === undefined || f.nullValue !== undefined || f.nullLo !== undefined || w <= 0 || datatype === 'boolean') return undefined;
    let move: RawMove;
    if (!f.flip && SAME[f.code]?.includes(datatype)) {
      move = 'bytes';
    } else if (f.code === 'E') {
      if (datatype !== 'double') return undefined;
      move = 'value';
    } else {
      const range = rawRange(f.code, f.flip);
      // a float column takes any integer (rounded, as the decoded path does); an integer
      // column every value of a narrower or equal range; 64-bit sources only as they are
      if (range === undefined || (f.code === 'K' && (f.flip || datatype === 'float'))) return undefined;
      if (datatype !== 'float' && datatype !== 'double') {
        const [lo, hi] = datatype === 'long' ? [-(2 ** 63), 2 ** 63] : INT_RANGE[datatype]!;
        if (range[0] < lo || range[1] > hi) return undefined;
      }
      move = 'value';
    }
    fields.push({ src: f.offset, dst: dst + 4, code: f.code, flip: f.flip, datatype, move });
    dst += 4 + w;
  }
  const template = Buffer.alloc(dst);
  template.writeInt16BE(columns.length, 0);
  for (let c = 0; c < columns.length; c++) template.writeInt32BE(WIDTH[columns[c].datatype], fields[c].dst - 4);
  return { rowBytes: raw.rowBytes, tupleBytes: dst, template, fields };
}

/**
 * Reads the value of a raw field of `n` rows (`rows`: the FITS rows) into `out` as numbers
 * (64-bit integers to the nearest double, as the rule checks compare them).
 */
export function readRawValues(field: RawCopyField, rows: DataView, rowBytes: number, n: number, out: Float64Array): void {
  const { src, code, flip } = field;
  switch (code) {
    case 'B':
      if (flip) for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getUint8(p) - 128;
      else for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getUint8(p);
      return;
    case 'I':
      if (flip) for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getInt16(p) + 32768;
      else for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getInt16(p);
      return;
    case 'J':
      if (flip) for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getInt32(p) + 2147483648;
      else for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getInt32(p);
      return;
    case 'K':
      // the high word times 2^32 is exact; adding the low word rounds once, as Number(bigint)
      if (flip) for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = (rows.getInt32(p) + 2147483648) * 4294967296 + rows.getUint32(p + 4);
      else for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getInt32(p) * 4294967296 + rows.getUint32(p + 4);
      return;
    case 'E':
      for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getFloat32(p);
      return;
    case 'D':
      for (let r = 0, p = src; r < n; r++, p += rowBytes) out[r] = rows.getFloat64(p);
      return;
  }
}

/**
 * Encodes `n` raw FITS rows (`rows`) as binary COPY tuples by a plan (`scratch`: at least `n`
 * numbers, reused between calls). Column by column: the same bytes copied, or each value
 * read once and written in its column's type.
 */
export function encodeRawTuples(plan: RawCopyPlan, rows: Uint8Array, n: number, scratch: Float64Array): Buffer {
  const { tupleBytes: tb, rowBytes: rb } = plan;
  const out = Buffer.allocUnsafe(n * tb);
  out.fill(plan.template);
  const to = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const from = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
  for (const f of plan.fields) {
    const { src, dst } = f;
    if (f.move === 'bytes') {
      const w = WIDTH[f.datatype];
      if (w === 8) for (let r = 0, p = src, d = dst; r < n; r++, p += rb, d += tb) { to.setInt32(d, from.getInt32(p)); to.setInt32(d + 4, from.getInt32(p + 4)); }
      else if (w === 4) for (let r = 0, p = src, d = dst; r < n; r++, p += rb, d += tb) to.setInt32(d, from.getInt32(p));
      else for (let r = 0, p = src, d = dst; r < n; r++, p += rb, d += tb) to.setInt16(d, from.getInt16(p));
      continue;
    }
    readRawValues(f, from, rb, n, scratch);
    switch (f.datatype) {
      case 'double': for (let r = 0, d = dst; r < n; r++, d += tb) to.setFloat64(d, scratch[r]); break;
      case 'float': for (let r = 0, d = dst; r < n; r++, d += tb) to.setFloat32(d, scratch[r]); break;
      case 'int': for (let r = 0, d = dst; r < n; r++, d += tb) to.setInt32(d, scratch[r]); break;
      case 'long':
        // (only sources of at most 32 bits are widened)
        for (let r = 0, d = dst; r < n; r++, d += tb) { const v = scratch[r]; to.setInt32(d, v < 0 ? -1 : 0); to.setUint32(d + 4, v >>> 0); }
        break;
      default: for (let r = 0, d = dst; r < n; r++, d += tb) to.setInt16(d, scratch[r]);
    }
  }
  return out;
}
