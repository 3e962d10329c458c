// A file written front to back through two staging buffers, with direct I/O where the file
// system allows it. A DVO region update writes ~1 GB and syncs every file before its commit, so
// each byte goes to the disk anyway; through the page cache it is first copied into cache
// pages, which cost this machine's kernel 0.3–2.9 CPU s per 1.2 GB (measured with dd: new
// pages, their reclaim, then the writeback at fsync), against ~0.1–0.5 s written direct
// (O_DIRECT: the disk reads our buffers). Direct writes must start on block boundaries, be
// whole blocks and come from block-aligned memory: the staging buffers are WebAssembly
// memories (which start on a page boundary; a plain ArrayBuffer need not), the file is
// staged in whole buffers, the last block padded and the file cut to its length after.
//
// FITS headers hold checksums of the data after them, so a header is written first as a
// placeholder and patched when its data are done: its blocks are held back (copied aside
// when their buffer goes out) until then. One header is held at a time.
//
// Where direct I/O is refused (tmpfs on older kernels, some network file systems: EINVAL),
// the same staging writes through the page cache: at open, or part way, when a direct write
// is refused (the file is then reopened through the cache and the refused bytes written
// again; what went out before stays).
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { IppError } from './errors.ts';

/** Bytes of a staging buffer (a multiple of every block size direct I/O asks for). */
export const STAGE_BYTES = 4 << 20;
const BLOCK = 4096;
const WASM_PAGE = 65536;

// Staging buffers kept for the next files: new ones cost page faults and zeroing.
const pool: Uint8Array[] = [];
const MAX_POOL = 16;

// Set when aligned memory cannot be had (no WebAssembly, address space limits): then plain buffers and the page cache.
let noAligned = false;

