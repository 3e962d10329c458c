// The batch FITS writer. A batch's tables are already in memory as typed columns of the few
// archive types (K, J, I, B, E, D, L, A; no nulls, no scaling). The header of each table
// goes out first and holds the data's checksum, so DATASUM is computed from the columns
// themselves (a byte's share of the ones' complement sum depends only on its value and its
// offset modulo 4); the rows are then encoded once, into the output buffer, and written in
// file order, so the manifest's md5 is taken on the way instead of by reading the file back.
// Headers come from the fits room (bintableHeader, column definitions, checksums): the same
// cards as writeFits. Temporary name `<file>.tmp`, fsync, rename; removed on any error.
import { createHash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import {
  BLOCK, addSums, bintableHeader, columnDefsFromInfos, padToBlock, primaryHeader, reduceSum, rotateSum, setChecksums,
  type FitsColumnDef, type Header,
} from '../../fits/index.ts';
import { columnInfo, type ColumnInfo } from '../../table/index.ts';
import { IppToPspsError } from '../errors.ts';
import { tableRows, type ArchiveColumn, type ArchiveTable, type TablePart } from './archive-table.ts';

// Bytes gathered before a write, and the most encoded at once.
const CHUNK = 4 << 20;
const T = 0x54;
const F = 0x46;

/** The FITS column descriptions of an archive table (units, UCDs, string widths). */
export function fitsColumns(t: ArchiveTable): ColumnInfo[] {
  return t.schema.columns.map((c) => columnInfo(c.name, c.type, {
    ...(c.unit !== undefined ? { unit: c.unit } : {}),
    ...(c.ucd !== undefined ? { ucd: c.ucd } : {}),
    ...(c.width !== undefined ? { width: c.width } : {}),
  }));
}

// One loop per stored type, so that each stays monomorphic. Numbers are written from their
// stored bits (an Int32Array view: this is a little-endian machine), so that the bytes are
// exactly those that dataSum adds up.
function put8(dv: DataView, v: BigInt64Array | Float64Array, from: number, n: number, o: number, rb: number): void {
  const w = new Int32Array(v.buffer, v.byteOffset + from * 8, n * 2);
  for (let i = 0, p = o; i < n; i++, p += rb) { dv.setInt32(p, w[2 * i + 1]); dv.setInt32(p + 4, w[2 * i]); }
}
function put4(dv: DataView, v: Float32Array | Int32Array, from: number, n: number, o: number, rb: number): void {
  const w = new Int32Array(v.buffer, v.byteOffset + from * 4, n);
  for (let i = 0, p = o; i < n; i++, p += rb) dv.setInt32(p, w[i]);
}
function putI(dv: DataView, v: Int16Array, from: number, n: number, o: number, rb: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) dv.setInt16(p, v[from + i]);
}
function putB(out: Uint8Array, v: Uint8Array, from: number, n: number, o: number, rb: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) out[p] = v[from + i];
}
function putL(out: Uint8Array, v: Uint8Array, from: number, n: number, o: number, rb: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) out[p] = v[from + i] ? T : F;
}
function putA(out: Uint8Array, v: string[], from: number, n: number, o: number, rb: number, width: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) {
    const s = v[from + i];
    const m = Math.min(s.length, width);
    for (let k = 0; k < m; k++) out[p + k] = s.charCodeAt(k) & 0x7f;
    out.fill(0, p + m, p + width);
  }
}

/** Encodes rows [from, from+n) of one column, held as `v`, at byte `o` of each `rb`-byte row. */
function encodeColumn(d: FitsColumnDef, v: ArchiveColumn, from: number, n: number, out: Uint8Array, dv: DataView, o: number, rb: number): void {
  switch (d.code) {
    case 'K': case 'D': put8(dv, v as BigInt64Array | Float64Array, from, n, o, rb); break;
    case 'E': case 'J': put4(dv, v as Float32Array | Int32Array, from, n, o, rb); break;
    case 'I': putI(dv, v as Int16Array, from, n, o, rb); break;
    case 'B': putB(out, v as Uint8Array, from, n, o, rb); break;
    case 'L': putL(out, v as Uint8Array, from, n, o, rb); break;
    case 'A': putA(out, v as string[], from, n, o, rb, d.byteWidth); break;
    default: throw new IppToPspsError('batch_bad_schema', `column ${d.name}: FITS type ${d.code} is not an archive column type`);
  }
}

