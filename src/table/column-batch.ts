import {
  arrayTypeOf, elementsPerRow, isBigIntType, slotsPerElement,
  type ColumnInfo,
} from './column-info.ts';
import { TableError } from './errors.ts';

/** A typed array of any kind a column may use. */
export type NumericArray =
  | Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

/** The values of one column in a batch: a typed array, or strings for string columns. */
export type ColumnValues = NumericArray | string[];

/**
 * The values of one column for the rows of a batch.
 *
 * - Fixed-shape columns: `values` holds `rowCount * elementsPerRow(info) * slotsPerElement`
 *   entries, row after row (complex numbers as real, imaginary pairs).
 * - Variable-length columns: `offsets` (length `rowCount + 1`) gives each row's first element
 *   in `values`. Variable-length string columns hold one string per row and no offsets.
 * - `valid`, when present, has one byte per element: 0 marks a null. Float nulls are also NaN;
 *   integer nulls keep the column's `nullValue` in `values`.
 */
export interface ColumnData {
  readonly values: ColumnValues;
  readonly valid?: Uint8Array;
  readonly offsets?: Int32Array;
}

/** A run of rows of a table, held column by column. */
export interface ColumnBatch {
  readonly rowCount: number;
  readonly columns: readonly ColumnData[];
}

/** Allocates zeroed storage for `rows` rows of a fixed-shape column. */
export function allocColumn(info: ColumnInfo, rows: number): ColumnData {
  const n = rows * elementsPerRow(info);
  const Ctor = arrayTypeOf(info.type);
  if (Ctor === undefined) return { values: new Array<string>(n).fill('') };
  return { values: new Ctor(n * slotsPerElement(info.type)) };
}

/** Number of elements held for row `row` of a column. */
export function rowElementCount(info: ColumnInfo, data: ColumnData, row: number): number {
  if (data.offsets) return data.offsets[row + 1] - data.offsets[row];
  if (info.variable && info.type === 'string') return 1;
  return elementsPerRow(info);
}

/** Checks that a batch's columns agree with the descriptions and the row count. */
export function checkBatch(infos: readonly ColumnInfo[], batch: ColumnBatch): void {
  if (batch.columns.length !== infos.length) {
    throw new TableError('table_batch_mismatch', `batch has ${batch.columns.length} columns but the table describes ${infos.length}`);
  }
  infos.forEach((info, i) => {
    const data = batch.columns[i];
    const slots = slotsPerElement(info.type);
    let expected: number;
    if (info.variable && info.type !== 'string') {
      if (!data.offsets || data.offsets.length !== batch.rowCount + 1) {
        throw new TableError('table_batch_mismatch', `column "${info.name}": variable-length column needs ${batch.rowCount + 1} offsets`);
      }
      expected = data.offsets[batch.rowCount] * slots;
    } else {
      expected = batch.rowCount * (info.variable ? 1 : elementsPerRow(info)) * slots;
    }
    if (data.values.length !== expected) {
      throw new TableError('table_batch_mismatch', `column "${info.name}": ${data.values.length} values for ${batch.rowCount} rows; expected ${expected}`);
    }
    const isStringArray = Array.isArray(data.values);
    if ((info.type === 'string') !== isStringArray) {
      throw new TableError('table_batch_mismatch', `column "${info.name}" of type ${info.type} holds ${isStringArray ? 'strings' : 'a typed array'}`);
    }
    if (data.valid && data.valid.length !== expected / slots) {
      throw new TableError('table_batch_mismatch', `column "${info.name}": validity has ${data.valid.length} entries; expected ${expected / slots}`);
    }
  });
}

/** The rows `[start, end)` of a batch, sharing memory with it where possible. */
export function sliceBatch(infos: readonly ColumnInfo[], batch: ColumnBatch, start: number, end: number): ColumnBatch {
  end = Math.min(end, batch.rowCount);
  start = Math.max(0, Math.min(start, end));
  const columns = batch.columns.map((data, i) => sliceColumn(infos[i], data, start, end));
  return { rowCount: end - start, columns };
}

