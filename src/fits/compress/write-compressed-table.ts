// Writing a table as a tile-compressed binary table (FITS 4.0 §10.3), in the layout cfitsio
// writes and funpack reads: one row per tile of ZTILELEN original rows, one 1QB byte array
// per column holding that column of the tile compressed (RICE_1, GZIP_1 or GZIP_2), and the
// original table's keywords kept (TFORMn as ZFORMn, NAXIS1/NAXIS2/PCOUNT as ZNAXIS1/
// ZNAXIS2/ZPCOUNT). Memory stays at about one tile: each tile is compressed as soon as its
// rows have arrived and its bytes go to the heap at their final place; the small table of
// descriptors (16 bytes per column per tile) is held until the end, when it and the header
// (whose size was fixed at the start) are written.
import type { FileHandle } from 'node:fs/promises';
import {
  concatBatches, sliceBatch, type ColumnBatch, type Table,
} from '../../table/index.ts';
import { encodeRows, MemoryHeap } from '../bintable-codec.ts';
import { columnDefsFromInfos, rowBytesOf, type FitsColumnDef } from '../column-defs.ts';
import { FitsError, type FitsLocation } from '../errors.ts';
import {
  bintableHeader, HduWriter, planTable, writeFitsWith, writeTableHdu,
  type FitsHduInput, type TablePlan, type WriteFitsOptions,
} from '../fits-writer.ts';
import type { Header } from '../header.ts';
import { chooseAlgorithm, columnCodec, COMPRESSION_CHOICES, type ColumnCodec, type CompressionChoice } from './column-codec.ts';
import { DEFAULT_GZIP_LEVEL, gzipTileSync } from './gzip.ts';
import { compressTile, compressTileSync } from './tile-codec.ts';

/** cfitsio's tile size: about this many bytes of original rows per tile. */
export const DEFAULT_TILE_BYTES = 10_000_000;

/** How to compress a table. */
export interface CompressOptions {
  /** The algorithm for every column (default `auto`); where it does not fit a column, `auto` is used. */
  readonly algorithm?: CompressionChoice;
  /** Algorithms for some columns, by name; one that does not fit its column is an error. */
  readonly columns?: Readonly<Record<string, CompressionChoice>>;
  /** Original rows per tile; default: as cfitsio, as many rows as fit in 10 MB (at least 1). */
  readonly tileRows?: number;
  /** gzip level 0..9 for GZIP_1/GZIP_2 columns (default 6; cfitsio uses 1). */
  readonly gzipLevel?: number;
}

/** Options of {@link writeCompressedTableHdu}. */
export interface CompressedHduOptions extends CompressOptions {
  /** Keywords added to the header (structural and column keywords are ignored). */
  readonly header?: Header;
  /** Write CHECKSUM and DATASUM (default true). */
  readonly checksum?: boolean;
  readonly signal?: AbortSignal;
  /** What the table holds, when already known (see planTable). */
  readonly plan?: TablePlan;
  /** Names the file and HDU in errors. */
  readonly at?: FitsLocation;
  /** Called after each batch with its row count. */
  readonly onRows?: (rows: number) => void;
}

// Bytes gathered before one write to the file.
const WRITE_CHUNK = 4 * 1024 * 1024;
// The smallest gzip member holding at least one byte: 10 header, 3 deflate, 8 trailer bytes.
const MIN_GZIP_BYTES = 21;
// Bytes of one cell of the compressed table: a Q descriptor (64-bit length and offset).
const CELL_BYTES = 16;

/** Rows per tile: the option if given, else cfitsio's rule, never more than the table has. */
export function tileRowsFor(rowBytes: number, rowCount: number, requested?: number, at: FitsLocation = {}): number {
  if (requested !== undefined && (!Number.isSafeInteger(requested) || requested < 1)) {
    throw new FitsError('fits_bad_compression', at, `tile length ${requested} must be a whole number of rows, at least 1`);
  }
  const rows = requested ?? Math.max(1, Math.floor(DEFAULT_TILE_BYTES / Math.max(1, rowBytes)));
  return Math.max(1, Math.min(rows, rowCount));
}