/** The same bytes in every row: a constant column's value, encoded once. */
function putSame(out: Uint8Array, dv: DataView, bytes: Uint8Array, n: number, o: number, rb: number): void {
  const w = bytes.length;
  const b = new DataView(bytes.buffer, bytes.byteOffset, w);
  if (w === 8) {
    const hi = b.getInt32(0);
    const lo = b.getInt32(4);
    for (let i = 0, p = o; i < n; i++, p += rb) { dv.setInt32(p, hi); dv.setInt32(p + 4, lo); }
  } else if (w === 4) {
    const x = b.getInt32(0);
    for (let i = 0, p = o; i < n; i++, p += rb) dv.setInt32(p, x);
  } else {
    for (let i = 0, p = o; i < n; i++, p += rb) for (let k = 0; k < w; k++) out[p + k] = bytes[k];
  }
}

/** Encodes rows [from, from+n) of a part into `out` (row-major, big-endian). */
function encode(defs: readonly FitsColumnDef[], part: TablePart, once: readonly (Uint8Array | undefined)[], from: number, n: number, out: Uint8Array, dv: DataView, rb: number): void {
  for (let k = 0; k < defs.length; k++) {
    const same = once[k];
    if (same) putSame(out, dv, same, n, defs[k].byteOffset, rb);
    else encodeColumn(defs[k], part.stored(k), from, n, out, dv, defs[k].byteOffset, rb);
  }
}

/** Per column of a part: a constant column's one value encoded, else undefined. */
function encodeConstants(defs: readonly FitsColumnDef[], part: TablePart): (Uint8Array | undefined)[] {
  return defs.map((d, k) => {
    if (!part.isConstant(k)) return undefined;
    const bytes = new Uint8Array(d.byteWidth);
    encodeColumn(d, part.stored(k), 0, 1, bytes, new DataView(bytes.buffer), 0, d.byteWidth);
    return bytes;
  });
}

// Rows summed between reductions: a row adds at most 2 · (2^32 − 1), which keeps the sum
// exact in a double.
const FOLD_ROWS = 1 << 19;

/** x · count modulo 2^32 − 1 (x already reduced), exact in doubles. */
function times(x: number, count: number): number {
  let total = 0;
  for (let left = count; left > 0; left -= FOLD_ROWS) total = addSums(total, reduceSum(x * Math.min(left, FOLD_ROWS)));
  return total;
}

/**
 * The ones' complement sum of the rows `first`, `first + step`, ... of a numeric column, as
 * if each value's big-endian bytes started on a word boundary (the caller rotates it to the
 * value's real offset). 8-byte values add their two words, 4-byte values their word, 2-
 * and 1-byte values their number (placed in the word's top bytes by the caller).
 */
function strideSum(code: string, v: ArchiveColumn, first: number, step: number, n: number): number {
  let total = 0;
  for (let start = first; start < n; start += FOLD_ROWS * step) {
    const end = Math.min(n, start + FOLD_ROWS * step);
    let acc = 0;
    if (code === 'K' || code === 'D') {
      const w = new Uint32Array((v as Float64Array).buffer, (v as Float64Array).byteOffset, 2 * n);
      for (let i = start; i < end; i += step) acc += w[2 * i] + w[2 * i + 1];
    } else if (code === 'E' || code === 'J') {
      const w = new Uint32Array((v as Float32Array).buffer, (v as Float32Array).byteOffset, n);
      for (let i = start; i < end; i += step) acc += w[i];
    } else if (code === 'I') {
      const w = new Uint16Array((v as Int16Array).buffer, (v as Int16Array).byteOffset, n);
      for (let i = start; i < end; i += step) acc += w[i];
    } else if (code === 'B') {
      const w = v as Uint8Array;
      for (let i = start; i < end; i += step) acc += w[i];
    } else {
      const w = v as Uint8Array;
      for (let i = start; i < end; i += step) acc += w[i] ? T : F;
    }
    total = addSums(total, reduceSum(acc));
  }
  return total;
}

/**
 * The DATASUM of a table's rows, from its columns: a byte b at data offset p adds
 * b · 2^(8 · (3 − p mod 4)) modulo 2^32 − 1, so each column's values are summed per row
 * offset modulo 4 and rotated into place. The same number as summing the encoded rows.
 */
