// The CSV row formatter and the worker thread that runs it. Kept apart from the writer so
// that a formatting thread loads this file and the number formatter only (a thread that
// loaded the whole table room would spend ~0.2 s of CPU starting).
import { readSync, writeSync } from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { compileFunction } from './compile.ts';
import type { ColumnInfo } from './column-info.ts';
import type { ColumnBatch, ColumnData, NumericArray } from './column-batch.ts';
import {
  MAX_FLOAT_CHARS, writeFloat32At, writeFloat64At, writeInt32, writeInt64Parts, writeInteger,
} from './format-number.ts';

/** How array cells are written: `space` = "1 2 3" (VOTable style), `stilts` = "(1, 2, 3)" as STILTS does. */
export type CsvArrayStyle = 'space' | 'stilts';

// Cell kinds: each has its own tight branch in the row loop.
const K_F64 = 0;
const K_F32 = 1;
const K_INT = 2; // signed integer types up to 32 bits, uint8, uint16
const K_I64 = 3;
const K_U64 = 4;
const K_BOOL = 5;
const K_STRING = 6;
const K_OTHER = 7; // arrays, complex, bits, variable-length: the general path
const K_U32 = 8;

/** The cell kind of a column: which branch of the row loop writes it. */
export function cellKind(info: ColumnInfo): number {
  if (info.variable || info.shape.length > 0) return info.type === 'string' && info.variable ? K_STRING : K_OTHER;
  switch (info.type) {
    case 'float64': return K_F64;
    case 'float32': return K_F32;
    case 'int8': case 'uint8': case 'int16': case 'uint16': case 'int32': return K_INT;
    case 'uint32': return K_U32;
    case 'int64': return K_I64;
    case 'uint64': return K_U64;
    case 'boolean': return K_BOOL;
    case 'string': return K_STRING;
    default: return K_OTHER;
  }
}

/** How one column is written: its cell kind and null value, worked out once per output. */
export interface CsvColumnPlan {
  readonly info: ColumnInfo;
  readonly kind: number;
  /** Integer null value as a number (K_INT), or the two 32-bit halves for 64-bit nulls. */
  readonly nullNumber: number | undefined;
  readonly nullLo: number;
  readonly nullHi: number;
  /** Elements per row of a fixed-shape cell, and whether each element is complex (two slots). */
  readonly elements: number;
  readonly complex: boolean;
}

/** Options of a {@link CsvRowFormatter}, already checked. */
export interface CsvFormatOptions {
  readonly delimiter?: string;
  readonly lineEnding?: string;
  readonly arrays?: CsvArrayStyle;
}

// A row loop compiled for one table layout: tables of fixed-size cells only (numbers,
// booleans), which is what large survey tables are. Each column gets its own code with its
// kind, null test and delimiter as constants, so no cell pays for a switch, a look-up of its
// column's arrays or a test for a validity array it does not have; every array access and
// call site sees one type. The source is made from the column kinds and integer null values
// only (numbers), never from names or other text of the table.
type FixedRows = (out: Uint8Array, pos: number, row: number, n: number, limit: number,
  cols: readonly unknown[], valid: readonly (Uint8Array | null)[], result: Int32Array | number[]) => void;

function compileFixedRows(plans: readonly CsvColumnPlan[], withValid: readonly boolean[], delim: number, eol: Uint8Array, rowBytes: number): FixedRows | null {
  const setup: string[] = [];
  const body: string[] = [];
  // numbers written into the source: integers only, so the text is a plain literal
  const int = (x: number) => String(Math.trunc(x));
  plans.forEach((plan, c) => {
    const a = `a${c}`;
    setup.push(`const ${a} = cols[${c}];`);
    if (c > 0) body.push(`out[pos++] = ${int(delim)};`);
    let cell: string;
    switch (plan.kind) {
      case K_F64: cell = `{ const x = ${a}[row]; if (x === x) pos = f64(out, pos, ${a}, row); }`; break;
      case K_F32: cell = `{ const x = ${a}[row]; if (x === x) pos = f32(out, pos, ${a}, row); }`; break;
      case K_INT: case K_U32: {
        const write = plan.kind === K_INT ? 'i32' : 'int';
        // (a null value that no element can equal needs no test)
        cell = plan.nullNumber !== undefined && Number.isInteger(plan.nullNumber) && !withValid[c]
          ? `{ const x = ${a}[row]; if (x !== ${int(plan.nullNumber)}) pos = ${write}(out, pos, x); }`
          : `pos = ${write}(out, pos, ${a}[row]);`;
        break;
      }
      case K_I64: case K_U64: {
        const signed = plan.kind === K_I64 ? 'true' : 'false';
        const test = plan.info.nullValue !== undefined && !withValid[c] ? `if (lo !== ${int(plan.nullLo)} || hi !== ${int(plan.nullHi)}) ` : '';
        cell = `{ const lo = ${a}[2 * row]; const hi = ${a}[2 * row + 1]; ${test}pos = i64(out, pos, lo, hi, ${signed}); }`;
        break;
      }
      case K_BOOL:
        cell = `if (${a}[row] !== 0) { out[pos] = 116; out[pos + 1] = 114; out[pos + 2] = 117; out[pos + 3] = 101; pos += 4; } `
          + 'else { out[pos] = 102; out[pos + 1] = 97; out[pos + 2] = 108; out[pos + 3] = 115; out[pos + 4] = 101; pos += 5; }';
        break;
      default: throw new Error(`column ${c} has no fixed-size cells`);
    }
    if (withValid[c]) {
      setup.push(`const v${c} = valid[${c}];`);
      cell = `if (v${c}[row] !== 0) { ${cell} }`;
    }
    body.push(cell);
  });
  for (const b of eol) body.push(`out[pos++] = ${int(b)};`);
  const source = `return function fixedRows(out, pos, row, n, limit, cols, valid, result) {
  ${setup.join('\n  ')}
  for (; row < n && pos + ${int(rowBytes)} <= limit; row++) {
    ${body.join('\n    ')}
  }
  result[0] = row;
  result[1] = pos;
};`;
  return rowLoop<FixedRows>(source);
}