function sliceColumn(info: ColumnInfo, data: ColumnData, start: number, end: number): ColumnData {
  const slots = slotsPerElement(info.type);
  let e0: number;
  let e1: number;
  let offsets: Int32Array | undefined;
  if (data.offsets) {
    e0 = data.offsets[start];
    e1 = data.offsets[end];
    offsets = new Int32Array(end - start + 1);
    for (let i = 0; i <= end - start; i++) offsets[i] = data.offsets[start + i] - e0;
  } else {
    const per = info.variable ? 1 : elementsPerRow(info);
    e0 = start * per;
    e1 = end * per;
  }
  const values = Array.isArray(data.values)
    ? data.values.slice(e0, e1)
    : (data.values as NumericArray).subarray(e0 * slots, e1 * slots);
  const valid = data.valid ? data.valid.subarray(e0, e1) : undefined;
  return { values, ...(valid ? { valid } : {}), ...(offsets ? { offsets } : {}) };
}

/** Joins batches of the same columns into one. */
export function concatBatches(infos: readonly ColumnInfo[], batches: readonly ColumnBatch[]): ColumnBatch {
  if (batches.length === 1) return batches[0];
  const rowCount = batches.reduce((n, b) => n + b.rowCount, 0);
  const columns = infos.map((info, c) => {
    const parts = batches.map((b) => b.columns[c]);
    let values: ColumnValues;
    if (info.type === 'string') {
      values = ([] as string[]).concat(...parts.map((p) => p.values as string[]));
    } else {
      const total = parts.reduce((n, p) => n + p.values.length, 0);
      const Ctor = arrayTypeOf(info.type)!;
      const out = new Ctor(total);
      let at = 0;
      for (const p of parts) {
        (out as Uint8Array).set(p.values as Uint8Array, at);
        at += p.values.length;
      }
      values = out;
    }
    let valid: Uint8Array | undefined;
    if (parts.some((p) => p.valid)) {
      const slots = slotsPerElement(info.type);
      valid = new Uint8Array(parts.reduce((n, p) => n + p.values.length / slots, 0));
      let at = 0;
      for (const p of parts) {
        const n = p.values.length / slots;
        if (p.valid) valid.set(p.valid, at);
        else valid.fill(1, at, at + n);
        at += n;
      }
    }
    let offsets: Int32Array | undefined;
    if (parts[0]?.offsets) {
      offsets = new Int32Array(rowCount + 1);
      let row = 0;
      let base = 0;
      for (const p of parts) {
        const o = p.offsets!;
        for (let i = 0; i < o.length - 1; i++) offsets[row++] = base + o[i];
        base += o[o.length - 1];
      }
      offsets[row] = base;
    }
    return { values, ...(valid ? { valid } : {}), ...(offsets ? { offsets } : {}) };
  });
  return { rowCount, columns };
}

/** A JavaScript value for one cell (scalar, or array for array cells; null for nulls). Not for hot paths. */
export type CellValue = number | bigint | boolean | string | null | CellValue[];

/** Reads one cell as a plain value, for display, tests and small tables. */
export function getCell(info: ColumnInfo, data: ColumnData, row: number): CellValue {
  const slots = slotsPerElement(info.type);
  let first: number;
  let count: number;
  if (data.offsets) {
    first = data.offsets[row];
    count = data.offsets[row + 1] - first;
  } else if (info.variable && info.type === 'string') {
    first = row;
    count = 1;
  } else {
    count = elementsPerRow(info);
    first = row * count;
  }
  const element = (e: number): CellValue => {
    if (data.valid && data.valid[e] === 0) return null;
    const v = data.values;
    if (Array.isArray(v)) return v[e];
    if (info.type === 'boolean') return v[e] !== 0;
    if (slots === 2) return [v[2 * e] as number, v[2 * e + 1] as number];
    return v[e];
  };
  const scalar = info.shape.length === 0 && !info.variable;
  if (scalar || (info.variable && info.type === 'string')) return element(first);
  const out: CellValue[] = [];
  for (let i = 0; i < count; i++) out.push(element(first + i));
  return out;
}

/** True when the column's values are bigints (64-bit integers). */
export function holdsBigInts(info: ColumnInfo): boolean {
  return isBigIntType(info.type);
}
