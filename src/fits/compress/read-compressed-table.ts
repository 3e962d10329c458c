// Reading a tile-compressed binary table (FITS 4.0 §10.3) as the table it was made from.
// Each row of the compressed table is one tile of ZTILELEN original rows; each of its cells
// holds one column of that tile, compressed (ZCTYPn), in the heap. A tile's column
// decompresses to that column's bytes for the tile's rows, one row after another: exactly
// the rows of a one-column table, so the ordinary row codec decodes them (TZERO, TSCAL,
// TNULL, strings, bits and all). Only the columns asked for are read and inflated, one tile
// at a time (the next tile is prepared while the current one is used), so memory stays at
// about two tiles whatever the size of the table.
import {
  columnIndexes, DEFAULT_BATCH_ROWS, sliceBatch,
  type ColumnBatch, type ColumnData, type ReadOptions, type Table,
} from '../../table/index.ts';
import { decodeRows, MemoryHeap } from '../bintable-codec.ts';
import { parseColumnDefs, type FitsColumnDef } from '../column-defs.ts';
import { FitsError, type FitsLocation } from '../errors.ts';
import { headerParams, type FitsFile, type HduInfo } from '../fits-file.ts';
import type { Header } from '../header.ts';
import { columnCodec, type ColumnCodec } from './column-codec.ts';
import { decompressTile, decompressTileSync, TILE_ALGORITHMS, type TileAlgorithm } from './tile-codec.ts';
import { TileCodecError } from './tile-error.ts';

// The largest column-of-a-tile held at once; a header asking for more is refused rather
// than trusted (cfitsio's own tiles are about 10 MB).
const MAX_TILE_COLUMN_BYTES = 2 ** 31 - 1;
// Compressed arrays of a variable-length column are fetched in one read when they lie this
// close together (cfitsio writes them one after another).
const MAX_VLA_SPAN = 64 * 1024 * 1024;

/** The structure of a compressed table, read from its header and checked. */
export interface CompressedTableLayout {
  /** The header of the table before compression (TFORMn, NAXISn, PCOUNT restored). */
  readonly header: Header;
  readonly defs: readonly FitsColumnDef[];
  readonly codecs: readonly ColumnCodec[];
  /** Rows of the original table (ZNAXIS2). */
  readonly rows: number;
  /** Original rows per tile (ZTILELEN); the last tile may hold fewer. */
  readonly tileRows: number;
  /** Tiles, i.e. rows of the compressed table (NAXIS2). */
  readonly tiles: number;
  /** Bytes of one row of the compressed table (one descriptor per column). */
  readonly cellBytes: number;
  readonly cellOffsets: readonly number[];
  /** Per column: 64-bit (Q) descriptors rather than 32-bit (P). */
  readonly cellQ: readonly boolean[];
  /** Where the compressed table's heap starts in the file, and its size. */
  readonly heapStart: number;
  readonly heapSize: number;
}

/**
 * The header of the table before compression: TFORMn from ZFORMn, NAXIS1/NAXIS2/PCOUNT from
 * ZNAXIS1/ZNAXIS2/ZPCOUNT, the compression keywords and the compressed table's own THEAP and
 * checksums removed, ZHECKSUM/ZDATASUM back as CHECKSUM/DATASUM (as funpack does).
 */
export function uncompressedHeader(compressed: Header, at: FitsLocation = {}): Header {
  const h = compressed.clone();
  const tfields = requireTfields(h, at);
  const gone = ['ZTABLE', 'ZTILELEN', 'ZNAXIS1', 'ZNAXIS2', 'ZPCOUNT', 'ZHEAPPTR', 'THEAP', 'CHECKSUM', 'DATASUM'];
  for (let n = 1; n <= tfields; n++) {
    const zform = h.getString(`ZFORM${n}`, at);
    if (zform === undefined) throw new FitsError('fits_missing_keyword', { ...at, keyword: `ZFORM${n}` }, 'a compressed table needs the original TFORM of every column in ZFORMn');
    h.set(`TFORM${n}`, zform, h.comment(`ZFORM${n}`));
    gone.push(`ZFORM${n}`, `ZCTYP${n}`);
  }
  h.set('NAXIS1', h.requireInt('ZNAXIS1', at));
  h.set('NAXIS2', h.requireInt('ZNAXIS2', at));
  h.set('PCOUNT', h.requireInt('ZPCOUNT', at));
  // One pass: a delete per keyword (~150 for a table of 70 columns) rescans the header each time.
  h.deleteAll(gone);
  for (const [from, to] of [['ZHECKSUM', 'CHECKSUM'], ['ZDATASUM', 'DATASUM']]) {
    const i = h.indexOf(from);
    if (i >= 0) {
      const { raw: _raw, ...card } = h.cards[i];
      h.cards[i] = { ...card, keyword: to };
    }
  }
  return h;
}

