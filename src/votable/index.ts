// VOTable: read and write VOTable 1.4 documents (TABLEDATA), and table descriptions to and
// from ColumnInfo (the archive's tables are described by schema-only VOTables).
export { VOTableError, describeVOTableLocation } from './errors.ts';
export type { VOTableLocation } from './errors.ts';
export { readVOTable, parseFloatText } from './votable-reader.ts';
export type { VOTableReadOptions, VOTableParam } from './votable-reader.ts';
export { writeVOTable, columnsToVOTable, votableToColumns, fieldElement } from './votable-writer.ts';
export type { VOTableWriteOptions, VOTableWriteResult } from './votable-writer.ts';
export {
  fieldToColumn, columnToField, columnTypeOf, votableDatatypeOf, parseArraySize, formatArraySize,
  VOTABLE_DATATYPES,
} from './fields.ts';
export type {
  VOTableField, VOTableFieldAttributes, VOTableColumnInfo, VOTableDatatype, ArraySize,
} from './fields.ts';
export { XmlTokenizer, XmlSyntaxError } from './xml-tokenizer.ts';
export type { XmlHandler, XmlTokenizerOptions } from './xml-tokenizer.ts';
export { readTableSchemas, parseTableSchemas, schemaFileMd5, MERGE_MODES, SCHEMA_DATATYPES } from './schema.ts';
export type { TableSchema, SchemaColumn, TableReference, MergeMode, SchemaValue } from './schema.ts';
