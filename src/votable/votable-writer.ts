// Tables to VOTable 1.4: FIELDs and PARAMs from the column descriptions, rows streamed as
// TABLEDATA through a byte buffer (bounded memory), written to a temporary file and renamed.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  elementsPerRow, formatFloat64, slotsPerElement, writeFloat32At, writeFloat64At, writeInt64Parts,
  writeInteger, type ColumnData, type ColumnInfo, type Table, type TableParam,
} from '../table/index.ts';
import { VOTableError, type VOTableLocation } from './errors.ts';
import { columnToField, type VOTableField } from './fields.ts';
import { readVOTable, type VOTableParam } from './votable-reader.ts';

/** Options of {@link writeVOTable}. */
export interface VOTableWriteOptions {
  /** Write the rows (default true); false writes a schema: FIELDs and PARAMs, no DATA. */
  readonly data?: boolean;
  /** A DESCRIPTION of the whole document. */
  readonly description?: string;
  /** The name of the one RESOURCE holding the tables. */
  readonly resourceName?: string;
  readonly signal?: AbortSignal;
  /** Called after each batch with the rows written so far, over all tables. */
  readonly onProgress?: (rowsWritten: number) => void;
}

/** What {@link writeVOTable} wrote. */
export interface VOTableWriteResult {
  readonly rows: number;
  readonly bytes: number;
}

const NAMESPACE = 'http://www.ivoa.net/xml/VOTable/v1.3';
const SCHEMA = 'http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd';
const BUFFER_BYTES = 1 << 20;

// XML 1.0 cannot carry these characters at all, not even as references.
// eslint-disable-next-line no-control-regex
const UNENCODABLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function escapeText(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function escapeAttr(s: string): string {
  return escapeText(s).replaceAll('"', '&quot;').replaceAll('\t', '&#9;').replaceAll('\n', '&#10;').replaceAll('\r', '&#13;');
}

function checkText(s: string, at: VOTableLocation, what: string): void {
  if (UNENCODABLE.test(s)) {
    throw new VOTableError('votable_unencodable_text', at, `${what} holds a control character that XML cannot carry; remove it or write the table as FITS`);
  }
}

function attrs(pairs: [string, string | undefined][], at: VOTableLocation): string {
  return pairs
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => {
      checkText(v, at, `attribute ${k}`);
      return ` ${k}="${escapeAttr(v)}"`;
    })
    .join('');
}

function description(text: string | undefined, indent: string, at: VOTableLocation): string {
  if (text === undefined) return '';
  checkText(text, at, 'the description');
  return `${indent}<DESCRIPTION>${escapeText(text)}</DESCRIPTION>\n`;
}

/** A FIELD element for a column description. */
export function fieldElement(field: VOTableField, at: VOTableLocation = {}): string {
  const here = { ...at, field: field.name };
  const head = `<FIELD${attrs([
    ['name', field.name], ['ID', field.id], ['datatype', field.datatype], ['arraysize', field.arraysize],
    ['width', field.width], ['precision', field.precision], ['unit', field.unit], ['ucd', field.ucd],
    ['utype', field.utype], ['xtype', field.xtype], ['ref', field.ref],
  ], here)}`;
  const body = description(field.description, '  ', here) + (field.nullText !== undefined ? `  <VALUES${attrs([['null', field.nullText]], here)}/>\n` : '');
  return body === '' ? `${head}/>\n` : `${head}>\n${body}</FIELD>\n`;
}

function paramValueText(p: TableParam): string {
  const v = p.value;
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : formatFloat64(v);
  return String(v);
}

function paramDatatype(p: TableParam): { datatype: string; arraysize?: string } {
  const kept = p as VOTableParam;
  if (kept.datatype !== undefined) return { datatype: kept.datatype, ...(kept.arraysize !== undefined ? { arraysize: kept.arraysize } : {}) };
  const v = p.value;
  if (typeof v === 'boolean') return { datatype: 'boolean' };
  if (typeof v === 'bigint') return { datatype: 'long' };
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= 2147483647) return { datatype: 'int' };
    if (Number.isSafeInteger(v)) return { datatype: 'long' };
    return { datatype: 'double' };
  }
  return { datatype: 'char', arraysize: '*' };
}

function paramElement(p: TableParam, at: VOTableLocation): string {
  const kept = p as VOTableParam;
  const { datatype, arraysize } = paramDatatype(p);
  const here = { ...at, field: p.name };
  const head = `<PARAM${attrs([
    ['name', p.name], ['ID', kept.id], ['datatype', datatype], ['arraysize', arraysize], ['width', kept.width],
    ['precision', kept.precision], ['unit', p.unit], ['ucd', kept.ucd], ['utype', kept.utype], ['xtype', kept.xtype],
    ['ref', kept.ref], ['value', paramValueText(p)],
  ], here)}`;
  const body = description(p.description, '  ', here);
  return body === '' ? `${head}/>\n` : `${head}>\n${body}</PARAM>\n`;
}

