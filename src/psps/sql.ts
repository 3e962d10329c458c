// The few pieces of SQL that differ between the engines for archive tables: column types,
// literals of defaults, boolean text.
import type { Dialect } from '../db/index.ts';
import type { ArchiveColumn, ArchiveDatatype } from './schema.ts';

/** The SQL type of an archive column on an engine. */
export function sqlType(datatype: ArchiveDatatype, dialect: Dialect): string {
  const pg = dialect.engine === 'postgres';
  switch (datatype) {
    case 'long': return pg ? 'BIGINT' : 'INTEGER';
    case 'int': return 'INTEGER';
    case 'short': case 'unsignedByte': return pg ? 'SMALLINT' : 'INTEGER';
    case 'float': return 'REAL';
    case 'double': return pg ? 'DOUBLE PRECISION' : 'REAL';
    case 'char': return 'TEXT';
    case 'boolean': return pg ? 'BOOLEAN' : 'INTEGER';
  }
}

/** A value of a column as an SQL literal (defaults are written into merge statements). */
export function sqlLiteral(column: ArchiveColumn, text: string, dialect: Dialect): string {
  switch (column.datatype) {
    case 'char': return `'${text.replaceAll("'", "''")}'`;
    case 'boolean': {
      const truthy = /^(t|true|1|y|yes)$/i.test(text.trim());
      return dialect.engine === 'postgres' ? (truthy ? 'TRUE' : 'FALSE') : (truthy ? '1' : '0');
    }
    default: {
      const n = Number(text);
      // only numbers reach here (the schema reader checks defaults), written back as read
      return Number.isFinite(n) ? text.trim() : 'NULL';
    }
  }
}

/** The default of a column as an SQL literal, or NULL for a required column. */
export function defaultLiteral(column: ArchiveColumn, dialect: Dialect): string {
  return column.defaultText === undefined ? 'NULL' : sqlLiteral(column, column.defaultText, dialect);
}

/** True for numeric datatypes (ranges apply). */
export function isNumeric(datatype: ArchiveDatatype): boolean {
  return datatype !== 'char' && datatype !== 'boolean';
}

/** Quotes a text value for SQL. */
export function quoteText(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
