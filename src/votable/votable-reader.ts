// VOTable documents as tables: one pass reads the structure (and counts rows); each call of
// a table's batches() then streams its TABLEDATA from where it starts in the file.
import { open, type FileHandle } from 'node:fs/promises';
import { readAt } from '../common/index.ts';
import {
  DEFAULT_BATCH_ROWS, arrayTypeOf, columnIndexes, elementsPerRow, slotsPerElement,
  type ColumnBatch, type ColumnData, type ColumnInfo, type ReadOptions, type Table, type TableParam,
} from '../table/index.ts';
import { VOTableError, describeVOTableLocation, type VOTableLocation } from './errors.ts';
import { fieldToColumn, parseArraySize, type VOTableField } from './fields.ts';
import { XmlSyntaxError, XmlTokenizer, type XmlHandler } from './xml-tokenizer.ts';

/** A PARAM of a table, with the VOTable attributes TableParam does not model. */
export interface VOTableParam extends TableParam {
  readonly datatype?: string;
  readonly arraysize?: string;
  readonly id?: string;
  readonly ucd?: string;
  readonly utype?: string;
  readonly xtype?: string;
  readonly width?: string;
  readonly precision?: string;
  readonly ref?: string;
}

/** Options of {@link readVOTable}. */
export interface VOTableReadOptions {
  readonly signal?: AbortSignal;
}

const CHUNK_BYTES = 1 << 20;

// Where the bytes come from: a file (opened per pass) or text held in memory.
interface Source {
  readonly name: string;
  open(): Promise<Reader>;
}

interface Reader {
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function fileSource(path: string): Source {
  return {
    name: path,
    async open() {
      let handle: FileHandle;
      try {
        handle = await open(path, 'r');
      } catch (cause) {
        throw new VOTableError('votable_cannot_open', { file: path }, `cannot open: ${(cause as Error).message}`, { cause });
      }
      return {
        async read(position, length) {
          const buf = Buffer.allocUnsafe(length);
          try {
            return buf.subarray(0, await readAt(handle, buf, position));
          } catch (cause) {
            throw new VOTableError('votable_cannot_read', { file: path }, `cannot read: ${(cause as Error).message}`, { cause });
          }
        },
        close: () => handle.close(),
      };
    },
  };
}

function textSource(text: string): Source {
  const bytes = Buffer.from(text, 'utf8');
  return {
    name: 'VOTable text',
    async open() {
      return {
        async read(position, length) {
          return bytes.subarray(position, Math.min(bytes.length, position + length));
        },
        async close() {},
      };
    },
  };
}

/** The 1-based line of a byte offset (for messages; reads the start of the source again). */
async function lineAt(source: Source, offset: number): Promise<number> {
  const reader = await source.open();
  try {
    let line = 1;
    for (let pos = 0; pos < offset; pos += CHUNK_BYTES) {
      const chunk = await reader.read(pos, Math.min(CHUNK_BYTES, offset - pos));
      if (chunk.length === 0) break;
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) line++;
    }
    return line;
  } finally {
    await reader.close();
  }
}

// Turns tokenizer errors and located data errors into VOTableErrors with a line number.
async function located(source: Source, error: unknown, at: VOTableLocation): Promise<never> {
  if (error instanceof XmlSyntaxError) {
    const line = await lineAt(source, error.offset).catch(() => undefined);
    throw new VOTableError('votable_bad_xml', { file: source.name, ...(line !== undefined ? { line } : {}), ...at }, `${error.message}; the file is not well-formed XML`, { cause: error });
  }
  if (error instanceof PendingError) {
    const line = await lineAt(source, error.offset).catch(() => undefined);
    throw new VOTableError(error.code, { file: source.name, ...(line !== undefined ? { line } : {}), ...error.at }, error.what);
  }
  throw error;
}

// An error found inside a synchronous handler: becomes a VOTableError once the line is known.
class PendingError extends Error {
  readonly code: string;
  readonly at: VOTableLocation;
  readonly offset: number;
  readonly what: string;

