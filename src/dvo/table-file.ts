// Writing a region's uncompressed FITS files straight from its column stores. The general
// writer (fits room) takes any table: it scans integer columns for nulls, converts each batch
// to stored values in new arrays, encodes those, and sums the bytes again for the checksums.
// A region's tables are numeric columns held in typed arrays with no nulls, so here each
// column goes straight into big-endian bytes at its place in the rows (one loop per column
// and element width), a chunk of rows at a time, summed for the checksums as it goes. Old
// Measure rows, already encoded in the current file, are copied as bytes instead of being
// decoded and encoded again. The bytes are the same as the general writer's (a test checks),
// with CHECKSUM and DATASUM.
import { endianness } from 'node:os';
import {
  addSums, bintableHeader, Checksum, columnDefsFromInfos, Header, padToBlock, primaryHeader, reduceSum, rotateSum, setChecksums,
} from '../fits/index.ts';
import { OutputFile, type OutputMode } from '../common/index.ts';
import { compileFunction, elementsPerRow, type ColumnInfo } from '../table/index.ts';
import type { ColumnStore } from './column-store.ts';
import { RowStore } from './row-store.ts';
import { DvoError } from './errors.ts';

/** Rows of a store to encode, or bytes of rows to copy from an open file with the same layout. */
export type RowSource =
  | { readonly store: ColumnStore; readonly first: number; readonly count: number }
  /**
   * `template`: a row that many rows repeat (written once, then copied as bytes; -1: none).
   * `overlay`: rows below 0 are row −value of this store of some of the columns, the others
   * taken from the template (a row store with a template only).
   */
  | { readonly store: ColumnStore | RowStore; readonly rows: Int32Array; readonly template?: number; readonly overlay?: RowStore }
  | { readonly file: { read(position: number, length: number): Promise<Uint8Array> }; readonly position: number; readonly rows: number };

/** One binary table of a file written by {@link writeTableFile}. */
export interface TableSpec {
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
  readonly parts: readonly RowSource[];
}

const PLACEHOLDER = '0000000000000000';

// How a column's elements are stored: bytes per element and the bits flipped (the TZERO of
// unsigned types is the sign bit).
const STORED: Readonly<Record<string, readonly [bytes: number, flip: number]>> = {
  uint8: [1, 0], int16: [2, 0], uint16: [2, 0x8000], int32: [4, 0], uint32: [4, 0x80000000], float32: [4, 0],
  int64: [8, 0], uint64: [8, 0x80000000], float64: [8, 0],
};

// The typed arrays are read through little-endian 32-bit views.
const LITTLE_ENDIAN = endianness() === 'LE';

/** True when every column of a layout can be written by {@link writeTableFile}. */
export function writableLayout(columns: readonly ColumnInfo[]): boolean {
  return LITTLE_ENDIAN && columns.every((c) => STORED[c.type] !== undefined && !c.variable && !c.storage && c.nullValue === undefined);
}

/** Bytes per row of a layout (every column of {@link writableLayout}). */
export function layoutRowBytes(columns: readonly ColumnInfo[]): number {
  let n = 0;
  for (const c of columns) n += STORED[c.type][0] * elementsPerRow(c);
  return n;
}

// The header with CHECKSUM/DATASUM reserved at their final size (as the general writer does,
// so the bytes agree).
function reserve(h: Header): Header {
  h.delete('CHECKSUM');
  h.delete('DATASUM');
  h.set('CHECKSUM', PLACEHOLDER, 'HDU checksum');
  h.set('DATASUM', '0000000000', 'data unit checksum');
  return h;
}

/** Options of {@link writeTableFile}. */
export interface WriteTableOptions {
  readonly signal?: AbortSignal;
  /** `cached`: through the page cache even where direct I/O works (common's OutputFile). */
  readonly mode?: OutputMode;
}

/**
 * Writes `path` (created or truncated, then synced): an empty primary HDU with `primary`'s
 * keywords, then one binary table per spec. No temporary name: callers write `.new` files
 * that a commit journal renames (region-files.ts), so a partial file is never read. Direct
 * I/O where the file system takes it (common's OutputFile, which goes on through the page
 * cache if it refuses part way).
 */
