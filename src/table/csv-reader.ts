// CSV files (RFC 4180) as tables: streamed in chunks, typed by a first pass or a schema.
import { open, type FileHandle } from 'node:fs/promises';
import {
  arrayTypeOf, columnInfo, elementsPerRow, isBigIntType, slotsPerElement, type ColumnInfo, type ColumnType,
} from './column-info.ts';
import type { ColumnBatch, ColumnData, NumericArray } from './column-batch.ts';
import { columnIndexes, DEFAULT_BATCH_ROWS, type ReadOptions, type Table } from './table.ts';
import { CsvError } from './errors.ts';

/** Options of {@link readCsv}. */
export interface CsvReadOptions {
  /**
   * The columns' descriptions, in file order. Without it the file is read once first to
   * choose types: integers become int32 (int64 when too large), numbers float64, true/false
   * boolean, anything else string with the longest value's width.
   */
  readonly schema?: readonly ColumnInfo[];
  /** The first line holds the column names (default true). */
  readonly header?: boolean;
  /** One ASCII character between fields (default ","). */
  readonly delimiter?: string;
  /** The table's name (default: the file name without its extension). */
  readonly name?: string;
  readonly signal?: AbortSignal;
}

const QUOTE = 34;
const LF = 10;
const CR = 13;
const CHUNK_BYTES = 1 << 20;
// A row longer than this is almost surely an unclosed quote swallowing the file.
const MAX_ROW_BYTES = 1 << 28;

// Field flags: how the bytes between start and end are to be read.
const PLAIN = 0;
const QUOTED = 1; // inside quotes, no escaped quote
const ESCAPED = 2; // inside quotes, with "" to be read as "

/**
 * Splits a file into rows and fields, a chunk at a time. `next()` finds the next row and
 * records where each of its fields starts and ends in `buf`; the bytes stay valid until the
 * next call.
 */
class CsvScanner {
  buf: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  starts = new Int32Array(64);
  ends = new Int32Array(64);
  flags = new Uint8Array(64);
  fieldCount = 0;
  /** Line number (1-based) where the current row starts. */
  line = 0;
  readonly #handle: FileHandle;
  readonly #file: string;
  readonly #delim: number;
  #start = 0;
  #end = 0;
  #eof = false;
  #filePos = 0;
  #nextLine = 1;

  constructor(handle: FileHandle, file: string, delimiter: number) {
    this.#handle = handle;
    this.#file = file;
    this.#delim = delimiter;
  }

  /** Finds the next row; false at the end of the file. */
  async next(): Promise<boolean> {
    for (;;) {
      const r = this.#parseRow();
      if (r === 1) return true;
      if (r === 0) return false;
      await this.#fill();
    }
  }

  /** Parses the next row from the bytes at hand without waiting; 1 = row, 0 = end, -1 = more bytes needed. */
  nextSync(): number {
    return this.#parseRow();
  }

  /** Reads more of the file (call when nextSync says -1). */
  async more(): Promise<void> {
    await this.#fill();
  }