// Makes a compiled row loop from its source, which calls the number writers as f64, f32,
// i32, int and i64; null where code from strings is disallowed: the general row loop does the
// same, slower.
function rowLoop<T>(source: string): T | null {
  return compileFunction<T>(source, { f64: writeFloat64At, f32: writeFloat32At, i32: writeInt32, int: writeInteger, i64: writeInt64Parts });
}
/** Stored type of a raw field: FITS TFORM letters B, I, J, K (integers of 1..8 bytes), E, D (floats). */
export type CsvRawCode = 'B' | 'I' | 'J' | 'K' | 'E' | 'D';

/** One scalar column of fixed-width big-endian rows, as the CSV threads read it straight from the bytes. */
export interface CsvRawField {
  /** Bytes from the start of the row. */
  readonly offset: number;
  readonly code: CsvRawCode;
  /** The column holds the other signedness through the standard offset (sign bit flipped: B as int8, I/J/K as unsigned). */
  readonly flip: boolean;
  /** Stored value that marks a null (integers); for K, `nullLo`/`nullHi` hold its two 32-bit halves. */
  readonly nullValue?: number;
  readonly nullLo?: number;
  readonly nullHi?: number;
}

/**
 * Where a table's rows lie in a file as fixed-width big-endian records (a FITS binary table
 * without heap): formatting threads then read and format the rows themselves.
 */
export interface CsvRawRows {
  readonly path: string;
  /** File offset of the first row. */
  readonly start: number;
  readonly rowBytes: number;
  readonly rows: number;
  /** Per column of the table (same order), its field, or undefined where the column is not a plain scalar. */
  readonly fields: readonly (CsvRawField | undefined)[];
}

// A row loop over raw big-endian rows, compiled for one field layout: each value is read
// from the bytes and formatted in one go, so there is no decoding pass and no column
// arrays. Nulls are stored values equal to TNULL (integers) or NaN (floats), exactly as the
// decoded batch would mark them. The source holds integers only (offsets, null values).
type RawRows = (out: Uint8Array, pos: number, row: number, n: number, limit: number,
  bytes: Uint8Array, dv: DataView, result: Int32Array) => void;

