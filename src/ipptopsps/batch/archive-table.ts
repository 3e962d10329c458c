// The in-process scratch store: an archive table held as typed-array columns, one part per
// source unit (a chip, a stack, a region), in exactly the schema's shape. This is the role
// the original's scratch MySQL tables played: columns are created from the schema, filled
// from the source, defaults put where the source has nothing, then validated (required
// columns, declared ranges, unique keys, references) before the FITS file is written.
import type { NumericArray } from '../../table/index.ts';
import type { SchemaColumn, TableSchema } from '../../votable/index.ts';
import { IppToPspsError } from '../errors.ts';
import { IdSet, wordsOf } from './id-set.ts';

/** The values of one archive column in a part. */
export type ArchiveColumn = NumericArray | string[];

/** Where a part's rows come from, for messages: the file, the HDU, and how to name a row. */
export interface RowOrigin {
  readonly file: string;
  readonly hdu?: string;
  /** Names row i of the part (e.g. "row 12 (IPP_IDET 11)"); default "row i+1". */
  readonly describeRow?: (i: number) => string;
}

/** The 64-bit default of a column as a bigint (for BigInt64Array columns). */
function bigDefault(c: SchemaColumn): bigint {
  const d = c.defaultValue;
  if (typeof d === 'bigint') return d;
  if (typeof d === 'number' && Number.isInteger(d)) return BigInt(d);
  return 0n;
}

function numDefault(c: SchemaColumn): number {
  const d = c.defaultValue;
  if (typeof d === 'number') return d;
  if (typeof d === 'bigint') return Number(d);
  if (typeof d === 'boolean') return d ? 1 : 0;
  return c.type === 'float32' || c.type === 'float64' ? NaN : 0;
}

/** A column of `rows` elements of the schema's type, every element the column's default. */
function allocFilled(c: SchemaColumn, rows: number): ArchiveColumn {
  const out = allocRaw(c, rows);
  if (Array.isArray(out)) return out.fill(typeof c.defaultValue === 'string' ? c.defaultValue : '');
  if (out instanceof BigInt64Array) return out.fill(bigDefault(c));
  const d = numDefault(c);
  return Object.is(d, 0) ? out : (out as Float64Array).fill(d);
}

/** A column of `rows` elements of the schema's type, for a writer that sets every element. */
function allocRaw(c: SchemaColumn, rows: number): ArchiveColumn {
  switch (c.type) {
    case 'string': return new Array<string>(rows).fill('');
    case 'int64': return new BigInt64Array(rows);
    case 'float64': return new Float64Array(rows);
    case 'float32': return new Float32Array(rows);
    case 'int32': return new Int32Array(rows);
    case 'int16': return new Int16Array(rows);
    case 'uint8': case 'boolean': return new Uint8Array(rows);
    default:
      throw new IppToPspsError('batch_bad_schema', `column ${c.name}: type ${c.type} is not an archive column type`);
  }
}

// Copies for put: a missing value (NaN, ±Infinity: v − v is not 0) gives the default. Float
// sources into float columns (nearly every put) each get their own loop, so that its element
// accesses stay monomorphic; the rest share one.
function copyF32F32(o: Float32Array, v: Float32Array, n: number, def: number): void {
  for (let i = 0; i < n; i++) { const x = v[i]; o[i] = x - x === 0 ? x : def; }
}
function copyF64F32(o: Float32Array, v: Float64Array, n: number, def: number): void {
  for (let i = 0; i < n; i++) { const x = v[i]; o[i] = x - x === 0 ? x : def; }
}
function copyF64F64(o: Float64Array, v: Float64Array, n: number, def: number): void {
  for (let i = 0; i < n; i++) { const x = v[i]; o[i] = x - x === 0 ? x : def; }
}
function copyF32F64(o: Float64Array, v: Float32Array, n: number, def: number): void {
  for (let i = 0; i < n; i++) { const x = v[i]; o[i] = x - x === 0 ? x : def; }
}
function copyAny(o: Float64Array, v: ArrayLike<number>, n: number, def: number): void {
  for (let i = 0; i < n; i++) { const x = v[i]; o[i] = x - x === 0 ? x : def; }
}
function scaleAny(o: Float64Array, v: ArrayLike<number>, n: number, def: number, scale: number, offset: number): void {
  for (let i = 0; i < n; i++) { const x = v[i] * scale + offset; o[i] = x - x === 0 ? x : def; }
}
function productF32(o: Float32Array, a: ArrayLike<number>, b: Float64Array, n: number, def: number, scale: number): void {
  if (scale === 1) for (let i = 0; i < n; i++) { const x = a[i] * b[i]; o[i] = x - x === 0 ? x : def; }
  else for (let i = 0; i < n; i++) { const x = a[i] * b[i] * scale + 0; o[i] = x - x === 0 ? x : def; }
}
function productAny(o: Float64Array, a: ArrayLike<number>, b: Float64Array, n: number, def: number, scale: number): void {
  if (scale === 1) for (let i = 0; i < n; i++) { const x = a[i] * b[i]; o[i] = x - x === 0 ? x : def; }
  else for (let i = 0; i < n; i++) { const x = a[i] * b[i] * scale + 0; o[i] = x - x === 0 ? x : def; }
}