// WebAssembly memories start on a page boundary (absent under --jitless; the compiler's libraries here do not declare them).
const Wasm = (globalThis as { WebAssembly?: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly;

// Buffers that start on a page boundary.
const aligned = new WeakSet<ArrayBufferLike>();

function takeBuffer(wantAligned: boolean): Uint8Array {
  const at = pool.findLastIndex((b) => !wantAligned || aligned.has(b.buffer));
  if (at >= 0) return pool.splice(at, 1)[0];
  if (wantAligned && !noAligned && Wasm) {
    try {
      const b = new Uint8Array(new Wasm.Memory({ initial: STAGE_BYTES / WASM_PAGE, maximum: STAGE_BYTES / WASM_PAGE }).buffer);
      aligned.add(b.buffer);
      return b;
    } catch {
      noAligned = true;
    }
  }
  return new Uint8Array(STAGE_BYTES);
}

function giveBack(b: Uint8Array | undefined): void {
  if (b && pool.length < MAX_POOL) pool.push(b);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await handle.write(bytes, offset + done, length - done, position + done);
    if (bytesWritten === 0) throw new IppError('output_io', `a write of ${length - done} bytes at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

function refused(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'EINVAL';
}

/** How {@link OutputFile.create} opens a file: direct I/O when possible (the default), or through the page cache. */
export type OutputMode = 'direct' | 'cached';

/** Options of {@link OutputFile.create}. */
export interface OutputFileOptions {
  /** `direct` (the default) where the file system takes it, or `cached`: through the page cache. */
  readonly mode?: OutputMode;
  /** Fail if the file exists (otherwise it is truncated). */
  readonly exclusive?: boolean;
  /** For tests: direct writes after this many are refused as a file system refusing direct I/O part way would (EINVAL). */
  readonly directWrites?: number;
}

/** A file written front to back (see the file comment); {@link finish} syncs and closes it. */
export class OutputFile {
  private isDirect: boolean;
  private handle: FileHandle;
  private readonly path: string;
  // Direct writes left before one is refused (tests), and whether any went out direct (the
  // last block was then padded, and the file must be cut to its length).
  private directWrites: number;
  private wasDirect: boolean;
  private bufs: [Uint8Array, Uint8Array];
  private cur = 0;
  // File offset of the current buffer's first byte, and the bytes staged in it.
  private base = 0;
  private fill = 0;
  private inFlight: Promise<void> | undefined;
  // The held header: bytes [holdStart, holdEnd), blocks [holdFirst, holdLast].
  private holdStart = -1;
  private holdEnd = -1;
  private side: Uint8Array | undefined;
  // Held blocks copied aside (their buffer went out): [holdFirst, asideEnd).
  private asideEnd = -1;
  private closed = false;

  private constructor(handle: FileHandle, path: string, direct: boolean, bufs: [Uint8Array, Uint8Array], side: Uint8Array | undefined, directWrites: number) {
    this.handle = handle;
    this.path = path;
    this.isDirect = direct;
    this.wasDirect = direct;
    this.bufs = bufs;
    this.side = side;
    this.directWrites = directWrites;
  }

  /** Creates `path` for writing (truncating it unless `exclusive`). */
  static async create(path: string, options: OutputFileOptions = {}): Promise<OutputFile> {
    const mode = options.mode ?? 'direct';
    const flags = constants.O_WRONLY | constants.O_CREAT | (options.exclusive ? constants.O_EXCL : constants.O_TRUNC);
    const bufs: [Uint8Array, Uint8Array] = [takeBuffer(mode === 'direct'), takeBuffer(mode === 'direct')];
    // Direct writes also need aligned room for a header's blocks held back: taken now, so that
    // a file never finds itself without it half way.
    const side = mode === 'direct' ? takeBuffer(true) : undefined;
    const direct = mode === 'direct' && constants.O_DIRECT !== undefined && [...bufs, side!].every((b) => aligned.has(b.buffer));
    const directWrites = options.directWrites ?? Infinity;
    if (direct) {
      try {
        return new OutputFile(await open(path, flags | constants.O_DIRECT, 0o666), path, true, bufs, side, directWrites);
      } catch (error) {
        if (!refused(error)) { bufs.forEach(giveBack); giveBack(side); throw error; }
      }
    }
    giveBack(side);
    try {
      return new OutputFile(await open(path, flags, 0o666), path, false, bufs, undefined, directWrites);
    } catch (error) {
      bufs.forEach(giveBack);
      throw error;
    }
  }

  /** True while the file is written with direct I/O. */
  get direct(): boolean {
    return this.isDirect;
  }

  /** Bytes staged so far (the file offset of the next byte). */
  get position(): number {
    return this.base + this.fill;
  }

  /** Free staging space for the next bytes (at least `min`, flushing the buffer first if needed); write into it, then {@link advance}. */
  async space(min: number): Promise<Uint8Array> {
    if (min > STAGE_BYTES) throw new IppError('output_internal', `${min} bytes do not fit a staging buffer`);
    if (STAGE_BYTES - this.fill < min) await this.flush(false);
    return this.bufs[this.cur].subarray(this.fill);
  }

  /** Counts `length` bytes written into {@link space} as staged. */
  async advance(length: number): Promise<void> {
    this.fill += length;
    if (this.fill > STAGE_BYTES) throw new IppError('output_internal', 'staged past the end of the buffer');
    if (this.fill === STAGE_BYTES) await this.flush(false);
  }

  /** Stages bytes. */
  async put(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) {
      const room = await this.space(1);
      const n = Math.min(room.length, bytes.length - done);
      room.set(bytes.subarray(done, done + n));
      done += n;
      await this.advance(n);
    }
  }

  /** Stages `length` zero bytes. */
  async zeros(length: number): Promise<void> {
    for (let done = 0; done < length;) {
      const room = await this.space(1);
      const n = Math.min(room.length, length - done);
      room.fill(0, 0, n);
      done += n;
      await this.advance(n);
    }
  }

  /** Stages `bytes` as a placeholder to be replaced by {@link patch} (one at a time). */
  async putHeld(bytes: Uint8Array): Promise<void> {
    if (this.holdStart >= 0) throw new IppError('output_internal', 'a second placeholder before the first was patched');
    this.holdStart = this.position;
    this.holdEnd = this.holdStart + bytes.length;
    this.asideEnd = -1;
    await this.put(bytes);
  }

  /** Replaces the placeholder with `bytes` (of the same length) and lets its blocks go out. */
  async patch(bytes: Uint8Array): Promise<void> {
    const start = this.holdStart;
    if (start < 0 || bytes.length !== this.holdEnd - start) throw new IppError('output_internal', 'a patch that is not the placeholder\'s size');
    await this.inFlight;
    // Bytes still staged are patched in the buffer; those gone out were held aside (direct) or are rewritten in place.
    const staged = Math.max(start, this.base);
    if (staged < this.holdEnd) this.bufs[this.cur].set(bytes.subarray(staged - start), staged - this.base);
    if (start < this.base) {
      const gone = bytes.subarray(0, Math.min(bytes.length, this.base - start));
      if (this.direct) {
        const first = this.heldFrom();
        const side = this.side!;
        side.set(gone, start - first);
        // Every held block that went out is whole in `side` (it left with a full buffer).
        try {
          await this.writeDirect(side, 0, this.asideEnd - first, first);
        } catch (error) {
          if (!refused(error)) throw error;
          await this.toCached();
        }
      } else {
        await writeAll(this.handle, gone, 0, gone.length, start);
      }
    }
    this.holdStart = this.holdEnd = this.asideEnd = -1;
  }

  // Sends the current buffer out (the previous one must have gone first) and makes the other current.
  private async flush(final: boolean): Promise<void> {
    await this.inFlight;
    this.inFlight = undefined;
    const buf = this.bufs[this.cur];
    let end = this.fill;
    if (final && this.direct && end % BLOCK !== 0) {
      const padded = Math.ceil(end / BLOCK) * BLOCK;
      buf.fill(0, end, padded);
      end = padded;
    }
    const base = this.base;
    // Held blocks in this buffer are copied aside and left out of the write.
    let skipFrom = end;
    let skipTo = end;
    if (this.direct && this.holdStart >= 0 && this.holdStart < base + end && this.holdEnd > base) {
      const first = this.heldFrom();
      const last = Math.ceil(this.holdEnd / BLOCK) * BLOCK;
      skipFrom = Math.max(first, base) - base;
      skipTo = Math.min(last, base + end) - base;
      const side = this.side!;
      if (last - first > side.length) throw new IppError('output_internal', `a header of ${this.holdEnd - this.holdStart} bytes is larger than a staging buffer`);
      side.set(buf.subarray(skipFrom, skipTo), base + skipFrom - first);
      this.asideEnd = base + skipTo;
    }
    this.inFlight = (async () => {
      if (!this.direct) return writeAll(this.handle, buf, 0, end, base);
      try {
        if (skipFrom > 0) await this.writeDirect(buf, 0, skipFrom, base);
        if (skipTo < end) await this.writeDirect(buf, skipTo, end - skipTo, base + skipTo);
      } catch (error) {
        if (!refused(error)) throw error;
        await this.toCached();
        await writeAll(this.handle, buf, 0, end, base);
      }
    })();
    // Not awaited here: the next buffer is filled meanwhile. A failure surfaces at the next flush, patch or finish.
    this.inFlight.catch(() => {});
    if (!final) {
      this.cur ^= 1;
      this.base += STAGE_BYTES;
      this.fill = 0;
    }
  }

  private async writeDirect(bytes: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    if (this.directWrites-- <= 0) throw Object.assign(new Error('direct write refused (test)'), { code: 'EINVAL' });
    await writeAll(this.handle, bytes, offset, length, position);
  }

  // A direct write was refused part way: the file goes on through the page cache. What went
  // out stays; the held blocks copied aside (a header's, with the bytes around it) go out now,
  // so that a patch need only write the header.
  private async toCached(): Promise<void> {
    await this.handle.close();
    this.handle = await open(this.path, constants.O_WRONLY);
    this.isDirect = false;
    if (this.holdStart >= 0 && this.asideEnd >= 0) {
      const first = this.heldFrom();
      await writeAll(this.handle, this.side!, 0, this.asideEnd - first, first);
    }
  }

  // Where the held header's first block starts (`side` holds the held blocks from there).
  private heldFrom(): number {
    return Math.floor(this.holdStart / BLOCK) * BLOCK;
  }

  /** Writes what is staged, cuts the file to its length, syncs (unless `sync` is false) and closes it. */
  async finish(sync = true): Promise<void> {
    const length = this.position;
    try {
      if (this.holdStart >= 0) throw new IppError('output_internal', `${this.path}: a placeholder was never patched`);
      if (this.fill > 0) await this.flush(true);
      await this.inFlight;
      this.inFlight = undefined;
      if (this.wasDirect) await this.handle.truncate(length);
      if (sync) await this.handle.sync();
    } finally {
      await this.close();
    }
  }

  /** Closes the file without finishing it (after a failure); the buffers go back to the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inFlight?.catch(() => {});
    await this.handle.close();
    this.bufs.forEach(giveBack);
    giveBack(this.side);
    this.side = undefined;
  }
}