  async #fill(): Promise<void> {
    // keep the unparsed tail, at the front of the buffer; grow the buffer for a huge row
    const keep = this.#end - this.#start;
    if (keep >= MAX_ROW_BYTES) {
      throw new CsvError('csv_row_too_long', `${this.#file}: line ${this.#nextLine}: a row longer than ${MAX_ROW_BYTES >> 20} MiB; most likely a quote is not closed (write a quote inside a field as "")`);
    }
    if (keep >= this.buf.length / 2) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, this.#start, this.#end);
      this.buf = bigger;
    } else if (keep > 0) {
      this.buf.copy(this.buf, 0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = keep;
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.#handle.read(this.buf, keep, this.buf.length - keep, this.#filePos));
    } catch (cause) {
      throw new CsvError('csv_cannot_read', `${this.#file}: cannot read: ${(cause as Error).message}`, { cause });
    }
    this.#filePos += bytesRead;
    this.#end += bytesRead;
    if (bytesRead === 0) this.#eof = true;
  }

  #addField(start: number, end: number, flag: number): void {
    const n = this.fieldCount;
    if (n === this.starts.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
      this.flags = grow(this.flags);
    }
    this.starts[n] = start;
    this.ends[n] = end;
    this.flags[n] = flag;
    this.fieldCount = n + 1;
  }

  #parseRow(): number {
    const buf = this.buf;
    const end = this.#end;
    const eof = this.#eof;
    const delim = this.#delim;
    let i = this.#start;
    if (i >= end) return eof ? 0 : -1;
    this.fieldCount = 0;
    let newlines = 0;
    for (;;) {
      if (i < end && buf[i] === QUOTE) {
        let j = i + 1;
        let flag = QUOTED;
        let close: number;
        for (;;) {
          close = buf.indexOf(QUOTE, j);
          if (close < 0 || close >= end) {
            if (!eof) return -1;
            throw new CsvError('csv_unterminated_quote', `${this.#file}: line ${this.#nextLine}: a quoted field is not closed before the end of the file; close it with a double quote (write a quote inside a field as "")`);
          }
          if (close + 1 >= end && !eof) return -1;
          if (close + 1 < end && buf[close + 1] === QUOTE) {
            flag = ESCAPED;
            j = close + 2;
            continue;
          }
          break;
        }
        for (let k = i + 1; k < close; k++) if (buf[k] === LF) newlines++;
        this.#addField(i + 1, close, flag);
        i = close + 1;
        if (i < end && buf[i] !== delim && buf[i] !== LF && buf[i] !== CR) {
          throw new CsvError('csv_bad_quote', `${this.#file}: line ${this.#nextLine + newlines}: field ${this.fieldCount} has text after its closing quote; quote the whole field and write inner quotes as ""`);
        }
      } else {
        let j = i;
        while (j < end) {
          const ch = buf[j];
          if (ch === delim || ch === LF || ch === CR) break;
          j++;
        }
        if (j >= end && !eof) return -1;
        this.#addField(i, j, PLAIN);
        i = j;
      }
      if (i >= end) {
        if (!eof) return -1;
        break; // last line without a line ending
      }
      const ch = buf[i];
      if (ch === delim) {
        i++;
        continue;
      }
      if (ch === CR) {
        if (i + 1 >= end && !eof) return -1;
        i += i + 1 < end && buf[i + 1] === LF ? 2 : 1;
      } else {
        i++;
      }
      newlines++;
      break;
    }
    this.line = this.#nextLine;
    this.#nextLine += newlines;
    this.#start = i;
    return 1;
  }

  /** True when the current row is one empty field (a blank line). */
  blank(): boolean {
    return this.fieldCount === 1 && this.flags[0] === PLAIN && this.starts[0] === this.ends[0];
  }

  /** The text of field `f` of the current row (quotes undone). */
  text(f: number): string {
    const s = this.buf.toString('utf8', this.starts[f], this.ends[f]);
    return this.flags[f] === ESCAPED ? s.replaceAll('""', '"') : s;
  }
}

async function openCsv(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (cause) {
    throw new CsvError('csv_cannot_open', `${path}: cannot open: ${(cause as Error).message}`, { cause });
  }
}

function delimiterCode(options: CsvReadOptions): number {
  const d = options.delimiter ?? ',';
  if (d.length !== 1 || d.charCodeAt(0) > 127 || d === '"' || d === '\n' || d === '\r') {
    throw new CsvError('csv_bad_option', `delimiter ${JSON.stringify(d)} must be one ASCII character other than a quote or a line break`);
  }
  return d.charCodeAt(0);
}

// What a field looks like, for type inference.
const T_EMPTY = 0;
const T_INT32 = 1;
const T_INT64 = 2;
const T_FLOAT = 3;
const T_BOOL = 4;
const T_STRING = 5;

const INT64_MAX_TEXT = '9223372036854775807';

function classify(buf: Buffer, s: number, e: number): number {
  if (s === e) return T_EMPTY;
  let i = s;
  const c0 = buf[i];
  const negative = c0 === 45;
  if (c0 === 43 || c0 === 45) i++;
  const d0 = i;
  while (i < e && buf[i] >= 48 && buf[i] <= 57) i++;
  const nd = i - d0;
  if (i === e && nd > 0) {
    if (nd < 10) return T_INT32;
    if (nd === 10) {
      const v = Number(buf.toString('latin1', d0, e));
      return v <= (negative ? 2147483648 : 2147483647) ? T_INT32 : T_INT64;
    }
    if (nd < 19) return T_INT64;
    if (nd === 19) {
      const t = buf.toString('latin1', d0, e);
      return t <= INT64_MAX_TEXT || (negative && t === '9223372036854775808') ? T_INT64 : T_FLOAT;
    }
    return T_FLOAT;
  }
  if (isFloatText(buf, s, e)) return T_FLOAT;
  const len = e - s;
  if (len === 4 || len === 5) {
    const t = buf.toString('latin1', s, e).toLowerCase();
    if (t === 'true' || t === 'false') return T_BOOL;
  }
  return T_STRING;
}