function documentHead(options: { description?: string; resourceName?: string }): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n`
    + `<VOTABLE version="1.4" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="${NAMESPACE}" xsi:schemaLocation="${NAMESPACE} ${SCHEMA}">\n`
    + description(options.description, '', {})
    + `<RESOURCE${attrs([['name', options.resourceName]], {})}>\n`;
}

const DOCUMENT_TAIL = '</RESOURCE>\n</VOTABLE>\n';

function tableHead(meta: { name?: string; description?: string; params?: readonly TableParam[]; rowCount?: number }, columns: readonly ColumnInfo[], at: VOTableLocation): string {
  let text = `<TABLE${attrs([['name', meta.name], ['nrows', meta.rowCount !== undefined ? String(meta.rowCount) : undefined]], at)}>\n`;
  text += description(meta.description, '', at);
  for (const p of meta.params ?? []) text += paramElement(p, at);
  for (const c of columns) text += fieldElement(columnToField(c), at);
  return text;
}

/**
 * A schema-only VOTable document (FIELDs, no DATA) for column descriptions: the form in which
 * the archive's tables are described. Reading it with {@link votableToColumns} gives the
 * same columns back.
 */
export function columnsToVOTable(
  columns: readonly ColumnInfo[],
  meta: { name?: string; description?: string; params?: readonly TableParam[]; resourceName?: string } = {},
): string {
  const at = meta.name !== undefined ? { table: meta.name } : {};
  return documentHead({ ...(meta.resourceName !== undefined ? { resourceName: meta.resourceName } : {}) })
    + tableHead(meta, columns, at) + '</TABLE>\n' + DOCUMENT_TAIL;
}

/**
 * The column descriptions of one table of a VOTable (a path, or the document text): the
 * first table, or the one named (or numbered from 0) by `options.table`.
 */
export async function votableToColumns(pathOrText: string, options: { table?: string | number } = {}): Promise<ColumnInfo[]> {
  const tables = await readVOTable(pathOrText);
  const file = /^\s*</.test(pathOrText) ? 'VOTable text' : pathOrText;
  if (tables.length === 0) throw new VOTableError('votable_no_table', { file }, 'the document holds no TABLE');
  const want = options.table ?? 0;
  const table = typeof want === 'number' ? tables[want] : tables.find((t) => t.name === want);
  if (!table) {
    throw new VOTableError('votable_no_table', { file }, `no table ${typeof want === 'number' ? `#${want}` : `"${want}"`}; the document has ${tables.map((t, i) => t.name ?? `#${i}`).join(', ')}`);
  }
  return [...table.columns];
}

// Writes the cell of one column at `row` of a batch into a byte buffer; `rowNumber` (1-based,
// in the table) is for messages.
type CellWriter = (out: Uint8Array, pos: number, data: ColumnData, row: number, rowNumber: number) => number;

function putAscii(out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

const encoder = new TextEncoder();

function putText(out: Uint8Array, pos: number, s: string): number {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || c === 38 || c === 60 || c === 62) { plain = false; break; }
  }
  if (plain) return putAscii(out, pos, s);
  return pos + encoder.encodeInto(escapeText(s), out.subarray(pos)).written;
}

function floatElement(type: string): (out: Uint8Array, pos: number, values: Float32Array | Float64Array, i: number) => number {
  return (out, pos, values, i) => {
    const v = values[i];
    if (v !== v) return putAscii(out, pos, 'NaN');
    if (v === Infinity) return putAscii(out, pos, '+Inf');
    if (v === -Infinity) return putAscii(out, pos, '-Inf');
    return type === 'float32' || type === 'complex64' ? writeFloat32At(out, pos, values as Float32Array, i) : writeFloat64At(out, pos, values as Float64Array, i);
  };
}

interface ColumnPlan {
  readonly write: CellWriter;
  /** Largest bytes a cell of this row may need. */
  readonly bound: (data: ColumnData, row: number) => number;
}

function cellRange(info: ColumnInfo, data: ColumnData, row: number): [number, number] {
  if (data.offsets) return [data.offsets[row], data.offsets[row + 1]];
  if (info.variable && info.type === 'string') return [row, row + 1];
  const n = elementsPerRow(info);
  return [row * n, row * n + n];
}

function planColumn(info: ColumnInfo, at: VOTableLocation): ColumnPlan {
  const here = { ...at, field: info.name };
  const slots = slotsPerElement(info.type);
  const scalar = info.shape.length === 0 && !info.variable;
  const nullText = info.nullValue !== undefined ? String(info.nullValue) : undefined;
  if (info.type === 'uint64' && info.nullValue !== undefined && BigInt(info.nullValue) >= 2n ** 63n) {
    throw new VOTableError('votable_value_out_of_range', here, `null value ${info.nullValue} does not fit VOTable's long (signed 64-bit); choose a null below 2^63`);
  }
  // one element (a number, a boolean, a bit) at index e
  let element: (out: Uint8Array, pos: number, data: ColumnData, e: number, rowNumber: number) => number;
  switch (info.type) {
    case 'float32': case 'float64': case 'complex64': case 'complex128': {
      const fe = floatElement(info.type);
      element = (out, pos, data, e) => {
        const v = data.values as Float32Array | Float64Array;
        if (slots === 1) return fe(out, pos, v, e);
        pos = fe(out, pos, v, 2 * e);
        out[pos++] = 32;
        return fe(out, pos, v, 2 * e + 1);
      };
      break;
    }
    case 'int64': case 'uint64': {
      const unsigned = info.type === 'uint64';
      // a 32-bit view of the current batch's values, made once per batch
      let seen: unknown;
      let halves: Int32Array = new Int32Array(0);
      element = (out, pos, data, e, rowNumber) => {
        if (data.values !== seen) {
          const b = data.values as BigInt64Array;
          seen = b;
          halves = new Int32Array(b.buffer, b.byteOffset, b.length * 2);
        }
        const lo = halves[2 * e];
        const hi = halves[2 * e + 1];
        if (unsigned && hi < 0) {
          throw new VOTableError('votable_value_out_of_range', { ...here, row: rowNumber }, `${(data.values as BigUint64Array)[e]} does not fit VOTable's long (signed 64-bit), the widest integer VOTable has; write the column as FITS or convert it to string first`);
        }
        return writeInt64Parts(out, pos, lo, hi, true);
      };
      break;
    }
    case 'boolean':
      element = (out, pos, data, e) => {
        if (data.valid && data.valid[e] === 0) return putAscii(out, pos, '?');
        out[pos] = (data.values as Uint8Array)[e] !== 0 ? 84 : 70;
        return pos + 1;
      };
      break;
    case 'bit':
      element = (out, pos, data, e) => {
        out[pos] = (data.values as Uint8Array)[e] !== 0 ? 49 : 48;
        return pos + 1;
      };
      break;
    case 'string':
      element = () => {
        throw new Error('unreachable');
      };
      break;
    default:
      element = (out, pos, data, e) => {
        if (data.valid && data.valid[e] === 0 && nullText !== undefined) return putAscii(out, pos, nullText);
        return writeInteger(out, pos, (data.values as Int32Array)[e]);
      };
  }
  if (info.type === 'string') {
    const width = info.width ?? 1;
    return {
      write(out, pos, data, row, rowNumber) {
        const [e0, e1] = cellRange(info, data, row);
        const v = data.values as string[];
        if (scalar || info.variable) {
          if (data.valid && data.valid[e0] === 0) return pos;
          const s = v[e0] ?? '';
          checkText(s, { ...here, row: rowNumber }, 'the value');
          return putText(out, pos, s);
        }
        // an array of fixed-width strings, run together, each padded to the width
        let allNull = true;
        for (let e = e0; e < e1; e++) if (!data.valid || data.valid[e] !== 0) allNull = false;
        if (allNull && data.valid) return pos;
        let joined = '';
        for (let e = e0; e < e1; e++) {
          const s = data.valid && data.valid[e] === 0 ? '' : v[e] ?? '';
          checkText(s, { ...here, row: rowNumber }, 'the value');
          const chars = Array.from(s);
          if (chars.length > width) {
            throw new VOTableError('votable_value_too_long', { ...here, row: rowNumber }, `element ${e - e0 + 1} "${s}" is longer than the ${width} characters each string of this array holds; widen the column`);
          }
          joined += s + ' '.repeat(width - chars.length);
        }
        return putText(out, pos, joined);
      },
      bound(data, row) {
        const [e0, e1] = cellRange(info, data, row);
        let n = 0;
        for (let e = e0; e < e1; e++) n += 6 * Math.max(width, ((data.values as string[])[e] ?? '').length);
        return n;
      },
    };
  }
  if (scalar) {
    return {
      write(out, pos, data, row, rowNumber) {
        if (data.valid && data.valid[row] === 0) {
          if (nullText !== undefined && info.type !== 'boolean') return putAscii(out, pos, nullText);
          return pos;
        }
        return element(out, pos, data, row, rowNumber);
      },
      bound: () => 72,
    };
  }
  return {
    write(out, pos, data, row, rowNumber) {
      const [e0, e1] = cellRange(info, data, row);
      if (data.valid && e1 > e0) {
        // an array of nulls only is a null cell: an empty TD
        let allNull = true;
        for (let e = e0; e < e1 && allNull; e++) if (data.valid[e] !== 0) allNull = false;
        if (allNull) return pos;
      }
      for (let e = e0; e < e1; e++) {
        if (e > e0) out[pos++] = 32;
        pos = element(out, pos, data, e, rowNumber);
      }
      return pos;
    },
    bound(data, row) {
      const [e0, e1] = cellRange(info, data, row);
      return (e1 - e0) * 70 + 8;
    },
  };
}