/**
 * The rows of one archive table that come from one source unit. Columns start at their
 * defaults (required float columns at NaN, i.e. missing); the builder puts what the source
 * has; `provided` records which columns it filled, so that a required column the builder
 * cannot fill (a schema change the code does not know) fails clearly. A column with one
 * value in every row (a default, a header value) is held as that one value, `constant`:
 * the writer and validation take it once instead of once per row; `values` expands it.
 */
export class TablePart {
  readonly schema: TableSchema;
  readonly rows: number;
  readonly origin: RowOrigin;
  readonly provided = new Set<string>();
  readonly #index: Map<string, number>;
  // Per column: `rows` values, or (constant) a one-element array of the value of every row.
  readonly #stored: ArchiveColumn[];
  readonly #constant: Uint8Array;
  // 1 where the column is the array the builder put (not a copy): replaced, never written, on a later write.
  readonly #shared: Uint8Array;

  constructor(schema: TableSchema, rows: number, origin: RowOrigin, index?: Map<string, number>, stored?: { columns: ArchiveColumn[]; constant: Uint8Array }) {
    this.schema = schema;
    this.rows = rows;
    this.origin = origin;
    this.#index = index ?? columnIndex(schema);
    this.#stored = stored?.columns ?? schema.columns.map((c) => allocFilled(c, 1));
    this.#constant = stored?.constant ?? new Uint8Array(schema.columns.length).fill(1);
    this.#shared = new Uint8Array(schema.columns.length);
  }

  /** True when column k holds one value for every row: {@link stored} is then that one value. */
  isConstant(k: number): boolean {
    return this.#constant[k] === 1;
  }

  /** Column k as held: `rows` values, or one value when {@link isConstant}. */
  stored(k: number): ArchiveColumn {
    return this.#stored[k];
  }

  /** Column k's values, one per row (a constant column is expanded, once). */
  values(k: number): ArchiveColumn {
    if (this.#constant[k] === 1) {
      const one = this.#stored[k];
      const all = allocRaw(this.schema.columns[k], this.rows);
      if (Array.isArray(all)) all.fill((one as string[])[0]);
      else (all as Float64Array).fill((one as Float64Array)[0]);
      this.#stored[k] = all;
      this.#constant[k] = 0;
    }
    return this.#stored[k];
  }

  /** Every column's values, in the schema's order (constant columns expanded). */
  get columns(): ArchiveColumn[] {
    return this.schema.columns.map((_, k) => this.values(k));
  }

  /** The column's description and values, or undefined when the schema has no such column. */
  column(name: string): { info: SchemaColumn; values: ArchiveColumn } | undefined {
    const i = this.#index.get(name);
    if (i === undefined) return undefined;
    this.provided.add(name);
    if (this.#shared[i] === 1) {
      // The caller may write into what it gets: not into an array the builder handed over.
      const own = allocRaw(this.schema.columns[i], this.rows) as Float64Array;
      own.set(this.#stored[i] as Float64Array);
      this.#stored[i] = own;
      this.#shared[i] = 0;
    }
    return { info: this.schema.columns[i], values: this.values(i) };
  }

  /** As {@link column}, for a writer about to set every row (its old values are not kept). */
  #target(name: string): { info: SchemaColumn; values: ArchiveColumn } | undefined {
    const i = this.#index.get(name);
    if (i === undefined) return undefined;
    this.provided.add(name);
    const info = this.schema.columns[i];
    if (this.#constant[i] === 1 || this.#shared[i] === 1) {
      this.#stored[i] = allocRaw(info, this.rows);
      this.#constant[i] = 0;
      this.#shared[i] = 0;
    }
    return { info, values: this.#stored[i] };
  }

  /** Makes a column constant: its one value (converted by its type, as every row would be). */
  #constantOf(name: string): { info: SchemaColumn; one: ArchiveColumn } | undefined {
    const i = this.#index.get(name);
    if (i === undefined) return undefined;
    this.provided.add(name);
    const info = this.schema.columns[i];
    const one = allocRaw(info, 1);
    this.#stored[i] = one;
    this.#constant[i] = 1;
    this.#shared[i] = 0;
    return { info, one };
  }