function compileRawRows(fields: readonly CsvRawField[], rowBytes: number, delim: number, eol: Uint8Array, reserve: number): RawRows | null {
  const body: string[] = [];
  const int = (x: number) => String(Math.trunc(x));
  fields.forEach((f, c) => {
    if (c > 0) body.push(`out[pos++] = ${int(delim)};`);
    const at = `b + ${int(f.offset)}`;
    const nullTest = (x: string) => (f.nullValue !== undefined ? `if (${x} !== ${int(f.nullValue)}) ` : '');
    let cell: string;
    switch (f.code) {
      case 'D': cell = `{ const x = dv.getFloat64(${at}); if (x === x) { d64[0] = x; pos = f64(out, pos, d64, 0); } }`; break;
      case 'E': cell = `{ const x = dv.getFloat32(${at}); if (x === x) { d32[0] = x; pos = f32(out, pos, d32, 0); } }`; break;
      case 'B': cell = `{ const x = bytes[${at}]; ${nullTest('x')}pos = i32(out, pos, ${f.flip ? '((x ^ 128) << 24) >> 24' : 'x'}); }`; break;
      case 'I': cell = `{ const x = dv.getInt16(${at}); ${nullTest('x')}pos = i32(out, pos, ${f.flip ? 'x + 32768' : 'x'}); }`; break;
      case 'J': cell = f.flip
        ? `{ const x = dv.getInt32(${at}); ${nullTest('x')}pos = int(out, pos, x + 2147483648); }`
        : `{ const x = dv.getInt32(${at}); ${nullTest('x')}pos = i32(out, pos, x); }`;
        break;
      case 'K': {
        const test = f.nullLo !== undefined && f.nullHi !== undefined ? `if (lo !== ${int(f.nullLo)} || hi !== ${int(f.nullHi)}) ` : '';
        cell = `{ const hi = dv.getInt32(${at}); const lo = dv.getInt32(${at} + 4); ${test}pos = i64(out, pos, lo, ${f.flip ? 'hi ^ -2147483648' : 'hi'}, ${f.flip ? 'false' : 'true'}); }`;
        break;
      }
      default: throw new Error(`raw field ${c} has no known code`);
    }
    body.push(cell);
  });
  for (const b of eol) body.push(`out[pos++] = ${int(b)};`);
  const source = `const d64 = new Float64Array(1); const d32 = new Float32Array(1);
return function rawRows(out, pos, row, n, limit, bytes, dv, result) {
  for (let b = row * ${int(rowBytes)}; row < n && pos + ${int(reserve)} <= limit; row++, b += ${int(rowBytes)}) {
    ${body.join('\n    ')}
  }
  result[0] = row;
  result[1] = pos;
};`;
  return rowLoop<RawRows>(source);
}

export class CsvRowFormatter {
  readonly #plans: CsvColumnPlan[];
  readonly #delim: number;
  readonly #eol: Uint8Array;
  readonly #stilts: boolean;
  readonly #fixedReserve: number;
  readonly #text = new TextEncoder();
  // Per batch: the column data sorted by kind, so each access site sees one array type.
  #f64: Float64Array[] = [];
  #f32: Float32Array[] = [];
  #ints: (Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array)[] = [];
  #halves: Int32Array[] = [];
  #strings: string[][] = [];
  #slot: Int32Array;
  // per column, the plan's kind and integer null as flat arrays: the row loop reads no objects
  readonly #kinds: Int32Array;
  readonly #nullNumbers: Float64Array;
  #valid: (Uint8Array | null)[] = [];
  // tables of fixed-size cells only: per column its array (int64 as 32-bit halves), and the
  // row loops compiled so far, by which columns have validity arrays
  readonly #fixedOnly: boolean;
  #cols: unknown[] = [];
  readonly #compiled = new Map<string, FixedRows | null>();
  #rows: FixedRows | undefined;

  constructor(plans: readonly CsvColumnPlan[], options: CsvFormatOptions = {}) {
    this.#plans = [...plans];
    this.#delim = (options.delimiter ?? ',').charCodeAt(0);
    this.#eol = new TextEncoder().encode(options.lineEnding ?? '\n');
    this.#stilts = options.arrays === 'stilts';
    this.#slot = new Int32Array(plans.length);
    this.#kinds = Int32Array.from(this.#plans, (p) => p.kind);
    this.#nullNumbers = Float64Array.from(this.#plans, (p) => p.nullNumber ?? NaN);
    // room for every fixed-size cell of a row at its longest
    this.#fixedReserve = this.#plans.reduce((n, p) => n + (p.kind === K_STRING || p.kind === K_OTHER ? 0 : MAX_FLOAT_CHARS + 1), 2);
    this.#fixedOnly = this.#plans.every((p) => p.kind !== K_STRING && p.kind !== K_OTHER);
  }