export function dataSum(defs: readonly FitsColumnDef[], parts: readonly TablePart[], rb: number): number {
  let sum = 0;
  // Rows whose offsets are equal modulo 4 recur every `period` rows.
  const period = rb % 4 === 0 ? 1 : rb % 2 === 0 ? 2 : 4;
  let row0 = 0;
  for (const part of parts) {
    const n = part.rows;
    for (let k = 0; k < defs.length; k++) {
      const d = defs[k];
      const v = part.stored(k);
      const constant = part.isConstant(k);
      if (d.code === 'A') {
        const lanes = [0, 0, 0, 0];
        const s = v as string[];
        for (let i = 0; i < n; i++) {
          const at = ((row0 + i) % 4) * rb + d.byteOffset;
          const text = s[constant ? 0 : i];
          const m = Math.min(text.length, d.byteWidth);
          for (let c = 0; c < m; c++) lanes[(at + c) & 3] += text.charCodeAt(c) & 0x7f;
        }
        for (let q = 0; q < 4; q++) sum = addSums(sum, rotateSum(reduceSum(lanes[q]), 24 - 8 * q));
        continue;
      }
      const shift = d.byteWidth >= 4 ? 0 : d.byteWidth === 2 ? 16 : 24;
      // A constant column adds its value's sum once per row of the class.
      const one = constant ? strideSum(d.code, v, 0, 1, 1) : 0;
      for (let c = 0; c < period && c < n; c++) {
        const s = (((row0 + c) % 4) * rb + d.byteOffset) & 3;
        const classSum = constant ? times(one, Math.ceil((n - c) / period)) : strideSum(d.code, v, c, period, n);
        sum = addSums(sum, rotateSum(classSum, shift - 8 * s));
      }
    }
    row0 += n;
  }
  return sum;
}

/** Sequential output: gathers bytes into large writes and hashes them as they go. */
class Output {
  readonly #handle: FileHandle;
  readonly #buf = Buffer.allocUnsafe(CHUNK);
  readonly #md5 = createHash('md5');
  #used = 0;
  bytes = 0;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** Room for `n` bytes at the end of the buffer (flushing first if needed); commit with `advance`. */
  async reserve(n: number): Promise<Uint8Array> {
    if (this.#used + n > CHUNK) await this.flush();
    return this.#buf.subarray(this.#used, this.#used + n);
  }

  advance(n: number): void {
    this.#used += n;
    this.bytes += n;
  }

  async put(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) {
      const n = Math.min(CHUNK, bytes.length - at);
      const room = await this.reserve(n);
      room.set(bytes.subarray(at, at + n));
      this.advance(n);
      at += n;
    }
  }

  async zeros(n: number): Promise<void> {
    if (n === 0) return;
    const room = await this.reserve(n);
    room.fill(0);
    this.advance(n);
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const chunk = this.#buf.subarray(0, this.#used);
    this.#md5.update(chunk);
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.#handle.write(chunk, done, chunk.length - done);
      done += bytesWritten;
    }
    this.#used = 0;
  }

  digest(): string {
    return this.#md5.digest('hex');
  }
}

// Rows per encoding step of a table of `rb`-byte rows.
const rowsPerChunk = (rb: number): number => Math.max(1, Math.floor(CHUNK / Math.max(1, rb)));

async function writeTable(out: Output, t: ArchiveTable, signal?: AbortSignal): Promise<void> {
  const defs = columnDefsFromInfos(fitsColumns(t));
  const rb = defs.reduce((n, d) => n + d.byteWidth, 0);
  const rows = tableRows(t);
  for (const d of defs) {
    if (d.tzero !== 0 && d.tzero !== 0n) throw new IppToPspsError('batch_bad_schema', `table ${t.schema.name}: column ${d.name} would need TZERO; archive columns are signed`);
  }
  const header = bintableHeader(defs, rows, 0, { name: t.schema.name });
  const per = rowsPerChunk(rb);
  setChecksums(header, dataSum(defs, t.parts, rb));
  await out.put(header.toBytes());
  for (const p of t.parts) {
    const once = encodeConstants(defs, p);
    for (let from = 0; from < p.rows; from += per) {
      signal?.throwIfAborted();
      const n = Math.min(per, p.rows - from);
      const room = await out.reserve(n * rb);
      encode(defs, p, once, from, n, room, new DataView(room.buffer, room.byteOffset, room.byteLength), rb);
      out.advance(n * rb);
    }
  }
  await out.zeros(padToBlock(rows * rb) - rows * rb);
}

/** Writes the batch FITS file; returns its size and md5. */
export async function writeBatchFits(path: string, primaryExtra: Header, tables: readonly ArchiveTable[], signal?: AbortSignal): Promise<{ bytes: number; md5: string }> {
  const tmp = `${path}.tmp`;
  await rm(tmp, { force: true });
  const handle = await open(tmp, 'wx');
  let closed = false;
  try {
    const out = new Output(handle);
    const primary = primaryHeader(primaryExtra);
    setChecksums(primary, 0);
    await out.put(primary.toBytes());
    for (const t of tables) await writeTable(out, t, signal);
    await out.flush();
    if (out.bytes % BLOCK !== 0) throw new IppToPspsError('batch_write_failed', `${path}: ${out.bytes} bytes is not a whole number of FITS blocks`);
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(tmp, path);
    return { bytes: out.bytes, md5: out.digest() };
  } catch (error) {
    if (!closed) await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
}