  /**
   * Puts numbers into a column: `values[i] * scale + offset`, where a missing source value
   * (NaN, ±Infinity) gives the column's default (NaN, i.e. missing, for a required float).
   * 64-bit columns take bigints: use {@link putBig}. Does nothing when the schema lacks the column.
   * An array of the column's own type with nothing missing becomes the column itself, without
   * a copy: the caller must not change it afterwards.
   */
  put(name: string, values: ArrayLike<number>, scale = 1, offset = 0): void {
    if (scale === 1 && offset === 0 && this.#adopt(name, values)) return;
    const c = this.#target(name);
    if (!c) return;
    const out = c.values;
    if (Array.isArray(out)) throw new IppToPspsError('batch_bad_schema', `${this.schema.name}.${name} is a string column in the schema; the builder puts numbers there`);
    if (out instanceof BigInt64Array) {
      const def = bigDefault(c.info);
      for (let i = 0; i < this.rows; i++) {
        const v = values[i] * scale + offset;
        out[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : def;
      }
      return;
    }
    const def = numDefault(c.info);
    const n = this.rows;
    if (scale !== 1 || offset !== 0) scaleAny(out as Float64Array, values, n, def, scale, offset);
    else if (out instanceof Float32Array && values instanceof Float32Array) copyF32F32(out, values, n, def);
    else if (out instanceof Float32Array && values instanceof Float64Array) copyF64F32(out, values, n, def);
    else if (out instanceof Float64Array && values instanceof Float64Array) copyF64F64(out, values, n, def);
    else if (out instanceof Float64Array && values instanceof Float32Array) copyF32F64(out, values, n, def);
    else copyAny(out as Float64Array, values, n, def);
  }

  // Takes `values` as the column when that gives the same bytes as copying: the same element
  // type (uint32 read as int32, which is what the copy does), one per row, none missing.
  #adopt(name: string, values: ArrayLike<number>): boolean {
    const i = this.#index.get(name);
    if (i === undefined || values.length !== this.rows) return false;
    const type = this.schema.columns[i].type;
    let taken: ArchiveColumn | undefined;
    if (type === 'float32' && values instanceof Float32Array) taken = firstMissing(values, this.rows) < 0 ? values : undefined;
    else if (type === 'float64' && values instanceof Float64Array) taken = firstMissing(values, this.rows) < 0 ? values : undefined;
    else if (type === 'int32' && (values instanceof Int32Array || values instanceof Uint32Array)) taken = new Int32Array(values.buffer, values.byteOffset, this.rows);
    else if (type === 'int16' && values instanceof Int16Array) taken = values;
    if (!taken) return false;
    this.provided.add(name);
    this.#stored[i] = taken;
    this.#constant[i] = 0;
    this.#shared[i] = 1;
    return true;
  }

  /**
   * Puts `a[i] * b[i]` (then `× scale`, as {@link put} scales) into a numeric column: a
   * per-row unit conversion without an array of products in between.
   */
  putProduct(name: string, a: ArrayLike<number>, b: Float64Array, scale = 1): void {
    const c = this.#target(name);
    if (!c) return;
    const out = c.values;
    if (Array.isArray(out) || out instanceof BigInt64Array) throw new IppToPspsError('batch_bad_schema', `${this.schema.name}.${name} is not a float or integer column in the schema; the builder puts a product there`);
    const def = numDefault(c.info);
    if (out instanceof Float32Array) productF32(out, a, b, this.rows, def, scale);
    else productAny(out as Float64Array, a, b, this.rows, def, scale);
  }

  /** Puts one number into every row (a header value); a missing value gives the default. */
  fill(name: string, value: number | bigint | undefined): void {
    const c = this.#constantOf(name);
    if (!c) return;
    const out = c.one;
    if (Array.isArray(out)) throw new IppToPspsError('batch_bad_schema', `${this.schema.name}.${name} is a string column in the schema; the builder puts a number there`);
    if (out instanceof BigInt64Array) {
      out.fill(value === undefined || (typeof value === 'number' && !Number.isFinite(value)) ? bigDefault(c.info) : BigInt(typeof value === 'number' ? Math.trunc(value) : value));
      return;
    }
    const v = typeof value === 'bigint' ? Number(value) : value;
    (out as Float64Array).fill(v !== undefined && Number.isFinite(v) ? v : numDefault(c.info));
  }

  /** Puts a string into every row; undefined gives the default. */
  fillText(name: string, value: string | undefined): void {
    const i = this.#index.get(name);
    if (i !== undefined && this.schema.columns[i].type !== 'string') throw new IppToPspsError('batch_bad_schema', `${this.schema.name}.${name} is not a string column in the schema; the builder puts text there`);
    const c = this.#constantOf(name);
    if (!c) return;
    (c.one as string[]).fill(value ?? (typeof c.info.defaultValue === 'string' ? c.info.defaultValue : ''));
  }

  /** Puts one string per row. */
  putText(name: string, values: readonly string[]): void {
    const c = this.#target(name);
    if (!c) return;
    if (!Array.isArray(c.values)) throw new IppToPspsError('batch_bad_schema', `${this.schema.name}.${name} is not a string column in the schema; the builder puts text there`);
    for (let i = 0; i < this.rows; i++) c.values[i] = values[i];
  }

  /**
   * Puts 64-bit values into a column (IDs). One value per row into an int64 column: the array
   * becomes the column itself (no copy; the caller must not change it afterwards).
   */
  putBig(name: string, values: BigInt64Array): void {
    const i = this.#index.get(name);
    if (i !== undefined && values.length === this.rows && this.schema.columns[i].type === 'int64') {
      this.provided.add(name);
      this.#stored[i] = values;
      this.#constant[i] = 0;
      this.#shared[i] = 1;
      return;
    }
    const c = values.length >= this.rows ? this.#target(name) : this.column(name);
    if (!c) return;
    if (c.values instanceof BigInt64Array) {
      c.values.set(values.subarray(0, this.rows));
      return;
    }
    if (Array.isArray(c.values)) throw new IppToPspsError('batch_bad_schema', `${this.schema.name}.${name} is a string column in the schema; the builder puts IDs there`);
    const o = c.values as Float64Array;
    for (let i = 0; i < Math.min(this.rows, values.length); i++) o[i] = Number(values[i]);
  }

  /** Names row i in messages. */
  describeRow(i: number): string {
    return this.origin.describeRow ? this.origin.describeRow(i) : `row ${i + 1}`;
  }

  /** Where the part comes from, for messages. */
  where(): string {
    return this.origin.hdu ? `${this.origin.file}: ${this.origin.hdu}` : this.origin.file;
  }

  /** A part holding only the rows where `keep[i]` is 1 (constant columns stay constant). */
  filter(keep: Uint8Array): TablePart {
    let n = 0;
    for (let i = 0; i < this.rows; i++) n += keep[i];
    const map = new Int32Array(n);
    for (let i = 0, k = 0; i < this.rows; i++) if (keep[i]) map[k++] = i;
    const describe = this.origin.describeRow;
    const columns = this.#stored.map((col, k) => {
      if (this.#constant[k] === 1) return col;
      if (Array.isArray(col)) return Array.from(map, (i) => col[i]);
      const o = new (col.constructor as new (n: number) => NumericArray)(n);
      for (let j = 0; j < n; j++) (o as Float64Array)[j] = (col as Float64Array)[map[j]];
      return o;
    });
    const origin = { ...this.origin, describeRow: (i: number) => (describe ? describe(map[i]) : `row ${map[i] + 1}`) };
    const out = new TablePart(this.schema, n, origin, this.#index, { columns, constant: this.#constant.slice() });
    for (const p of this.provided) out.provided.add(p);
    return out;
  }
}

/** Column name → index of a schema's columns. */
export function columnIndex(schema: TableSchema): Map<string, number> {
  return new Map(schema.columns.map((c, i) => [c.name, i]));
}

/** An archive table of a batch: its schema and its parts, in order. */
export interface ArchiveTable {
  readonly schema: TableSchema;
  readonly parts: TablePart[];
}

/** Rows of a table (all parts). */
export function tableRows(t: ArchiveTable): number {
  return t.parts.reduce((n, p) => n + p.rows, 0);
}

/** What validation did without failing: rows dropped (test mode) and duplicate rows discarded. */
export interface ValidationNotes {
  readonly warnings: string[];
}

function fail(code: string, part: TablePart, column: string, row: number, what: string): never {
  throw new IppToPspsError(code, `${part.where()}: table ${part.schema.name}: column ${column}: ${part.describeRow(row)}: ${what}`);
}

/**
 * Rows with a missing required value, per part (1 = missing somewhere). Only floats (NaN)
 * and strings ('') can be missing: integers always hold what the builder put.
 */
export function missingRequired(part: TablePart): { mask: Uint8Array; count: number; first?: { column: string; row: number } } {
  const mask = new Uint8Array(part.rows);
  let count = 0;
  let first: { column: string; row: number } | undefined;
  part.schema.columns.forEach((c, k) => {
    if (!c.required) return;
    const v = part.stored(k);
    // A constant column is missing in every row or in none.
    const at = part.isConstant(k) ? () => 0 : (i: number) => i;
    if (Array.isArray(v)) {
      for (let i = 0; i < part.rows; i++) {
        if (v[at(i)] === '' && !mask[i]) { mask[i] = 1; count++; first ??= { column: c.name, row: i }; }
      }
    } else if (v instanceof Float32Array || v instanceof Float64Array) {
      for (let i = 0; i < part.rows; i++) {
        const x = v[at(i)];
        if (x - x !== 0 && !mask[i]) { mask[i] = 1; count++; first ??= { column: c.name, row: i }; }
      }
    }
  });
  return { mask, count, ...(first ? { first } : {}) };
}

// The first of n values that is missing (NaN, ±Infinity), or −1.
function firstMissing(v: Float32Array | Float64Array, n: number): number {
  for (let i = 0; i < n; i++) { const x = v[i]; if (x - x !== 0) return i; }
  return -1;
}

// The first of n values outside [lo, hi] (bounds excluded when not inclusive; a missing
// bound is ±Infinity, inclusive) that is not the default d, or −1. One copy for floats and
// one for the integer types, so that each loop sees few array kinds.
function firstOutsideFloat(v: Float32Array | Float64Array, n: number, d: number, lo: number, loIn: boolean, hi: number, hiIn: boolean): number {
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (x === d) continue;
    if (loIn ? !(x >= lo) : !(x > lo)) return i;
    if (hiIn ? !(x <= hi) : !(x < hi)) return i;
  }
  return -1;
}
function firstOutsideInt(v: Int32Array | Int16Array | Uint8Array, n: number, d: number, lo: number, loIn: boolean, hi: number, hiIn: boolean): number {
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (x === d) continue;
    if (loIn ? !(x >= lo) : !(x > lo)) return i;
    if (hiIn ? !(x <= hi) : !(x < hi)) return i;
  }
  return -1;
}
// 64-bit values compared as doubles made from their two words (no BigInt per row); exact for
// the declared ranges, which are far below 2^53.
function firstOutsideBig(v: BigInt64Array, n: number, d: number, lo: number, loIn: boolean, hi: number, hiIn: boolean): number {
  const w = wordsOf(v);
  for (let i = 0; i < n; i++) {
    const x = w[2 * i + 1] * 4294967296 + (w[2 * i] >>> 0);
    if (x === d) continue;
    if (loIn ? !(x >= lo) : !(x > lo)) return i;
    if (hiIn ? !(x <= hi) : !(x < hi)) return i;
  }
  return -1;
}

