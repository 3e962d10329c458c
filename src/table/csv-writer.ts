// Tables to CSV (RFC 4180 quoting), built in large byte buffers a batch at a time.
import { open, rename, rm } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { elementsPerRow, isBigIntType, slotsPerElement, type ColumnInfo } from './column-info.ts';
import type { ColumnBatch, ColumnData, NumericArray } from './column-batch.ts';
import { columnIndexes, type Table } from './table.ts';
import { CsvError } from './errors.ts';
import {
  MAX_FLOAT_CHARS, writeFloat32At, writeFloat64At, writeInt32, writeInt64Parts, writeInteger,
} from './format-number.ts';

/** How array cells are written: `space` = "1 2 3" (VOTable style), `stilts` = "(1, 2, 3)" as STILTS does. */
export type CsvArrayStyle = 'space' | 'stilts';

/** Options of {@link writeCsv}. */
export interface CsvWriteOptions {
  /** Write a first line of column names (default true). */
  readonly header?: boolean;
  /** One ASCII character between fields (default ","). */
  readonly delimiter?: string;
  /** Line ending (default "\n", as STILTS writes; RFC 4180 asks for "\r\n"). */
  readonly lineEnding?: '\n' | '\r\n';
  /** Array cells: default `space`. */
  readonly arrays?: CsvArrayStyle;
  /** Columns to write, in this order (default all). */
  readonly columns?: readonly string[];
  /** Rows per batch asked of the table. */
  readonly batchRows?: number;
  /** Called after each batch with the rows written so far. */
  readonly onProgress?: (rowsWritten: number) => void;
  /**
   * Worker threads that format batches in parallel (0 = format on this thread). Default: for
   * tables of more than 100 000 rows (or of unknown size), one per core up to 4 when the
   * cores are not all busy (1-minute load average at most the core count), else 0.
   */
  readonly threads?: number;
  readonly signal?: AbortSignal;
}

/** What {@link writeCsv} wrote. */
export interface CsvWriteResult {
  readonly rows: number;
  readonly bytes: number;
}

const BUFFER_BYTES = 1 << 22;

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

interface Plan {
  readonly info: ColumnInfo;
  readonly kind: number;
  /** Integer null value as a number (K_INT), or the two 32-bit halves for 64-bit nulls. */
  readonly nullNumber: number | undefined;
  readonly nullLo: number;
  readonly nullHi: number;
}

