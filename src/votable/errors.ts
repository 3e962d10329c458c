import { IppError } from '../common/index.ts';

/** Where in a VOTable a problem is: the file, the line, the table, the row, the field. */
export interface VOTableLocation {
  file?: string;
  line?: number;
  table?: string;
  /** 1-based data row within the table. */
  row?: number;
  field?: string;
}

/**
 * A VOTable that cannot be read or written as asked. The message names the file, line,
 * table, row and field where known, what is wrong and what to do.
 */
export class VOTableError extends IppError {
  readonly location: VOTableLocation;

  constructor(code: string, location: VOTableLocation, what: string, options?: { cause?: unknown }) {
    super(code, `${describeVOTableLocation(location)}${what}`, options);
    this.location = location;
  }
}

/** "x.vot: line 12: table FrameMeta: row 3: field ra: " — the prefix of every VOTable message. */
export function describeVOTableLocation(at: VOTableLocation): string {
  const parts: string[] = [];
  if (at.file) parts.push(at.file);
  if (at.line !== undefined) parts.push(`line ${at.line}`);
  if (at.table !== undefined) parts.push(`table ${at.table}`);
  if (at.row !== undefined) parts.push(`row ${at.row}`);
  if (at.field !== undefined) parts.push(`field ${at.field}`);
  return parts.length ? `${parts.join(': ')}: ` : '';
}