/** The codec of every column for these options (checks the names and choices given). */
export function columnCodecs(defs: readonly FitsColumnDef[], options: CompressOptions, at: FitsLocation = {}): ColumnCodec[] {
  const named = options.columns ?? {};
  for (const [name, choice] of Object.entries(named)) {
    if (!defs.some((d) => d.name === name)) {
      throw new FitsError('fits_bad_compression', at, `compression is asked for column "${name}", which the table does not have; it has ${defs.map((d) => d.name).join(', ')}`);
    }
    if (!COMPRESSION_CHOICES.includes(choice)) {
      throw new FitsError('fits_bad_compression', { ...at, column: name }, `unknown compression "${String(choice)}"; use one of ${COMPRESSION_CHOICES.join(', ')}`);
    }
  }
  const all = options.algorithm ?? 'auto';
  if (!COMPRESSION_CHOICES.includes(all)) {
    throw new FitsError('fits_bad_compression', at, `unknown compression "${String(all)}"; use one of ${COMPRESSION_CHOICES.join(', ')}`);
  }
  return defs.map((d) => {
    refuseUnreadable(d, at);
    const own = Object.hasOwn(named, d.name);
    return columnCodec(d, chooseAlgorithm(d, own ? named[d.name] : all, own, at), at);
  });
}

/**
 * Variable-length strings (PA) and double complex arrays (PM) are refused: cfitsio 4.2's
 * funpack crashes on them even in files fpack wrote itself, so no reader but ours could
 * read them back. (Bit arrays, PX, cfitsio cannot store at all; see columnCodec.)
 */
function refuseUnreadable(def: FitsColumnDef, at: FitsLocation): void {
  if ((def.code === 'P' || def.code === 'Q') && (def.elementCode === 'A' || def.elementCode === 'M')) {
    const what = def.elementCode === 'A' ? 'variable-length strings' : 'variable-length double complex arrays';
    throw new FitsError('fits_unsupported', { ...at, column: def.name }, `${what} (TFORM ${def.tform}) cannot be tile-compressed so that cfitsio (funpack) reads them back; give the strings a fixed width, or write this table uncompressed`);
  }
}

/**
 * The compressed table's header from the original one: NAXIS1/NAXIS2/PCOUNT and TFORMn kept
 * as ZNAXIS1/ZNAXIS2/ZPCOUNT and ZFORMn, ZCTYPn naming each column's algorithm. PCOUNT and
 * the TFORMn maxima are placeholders until the data are written (same card count).
 */
export function compressedHeader(original: Header, codecs: readonly ColumnCodec[], tileRows: number, tiles: number): Header {
  const h = original.clone();
  const gone = ['ZTABLE', 'ZTILELEN', 'ZNAXIS1', 'ZNAXIS2', 'ZPCOUNT', 'ZHEAPPTR', 'ZHECKSUM', 'ZDATASUM', 'THEAP'];
  for (let n = 1; n <= 999; n++) gone.push(`ZFORM${n}`, `ZCTYP${n}`);
  h.deleteAll(gone);
  const naxis1 = h.requireInt('NAXIS1');
  const naxis2 = h.requireInt('NAXIS2');
  const pcount = h.requireInt('PCOUNT');
  h.set('NAXIS1', CELL_BYTES * codecs.length, 'width of table in bytes');
  h.set('NAXIS2', tiles, 'number of tiles');
  h.set('PCOUNT', 0, 'size of special data area');
  let at = h.indexOf('TFIELDS') + 1;
  for (const card of [
    { keyword: 'ZTABLE', value: true, comment: 'this is a compressed table' },
    { keyword: 'ZTILELEN', value: tileRows, comment: 'number of rows in each tile' },
    { keyword: 'ZNAXIS1', value: naxis1, comment: 'width of the original table in bytes' },
    { keyword: 'ZNAXIS2', value: naxis2, comment: 'number of rows of the original table' },
    { keyword: 'ZPCOUNT', value: pcount, comment: 'heap size of the original table' },
  ]) h.insert(at++, card);
  codecs.forEach((codec, i) => {
    const n = i + 1;
    const k = h.indexOf(`TFORM${n}`);
    h.cards[k] = { keyword: `TFORM${n}`, value: '1QB', comment: 'compressed column data' };
    h.insert(k + 1, { keyword: `ZFORM${n}`, value: codec.def.tform, comment: 'format of the original column' });
    h.insert(k + 2, { keyword: `ZCTYP${n}`, value: codec.algorithm, comment: 'compression algorithm for column' });
  });
  return h;
}

/** Gathers heap pieces into large writes at their final place. */
class HeapOut {
  size = 0;
  private pieces: Uint8Array[] = [];
  private held = 0;
  private flushedTo = 0;
  private readonly writer: HduWriter;
  private readonly base: number;

  constructor(writer: HduWriter, base: number) {
    this.writer = writer;
    this.base = base;
  }

