// Reading FITS files: headers only when opened (astropy's habit), data on demand, in chunks.
import { open, type FileHandle } from 'node:fs/promises';
import { readAt } from '../common/index.ts';
import {
  columnIndexes, DEFAULT_BATCH_ROWS,
  type ColumnBatch, type ColumnInfo, type ReadOptions, type Table, type TableParam,
} from '../table/index.ts';
import { decodeRows, type HeapReader } from './bintable-codec.ts';
import { Checksum, verifyChecksums } from './checksum.ts';
import { isColumnKeyword, parseColumnDefs, type FitsColumnDef } from './column-defs.ts';
import { FitsError, NotFitsError, type FitsLocation } from './errors.ts';
import { BLOCK, findHeaderEnd, padToBlock, parseHeader, type Header } from './header.ts';

/** What an HDU holds, as far as its header tells. */
export type HduKind =
  | 'primary' | 'image' | 'bintable' | 'ascii-table' | 'compressed-table' | 'compressed-image' | 'unknown';

/** One HDU as found when the file was opened: its header, where its data are, and what it is. */
export interface HduInfo {
  readonly index: number;
  readonly header: Header;
  readonly headerStart: number;
  readonly dataStart: number;
  /** Bytes of data: the main table plus the heap (PCOUNT), without the padding to a block. */
  readonly dataBytes: number;
  readonly kind: HduKind;
  readonly extname?: string;
  readonly extver?: number;
  /** Rows of a table (ZNAXIS2 for a compressed table). */
  readonly rows?: number;
  /** The columns of a binary table (parsed when first asked for). */
  readonly columns?: readonly ColumnInfo[];
}

/** Bytes from a file or from memory; memory answers synchronously so decoding stays synchronous. */
interface ByteSource {
  readonly size: number;
  read(position: number, length: number): Uint8Array | Promise<Uint8Array>;
  close(): Promise<void>;
}

class FileSource implements ByteSource {
  readonly size: number;
  private readonly handle: FileHandle;

  constructor(handle: FileHandle, size: number) {
    this.handle = handle;
    this.size = size;
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    const out = Buffer.allocUnsafe(length);
    const done = await readAt(this.handle, out, position);
    return done === length ? out : out.subarray(0, done);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

class MemorySource implements ByteSource {
  readonly size: number;
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.size = bytes.length;
  }

  read(position: number, length: number): Uint8Array {
    return this.bytes.subarray(position, position + length);
  }

  async close(): Promise<void> {}
}

// Bytes of rows read at once by a table's batches (a batch holds at most this much row data).
const CHUNK_BYTES = 8 * 1024 * 1024;
// Most rows of zero width a table may have (they take no bytes, so the file size cannot bound them).
const MAX_EMPTY_ROWS = 2 ** 31 - 1;
// Header bytes read at first; grown until END is found.
const FIRST_HEADER_READ = 8 * BLOCK;

const STRUCTURAL = new Set([
  'SIMPLE', 'XTENSION', 'BITPIX', 'NAXIS', 'PCOUNT', 'GCOUNT', 'TFIELDS', 'THEAP', 'EXTEND', 'GROUPS',
  'CHECKSUM', 'DATASUM', 'END', 'EXTNAME', '',
]);

// Keywords of tile compression (FITS 4.0 §10): in a plain table's header they would make
// readers take it for a compressed one.
const COMPRESSION_KEYWORD = /^Z(TABLE|IMAGE|NAXIS\d*|PCOUNT|GCOUNT|THEAP|TILELEN|FORM\d+|CTYP\d+|BITPIX|CMPTYPE|SIMPLE|TENSION|EXTEND|HECKSUM|DATASUM|TILE\d+|NAME\d+|VAL\d+|QUANTIZ|DITHER0|BLANK|BLOCKED)$/;

/** True for keywords that describe the file's structure rather than the table (they do not become params). */
export function isStructuralKeyword(keyword: string): boolean {
  const k = keyword.toUpperCase();
  return STRUCTURAL.has(k) || /^NAXIS\d+$/.test(k) || isColumnKeyword(k) || COMPRESSION_KEYWORD.test(k);
}

/** The table-level keywords of a header as params (COMMENT and HISTORY included, structure left out). */
export function headerParams(header: Header): TableParam[] {
  const params: TableParam[] = [];
  for (const card of header.cards) {
    if (isStructuralKeyword(card.keyword)) continue;
    if (card.keyword === 'COMMENT' || card.keyword === 'HISTORY') {
      params.push({ name: card.keyword, value: card.comment ?? '' });
      continue;
    }
    if (card.value === undefined || card.value === null) continue;
    params.push({ name: card.keyword, value: card.value, ...(card.comment ? { description: card.comment } : {}) });
  }
  return params;
}

class HduRecord implements HduInfo {
  readonly index: number;
  readonly header: Header;
  readonly headerStart: number;
  readonly dataStart: number;
  readonly dataBytes: number;
  readonly kind: HduKind;
  readonly extname?: string;
  readonly extver?: number;
  readonly rows?: number;
  readonly at: FitsLocation;
  private defs?: { defs: FitsColumnDef[]; rowBytes: number };