export async function writeTableFile(path: string, primary: Header, tables: readonly TableSpec[], options: WriteTableOptions | AbortSignal = {}): Promise<void> {
  const { signal, mode } = options instanceof AbortSignal ? { signal: options, mode: undefined } : options;
  for (const t of tables) {
    if (!writableLayout(t.columns)) throw new DvoError('dvo_internal', `${t.name}: a layout with columns this writer does not store`);
  }
  const out = await OutputFile.create(path, mode ? { mode } : {});
  try {
    await writeTables(out, path, primary, tables, signal);
  } catch (error) {
    await out.close();
    throw error;
  }
}

async function writeTables(out: OutputFile, path: string, primary: Header, tables: readonly TableSpec[], signal: AbortSignal | undefined): Promise<void> {
  const ph = reserve(primaryHeader(primary));
  setChecksums(ph, 0);
  await out.put(ph.toBytes());
  for (const t of tables) await writeTable(out, path, t, signal);
  await out.finish();
}

function sourceRows(p: RowSource): number {
  return 'file' in p ? p.rows : 'count' in p ? p.count : p.rows.length;
}

// Rows encoded (or copied) at a time: at most this, and what the staging buffer has room for.
const CHUNK_BYTES = 1 << 20;

async function writeTable(out: OutputFile, file: string, spec: TableSpec, signal?: AbortSignal): Promise<void> {
  const rowBytes = layoutRowBytes(spec.columns);
  let rows = 0;
  for (const p of spec.parts) rows += sourceRows(p);
  const header = reserve(bintableHeader(columnDefsFromInfos(spec.columns), rows, 0, { name: spec.name }));
  const headerBytes = header.byteLength();
  await out.putHeld(header.toBytes());
  const sum = new Checksum();
  const chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, rowBytes)));
  let at = 0;
  // A row that would straddle two staging buffers is encoded here and staged in two pieces.
  let straddle: Uint8Array | undefined;
  for (const part of spec.parts) {
    const count = sourceRows(part);
    for (let done = 0; done < count;) {
      signal?.throwIfAborted();
      if ('file' in part) {
        const len = Math.min(chunkRows, count - done) * rowBytes;
        const bytes = await part.file.read(part.position + done * rowBytes, len);
        if (bytes.length !== len) throw new DvoError('dvo_damaged', `${file}: the rows to copy from the current ${spec.name} table end early; the region's files are damaged (run ipp dvo verify)`);
        sum.add(bytes, at);
        await out.put(bytes);
        at += len;
        done += len / rowBytes;
        continue;
      }
      const room = await out.space(1);
      const n = Math.min(chunkRows, count - done, Math.max(1, Math.floor(room.length / rowBytes)));
      const len = n * rowBytes;
      const view = len <= room.length ? room.subarray(0, len) : (straddle ??= new Uint8Array(rowBytes));
      sum.addSum('rows' in part
        ? encodeRows(part.store, spec.columns, done, n, view, rowBytes, part.rows, part.template ?? -1, part.overlay)
        : encodeRows(part.store as ColumnStore, spec.columns, part.first + done, n, view, rowBytes));
      if (view === straddle) await out.put(view);
      else await out.advance(len);
      at += len;
      done += n;
    }
  }
  await out.zeros(padToBlock(at) - at);
  setChecksums(header, sum.sum);
  const hb = header.toBytes();
  if (hb.length !== headerBytes) throw new DvoError('dvo_internal', `${spec.name}: header changed size after its data were written`);
  await out.patch(hb);
}

// Rows per tile: every column of a tile is written while the tile's bytes are in the cache.
const TILE_BYTES = 32 << 10;

/**
 * Encodes rows [first, first + n) of a store's columns (layout `columns`) into `out` as FITS
 * rows (with `index`: the store's rows index[first], index[first + 1]...); returns the ones' complement sum of the bytes (as FITS checksums take it, `out`
 * starting on a word boundary).
 *
 * The sum comes from the values as they are encoded, not from a second pass over the bytes:
 * a w-byte big-endian value V ending `e` bytes past a word boundary adds V·2^(8·((4 − e) mod 4))
 * modulo 2^32 − 1 (as 2^32 ≡ 1), so a column's values are summed and the total rotated once.
 */
