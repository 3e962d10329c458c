// Writing FITS files from tables. A binary-table header must state the row count, string
// widths and heap size before the first row is written, so when the table's descriptions do
// not give them the table is scanned first (as STIL does; tables are re-iterable), reading
// only the columns that need it. The data then stream out batch by batch; rows and heap are
// written at their final positions, so memory stays bounded, and both are summed for
// DATASUM on the way. Each header is written last, once its CHECKSUM is known (its size is
// fixed beforehand: only the two checksum values change).
import { randomUUID } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  arrayTypeOf, columnInfo, isIntegerType,
  type ColumnData, type ColumnInfo, type NumericArray, type Table,
} from '../table/index.ts';
import { replaceTarget } from '../common/index.ts';
import { encodeRows, MemoryHeap } from './bintable-codec.ts';
import { Checksum, CHECKSUM_PLACEHOLDER, setChecksums } from './checksum.ts';
import { addColumnCards, columnDefsFromInfos, fitsCodeOf, rowBytesOf, type FitsColumnDef } from './column-defs.ts';
import { describeLocation, FitsError, type FitsLocation } from './errors.ts';
import { isStructuralKeyword } from './fits-file.ts';
import { Header, padToBlock } from './header.ts';
import { heapElementBytes } from './tform.ts';

/** One table to write as a binary-table extension, with extra header keywords. */
export interface FitsHduInput {
  readonly table: Table;
  /** Keywords added to the extension header (structural and column keywords are ignored). */
  readonly header?: Header;
}

/** Options of {@link writeFits}. */
export interface WriteFitsOptions {
  /** Keywords added to the primary header (structural ones are ignored). */
  readonly primaryHeader?: Header;
  /** Write CHECKSUM and DATASUM in every HDU (default true). */
  readonly checksum?: boolean;
  readonly signal?: AbortSignal;
  /** Called after each batch with the rows written so far, over all HDUs. */
  readonly onProgress?: (rowsWritten: number) => void;
}


// Bytes gathered before one write to the file.
const WRITE_CHUNK = 4 * 1024 * 1024;

/**
 * Writes one HDU to an open file at a known position: data first, in pieces at any offset
 * (summed for DATASUM as they go), then `finish` pads the data, sets the checksums and
 * writes the header, whose size cannot change after construction.
 */
export class HduWriter {
  readonly headerStart: number;
  readonly dataStart: number;
  private readonly handle: FileHandle;
  private readonly header: Header;
  private readonly headerBytes: number;
  private readonly checksum: boolean;
  private readonly sum = new Checksum();

  /**
   * `header` is complete but for CHECKSUM/DATASUM, which are reserved here when `checksum` is
   * set; the writer owns it from now on (it sets the checksums in it).
   */
  constructor(handle: FileHandle, headerStart: number, header: Header, checksum = true) {
    this.handle = handle;
    this.headerStart = headerStart;
    this.header = header;
    this.checksum = checksum;
    if (checksum) {
      header.delete('CHECKSUM');
      header.delete('DATASUM');
      header.set('CHECKSUM', CHECKSUM_PLACEHOLDER, 'HDU checksum');
      // Ten digits: the widest a 32-bit sum gets, so the card never changes size.
      header.set('DATASUM', '0000000000', 'data unit checksum');
    }
    this.headerBytes = header.byteLength();
    this.dataStart = headerStart + this.headerBytes;
  }

  /** Writes data bytes at `offset` from the start of the data. */
  async write(bytes: Uint8Array, offset: number): Promise<void> {
    if (bytes.length === 0) return;
    if (this.checksum) this.sum.add(bytes, offset);
    await writeAll(this.handle, bytes, this.dataStart + offset);
  }