function isFloatText(buf: Buffer, s: number, e: number): boolean {
  let i = s;
  if (buf[i] === 43 || buf[i] === 45) i++;
  let digits = 0;
  while (i < e && buf[i] >= 48 && buf[i] <= 57) { i++; digits++; }
  if (i < e && buf[i] === 46) {
    i++;
    while (i < e && buf[i] >= 48 && buf[i] <= 57) { i++; digits++; }
  }
  if (digits === 0) {
    const t = buf.toString('latin1', i, e).toLowerCase();
    return t === 'nan' || t === 'inf' || t === 'infinity';
  }
  if (i < e && (buf[i] === 101 || buf[i] === 69)) {
    i++;
    if (i < e && (buf[i] === 43 || buf[i] === 45)) i++;
    const e0 = i;
    while (i < e && buf[i] >= 48 && buf[i] <= 57) i++;
    if (i === e0) return false;
  }
  return i === e;
}

interface ColumnStats {
  kind: number;
  width: number;
  nulls: boolean;
}

function utf8Length(buf: Buffer, s: number, e: number, flag: number): number {
  let n = 0;
  for (let i = s; i < e; i++) if ((buf[i] & 0xc0) !== 0x80) n++;
  // each "" inside a quoted field is one character
  if (flag === ESCAPED) for (let i = s; i < e - 1; i++) if (buf[i] === QUOTE && buf[i + 1] === QUOTE) { n--; i++; }
  return n;
}

function inferredColumn(name: string, st: ColumnStats): ColumnInfo {
  switch (st.kind) {
    case T_INT32: return columnInfo(name, 'int32');
    case T_INT64: return columnInfo(name, 'int64');
    case T_FLOAT: return columnInfo(name, 'float64');
    case T_BOOL: return columnInfo(name, 'boolean');
    default: return columnInfo(name, 'string', { width: Math.max(1, st.width) });
  }
}

function widen(kind: number, seen: number): number {
  if (seen === T_EMPTY) return kind;
  if (kind === T_EMPTY) return seen;
  if (kind === seen) return kind;
  if (kind === T_STRING || seen === T_STRING) return T_STRING;
  if (kind === T_BOOL || seen === T_BOOL) return T_STRING;
  return Math.max(kind, seen); // int32 < int64 < float
}

function fileStem(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  return base.replace(/\.[^.]*$/, '');
}

/**
 * Reads a CSV file as a table. With no schema, the whole file is read once to choose column
 * types (and count rows); either way the rows are then read in batches, a chunk of the file
 * at a time, each time the table's batches are asked for. Errors name the file, line and
 * column.
 */
export async function readCsv(path: string, options: CsvReadOptions = {}): Promise<Table> {
  const delim = delimiterCode(options);
  const header = options.header ?? true;
  const handle = await openCsv(path);
  const names: string[] = [];
  let columns: ColumnInfo[];
  let rowCount: number | undefined;
  try {
    const scan = new CsvScanner(handle, path, delim);
    if (header) {
      if (!(await scan.next())) {
        if (!options.schema) throw new CsvError('csv_empty', `${path}: the file is empty; a CSV file needs at least a header line of column names`);
      } else {
        for (let f = 0; f < scan.fieldCount; f++) names.push(scan.text(f).trim());
      }
    }
    if (options.schema) {
      columns = [...options.schema];
      if (header && names.length > 0) checkHeader(path, names, columns);
    } else {
      const stats: ColumnStats[] = names.map(() => ({ kind: T_EMPTY, width: 0, nulls: false }));
      let rows = 0;
      for (;;) {
        const r = scan.nextSync();
        if (r === -1) {
          options.signal?.throwIfAborted();
          await scan.more();
          continue;
        }
        if (r === 0) break;
        if (stats.length > 1 && scan.blank()) continue;
        if (stats.length === 0) {
          // no header: the first row fixes the column count
          for (let f = 0; f < scan.fieldCount; f++) {
            names.push(`col${f + 1}`);
            stats.push({ kind: T_EMPTY, width: 0, nulls: false });
          }
        }
        if (scan.fieldCount !== stats.length) throw fieldCountError(path, scan.line, scan.fieldCount, stats.length);
        const buf = scan.buf;
        for (let f = 0; f < stats.length; f++) {
          const s = scan.starts[f];
          const e = scan.ends[f];
          const flag = scan.flags[f];
          const st = stats[f];
          if (s === e && flag === PLAIN) { st.nulls = true; continue; }
          // a quoted empty field is an empty string; quoted numbers still count as numbers
          const kind = flag === ESCAPED || s === e ? T_STRING : classify(buf, s, e);
          st.kind = widen(st.kind, kind);
          const w = utf8Length(buf, s, e, flag);
          if (w > st.width) st.width = w;
        }
        rows++;
      }
      rowCount = rows;
      columns = names.map((n, i) => inferredColumn(n, stats[i]));
    }
  } finally {
    await handle.close();
  }
  const frozen = columns;
  return {
    name: options.name ?? fileStem(path),
    columns: frozen,
    ...(rowCount !== undefined ? { rowCount } : {}),
    batches: (readOptions: ReadOptions = {}) => readBatches(path, frozen, header, delim, { ...readOptions, signal: readOptions.signal ?? options.signal }),
  };
}