export function encodeRows(
  store: ColumnStore | RowStore, columns: readonly ColumnInfo[], first: number, n: number, out: Uint8Array, rowBytes: number, index?: Int32Array, template = -1,
  overlay?: RowStore,
): number {
  if (store instanceof RowStore) {
    if (!index || store.rowBytes !== rowBytes) throw new DvoError('dvo_internal', 'rows of a row store are written through an index of the same layout');
    if (overlay && template < 0) throw new DvoError('dvo_internal', 'overlay rows need a template row');
    return encodeRecords(store, columns, index.subarray(first, first + n), out, template, overlay);
  }
  if (rowBytes % 4 !== 0 || out.byteOffset % 4 !== 0) throw new DvoError('dvo_internal', `rows of ${rowBytes} bytes are not whole words`);
  if (template < 0) {
    const rowsOf = columnPlan(columns);
    if (rowsOf) return rowsOf(viewsOf(store, columns), index ?? null, first, n, new Uint32Array(out.buffer, out.byteOffset, (n * rowBytes) >>> 2));
  }
  const out32 = new Uint32Array(out.buffer, out.byteOffset, (n * rowBytes) >>> 2);
  const out16 = new Uint16Array(out.buffer, out.byteOffset, (n * rowBytes) >>> 1);
  const stride32 = rowBytes >>> 2;
  const tile = Math.max(1, Math.floor(TILE_BYTES / rowBytes));
  // Rows that repeat the template row: its bytes (and sum) are made once; the others are listed per tile.
  let tmpl: Uint8Array | undefined;
  let tmplSum = 0;
  let repeats = 0;
  const pos = template >= 0 ? new Int32Array(tile) : undefined;
  const sel = template >= 0 ? new Int32Array(tile) : undefined;
  if (index && template >= 0) {
    tmpl = new Uint8Array(rowBytes);
    tmplSum = encodeRows(store, columns, 0, 1, tmpl, rowBytes, Int32Array.of(template));
  }
  // Each column's values: element `row · ss + so` of `src` (ss: 2 words for 8-byte values).
  const plan: { bytes: number; flip: number; offset: number; per: number; src: Uint8Array | Uint16Array | Uint32Array; ss: number; so: number; acc: number }[] = [];
  let offset = 0;
  for (const c of columns) {
    const [bytes, flip] = STORED[c.type];
    const per = elementsPerRow(c);
    if (per !== 1 || (bytes >= 4 && offset % 4 !== 0) || (bytes === 2 && offset % 2 !== 0)) {
      throw new DvoError('dvo_internal', `column ${c.name}: arrays and unaligned columns are not written here`);
    }
    const v = store.col(c.name);
    // Gathered rows are read from the whole column; others from a view starting at `first`.
    const from = index ? 0 : first;
    const len = index ? store.capacity : n;
    const src = bytes === 1 ? new Uint8Array(v.buffer, v.byteOffset + from, len)
      : bytes === 2 ? new Uint16Array(v.buffer, v.byteOffset + from * 2, len)
        : new Uint32Array(v.buffer, v.byteOffset + from * bytes, (len * bytes) >>> 2);
    plan.push({ bytes, flip, offset, per, src, ss: bytes === 8 ? 2 : 1, so: 0, acc: 0 });
    offset += bytes;
  }
  for (let start = 0; start < n; start += tile) {
    const end = Math.min(n, start + tile);
    if (index && tmpl && pos && sel) {
      const idx = index.subarray(first + start, first + end);
      let m = 0;
      for (let r = 0; r < idx.length; r++) {
        if (idx[r] === template) continue;
        pos[m] = start + r;
        sel[m++] = idx[r];
      }
      repeats += idx.length - m;
      if (m < idx.length) fillRows(out, tmpl, start * rowBytes, end * rowBytes);
      const ps = pos.subarray(0, m);
      const chosen = sel.subarray(0, m);
      for (const c of plan) {
        if (c.bytes === 4) c.acc += scatter32(out32, c.src as Uint32Array, c.ss, c.so, chosen, ps, c.offset >>> 2, stride32, c.flip);
        else if (c.bytes === 8) c.acc += scatter64(out32, c.src as Uint32Array, c.ss, c.so, chosen, ps, c.offset >>> 2, stride32, c.flip);
        else if (c.bytes === 2) c.acc += scatter16(out16, c.src as Uint16Array, c.ss, c.so, chosen, ps, c.offset >>> 1, rowBytes >>> 1, c.flip);
        else c.acc += scatter8(out, c.src as Uint8Array, c.ss, c.so, chosen, ps, c.offset, rowBytes);
      }
      continue;
    }
    if (index) {
      const idx = index.subarray(first + start, first + end);
      for (const c of plan) {
        if (c.bytes === 4) c.acc += gather32(out32, c.src as Uint32Array, c.ss, c.so, idx, start, c.offset >>> 2, stride32, c.flip);
        else if (c.bytes === 8) c.acc += gather64(out32, c.src as Uint32Array, c.ss, c.so, idx, start, c.offset >>> 2, stride32, c.flip);
        else if (c.bytes === 2) c.acc += gather16(out16, c.src as Uint16Array, c.ss, c.so, idx, start, c.offset >>> 1, rowBytes >>> 1, c.flip);
        else c.acc += gather8(out, c.src as Uint8Array, c.ss, c.so, idx, start, c.offset, rowBytes);
      }
      continue;
    }
    for (const c of plan) {
      if (c.bytes === 4) c.acc += put32(out32, c.src as Uint32Array, start, end, c.offset >>> 2, stride32, c.flip);
      else if (c.bytes === 8) c.acc += put64(out32, c.src as Uint32Array, start, end, c.offset >>> 2, stride32, c.flip);
      else if (c.bytes === 2) c.acc += put16(out16, c.src as Uint16Array, start, end, c.offset >>> 1, rowBytes >>> 1, c.flip);
      else c.acc += put8(out, c.src as Uint8Array, start, end, c.offset, rowBytes);
    }
  }
  // Each repeat of the template adds its sum (rows are whole words); repeats < 2^20, so exact.
  let total = reduceSum(repeats * tmplSum);
  for (const c of plan) {
    const e = (c.offset + c.bytes) % 4;
    total = addSums(total, rotateSum(reduceSum(c.acc), 8 * ((4 - e) % 4)));
  }
  return total;
}