  constructor(fields: Omit<HduInfo, 'columns'> & { at: FitsLocation }) {
    this.index = fields.index;
    this.header = fields.header;
    this.headerStart = fields.headerStart;
    this.dataStart = fields.dataStart;
    this.dataBytes = fields.dataBytes;
    this.kind = fields.kind;
    if (fields.extname !== undefined) this.extname = fields.extname;
    if (fields.extver !== undefined) this.extver = fields.extver;
    if (fields.rows !== undefined) this.rows = fields.rows;
    this.at = fields.at;
  }

  get columns(): readonly ColumnInfo[] | undefined {
    return this.kind === 'bintable' ? this.columnDefs().defs.map((d) => d.info) : undefined;
  }

  columnDefs(): { defs: FitsColumnDef[]; rowBytes: number } {
    this.defs ??= parseColumnDefs(this.header, this.at);
    return this.defs;
  }

  describe(): string {
    return `${this.index}${this.extname ? ` ${this.extname}${this.extver !== undefined ? `,${this.extver}` : ''}` : ''} (${this.kind})`;
  }
}

/**
 * A FITS file opened for reading. Opening walks the headers only (skipping each HDU's data,
 * heap and padding); table data are read in chunks when a table's batches are iterated.
 */
export class FitsFile {
  /** The file name used in messages. */
  readonly name: string;
  readonly hdus: readonly HduInfo[];
  private readonly source: ByteSource;
  private closed = false;

  private constructor(name: string, source: ByteSource, hdus: HduRecord[]) {
    this.name = name;
    this.source = source;
    this.hdus = hdus;
  }

  /** Opens a file and reads its headers. */
  static async open(path: string): Promise<FitsFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw new FitsError('fits_cannot_open', { file: path }, `cannot open: ${(error as Error).message}`, { cause: error });
    }
    try {
      const { size } = await handle.stat();
      const source = new FileSource(handle, size);
      const hdus = await walk(source, path);
      return new FitsFile(path, source, hdus);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** A FITS file held in memory (tests, fuzzing, bytes fetched over HTTP). */
  static async fromBytes(bytes: Uint8Array, name = 'memory'): Promise<FitsFile> {
    const source = new MemorySource(bytes);
    return new FitsFile(name, source, await walk(source, name));
  }

  /** The HDU with this EXTNAME (case ignored) and, if given, EXTVER; throws `fits_no_such_hdu` listing what exists. */
  find(extname: string, extver?: number): HduInfo {
    const want = extname.trim().toUpperCase();
    const hit = this.hdus.find((h) => h.extname?.toUpperCase() === want && (extver === undefined || (h.extver ?? 1) === extver));
    if (hit) return hit;
    const list = (this.hdus as HduRecord[]).map((h) => h.describe()).join('; ');
    throw new FitsError('fits_no_such_hdu', { file: this.name }, `no HDU named ${extname}${extver !== undefined ? ` with EXTVER ${extver}` : ''}; the file has: ${list}`);
  }

  /** An HDU by index (0 = primary) or EXTNAME. */
  hdu(ref: number | string): HduInfo {
    if (typeof ref === 'string') return this.find(ref);
    const h = this.hdus[ref];
    if (!h) throw new FitsError('fits_no_such_hdu', { file: this.name }, `no HDU ${ref}; the file has HDUs 0..${this.hdus.length - 1}`);
    return h;
  }

  /** Raw bytes of the file (for the tile-compression code); throws `fits_truncated` past the end. */
  async read(position: number, length: number): Promise<Uint8Array> {
    this.checkOpen();
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0) {
      throw new FitsError('fits_bad_read', { file: this.name }, `cannot read ${length} bytes at ${position}`);
    }
    if (position + length > this.source.size) {
      throw new FitsError('fits_truncated', { file: this.name }, `reading ${length} bytes at ${position} needs ${position + length - this.source.size} bytes more than the file has`);
    }
    const bytes = await this.source.read(position, length);
    if (bytes.length < length) throw new FitsError('fits_truncated', { file: this.name }, `the file ended ${length - bytes.length} bytes early while reading at ${position}`);
    return bytes;
  }