  constructor(code: string, at: VOTableLocation, offset: number, what: string) {
    super(what);
    this.code = code;
    this.at = at;
    this.offset = offset;
    this.what = what;
  }
}

interface TableDef {
  name?: string;
  description?: string;
  fields: VOTableField[];
  columns: ColumnInfo[];
  params: VOTableParam[];
  encoding: 'none' | 'tabledata' | 'binary' | 'binary2' | 'fits';
  dataOffset: number;
  dataStack: string[];
  rows: number;
  index: number;
}

type Attrs = Record<string, string>;

function fieldFrom(attrs: Attrs): { -readonly [K in keyof VOTableField]: VOTableField[K] } {
  return {
    name: attrs.name ?? attrs.ID ?? '',
    datatype: attrs.datatype ?? '',
    ...(attrs.ID !== undefined ? { id: attrs.ID } : {}),
    ...(attrs.arraysize !== undefined ? { arraysize: attrs.arraysize } : {}),
    ...(attrs.width !== undefined ? { width: attrs.width } : {}),
    ...(attrs.precision !== undefined ? { precision: attrs.precision } : {}),
    ...(attrs.unit !== undefined ? { unit: attrs.unit } : {}),
    ...(attrs.ucd !== undefined ? { ucd: attrs.ucd } : {}),
    ...(attrs.utype !== undefined ? { utype: attrs.utype } : {}),
    ...(attrs.xtype !== undefined ? { xtype: attrs.xtype } : {}),
    ...(attrs.ref !== undefined ? { ref: attrs.ref } : {}),
    ...(attrs.value !== undefined ? { value: attrs.value } : {}),
  };
}

// The structure pass: tables, their FIELDs, PARAMs and descriptions, and where data starts.
class StructureHandler implements XmlHandler {
  readonly tables: TableDef[] = [];
  readonly #file: string;
  tokenizer!: XmlTokenizer;
  #stack: string[] = [];
  #table: TableDef | undefined;
  #field: ReturnType<typeof fieldFrom> | undefined;
  #fieldIsParam = false;
  #resourceParams: VOTableParam[][] = [];
  #description: string | undefined;
  #inTableData = false;
  #sawRoot = false;

  constructor(file: string) {
    this.#file = file;
  }