/** Rows [first, first + n) (of `index` when given) of column views as FITS rows in `out`; returns their ones' complement sum. */
type ColumnRows = (views: readonly (Uint8Array | Uint16Array | Uint32Array)[], index: Int32Array | null, first: number, n: number, out: Uint32Array) => number;

const columnPlans = new WeakMap<readonly ColumnInfo[], ColumnRows | null>();

// Each column's values as unsigned words of its element width (8-byte values as two words).
function viewsOf(store: ColumnStore, columns: readonly ColumnInfo[]): (Uint8Array | Uint16Array | Uint32Array)[] {
  return columns.map((c) => {
    const v = store.col(c.name);
    const bytes = STORED[c.type][0];
    return bytes === 1 ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
      : bytes === 2 ? new Uint16Array(v.buffer, v.byteOffset, v.byteLength >>> 1)
        : new Uint32Array(v.buffer, v.byteOffset, v.byteLength >>> 2);
  });
}

/**
 * A layout's rows as straight-line code, row by row: each output word is put together from
 * its columns' values (one 4-byte value, half of an 8-byte one, or 16- and 8-bit values at
 * their places), byte-reversed and summed, with no call or dispatch per column (the column
 * loops below cost ~5 ns a value; this ~3, big-endian stores through a DataView being one
 * byte-reversing store each). Null where code from strings is disallowed or a
 * column is not a single aligned number: the column loops do the same.
 */
function columnPlan(columns: readonly ColumnInfo[]): ColumnRows | null {
  if (columnPlans.has(columns)) return columnPlans.get(columns)!;
  const parts: string[][] = [];
  let offset = 0;
  let ok = true;
  columns.forEach((c, k) => {
    const [bytes, flip] = STORED[c.type];
    if (elementsPerRow(c) !== 1 || offset % Math.min(4, bytes) !== 0) ok = false;
    const w = offset >>> 2;
    const hex = `0x${flip.toString(16)}`;
    if (bytes === 8) {
      (parts[w] ??= []).push(`((c${k}[2 * i + 1] ^ ${hex}) >>> 0)`);
      (parts[w + 1] ??= []).push(`c${k}[2 * i]`);
    } else if (bytes === 4) {
      (parts[w] ??= []).push(flip ? `((c${k}[i] ^ ${hex}) >>> 0)` : `c${k}[i]`);
    } else {
      // A 16- or 8-bit value ending `e` bytes into its word: shifted up by the bytes after it.
      const shift = 8 * (4 - ((offset % 4) + bytes));
      const value = flip ? `(c${k}[i] ^ ${hex})` : `c${k}[i]`;
      (parts[w] ??= []).push(shift ? `(${value} << ${shift})` : value);
    }
    offset += bytes;
  });
  let plan: ColumnRows | null = null;
  if (ok && offset % 4 === 0) {
    const words = offset / 4;
    const body: string[] = [];
    for (let w = 0; w < words; w++) {
      const p = parts[w] ?? ['0'];
      const v = p.length === 1 && !p[0].includes('<<') ? p[0] : `((${p.join(' | ')}) >>> 0)`;
      body.push(`v = ${v}; dv.setUint32(o + ${4 * w}, v); acc += v;`);
    }
    const source = `return function columnRows(views, index, first, n, out) {
  ${columns.map((_, k) => `const c${k} = views[${k}];`).join(' ')}
  let acc = 0;
  let total = 0;
  let v = 0;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let r = 0, o = 0; r < n; r++, o += ${4 * words}) {
    const i = index === null ? first + r : index[first + r];
    ${body.join('\n    ')}
    if ((r & 0xfff) === 0) { total += acc % 4294967295; acc = 0; }
  }
  return reduceSum(total + acc % 4294967295);
};`;
    plan = compileFunction<ColumnRows>(source, { reduceSum });
  }
  columnPlans.set(columns, plan);
  return plan;
}

