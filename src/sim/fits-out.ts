// Writing the simulator's FITS files: HDUs whose data are already laid out in memory (one
// chip's table at a time), streamed to the file with one write in flight so the disk works
// while the next chip is generated. Headers come from the fits room (Header, bintableHeader,
// primaryHeader) and carry CHECKSUM/DATASUM like every file the project writes.
import { open, type FileHandle } from 'node:fs/promises';
import {
  BLOCK, CARD, Checksum, Header, bintableHeader, columnDefsFromInfos, encodeChecksum, padToBlock,
  primaryHeader, setChecksums, type FitsColumnDef,
} from '../fits/index.ts';
import { layoutColumns, type CmfLayout } from './cmf-layout.ts';
import { SimError } from './errors.ts';

/** The FITS column definitions of a layout, computed once per layout. */
const DEFS = new WeakMap<CmfLayout, FitsColumnDef[]>();

/** Column definitions for a layout (cached). */
export function layoutDefs(layout: CmfLayout): FitsColumnDef[] {
  let defs = DEFS.get(layout);
  if (!defs) {
    defs = columnDefsFromInfos(layoutColumns(layout));
    DEFS.set(layout, defs);
  }
  return defs;
}

/** The header of a binary table of `rows` rows in a layout, with EXTNAME and extra cards. */
export function tableHeader(layout: CmfLayout, rows: number, extname: string, extra: Header): Header {
  return bintableHeader(layoutDefs(layout), rows, 0, { name: extname, extra });
}

/**
 * The header of an IMAGE extension without data: the smf's `XYnn.hdr`. The original writes
 * NAXIS = 0 there; this writes NAXIS = 2 with both lengths 0 (no data either, by the FITS
 * standard), so that the chip's two-axis WCS keywords are valid for fitsverify. The chip's
 * size is in IMNAXIS1/IMNAXIS2, as in the original.
 */
export function emptyImageHeader(extname: string, extra: Header): Header {
  const h = new Header()
    .set('XTENSION', 'IMAGE', 'image extension')
    .set('BITPIX', 8, 'array data type')
    .set('NAXIS', 2, 'two axes, no data')
    .set('NAXIS1', 0, 'no data (size in IMNAXIS1)')
    .set('NAXIS2', 0, 'no data (size in IMNAXIS2)')
    .set('PCOUNT', 0, 'no extra parameters')
    .set('GCOUNT', 1, 'one group')
    .set('EXTNAME', extname, 'name of this HDU');
  for (const card of extra.cards) h.add(card);
  return h;
}

/** The primary header of a file of extensions, with extra cards. */
export function fileHeader(extra: Header): Header {
  return primaryHeader(extra);
}

/** A change made to a header's bytes after it is formatted (the corrupt-keyword defect). */
export type HeaderPatch = (bytes: Uint8Array) => void;

/**
 * The bytes of a header with CHECKSUM and DATASUM for `datasum`. With a patch (a damaged
 * card), CHECKSUM is computed over the damaged bytes, so that only the card is wrong.
 */
export function headerBytes(header: Header, datasum: number, patch?: HeaderPatch): Uint8Array {
  setChecksums(header, datasum);
  const bytes = header.toBytes();
  if (!patch) return bytes;
  patch(bytes);
  const at = cardOffset(bytes, 'CHECKSUM');
  const field = at + 11; // the quoted value's first character
  bytes.set(Buffer.from('0000000000000000', 'latin1'), field);
  const sum = new Checksum().add(bytes, 0).addSum(datasum >>> 0).sum;
  bytes.set(Buffer.from(encodeChecksum(~sum >>> 0), 'latin1'), field);
  return bytes;
}

/** The byte offset of the card with this keyword (8 characters, padded) in header bytes; −1 if absent. */
export function cardOffset(bytes: Uint8Array, keyword: string): number {
  const key = Buffer.from(keyword.padEnd(8), 'latin1');
  for (let off = 0; off + CARD <= bytes.length; off += CARD) {
    let same = true;
    for (let k = 0; k < 8; k++) if (bytes[off + k] !== key[k]) { same = false; break; }
    if (same && bytes[off + 8] === 0x3d) return off;
  }
  return -1;
}

/**
 * A FITS file being written HDU by HDU. `writeHdu` returns once its write is issued (it
 * waits for the previous write first), so at most one write is in flight and the caller may
 * fill another buffer meanwhile; it must not touch the buffer it passed until the next call
 * (or `close`) returns.
 */