/**
 * Validates a table: every required column filled (provided by the builder, no missing
 * values), every value in its declared range (or the default), the primary key unique
 * (rows identical in every column are duplicates and are discarded, with a warning).
 * Throws IppToPspsError naming file, HDU, table, column and row. A constant column is
 * checked once (a bad value is bad from its first row).
 */
export function validateTable(t: ArchiveTable, notes: ValidationNotes): void {
  const s = t.schema;
  for (const part of t.parts) {
    if (part.rows === 0) continue;
    for (let k = 0; k < s.columns.length; k++) {
      const c = s.columns[k];
      if (c.required && !part.provided.has(c.name)) {
        throw new IppToPspsError('batch_required_column', `${part.where()}: table ${s.name}: column ${c.name} is required by the schema but the batch builder has no source for it; give it a default (VALUES null) in the schema file or fill it in the builder`);
      }
      const v = part.stored(k);
      const n = part.isConstant(k) ? 1 : part.rows;
      if (Array.isArray(v)) {
        if (c.required) for (let i = 0; i < n; i++) if (v[i] === '') fail('batch_missing_value', part, c.name, i, 'the value is missing and the column is required');
        const width = c.width ?? Infinity;
        for (let i = 0; i < n; i++) {
          if (v[i].length > width || !/^[\x20-\x7e]*$/.test(v[i])) fail('batch_bad_value', part, c.name, i, `"${v[i]}" is not printable ASCII of at most ${width} characters`);
        }
        continue;
      }
      const isFloat = v instanceof Float32Array || v instanceof Float64Array;
      if (isFloat && c.required) {
        const i = firstMissing(v, n);
        if (i >= 0) fail('batch_missing_value', part, c.name, i, `the value is missing (${v[i]}) and the column is required`);
      }
      if (c.min === undefined && c.max === undefined) continue;
      const def = c.defaultValue;
      const lo = c.min ?? -Infinity;
      const hi = c.max ?? Infinity;
      const loIn = c.min === undefined || c.minInclusive !== false;
      const hiIn = c.max === undefined || c.maxInclusive !== false;
      let i: number;
      if (v instanceof BigInt64Array) i = firstOutsideBig(v, n, typeof def === 'bigint' ? Number(def) : NaN, lo, loIn, hi, hiIn);
      else if (isFloat) i = firstOutsideFloat(v, n, typeof def === 'number' ? def : NaN, lo, loIn, hi, hiIn);
      else i = firstOutsideInt(v as Int32Array, n, typeof def === 'number' ? def : NaN, lo, loIn, hi, hiIn);
      if (i >= 0) fail('batch_out_of_range', part, c.name, i, `${v[i]} is outside the declared range ${rangeText(c)}`);
    }
  }
  discardDuplicates(t, notes);
}