// Each returns the sum of the values written (as unsigned big-endian integers; at most 2^20
// rows at a time, so the sum stays exact).
function put8(out: Uint8Array, src: Uint8Array, start: number, end: number, offset: number, stride: number): number {
  let acc = 0;
  for (let r = start, p = offset + start * stride; r < end; r++, p += stride) {
    const v = src[r];
    out[p] = v;
    acc += v;
  }
  return acc;
}

function put16(out: Uint16Array, src: Uint16Array, start: number, end: number, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let r = start, p = offset + start * stride; r < end; r++, p += stride) {
    const v = src[r] ^ flip;
    out[p] = ((v >>> 8) | (v << 8)) & 0xffff;
    acc += v;
  }
  return acc;
}

function put32(out: Uint32Array, src: Uint32Array, start: number, end: number, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let r = start, p = offset + start * stride; r < end; r++, p += stride) {
    const v = (src[r] ^ flip) >>> 0;
    out[p] = (v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24);
    acc += v;
  }
  return acc;
}

// Eight-byte values from their little-endian 32-bit halves: the high half first.
function put64(out: Uint32Array, src: Uint32Array, start: number, end: number, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let r = start, p = offset + start * stride; r < end; r++, p += stride) {
    const hi = (src[2 * r + 1] ^ flip) >>> 0;
    const lo = src[2 * r];
    out[p] = (hi >>> 24) | ((hi >>> 8) & 0xff00) | ((hi & 0xff00) << 8) | (hi << 24);
    out[p + 1] = (lo >>> 24) | ((lo >>> 8) & 0xff00) | ((lo & 0xff00) << 8) | (lo << 24);
    acc += hi + lo;
  }
  return acc;
}

// The same, rows `idx` of the source written to output rows from `start` on.
function gather8(out: Uint8Array, src: Uint8Array, ss: number, so: number, idx: Int32Array, start: number, offset: number, stride: number): number {
  let acc = 0;
  for (let r = 0, p = offset + start * stride; r < idx.length; r++, p += stride) {
    const v = src[idx[r] * ss + so];
    out[p] = v;
    acc += v;
  }
  return acc;
}

function gather16(out: Uint16Array, src: Uint16Array, ss: number, so: number, idx: Int32Array, start: number, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let r = 0, p = offset + start * stride; r < idx.length; r++, p += stride) {
    const v = src[idx[r] * ss + so] ^ flip;
    out[p] = ((v >>> 8) | (v << 8)) & 0xffff;
    acc += v;
  }
  return acc;
}

function gather32(out: Uint32Array, src: Uint32Array, ss: number, so: number, idx: Int32Array, start: number, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let r = 0, p = offset + start * stride; r < idx.length; r++, p += stride) {
    const v = (src[idx[r] * ss + so] ^ flip) >>> 0;
    out[p] = (v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24);
    acc += v;
  }
  return acc;
}

function gather64(out: Uint32Array, src: Uint32Array, ss: number, so: number, idx: Int32Array, start: number, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let r = 0, p = offset + start * stride; r < idx.length; r++, p += stride) {
    const q = idx[r] * ss + so;
    const hi = (src[q + 1] ^ flip) >>> 0;
    const lo = src[q];
    out[p] = (hi >>> 24) | ((hi >>> 8) & 0xff00) | ((hi & 0xff00) << 8) | (hi << 24);
    out[p + 1] = (lo >>> 24) | ((lo >>> 8) & 0xff00) | ((lo & 0xff00) << 8) | (lo << 24);
    acc += hi + lo;
  }
  return acc;
}