function kindOf(info: ColumnInfo): number {
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

function makePlan(info: ColumnInfo): Plan {
  let nullNumber: number | undefined;
  let nullLo = 0;
  let nullHi = 0;
  if (info.nullValue !== undefined) {
    if (isBigIntType(info.type)) {
      const b = BigInt.asUintN(64, BigInt(info.nullValue));
      nullLo = Number(b & 0xffffffffn) | 0;
      nullHi = Number(b >> 32n) | 0;
    } else {
      nullNumber = Number(info.nullValue);
    }
  }
  return { info, kind: kindOf(info), nullNumber, nullLo, nullHi };
}

// A row loop compiled for one table layout: tables of fixed-size cells only (numbers,
// booleans), which is what large survey tables are. Each column gets its own code with its
// kind, null test and delimiter as constants, so no cell pays for a switch, a look-up of its
// column's arrays or a test for a validity array it does not have; every array access and
// call site sees one type. The source is made from the column kinds and integer null values
// only (numbers), never from names or other text of the table.
type FixedRows = (out: Uint8Array, pos: number, row: number, n: number, limit: number,
  cols: readonly unknown[], valid: readonly (Uint8Array | null)[], result: Int32Array | number[]) => void;

function compileFixedRows(plans: readonly Plan[], withValid: readonly boolean[], delim: number, eol: Uint8Array, rowBytes: number): FixedRows {
  const setup: string[] = [];
  const body: string[] = [];
  const int = (x: number) => {
    if (!Number.isInteger(x)) throw new CsvError('csv_bad_option', `internal: ${x} is not an integer`);
    return String(x);
  };
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
        cell = plan.nullNumber !== undefined && !Number.isNaN(plan.nullNumber) && !withValid[c]
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
      default: throw new CsvError('csv_bad_option', `internal: column ${c} has no fixed-size cells`);
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
  const factory = new Function('f64', 'f32', 'i32', 'int', 'i64', source) as (...fns: unknown[]) => FixedRows;
  return factory(writeFloat64At, writeFloat32At, writeInt32, writeInteger, writeInt64Parts);
}

/**
 * Formats rows of batches into byte buffers. One instance per output; `encode` fills a
 * buffer with whole rows and says where it stopped, so the caller can write and go on.
 */
export class CsvEncoder {
  readonly #plans: Plan[];
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
  readonly #compiled = new Map<string, FixedRows>();
  #rows: FixedRows | undefined;

  constructor(columns: readonly ColumnInfo[], options: { delimiter?: string; lineEnding?: string; arrays?: CsvArrayStyle } = {}) {
    const delimiter = options.delimiter ?? ',';
    if (delimiter.length !== 1 || delimiter.charCodeAt(0) > 127 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
      throw new CsvError('csv_bad_option', `delimiter ${JSON.stringify(delimiter)} must be one ASCII character other than a quote or a line break`);
    }
    this.#plans = columns.map(makePlan);
    this.#delim = delimiter.charCodeAt(0);
    this.#eol = new TextEncoder().encode(options.lineEnding ?? '\n');
    this.#stilts = options.arrays === 'stilts';
    this.#slot = new Int32Array(columns.length);
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
      this.#rows = rows;
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
        n += otherCellBytes(plan.info, batch.columns[c], row);
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
  #putOther(out: Uint8Array, pos: number, plan: Plan, data: ColumnData, row: number): number {
    const info = plan.info;
    const { first, count } = cellElements(info, data, row);
    const scalar = info.shape.length === 0 && !info.variable;
    const complex = slotsPerElement(info.type) === 2;
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

  #putElement(out: Uint8Array, pos: number, plan: Plan, data: ColumnData, e: number, complex: boolean, sep: string): number {
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

function cellElements(info: ColumnInfo, data: ColumnData, row: number): { first: number; count: number } {
  if (data.offsets) return { first: data.offsets[row], count: data.offsets[row + 1] - data.offsets[row] };
  if (info.variable && info.type === 'string') return { first: row, count: 1 };
  const count = elementsPerRow(info);
  return { first: row * count, count };
}

function otherCellBytes(info: ColumnInfo, data: ColumnData, row: number): number {
  const { first, count } = cellElements(info, data, row);
  if (info.type === 'string') {
    let n = 4;
    const v = data.values as string[];
    for (let e = first; e < first + count; e++) n += 3 * (v[e]?.length ?? 0) + 6;
    return n;
  }
  return 8 + count * (slotsPerElement(info.type) * (MAX_FLOAT_CHARS + 2) + 2);
}

function putAscii(out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

function quoteText(s: string, delimiter: string): string {
  if (s.length > 0 && !s.includes('"') && !s.includes(delimiter) && !s.includes('\n') && !s.includes('\r')) return s;
  return `"${s.replaceAll('"', '""')}"`;
}

/** Where CSV bytes go: a file path (written atomically) or a writable stream. */
export type CsvTarget = string | Writable;

/**
 * Writes a table as CSV: a header line of column names, one line per row, nulls as empty
 * fields, floats as the shortest text that reads back at the column's precision, 64-bit
 * integers exactly. A path is written to a temporary file and renamed into place, so a
 * failure leaves nothing behind; a stream is written with backpressure and left open.
 */
export async function writeCsv(table: Table, target: CsvTarget, options: CsvWriteOptions = {}): Promise<CsvWriteResult> {
  const idx = columnIndexes(table.columns, options.columns);
  const columns = idx.map((i) => table.columns[i]);
  const encoder = new CsvEncoder(columns, options);
  const names = columns.map((c) => c.name);
  if (typeof target === 'string') return writeToPath(table, target, encoder, names, options);
  return writeToStream(table, target, encoder, names, options);
}

type Sink = (chunk: Uint8Array) => Promise<void>;

async function pump(table: Table, encoder: CsvEncoder, names: string[], options: CsvWriteOptions, sink: Sink): Promise<CsvWriteResult> {
  let bytes = 0;
  if (options.header ?? true) {
    const h = encoder.header();
    await sink(h);
    bytes += h.length;
  }
  const threads = options.threads ?? defaultThreads(table.rowCount);
  const columns = names.map((n) => table.columns[columnIndexes(table.columns, [n])[0]]);
  const body = threads > 0
    ? await pumpThreaded(table, columns, names, options, sink, threads)
    : await pumpInline(table, encoder, names, options, sink);
  return { rows: body.rows, bytes: bytes + body.bytes };
}

// Worker threads pay off for large tables on cores that are free; on a machine already busy
// (load average near the core count) they only fight each other, so format inline then.
function defaultThreads(rowCount: number | undefined): number {
  if (rowCount !== undefined && rowCount <= 100_000) return 0;
  const cores = availableParallelism();
  if (cores < 2 || loadavg()[0] > cores) return 0;
  return Math.min(4, cores);
}

// Rows per batch handed to a formatting thread when the caller sets none: small enough that
// the batches in flight (column data plus their CSV) stay a few tens of MB.
const THREAD_BATCH_ROWS = 16384;

function batchOptionsOf(names: string[], options: CsvWriteOptions, defaultRows?: number) {
  const batchRows = options.batchRows ?? defaultRows;
  return { columns: names, ...(batchRows ? { batchRows } : {}), ...(options.signal ? { signal: options.signal } : {}) };
}

async function pumpInline(table: Table, encoder: CsvEncoder, names: string[], options: CsvWriteOptions, sink: Sink): Promise<CsvWriteResult> {
  let bytes = 0;
  let rows = 0;
  // two buffers: one is formatted while the other is being written
  let current = Buffer.allocUnsafe(BUFFER_BYTES);
  let spare = Buffer.allocUnsafe(BUFFER_BYTES);
  let pending: Promise<void> | undefined;
  let pos = 0;
  const result = new Int32Array(2);
  const flush = async () => {
    if (pos === 0) return;
    const chunk = current.subarray(0, pos);
    if (pending) await pending;
    pending = sink(chunk);
    // a write that fails while the next batch is read is reported when awaited, not as an
    // unhandled rejection
    pending.catch(() => {});
    bytes += pos;
    [current, spare] = [spare, current];
    pos = 0;
  };
  try {
    for await (const batch of table.batches(batchOptionsOf(names, options))) {
      options.signal?.throwIfAborted();
      encoder.setBatch(batch);
      let row = 0;
      while (row < batch.rowCount) {
        encoder.encode(row, current, pos, result);
        const done = result[0] - row;
        row = result[0];
        pos = result[1];
        rows += done;
        if (row < batch.rowCount) {
          if (done === 0 && pos === 0) {
            // one row larger than the buffer: give it a buffer of its own size
            const need = encoder.rowBytes(row);
            current = Buffer.allocUnsafe(Math.max(need, BUFFER_BYTES));
            spare = Buffer.allocUnsafe(current.length);
            continue;
          }
          await flush();
        }
      }
      options.onProgress?.(rows);
    }
    await flush();
    if (pending) await pending;
    return { rows, bytes };
  } finally {
    // after a failure, let the write in flight settle before the caller closes the file
    await pending?.catch(() => {});
  }
}

// Formats a whole batch in a worker: into `slot` (memory shared with the main thread, so the
// bytes are neither copied nor left as garbage), and what does not fit (rare: long rows)
// into chunks of its own, transferred back. Returns the bytes used in the slot.
function encodeBatch(encoder: CsvEncoder, batch: ColumnBatch, slot: Uint8Array, chunks: Uint8Array[]): number {
  encoder.setBatch(batch);
  const result = new Int32Array(2);
  encoder.encode(0, slot, 0, result);
  let row = result[0];
  const used = result[1];
  let size = BUFFER_BYTES;
  while (row < batch.rowCount) {
    const buf = new Uint8Array(Math.max(size, encoder.rowBytes(row)));
    encoder.encode(row, buf, 0, result);
    row = result[0];
    chunks.push(buf.subarray(0, result[1]));
    size = buf.length;
  }
  return used;
}

const WORKER_KIND = 'ipp-csv-encoder';

// Bytes of one shared output slot: the CSV of a THREAD_BATCH_ROWS batch of a few hundred bytes a row.
const SLOT_BYTES = 1 << 23;
// Bytes of one shared input slot at first (grown for batches of wider rows).
const INPUT_SLOT_BYTES = 1 << 21;

interface EncodeReply { readonly id: number; readonly used?: number; readonly chunks?: Uint8Array[]; readonly error?: string }
interface Encoded { readonly used: number; readonly chunks: Uint8Array[] }

// A typed array packed into a shared input slot: its kind and where it lies.
interface Packed { readonly kind: string; readonly at: number; readonly length: number }
type PackedColumn = { readonly values: Packed | string[]; readonly valid?: Packed; readonly offsets?: Packed };
interface PackedBatch { readonly rowCount: number; readonly columns: PackedColumn[] }

const ARRAY_KINDS: Record<string, new (b: SharedArrayBuffer, at: number, length: number) => NumericArray> = {
  Uint8Array, Int8Array, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array, Float32Array, Float64Array,
};

// Copies a batch's typed arrays into a shared slot (grown when too small), so that posting it
// to a worker neither copies it again nor leaves a buffer per column behind as garbage.
function packBatch(batch: ColumnBatch, inputs: SharedArrayBuffer[], index: number): PackedBatch {
  let need = 0;
  const size = (a: ArrayBufferView | undefined) => { if (a !== undefined) need += (a.byteLength + 7) & ~7; };
  for (const d of batch.columns) {
    if (!Array.isArray(d.values)) size(d.values as NumericArray);
    size(d.valid);
    size(d.offsets);
  }
  if (inputs[index].byteLength < need) inputs[index] = new SharedArrayBuffer(Math.max(need, 2 * inputs[index].byteLength));
  const sab = inputs[index];
  const bytes = new Uint8Array(sab);
  let at = 0;
  const put = (a: NumericArray | undefined): Packed | undefined => {
    if (a === undefined) return undefined;
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    const packed = { kind: a.constructor.name, at, length: a.length };
    at += (a.byteLength + 7) & ~7;
    return packed;
  };
  const columns = batch.columns.map((d) => {
    const values = Array.isArray(d.values) ? d.values : put(d.values as NumericArray)!;
    const valid = put(d.valid);
    const offsets = put(d.offsets);
    return { values, ...(valid ? { valid } : {}), ...(offsets ? { offsets } : {}) };
  });
  return { rowCount: batch.rowCount, columns };
}

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

async function pumpThreaded(table: Table, columns: ColumnInfo[], names: string[], options: CsvWriteOptions, sink: Sink, threads: number): Promise<CsvWriteResult> {
  const waiting = new Map<number, { resolve: (c: Encoded) => void; reject: (e: Error) => void }>();
  // one input and one output slot per batch that may be in flight (see the bound below)
  const slots = Array.from({ length: threads + 2 }, () => new SharedArrayBuffer(SLOT_BYTES));
  const inputs = Array.from({ length: threads + 2 }, () => new SharedArrayBuffer(INPUT_SLOT_BYTES));
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    for (const w of waiting.values()) w.reject(failure);
    waiting.clear();
  };
  const workers = Array.from({ length: threads }, () => {
    const w = new Worker(new URL(import.meta.url), {
      workerData: { kind: WORKER_KIND, columns, options: { delimiter: options.delimiter, lineEnding: options.lineEnding, arrays: options.arrays } },
      // a formatting thread keeps little on its heap; a small young generation keeps its
      // resident memory small too
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    w.on('message', (m: EncodeReply) => {
      const entry = waiting.get(m.id);
      if (!entry) return;
      waiting.delete(m.id);
      if (m.error !== undefined) entry.reject(new CsvError('csv_encode_failed', m.error));
      else entry.resolve({ used: m.used!, chunks: m.chunks! });
    });
    w.on('error', (e) => fail(e));
    // a thread that ends while batches wait for it fails them (a thread stopped while still
    // starting ends with code 0)
    w.on('exit', (code) => { if (waiting.size > 0) fail(new CsvError('csv_worker_exit', `a CSV formatting thread stopped (code ${code}) with batches unfinished`)); });
    return w;
  });
  let rows = 0;
  let written = 0;
  let bytes = 0;
  let nextId = 0;
  // Batches are written in order by a chain of their own, so that reading the next batches
  // goes on while earlier ones are written; `done` holds each queued batch's end of writing.
  let writing: Promise<void> = Promise.resolve();
  const done: Promise<void>[] = [];
  const drainOne = () => done.shift()!;
  try {
    for await (const batch of table.batches(batchOptionsOf(names, options, THREAD_BATCH_ROWS))) {
      options.signal?.throwIfAborted();
      if (failure) throw failure;
      const id = nextId++;
      const count = batch.rowCount;
      const slotIndex = id % slots.length;
      const slot = slots[slotIndex];
      const encoded = new Promise<Encoded>((resolve, reject) => waiting.set(id, { resolve, reject }));
      // errors surface through the writing chain; these handlers only mark them as seen
      encoded.catch(() => {});
      writing = writing.then(async () => {
        const { used, chunks } = await encoded;
        await sink(new Uint8Array(slot, 0, used));
        bytes += used;
        for (const c of chunks) {
          await sink(c);
          bytes += c.length;
        }
        written += count;
        options.onProgress?.(written);
      });
      writing.catch((e: Error) => fail(e));
      done.push(writing);
      const packed = packBatch(batch, inputs, slotIndex);
      workers[id % threads].postMessage({ id, batch: packed, input: inputs[slotIndex], slot });
      rows += batch.rowCount;
      // at most threads + 1 batches queued or being written when the next is posted, so its
      // slots (last used by batch id - threads - 2) are free; memory stays bounded
      while (done.length > threads) await drainOne();
    }
    await writing;
    if (failure) throw failure;
    return { rows, bytes };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    // after a failure, fail what still waits, and let writes in flight settle before the
    // caller closes the file
    if (waiting.size > 0) fail(failure ?? new CsvError('csv_stopped', 'CSV formatting stopped'));
    await writing.catch(() => {});
  }
}

function runEncoderWorker(): void {
  const data = workerData as { columns: ColumnInfo[]; options: { delimiter?: string; lineEnding?: string; arrays?: CsvArrayStyle } };
  const encoder = new CsvEncoder(data.columns, data.options);
  parentPort!.on('message', (m: { id: number; batch: PackedBatch; input: SharedArrayBuffer; slot: SharedArrayBuffer }) => {
    try {
      const chunks: Uint8Array[] = [];
      const used = encodeBatch(encoder, unpackBatch(m.batch, m.input), new Uint8Array(m.slot), chunks);
      parentPort!.postMessage({ id: m.id, used, chunks }, chunks.map((c) => c.buffer as ArrayBuffer));
    } catch (error) {
      parentPort!.postMessage({ id: m.id, error: (error as Error).message });
    }
  });
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === WORKER_KIND) runEncoderWorker();

async function writeToPath(table: Table, path: string, encoder: CsvEncoder, names: string[], options: CsvWriteOptions): Promise<CsvWriteResult> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let handle;
  try {
    handle = await open(temp, 'wx');
  } catch (cause) {
    throw new CsvError('csv_cannot_write', `${path}: cannot create ${temp}: ${(cause as Error).message}; check that the directory exists and is writable`, { cause });
  }
  try {
    const h = handle;
    const result = await pump(table, encoder, names, options, async (chunk) => {
      let off = 0;
      while (off < chunk.length) off += (await h.write(chunk, off, chunk.length - off)).bytesWritten;
    });
    await handle.close();
    handle = undefined;
    await rename(temp, path);
    return result;
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true });
    if (error instanceof Error && 'code' in error && typeof error.code === 'string' && /^E[A-Z]+$/.test(error.code)) {
      throw new CsvError('csv_cannot_write', `${path}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

async function writeToStream(table: Table, stream: Writable, encoder: CsvEncoder, names: string[], options: CsvWriteOptions): Promise<CsvWriteResult> {
  let failure: Error | undefined;
  const onError = (e: Error) => { failure = e; };
  stream.on('error', onError);
  try {
    return await pump(table, encoder, names, options, (chunk) => new Promise<void>((resolve, reject) => {
      if (failure) { reject(failure); return; }
      // the stream keeps the chunk until its callback: copy, since the buffer is reused
      stream.write(Buffer.from(chunk), (err) => (err ? reject(err) : resolve()));
    }));
  } finally {
    stream.off('error', onError);
  }
}