  /** The column definitions and row size of a binary table HDU (also of a compressed table's own rows). */
  columnDefs(ref: number | string): { defs: FitsColumnDef[]; rowBytes: number } {
    const h = this.record(ref);
    if (h.kind !== 'bintable' && h.kind !== 'compressed-table' && h.kind !== 'compressed-image') {
      throw new FitsError('fits_not_a_table', h.at, `HDU is ${h.kind === 'image' || h.kind === 'primary' ? 'an' : 'a'} ${h.kind}, not a binary table`);
    }
    return h.columnDefs();
  }

  /** The heap of a binary table HDU: where it starts in the file and a reader for it. */
  heap(ref: number | string): HeapReader & { readonly start: number } {
    const h = this.record(ref);
    const { rowBytes } = this.columnDefs(ref);
    const rows = h.header.requireInt('NAXIS2', h.at);
    const mainBytes = rowBytes * rows;
    const theap = h.header.get('THEAP') === undefined ? mainBytes : h.header.requireInt('THEAP', h.at);
    if (theap < mainBytes || theap > h.dataBytes) {
      throw new FitsError('fits_bad_keyword', { ...h.at, keyword: 'THEAP' }, `THEAP = ${theap} must lie between the end of the rows (${mainBytes}) and the end of the data (${h.dataBytes})`);
    }
    const start = h.dataStart + theap;
    const size = h.dataBytes - theap;
    return {
      start,
      size,
      read: (offset: number, length: number) => {
        this.checkOpen();
        return this.source.read(start + offset, length);
      },
    };
  }

  /**
   * A binary table HDU as a Table: batches read only the rows asked for, in chunks of at most
   * a few MB, and decode only the columns asked for. Re-iterable while the file is open.
   */
  table(ref: number | string): Table {
    const h = this.record(ref);
    if (h.kind === 'compressed-table') {
      throw new FitsError('fits_compressed', h.at, 'this is a tile-compressed table; reading it needs the tile decompressor');
    }
    if (h.kind !== 'bintable') throw new FitsError('fits_not_a_table', h.at, `HDU is a ${h.kind}, not a binary table`);
    const { defs, rowBytes } = h.columnDefs();
    const infos = defs.map((d) => d.info);
    const rows = h.rows ?? 0;
    if (rowBytes === 0 && rows > MAX_EMPTY_ROWS) {
      // Rows of no bytes cost nothing on disk; reading billions of them would never end.
      throw new FitsError('fits_bad_keyword', { ...h.at, keyword: 'NAXIS2' }, `NAXIS2 = ${rows} rows of 0 bytes each; a table of empty rows longer than ${MAX_EMPTY_ROWS} is refused`);
    }
    const hasVariable = defs.some((d) => d.code === 'P' || d.code === 'Q');
    const heap = hasVariable ? this.heap(h.index) : undefined;
    const read = (selected: number[], options: ReadOptions) => this.readBatches(h, defs, rowBytes, rows, selected, heap, options);
    return {
      ...(h.extname !== undefined ? { name: h.extname } : {}),
      columns: infos,
      rowCount: rows,
      params: headerParams(h.header),
      batches(options: ReadOptions = {}): AsyncIterable<ColumnBatch> {
        return read(columnIndexes(infos, options.columns), options);
      },
    };
  }