const TR_OPEN = '<TR>';
const TD_OPEN = '<TD>';
const TD_CLOSE = '</TD>';
const TR_CLOSE = '</TR>\n';

/**
 * Writes tables as one VOTable 1.4 document (one RESOURCE, a TABLE per table) with
 * TABLEDATA rows, streamed a batch at a time. The file is written under a temporary name
 * and renamed at the end, so a failure leaves nothing behind.
 */
export async function writeVOTable(path: string, tables: readonly Table[], options: VOTableWriteOptions = {}): Promise<VOTableWriteResult> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
  } catch (cause) {
    throw new VOTableError('votable_cannot_write', { file: path }, `cannot create ${temp}: ${(cause as Error).message}; check that the directory exists and is writable`, { cause });
  }
  let bytes = 0;
  let rows = 0;
  let position = 0;
  const h = handle;
  const writeBytes = async (b: Uint8Array) => {
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await h.write(b, off, b.length - off, position);
      off += bytesWritten;
      position += bytesWritten;
    }
    bytes += b.length;
  };
  const writeText = (s: string) => writeBytes(encoder.encode(s));
  try {
    await writeText(documentHead(options));
    for (const [t, table] of tables.entries()) {
      const at: VOTableLocation = { file: path, table: table.name ?? `#${t + 1}` };
      const withData = options.data ?? true;
      await writeText(tableHead({ ...table, ...(withData ? {} : { rowCount: undefined }) }, table.columns, at));
      if (withData) {
        await writeText('<DATA>\n<TABLEDATA>\n');
        const written = await writeRows(table, at, writeBytes, options, rows);
        if (table.rowCount !== undefined && written !== table.rowCount) {
          throw new VOTableError('votable_row_count', at, `the table said it has ${table.rowCount} rows but gave ${written}; the nrows written would be wrong`);
        }
        rows += written;
        await writeText('</TABLEDATA>\n</DATA>\n');
      }
      await writeText('</TABLE>\n');
    }
    await writeText(DOCUMENT_TAIL);
    await handle.close();
    handle = undefined;
    await rename(temp, path);
    return { rows, bytes };
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true });
    if (error instanceof Error && 'code' in error && typeof error.code === 'string' && /^E[A-Z]+$/.test(error.code)) {
      throw new VOTableError('votable_cannot_write', { file: path }, error.message, { cause: error });
    }
    throw error;
  }
}