export class FitsStream {
  readonly path: string;
  private readonly handle: FileHandle;
  private pending: Promise<unknown> = Promise.resolve();
  /** Bytes written (or issued) so far. */
  position = 0;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.handle = handle;
  }

  /** Creates the file (it must not exist). */
  static async create(path: string): Promise<FitsStream> {
    try {
      return new FitsStream(path, await open(path, 'wx'));
    } catch (error) {
      throw new SimError('sim_cannot_write', `cannot create ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Writes an HDU: the header (CHECKSUM over the header and `data`) and `dataBytes` bytes of
   * `data`, padded with zeros to a whole block. `data` must hold zeros from `dataBytes` to
   * the next block boundary (see {@link zeroPadding}). Returns where the data start.
   */
  async writeHdu(header: Header, data: Uint8Array | null, dataBytes: number, patch?: HeaderPatch): Promise<number> {
    const datasum = data && dataBytes > 0 ? new Checksum().add(data.subarray(0, dataBytes), 0).sum : 0;
    const head = headerBytes(header, datasum, patch);
    const padded = padToBlock(dataBytes);
    const pieces: Uint8Array[] = [head];
    if (padded > 0) {
      if (!data || data.length < padded) throw new SimError('sim_internal', `a data buffer of ${data?.length ?? 0} bytes cannot hold ${padded} padded bytes`);
      pieces.push(data.subarray(0, padded));
    }
    const at = this.position;
    this.position += head.length + padded;
    await this.pending;
    this.pending = writeAll(this.handle, pieces, at);
    this.pending.catch(() => {}); // reported by the next await
    return at + head.length;
  }

  /**
   * Writes an HDU whose data come in chunks (read from elsewhere, one at a time) and whose
   * sum is already known: the header, the chunks in order, then the zero padding.
   */
  async writeHduStreamed(header: Header, datasum: number, dataBytes: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const head = headerBytes(header, datasum);
    await this.pending;
    let at = this.position;
    await writeAll(this.handle, [head], at);
    at += head.length;
    let bytes = 0;
    for await (const chunk of chunks) {
      await writeAll(this.handle, [chunk], at);
      at += chunk.length;
      bytes += chunk.length;
    }
    if (bytes !== dataBytes) throw new SimError('sim_internal', `${this.path}: ${bytes} data bytes came, ${dataBytes} were announced`);
    const pad = padToBlock(dataBytes) - dataBytes;
    if (pad > 0) await writeAll(this.handle, [new Uint8Array(pad)], at);
    this.position = at + pad;
  }

  /** Waits for the last write, then closes the file. */
  async close(): Promise<void> {
    try {
      await this.pending;
    } finally {
      await this.handle.close();
    }
  }

  /** Closes without reporting write errors (cleanup after a failure). */
  async abandon(): Promise<void> {
    await this.pending.catch(() => {});
    await this.handle.close().catch(() => {});
  }
}

async function writeAll(handle: FileHandle, pieces: Uint8Array[], position: number): Promise<void> {
  let at = position;
  let rest = pieces;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    let n = bytesWritten;
    const next: Uint8Array[] = [];
    for (const p of rest) {
      if (n >= p.length) { n -= p.length; continue; }
      next.push(n > 0 ? p.subarray(n) : p);
      n = 0;
    }
    rest = next;
  }
}

/** Zeroes a buffer from `dataBytes` to the next block boundary (the padding FITS requires). */
export function zeroPadding(buffer: Uint8Array, dataBytes: number): void {
  buffer.fill(0, dataBytes, padToBlock(dataBytes));
}

/** Two growable byte buffers used in turn: one being written while the other is filled. */
export class BufferPair {
  private buffers: Uint8Array[] = [new Uint8Array(BLOCK * 64), new Uint8Array(BLOCK * 64)];
  private turn = 0;

  /** The next buffer, with room for at least `bytes` plus block padding. */
  next(bytes: number): Uint8Array {
    this.turn ^= 1;
    const need = padToBlock(bytes) + BLOCK;
    if (this.buffers[this.turn].length < need) this.buffers[this.turn] = new Uint8Array(Math.max(need, this.buffers[this.turn].length * 2));
    return this.buffers[this.turn];
  }
}