function checkHeader(path: string, names: string[], columns: readonly ColumnInfo[]): void {
  if (names.length !== columns.length) {
    throw new CsvError('csv_bad_schema', `${path}: line 1: the header names ${names.length} columns (${names.join(', ')}) but the schema describes ${columns.length} (${columns.map((c) => c.name).join(', ')}); give a schema that matches the file`);
  }
  names.forEach((n, i) => {
    if (n.toLowerCase() !== columns[i].name.toLowerCase()) {
      throw new CsvError('csv_bad_schema', `${path}: line 1: column ${i + 1} is named "${n}" in the header but "${columns[i].name}" in the schema; give a schema in the file's column order`);
    }
  });
}

function fieldCountError(path: string, line: number, got: number, want: number): CsvError {
  return new CsvError('csv_bad_row', `${path}: line ${line}: ${got} field${got === 1 ? '' : 's'} but the table has ${want} columns; check for an unquoted delimiter or a missing field (quote fields holding "," or line breaks)`);
}

// Builds one column of a batch from field bytes.
interface ColumnBuilder {
  put(row: number, scan: CsvScanner, f: number): void;
  finish(rows: number): ColumnData;
}

async function* readBatches(path: string, columns: readonly ColumnInfo[], header: boolean, delim: number, options: ReadOptions): AsyncGenerator<ColumnBatch> {
  const idx = columnIndexes(columns, options.columns);
  const batchRows = Math.max(1, options.batchRows ?? DEFAULT_BATCH_ROWS);
  const handle = await openCsv(path);
  try {
    const scan = new CsvScanner(handle, path, delim);
    if (header && !(await scan.next())) return;
    const ncol = columns.length;
    const fields = new Int32Array(idx);
    for (;;) {
      const builders = idx.map((i) => makeBuilder(path, columns[i], batchRows));
      let rows = 0;
      let ended = false;
      while (rows < batchRows) {
        const r = scan.nextSync();
        if (r === -1) {
          options.signal?.throwIfAborted();
          await scan.more();
          continue;
        }
        if (r === 0) { ended = true; break; }
        if (ncol > 1 && scan.blank()) continue;
        if (scan.fieldCount !== ncol) throw fieldCountError(path, scan.line, scan.fieldCount, ncol);
        for (let c = 0; c < builders.length; c++) builders[c].put(rows, scan, fields[c]);
        rows++;
      }
      if (rows > 0) yield { rowCount: rows, columns: builders.map((b) => b.finish(rows)) };
      if (ended) return;
    }
  } finally {
    await handle.close();
  }
}

function valueError(path: string, scan: CsvScanner, f: number, info: ColumnInfo, what: string): CsvError {
  let text = scan.text(f);
  if (text.length > 40) text = `${text.slice(0, 40)}...`;
  return new CsvError('csv_bad_value', `${path}: line ${scan.line}: column ${info.name} (field ${f + 1}): "${text}" ${what}; fix the value or read the file with a schema that types this column as string`);
}

const INT_RANGES: Partial<Record<ColumnType, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};

