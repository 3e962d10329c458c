// The batch FITS writer. A batch's tables are already in memory as typed columns of the few
// archive types (K, J, I, B, E, D, L, A; no nulls, no scaling), so each table is encoded
// column by column into one reused chunk buffer, twice: once for its DATASUM (the header,
// written first, holds the checksums), once to write it. The bytes go out in order, so the
// manifest's md5 is computed on the way instead of by reading the file back. Headers come
// from the fits room (bintableHeader, column definitions, checksums): the same cards as
// writeFits. Temporary name `<file>.tmp`, fsync, rename; removed on any error.
import { createHash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import {
  BLOCK, Checksum, bintableHeader, columnDefsFromInfos, padToBlock, primaryHeader, setChecksums,
  type FitsColumnDef, type Header,
} from '../../fits/index.ts';
import { columnInfo, type ColumnInfo } from '../../table/index.ts';
import { IppToPspsError } from '../errors.ts';
import { tableRows, type ArchiveColumn, type ArchiveTable } from './archive-table.ts';

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

// One loop per stored type, so that each stays monomorphic.
function putK(dv: DataView, v: BigInt64Array, from: number, n: number, o: number, rb: number): void {
  const w = new Int32Array(v.buffer, v.byteOffset + from * 8, n * 2);
  for (let i = 0, p = o; i < n; i++, p += rb) { dv.setInt32(p, w[2 * i + 1]); dv.setInt32(p + 4, w[2 * i]); }
}
function putD(dv: DataView, v: Float64Array, from: number, n: number, o: number, rb: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) dv.setFloat64(p, v[from + i]);
}
function putE(dv: DataView, v: Float32Array, from: number, n: number, o: number, rb: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) dv.setFloat32(p, v[from + i]);
}
function putJ(dv: DataView, v: Int32Array, from: number, n: number, o: number, rb: number): void {
  for (let i = 0, p = o; i < n; i++, p += rb) dv.setInt32(p, v[from + i]);
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

/** Encodes rows [from, from+n) of a part's columns into `out` (row-major, big-endian). */
function encode(defs: readonly FitsColumnDef[], cols: readonly ArchiveColumn[], from: number, n: number, out: Uint8Array, dv: DataView, rb: number): void {
  for (let k = 0; k < defs.length; k++) {
    const d = defs[k];
    const v = cols[k];
    const o = d.byteOffset;
    switch (d.code) {
      case 'K': putK(dv, v as BigInt64Array, from, n, o, rb); break;
      case 'D': putD(dv, v as Float64Array, from, n, o, rb); break;
      case 'E': putE(dv, v as Float32Array, from, n, o, rb); break;
      case 'J': putJ(dv, v as Int32Array, from, n, o, rb); break;
      case 'I': putI(dv, v as Int16Array, from, n, o, rb); break;
      case 'B': putB(out, v as Uint8Array, from, n, o, rb); break;
      case 'L': putL(out, v as Uint8Array, from, n, o, rb); break;
      case 'A': putA(out, v as string[], from, n, o, rb, d.byteWidth); break;
      default: throw new IppToPspsError('batch_bad_schema', `column ${d.name}: FITS type ${d.code} is not an archive column type`);
    }
  }
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

async function writeTable(out: Output, t: ArchiveTable, scratch: Uint8Array, signal?: AbortSignal): Promise<void> {
  const defs = columnDefsFromInfos(fitsColumns(t));
  const rb = defs.reduce((n, d) => n + d.byteWidth, 0);
  const rows = tableRows(t);
  for (const d of defs) {
    if (d.tzero !== 0 && d.tzero !== 0n) throw new IppToPspsError('batch_bad_schema', `table ${t.schema.name}: column ${d.name} would need TZERO; archive columns are signed`);
  }
  const header = bintableHeader(defs, rows, 0, { name: t.schema.name });
  const per = rowsPerChunk(rb);
  const dv = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
  // Pass 1: the data's checksum.
  const sum = new Checksum();
  let at = 0;
  for (const p of t.parts) {
    for (let from = 0; from < p.rows; from += per) {
      signal?.throwIfAborted();
      const n = Math.min(per, p.rows - from);
      const bytes = scratch.subarray(0, n * rb);
      encode(defs, p.columns, from, n, bytes, dv, rb);
      sum.add(bytes, at);
      at += n * rb;
    }
  }
  setChecksums(header, sum.sum);
  await out.put(header.toBytes());
  // Pass 2: the data, in order.
  for (const p of t.parts) {
    for (let from = 0; from < p.rows; from += per) {
      signal?.throwIfAborted();
      const n = Math.min(per, p.rows - from);
      const room = await out.reserve(n * rb);
      encode(defs, p.columns, from, n, room, new DataView(room.buffer, room.byteOffset, room.byteLength), rb);
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
    const scratch = new Uint8Array(CHUNK);
    for (const t of tables) await writeTable(out, t, scratch, signal);
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