// Copies `row` into every row of out[from, to) (doubling copies: memory speed).
function fillRows(out: Uint8Array, row: Uint8Array, from: number, to: number): void {
  out.set(row, from);
  let filled = row.length;
  while (from + filled < to) {
    const n = Math.min(filled, to - from - filled);
    out.copyWithin(from + filled, from, from + n);
    filled += n;
  }
}

// The same, rows `sel` of the source written to output rows `pos`.
function scatter8(out: Uint8Array, src: Uint8Array, ss: number, so: number, sel: Int32Array, pos: Int32Array, offset: number, stride: number): number {
  let acc = 0;
  for (let k = 0; k < sel.length; k++) {
    const v = src[sel[k] * ss + so];
    out[offset + pos[k] * stride] = v;
    acc += v;
  }
  return acc;
}

function scatter16(out: Uint16Array, src: Uint16Array, ss: number, so: number, sel: Int32Array, pos: Int32Array, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let k = 0; k < sel.length; k++) {
    const v = src[sel[k] * ss + so] ^ flip;
    out[offset + pos[k] * stride] = ((v >>> 8) | (v << 8)) & 0xffff;
    acc += v;
  }
  return acc;
}

function scatter32(out: Uint32Array, src: Uint32Array, ss: number, so: number, sel: Int32Array, pos: Int32Array, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let k = 0; k < sel.length; k++) {
    const v = (src[sel[k] * ss + so] ^ flip) >>> 0;
    out[offset + pos[k] * stride] = (v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24);
    acc += v;
  }
  return acc;
}

function scatter64(out: Uint32Array, src: Uint32Array, ss: number, so: number, sel: Int32Array, pos: Int32Array, offset: number, stride: number, flip: number): number {
  let acc = 0;
  for (let k = 0; k < sel.length; k++) {
    const q = sel[k] * ss + so;
    const p = offset + pos[k] * stride;
    const hi = (src[q + 1] ^ flip) >>> 0;
    const lo = src[q];
    out[p] = (hi >>> 24) | ((hi >>> 8) & 0xff00) | ((hi & 0xff00) << 8) | (hi << 24);
    out[p + 1] = (lo >>> 24) | ((lo >>> 8) & 0xff00) | ((lo & 0xff00) << 8) | (lo << 24);
    acc += hi + lo;
  }
  return acc;
}

// A record row becomes a FITS row word by word: each 32-bit word of the row is, in the
// machine's (little-endian) order, one 4-byte value, half of an 8-byte one, or 16- and 8-bit
// values. Per word: bits to flip (the TZERO of unsigned types, on the stored value), then
// how its bytes move.
const WORD4 = 0; // one 4-byte value: all four bytes reversed
const HALVES = 1; // 16-bit values and bytes: each 16-bit value's two bytes swapped (mask below)
const FIRST8 = 2; // the first word of an 8-byte value: its high half (the next word in memory), reversed
const SECOND8 = 3; // the second word: its low half, reversed

interface WordPlan {
  readonly op: Uint8Array;
  readonly flip: Uint32Array;
  // For HALVES: 0xffff for each 16-bit value's half, 0 for a half of two bytes.
  readonly swap: Uint32Array;
  /**
   * The plan as straight-line code (null where code from strings is not allowed): one row
   * encoded without a dispatch per word, at byte `o` of `out` (big-endian stores through a
   * DataView are one byte-reversing store each); returns the sum of the row's big-endian words.
   */
  readonly row: ((src: Uint32Array, s0: number, out: DataView, o: number) => number) | null;
}

const wordPlans = new WeakMap<readonly ColumnInfo[], WordPlan>();

function wordPlan(store: RowStore, columns: readonly ColumnInfo[]): WordPlan {
  let plan = wordPlans.get(columns);
  if (plan) return plan;
  const words = store.rowBytes / 4;
  const op = new Uint8Array(words).fill(HALVES);
  const flip = new Uint32Array(words);
  const swap = new Uint32Array(words);
  columns.forEach((c, i) => {
    const [bytes, f] = STORED[c.type];
    const at = store.offsets[i];
    const w = at >>> 2;
    if (bytes === 4) { op[w] = WORD4; flip[w] = f; }
    else if (bytes === 8) { op[w] = FIRST8; op[w + 1] = SECOND8; flip[w + 1] = f; }
    else if (bytes === 2) {
      const half = (at & 2) === 0 ? 0x0000ffff : 0xffff0000;
      swap[w] = (swap[w] | half) >>> 0;
      flip[w] = (flip[w] | (half === 0x0000ffff ? f : f << 16)) >>> 0;
    }
  });
  plan = { op, flip, swap, row: compileRow(op, flip, swap) };
  wordPlans.set(columns, plan);
  return plan;
}

