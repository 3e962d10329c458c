// The in-memory table model every format reads into and writes from.
export {
  columnInfo, elementsPerRow, slotsPerElement, isIntegerType, isBigIntType, isFloatType,
  arrayTypeOf, COLUMN_TYPES,
} from './column-info.ts';
export type { ColumnInfo, ColumnType, ColumnStorage } from './column-info.ts';
export {
  allocColumn, checkBatch, sliceBatch, concatBatches, getCell, rowElementCount, holdsBigInts,
} from './column-batch.ts';
export type { ColumnBatch, ColumnData, ColumnValues, NumericArray, CellValue } from './column-batch.ts';
export {
  memoryTable, selectColumns, collectTable, countRows, columnIndexes, rowRange, DEFAULT_BATCH_ROWS,
} from './table.ts';
export type { Table, TableParam, ReadOptions } from './table.ts';
export { TableError, CsvError } from './errors.ts';
export {
  formatFloat32, formatFloat64, writeFloat32, writeFloat64, writeFloat32At, writeFloat64At,
  writeInteger, writeInt32, writeInt64Parts, writeUnsigned, MAX_FLOAT_CHARS,
} from './format-number.ts';
export { writeCsv, CsvEncoder } from './csv-writer.ts';
export type { CsvWriteOptions, CsvWriteResult, CsvArrayStyle, CsvTarget, CsvRawCode, CsvRawField, CsvRawRows } from './csv-writer.ts';
export { readCsv } from './csv-reader.ts';
export { compileFunction } from './compile.ts';
export type { CsvReadOptions } from './csv-reader.ts';