  private async *readBatches(
    h: HduRecord, defs: FitsColumnDef[], rowBytes: number, rows: number, selected: number[],
    heap: HeapReader | undefined, options: ReadOptions,
  ): AsyncGenerator<ColumnBatch> {
    const wanted = Math.max(1, Math.floor(options.batchRows ?? DEFAULT_BATCH_ROWS));
    const chunkRows = rowBytes === 0 ? wanted : Math.max(1, Math.min(wanted, Math.floor(CHUNK_BYTES / rowBytes)));
    const readChunk = (start: number): Uint8Array | Promise<Uint8Array> => {
      this.checkOpen();
      const n = Math.min(chunkRows, rows - start);
      return this.source.read(h.dataStart + start * rowBytes, n * rowBytes);
    };
    // Read the next chunk while the current one is decoded.
    let next: Uint8Array | Promise<Uint8Array> | undefined = rows > 0 ? readChunk(0) : undefined;
    for (let start = 0; start < rows; start += chunkRows) {
      options.signal?.throwIfAborted();
      const bytes = await next!;
      const n = Math.min(chunkRows, rows - start);
      if (bytes.length < n * rowBytes) {
        throw new FitsError('fits_truncated', h.at, `the file ended while reading rows ${start + 1}..${start + n}`);
      }
      next = start + n < rows ? readChunk(start + n) : undefined;
      // A read-ahead whose batch is never asked for must not become an unhandled rejection.
      if (next instanceof Promise) next.catch(() => {});
      yield await decodeRows(defs, bytes, n, rowBytes, selected, heap, h.at, start);
    }
  }

  /** Checks the CHECKSUM and DATASUM of an HDU against its bytes; returns what is wrong (empty when fine). */
  async verifyChecksums(ref: number | string): Promise<FitsError[]> {
    const h = this.record(ref);
    const headerBytes = await this.read(h.headerStart, h.dataStart - h.headerStart);
    const sum = new Checksum();
    const end = Math.min(this.source.size, h.dataStart + padToBlock(h.dataBytes));
    for (let pos = h.dataStart; pos < end; pos += CHUNK_BYTES) {
      const n = Math.min(CHUNK_BYTES, end - pos);
      sum.add(await this.read(pos, n), pos - h.dataStart);
    }
    return verifyChecksums(h.header, headerBytes, sum.sum, h.at);
  }

