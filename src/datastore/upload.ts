// The publish body, one request per fileset: a manifest (one line of JSON: the fileset type
// and each file's name, bytes, md5 and type) followed by the bytes of every file back to back,
// in manifest order. The server checks everything it can from the manifest before it stores a
// byte, then streams each file into staging with its md5 computed on the way.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DatastoreError } from './errors.ts';
import { checkName, checkType } from './names.ts';
import type { FileInfo, FilesetManifest } from './types.ts';

/** The media type of a publish body. */
export const FILESET_BODY_TYPE = 'application/x-ipp-fileset';

/** Limits on what one publish may carry. */
export interface UploadLimits {
  /** Largest file (413 beyond). */
  readonly maxFileBytes: number;
  /** Largest fileset, all files together (413 beyond). */
  readonly maxFilesetBytes: number;
  readonly maxFiles: number;
  /** Longest manifest line. */
  readonly maxManifestBytes: number;
}

/** The limits a server has unless told otherwise. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = Object.freeze({
  maxFileBytes: 32 * 2 ** 30,
  maxFilesetBytes: 64 * 2 ** 30,
  maxFiles: 10_000,
  maxManifestBytes: 4 * 2 ** 20,
});

/** The file type recorded when a publisher gives none, from the file name's extension. */
export function fileTypeOf(name: string): string {
  const lower = name.toLowerCase();
  if (/\.(fits|fit|fz|fits\.gz)$/.test(lower)) return 'fits';
  if (lower.endsWith('.xml') || lower.endsWith('.vot')) return 'xml';
  if (lower.endsWith('.txt')) return 'text';
  if (lower.endsWith('.tgz') || lower.endsWith('.tar.gz')) return 'tgz';
  return 'notset';
}

const WRITE_BATCH = 1 << 20;

/** Reads a request body piece by piece: a line, then exact byte counts. */
export class BodyReader {
  readonly #iterator: AsyncIterator<Buffer>;
  #leftover: Buffer | undefined;
  #ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#leftover !== undefined) {
      const chunk = this.#leftover;
      this.#leftover = undefined;
      return chunk;
    }
    if (this.#ended) return undefined;
    const r = await this.#iterator.next();
    if (r.done) {
      this.#ended = true;
      return undefined;
    }
    return r.value;
  }

  /** The bytes up to the first newline (which is consumed); refused past `limit` bytes. */
  async readLine(limit: number): Promise<string> {
    const parts: Buffer[] = [];
    let size = 0;
    while (true) {
      const chunk = await this.#next();
      if (chunk === undefined) throw new DatastoreError('manifest_invalid', 'the publish body ended before the end of its manifest line');
      const nl = chunk.indexOf(10);
      if (nl >= 0) {
        parts.push(chunk.subarray(0, nl));
        if (nl + 1 < chunk.length) this.#leftover = chunk.subarray(nl + 1);
        return Buffer.concat(parts).toString('utf8');
      }
      size += chunk.length;
      if (size > limit) throw new DatastoreError('upload_too_large', `the manifest line is over ${limit} bytes`);
      parts.push(chunk);
    }
  }

  /** Yields exactly `n` bytes in chunks; `upload_truncated` when the body ends first. */
  async *take(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      const chunk = await this.#next();
      if (chunk === undefined) {
        throw new DatastoreError('upload_truncated', `the publish body ended ${left} bytes before the end of ${what}; nothing was registered`);
      }
      if (chunk.length > left) {
        this.#leftover = chunk.subarray(left);
        yield chunk.subarray(0, left);
        return;
      }
      left -= chunk.length;
      yield chunk;
    }
  }

  /** Reads and discards the rest of the body, up to `limit` bytes; true when it ended within that. */
  async drain(limit: number): Promise<boolean> {
    let seen = 0;
    while (true) {
      const chunk = await this.#next();
      if (chunk === undefined) return true;
      seen += chunk.length;
      if (seen > limit) return false;
    }
  }

  /** True when nothing follows (what a complete body must end with). */
  async atEnd(): Promise<boolean> {
    while (true) {
      const chunk = await this.#next();
      if (chunk === undefined) return true;
      if (chunk.length > 0) {
        this.#leftover = chunk;
        return false;
      }
    }
  }
}