function rangeText(c: SchemaColumn): string {
  const lo = c.min === undefined ? '(' : `${c.minInclusive === false ? '(' : '['}${c.min}`;
  const hi = c.max === undefined ? ')' : `${c.max}${c.maxInclusive === false ? ')' : ']'}`;
  return `${lo}..${hi}${c.defaultValue !== undefined ? ` (or the default ${String(c.defaultValue)})` : ''}`;
}

function rowsEqual(a: TablePart, i: number, b: TablePart, j: number): boolean {
  for (let k = 0; k < a.schema.columns.length; k++) {
    const x = a.stored(k)[a.isConstant(k) ? 0 : i];
    const y = b.stored(k)[b.isConstant(k) ? 0 : j];
    if (x !== y && !(typeof x === 'number' && typeof y === 'number' && Number.isNaN(x) && Number.isNaN(y))) return false;
  }
  return true;
}

// a < b for int64 values given as words (hi signed, lo unsigned).
function below(ah: number, al: number, bh: number, bl: number): boolean {
  return ah < bh || (ah === bh && (al >>> 0) < (bl >>> 0));
}

/**
 * True when the int64 key column `k` is known to hold distinct values without hashing: each
 * part strictly increasing (IDs made of an image number and a row number are) and the parts'
 * ranges apart. False means "not shown", not "duplicates".
 */