  start(name: string, attrs: Attrs, _selfClosing: boolean, offset: number): void {
    const parent = this.#stack[this.#stack.length - 1];
    if (!this.#sawRoot) {
      this.#sawRoot = true;
      if (name !== 'VOTABLE') throw new PendingError('votable_not_votable', {}, offset, `the root element is <${name}>, not <VOTABLE>: this is not a VOTable`);
    }
    if (this.#inTableData) {
      if (name === 'TR' && parent === 'TABLEDATA') this.#table!.rows++;
      this.#stack.push(name);
      return;
    }
    switch (name) {
      case 'RESOURCE':
        this.#resourceParams.push([]);
        break;
      case 'TABLE': {
        const index = this.tables.length;
        this.#table = {
          ...(attrs.name !== undefined ? { name: attrs.name } : attrs.ID !== undefined ? { name: attrs.ID } : {}),
          fields: [], columns: [], params: this.#resourceParams.flat(), encoding: 'none', dataOffset: 0, dataStack: [], rows: 0, index,
        };
        this.tables.push(this.#table);
        break;
      }
      case 'FIELD':
        if (this.#table && parent === 'TABLE') {
          this.#field = fieldFrom(attrs);
          this.#fieldIsParam = false;
        }
        break;
      case 'PARAM':
        this.#field = fieldFrom(attrs);
        this.#fieldIsParam = true;
        break;
      case 'VALUES':
        if (this.#field && attrs.null !== undefined) this.#field.nullText = attrs.null;
        break;
      case 'DESCRIPTION':
        this.#description = '';
        break;
      case 'TABLEDATA':
        if (this.#table && parent === 'DATA') {
          this.#table.encoding = 'tabledata';
          this.#table.dataOffset = offset;
          this.#table.dataStack = [...this.#stack];
          this.#inTableData = true;
          this.tokenizer.skipText = true;
        }
        break;
      case 'BINARY': case 'BINARY2': case 'FITS':
        if (this.#table && parent === 'DATA') this.#table.encoding = name.toLowerCase() as 'binary' | 'binary2' | 'fits';
        break;
    }
    this.#stack.push(name);
  }

  end(name: string, offset: number): void {
    this.#stack.pop();
    const parent = this.#stack[this.#stack.length - 1];
    if (this.#inTableData) {
      if (name === 'TABLEDATA') {
        this.#inTableData = false;
        this.tokenizer.skipText = false;
      }
      return;
    }
    switch (name) {
      case 'DESCRIPTION': {
        const text = (this.#description ?? '').trim();
        this.#description = undefined;
        if (parent === 'FIELD' || parent === 'PARAM') {
          if (this.#field) this.#field.description = text;
        } else if (parent === 'TABLE' && this.#table) {
          this.#table.description = text;
        }
        break;
      }
      case 'FIELD':
      case 'PARAM': {
        const f = this.#field;
        this.#field = undefined;
        if (!f) break;
        const at = { ...(this.#table?.name !== undefined ? { table: this.#table.name } : {}), field: f.name || '(unnamed)' };
        if (!f.name) throw new PendingError('votable_bad_field', at, offset, `a ${name} has no name attribute; give it one`);
        if (!f.datatype) throw new PendingError('votable_bad_field', at, offset, `${name} "${f.name}" has no datatype attribute; add one (e.g. datatype="double")`);
        try {
          if (name === 'FIELD' && !this.#fieldIsParam) {
            this.#table!.fields.push(f);
            this.#table!.columns.push(fieldToColumn(f, at));
          } else {
            const param = paramFrom(f, at);
            if (parent === 'RESOURCE') this.#resourceParams[this.#resourceParams.length - 1]?.push(param);
            else if (this.#table && this.#stack.includes('TABLE')) this.#table.params.push(param);
          }
        } catch (error) {
          if (error instanceof VOTableError) throw new PendingError(error.code, at, offset, error.message.slice(describeVOTableLocation(error.location).length));
          throw error;
        }
        break;
      }
      case 'RESOURCE':
        this.#resourceParams.pop();
        break;
      case 'TABLE':
        this.#table = undefined;
        break;
    }
  }

  text(text: string): void {
    if (this.#description !== undefined) this.#description += text;
  }

  get file(): string {
    return this.#file;
  }
}

function paramFrom(f: VOTableField, at: VOTableLocation): VOTableParam {
  const raw = f.value ?? '';
  const size = parseArraySize(f.arraysize, at);
  const isArray = size !== undefined && (f.datatype !== 'char' && f.datatype !== 'unicodeChar');
  let value: string | number | boolean | bigint = raw;
  if (!isArray) {
    const t = raw.trim();
    switch (f.datatype) {
      case 'boolean': value = /^(t|true|1)$/i.test(t); break;
      case 'unsignedByte': case 'short': case 'int': case 'long': {
        if (/^[+-]?\d+$/.test(t)) {
          const b = BigInt(t);
          value = b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
        }
        break;
      }
      case 'float': case 'double': {
        const v = parseFloatText(t);
        if (v !== undefined) value = v;
        break;
      }
      case 'char': case 'unicodeChar': value = raw; break;
      default: throw new VOTableError('votable_bad_datatype', at, `datatype "${f.datatype}" is not a VOTable datatype`);
    }
  }
  return {
    name: f.name,
    value,
    ...(f.unit !== undefined ? { unit: f.unit } : {}),
    ...(f.description !== undefined ? { description: f.description } : {}),
    datatype: f.datatype,
    ...(f.arraysize !== undefined ? { arraysize: f.arraysize } : {}),
    ...(f.id !== undefined ? { id: f.id } : {}),
    ...(f.ucd !== undefined ? { ucd: f.ucd } : {}),
    ...(f.utype !== undefined ? { utype: f.utype } : {}),
    ...(f.xtype !== undefined ? { xtype: f.xtype } : {}),
    ...(f.width !== undefined ? { width: f.width } : {}),
    ...(f.precision !== undefined ? { precision: f.precision } : {}),
    ...(f.ref !== undefined ? { ref: f.ref } : {}),
  };
}

/** Text of a float as VOTable allows it (also NaN, +Inf, -Inf, Infinity); undefined if not one. */
export function parseFloatText(t: string): number | undefined {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  switch (t.toLowerCase()) {
    case 'nan': case '+nan': case '-nan': return NaN;
    case 'inf': case '+inf': case 'infinity': case '+infinity': return Infinity;
    case '-inf': case '-infinity': return -Infinity;
    default: return undefined;
  }
}

/**
 * Reads a VOTable (a path, or the document itself when the text starts with "<") into its
 * tables, in document order. The structure is read at once (FIELDs, PARAMs, descriptions,
 * row counts); each table's rows are streamed from its TABLEDATA whenever its batches are
 * read. A table without DATA (a schema) has columns and no rows. Data in BINARY, BINARY2 or
 * FITS encoding can be described but not read.
 */
export async function readVOTable(pathOrText: string, options: VOTableReadOptions = {}): Promise<Table[]> {
  const source = /^\s*</.test(pathOrText) ? textSource(pathOrText) : fileSource(pathOrText);
  const handler = new StructureHandler(source.name);
  const tokenizer = new XmlTokenizer(handler);
  handler.tokenizer = tokenizer;
  const reader = await source.open();
  try {
    for (let pos = 0; ; pos += CHUNK_BYTES) {
      options.signal?.throwIfAborted();
      const chunk = await reader.read(pos, CHUNK_BYTES);
      if (chunk.length === 0) break;
      tokenizer.feed(chunk);
    }
    tokenizer.finish();
  } catch (error) {
    await located(source, error, {});
  } finally {
    await reader.close();
  }
  return handler.tables.map((def) => tableOf(source, def));
}

function tableOf(source: Source, def: TableDef): Table {
  const columns = def.columns;
  return {
    ...(def.name !== undefined ? { name: def.name } : {}),
    columns,
    rowCount: def.rows,
    params: def.params,
    ...(def.description !== undefined ? { description: def.description } : {}),
    batches: (options: ReadOptions = {}) => readTableData(source, def, options),
  };
}

async function* readTableData(source: Source, def: TableDef, options: ReadOptions): AsyncGenerator<ColumnBatch> {
  const tableName = def.name ?? `#${def.index + 1}`;
  if (def.encoding === 'none') return;
  if (def.encoding !== 'tabledata') {
    throw new VOTableError('votable_unsupported_encoding', { file: source.name, table: tableName }, `the data are in ${def.encoding.toUpperCase()} encoding, which this reader does not decode; convert the file to TABLEDATA first, e.g. stilts tcopy in=FILE out=NEW.vot ofmt=votable-tabledata`);
  }
  const idx = columnIndexes(def.columns, options.columns);
  const batchRows = Math.max(1, options.batchRows ?? DEFAULT_BATCH_ROWS);
  const handler = new DataHandler(def, tableName, idx, batchRows);
  const tokenizer = new XmlTokenizer(handler, { openElements: def.dataStack, startOffset: def.dataOffset });
  handler.tokenizer = tokenizer;
  const reader = await source.open();
  try {
    for (let pos = def.dataOffset; !tokenizer.stopped; pos += CHUNK_BYTES) {
      options.signal?.throwIfAborted();
      const chunk = await reader.read(pos, CHUNK_BYTES);
      try {
        if (chunk.length === 0) {
          tokenizer.finish();
          break;
        }
        tokenizer.feed(chunk);
      } catch (error) {
        await located(source, error, { table: tableName });
      }
      while (handler.ready.length > 0) yield handler.ready.shift()!;
    }
    if (!tokenizer.stopped) await located(source, new XmlSyntaxError('the document ends inside TABLEDATA', tokenizer.offset), { table: tableName });
    handler.flush();
    while (handler.ready.length > 0) yield handler.ready.shift()!;
  } finally {
    await reader.close();
  }
}

// Fills column builders from TR/TD tokens; whole batches wait in `ready`.
class DataHandler implements XmlHandler {
  readonly ready: ColumnBatch[] = [];
  tokenizer!: XmlTokenizer;
  readonly #def: TableDef;
  readonly #table: string;
  readonly #idx: number[];
  readonly #wanted: Int32Array; // column -> builder index, or -1
  readonly #batchRows: number;
  #builders: CellBuilder[] = [];
  #rows = 0; // rows in the current batch
  #row = 0; // rows read in the table
  #cell = -1;
  #text = '';
  #inTd = false;
  #depth = 0;

  constructor(def: TableDef, table: string, idx: number[], batchRows: number) {
    this.#def = def;
    this.#table = table;
    this.#idx = idx;
    this.#batchRows = batchRows;
    this.#wanted = new Int32Array(def.columns.length).fill(-1);
    idx.forEach((c, i) => { this.#wanted[c] = i; });
    this.#newBatch();
  }

  #newBatch(): void {
    this.#builders = this.#idx.map((c) => makeCellBuilder(this.#def.columns[c], this.#batchRows));
    this.#rows = 0;
  }

  flush(): void {
    if (this.#rows > 0) {
      this.ready.push({ rowCount: this.#rows, columns: this.#builders.map((b) => b.finish(this.#rows)) });
      this.#newBatch();
    }
  }

  start(name: string, _attrs: Attrs, _selfClosing: boolean, offset: number): void {
    this.#depth++;
    if (name === 'TR') {
      if (this.#depth !== 2) throw this.#error('votable_bad_structure', offset, {}, '<TR> must be directly inside <TABLEDATA>');
      this.#cell = 0;
    } else if (name === 'TD') {
      if (this.#depth !== 3 || this.#cell < 0) throw this.#error('votable_bad_structure', offset, {}, '<TD> must be directly inside <TR>');
      this.#inTd = true;
      this.#text = '';
    } else if (name !== 'TABLEDATA') {
      throw this.#error('votable_bad_structure', offset, {}, `<${name}> cannot appear inside TABLEDATA (only TR and TD)`);
    }
  }

  end(name: string, offset: number): void {
    this.#depth--;
    if (name === 'TD') {
      this.#inTd = false;
      const c = this.#cell++;
      const columns = this.#def.columns;
      if (c >= columns.length) {
        throw this.#error('votable_bad_row', offset, { row: this.#row + 1 }, `the row has more than the ${columns.length} cells the table's FIELDs describe; remove the extra <TD> or add a FIELD`);
      }
      const b = this.#wanted[c];
      if (b >= 0) {
        const problem = this.#builders[b].put(this.#rows, this.#text);
        if (problem !== undefined) {
          let shown = this.#text;
          if (shown.length > 40) shown = `${shown.slice(0, 40)}...`;
          throw this.#error('votable_bad_value', offset, { row: this.#row + 1, field: columns[c].name }, `"${shown}" ${problem}; fix the value or the FIELD's datatype/arraysize`);
        }
      }
    } else if (name === 'TR') {
      const n = this.#def.columns.length;
      if (this.#cell !== n) {
        throw this.#error('votable_bad_row', offset, { row: this.#row + 1 }, `the row has ${this.#cell} cells but the table has ${n} FIELDs; every <TR> needs one <TD> per FIELD (an empty <TD/> for a null)`);
      }
      this.#cell = -1;
      this.#rows++;
      this.#row++;
      if (this.#rows >= this.#batchRows) this.flush();
    } else if (name === 'TABLEDATA') {
      this.tokenizer.stop();
    }
  }

  text(text: string, offset: number): void {
    if (this.#inTd) this.#text += text;
    else if (text.trim() !== '') throw this.#error('votable_bad_structure', offset, { row: this.#row + 1 }, `text "${text.trim().slice(0, 20)}" outside a <TD>`);
  }

  #error(code: string, offset: number, at: VOTableLocation, what: string): PendingError {
    return new PendingError(code, { table: this.#table, ...at }, offset, what);
  }
}

// One column of a batch, filled from TD texts. `put` returns what is wrong, or undefined.
interface CellBuilder {
  put(row: number, text: string): string | undefined;
  finish(rows: number): ColumnData;
}

const INT_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};

function parseIntText(t: string): number | undefined {
  if (/^[+-]?\d+$/.test(t)) return Number(t);
  if (/^0x[0-9a-f]+$/i.test(t)) return parseInt(t.slice(2), 16);
  return undefined;
}

function parseBigText(t: string): bigint | undefined {
  if (/^[+-]?\d+$/.test(t)) return BigInt(t);
  if (/^0x[0-9a-f]+$/i.test(t)) return BigInt.asIntN(64, BigInt(t));
  return undefined;
}

// Parses one element of a numeric or boolean cell; undefined when the text is not one.
function elementParser(info: ColumnInfo): (t: string) => number | bigint | undefined {
  switch (info.type) {
    case 'boolean':
      return (t) => {
        const l = t.toLowerCase();
        if (l === 't' || l === 'true' || l === '1') return 1;
        if (l === 'f' || l === 'false' || l === '0') return 0;
        return undefined;
      };
    case 'bit':
      return (t) => (t === '1' ? 1 : t === '0' ? 0 : undefined);
    case 'float32': case 'float64': case 'complex64': case 'complex128':
      return (t) => parseFloatText(t);
    case 'int64': case 'uint64':
      return (t) => {
        const b = parseBigText(t);
        if (b === undefined) return undefined;
        if (info.type === 'int64' ? b < -(2n ** 63n) || b >= 2n ** 63n : b < 0n || b >= 2n ** 64n) return undefined;
        return b;
      };
    default: {
      const [min, max] = INT_RANGES[info.type];
      return (t) => {
        const v = parseIntText(t);
        return v !== undefined && v >= min && v <= max ? v : undefined;
      };
    }
  }
}

function typeWord(info: ColumnInfo): string {
  return ({
    boolean: 'a boolean (T/F)', bit: 'a bit (0/1)', uint8: 'an unsignedByte (0..255)', int16: 'a short integer',
    int32: 'an int', int64: 'a long integer', float32: 'a float', float64: 'a double',
    complex64: 'a floatComplex (two numbers)', complex128: 'a doubleComplex (two numbers)',
  } as Record<string, string>)[info.type] ?? `a ${info.type}`;
}

function makeCellBuilder(info: ColumnInfo, capacity: number): CellBuilder {
  if (info.type === 'string') return stringBuilder(info);
  const slots = slotsPerElement(info.type);
  const parse = elementParser(info);
  const scalar = info.shape.length === 0 && !info.variable && slots === 1;
  const nullValue = info.nullValue;
  const nullFill: number | bigint = info.type === 'int64' || info.type === 'uint64'
    ? (info.nullValue !== undefined ? BigInt(info.nullValue) : 0n)
    : info.type.startsWith('float') || info.type.startsWith('complex') ? NaN : (info.nullValue !== undefined ? Number(info.nullValue) : 0);
  if (scalar) {
    const Ctor = (arrayTypeOf(info.type) ?? Float64Array);
    const values = new Ctor(capacity) as unknown as (number | bigint)[];
    let valid: Uint8Array | undefined;
    const markNull = (row: number) => {
      if (!valid) { valid = new Uint8Array(capacity); valid.fill(1); }
      valid[row] = 0;
      values[row] = nullFill;
    };
    return {
      put(row, text) {
        const t = text.trim();
        if (t === '' || (info.type === 'boolean' && t === '?')) { markNull(row); return undefined; }
        const v = parse(t);
        if (v === undefined) return `is not ${typeWord(info)}`;
        values[row] = v;
        if (nullValue !== undefined && v === nullValue) markNull(row);
        return undefined;
      },
      finish(rows) {
        const v = (values as unknown as Uint8Array).subarray(0, rows);
        return { values: v, ...(valid ? { valid: valid.subarray(0, rows) } : {}) };
      },
    };
  }
  // arrays, complex numbers, variable-length cells
  const fixedCount = info.variable ? -1 : elementsPerRow(info);
  const bound = info.variable && info.shape.length > 0 ? info.shape.reduce((a, b) => a * b, 1) : 0;
  const parts: (number | bigint)[] = [];
  const valid: number[] = [];
  const offsets: number[] = [0];
  let anyNull = false;
  return {
    put(_row, text) {
      const t = text.trim();
      let tokens = t === '' ? [] : t.split(/\s+/);
      if (info.type === 'bit' && tokens.length === 1 && tokens[0].length > 1 && /^[01]+$/.test(tokens[0])) tokens = tokens[0].split('');
      if (t === '' && fixedCount > 0) {
        // a null array: every element null
        anyNull = true;
        for (let k = 0; k < fixedCount; k++) {
          for (let s = 0; s < slots; s++) parts.push(nullFill);
          valid.push(0);
        }
        offsets.push(parts.length / slots);
        return undefined;
      }
      if (tokens.length % slots !== 0) return `holds ${tokens.length} numbers, not pairs of real and imaginary parts`;
      const count = tokens.length / slots;
      if (fixedCount >= 0 && count !== fixedCount) return `holds ${count} element${count === 1 ? '' : 's'} but the FIELD's arraysize gives ${fixedCount}`;
      if (bound > 0 && count > bound) return `holds ${count} elements, more than the arraysize bound ${bound}`;
      for (let k = 0; k < count; k++) {
        let isNull = false;
        for (let s = 0; s < slots; s++) {
          const tok = tokens[k * slots + s];
          const v = parse(tok);
          if (v === undefined) {
            if (info.type === 'boolean' && tok === '?') { isNull = true; parts.push(0); continue; }
            return `element ${k + 1} ("${tok}") is not ${typeWord(info)}`;
          }
          if (nullValue !== undefined && v === nullValue) isNull = true;
          parts.push(v);
        }
        valid.push(isNull ? 0 : 1);
        if (isNull) anyNull = true;
      }
      offsets.push(parts.length / slots);
      return undefined;
    },
    finish(rows) {
      const Ctor = (arrayTypeOf(info.type) ?? Float64Array);
      const values = new Ctor(parts.length) as unknown as (number | bigint)[];
      for (let i = 0; i < parts.length; i++) values[i] = parts[i];
      return {
        values: values as unknown as ColumnData['values'],
        ...(anyNull ? { valid: Uint8Array.from(valid) } : {}),
        ...(info.variable ? { offsets: Int32Array.from(offsets.slice(0, rows + 1)) } : {}),
      };
    },
  };
}

function stringBuilder(info: ColumnInfo): CellBuilder {
  const values: string[] = [];
  let valid: number[] | undefined;
  const per = info.variable ? 1 : elementsPerRow(info);
  const width = info.width ?? 1;
  const markNull = (n: number) => {
    if (!valid) valid = new Array<number>(values.length).fill(1);
    for (let i = 0; i < n; i++) valid.push(0);
  };
  return {
    put(_row, text) {
      if (per === 1 && (info.shape.length === 0 || info.variable)) {
        if (text === '') { markNull(1); values.push(''); return undefined; }
        valid?.push(1);
        values.push(text);
        return undefined;
      }
      // an array of fixed-width strings, run together in one TD
      if (text === '') {
        markNull(per);
        for (let i = 0; i < per; i++) values.push('');
        return undefined;
      }
      const chars = Array.from(text);
      for (let i = 0; i < per; i++) {
        const s = chars.slice(i * width, (i + 1) * width).join('').replace(/ +$/, '');
        values.push(s);
        valid?.push(1);
      }
      return undefined;
    },
    finish() {
      return { values, ...(valid ? { valid: Uint8Array.from(valid) } : {}) };
    },
  };
}