  /** Closes the file; tables read from it stop working. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source.close();
  }

  /** `await using f = await FitsFile.open(path)` closes the file at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private record(ref: number | string): HduRecord {
    return this.hdu(ref) as HduRecord;
  }

  private checkOpen(): void {
    if (this.closed) throw new FitsError('fits_closed', { file: this.name }, 'the file has been closed');
  }
}

async function walk(source: ByteSource, file: string): Promise<HduRecord[]> {
  const name = file;
  const hdus: HduRecord[] = [];
  let pos = 0;
  const size = source.size;
  if (size < 9) throw new NotFitsError({ file: name }, `not a FITS file: only ${size} bytes`);
  const first = await source.read(0, Math.min(size, 9));
  if (Buffer.from(first).toString('latin1') !== 'SIMPLE  =') throw new NotFitsError({ file: name });
  for (let index = 0; pos < size; index++) {
    if (index > 0) {
      // Anything after the last HDU that is not an extension (zero fill, special records) is ignored.
      if (size - pos < 80) break;
      const start = Buffer.from(await source.read(pos, 8)).toString('latin1');
      if (start !== 'XTENSION') break;
    }
    const at: FitsLocation = { file: name, hdu: index };
    const { header, length } = await readHeader(source, pos, at);
    hdus.push(describeHdu(header, index, pos, pos + length, size, at));
    const h = hdus[hdus.length - 1];
    pos = h.dataStart + padToBlock(h.dataBytes);
  }
  return hdus;
}

async function readHeader(source: ByteSource, start: number, at: FitsLocation): Promise<{ header: Header; length: number }> {
  const size = source.size;
  let want = FIRST_HEADER_READ;
  for (;;) {
    const n = Math.min(want, size - start);
    const bytes = await source.read(start, n);
    // Only whole cards are searched; a header must hold END within the file.
    const end = findHeaderEnd(bytes.subarray(0, n - (n % 80)));
    if (end >= 0) {
      if (start + end > size) {
        throw new FitsError('fits_truncated', at, `the header's last block is cut short: ${start + end - size} bytes are missing`);
      }
      return { header: parseHeader(bytes.subarray(0, end), at, true), length: end };
    }
    if (start + n >= size) {
      // Parse what there is: a damaged card is reported as such, otherwise "no END".
      parseHeader(bytes.subarray(0, n - (n % 80)), at, true);
      throw new FitsError('fits_header_no_end', at, 'header has no END card before the end of the file; the file is truncated or damaged');
    }
    want *= 4;
  }
}

function axisProduct(header: Header, naxis: number, from: number, at: FitsLocation): number {
  let n = 1;
  for (let i = from; i <= naxis; i++) n *= header.requireInt(`NAXIS${i}`, at);
  if (!Number.isSafeInteger(n)) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'NAXIS' }, 'the data size is too large to handle');
  return n;
}

function describeHdu(header: Header, index: number, headerStart: number, dataStart: number, fileSize: number, at0: FitsLocation): HduRecord {
  const extnameValue = header.get('EXTNAME');
  const extname = typeof extnameValue === 'string' ? extnameValue.trim() : undefined;
  const at: FitsLocation = { ...at0, ...(extname ? { extname } : {}) };
  const first = header.cards[0]?.keyword;
  if (index === 0 && first !== 'SIMPLE') throw new NotFitsError(at);
  if (index > 0 && first !== 'XTENSION') throw new FitsError('fits_bad_header', at, 'an extension header must start with XTENSION');
  const bitpixValue = header.getNumber('BITPIX', at);
  if (bitpixValue === undefined) throw new FitsError('fits_missing_keyword', { ...at, keyword: 'BITPIX' }, 'required keyword is missing');
  if (![8, 16, 32, 64, -32, -64].includes(bitpixValue)) {
    throw new FitsError('fits_bad_keyword', { ...at, keyword: 'BITPIX' }, `BITPIX = ${bitpixValue}; expected one of 8, 16, 32, 64, -32, -64`);
  }
  const naxis = header.requireInt('NAXIS', at);
  if (naxis > 999) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'NAXIS' }, `NAXIS = ${naxis}; at most 999 axes`);
  const groups = index === 0 && naxis > 0 && header.get('GROUPS') === true && header.requireInt('NAXIS1', at) === 0;
  const extension = index > 0;
  const pcount = extension || groups ? header.requireInt('PCOUNT', at) : 0;
  const gcount = extension || groups ? header.requireInt('GCOUNT', at) : 1;
  let elements = naxis === 0 ? 0 : axisProduct(header, naxis, groups ? 2 : 1, at);
  if (naxis === 0 && pcount === 0) elements = 0;
  const dataBytes = (Math.abs(bitpixValue) / 8) * gcount * (pcount + elements);
  if (!Number.isSafeInteger(dataBytes)) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'NAXIS' }, 'the data size is too large to handle');
  let kind: HduKind = 'unknown';
  let rows: number | undefined;
  if (index === 0) {
    kind = groups ? 'unknown' : 'primary';
  } else {
    const xt = header.getString('XTENSION', at)?.trim().toUpperCase();
    if (xt === 'BINTABLE' || xt === 'A3DTABLE') {
      if (bitpixValue !== 8) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'BITPIX' }, `a binary table needs BITPIX = 8, not ${bitpixValue}`);
      if (naxis !== 2) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'NAXIS' }, `a binary table needs NAXIS = 2, not ${naxis}`);
      if (gcount !== 1) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'GCOUNT' }, `a binary table needs GCOUNT = 1, not ${gcount}`);
      if (header.get('ZTABLE') === true) {
        kind = 'compressed-table';
        rows = header.requireInt('ZNAXIS2', at);
      } else if (header.get('ZIMAGE') === true) {
        kind = 'compressed-image';
      } else {
        kind = 'bintable';
        rows = header.requireInt('NAXIS2', at);
      }
    } else if (xt === 'TABLE') {
      kind = 'ascii-table';
      rows = header.requireInt('NAXIS2', at);
    } else if (xt === 'IMAGE' || xt === 'IUEIMAGE') {
      kind = 'image';
    }
  }
  const extverValue = header.get('EXTVER');
  const extver = typeof extverValue === 'number' && Number.isInteger(extverValue) ? extverValue : undefined;
  if (dataStart + dataBytes > fileSize) {
    throw new FitsError('fits_truncated', at, `the header announces ${dataBytes} bytes of data from byte ${dataStart} but the file ends ${dataStart + dataBytes - fileSize} bytes short`);
  }
  return new HduRecord({
    index, header, headerStart, dataStart, dataBytes, kind, at,
    ...(extname !== undefined ? { extname } : {}),
    ...(extver !== undefined ? { extver } : {}),
    ...(rows !== undefined ? { rows } : {}),
  });
}
