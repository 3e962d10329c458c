import { concatBatches, checkBatch, sliceBatch, type ColumnBatch } from './column-batch.ts';
import { arrayTypeOf, type ColumnInfo } from './column-info.ts';
import { TableError } from './errors.ts';

/** A table-level value: a FITS header keyword or a VOTable PARAM. */
export interface TableParam {
  readonly name: string;
  readonly value: string | number | boolean | bigint;
  readonly unit?: string;
  readonly description?: string;
}

/** Options when reading a table's batches. */
export interface ReadOptions {
  /** Names of the columns wanted, in the order wanted; all when absent. */
  readonly columns?: readonly string[];
  /** Rows per batch (a hint: a source may choose less). */
  readonly batchRows?: number;
  readonly signal?: AbortSignal;
}

/**
 * A table: column descriptions plus batches of rows that can be read again and again
 * (each call of `batches` starts over), so a table of any size flows in bounded memory.
 */
export interface Table {
  readonly name?: string;
  readonly columns: readonly ColumnInfo[];
  /** Row count when known without reading the data. */
  readonly rowCount?: number;
  readonly params?: readonly TableParam[];
  readonly description?: string;
  batches(options?: ReadOptions): AsyncIterable<ColumnBatch>;
  /**
   * Rows `[start, end)` as a table, for a source that can start there without reading the
   * rows before (see {@link rowRange}). A table made from another one with other rows or
   * columns must not carry it over (spreading the other table would).
   */
  slice?(start: number, end: number): Table;
}

/** Default rows per batch when a reader is not told. */
export const DEFAULT_BATCH_ROWS = 65536;

/** Indexes of the named columns; throws naming the missing column and those that exist. */
export function columnIndexes(columns: readonly ColumnInfo[], names: readonly string[] | undefined): number[] {
  if (!names) return columns.map((_, i) => i);
  return names.map((name) => {
    let i = columns.findIndex((c) => c.name === name);
    if (i < 0) i = columns.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
    if (i < 0) {
      throw new TableError('table_no_such_column', `no column "${name}"; the table has ${columns.map((c) => c.name).join(', ')}`);
    }
    return i;
  });
}

/** A table held in memory as batches (checked against the descriptions). */
export function memoryTable(
  columns: readonly ColumnInfo[],
  batches: readonly ColumnBatch[],
  meta: { name?: string; params?: readonly TableParam[]; description?: string } = {},
): Table {
  for (const b of batches) checkBatch(columns, b);
  const rowCount = batches.reduce((n, b) => n + b.rowCount, 0);
  return {
    ...meta,
    columns,
    rowCount,
    async *batches(options: ReadOptions = {}) {
      const idx = columnIndexes(columns, options.columns);
      const infos = idx.map((i) => columns[i]);
      const size = options.batchRows ?? DEFAULT_BATCH_ROWS;
      for (const b of batches) {
        const picked: ColumnBatch = { rowCount: b.rowCount, columns: idx.map((i) => b.columns[i]) };
        for (let start = 0; start < b.rowCount; start += size) {
          options.signal?.throwIfAborted();
          yield start === 0 && size >= b.rowCount ? picked : sliceBatch(infos, picked, start, start + size);
        }
      }
    },
  };
}

/** The same table with only some columns (in the order named). */
export function selectColumns(table: Table, names: readonly string[]): Table {
  const idx = columnIndexes(table.columns, names);
  const chosen = idx.map((i) => table.columns[i].name);
  return {
    ...(table.name !== undefined ? { name: table.name } : {}),
    ...(table.params ? { params: table.params } : {}),
    ...(table.rowCount !== undefined ? { rowCount: table.rowCount } : {}),
    columns: idx.map((i) => table.columns[i]),
    batches: (options: ReadOptions = {}) => {
      // Names asked of the selection are looked up among the selected columns, in selection order.
      const names = options.columns ? columnIndexes(idx.map((i) => table.columns[i]), options.columns).map((j) => chosen[j]) : chosen;
      return table.batches({ ...options, columns: names });
    },
  };
}

/** Reads a whole table into one batch (for small tables and tests). */
export async function collectTable(table: Table, options: ReadOptions = {}): Promise<ColumnBatch> {
  const idx = columnIndexes(table.columns, options.columns);
  const infos = idx.map((i) => table.columns[i]);
  const parts: ColumnBatch[] = [];
  for await (const b of table.batches(options)) parts.push(b);
  if (parts.length === 0) return concatBatches(infos, [{ rowCount: 0, columns: infos.map((info) => emptyColumn(info)) }]);
  return concatBatches(infos, parts);
}

function emptyColumn(info: ColumnInfo) {
  return info.variable && info.type !== 'string'
    ? { values: emptyValues(info), offsets: new Int32Array(1) }
    : { values: emptyValues(info) };
}

function emptyValues(info: ColumnInfo) {
  if (info.type === 'string') return [] as string[];
  return new (arrayTypeOfOrThrow(info))(0);
}

function arrayTypeOfOrThrow(info: ColumnInfo) {
  const C = arrayTypeOf(info.type);
  if (!C) throw new TableError('table_bad_column', `column "${info.name}": no typed array for ${info.type}`);
  return C;
}

/** Counts a table's rows, reading it if the count is not known. */
export async function countRows(table: Table): Promise<number> {
  if (table.rowCount !== undefined) return table.rowCount;
  let n = 0;
  for await (const b of table.batches({ columns: table.columns.length ? [table.columns[0].name] : [] })) n += b.rowCount;
  return n;
}

/**
 * The rows `[start, end)` of a table, as a table: the table's own `slice` where it has one,
 * else its rows read from the first and those before `start` dropped.
 */
export function rowRange(table: Table, start: number, end: number): Table {
  if (table.slice) return table.slice(start, end);
  const known = table.rowCount;
  return {
    ...(table.name !== undefined ? { name: table.name } : {}),
    ...(table.params ? { params: table.params } : {}),
    columns: table.columns,
    ...(known !== undefined ? { rowCount: Math.max(0, Math.min(end, known) - Math.min(start, known)) } : {}),
    async *batches(options: ReadOptions = {}) {
      const infos = columnIndexes(table.columns, options.columns).map((i) => table.columns[i]);
      let at = 0;
      for await (const b of table.batches(options)) {
        const b0 = at;
        at += b.rowCount;
        if (at <= start) continue;
        if (b0 >= end) break;
        yield b0 >= start && at <= end ? b : sliceBatch(infos, b, Math.max(0, start - b0), Math.min(b.rowCount, end - b0));
        if (at >= end) break;
      }
    },
  };
}