// The word plan as one function's straight-line code (the constants in it); null where code
// from strings is disallowed (node --disallow-code-generation-from-strings), and the
// interpreted loop below does the same, slower.
// `target`: the output word of each source word (default: the same).
function compileRow(op: Uint8Array, flip: Uint32Array, swap: Uint32Array, target?: Int32Array): WordPlan['row'] {
  const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;
  const lines: string[] = [];
  for (let k = 0; k < op.length; k++) {
    const to = 4 * (target ? target[k] : k);
    // `v`: the stored value of the word as a big-endian number (what the checksum adds).
    const from = op[k] === FIRST8 ? `src[s0 + ${k + 1}]` : op[k] === SECOND8 ? `src[s0 + ${k - 1}]` : `src[s0 + ${k}]`;
    const f = op[k] === FIRST8 ? flip[k + 1] : op[k] === SECOND8 ? 0 : flip[k];
    const x = f ? `(${from} ^ ${hex(f)})` : from;
    if (op[k] !== HALVES) {
      lines.push(`v = ${x} >>> 0; out.setUint32(o + ${to}, v); acc += v;`);
    } else if (swap[k] === 0) {
      // Four single bytes: they keep their places.
      lines.push(`v = ${x} >>> 0; out.setUint32(o + ${to}, v, true); acc += ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24)) >>> 0;`);
    } else {
      const m = swap[k];
      lines.push(`v = ${x} >>> 0; v = ((v & ${hex(~m)}) | (((v & 0x00ff00ff) << 8) & ${hex(m)}) | ((v >>> 8) & ${hex(0x00ff00ff & m)})) >>> 0; out.setUint32(o + ${to}, v, true); acc += ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24)) >>> 0;`);
    }
  }
  return compileFunction<WordPlan['row']>(`return function encodeRecordRow(src, s0, out, o) {\n  let v = 0;\n  let acc = 0;\n  ${lines.join('\n  ')}\n  return acc;\n};`);
}

function bswap(v: number): number {
  return ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24)) >>> 0;
}

// One row by the interpreted plan; returns the sum of its big-endian words.
function encodeRecordRow(plan: Pick<WordPlan, 'op' | 'flip' | 'swap'>, src: Uint32Array, s0: number, out32: Uint32Array, o: number, target?: Int32Array): number {
  const { op, flip, swap } = plan;
  let acc = 0;
  for (let k = 0; k < op.length; k++) {
    const code = op[k];
    let v: number;
    if (code === WORD4) v = bswap((src[s0 + k] ^ flip[k]) >>> 0);
    else if (code === FIRST8) v = bswap((src[s0 + k + 1] ^ flip[k + 1]) >>> 0);
    else if (code === SECOND8) v = bswap(src[s0 + k - 1]);
    else {
      const x = (src[s0 + k] ^ flip[k]) >>> 0;
      const m = swap[k];
      v = ((x & ~m) | (((x & 0x00ff00ff) << 8) & m) | ((x >>> 8) & 0x00ff00ff & m)) >>> 0;
    }
    out32[o + (target ? target[k] : k)] = v;
    acc += bswap(v);
  }
  return acc;
}

/** An overlay store's words placed in the full layout's rows (see RowSource). */
interface OverlayPlan extends WordPlan {
  /** The output word of each overlay word. */
  readonly target: Int32Array;
}

const overlayPlans = new WeakMap<RowStore, { columns: readonly ColumnInfo[]; plan: OverlayPlan }>();