  /** The header line (column names) as bytes. */
  header(): Uint8Array {
    const parts = this.#plans.map((p) => quoteText(p.info.name, String.fromCharCode(this.#delim)));
    const text = parts.join(String.fromCharCode(this.#delim));
    const bytes = this.#text.encode(text);
    const out = new Uint8Array(bytes.length + this.#eol.length);
    out.set(bytes);
    out.set(this.#eol, bytes.length);
    return out;
  }

  /** Makes a batch current: the next `encode` calls read from it. */
  setBatch(batch: ColumnBatch): void {
    this.#f64 = [];
    this.#f32 = [];
    this.#ints = [];
    this.#halves = [];
    this.#strings = [];
    this.#valid = [];
    this.#plans.forEach((plan, c) => {
      const data = batch.columns[c];
      this.#valid.push(data.valid ?? null);
      const v = data.values;
      switch (plan.kind) {
        case K_F64: this.#slot[c] = this.#f64.push(v as Float64Array) - 1; break;
        case K_F32: this.#slot[c] = this.#f32.push(v as Float32Array) - 1; break;
        case K_INT: case K_BOOL: case K_U32: this.#slot[c] = this.#ints.push(v as Int32Array) - 1; break;
        case K_I64: case K_U64: {
          const b = v as BigInt64Array;
          this.#slot[c] = this.#halves.push(new Int32Array(b.buffer, b.byteOffset, b.length * 2)) - 1;
          break;
        }
        case K_STRING: this.#slot[c] = this.#strings.push(v as string[]) - 1; break;
        default: this.#slot[c] = -1;
      }
    });
    this.#batch = batch;
    if (this.#fixedOnly) {
      this.#cols = this.#plans.map((p, c) => {
        const v = batch.columns[c].values as NumericArray;
        return p.kind === K_I64 || p.kind === K_U64 ? new Int32Array(v.buffer, v.byteOffset, v.length * 2) : v;
      });
      const key = this.#valid.map((v) => (v === null ? '-' : 'v')).join('');
      let rows = this.#compiled.get(key);
      if (rows === undefined) {
        rows = compileFixedRows(this.#plans, this.#valid.map((v) => v !== null), this.#delim, this.#eol, this.#fixedReserve + this.#eol.length);
        this.#compiled.set(key, rows);
      }
      this.#rows = rows ?? undefined;
    }
  }

  #batch: ColumnBatch | undefined;

  /** Bytes a row may need at most (so a buffer can be made large enough for it). */
  rowBytes(row: number): number {
    let n = this.#fixedReserve + this.#eol.length;
    const batch = this.#batch!;
    for (let c = 0; c < this.#plans.length; c++) {
      const plan = this.#plans[c];
      if (plan.kind === K_STRING) {
        const s = this.#strings[this.#slot[c]][row];
        n += 3 * (s === undefined ? 0 : s.length) + 3;
      } else if (plan.kind === K_OTHER) {
        n += otherCellBytes(plan, batch.columns[c], row);
      }
    }
    return n;
  }

  /**
   * Writes rows from `row` on into `out` from `pos`, as many whole rows as fit. Returns the
   * next row and the end position (as `[row, pos]` in `result`).
   */
  encode(row: number, out: Uint8Array, pos: number, result: Int32Array | number[]): void {
    const batch = this.#batch!;
    const n = batch.rowCount;
    if (this.#rows !== undefined) {
      this.#rows(out, pos, row, n, out.length, this.#cols, this.#valid, result);
      return;
    }
    const plans = this.#plans;
    const ncol = plans.length;
    const slot = this.#slot;
    const valid = this.#valid;
    const f64 = this.#f64;
    const f32 = this.#f32;
    const ints = this.#ints;
    const halves = this.#halves;
    const strings = this.#strings;
    const delim = this.#delim;
    const eol = this.#eol;
    const hasVariable = plans.some((p) => p.kind === K_STRING || p.kind === K_OTHER);
    const fixed = this.#fixedReserve + eol.length;
    const kinds = this.#kinds;
    const nullNumbers = this.#nullNumbers;
    const limit = out.length;
    for (; row < n; row++) {
      const need = hasVariable ? this.rowBytes(row) : fixed;
      if (pos + need > limit) break;
      for (let c = 0; c < ncol; c++) {
        if (c > 0) out[pos++] = delim;
        const vd = valid[c];
        if (vd !== null && vd[row] === 0) continue;
        switch (kinds[c]) {
          case K_F64: {
            const a = f64[slot[c]];
            const x = a[row];
            if (x === x) pos = writeFloat64At(out, pos, a, row);
            break;
          }
          case K_F32: {
            const a = f32[slot[c]];
            const x = a[row];
            if (x === x) pos = writeFloat32At(out, pos, a, row);
            break;
          }
          case K_INT: {
            const x = ints[slot[c]][row];
            if (x !== nullNumbers[c] || vd !== null) pos = writeInt32(out, pos, x);
            break;
          }
          case K_U32: {
            const x = ints[slot[c]][row];
            if (x !== nullNumbers[c] || vd !== null) pos = writeInteger(out, pos, x);
            break;
          }
          case K_I64: case K_U64: {
            const plan = plans[c];
            const h = halves[slot[c]];
            const lo = h[2 * row];
            const hi = h[2 * row + 1];
            if (vd === null && plan.info.nullValue !== undefined && lo === plan.nullLo && hi === plan.nullHi) break;
            pos = writeInt64Parts(out, pos, lo, hi, plan.kind === K_I64);
            break;
          }
          case K_BOOL:
            pos = putAscii(out, pos, ints[slot[c]][row] !== 0 ? 'true' : 'false');
            break;
          case K_STRING: {
            const s = strings[slot[c]][row];
            if (s !== undefined && s !== null) pos = this.#putString(out, pos, s);
            break;
          }
          default:
            pos = this.#putOther(out, pos, plans[c], batch.columns[c], row);
        }
      }
      for (let i = 0; i < eol.length; i++) out[pos++] = eol[i];
    }
    result[0] = row;
    result[1] = pos;
  }

  // A string field, quoted when it holds a delimiter, quote or line break, or is empty
  // (so that an empty string differs from a null, which is an empty field).
  #putString(out: Uint8Array, pos: number, s: string): number {
    const start = pos;
    const delim = this.#delim;
    let quote = s.length === 0;
    for (let i = 0; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      if (ch >= 128) return this.#putStringSlow(out, start, s);
      if (ch === 34 || ch === delim || ch === 10 || ch === 13) quote = true;
      out[pos++] = ch;
    }
    if (!quote) return pos;
    pos = start;
    out[pos++] = 34;
    for (let i = 0; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      if (ch === 34) out[pos++] = 34;
      out[pos++] = ch;
    }
    out[pos++] = 34;
    return pos;
  }

