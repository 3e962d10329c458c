import { IppError } from '../common/index.ts';

/** An error in building or combining tables (bad column description, mismatched batch). */
export class TableError extends IppError {}

/** A text table (CSV) that cannot be read: names the file, line and column. */
export class CsvError extends IppError {}