// Parses an integer of at most 15 digits from bytes; NaN when the bytes are not one.
function parseSmallInt(buf: Buffer, s: number, e: number): number {
  let i = s;
  let negative = false;
  if (buf[i] === 45) { negative = true; i++; } else if (buf[i] === 43) i++;
  if (i === e || e - i > 15) return NaN;
  let v = 0;
  for (; i < e; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

const POW10_EXACT = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

// Parses a decimal number from bytes, correctly rounded: exact integer arithmetic for up to
// 15 significant digits and a power of ten up to 22 (one rounding), Number() otherwise.
// NaN (with `ok` false) when the bytes are not a number.
function parseFloatBytes(buf: Buffer, s: number, e: number): number {
  let i = s;
  let negative = false;
  if (buf[i] === 45) { negative = true; i++; } else if (buf[i] === 43) i++;
  let mant = 0;
  let digits = 0;
  let scale = 0;
  let any = false;
  while (i < e) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) break;
    any = true;
    if (mant !== 0 || d !== 0) digits++;
    mant = mant * 10 + d;
    i++;
  }
  if (i < e && buf[i] === 46) {
    i++;
    while (i < e) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) break;
      any = true;
      if (mant !== 0 || d !== 0) digits++;
      mant = mant * 10 + d;
      scale--;
      i++;
    }
  }
  if (any && i < e && (buf[i] === 101 || buf[i] === 69)) {
    i++;
    let eneg = false;
    if (i < e && (buf[i] === 45 || buf[i] === 43)) { eneg = buf[i] === 45; i++; }
    let ev = 0;
    const e0 = i;
    while (i < e && buf[i] >= 48 && buf[i] <= 57 && ev < 100000) { ev = ev * 10 + buf[i] - 48; i++; }
    if (i === e0) return slowFloat(buf, s, e);
    scale += eneg ? -ev : ev;
  }
  if (!any || i !== e || digits > 15 || scale < -22 || scale > 22) return slowFloat(buf, s, e);
  const v = scale < 0 ? mant / POW10_EXACT[-scale] : mant * POW10_EXACT[scale];
  return negative ? -v : v;
}

function slowFloat(buf: Buffer, s: number, e: number): number {
  const t = buf.toString('latin1', s, e).trim();
  const lower = t.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === 'inf' || lower === '+inf' || lower === 'infinity' || lower === '+infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  // not a number: NaN, which callers tell from a written "NaN" with isNanText
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return NaN;
  return Number(t);
}

function isNanText(buf: Buffer, s: number, e: number): boolean {
  const t = buf.toString('latin1', s, e).trim().toLowerCase();
  return t === 'nan' || t === '+nan' || t === '-nan';
}

function parseBool(buf: Buffer, s: number, e: number): number {
  const len = e - s;
  if (len === 1) {
    const c = buf[s] | 0x20;
    if (c === 116 || buf[s] === 49) return 1; // t, 1
    if (c === 102 || buf[s] === 48) return 0; // f, 0
    return -1;
  }
  const t = buf.toString('latin1', s, e).toLowerCase();
  if (t === 'true') return 1;
  if (t === 'false') return 0;
  return -1;
}

// 64-bit integer text into the two 32-bit halves of `out[2 * at]`, without making a bigint.
// False when the text is not an integer in range.
function parseInt64Into(buf: Buffer, s: number, e: number, halves: Int32Array, at: number, unsigned: boolean): boolean {
  let i = s;
  let negative = false;
  if (buf[i] === 45) { negative = true; i++; } else if (buf[i] === 43) i++;
  while (i < e - 1 && buf[i] === 48) i++;
  const nd = e - i;
  if (nd === 0 || nd > 20) return false;
  for (let k = i; k < e; k++) if (buf[k] < 48 || buf[k] > 57) return false;
  if (nd >= 19) {
    // near the limits: let BigInt decide
    const b = BigInt(buf.toString('latin1', s, e));
    if (unsigned ? b < 0n || b > 0xffffffffffffffffn : b < -(2n ** 63n) || b >= 2n ** 63n) return false;
    const u = BigInt.asUintN(64, b);
    halves[2 * at] = Number(u & 0xffffffffn) | 0;
    halves[2 * at + 1] = Number(u >> 32n) | 0;
    return true;
  }
  if (negative && unsigned) {
    // only -0 is allowed
    for (let k = i; k < e; k++) if (buf[k] !== 48) return false;
  }
  // value = high·1e9 + low, then into base 2^32 with exact double steps
  let high = 0;
  let low = 0;
  const split = e - 9;
  for (let k = i; k < e; k++) {
    if (k < split) high = high * 10 + (buf[k] - 48);
    else low = low * 10 + (buf[k] - 48);
  }
  const hh = Math.floor(high / 65536);
  const hl = high - hh * 65536;
  const A = hh * 1e9;
  const B = hl * 1e9 + low;
  const aHigh = Math.floor(A / 65536);
  const aLow = A - aHigh * 65536;
  const C = aLow * 65536 + B;
  const cHigh = Math.floor(C / 4294967296);
  let lo = C - cHigh * 4294967296;
  let hi = aHigh + cHigh;
  if (negative) {
    lo = (~lo + 1) >>> 0;
    hi = ~hi + (lo === 0 ? 1 : 0);
  }
  halves[2 * at] = lo | 0;
  halves[2 * at + 1] = hi | 0;
  return true;
}

