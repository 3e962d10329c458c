// The data path: copying a file into a new instance so that a crash leaves either nothing or a
// temporary file fsck recognises, never a half-written file under an instance's name.
import { createHash } from 'node:crypto';
import { close as closeCallback, open as openCallback } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NebError } from './errors.ts';

/** The suffix of a copy in progress; fsck removes such files when no copy is running. */
export const PART_SUFFIX = '.part';

const CHUNK = 4 << 20;

/** Size and SHA-256 (hex) of a file's content. */
export interface Digest {
  readonly size: number;
  readonly checksum: string;
}

/** Options of {@link copyVerified}. */
export interface CopyOptions {
  /** The checksum the source must have (the object's recorded one); a mismatch aborts the copy. */
  readonly expect?: string | null;
  /** Flush the copy to disk before it is renamed into place (default true). */
  readonly sync?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Copies `source` to `dest` through `dest.part`: reads and hashes the source, writes the
 * temporary file (created exclusively), checks the checksum against `expect`, flushes it, and
 * renames it into place. On any failure the temporary file is removed and nothing is at `dest`.
 */
export async function copyVerified(source: string, dest: string, options: CopyOptions = {}): Promise<Digest> {
  const part = dest + PART_SUFFIX;
  let input: FileHandle;
  try {
    input = await open(source, 'r');
  } catch (cause) {
    throw new NebError('neb_source_missing', `cannot read ${source}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
  let output: FileHandle | undefined;
  let created = false;
  try {
    output = await openExclusive(part);
    created = true;
    const digest = await pump(input, output, source, part, options.sync ?? true, options.signal);
    if (options.expect && options.expect !== digest.checksum) {
      throw new NebError('neb_checksum_mismatch', `${source} has SHA-256 ${digest.checksum} but the object's recorded checksum is ${options.expect}: this copy is damaged`);
    }
    if (options.sync ?? true) await output.datasync();
    await output.close();
    output = undefined;
    await rename(part, dest).catch((cause: unknown) => { throw ioError(cause, `cannot rename ${part} to ${dest}`); });
    return digest;
  } catch (error) {
    await output?.close().catch(() => undefined);
    // Only a temporary file this copy made is removed; one in the way belongs to another copy.
    if (created) await rm(part, { force: true }).catch(() => undefined);
    throw error;
  } finally {
    await input.close().catch(() => undefined);
  }
}

/** Bytes written between flushes started while copying, so that the disk works while the copy goes on. */
const FLUSH_EVERY = 64 << 20;

async function pump(input: FileHandle, output: FileHandle, source: string, part: string, sync: boolean, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash('sha256');
  const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  let size = 0;
  let current = 0;
  let unflushed = 0;
  let flushing: Promise<void> = Promise.resolve();
  const read = (b: Buffer) => input.read(b, 0, CHUNK, null).catch((cause: unknown) => { throw ioError(cause, `cannot read ${source}`); });
  let pending = read(buffers[current]);
  try {
    // While a chunk is written (by the thread pool) it is hashed here, and the next chunk is
    // read into the other buffer: the three overlap.
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      signal?.throwIfAborted();
      const chunk = buffers[current].subarray(0, bytesRead);
      size += bytesRead;
      const written = writeAll(output, chunk).catch((cause: unknown) => { throw ioError(cause, `cannot write ${part}`); });
      current ^= 1;
      pending = read(buffers[current]);
      hash.update(chunk);
      await written;
      unflushed += bytesRead;
      if (sync && unflushed >= FLUSH_EVERY) {
        unflushed = 0;
        // One flush at a time, not awaited here: the next chunks are copied meanwhile. A
        // failure is kept for the await below (the catch only marks it as seen).
        flushing = flushing.then(() => output.datasync());
        flushing.catch(() => undefined);
      }
    }
  } catch (error) {
    // Nothing may still run on the files when the caller closes them.
    await Promise.allSettled([pending, flushing]);
    throw error;
  }
  await flushing.catch((cause: unknown) => { throw ioError(cause, `cannot flush ${part}`); });
  return { size, checksum: hash.digest('hex') };
}

async function writeAll(output: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await output.write(chunk, offset, chunk.length - offset, null);
    offset += bytesWritten;
  }
}

/** Size and SHA-256 of a file, read in large chunks. */
export async function digestFile(path: string): Promise<Digest> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { size, checksum: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** Creates an empty file that must not exist yet (the file a client will write). */
export async function createEmptyFile(path: string): Promise<void> {
  const fd = await new Promise<number>((resolve, reject) => {
    const attempt = (retry: boolean) => openCallback(path, 'wx', 0o664, (error, fd) => {
      if (!error) resolve(fd);
      else if (error.code === 'ENOENT' && retry) mkdir(dirname(path), { recursive: true, mode: 0o775 }).then(() => attempt(false), reject);
      else reject(ioError(error, `cannot create ${path}`));
    });
    attempt(true);
  });
  await new Promise<void>((resolve, reject) => closeCallback(fd, (error) => (error ? reject(ioError(error, `cannot close ${path}`)) : resolve())));
}

/**
 * Opens a new file exclusively. The hash directory is made only when the open finds it
 * missing: on a volume in use they all exist, and a create then costs no mkdir at all.
 */
async function openExclusive(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'wx', 0o664);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(cause, `cannot create ${path}`);
  }
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o775 });
    return await open(path, 'wx', 0o664);
  } catch (cause) {
    throw ioError(cause, `cannot create ${path}`);
  }
}

/** Makes the 65,536 hash directories of a volume's `nebulous/` tree ahead of use (the original's mkdirs script). */
export async function prepareHashDirectories(root: string): Promise<void> {
  const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
  for (const top of hex) {
    await mkdir(join(root, top), { recursive: true, mode: 0o775 }).catch((cause: unknown) => { throw ioError(cause, `cannot create ${join(root, top)}`); });
    await Promise.all(hex.map((sub) => mkdir(join(root, top, sub), { mode: 0o775 }).catch((cause: NodeJS.ErrnoException) => {
      if (cause.code !== 'EEXIST') throw ioError(cause, `cannot create ${join(root, top, sub)}`);
    })));
  }
}

/** Removes a file, ignoring one that is already gone; other failures are returned, not thrown. */
export async function removeFile(path: string): Promise<Error | undefined> {
  try {
    await rm(path, { force: true });
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

/** A file-system failure as a Nebulous error: a full disk is `neb_volume_full`, the rest `neb_io`. */
export function ioError(cause: unknown, what: string): NebError {
  if (cause instanceof NebError) return cause;
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new NebError('neb_volume_full', `${what}: the disk is full`, { cause });
  return new NebError('neb_io', `${what}: ${code ?? (cause as Error).message}`, { cause });
}
