// Growable column storage for one DVO table held in memory: one typed array per column,
// with spare capacity so rows can be appended without a copy per row.
import {
  allocColumn, arrayTypeOf, elementsPerRow,
  type ColumnBatch, type ColumnInfo, type ColumnValues, type NumericArray,
} from '../table/index.ts';
import { DvoError } from './errors.ts';

// Any column's values indexed alike (typed arrays and string arrays), for generic copies.
type Slots = Record<number, number | bigint | string>;

/** Rows of defaults written ahead at a time. */
const FILL_CHUNK = 1024;

/** A table's columns in memory, `length` rows used of `capacity`. */
export class ColumnStore {
  readonly columns: readonly ColumnInfo[];
  length = 0;
  private values: ColumnValues[];
  private readonly index: Map<string, number>;
  private readonly per: number[];
  private cap: number;
  private readonly defaults: readonly [number, number][];
  // Rows below this hold data or the defaults; rows past it are still zero.
  private filled = 0;

  /** `defaults`: values of new rows, by column name (others are zero). */
  constructor(columns: readonly ColumnInfo[], capacity = 16, defaults: Readonly<Record<string, number>> = {}) {
    this.columns = columns;
    this.cap = Math.max(1, capacity);
    this.per = columns.map((c) => elementsPerRow(c));
    this.values = columns.map((c) => allocColumn(c, this.cap).values);
    this.index = new Map(columns.map((c, i) => [c.name, i]));
    this.defaults = Object.entries(defaults).map(([name, v]) => {
      const i = this.index.get(name);
      if (i === undefined) throw new DvoError('dvo_internal', `no column ${name} for a default`);
      return [i, v];
    });
  }

  // Defaults are written a chunk of rows ahead of `length` (a fill per row would cost a call
  // per column), never over the whole spare capacity, which is often never used.
  private fillDefaults(toRow: number): void {
    if (toRow <= this.filled) return;
    const end = Math.min(this.cap, Math.max(toRow, this.filled + FILL_CHUNK));
    for (const [i, v] of this.defaults) (this.values[i] as Float64Array).fill(v, this.filled * this.per[i], end * this.per[i]);
    this.filled = end;
  }

  /** Rows that fit without growing. */
  get capacity(): number {
    return this.cap;
  }

  /** The values of a column (the whole capacity; rows past `length` are spare). */
  col<T extends ColumnValues = NumericArray>(name: string): T {
    const i = this.index.get(name);
    if (i === undefined) throw new DvoError('dvo_internal', `no column ${name} in this table`);
    return this.values[i] as T;
  }

  /** Float64 column values (throws if the column is of another type). */
  f64(name: string): Float64Array { return this.typed(name, Float64Array); }
  /** Float32 column values. */
  f32(name: string): Float32Array { return this.typed(name, Float32Array); }
  /** Int32 column values. */
  i32(name: string): Int32Array { return this.typed(name, Int32Array); }
  /** Uint32 column values. */
  u32(name: string): Uint32Array { return this.typed(name, Uint32Array); }
  /** Int16 column values. */
  i16(name: string): Int16Array { return this.typed(name, Int16Array); }
  /** Uint16 column values. */
  u16(name: string): Uint16Array { return this.typed(name, Uint16Array); }
  /** Uint8 column values. */
  u8(name: string): Uint8Array { return this.typed(name, Uint8Array); }
  /** Uint64 column values. */
  u64(name: string): BigUint64Array { return this.typed(name, BigUint64Array); }
  /** String column values. */
  str(name: string): string[] {
    const v = this.col<ColumnValues>(name);
    if (!Array.isArray(v)) throw new DvoError('dvo_internal', `column ${name} does not hold strings`);
    return v;
  }

  private typed<T>(name: string, ctor: abstract new (...args: never[]) => T): T {
    const v = this.col<ColumnValues>(name);
    if (!(v instanceof ctor)) throw new DvoError('dvo_internal', `column ${name} is not a ${ctor.name}`);
    return v as T;
  }

  /** Makes room for `rows` rows in all (keeps the values); column arrays may be replaced, so fetch them again after. */
  reserve(rows: number): void {
    this.resize(rows, rows);
  }

  // Capacity `cap` when `rows` do not fit: exactly what was asked by reserve, doubling as rows
  // are added one by one.
  private resize(rows: number, cap: number): void {
    if (rows <= this.cap) return;
    this.values = this.values.map((v, i) => {
      const info = this.columns[i];
      const n = cap * this.per[i];
      if (Array.isArray(v)) {
        const out = new Array<string>(n).fill('');
        for (let k = 0; k < v.length; k++) out[k] = v[k];
        return out;
      }
      const Ctor = arrayTypeOf(info.type)!;
      const out = new Ctor(n);
      (out as Uint8Array).set(v as Uint8Array);
      return out;
    });
    this.cap = cap;
  }

  /** Adds `n` rows holding the defaults at the end; returns the first new row. */
  grow(n: number): number {
    const first = this.extend(n);
    this.fillDefaults(this.length);
    return first;
  }