  /** Queues bytes; returns their offset from the start of the heap. */
  add(piece: Uint8Array): number {
    const at = this.size;
    if (piece.length > 0) {
      this.pieces.push(piece);
      this.held += piece.length;
      this.size += piece.length;
    }
    return at;
  }

  async flushIfFull(): Promise<void> {
    if (this.held >= WRITE_CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.held === 0) return;
    const joined = this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces, this.held);
    const at = this.flushedTo;
    this.flushedTo += this.held;
    this.pieces = [];
    this.held = 0;
    await this.writer.write(joined, this.base + at);
  }
}

/** One column of one tile, compressed, before its place in the heap is known. */
type EncodedColumn =
  | { readonly kind: 'fixed'; readonly bytes: Uint8Array | undefined }
  | { readonly kind: 'variable'; readonly descriptors: Uint8Array; readonly arrays: (Uint8Array | undefined)[] };

/**
 * Writes a table as one tile-compressed binary-table HDU at `position` of an open file;
 * returns the position after it. The header carries CHECKSUM/DATASUM of the compressed HDU.
 * Variable-length columns are stored as cfitsio does (each array compressed by itself, the
 * descriptors gzipped per tile); variable-length bit (PX) columns are refused.
 */
export async function writeCompressedTableHdu(handle: FileHandle, position: number, table: Table, options: CompressedHduOptions = {}): Promise<number> {
  const at = options.at ?? {};
  const level = options.gzipLevel ?? DEFAULT_GZIP_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new FitsError('fits_bad_compression', at, `gzip level ${level} must be a whole number from 0 to 9`);
  }
  const plan = options.plan ?? await planTable(table, options.signal, at);
  const defs = columnDefsFromInfos(plan.columns, { heapSize: plan.heapSize, maxLengths: plan.maxLengths });
  const codecs = columnCodecs(defs, options, at);
  const tileRows = tileRowsFor(rowBytesOf(defs), plan.rowCount, options.tileRows, at);
  const tiles = Math.ceil(plan.rowCount / tileRows);
  const original = bintableHeader(defs, plan.rowCount, plan.heapSize, {
    ...(table.name !== undefined ? { name: table.name } : {}),
    ...(table.params ? { params: table.params } : {}),
    ...(options.header ? { extra: options.header } : {}),
  });
  const header = compressedHeader(original, codecs, tileRows, tiles);
  const writer = new HduWriter(handle, position, header, options.checksum ?? true);
  const mainBytes = CELL_BYTES * codecs.length * tiles;
  const cells = new Uint8Array(mainBytes);
  const cellView = new DataView(cells.buffer);
  const heap = new HeapOut(writer, mainBytes);
  const longest = codecs.map(() => 0);
  const infos = defs.map((d) => d.info);
  let originalHeap = 0;
  let rowsIn = 0;
  let tile = 0;

  const changed = (what: string): FitsError => new FitsError('fits_table_changed', at, `${what}; the table must give the same rows each time it is read`);

  const writeTile = async (batch: ColumnBatch): Promise<void> => {
    const first = tile * tileRows;
    const encoded = await Promise.all(codecs.map(async (codec, c): Promise<EncodedColumn> => {
      const def0: FitsColumnDef = { ...codec.def, byteOffset: 0 };
      const one: ColumnBatch = { rowCount: batch.rowCount, columns: [batch.columns[c]] };
      if (codec.elementBytes === undefined) {
        if (codec.rowBytes === 0) return { kind: 'fixed', bytes: undefined };
        const bytes = encodeRows([def0], one, codec.rowBytes, undefined, at, first);
        return { kind: 'fixed', bytes: await compressTile(codec.algorithm, bytes, codec.width, level) };
      }
      return encodeVariable(codec, def0, one, first);
    }));
    const base = (tile * codecs.length) * CELL_BYTES;
    for (let c = 0; c < codecs.length; c++) {
      const e = encoded[c];
      let blob: Uint8Array | undefined;
      if (e.kind === 'fixed') {
        blob = e.bytes;
      } else {
        // Each array goes to the heap first; the second set of descriptors says where.
        const rows = batch.rowCount;
        const block = new Uint8Array(e.descriptors.length + rows * 16);
        block.set(e.descriptors);
        const dv = new DataView(block.buffer);
        for (let r = 0; r < rows; r++) {
          const a = e.arrays[r];
          if (!a) continue;
          const p = e.descriptors.length + r * 16;
          dv.setBigInt64(p, BigInt(a.length));
          dv.setBigInt64(p + 8, BigInt(heap.add(a)));
        }
        blob = gzipTileSync(block, level);
      }
      if (blob) {
        const offset = heap.add(blob);
        cellView.setBigInt64(base + c * CELL_BYTES, BigInt(blob.length));
        cellView.setBigInt64(base + c * CELL_BYTES + 8, BigInt(offset));
        if (blob.length > longest[c]) longest[c] = blob.length;
      }
    }
    await heap.flushIfFull();
    tile++;
  };

  // The original descriptors of a variable-length column point into the original table's
  // heap, laid out tile after tile, column after column; funpack rebuilds that heap.
  const encodeVariable = (codec: ColumnCodec, def0: FitsColumnDef, one: ColumnBatch, first: number): EncodedColumn => {
    const local = new MemoryHeap();
    const descriptors = encodeRows([def0], one, codec.rowBytes, local, at, first);
    const held = local.bytes();
    const dv = new DataView(descriptors.buffer, descriptors.byteOffset, descriptors.byteLength);
    const arrays: (Uint8Array | undefined)[] = [];
    const q = codec.rowBytes === 16;
    for (let r = 0; r < one.rowCount; r++) {
      const count = q ? Number(dv.getBigInt64(r * 16)) : dv.getInt32(r * 8);
      const offset = q ? Number(dv.getBigInt64(r * 16 + 8)) : dv.getInt32(r * 8 + 4);
      if (q) dv.setBigInt64(r * 16 + 8, BigInt(offset + originalHeap));
      else dv.setInt32(r * 8 + 4, offset + originalHeap);
      const n = count * codec.elementBytes!;
      if (n === 0) {
        arrays.push(undefined);
        continue;
      }
      const raw = held.subarray(offset, offset + n);
      // As cfitsio: an array that does not shrink is stored as it is (the reader tells by its
      // length). A gzip member takes at least 21 bytes for any data, so short arrays are not tried.
      if (codec.algorithm !== 'RICE_1' && n <= MIN_GZIP_BYTES) {
        arrays.push(raw);
        continue;
      }
      const packed = compressTileSync(codec.algorithm, raw, codec.width, level);
      arrays.push(packed.length < raw.length ? packed : raw);
    }
    originalHeap += local.size;
    return { kind: 'variable', descriptors, arrays };
  };

  // Rows not yet written: `held` from row `from` on. Tiles are cut from it as views, so a
  // large batch cut into many small tiles is not copied over and over.
  let held: ColumnBatch | undefined;
  let from = 0;
  for await (const batch of table.batches(options.signal ? { signal: options.signal } : {})) {
    options.signal?.throwIfAborted();
    rowsIn += batch.rowCount;
    if (rowsIn > plan.rowCount) throw changed(`the table gave more than the ${plan.rowCount} rows it had when scanned`);
    held = held && from < held.rowCount ? concatBatches(infos, [sliceBatch(infos, held, from, held.rowCount), batch]) : batch;
    from = 0;
    while (held.rowCount - from >= tileRows) {
      await writeTile(sliceBatch(infos, held, from, from + tileRows));
      from += tileRows;
    }
    options.onRows?.(batch.rowCount);
  }
  if (held && from < held.rowCount) await writeTile(sliceBatch(infos, held, from, held.rowCount));
  if (rowsIn !== plan.rowCount) throw changed(`the table gave ${rowsIn} rows, not the ${plan.rowCount} it had when scanned`);
  if (originalHeap !== plan.heapSize) throw changed(`the variable-length arrays took ${originalHeap} heap bytes, not the ${plan.heapSize} found when scanned`);
  await heap.flush();
  await writer.write(cells, 0);
  header.set('PCOUNT', heap.size);
  codecs.forEach((_, c) => header.set(`TFORM${c + 1}`, `1QB(${longest[c]})`));
  return writer.finish(mainBytes + heap.size);
}

/** One HDU of {@link writeCompressedFits}: compressed unless `compress` is false. */
export interface CompressedHduInput extends FitsHduInput {
  readonly compress?: CompressOptions | false;
}

/**
 * Writes a FITS file: an empty primary HDU, then one extension per table, tile-compressed
 * unless its `compress` is false. Atomic, as writeFits: written under a temporary name and
 * renamed at the end; removed on any error or abort.
 */
export async function writeCompressedFits(path: string, hdus: readonly CompressedHduInput[], options: WriteFitsOptions = {}): Promise<void> {
  await writeFitsWith(path, hdus, options, (handle, position, hdu, common) => (hdu.compress === false
    ? writeTableHdu(handle, position, hdu.table, common)
    : writeCompressedTableHdu(handle, position, hdu.table, { ...(hdu.compress ?? {}), ...common })));
}