function distinctBySortedness(parts: readonly TablePart[], k: number): boolean {
  const ranges: [number, number, number, number][] = [];
  for (const p of parts) {
    if (p.rows === 0) continue;
    const w = wordsOf(p.values(k) as BigInt64Array);
    for (let i = 1; i < p.rows; i++) if (!below(w[2 * i - 1], w[2 * i - 2], w[2 * i + 1], w[2 * i])) return false;
    ranges.push([w[1], w[0], w[2 * p.rows - 1], w[2 * p.rows - 2]]);
  }
  ranges.sort((a, b) => (below(a[0], a[1], b[0], b[1]) ? -1 : below(b[0], b[1], a[0], a[1]) ? 1 : 0));
  for (let r = 1; r < ranges.length; r++) if (!below(ranges[r - 1][2], ranges[r - 1][3], ranges[r][0], ranges[r][1])) return false;
  return true;
}

const NO_DUPLICATES = { part: new Int32Array(0), row: new Int32Array(0), same: () => false, text: () => '' };

// The key of every row as one sortable value: a single 64-bit or numeric key column sorts as
// a typed array (no object per row); composite keys use text (small tables only).
function keyOrder(t: ArchiveTable): { part: Int32Array; row: Int32Array; same: (a: number, b: number) => boolean; text: (k: number) => string } {
  const s = t.schema;
  const n = tableRows(t);
  const idx = s.primaryKey.map((k) => s.columns.findIndex((c) => c.name === k));
  const cols = (p: number) => idx.map((k) => t.parts[p].values(k));
  const first = t.parts[0]?.values(idx[0]);
  if (idx.length === 1 && first instanceof BigInt64Array) {
    // The usual case, 64-bit IDs all distinct: shown by their order, or by one pass over
    // their words into a hash set.
    if (distinctBySortedness(t.parts, idx[0])) return NO_DUPLICATES;
    const set = new IdSet(n);
    let dup = false;
    for (const p of t.parts) {
      const w = wordsOf(p.values(idx[0]) as BigInt64Array);
      for (let i = 0; i < p.rows && !dup; i++) if (!set.addWords(w[2 * i], w[2 * i + 1])) dup = true;
      if (dup) break;
    }
    if (!dup) return NO_DUPLICATES;
  }
  const part = new Int32Array(n);
  const row = new Int32Array(n);
  let at = 0;
  t.parts.forEach((p, pi) => { for (let i = 0; i < p.rows; i++) { part[at] = pi; row[at] = i; at++; } });
  if (idx.length === 1 && first && !Array.isArray(first)) {
    // Sort (key, position) pairs by key: keys as float64 or int64 in one typed array.
    const big = first instanceof BigInt64Array;
    const keys = big ? new BigInt64Array(n) : new Float64Array(n);
    at = 0;
    for (const p of t.parts) {
      (keys as Float64Array).set(p.values(idx[0]) as Float64Array, at);
      at += p.rows;
    }
    const sorted = keys.slice().sort() as BigInt64Array | Float64Array;
    let dup = false;
    for (let i = 1; i < n && !dup; i++) if (sorted[i] === sorted[i - 1]) dup = true;
    if (!dup) return { part: new Int32Array(0), row: new Int32Array(0), same: () => false, text: () => '' };
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : a - b));
    return {
      part: Int32Array.from(order, (o) => part[o]), row: Int32Array.from(order, (o) => row[o]),
      same: (a, b) => keys[order[a]] === keys[order[b]],
      text: (k) => String(keys[order[k]]),
    };
  }
  const texts = new Array<string>(n);
  at = 0;
  t.parts.forEach((p, pi) => {
    const cs = cols(pi);
    for (let i = 0; i < p.rows; i++) texts[at++] = cs.map((c) => String(c[i])).join('\u0000');
  });
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (texts[a] < texts[b] ? -1 : texts[a] > texts[b] ? 1 : a - b));
  return {
    part: Int32Array.from(order, (o) => part[o]), row: Int32Array.from(order, (o) => row[o]),
    same: (a, b) => texts[order[a]] === texts[order[b]],
    text: (k) => texts[order[k]].split('\u0000').join(','),
  };
}