/** Parses and checks a manifest line against the limits; sizes over a limit are a 413. */
export function parseManifest(line: string, limits: UploadLimits): FilesetManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (cause) {
    throw new DatastoreError('manifest_invalid', `the manifest line is not JSON: ${(cause as Error).message}`, { cause });
  }
  const m = raw as { type?: unknown; files?: unknown };
  if (typeof raw !== 'object' || raw === null || !Array.isArray(m.files)) {
    throw new DatastoreError('manifest_invalid', 'the manifest must be {"type": ..., "files": [{"name", "bytes", "md5", "type"}, ...]}');
  }
  if (m.files.length > limits.maxFiles) {
    throw new DatastoreError('upload_too_large', `a fileset may have at most ${limits.maxFiles} files; this one has ${m.files.length}`);
  }
  const type = m.type === undefined || m.type === null ? undefined : checkType('fileset type', m.type);
  const seen = new Set<string>();
  let total = 0;
  const files: FileInfo[] = m.files.map((f: unknown, i: number) => {
    const e = (f ?? {}) as { name?: unknown; bytes?: unknown; md5?: unknown; type?: unknown };
    const name = checkName('file', e.name);
    if (seen.has(name)) throw new DatastoreError('manifest_invalid', `file "${name}" appears twice in the manifest`);
    seen.add(name);
    if (typeof e.bytes !== 'number' || !Number.isSafeInteger(e.bytes) || e.bytes < 0) {
      throw new DatastoreError('manifest_invalid', `file ${i + 1} ("${name}"): bytes must be a whole number >= 0`);
    }
    if (e.bytes > limits.maxFileBytes) {
      throw new DatastoreError('upload_too_large', `file "${name}" is ${e.bytes} bytes; this server takes files up to ${limits.maxFileBytes} bytes`);
    }
    if (typeof e.md5 !== 'string' || !/^[0-9a-fA-F]{32}$/.test(e.md5)) {
      throw new DatastoreError('manifest_invalid', `file "${name}": md5 must be 32 hex digits`);
    }
    total += e.bytes;
    const fileType = e.type === undefined || e.type === null ? fileTypeOf(name) : checkType(`type of file "${name}"`, e.type);
    return { name, bytes: e.bytes, md5: e.md5.toLowerCase(), type: fileType };
  });
  if (total > limits.maxFilesetBytes) {
    throw new DatastoreError('upload_too_large', `the fileset is ${total} bytes; this server takes filesets up to ${limits.maxFilesetBytes} bytes`);
  }
  return { type, files };
}

/** True for the errors a full disk (or quota) raises. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Streams the files of a manifest from the body into `dir`, each checked against its declared
 * size and md5 and (with `fsync`) flushed to disk, then checks that the body ends there.
 */
export async function receiveFiles(reader: BodyReader, files: readonly FileInfo[], dir: string, fsync: boolean): Promise<void> {
  for (const file of files) {
    const hash = createHash('md5');
    const handle = await open(join(dir, file.name), 'wx');
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const chunk of reader.take(file.bytes, `file "${file.name}"`)) {
        hash.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH) {
          await writeAll(handle, pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pendingBytes > 0) await writeAll(handle, pending, pendingBytes);
      if (fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    const md5 = hash.digest('hex');
    if (md5 !== file.md5) {
      throw new DatastoreError('md5_mismatch',
        `file "${file.name}": the ${file.bytes} bytes received have md5 ${md5} but the publisher declared ${file.md5}; nothing was registered`);
    }
  }
  if (!(await reader.atEnd())) {
    throw new DatastoreError('upload_too_long', 'the publish body goes on past the last file of its manifest; nothing was registered');
  }
}

async function writeAll(handle: Awaited<ReturnType<typeof open>>, buffers: Buffer[], total: number): Promise<void> {
  let { bytesWritten } = await handle.writev(buffers);
  // A short write (a nearly full disk) is finished piece by piece; the next call reports ENOSPC.
  while (bytesWritten < total) {
    const rest = Buffer.concat(buffers).subarray(bytesWritten);
    bytesWritten += (await handle.write(rest)).bytesWritten;
  }
}

/** A file to publish: a path on disk, or bytes in memory. Name, type and md5 are optional. */
export type PublishSource =
  | { readonly path: string; readonly name?: string; readonly type?: string; readonly md5?: string }
  | { readonly data: Uint8Array; readonly name: string; readonly type?: string; readonly md5?: string };

/** Yields a publish body: the manifest line, then each source's bytes (exactly as declared). */
export async function* filesetBody(manifest: FilesetManifest, sources: readonly PublishSource[]): AsyncGenerator<Uint8Array> {
  yield Buffer.from(`${JSON.stringify(manifest)}\n`);
  for (let i = 0; i < sources.length; i++) {
    const source = sources[i];
    const declared = manifest.files[i].bytes;
    if ('data' in source) {
      yield source.data;
      continue;
    }
    const handle = await open(source.path, 'r');
    try {
      let sent = 0;
      while (sent < declared) {
        const buffer = Buffer.allocUnsafe(Math.min(WRITE_BATCH, declared - sent));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, sent);
        if (bytesRead === 0) break;
        sent += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
      if (sent !== declared || (await handle.stat()).size !== declared) {
        throw new DatastoreError('file_changed', `${source.path} changed size while it was being published; publish it again`);
      }
    } finally {
      await handle.close();
    }
  }
}
