// The archive's table schemas: schema-only VOTable files (no DATA) whose FIELDs carry the
// defaults (VALUES null), declared ranges (VALUES MIN/MAX) and whose PARAMs name each
// table's primary key, references and merge mode. Read here in one pass of our own over
// the tokenizer, since the general reader keeps neither ranges nor non-integer defaults.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isBigIntType, isIntegerType, type ColumnInfo } from '../table/index.ts';
import { VOTableError, describeVOTableLocation, type VOTableLocation } from './errors.ts';
import { fieldToColumn, type VOTableColumnInfo, type VOTableField } from './fields.ts';
import { XmlSyntaxError, XmlTokenizer, type XmlHandler } from './xml-tokenizer.ts';

/** How an archive merges a table's rows: see the ippToPsps contract. */
export type MergeMode = 'insert' | 'replace' | 'keep';

/** Every {@link MergeMode}. */
export const MERGE_MODES: readonly MergeMode[] = ['insert', 'replace', 'keep'];

/** The datatypes an archive schema may use (the ones the archive's FITS batches carry). */
export const SCHEMA_DATATYPES: readonly string[] = ['long', 'int', 'short', 'unsignedByte', 'float', 'double', 'char', 'boolean'];

/** A value a column takes when the source has none. */
export type SchemaValue = number | bigint | string | boolean;

/**
 * One archive column: its description plus what the schema says of its values. Defaults
 * are values, not nulls, so `nullValue` is never set (a batch holds no nulls).
 */
export interface SchemaColumn extends VOTableColumnInfo {
  /** The value written when the source has none; undefined for a required column. */
  readonly defaultValue?: SchemaValue;
  /** True when the column has no default: a missing value fails validation. */
  readonly required: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Whether `min`/`max` themselves are allowed (VOTable's default: yes). */
  readonly minInclusive?: boolean;
  readonly maxInclusive?: boolean;
}

/** A column whose every value must exist in a column of (usually) another table. */
export interface TableReference {
  readonly column: string;
  readonly table: string;
  readonly targetColumn: string;
}

/** One archive table as a schema file describes it. */
export interface TableSchema {
  readonly name: string;
  readonly description?: string;
  readonly columns: readonly SchemaColumn[];
  /** Column names of the primary key, in order. */
  readonly primaryKey: readonly string[];
  readonly references: readonly TableReference[];
  readonly merge: MergeMode;
}

// Schema files are a few tens of kilobytes; anything this large is not one.
const MAX_SCHEMA_BYTES = 16 << 20;

interface RawField {
  attrs: Record<string, string>;
  description?: string;
  nullText?: string;
  min?: { value: string; inclusive?: string };
  max?: { value: string; inclusive?: string };
  offset: number;
}

interface RawTable {
  name?: string;
  description?: string;
  params: Map<string, { value: string; offset: number }>;
  fields: RawField[];
  offset: number;
  hasData: boolean;
}

class SchemaHandler implements XmlHandler {
  readonly tables: RawTable[] = [];
  rootName: string | undefined;
  #stack: string[] = [];
  #table: RawTable | undefined;
  #field: RawField | undefined;
  #inParam = false;
  #description: string | undefined;