async function writeRows(
  table: Table, at: VOTableLocation, sink: (b: Uint8Array) => Promise<void>, options: VOTableWriteOptions, before: number,
): Promise<number> {
  const columns = table.columns;
  const plans = columns.map((c) => planColumn(c, at));
  const names = columns.map((c) => c.name);
  let buf = new Uint8Array(BUFFER_BYTES);
  let pos = 0;
  let count = 0;
  for await (const batch of table.batches({ columns: names, ...(options.signal ? { signal: options.signal } : {}) })) {
    options.signal?.throwIfAborted();
    for (let r = 0; r < batch.rowCount; r++) {
      let need = 16 + 9 * plans.length;
      for (let c = 0; c < plans.length; c++) need += plans[c].bound(batch.columns[c], r);
      if (pos + need > buf.length) {
        if (pos > 0) {
          await sink(buf.subarray(0, pos));
          buf = new Uint8Array(Math.max(BUFFER_BYTES, need));
          pos = 0;
        } else {
          buf = new Uint8Array(need);
        }
      }
      pos = putAscii(buf, pos, TR_OPEN);
      for (let c = 0; c < plans.length; c++) {
        pos = putAscii(buf, pos, TD_OPEN);
        pos = plans[c].write(buf, pos, batch.columns[c], r, count + r + 1);
        pos = putAscii(buf, pos, TD_CLOSE);
      }
      pos = putAscii(buf, pos, TR_CLOSE);
    }
    count += batch.rowCount;
    options.onProgress?.(before + count);
  }
  if (pos > 0) await sink(buf.subarray(0, pos));
  return count;
}