  #putStringSlow(out: Uint8Array, pos: number, s: string): number {
    const quoted = quoteText(s, String.fromCharCode(this.#delim));
    return pos + this.#text.encodeInto(quoted, out.subarray(pos)).written;
  }

  // Arrays, complex numbers, bits and variable-length cells: elements in one quoted field.
  #putOther(out: Uint8Array, pos: number, plan: CsvColumnPlan, data: ColumnData, row: number): number {
    const info = plan.info;
    const { first, count } = cellElements(plan, data, row);
    const scalar = info.shape.length === 0 && !info.variable;
    const complex = plan.complex;
    const stilts = this.#stilts;
    if (count === 0 && !scalar) return putAscii(out, pos, stilts ? '"()"' : '""');
    if (scalar && !complex) {
      // a lone bit
      return putAscii(out, pos, (data.values as Uint8Array)[first] !== 0 ? (stilts ? 'true' : '1') : (stilts ? 'false' : '0'));
    }
    const sep = stilts ? ', ' : ' ';
    out[pos++] = 34;
    if (stilts) out[pos++] = 40;
    for (let e = 0; e < count; e++) {
      if (e > 0) pos = putAscii(out, pos, sep);
      pos = this.#putElement(out, pos, plan, data, first + e, complex, sep);
    }
    if (stilts) out[pos++] = 41;
    out[pos++] = 34;
    return pos;
  }

  #putElement(out: Uint8Array, pos: number, plan: CsvColumnPlan, data: ColumnData, e: number, complex: boolean, sep: string): number {
    const info = plan.info;
    const v = data.values;
    const isNull = data.valid !== undefined && data.valid[e] === 0;
    switch (info.type) {
      case 'float64': case 'complex128':
        if (complex) {
          pos = writeFloat64At(out, pos, v as Float64Array, 2 * e);
          pos = putAscii(out, pos, sep);
          return writeFloat64At(out, pos, v as Float64Array, 2 * e + 1);
        }
        return writeFloat64At(out, pos, v as Float64Array, e);
      case 'float32': case 'complex64':
        if (complex) {
          pos = writeFloat32At(out, pos, v as Float32Array, 2 * e);
          pos = putAscii(out, pos, sep);
          return writeFloat32At(out, pos, v as Float32Array, 2 * e + 1);
        }
        return writeFloat32At(out, pos, v as Float32Array, e);
      case 'int64': case 'uint64': {
        const b = v as BigInt64Array;
        const h = new Int32Array(b.buffer, b.byteOffset + 8 * e, 2);
        if (isNull && info.nullValue === undefined) return putAscii(out, pos, 'null');
        return writeInt64Parts(out, pos, h[0], h[1], info.type === 'int64');
      }
      case 'boolean': case 'bit':
        if (isNull) return putAscii(out, pos, 'null');
        if (info.type === 'bit' && !this.#stilts) return putAscii(out, pos, (v as Uint8Array)[e] !== 0 ? '1' : '0');
        return putAscii(out, pos, (v as Uint8Array)[e] !== 0 ? 'true' : 'false');
      case 'string': {
        const s = (v as string[])[e];
        if (isNull || s === undefined || s === null) return putAscii(out, pos, 'null');
        // inside a quoted field: double the quotes
        const t = s.replaceAll('"', '""');
        return pos + this.#text.encodeInto(t, out.subarray(pos)).written;
      }
      default: {
        if (isNull && info.nullValue === undefined) return putAscii(out, pos, 'null');
        return writeInteger(out, pos, (v as Int32Array)[e]);
      }
    }
  }
}

function cellElements(plan: CsvColumnPlan, data: ColumnData, row: number): { first: number; count: number } {
  if (data.offsets) return { first: data.offsets[row], count: data.offsets[row + 1] - data.offsets[row] };
  if (plan.info.variable && plan.info.type === 'string') return { first: row, count: 1 };
  const count = plan.elements;
  return { first: row * count, count };
}