function makeBuilder(path: string, info: ColumnInfo, rows: number): ColumnBuilder {
  if ((info.variable && info.type !== 'string') || info.shape.length > 0 || slotsPerElement(info.type) === 2 || info.type === 'bit') return arrayBuilder(path, info);
  const type = info.type;
  let valid: Uint8Array | undefined;
  const markNull = (row: number) => {
    if (!valid) { valid = new Uint8Array(rows); valid.fill(1); }
    valid[row] = 0;
  };
  const finishValid = (n: number) => (valid ? { valid: valid.subarray(0, n) } : {});
  if (type === 'string') {
    const values: string[] = [];
    return {
      put(row, scan, f) {
        if (scan.flags[f] === PLAIN && scan.starts[f] === scan.ends[f]) { markNull(row); values.push(''); return; }
        values.push(scan.text(f));
      },
      finish: (n) => ({ values, ...finishValid(n) }),
    };
  }
  if (type === 'boolean') {
    const values = new Uint8Array(rows);
    return {
      put(row, scan, f) {
        const s = scan.starts[f];
        const e = scan.ends[f];
        if (s === e) { markNull(row); return; }
        const b = parseBool(scan.buf, s, e);
        if (b < 0) throw valueError(path, scan, f, info, 'is not a boolean (true/false, t/f or 1/0)');
        values[row] = b;
      },
      finish: (n) => ({ values: values.subarray(0, n), ...finishValid(n) }),
    };
  }
  if (type === 'float32' || type === 'float64') {
    const values = type === 'float32' ? new Float32Array(rows) : new Float64Array(rows);
    return {
      put(row, scan, f) {
        const s = scan.starts[f];
        const e = scan.ends[f];
        if (s === e) { markNull(row); values[row] = NaN; return; }
        const v = parseFloatBytes(scan.buf, s, e);
        if (v !== v && !isNanText(scan.buf, s, e)) throw valueError(path, scan, f, info, `is not a number (${type})`);
        values[row] = v;
      },
      finish: (n) => ({ values: values.subarray(0, n), ...finishValid(n) }),
    };
  }
  if (isBigIntType(type)) {
    const values = type === 'int64' ? new BigInt64Array(rows) : new BigUint64Array(rows);
    const halves = new Int32Array(values.buffer);
    const unsigned = type === 'uint64';
    const nullBig = info.nullValue !== undefined ? BigInt(info.nullValue) : undefined;
    return {
      put(row, scan, f) {
        const s = scan.starts[f];
        const e = scan.ends[f];
        if (s === e) {
          markNull(row);
          if (nullBig !== undefined) values[row] = nullBig;
          return;
        }
        if (!parseInt64Into(scan.buf, s, e, halves, row, unsigned)) throw valueError(path, scan, f, info, `is not an integer that fits ${type}`);
      },
      finish: (n) => ({ values: values.subarray(0, n), ...finishValid(n) }),
    };
  }
  const range = INT_RANGES[type];
  if (range) {
    const Ctor = { int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array }[type as 'int8'];
    const values = new Ctor(rows) as NumericArray as Int32Array;
    const [min, max] = range;
    const nullNumber = info.nullValue !== undefined ? Number(info.nullValue) : 0;
    return {
      put(row, scan, f) {
        const s = scan.starts[f];
        const e = scan.ends[f];
        if (s === e) { markNull(row); values[row] = nullNumber; return; }
        const v = parseSmallInt(scan.buf, s, e);
        if (!(v >= min && v <= max)) throw valueError(path, scan, f, info, v === v ? `is out of the range of ${type} (${min} to ${max})` : `is not an integer (${type})`);
        values[row] = v;
      },
      finish: (n) => ({ values: values.subarray(0, n), ...finishValid(n) }),
    };
  }
  throw new CsvError('csv_bad_schema', `${path}: column ${info.name}: type ${type} cannot be read from CSV`);
}