  // Adds `n` rows that the caller overwrites in every column (no defaults written).
  private extend(n: number): number {
    const first = this.length;
    let cap = this.cap;
    while (cap < first + n) cap *= 2;
    this.resize(first + n, cap);
    this.length += n;
    return first;
  }

  // Rows [from, length) were written in every column by the caller.
  private overwritten(from: number): void {
    if (from <= this.filled && this.length > this.filled) this.filled = this.length;
  }

  /** Appends the rows of a batch with the same columns. */
  appendBatch(batch: ColumnBatch): void {
    if (batch.columns.length !== this.columns.length) {
      throw new DvoError('dvo_internal', `a batch of ${batch.columns.length} columns cannot go into a table of ${this.columns.length}`);
    }
    const first = this.extend(batch.rowCount);
    batch.columns.forEach((data, i) => {
      const dst = this.values[i];
      const at = first * this.per[i];
      if (Array.isArray(dst)) {
        const src = data.values as string[];
        for (let k = 0; k < src.length; k++) dst[at + k] = src[k];
      } else {
        (dst as Uint8Array).set(data.values as Uint8Array, at);
      }
    });
    this.overwritten(first);
  }

  /** Copies row `from` of `src` (same columns) to row `to` of this store. */
  copyRow(src: ColumnStore, from: number, to: number): void {
    for (let i = 0; i < this.values.length; i++) {
      const per = this.per[i];
      const s = src.values[i];
      const d = this.values[i];
      for (let k = 0; k < per; k++) (d as unknown as Slots)[to * per + k] = (s as unknown as Slots)[from * per + k];
    }
  }

  /** Appends the rows `rows` of `src` (same columns), in that order. */
  appendRows(src: ColumnStore, rows: ArrayLike<number>, n = rows.length): void {
    const first = this.extend(n);
    for (let i = 0; i < this.values.length; i++) {
      const per = this.per[i];
      const s = src.values[i];
      const d = this.values[i];
      if (Array.isArray(s)) {
        const ds = d as string[];
        for (let r = 0; r < n; r++) for (let k = 0; k < per; k++) ds[(first + r) * per + k] = s[rows[r] * per + k];
        continue;
      }
      // Copied as unsigned words of the element's width: one loop per width sees one array
      // type (fast), and float bit patterns (NaN payloads) pass unchanged.
      const sv = s as NumericArray;
      const bytes = sv.BYTES_PER_ELEMENT;
      const words = bytes === 8 ? 2 : 1;
      const view = bytes === 1 ? Uint8Array : bytes === 2 ? Uint16Array : Uint32Array;
      const from = new view(sv.buffer as ArrayBuffer, sv.byteOffset, sv.length * words);
      const dv = d as NumericArray;
      const to = new view(dv.buffer as ArrayBuffer, dv.byteOffset, dv.length * words);
      const w = per * words;
      if (bytes === 1) gather8(from as Uint8Array, to as Uint8Array, rows, n, first, w);
      else if (bytes === 2) gather16(from as Uint16Array, to as Uint16Array, rows, n, first, w);
      else gather32(from as Uint32Array, to as Uint32Array, rows, n, first, w);
    }
    this.overwritten(first);
  }

  /** The rows in use as a batch (sharing memory with the store). */
  toBatch(): ColumnBatch {
    const n = this.length;
    return {
      rowCount: n,
      columns: this.values.map((v, i) => ({
        values: Array.isArray(v) ? v.slice(0, n * this.per[i]) : (v as NumericArray).subarray(0, n * this.per[i]),
      })),
    };
  }
}

function gather8(from: Uint8Array, to: Uint8Array, rows: ArrayLike<number>, n: number, first: number, w: number): void {
  if (w === 1) { for (let r = 0; r < n; r++) to[first + r] = from[rows[r]]; return; }
  for (let r = 0; r < n; r++) for (let k = 0; k < w; k++) to[(first + r) * w + k] = from[rows[r] * w + k];
}

function gather16(from: Uint16Array, to: Uint16Array, rows: ArrayLike<number>, n: number, first: number, w: number): void {
  if (w === 1) { for (let r = 0; r < n; r++) to[first + r] = from[rows[r]]; return; }
  for (let r = 0; r < n; r++) for (let k = 0; k < w; k++) to[(first + r) * w + k] = from[rows[r] * w + k];
}

function gather32(from: Uint32Array, to: Uint32Array, rows: ArrayLike<number>, n: number, first: number, w: number): void {
  if (w === 1) { for (let r = 0; r < n; r++) to[first + r] = from[rows[r]]; return; }
  if (w === 2) {
    for (let r = 0; r < n; r++) {
      const a = rows[r] * 2;
      to[(first + r) * 2] = from[a];
      to[(first + r) * 2 + 1] = from[a + 1];
    }
    return;
  }
  for (let r = 0; r < n; r++) for (let k = 0; k < w; k++) to[(first + r) * w + k] = from[rows[r] * w + k];
}