// Each overlay word goes to one word of the full row: 4- and 8-byte values to theirs, a word
// of 16- and 8-bit values to the word where they are in the same places.
function overlayPlan(overlay: RowStore, columns: readonly ColumnInfo[]): OverlayPlan {
  const hit = overlayPlans.get(overlay);
  if (hit?.columns === columns) return hit.plan;
  const base = wordPlan(overlay, overlay.columns);
  const target = new Int32Array(base.op.length).fill(-1);
  const fullAt = new Map<string, number>();
  let at = 0;
  for (const c of columns) {
    fullAt.set(c.name, at);
    at += STORED[c.type][0] * elementsPerRow(c);
  }
  overlay.columns.forEach((c, i) => {
    const fo = fullAt.get(c.name);
    const oo = overlay.offsets[i];
    const bytes = STORED[c.type][0];
    if (fo === undefined || fo % 4 !== oo % 4) throw new DvoError('dvo_internal', `overlay column ${c.name} is not where the full row has it within a word`);
    for (let w = 0; w < Math.ceil(bytes / 4); w++) {
      const j = (oo >>> 2) + w;
      const t = (fo >>> 2) + w;
      if (target[j] >= 0 && target[j] !== t) throw new DvoError('dvo_internal', `overlay column ${c.name} shares a word the full row splits`);
      target[j] = t;
    }
  });
  if (target.some((t) => t < 0)) throw new DvoError('dvo_internal', 'an overlay word holds no column');
  const plan = { ...base, target, row: compileRow(base.op, base.flip, base.swap, target) };
  overlayPlans.set(overlay, { columns, plan });
  return plan;
}

// Copies of the template row, encoded, side by side: a run of up to this many repeats is one copy.
const TEMPLATE_RUN = 16;

/** Record rows `index` (or the template's bytes where a row is `template`) as FITS rows; returns their ones' complement sum. */
function encodeRecords(store: RowStore, columns: readonly ColumnInfo[], index: Int32Array, out: Uint8Array, template: number, overlay?: RowStore): number {
  const plan = wordPlan(store, columns);
  const words = plan.op.length;
  const src = store.u32;
  const out32 = new Uint32Array(out.buffer, out.byteOffset, index.length * words);
  const dv = new DataView(out.buffer, out.byteOffset, index.length * words * 4);
  const row = plan.row;
  // The template row encoded once, TEMPLATE_RUN times over, with runs of it as views (made
  // once: a view per run would cost more than the copy); a row sums alike at any place, as
  // rows are whole words.
  let tmplSum = 0;
  let runs: Uint32Array[] = [];
  if (template >= 0) {
    const block = new Uint32Array(words * TEMPLATE_RUN);
    tmplSum = reduceSum(row ? row(src, template * words, new DataView(block.buffer), 0) : encodeRecordRow(plan, src, template * words, block, 0));
    for (let k = 1; k < TEMPLATE_RUN; k++) block.copyWithin(k * words, 0, words);
    runs = Array.from({ length: TEMPLATE_RUN + 1 }, (_, k) => block.subarray(0, k * words));
  }
  // Overlay rows: the template row, then the overlay's words over it; the row's sum is theirs
  // plus that of the template words they leave (as raw word values, so the sum stays exact).
  const ov = overlay ? overlayPlan(overlay, columns) : undefined;
  const ovSrc = overlay?.u32;
  const ovWords = overlay ? overlay.rowBytes / 4 : 0;
  let tmplRest = 0;
  if (ov) {
    const covered = new Uint8Array(words);
    for (const t of ov.target) covered[t] = 1;
    for (let k = 0; k < words; k++) if (!covered[k]) tmplRest += bswap(runs[1][k]);
  }
  let acc = 0;
  let total = 0;
  for (let r = 0, step = 0; r < index.length; step++) {
    const at = index[r];
    if (at === template) {
      let n = 1;
      while (n < TEMPLATE_RUN && r + n < index.length && index[r + n] === template) n++;
      out32.set(runs[n], r * words);
      acc += n * tmplSum;
      r += n;
    } else if (at < 0 && ov && ovSrc) {
      out32.set(runs[1], r * words);
      acc += tmplRest + (ov.row ? ov.row(ovSrc, -at * ovWords, dv, 4 * r * words) : encodeRecordRow(ov, ovSrc, -at * ovWords, out32, r * words, ov.target));
      r++;
    } else {
      acc += row ? row(src, at * words, dv, 4 * r * words) : encodeRecordRow(plan, src, at * words, out32, r * words);
      r++;
    }
    // Folded every 4096 steps (a row adds less than 2^38, a run less than 2^37), so the sum stays
    // exact; from the first step on, so that the optimised code has seen the branch taken.
    if ((step & 0xfff) === 0) { total += acc % 4294967295; acc = 0; }
  }
  return reduceSum(total + acc % 4294967295);
}