  start(name: string, attrs: Record<string, string>, _selfClosing: boolean, offset: number): void {
    const parent = this.#stack[this.#stack.length - 1];
    this.rootName ??= name;
    switch (name) {
      case 'TABLE':
        this.#table = { ...(attrs.name !== undefined ? { name: attrs.name } : {}), params: new Map(), fields: [], offset, hasData: false };
        this.tables.push(this.#table);
        break;
      case 'FIELD':
        if (this.#table && parent === 'TABLE') this.#field = { attrs, offset };
        break;
      case 'PARAM':
        if (this.#table && parent === 'TABLE' && attrs.name !== undefined) {
          this.#table.params.set(attrs.name, { value: attrs.value ?? '', offset });
        }
        this.#inParam = true;
        break;
      case 'VALUES':
        if (this.#field && parent === 'FIELD' && attrs.null !== undefined) this.#field.nullText = attrs.null;
        break;
      case 'MIN': case 'MAX':
        if (this.#field && parent === 'VALUES' && !this.#inParam) {
          const v = { value: attrs.value ?? '', ...(attrs.inclusive !== undefined ? { inclusive: attrs.inclusive } : {}) };
          if (name === 'MIN') this.#field.min = v;
          else this.#field.max = v;
        }
        break;
      case 'DESCRIPTION':
        this.#description = '';
        break;
      case 'DATA':
        if (this.#table) this.#table.hasData = true;
        break;
    }
    this.#stack.push(name);
  }

  end(name: string): void {
    this.#stack.pop();
    const parent = this.#stack[this.#stack.length - 1];
    switch (name) {
      case 'DESCRIPTION': {
        const text = (this.#description ?? '').replace(/\s+/g, ' ').trim();
        this.#description = undefined;
        if (parent === 'FIELD' && this.#field) this.#field.description = text;
        else if (parent === 'TABLE' && this.#table) this.#table.description = text;
        break;
      }
      case 'FIELD':
        if (this.#field && this.#table) this.#table.fields.push(this.#field);
        this.#field = undefined;
        break;
      case 'PARAM':
        this.#inParam = false;
        break;
      case 'TABLE':
        this.#table = undefined;
        break;
    }
  }

  text(text: string): void {
    if (this.#description !== undefined) this.#description += text;
  }
}

function lineOf(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 10) line++;
  return line;
}

/**
 * Reads an archive schema file: one {@link TableSchema} per TABLE, in file order. A file
 * that is not a usable schema (unknown datatype, a default or range that does not fit the
 * column, a key naming a missing column, an unknown merge mode...) is refused with a
 * VOTableError naming the file, line, table and field.
 */
export async function readTableSchemas(path: string): Promise<TableSchema[]> {
  let bytes: Uint8Array;
  try {
    const s = await stat(path);
    if (s.size > MAX_SCHEMA_BYTES) throw new VOTableError('votable_schema_too_large', { file: path }, `${s.size} bytes is too large for a schema file (at most ${MAX_SCHEMA_BYTES}); is this a data table?`);
    bytes = await readFile(path);
  } catch (cause) {
    if (cause instanceof VOTableError) throw cause;
    throw new VOTableError('votable_cannot_open', { file: path }, `cannot read the schema file: ${(cause as Error).message}`, { cause });
  }
  return parseTableSchemas(bytes, path);
}

/** Parses schema file bytes (see {@link readTableSchemas}); `file` names them in messages. */
export function parseTableSchemas(bytes: Uint8Array, file: string): TableSchema[] {
  const handler = new SchemaHandler();
  const tokenizer = new XmlTokenizer(handler);
  try {
    tokenizer.feed(bytes);
    tokenizer.finish();
  } catch (error) {
    if (error instanceof XmlSyntaxError) {
      throw new VOTableError('votable_bad_xml', { file, line: lineOf(bytes, error.offset) }, `${error.message}; the file is not well-formed XML`, { cause: error });
    }
    throw error;
  }
  if (handler.rootName !== 'VOTABLE') {
    throw new VOTableError('votable_not_votable', { file }, `the root element is <${handler.rootName ?? 'nothing'}>, not <VOTABLE>: this is not a schema file`);
  }
  if (handler.tables.length === 0) throw new VOTableError('votable_schema_empty', { file }, 'the file describes no TABLE; a schema file has one TABLE per archive table');
  const seen = new Set<string>();
  return handler.tables.map((t) => {
    const at: VOTableLocation = { file, line: lineOf(bytes, t.offset), ...(t.name !== undefined ? { table: t.name } : {}) };
    if (!t.name) throw new VOTableError('votable_schema_bad_table', at, 'a TABLE has no name attribute; give it the archive table name (e.g. name="Detection")');
    if (seen.has(t.name)) throw new VOTableError('votable_schema_bad_table', at, `table ${t.name} is described twice; keep one`);
    seen.add(t.name);
    if (t.hasData) throw new VOTableError('votable_schema_bad_table', at, 'holds DATA; a schema file describes tables only');
    return tableSchema(t, bytes, file);
  });
}

function tableSchema(t: RawTable, bytes: Uint8Array, file: string): TableSchema {
  const name = t.name!;
  const columns: SchemaColumn[] = [];
  const names = new Set<string>();
  for (const f of t.fields) {
    const at: VOTableLocation = { file, line: lineOf(bytes, f.offset), table: name, field: f.attrs.name ?? '(unnamed)' };
    const col = schemaColumn(f, at);
    if (names.has(col.name)) throw new VOTableError('votable_schema_bad_field', at, `field ${col.name} appears twice in the table; column names must be unique`);
    names.add(col.name);
    columns.push(col);
  }
  if (columns.length === 0) throw new VOTableError('votable_schema_bad_table', { file, table: name }, 'has no FIELD; describe its columns');
  const paramAt = (p: string): VOTableLocation => ({ file, line: lineOf(bytes, t.params.get(p)!.offset), table: name, field: p });
  const pkParam = t.params.get('primaryKey');
  if (!pkParam || pkParam.value.trim() === '') {
    throw new VOTableError('votable_schema_bad_key', { file, table: name }, 'has no primaryKey PARAM; add <PARAM name="primaryKey" datatype="char" arraysize="*" value="col[,col...]"/>');
  }
  const primaryKey = pkParam.value.split(',').map((s) => s.trim());
  for (const k of primaryKey) {
    if (!names.has(k)) throw new VOTableError('votable_schema_bad_key', paramAt('primaryKey'), `primary key column "${k}" is not a FIELD of the table (it has ${[...names].join(', ')})`);
  }
  const references: TableReference[] = [];
  const refParam = t.params.get('references');
  if (refParam && refParam.value.trim() !== '') {
    for (const part of refParam.value.split(';')) {
      const m = /^\s*(\S+)\s+([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*$/.exec(part);
      if (!m) throw new VOTableError('votable_schema_bad_reference', paramAt('references'), `"${part.trim()}" is not "column Table.column"; write references as "col Table.col; col Table.col"`);
      if (!names.has(m[1])) throw new VOTableError('votable_schema_bad_reference', paramAt('references'), `reference column "${m[1]}" is not a FIELD of the table`);
      references.push({ column: m[1], table: m[2], targetColumn: m[3] });
    }
  }
  const mergeText = t.params.get('merge')?.value.trim() || 'insert';
  if (!(MERGE_MODES as readonly string[]).includes(mergeText)) {
    throw new VOTableError('votable_schema_bad_merge', paramAt('merge'), `merge "${mergeText}" is not one of ${MERGE_MODES.join(', ')}`);
  }
  return Object.freeze({
    name,
    ...(t.description ? { description: t.description } : {}),
    columns: Object.freeze(columns),
    primaryKey: Object.freeze(primaryKey),
    references: Object.freeze(references),
    merge: mergeText as MergeMode,
  });
}

function schemaColumn(f: RawField, at: VOTableLocation): SchemaColumn {
  const a = f.attrs;
  if (!a.name) throw new VOTableError('votable_schema_bad_field', at, 'a FIELD has no name attribute; give it the archive column name');
  const datatype = a.datatype ?? '';
  if (!SCHEMA_DATATYPES.includes(datatype)) {
    throw new VOTableError('votable_schema_bad_datatype', at, `datatype "${datatype}" cannot be an archive column; use one of ${SCHEMA_DATATYPES.join(', ')}`);
  }
  if (datatype === 'char') {
    if (a.arraysize === undefined || !/^\d+\*?$/.test(a.arraysize.trim()) || /^0\*?$/.test(a.arraysize.trim())) {
      throw new VOTableError('votable_schema_bad_datatype', at, `a char column needs arraysize="N" or "N*" with N > 0 (got ${a.arraysize === undefined ? 'none' : `"${a.arraysize}"`})`);
    }
  } else if (a.arraysize !== undefined) {
    throw new VOTableError('votable_schema_bad_datatype', at, `arraysize "${a.arraysize}" on a ${datatype} column; archive columns hold one value per row`);
  }
  const field: VOTableField = {
    name: a.name, datatype,
    ...(a.arraysize !== undefined ? { arraysize: a.arraysize } : {}),
    ...(a.unit !== undefined ? { unit: a.unit } : {}),
    ...(a.ucd !== undefined ? { ucd: a.ucd } : {}),
    ...(a.utype !== undefined ? { utype: a.utype } : {}),
    ...(f.description !== undefined ? { description: f.description } : {}),
  };
  let info: VOTableColumnInfo;
  try {
    info = fieldToColumn(field, at);
  } catch (error) {
    if (error instanceof VOTableError) throw new VOTableError(error.code, at, error.message.slice(describeVOTableLocation(error.location).length), { cause: error });
    throw error;
  }
  const defaultValue = f.nullText === undefined ? undefined : parseValue(f.nullText, info, at, 'VALUES null');
  const bound = (b: { value: string; inclusive?: string } | undefined, what: string): { value?: number; inclusive?: boolean } => {
    if (!b) return {};
    if (info.type === 'string' || info.type === 'boolean') throw new VOTableError('votable_schema_bad_range', at, `${what} on a ${datatype} column; ranges are for numbers`);
    const t = b.value.trim();
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) throw new VOTableError('votable_schema_bad_range', at, `${what} value="${b.value}" is not a number`);
    if (b.inclusive !== undefined && b.inclusive !== 'yes' && b.inclusive !== 'no') throw new VOTableError('votable_schema_bad_range', at, `${what} inclusive="${b.inclusive}" must be yes or no`);
    return { value: Number(t), inclusive: b.inclusive !== 'no' };
  };
  const min = bound(f.min, 'MIN');
  const max = bound(f.max, 'MAX');
  if (min.value !== undefined && max.value !== undefined && min.value > max.value) {
    throw new VOTableError('votable_schema_bad_range', at, `MIN ${min.value} is above MAX ${max.value}`);
  }
  // A default is a value like any other here, not a FITS null.
  const { nullValue: _dropped, ...rest } = info;
  return Object.freeze({
    ...(rest as VOTableColumnInfo),
    ...(defaultValue !== undefined ? { defaultValue } : {}),
    required: defaultValue === undefined,
    ...(min.value !== undefined ? { min: min.value, minInclusive: min.inclusive } : {}),
    ...(max.value !== undefined ? { max: max.value, maxInclusive: max.inclusive } : {}),
  });
}

const INT_RANGE: Record<string, [number, number]> = {
  uint8: [0, 255], int16: [-32768, 32767], int32: [-2147483648, 2147483647],
};

function parseValue(text: string, info: ColumnInfo, at: VOTableLocation, what: string): SchemaValue {
  const t = text.trim();
  if (info.type === 'string') {
    if (info.width !== undefined && Buffer.byteLength(text, 'utf8') > info.width) {
      throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" is longer than the column's ${info.width} characters`);
    }
    if (!/^[\x20-\x7e]*$/.test(text)) throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" holds characters outside printable ASCII`);
    return text;
  }
  if (info.type === 'boolean') {
    if (/^(t|true|1)$/i.test(t)) return true;
    if (/^(f|false|0)$/i.test(t)) return false;
    throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" is not a boolean (T or F)`);
  }
  if (isIntegerType(info.type)) {
    if (!/^[+-]?\d+$/.test(t)) throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" is not an integer`);
    if (isBigIntType(info.type)) {
      const v = BigInt(t);
      if (v < -(1n << 63n) || v >= 1n << 63n) throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" does not fit a 64-bit integer`);
      return v;
    }
    const v = Number(t);
    const [lo, hi] = INT_RANGE[info.type] ?? [-Infinity, Infinity];
    if (v < lo || v > hi) throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" does not fit a ${info.type} column (${lo}..${hi})`);
    return v;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) && !/^nan$/i.test(t)) {
    throw new VOTableError('votable_schema_bad_default', at, `${what}="${text}" is not a number`);
  }
  return Number(/^nan$/i.test(t) ? NaN : t);
}

/** The md5 (hex) of a schema file's bytes, as batches record it in their SCHEMA keyword. */
export async function schemaFileMd5(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new VOTableError('votable_cannot_open', { file: path }, `cannot read the schema file: ${(cause as Error).message}`, { cause });
  }
  return createHash('md5').update(bytes).digest('hex');
}