function algorithmOf(header: Header, n: number, at: FitsLocation): TileAlgorithm {
  const keyword = `ZCTYP${n}`;
  const value = header.getString(keyword, at);
  // cfitsio reads a column without ZCTYPn as GZIP_2.
  if (value === undefined) return 'GZIP_2';
  const name = value.trim().toUpperCase() as TileAlgorithm;
  if (!TILE_ALGORITHMS.includes(name)) {
    throw new FitsError('fits_bad_compression', { ...at, keyword }, `unknown table compression "${value}"; expected one of ${TILE_ALGORITHMS.join(', ')}`);
  }
  return name;
}

/** Reads and checks the structure of a compressed table HDU (no data is read). */
export function compressedTableLayout(file: FitsFile, hdu: HduInfo): CompressedTableLayout {
  const at = locationOf(file, hdu);
  const header = hdu.header;
  if (header.get('ZTABLE') !== true) {
    throw new FitsError('fits_not_compressed', at, 'this HDU is not a tile-compressed table (it has no ZTABLE = T)');
  }
  const own = ownColumns(header, at);
  for (const d of own.defs) {
    if ((d.code !== 'P' && d.code !== 'Q') || d.elementCode !== 'B' || d.repeat !== 1) {
      throw new FitsError('fits_bad_compressed_table', { ...at, column: d.name, keyword: `TFORM${d.index + 1}` }, `a compressed table stores each column as 1PB or 1QB byte arrays, not as TFORM ${d.tform}`);
    }
  }
  const rows = header.requireInt('ZNAXIS2', at);
  const tileRows = header.requireInt('ZTILELEN', at, 1);
  const tiles = header.requireInt('NAXIS2', at);
  const expected = Math.ceil(rows / tileRows);
  if (tiles !== expected) {
    throw new FitsError('fits_bad_compressed_table', { ...at, keyword: 'NAXIS2' }, `NAXIS2 = ${tiles} tiles, but ZNAXIS2 = ${rows} rows in tiles of ZTILELEN = ${tileRows} need ${expected}`);
  }
  const original = uncompressedHeader(header, at);
  const { defs } = parseColumnDefs(original, at);
  const codecs = defs.map((d) => {
    const codec = columnCodec(d, algorithmOf(header, d.index + 1, at), at);
    if (codec.rowBytes * Math.min(tileRows, rows) > MAX_TILE_COLUMN_BYTES) {
      throw new FitsError('fits_unsupported', { ...at, column: d.name, keyword: 'ZTILELEN' }, `tiles of ${tileRows} rows hold more than ${MAX_TILE_COLUMN_BYTES} bytes of this column; such tiles are too large to decompress`);
    }
    return codec;
  });
  const mainBytes = own.rowBytes * tiles;
  const theap = header.get('THEAP') === undefined ? mainBytes : header.requireInt('THEAP', at);
  if (theap < mainBytes || theap > hdu.dataBytes) {
    throw new FitsError('fits_bad_keyword', { ...at, keyword: 'THEAP' }, `THEAP = ${theap} must lie between the end of the rows (${mainBytes}) and the end of the data (${hdu.dataBytes})`);
  }
  return {
    header: original, defs, codecs, rows, tileRows, tiles,
    cellBytes: own.rowBytes,
    cellOffsets: own.defs.map((d) => d.byteOffset),
    cellQ: own.defs.map((d) => d.code === 'Q'),
    heapStart: hdu.dataStart + theap,
    heapSize: hdu.dataBytes - theap,
  };
}

/**
 * The compressed table's own columns (byte-array descriptors). The original TNULLn, TSCALn,
 * TZEROn and TDIMn stay in its header, as the standard asks, but describe the original
 * columns, so they are left out here.
 */
function ownColumns(header: Header, at: FitsLocation): { defs: FitsColumnDef[]; rowBytes: number } {
  const h = header.clone();
  const tfields = requireTfields(h, at);
  const gone: string[] = [];
  for (let n = 1; n <= tfields; n++) for (const k of ['TNULL', 'TSCAL', 'TZERO', 'TDIM']) gone.push(`${k}${n}`);
  h.deleteAll(gone);
  return parseColumnDefs(h, at);
}

/** TFIELDS, checked before any loop over the columns: a damaged value must not loop for ever. */
function requireTfields(h: Header, at: FitsLocation): number {
  const tfields = h.requireInt('TFIELDS', at);
  if (tfields > 999) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'TFIELDS' }, `TFIELDS = ${tfields}; at most 999 columns are allowed`);
  return tfields;
}

function locationOf(file: FitsFile, hdu: HduInfo): FitsLocation {
  return { file: file.name, hdu: hdu.index, ...(hdu.extname ? { extname: hdu.extname } : {}) };
}