// Arrays, complex numbers and bits: "1 2 3" (space-separated) or "(1, 2, 3)" (as STILTS writes).
function arrayBuilder(path: string, info: ColumnInfo): ColumnBuilder {
  const type = info.type;
  const slots = slotsPerElement(type);
  const fixed = !info.variable;
  const per = fixed ? elementsPerRow(info) : -1;
  const values: (number | bigint | string)[] = [];
  const valid: number[] = [];
  const offsets: number[] = [0];
  let anyNull = false;
  return {
    put(_row, scan, f) {
      const raw = scan.text(f).trim();
      const empty = raw === '' && scan.flags[f] === PLAIN;
      let parts: string[];
      if (empty) parts = [];
      else {
        let inner = raw;
        if (inner.startsWith('(') && inner.endsWith(')')) inner = inner.slice(1, -1);
        parts = inner.split(/[\s,]+/).filter((p) => p !== '');
      }
      const count = parts.length / slots;
      if (fixed && !empty && count !== per) {
        throw valueError(path, scan, f, info, `has ${count} elements but the column holds ${per}`);
      }
      if (!Number.isInteger(count)) throw valueError(path, scan, f, info, 'holds an odd number of parts for complex values');
      const n = empty && fixed ? per : count;
      for (let k = 0; k < n; k++) {
        const p = empty ? undefined : parts.slice(k * slots, (k + 1) * slots);
        let ok = true;
        if (p === undefined || p[0] === 'null') {
          anyNull = true;
          valid.push(0);
          for (let sl = 0; sl < slots; sl++) values.push(nullElement(info));
          continue;
        }
        for (const t of p) {
          const v = parseElement(type, t);
          if (v === undefined) ok = false;
          else values.push(v);
        }
        if (!ok) throw valueError(path, scan, f, info, `element ${k + 1} ("${p.join(' ')}") is not a ${type}`);
        valid.push(1);
      }
      offsets.push(values.length / slots);
    },
    finish(rows) {
      const Ctor = arrayTypeOf(type);
      const data = Ctor ? new Ctor(values.length) : values.map(String);
      if (Ctor) for (let i = 0; i < values.length; i++) (data as unknown as (number | bigint)[])[i] = values[i] as never;
      return {
        values: data as ColumnData['values'],
        ...(anyNull ? { valid: Uint8Array.from(valid) } : {}),
        ...(fixed ? {} : { offsets: Int32Array.from(offsets.slice(0, rows + 1)) }),
      };
    },
  };
}

function nullElement(info: ColumnInfo): number | bigint | string {
  switch (info.type) {
    case 'float32': case 'float64': case 'complex64': case 'complex128': return NaN;
    case 'int64': case 'uint64': return info.nullValue !== undefined ? BigInt(info.nullValue) : 0n;
    case 'string': return '';
    default: return info.nullValue !== undefined ? Number(info.nullValue) : 0;
  }
}

function parseElement(type: ColumnType, t: string): number | bigint | string | undefined {
  switch (type) {
    case 'string': return t;
    case 'boolean': case 'bit': {
      const l = t.toLowerCase();
      if (l === 'true' || l === 't' || l === '1') return 1;
      if (l === 'false' || l === 'f' || l === '0') return 0;
      return undefined;
    }
    case 'float32': case 'float64': case 'complex64': case 'complex128': {
      const b = Buffer.from(t, 'latin1');
      const v = parseFloatBytes(b, 0, b.length);
      return v === v || isNanText(b, 0, b.length) ? v : undefined;
    }
    case 'int64': case 'uint64': {
      if (!/^[+-]?\d+$/.test(t)) return undefined;
      const b = BigInt(t);
      if (type === 'int64' ? b < -(2n ** 63n) || b >= 2n ** 63n : b < 0n || b > 0xffffffffffffffffn) return undefined;
      return b;
    }
    default: {
      if (!/^[+-]?\d+$/.test(t)) return undefined;
      const v = Number(t);
      const r = INT_RANGES[type];
      return r && v >= r[0] && v <= r[1] ? v : undefined;
    }
  }
}