/**
 * Discards rows whose key repeats an earlier row's and whose every value is the same (the
 * guide's "discarding duplicates"); a repeated key with different values fails the batch.
 */
function discardDuplicates(t: ArchiveTable, notes: ValidationNotes): void {
  const o = keyOrder(t);
  if (o.part.length === 0) return;
  const drop = t.parts.map((p) => new Uint8Array(p.rows));
  let dropped = 0;
  for (let k = 1; k < o.part.length; k++) {
    if (!o.same(k, k - 1)) continue;
    // Compare with the first row of this key.
    let f = k - 1;
    while (f > 0 && o.same(f, f - 1)) f--;
    const a = t.parts[o.part[f]];
    const b = t.parts[o.part[k]];
    if (!rowsEqual(a, o.row[f], b, o.row[k])) {
      throw new IppToPspsError('batch_duplicate_key', `${b.where()}: table ${t.schema.name}: column ${t.schema.primaryKey.join(',')}: ${b.describeRow(o.row[k])}: key ${o.text(k)} repeats ${a.where() === b.where() ? '' : `${a.where()}: `}${a.describeRow(o.row[f])} with different values; the key must be unique`);
    }
    drop[o.part[k]][o.row[k]] = 1;
    dropped++;
  }
  if (dropped === 0) return;
  notes.warnings.push(`table ${t.schema.name}: ${dropped} duplicate row${dropped === 1 ? '' : 's'} discarded (same key, same values)`);
  t.parts.forEach((p, i) => {
    if (!drop[i].some((x) => x === 1)) return;
    const keep = drop[i].map((x) => 1 - x);
    t.parts[i] = p.filter(keep);
  });
}