/**
 * A tile-compressed binary table HDU as the Table it was made from: the original columns
 * and values (ZFORMn with the original TSCAL/TZERO/TNULL/TDIM...), streamed tile by tile;
 * only the columns asked for are decompressed. Damaged tiles raise `fits_bad_tile` naming
 * the file, HDU, column and tile.
 */
export function readCompressedTable(file: FitsFile, hdu: HduInfo): Table {
  const layout = compressedTableLayout(file, hdu);
  const reader = new TileReader(file, hdu, layout, locationOf(file, hdu));
  const whole = {
    ...(hdu.extname !== undefined ? { name: hdu.extname } : {}),
    columns: layout.defs.map((d) => d.info),
    params: headerParams(layout.header),
  };
  return rowsOf(reader, whole, 0, layout.rows);
}

// Rows [start, end) of the table (name, columns and parameters those of the whole): only the
// tiles holding them are read (`slice` narrows again).
function rowsOf(reader: TileReader, whole: Omit<Table, 'batches'>, start: number, end: number): Table {
  return {
    ...whole,
    rowCount: end - start,
    batches(options: ReadOptions = {}): AsyncIterable<ColumnBatch> {
      return reader.batches(columnIndexes(whole.columns, options.columns), options, start, end);
    },
    slice(from: number, to: number): Table {
      const a = Math.min(end, start + Math.max(0, from));
      return rowsOf(reader, whole, a, Math.max(a, Math.min(end, start + to)));
    },
  };
}

class TileReader {
  private readonly file: FitsFile;
  private readonly hdu: HduInfo;
  private readonly layout: CompressedTableLayout;
  private readonly at: FitsLocation;

  constructor(file: FitsFile, hdu: HduInfo, layout: CompressedTableLayout, at: FitsLocation) {
    this.file = file;
    this.hdu = hdu;
    this.layout = layout;
    this.at = at;
  }

  /** The rows `[from, to)`, tile by tile: the tiles before and after them are not read. */
  async *batches(selected: number[], options: ReadOptions, from: number, to: number): AsyncGenerator<ColumnBatch> {
    const { tileRows } = this.layout;
    if (to <= from) return;
    const infos = selected.map((i) => this.layout.defs[i].info);
    const size = Math.max(1, Math.floor(options.batchRows ?? DEFAULT_BATCH_ROWS));
    const start = (k: number): Promise<ColumnBatch> => {
      const p = this.tile(k, selected);
      // A prepared tile that is never asked for must not become an unhandled rejection.
      p.catch(() => {});
      return p;
    };
    const first = Math.floor(from / tileRows);
    const last = Math.floor((to - 1) / tileRows);
    let next: Promise<ColumnBatch> | undefined = start(first);
    for (let k = first; k <= last; k++) {
      options.signal?.throwIfAborted();
      let batch = await next!;
      next = k < last ? start(k + 1) : undefined;
      // The first and last tiles may hold rows outside the range.
      const t0 = k * tileRows;
      const a = Math.max(0, from - t0);
      const b = Math.min(batch.rowCount, to - t0);
      if (a > 0 || b < batch.rowCount) batch = sliceBatch(infos, batch, a, b);
      if (batch.rowCount <= size) {
        yield batch;
        continue;
      }
      for (let s = 0; s < batch.rowCount; s += size) {
        options.signal?.throwIfAborted();
        yield sliceBatch(infos, batch, s, s + size);
      }
    }
  }

  private async tile(k: number, selected: readonly number[]): Promise<ColumnBatch> {
    const { rows, tileRows } = this.layout;
    const first = k * tileRows;
    const count = Math.min(tileRows, rows - first);
    const { cellBytes } = this.layout;
    const cells = await this.file.read(this.hdu.dataStart + k * cellBytes, cellBytes);
    const dv = new DataView(cells.buffer, cells.byteOffset, cells.byteLength);
    const columns = await Promise.all(selected.map((c) => this.column(c, k, first, count, dv)));
    return { rowCount: count, columns };
  }