function otherCellBytes(plan: CsvColumnPlan, data: ColumnData, row: number): number {
  const info = plan.info;
  const { first, count } = cellElements(plan, data, row);
  if (info.type === 'string') {
    let n = 4;
    const v = data.values as string[];
    for (let e = first; e < first + count; e++) n += 3 * (v[e]?.length ?? 0) + 6;
    return n;
  }
  return 8 + count * ((plan.complex ? 2 : 1) * (MAX_FLOAT_CHARS + 2) + 2);
}

/** Writes an ASCII string's bytes; returns the position after them. */
export function putAscii(out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

/** A field's text, quoted (RFC 4180) when it must be. */
export function quoteText(s: string, delimiter: string): string {
  if (s.length > 0 && !s.includes('"') && !s.includes(delimiter) && !s.includes('\n') && !s.includes('\r')) return s;
  return `"${s.replaceAll('"', '""')}"`;
}


/** What tells a module loaded in a worker that it is a CSV formatting thread. */
export const CSV_WORKER_KIND = 'ipp-csv-encoder';

/** Bytes of a buffer made for rows that do not fit the shared output slot. */
export const CHUNK_BYTES = 1 << 22;

// Formats a whole batch: into `slot` (memory shared with the main thread, so the bytes are
// neither copied nor left as garbage), and what does not fit (rare: long rows) into chunks
// of its own. Returns the bytes used in the slot.
function encodeBatch(encoder: CsvRowFormatter, batch: ColumnBatch, slot: Uint8Array, chunks: Uint8Array[]): number {
  encoder.setBatch(batch);
  const result = new Int32Array(2);
  encoder.encode(0, slot, 0, result);
  let row = result[0];
  const used = result[1];
  let size = CHUNK_BYTES;
  while (row < batch.rowCount) {
    const buf = new Uint8Array(Math.max(size, encoder.rowBytes(row)));
    encoder.encode(row, buf, 0, result);
    row = result[0];
    chunks.push(buf.subarray(0, result[1]));
    size = buf.length;
  }
  return used;
}

/** A typed array packed into a shared input slot: its kind and where it lies. */
export interface Packed { readonly kind: string; readonly at: number; readonly length: number }
/** A column of a batch packed into a shared input slot (strings are sent as they are). */
export type PackedColumn = { readonly values: Packed | string[]; readonly valid?: Packed; readonly offsets?: Packed };
/** A batch packed into a shared input slot. */
export interface PackedBatch { readonly rowCount: number; readonly columns: PackedColumn[] }

const ARRAY_KINDS: Record<string, new (b: SharedArrayBuffer, at: number, length: number) => NumericArray> = {
  Uint8Array, Int8Array, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array, Float32Array, Float64Array,
};

// The batch a worker formats: views into the shared input slot.
function unpackBatch(packed: PackedBatch, sab: SharedArrayBuffer): ColumnBatch {
  const view = (p: Packed | undefined) => (p === undefined ? undefined : new ARRAY_KINDS[p.kind](sab, p.at, p.length));
  const columns = packed.columns.map((c) => {
    const values = Array.isArray(c.values) ? c.values : view(c.values)!;
    const valid = view(c.valid) as Uint8Array | undefined;
    const offsets = view(c.offsets) as Int32Array | undefined;
    return { values, ...(valid ? { valid } : {}), ...(offsets ? { offsets } : {}) };
  });
  return { rowCount: packed.rowCount, columns };
}

/**
 * The shared state of threads that write the output file themselves. Batch ids are placed
 * in order: a thread that finishes formatting a batch marks it formatted, then, under a
 * small lock, gives file offsets to every formatted batch from the next unplaced one on,
 * and writes those it can (their bytes are in shared output slots, whichever thread
 * formatted them). No thread waits for another to finish formatting. A batch with bytes
 * outside its slot (rare: very long rows) is written by its own thread once placed.
 * Ring entries are indexed by id modulo the number of slots, like the slots themselves.
 */
export class WriteControl {
  readonly buffer: SharedArrayBuffer;
  readonly #ring: number;
  readonly #ints: Int32Array;
  readonly #doubles: Float64Array;

  constructor(buffer: SharedArrayBuffer, ring: number) {
    this.buffer = buffer;
    this.#ring = ring;
    this.#ints = new Int32Array(buffer);
    this.#doubles = new Float64Array(buffer);
  }

  /** A new control block for `ring` slots, the first batch going at byte `start` of the file. */
  static create(ring: number, start: number): WriteControl {
    const c = new WriteControl(new SharedArrayBuffer(controlBytes(ring)), ring);
    c.#doubles[0] = start;
    return c;
  }

  /** Makes every thread give up (after a failure): none waits or writes any more. */
  stop(): void {
    Atomics.store(this.#ints, STOP, 1);
    Atomics.notify(this.#ints, LOCK);
    for (let i = 0; i < this.#ring; i++) Atomics.notify(this.#ints, PLACED + 2 * this.#ring + i);
  }

  get stopped(): boolean {
    return Atomics.load(this.#ints, STOP) !== 0;
  }

  /**
   * Marks batch `id` formatted (`bytes` long, `own` = written by its own thread) and places
   * what can be placed; returns the ids and offsets of the placed batches this thread is to
   * write (flat pairs), the batches of other threads' own writing being left to them.
   */
  finish(id: number, bytes: number, own: boolean): number[] {
    const r = this.#ring;
    const ints = this.#ints;
    const doubles = this.#doubles;
    const i = id % r;
    const lens = lenBase(r);
    doubles[lens + i] = bytes;
    ints[PLACED + r + i] = own ? 1 : 0;
    Atomics.store(ints, PLACED + i, id + 1);
    const mine: number[] = [];
    this.#lock();
    try {
      let next = ints[NEXT_BATCH];
      while (Atomics.load(ints, PLACED + (next % r)) === next + 1) {
        const j = next % r;
        const at = doubles[0];
        doubles[0] = at + doubles[lens + j];
        Atomics.store(ints, PLACED + j, 0);
        if (ints[PLACED + r + j] === 1) {
          // its own thread writes it: tell it where
          doubles[lens + r + j] = at;
          Atomics.store(ints, PLACED + 2 * r + j, next + 1);
          Atomics.notify(ints, PLACED + 2 * r + j);
        } else {
          mine.push(next, at);
        }
        next++;
      }
      ints[NEXT_BATCH] = next;
    } finally {
      this.#unlock();
    }
    return mine;
  }

  /** The offset of batch `id` (one its own thread writes), once every earlier batch is formatted. */
  offsetOf(id: number): number {
    const r = this.#ring;
    const cell = PLACED + 2 * r + (id % r);
    for (;;) {
      if (this.stopped) throw new Stopped('stopped');
      const v = Atomics.load(this.#ints, cell);
      if (v === id + 1) break;
      // timed, so that a stop raised without a notify is still seen
      Atomics.wait(this.#ints, cell, v, 50);
    }
    Atomics.store(this.#ints, cell, 0);
    return this.#doubles[lenBase(r) + r + (id % r)];
  }

  /** Bytes of batch `id` (placed, not yet reused). */
  bytesOf(id: number): number {
    return this.#doubles[lenBase(this.#ring) + (id % this.#ring)];
  }

  #lock(): void {
    const ints = this.#ints;
    while (Atomics.compareExchange(ints, LOCK, 0, 1) !== 0) {
      if (Atomics.load(ints, STOP) !== 0) throw new Stopped('stopped');
      Atomics.wait(ints, LOCK, 1, 5);
    }
  }

  #unlock(): void {
    Atomics.store(this.#ints, LOCK, 0);
    Atomics.notify(this.#ints, LOCK, 1);
  }
}

// Layout: double 0 = next free byte of the file; int32 2 = next batch to place, 3 = stop,
// 4 = lock; from int32 8, three rings: formatted (id + 1), own-writes flag, placed for its
// own thread (id + 1); then two rings of doubles: bytes, and offsets given to own writers.
const NEXT_BATCH = 2;
const STOP = 3;
const LOCK = 4;
const PLACED = 8;
function lenBase(ring: number): number {
  return Math.ceil((PLACED + 3 * ring) / 2);
}
function controlBytes(ring: number): number {
  return 8 * (lenBase(ring) + 2 * ring);
}

/** What the main thread sends a formatting thread for one batch. */
export interface EncodeRequest {
  readonly id: number;
  /** A batch of column data, or (threads reading raw rows) the first row and row count to read. */
  readonly batch?: PackedBatch;
  readonly input?: SharedArrayBuffer;
  readonly first?: number;
  readonly count?: number;
  readonly slot: SharedArrayBuffer;
}

/** A formatting thread's answer: bytes in the slot and further chunks, or (writing threads) bytes written. */
export interface EncodeReply {
  readonly id: number;
  readonly used?: number;
  readonly chunks?: Uint8Array[];
  readonly error?: string;
  readonly code?: string;
}

/** What a formatting thread is started with. */
export interface CsvWorkerData {
  readonly kind: string;
  readonly plans: CsvColumnPlan[];
  readonly options: CsvFormatOptions;
  /** Writing threads: the open output file, the control block and every output slot. */
  readonly fd?: number;
  readonly control?: SharedArrayBuffer;
  readonly slots?: SharedArrayBuffer[];
  /** Threads that read the rows themselves: where they lie (fields of the selected columns) and the open input file. */
  readonly raw?: { readonly rows: CsvRawRows; readonly fields: readonly CsvRawField[]; readonly fd: number };
}

class Stopped extends Error {}

function writeAt(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

/** Reads rows of a raw table from its file and formats them: one reused input buffer, no column arrays. */
class RawRowFormatter {
  readonly #raw: NonNullable<CsvWorkerData['raw']>;
  readonly #rows: RawRows;
  readonly #reserve: number;
  #input = new Uint8Array(0);
  #view = new DataView(this.#input.buffer);
  readonly #result = new Int32Array(2);

  constructor(raw: NonNullable<CsvWorkerData['raw']>, options: CsvFormatOptions) {
    this.#raw = raw;
    const eol = new TextEncoder().encode(options.lineEnding ?? '\n');
    this.#reserve = raw.fields.length * (MAX_FLOAT_CHARS + 1) + 2 + eol.length;
    const rows = compileRawRows(raw.fields, raw.rows.rowBytes, (options.delimiter ?? ',').charCodeAt(0), eol, this.#reserve);
    // (the writer checks that code can be compiled before it asks for raw rows)
    if (rows === null) throw new Error('the raw row loop cannot be compiled here');
    this.#rows = rows;
  }

  // Formats rows first..first+count into `slot` and, what does not fit, chunks of their own.
  encode(first: number, count: number, slot: Uint8Array, chunks: Uint8Array[]): number {
    const { rowBytes, start } = this.#raw.rows;
    const need = count * rowBytes;
    if (this.#input.length < need) {
      this.#input = new Uint8Array(need);
      this.#view = new DataView(this.#input.buffer);
    }
    const input = this.#input;
    let done = 0;
    while (done < need) {
      const n = readSync(this.#raw.fd, input, done, need - done, start + first * rowBytes + done);
      if (n === 0) throw new Error(`${this.#raw.rows.path}: the file ended while reading rows ${first + 1}..${first + count}`);
      done += n;
    }
    const result = this.#result;
    this.#rows(slot, 0, 0, count, slot.length, input, this.#view, result);
    let row = result[0];
    const used = result[1];
    while (row < count) {
      const buf = new Uint8Array(Math.max(CHUNK_BYTES, this.#reserve));
      this.#rows(buf, 0, row, count, buf.length, input, this.#view, result);
      row = result[0];
      chunks.push(buf.subarray(0, result[1]));
    }
    return used;
  }
}

function runEncoderWorker(data: CsvWorkerData): void {
  const encoder = new CsvRowFormatter(data.plans, data.options);
  const raw = data.raw ? new RawRowFormatter(data.raw, data.options) : undefined;
  const fd = data.fd;
  const slots = data.slots ?? [];
  const control = data.control ? new WriteControl(data.control, slots.length) : undefined;
  const reply = (id: number, error: unknown) => {
    const code = (error as { code?: unknown }).code;
    parentPort!.postMessage({ id, error: (error as Error).message, ...(typeof code === 'string' ? { code } : {}) });
  };
  // The batches this thread placed (flat id, offset pairs), its own or not: written from
  // their shared slots.
  const writePlaced = (placed: number[]) => {
    for (let k = 0; k < placed.length; k += 2) {
      const id = placed[k];
      try {
        if (control!.stopped) return;
        const bytes = control!.bytesOf(id);
        writeAt(fd!, new Uint8Array(slots[id % slots.length], 0, bytes), placed[k + 1]);
        parentPort!.postMessage({ id, used: bytes });
      } catch (error) {
        reply(id, error);
      }
    }
  };
  parentPort!.on('message', (m: EncodeRequest) => {
    try {
      const chunks: Uint8Array[] = [];
      const slot = new Uint8Array(m.slot);
      const used = raw !== undefined && m.batch === undefined
        ? raw.encode(m.first!, m.count!, slot, chunks)
        : encodeBatch(encoder, unpackBatch(m.batch!, m.input!), slot, chunks);
      if (fd === undefined || control === undefined) {
        parentPort!.postMessage({ id: m.id, used, chunks }, chunks.map((c) => c.buffer as ArrayBuffer));
        return;
      }
      let total = used;
      for (const c of chunks) total += c.length;
      // what this thread placed is written before it waits for its own batch's place
      writePlaced(control.finish(m.id, total, chunks.length > 0));
      if (chunks.length > 0) {
        let at = control.offsetOf(m.id);
        writeAt(fd, slot.subarray(0, used), at);
        at += used;
        for (const c of chunks) {
          writeAt(fd, c, at);
          at += c.length;
        }
        parentPort!.postMessage({ id: m.id, used: total });
      }
    } catch (error) {
      reply(m.id, error);
    }
  });
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === CSV_WORKER_KIND) runEncoderWorker(workerData as CsvWorkerData);
