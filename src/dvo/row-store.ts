// Rows of a table held as records: each row's values next to each other, at the byte offsets
// of the FITS row, in the machine's byte order. For a table whose rows are read and updated
// one at a time in no particular order (SecFilt during an ingest: ~20 values of one row per
// measure), a row is two or three cache lines instead of one line per column.
import { elementsPerRow, type ColumnInfo } from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { DvoError } from './errors.ts';

const BYTES: Readonly<Record<string, number>> = {
  uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8,
};

// Rows given the template at a time, ahead of use.
const FILL_AHEAD = 256;

/** A table's rows as records in one buffer, `length` rows used of `capacity`. */
export class RowStore {
  readonly columns: readonly ColumnInfo[];
  readonly rowBytes: number;
  length = 0;
  /** Byte offset of each column in a row. */
  readonly offsets: readonly number[];
  private readonly index: Map<string, number>;
  private readonly template: Uint8Array;
  private cap: number;
  // Rows [length, filled) already hold the template (written ahead in blocks).
  private filled = 0;
  u8!: Uint8Array;
  i16!: Int16Array;
  u16!: Uint16Array;
  i32!: Int32Array;
  u32!: Uint32Array;
  f32!: Float32Array;
  /** Only for columns at offsets that are multiples of 8 in rows of a multiple of 8 bytes. */
  f64!: Float64Array;

  /** `defaults`: values of new rows, by column name (others are zero). Columns must keep 4-byte values on 4-byte offsets. */
  constructor(columns: readonly ColumnInfo[], capacity = 16, defaults: Readonly<Record<string, number>> = {}) {
    this.columns = columns;
    const offsets: number[] = [];
    let at = 0;
    for (const c of columns) {
      const bytes = BYTES[c.type];
      if (bytes === undefined || elementsPerRow(c) !== 1 || at % Math.min(4, bytes) !== 0) {
        throw new DvoError('dvo_internal', `column ${c.name}: a row store holds single numbers on aligned offsets only`);
      }
      offsets.push(at);
      at += bytes;
    }
    if (at % 4 !== 0) throw new DvoError('dvo_internal', `rows of ${at} bytes are not whole words`);
    this.rowBytes = at;
    this.offsets = offsets;
    this.index = new Map(columns.map((c, i) => [c.name, i]));
    // The defaults row, made through a one-row column store (the same values a ColumnStore gives).
    const one = new ColumnStore(columns, 1, defaults);
    one.grow(1);
    this.template = new Uint8Array(at);
    columns.forEach((c, i) => {
      const v = one.col(c.name);
      this.template.set(new Uint8Array(v.buffer, v.byteOffset, BYTES[c.type]), offsets[i]);
    });
    this.cap = Math.max(1, capacity);
    this.allocate(this.cap);
  }

  private allocate(cap: number): void {
    const buf = new ArrayBuffer(cap * this.rowBytes);
    const u8 = new Uint8Array(buf);
    if (this.u8) u8.set(this.u8.subarray(0, this.length * this.rowBytes));
    this.filled = this.length;
    this.u8 = u8;
    this.i16 = new Int16Array(buf);
    this.u16 = new Uint16Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.f32 = new Float32Array(buf);
    this.f64 = new Float64Array(buf, 0, Math.floor(buf.byteLength / 8));
  }

  /** Rows that fit without growing. */
  get capacity(): number {
    return this.cap;
  }

  /** Byte offset of a column in a row. */
  offsetOf(name: string): number {
    const i = this.index.get(name);
    if (i === undefined) throw new DvoError('dvo_internal', `no column ${name} in this table`);
    return this.offsets[i];
  }

  /** Makes room for `rows` rows (the views are replaced: fetch them again after). */
  reserve(rows: number): void {
    if (rows <= this.cap) return;
    this.cap = rows;
    this.allocate(rows);
  }

  /** Adds `n` rows holding the defaults; returns the first new row. */
  grow(n: number): number {
    const first = this.length;
    if (first + n > this.cap) {
      let cap = this.cap;
      while (cap < first + n) cap *= 2;
      this.reserve(cap);
    }
    if (first + n > this.filled) this.fillAhead(first + n);
    this.length += n;
    return first;
  }

  // Writes the template into rows [filled, at least `to`), a block of rows ahead: one row
  // copied, then the copies doubled (memory speed, where rows added one at a time cost a loop
  // over the row's words each).
  private fillAhead(to: number): void {
    const end = Math.min(this.cap, Math.max(to, this.filled + FILL_AHEAD));
    const rb = this.rowBytes;
    const from = this.filled * rb;
    const stop = end * rb;
    this.u8.set(this.template, from);
    for (let have = rb; from + have < stop;) {
      const n = Math.min(have, stop - from - have);
      this.u8.copyWithin(from + have, from, from + n);
      have += n;
    }
    this.filled = end;
  }

  /** Appends the rows of a column store with the same columns. */
  appendColumns(src: ColumnStore): void {
    const first = this.grow(src.length);
    const n = src.length;
    const dv = this.u8;
    this.columns.forEach((c, i) => {
      const bytes = BYTES[c.type];
      const v = src.col(c.name);
      const from = new Uint8Array(v.buffer, v.byteOffset, n * bytes);
      const off = first * this.rowBytes + this.offsets[i];
      for (let r = 0; r < n; r++) for (let k = 0; k < bytes; k++) dv[off + r * this.rowBytes + k] = from[r * bytes + k];
    });
  }

  /** Rows `rows` as a column store (for the general writer). */
  toColumnStore(rows: Int32Array): ColumnStore {
    const out = new ColumnStore(this.columns, Math.max(1, rows.length));
    out.grow(rows.length);
    this.columns.forEach((c, i) => {
      const bytes = BYTES[c.type];
      const v = out.col(c.name);
      const to = new Uint8Array(v.buffer, v.byteOffset, rows.length * bytes);
      const off = this.offsets[i];
      for (let r = 0; r < rows.length; r++) {
        const at = rows[r] * this.rowBytes + off;
        for (let k = 0; k < bytes; k++) to[r * bytes + k] = this.u8[at + k];
      }
    });
    return out;
  }
}