  private async column(c: number, k: number, first: number, count: number, cells: DataView): Promise<ColumnData> {
    const codec = this.layout.codecs[c];
    const def0: FitsColumnDef = { ...codec.def, byteOffset: 0 };
    const where: FitsLocation = { ...this.at, column: codec.def.name };
    try {
      const bytes = codec.rowBytes * count;
      let data: Uint8Array;
      let heap: MemoryHeap | undefined;
      if (bytes === 0) {
        data = new Uint8Array(0);
      } else {
        const stream = await this.heapBytes(cells, c);
        if (codec.elementBytes === undefined) {
          data = await decompressTile(codec.algorithm, stream, codec.width, bytes);
        } else {
          ({ data, heap } = await this.variableArrays(codec, stream, count));
        }
      }
      const batch = await decodeRows([def0], data, count, codec.rowBytes, [0], heap, this.at, first);
      return batch.columns[0];
    } catch (error) {
      if (error instanceof TileCodecError) {
        throw new FitsError('fits_bad_tile', where, `tile ${k + 1} of ${this.layout.tiles} (rows ${first + 1}-${first + count}): ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  /** The compressed bytes of one cell (column `c` of the current tile's row). */
  private async heapBytes(cells: DataView, c: number): Promise<Uint8Array> {
    const off = this.layout.cellOffsets[c];
    const [length, offset] = this.layout.cellQ[c]
      ? [safe(cells.getBigInt64(off)), safe(cells.getBigInt64(off + 8))]
      : [cells.getInt32(off), cells.getInt32(off + 4)];
    if (length <= 0) throw new TileCodecError(`the tile holds no compressed bytes for this column (descriptor length ${length})`);
    return this.readHeap(offset, length);
  }

  private async readHeap(offset: number, length: number): Promise<Uint8Array> {
    const { heapStart, heapSize } = this.layout;
    if (!(offset >= 0) || offset + length > heapSize) {
      throw new TileCodecError(`its ${length} bytes at heap offset ${offset} lie outside the heap of ${heapSize} bytes`);
    }
    return this.file.read(heapStart + offset, length);
  }

  /**
   * A variable-length column's tile (cfitsio's layout): a gzipped block of the original
   * descriptors followed by one 64-bit (length, heap offset) pair per row locating that row's
   * compressed array, each compressed by itself (or stored as is when that was no smaller).
   * The arrays are gathered into a heap of their own, with descriptors pointing into it.
   */
  private async variableArrays(codec: ColumnCodec, stream: Uint8Array, count: number): Promise<{ data: Uint8Array; heap: MemoryHeap }> {
    const descBytes = codec.rowBytes;
    const block = await decompressTile('GZIP_1', stream, 1, count * (descBytes + 16));
    const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const second = count * descBytes;
    const lengths = new Array<number>(count);
    const packedLength = new Array<number>(count);
    const packedOffset = new Array<number>(count);
    let total = 0;
    let lo = Infinity;
    let hi = 0;
    let packedTotal = 0;
    for (let r = 0; r < count; r++) {
      const n = descBytes === 16 ? safe(dv.getBigInt64(r * 16)) : dv.getInt32(r * 8);
      if (n < 0) throw new TileCodecError(`row ${r + 1} of the tile has a negative array length ${n}`);
      lengths[r] = n * codec.elementBytes!;
      total += lengths[r];
      const cl = safe(dv.getBigInt64(second + r * 16));
      const co = safe(dv.getBigInt64(second + r * 16 + 8));
      packedLength[r] = cl;
      packedOffset[r] = co;
      if (lengths[r] === 0) continue;
      if (cl <= 0 || co < 0) throw new TileCodecError(`row ${r + 1} of the tile has ${n} elements but no compressed array (length ${cl}, offset ${co})`);
      lo = Math.min(lo, co);
      hi = Math.max(hi, co + cl);
      packedTotal += cl;
    }
    if (total > MAX_TILE_COLUMN_BYTES) throw new TileCodecError(`its arrays would take ${total} bytes, more than can be held`);
    if (descBytes === 8 && total > 2 ** 31 - 1) throw new TileCodecError('its arrays do not fit 32-bit descriptors');
    // One read for the whole tile when the arrays lie together.
    const span = hi > lo && hi - lo <= Math.max(MAX_VLA_SPAN, 2 * packedTotal) ? await this.readHeap(lo, hi - lo) : undefined;
    const heapBytes = new Uint8Array(total);
    const data = new Uint8Array(count * descBytes);
    const out = new DataView(data.buffer);
    let pos = 0;
    for (let r = 0; r < count; r++) {
      const n = lengths[r];
      if (descBytes === 16) {
        out.setBigInt64(r * 16, BigInt(n / codec.elementBytes!));
        out.setBigInt64(r * 16 + 8, BigInt(pos));
      } else {
        out.setInt32(r * 8, n / codec.elementBytes!);
        out.setInt32(r * 8 + 4, pos);
      }
      if (n === 0) continue;
      const cl = packedLength[r];
      const co = packedOffset[r];
      const packed = span ? span.subarray(co - lo, co - lo + cl) : await this.readHeap(co, cl);
      try {
        heapBytes.set(cl === n ? packed : decompressTileSync(codec.algorithm, packed, codec.width, n), pos);
      } catch (error) {
        if (error instanceof TileCodecError) throw new TileCodecError(`row ${r + 1} of the tile: ${error.message}`, { cause: error });
        throw error;
      }
      pos += n;
    }
    return { data, heap: new MemoryHeap(heapBytes) };
  }
}

function safe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TileCodecError(`a descriptor value ${v} is too large to be real`);
  }
  return Number(v);
}