/** The key set of a table's single key column (for references within the batch). */
export function keySet(t: ArchiveTable, column: string): Set<bigint | number | string> {
  const k = t.schema.columns.findIndex((c) => c.name === column);
  const out = new Set<bigint | number | string>();
  if (k < 0) return out;
  for (const p of t.parts) {
    const v = p.stored(k) as ArrayLike<bigint | number | string>;
    for (let i = 0; i < (p.isConstant(k) ? Math.min(1, p.rows) : p.rows); i++) out.add(v[i]);
  }
  return out;
}

/** The int64 values of column k of the parts (a constant part adds its one value), in one array. */
function gather(parts: readonly TablePart[], k: number): BigInt64Array {
  let n = 0;
  for (const p of parts) n += p.isConstant(k) ? Math.min(1, p.rows) : p.rows;
  const all = new BigInt64Array(n);
  let at = 0;
  for (const p of parts) {
    const m = p.isConstant(k) ? Math.min(1, p.rows) : p.rows;
    all.set((p.stored(k) as BigInt64Array).subarray(0, m), at);
    at += m;
  }
  return all;
}

/** True when an int64 array is sorted (as the ObjectThin stubs' objIDs are): no sort needed. */
function increasing(a: BigInt64Array): boolean {
  const w = wordsOf(a);
  for (let i = 1; i < a.length; i++) if (below(w[2 * i + 1], w[2 * i], w[2 * i - 1], w[2 * i - 2])) return false;
  return true;
}

/** True when every value of column k of `parts` is a value of column tk of `target` (int64 columns). */
function allKnown(parts: readonly TablePart[], k: number, target: readonly TablePart[], tk: number): boolean {
  const keys = gather(target, tk);
  if (!increasing(keys)) keys.sort();
  const values = gather(parts, k).sort();
  const kw = wordsOf(keys);
  const vw = wordsOf(values);
  const m = keys.length;
  let j = 0;
  for (let i = 0; i < values.length; i++) {
    const h = vw[2 * i + 1];
    const l = vw[2 * i];
    while (j < m && below(kw[2 * j + 1], kw[2 * j], h, l)) j++;
    if (j === m || kw[2 * j + 1] !== h || kw[2 * j] !== l) return false;
  }
  return true;
}

/**
 * Checks the references whose target table is in the batch (others are the archive's to
 * check at load): every value of the column is a key of the target. A constant column is
 * looked up once.
 */
export function checkReferences(tables: readonly ArchiveTable[]): void {
  const byName = new Map(tables.map((t) => [t.schema.name, t]));
  for (const t of tables) {
    for (const ref of t.schema.references) {
      const target = byName.get(ref.table);
      if (!target) continue;
      const k = t.schema.columns.findIndex((c) => c.name === ref.column);
      const tk = target.schema.columns.findIndex((c) => c.name === ref.targetColumn);
      if (t.parts.every((p) => p.stored(k) instanceof BigInt64Array) && target.parts.every((p) => p.stored(tk) instanceof BigInt64Array)) {
        // 64-bit IDs: both sides sorted and walked together (no hashing, no BigInt per
        // row); only when a value is missing are the rows searched for the first culprit.
        if (allKnown(t.parts, k, target.parts, tk)) continue;
        const set = new IdSet(target.parts.reduce((n, p) => n + p.rows, 0));
        for (const p of target.parts) {
          const w = wordsOf(p.values(tk) as BigInt64Array);
          for (let i = 0; i < p.rows; i++) set.addWords(w[2 * i], w[2 * i + 1]);
        }
        for (const p of t.parts) {
          const v = p.stored(k) as BigInt64Array;
          const w = wordsOf(v);
          const n = p.isConstant(k) ? Math.min(1, p.rows) : p.rows;
          for (let i = 0; i < n; i++) {
            if (!set.hasWords(w[2 * i], w[2 * i + 1])) fail('batch_bad_reference', p, ref.column, i, `${v[i]} is not a ${ref.table}.${ref.targetColumn} of the batch`);
          }
        }
        continue;
      }
      const keys = keySet(target, ref.targetColumn);
      for (const p of t.parts) {
        const v = p.stored(k) as ArrayLike<bigint | number | string>;
        const n = p.isConstant(k) ? Math.min(1, p.rows) : p.rows;
        for (let i = 0; i < n; i++) {
          if (!keys.has(v[i])) fail('batch_bad_reference', p, ref.column, i, `${String(v[i])} is not a ${ref.table}.${ref.targetColumn} of the batch`);
        }
      }
    }
  }
}