  /** Pads `dataBytes` of data to a block, writes the header; returns the position after the HDU. */
  async finish(dataBytes: number): Promise<number> {
    const end = this.dataStart + padToBlock(dataBytes);
    const padding = end - this.dataStart - dataBytes;
    if (padding > 0) await writeAll(this.handle, new Uint8Array(padding), this.dataStart + dataBytes);
    if (this.checksum) setChecksums(this.header, this.sum.sum);
    const bytes = this.header.toBytes();
    if (bytes.length !== this.headerBytes) {
      throw new FitsError('fits_header_changed', {}, `header grew from ${this.headerBytes} to ${bytes.length} bytes after its data were written`);
    }
    await writeAll(this.handle, bytes, this.headerStart);
    return end;
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** Writes a header and in-memory data as one HDU (padded, with checksums); returns the position after it. */
export async function writeHduPadded(handle: FileHandle, position: number, header: Header, data: Uint8Array, checksum = true): Promise<number> {
  const w = new HduWriter(handle, position, header, checksum);
  await w.write(data, 0);
  return w.finish(data.length);
}

/**
 * Gathers sequential pieces into large writes, and keeps one write in flight so that the
 * file system works while the next batch is encoded (at most two chunks held).
 */
class Gather {
  private pieces: Uint8Array[] = [];
  private bytes = 0;
  private start: number;
  private readonly writer: HduWriter;
  private inFlight: Promise<void> | undefined;

  constructor(writer: HduWriter, start: number) {
    this.writer = writer;
    this.start = start;
  }

  async add(piece: Uint8Array): Promise<void> {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.bytes += piece.length;
    if (this.bytes >= WRITE_CHUNK) await this.send();
  }

  /** Writes what is gathered and waits for every write to finish. */
  async flush(): Promise<void> {
    await this.send();
    await this.settle();
  }

  /** Waits for the write in flight; call on every path so that no write outlives the file. */
  async settle(): Promise<void> {
    const pending = this.inFlight;
    this.inFlight = undefined;
    await pending;
  }

  private async send(): Promise<void> {
    await this.settle();
    if (this.bytes === 0) return;
    const joined = this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces, this.bytes);
    const at = this.start;
    this.start += this.bytes;
    this.pieces = [];
    this.bytes = 0;
    this.inFlight = this.writer.write(joined, at);
    this.inFlight.catch(() => {}); // reported by settle()
  }
}

/** What a binary-table header needs to know about a table's data. */
export interface TablePlan {
  /** The descriptions with string widths and integer null values filled in. */
  readonly columns: readonly ColumnInfo[];
  readonly rowCount: number;
  readonly heapSize: number;
  /** Largest element count per variable-length column. */
  readonly maxLengths: readonly (number | undefined)[];
}

interface ColumnScan {
  maxLength: number;
  heapBytes: number;
  hasNull: boolean;
  candidates: (number | bigint)[];
  used: boolean[];
}

// Values tried, in order, as the null value of an integer column that has nulls but none declared.
const NULL_CANDIDATES: Readonly<Partial<Record<string, readonly (number | bigint)[]>>> = {
  int8: [-128, 127], uint8: [255, 0], int16: [-32768, 32767], uint16: [65535, 0],
  int32: [-2147483648, 2147483647], uint32: [4294967295, 0],
  int64: [-9223372036854775808n, 9223372036854775807n], uint64: [18446744073709551615n, 0n],
};

const STORED_CANDIDATES: Readonly<Partial<Record<string, readonly number[]>>> = {
  uint8: [255, 0], int16: [-32768, 32767], int32: [-2147483648, 2147483647], int64: [-(2 ** 63)],
};

function needsScan(info: ColumnInfo): boolean {
  if (info.variable) return true;
  if (info.type === 'string') return info.width === undefined;
  if (info.storage) return isIntegerType(info.storage.type) && info.nullValue === undefined;
  return isIntegerType(info.type) && info.nullValue === undefined;
}

/**
 * Finds what the header needs (row count, string widths, heap size, null values for integer
 * columns with nulls but none declared), reading the table once if its descriptions do not
 * say; only the columns that need it are read.
 */
export async function planTable(table: Table, signal?: AbortSignal, at: FitsLocation = {}): Promise<TablePlan> {
  const infos = table.columns;
  const scanIdx = infos.map((info, i) => (needsScan(info) ? i : -1)).filter((i) => i >= 0);
  if (scanIdx.length === 0 && table.rowCount !== undefined) {
    return { columns: infos, rowCount: table.rowCount, heapSize: 0, maxLengths: infos.map(() => undefined) };
  }
  const names = infos.map((c) => c.name);
  const unique = new Set(names).size === names.length;
  // Reading by name needs unique names; otherwise read every column.
  const readIdx = unique ? (scanIdx.length > 0 ? scanIdx : infos.slice(0, 1).map((_, i) => i)) : infos.map((_, i) => i);
  const scans = new Map<number, ColumnScan>();
  for (const i of scanIdx) {
    const info = infos[i];
    const candidates = info.storage ? STORED_CANDIDATES[info.storage.type] ?? [] : NULL_CANDIDATES[info.type] ?? [];
    scans.set(i, { maxLength: 0, heapBytes: 0, hasNull: false, candidates: [...candidates], used: candidates.map(() => false) });
  }
  let rowCount = 0;
  for await (const batch of table.batches({ ...(unique ? { columns: readIdx.map((i) => names[i]) } : {}), ...(signal ? { signal } : {}) })) {
    signal?.throwIfAborted();
    rowCount += batch.rowCount;
    readIdx.forEach((i, k) => {
      const scan = scans.get(i);
      if (scan) scanColumn(infos[i], batch.columns[k], batch.rowCount, scan);
    });
  }
  let heapSize = 0;
  const maxLengths: (number | undefined)[] = infos.map(() => undefined);
  const columns = infos.map((info, i) => {
    const scan = scans.get(i);
    if (!scan) return info;
    if (info.variable) {
      heapSize += scan.heapBytes;
      maxLengths[i] = scan.maxLength;
    }
    let extra: Partial<ColumnInfo> = {};
    if (info.type === 'string' && (info.width === undefined || info.variable)) {
      extra = { width: Math.max(info.variable ? 0 : 1, scan.maxLength, info.width ?? 0) };
    }
    if (scan.hasNull && info.nullValue === undefined) {
      const k = scan.used.indexOf(false);
      if (k < 0) {
        throw new FitsError('fits_no_null_value', { ...at, column: info.name }, 'the column has nulls but uses every value that could mark them; give it a nullValue');
      }
      extra = { ...extra, nullValue: scan.candidates[k] };
    }
    if (Object.keys(extra).length === 0) return info;
    const { name, type, ...rest } = info;
    return columnInfo(name, type, { ...rest, ...extra });
  });
  return { columns, rowCount, heapSize, maxLengths };
}

function scanColumn(info: ColumnInfo, data: ColumnData, rowCount: number, scan: ColumnScan): void {
  if (info.type === 'string') {
    const values = data.values as string[];
    for (let e = 0; e < values.length; e++) {
      const s = values[e];
      const n = typeof s === 'string' && !(data.valid && data.valid[e] === 0) ? s.length : 0;
      if (n > scan.maxLength) scan.maxLength = n;
      if (info.variable) scan.heapBytes += n;
    }
    return;
  }
  if (info.variable) {
    const o = data.offsets;
    if (!o) throw new FitsError('fits_bad_batch', { column: info.name }, 'a variable-length column needs offsets');
    const code = fitsCodeOf(info);
    for (let r = 0; r < rowCount; r++) {
      const n = o[r + 1] - o[r];
      if (n > scan.maxLength) scan.maxLength = n;
      scan.heapBytes += heapElementBytes(code, n);
    }
  }
  if (scan.candidates.length === 0) return;
  const values = data.values as NumericArray;
  const Ctor = arrayTypeOf(info.type);
  if (!Ctor || !(values instanceof Ctor)) return; // the encoder reports the wrong array type
  const valid = data.valid;
  const [a, b] = scan.candidates;
  if (info.storage) {
    const v = values as Float64Array;
    const { scale, zero } = info.storage;
    for (let e = 0; e < v.length; e++) {
      if ((valid && valid[e] === 0) || v[e] !== v[e]) { scan.hasNull = true; continue; }
      const s = Math.round((v[e] - zero) / scale);
      if (s === a) scan.used[0] = true;
      else if (s === b) scan.used[1] = true;
    }
    return;
  }
  if (!valid) return;
  for (let e = 0; e < values.length; e++) {
    if (valid[e] === 0) { scan.hasNull = true; continue; }
    const x = values[e];
    if (x === a) scan.used[0] = true;
    else if (x === b) scan.used[1] = true;
  }
}

/** Adds table params and extra cards to a header, leaving out structural and column keywords. */
function addExtraCards(header: Header, params: Table['params'], extra: Header | undefined): void {
  for (const p of params ?? []) {
    if (isStructuralKeyword(p.name)) continue;
    if (p.name === 'COMMENT' || p.name === 'HISTORY') {
      header.addCommentary(p.name, String(p.value));
      continue;
    }
    const comment = p.unit ? `[${p.unit}]${p.description ? ` ${p.description}` : ''}` : p.description;
    header.set(p.name, p.value, comment);
  }
  for (const card of extra?.cards ?? []) {
    if (isStructuralKeyword(card.keyword)) continue;
    if (card.value === undefined) header.add({ keyword: card.keyword, ...(card.comment !== undefined ? { comment: card.comment } : {}) });
    else header.set(card.keyword, card.value, card.comment, card.float ? { float: true } : {});
  }
}

/** The primary header of a file of extensions: SIMPLE, BITPIX 8, NAXIS 0, EXTEND, then `extra`. */
export function primaryHeader(extra?: Header): Header {
  const h = new Header()
    .set('SIMPLE', true, 'conforms to FITS standard')
    .set('BITPIX', 8, 'array data type')
    .set('NAXIS', 0, 'number of array dimensions')
    .set('EXTEND', true, 'extensions may follow');
  addExtraCards(h, undefined, extra);
  return h;
}

/** The header of a binary-table extension with these columns, sizes, name, params and extra cards. */
export function bintableHeader(
  defs: readonly FitsColumnDef[], rows: number, heapSize: number,
  meta: { name?: string; params?: Table['params']; extra?: Header } = {},
): Header {
  const h = new Header()
    .set('XTENSION', 'BINTABLE', 'binary table extension')
    .set('BITPIX', 8, '8-bit bytes')
    .set('NAXIS', 2, '2-dimensional binary table')
    .set('NAXIS1', rowBytesOf(defs), 'width of table in bytes')
    .set('NAXIS2', rows, 'number of rows in table')
    .set('PCOUNT', heapSize, 'size of special data area')
    .set('GCOUNT', 1, 'one data group')
    .set('TFIELDS', defs.length, 'number of fields in each row');
  addColumnCards(h, defs);
  if (meta.name !== undefined && meta.name !== '') h.set('EXTNAME', meta.name, 'name of this table');
  addExtraCards(h, meta.params, meta.extra);
  return h;
}

/**
 * Writes a table as one binary-table HDU at `position` of an open file; returns the position
 * after it. `plan` may be given when it is already known (see {@link planTable}).
 */
export async function writeTableHdu(
  handle: FileHandle, position: number, table: Table,
  options: { header?: Header; checksum?: boolean; signal?: AbortSignal; plan?: TablePlan; at?: FitsLocation; onRows?: (rows: number) => void } = {},
): Promise<number> {
  const at = options.at ?? {};
  const plan = options.plan ?? await planTable(table, options.signal, at);
  const defs = columnDefsFromInfos(plan.columns, { heapSize: plan.heapSize, maxLengths: plan.maxLengths });
  const rowBytes = rowBytesOf(defs);
  const header = bintableHeader(defs, plan.rowCount, plan.heapSize, {
    ...(table.name !== undefined ? { name: table.name } : {}),
    ...(table.params ? { params: table.params } : {}),
    ...(options.header ? { extra: options.header } : {}),
  });
  const writer = new HduWriter(handle, position, header, options.checksum ?? true);
  const mainBytes = rowBytes * plan.rowCount;
  const rowsOut = new Gather(writer, 0);
  const heapOut = new Gather(writer, mainBytes);
  const heap = new MemoryHeap();
  let rows = 0;
  const changed = (what: string): FitsError => new FitsError('fits_table_changed', at, `${what}; the table must give the same rows each time it is read`);
  try {
    for await (const batch of table.batches(options.signal ? { signal: options.signal } : {})) {
      options.signal?.throwIfAborted();
      if (rows + batch.rowCount > plan.rowCount) throw changed(`the table gave more than the ${plan.rowCount} rows it had when scanned`);
      const encoded = encodeRows(defs, batch, rowBytes, heap, at, rows);
      rows += batch.rowCount;
      await rowsOut.add(encoded);
      if (heap.size > plan.heapSize) throw changed(`the variable-length arrays need more than the ${plan.heapSize} heap bytes found when scanned`);
      for (const piece of heap.drain()) await heapOut.add(piece);
      options.onRows?.(batch.rowCount);
    }
    if (rows !== plan.rowCount) throw changed(`the table gave ${rows} rows, not the ${plan.rowCount} it had when scanned`);
    if (heap.size !== plan.heapSize) throw changed(`the variable-length arrays took ${heap.size} heap bytes, not the ${plan.heapSize} found when scanned`);
    await rowsOut.flush();
    await heapOut.flush();
  } finally {
    // On an error, let writes already started end before the caller closes the file.
    await rowsOut.settle().catch(() => {});
    await heapOut.settle().catch(() => {});
  }
  return writer.finish(mainBytes + plan.heapSize);
}

/** What {@link writeFitsWith} hands the function that writes one extension. */
export interface HduWriteOptions {
  checksum: boolean;
  at: FitsLocation;
  header?: Header;
  signal?: AbortSignal;
  onRows?: (rows: number) => void;
}

/**
 * Writes a FITS file of an empty primary HDU and one extension per input, each written by
 * `writeHdu` (which returns the position after it). Atomic: written under a temporary name
 * in the same directory and renamed at the end; on any error or abort the temporary file is
 * removed and an existing file at `path` is left as it was.
 */
export async function writeFitsWith<T extends FitsHduInput>(
  path: string, hdus: readonly T[], options: WriteFitsOptions,
  writeHdu: (handle: FileHandle, position: number, hdu: T, options: HduWriteOptions) => Promise<number>,
): Promise<void> {
  const checksum = options.checksum ?? true;
  // A link is written through to its file; a directory or device is refused, not replaced.
  const target = await replaceTarget(path);
  if ('problem' in target) throw new FitsError('fits_cannot_write', { file: path }, target.problem);
  const tmp = join(dirname(target.path), `.${basename(target.path)}.${randomUUID().slice(0, 8)}.tmp`);
  let handle: FileHandle;
  try {
    handle = await open(tmp, 'wx');
  } catch (error) {
    throw new FitsError('fits_cannot_write', { file: path }, `cannot create a file next to it: ${(error as Error).message}`, { cause: error });
  }
  let closed = false;
  try {
    options.signal?.throwIfAborted();
    let position = await writeHduPadded(handle, 0, primaryHeader(options.primaryHeader), new Uint8Array(0), checksum);
    let rowsWritten = 0;
    const onRows = options.onProgress
      ? (n: number): void => { rowsWritten += n; options.onProgress!(rowsWritten); }
      : undefined;
    for (let i = 0; i < hdus.length; i++) {
      const hdu = hdus[i];
      position = await writeHdu(handle, position, hdu, {
        checksum,
        at: { file: path, hdu: i + 1, ...(hdu.table.name ? { extname: hdu.table.name } : {}) },
        ...(hdu.header ? { header: hdu.header } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(onRows ? { onRows } : {}),
      });
    }
    await handle.truncate(position);
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(tmp, target.path);
  } catch (error) {
    if (!closed) await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw addFile(error, path);
  }
}

/**
 * Writes a FITS file: an empty primary HDU, then one binary-table extension per table.
 * Atomic: the file is written under a temporary name in the same directory and renamed at
 * the end; on any error or abort the temporary file is removed.
 */
export async function writeFits(path: string, hdus: readonly FitsHduInput[], options: WriteFitsOptions = {}): Promise<void> {
  await writeFitsWith(path, hdus, options, (handle, position, hdu, common) => writeTableHdu(handle, position, hdu.table, common));
}

// Errors from column descriptions name the column but not the file being written.
function addFile(error: unknown, path: string): unknown {
  if (error instanceof FitsError && error.location.file === undefined) {
    const what = error.message.slice(describeLocation(error.location).length);
    return new FitsError(error.code, { ...error.location, file: path }, what, { cause: error.cause ?? error });
  }
  // What the system refused (a full disk, a directory in the way) names the file, as bad input does.
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new FitsError('fits_cannot_write', { file: path }, error.message, { cause: error });
  }
  return error;
}
