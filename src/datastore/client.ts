// The datastore client: the library ippToPsps publishes with and the DXLayer polls and
// downloads with, and what `ipp datastore ...` runs. Downloads are checked against the md5 the
// server registered, resume a broken transfer with a Range request into a partial file, and
// appear under their final name only when complete.
import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHttpClient, urlPath, type HttpClient } from '../common/index.ts';
import { DatastoreError } from './errors.ts';
import { checkName } from './names.ts';
import type {
  DatastoreHealth, FileInfo, FilesetDetail, FilesetInfo, FilesetManifest, FilesetPage, ProductInfo, PublishResult, RemoveResult,
} from './types.ts';
import { FILESET_BODY_TYPE, fileTypeOf, filesetBody, type PublishSource } from './upload.ts';

/** Options of {@link DatastoreClient}. */
export interface DatastoreClientOptions {
  /** The server, e.g. `http://host:8470`. */
  readonly url: string;
  /** Bearer token: the server's token for writes, or a product's read token. */
  readonly token?: string;
  /** Timeout of each JSON call (default 30 s); transfers have none. */
  readonly timeoutMs?: number;
}

/** Which filesets a listing wants. */
export interface FilesetQuery {
  /** Only filesets registered at or after this time. */
  readonly since?: string | Date;
  /** Only filesets registered after the one of this name (the original index's query). */
  readonly after?: string;
  /** Only filesets registered after this id: a poller's cursor that survives removals. */
  readonly afterId?: number;
  /** Hidden filesets too. */
  readonly includeHidden?: boolean;
  /** Filesets per request (at most 10,000). */
  readonly pageSize?: number;
}

/** A product to add. */
export interface ProductSpec {
  readonly name: string;
  readonly type: string;
  readonly description: string;
  /** When set, reading the product needs this token. */
  readonly readToken?: string;
}

/** Options of {@link DatastoreClient.publish}. */
export interface PublishOptions {
  /** The fileset type (default: the product's). */
  readonly type?: string;
  /** Replace a fileset of the same name (refused otherwise). */
  readonly replace?: boolean;
  readonly signal?: AbortSignal;
}

/** Options of downloads. */
export interface DownloadOptions {
  readonly signal?: AbortSignal;
  /** Further attempts after a broken transfer or a bad checksum (default 3). */
  readonly retries?: number;
  /** Called with each count of bytes received (or found complete on disk). */
  readonly onBytes?: (bytes: number) => void;
  /** Flush each file to disk before it is renamed into place (default true). */
  readonly fsync?: boolean;
}

/** One downloaded file. */
export interface DownloadResult {
  readonly path: string;
  readonly bytes: number;
  readonly md5: string;
  /** Bytes that were already on disk from an earlier, broken download (0 for a fresh one). */
  readonly resumedFrom: number;
  /** True when the file was already complete and checked, so nothing was fetched. */
  readonly alreadyComplete: boolean;
}

const WRITE_BATCH = 1 << 20;
/** Filesets larger than this are checked by the server (names, space, limits) before they are sent. */
const PREFLIGHT_BYTES = 32 * 2 ** 20;
/** Filesets up to this size are sent as one buffer. */
const SMALL_BODY_BYTES = 4 * 2 ** 20;

/** A client of one datastore server. */
export class DatastoreClient {
  /** The server's base URL. */
  readonly url: string;
  readonly #http: HttpClient;

  constructor(options: DatastoreClientOptions) {
    this.#http = createHttpClient({ baseUrl: options.url, name: 'datastore', token: options.token, timeoutMs: options.timeoutMs });
    this.url = this.#http.baseUrl;
  }

  /** Counts of the store and the service. */
  health(): Promise<DatastoreHealth> {
    return this.#http.json<DatastoreHealth>('/health');
  }

  /** The products this client may see. */
  async products(): Promise<ProductInfo[]> {
    return (await this.#http.json<{ products: ProductInfo[] }>('/products')).products;
  }

  /** One product. */
  product(name: string): Promise<ProductInfo> {
    return this.#http.json<ProductInfo>(urlPath('products', name));
  }

  /** Adds a product (the original's `dsprodtool --add`); needs the server's token. */
  addProduct(spec: ProductSpec): Promise<ProductInfo> {
    return this.#http.json<ProductInfo>('/products', { method: 'POST', json: spec });
  }

  /** One page of a product's filesets, in registration order. */
  filesetPage(product: string, query: FilesetQuery = {}): Promise<FilesetPage> {
    const q = new URLSearchParams();
    if (query.since !== undefined) q.set('since', query.since instanceof Date ? query.since.toISOString() : query.since);
    if (query.after !== undefined) q.set('after', query.after);
    if (query.afterId !== undefined) q.set('after_id', String(query.afterId));
    if (query.includeHidden) q.set('hidden', '1');
    if (query.pageSize !== undefined) q.set('limit', String(query.pageSize));
    const search = q.size > 0 ? `?${q}` : '';
    return this.#http.json<FilesetPage>(`${urlPath('products', product, 'filesets')}${search}`);
  }

  /** Every fileset of a product that the query selects (all pages), in registration order. */
  async filesets(product: string, query: FilesetQuery = {}): Promise<FilesetInfo[]> {
    const all: FilesetInfo[] = [];
    let page = await this.filesetPage(product, query);
    all.push(...page.filesets);
    while (page.more && page.filesets.length > 0) {
      page = await this.filesetPage(product, { ...query, after: undefined, afterId: page.filesets.at(-1)!.id });
      all.push(...page.filesets);
    }
    return all;
  }

  /** A fileset with its files. */
  fileset(product: string, name: string): Promise<FilesetDetail> {
    return this.#http.json<FilesetDetail>(urlPath('products', product, 'filesets', name));
  }

  /** The plain-text index (the original's index.txt): the root, a product (after a fileset), or a fileset. */
  async textIndex(product?: string, fileset?: string, after?: string): Promise<string> {
    const path = product === undefined ? '/ds/index.txt'
      : fileset === undefined ? `${urlPath('ds', product, 'index.txt')}${after ? `?${encodeURIComponent(after)}` : ''}`
        : urlPath('ds', product, fileset, 'index.txt');
    return (await this.#http.request(path)).text();
  }

  /**
   * Publishes a fileset in one streamed request: each file's size and md5 (computed here unless
   * given) go ahead in the manifest and the server checks them. The fileset becomes visible
   * whole when the server has every file, or not at all.
   */
  async publish(product: string, fileset: string, sources: readonly PublishSource[], options: PublishOptions = {}): Promise<PublishResult> {
    const files: FileInfo[] = [];
    for (const source of sources) {
      const name = source.name ?? baseName((source as { path: string }).path);
      checkName('file', name);
      let bytes: number;
      let md5 = source.md5;
      if ('data' in source) {
        bytes = source.data.length;
        md5 ??= createHash('md5').update(source.data).digest('hex');
      } else {
        const summary = md5 === undefined ? await fileMd5(source.path, options.signal) : { bytes: (await stat(source.path)).size, md5 };
        bytes = summary.bytes;
        md5 = summary.md5;
      }
      files.push({ name, bytes, md5: md5.toLowerCase(), type: source.type ?? fileTypeOf(name) });
    }
    const manifest: FilesetManifest = { type: options.type, files };
    const query = options.replace ? '?replace=1' : '';
    if (files.reduce((n, f) => n + f.bytes, 0) > PREFLIGHT_BYTES) {
      // A big fileset is checked before it is sent, so a refusal does not cost its upload.
      await this.#http.json(`${urlPath('products', product, 'filesets', fileset, 'check')}${query}`, { method: 'POST', json: manifest, signal: options.signal });
    }
    const path = `${urlPath('products', product, 'filesets', fileset)}${query}`;
    const total = files.reduce((s, f) => s + f.bytes, 0);
    // A small fileset goes as one buffer (one write, a Content-Length); a large one streams.
    let body: Uint8Array | AsyncIterable<Uint8Array> = filesetBody(manifest, sources);
    if (total <= SMALL_BODY_BYTES) {
      const parts: Uint8Array[] = [];
      for await (const part of body) parts.push(part);
      body = Buffer.concat(parts);
    }
    // The body's length is known (the manifest line, then each file's declared bytes), so it
    // goes with a Content-Length over the kit's raw sockets.
    const bodyLength = Buffer.byteLength(`${JSON.stringify(manifest)}\n`) + total;
    const response = await this.#http.request(path, {
      method: 'PUT', headers: { 'content-type': FILESET_BODY_TYPE }, body, bodyLength, signal: options.signal,
    });
    return (await response.json()) as PublishResult;
  }

  /** Removes one fileset, or every fileset from `fileset` to `options.to` by name (the original's datastoreRemover); `hide` keeps the files but unlists them. */
  remove(product: string, fileset: string, options: { to?: string; hide?: boolean } = {}): Promise<RemoveResult> {
    const q = new URLSearchParams();
    if (options.to !== undefined) q.set('to', options.to);
    if (options.hide) q.set('hide', '1');
    const search = q.size > 0 ? `?${q}` : '';
    return this.#http.json<RemoveResult>(`${urlPath('products', product, 'filesets', fileset)}${search}`, { method: 'DELETE' });
  }

  /** Downloads every file of a fileset into `outDir` (files already there and correct are kept). */
  async get(product: string, fileset: string, outDir: string, options: DownloadOptions = {}): Promise<DownloadResult[]> {
    const detail = await this.fileset(product, fileset);
    await mkdir(outDir, { recursive: true });
    const results: DownloadResult[] = [];
    for (const file of detail.files) {
      results.push(await this.download(product, fileset, file, join(outDir, checkName('file', file.name)), options));
    }
    return results;
  }

  /**
   * Downloads one file to `dest`: into `dest.part` first (resuming from what an earlier broken
   * download left there, with a Range request that only applies to the same file version),
   * checked against the registered size and md5, then renamed into place.
   */
  async download(product: string, fileset: string, file: FileInfo, dest: string, options: DownloadOptions = {}): Promise<DownloadResult> {
    const existing = await fileMd5(dest, options.signal).catch(() => undefined);
    if (existing !== undefined && existing.bytes === file.bytes && existing.md5 === file.md5) {
      options.onBytes?.(file.bytes);
      return { path: dest, bytes: file.bytes, md5: file.md5, resumedFrom: file.bytes, alreadyComplete: true };
    }
    await mkdir(dirname(dest), { recursive: true });
    const part = `${dest}.part`;
    const path = urlPath('products', product, 'filesets', fileset, 'files', file.name);
    const retries = options.retries ?? 3;
    let resumedFrom = -1;
    for (let attempt = 0; ; attempt++) {
      let outcome: Attempt;
      try {
        outcome = await this.#fetchInto(path, file, part, options);
      } catch (error) {
        // A server that is restarting is worth another try; any other refusal is final.
        if ((error as { code?: string }).code !== 'service_unreachable') throw error;
        outcome = { kind: 'broken', resumedFrom: Math.max(resumedFrom, 0), error: error as Error };
      }
      if (resumedFrom < 0) resumedFrom = outcome.resumedFrom;
      if (outcome.kind === 'complete') {
        await rename(part, dest);
        return { path: dest, bytes: file.bytes, md5: file.md5, resumedFrom, alreadyComplete: false };
      }
      if (outcome.kind === 'bad') await unlink(part).catch(() => undefined);
      if (attempt >= retries || options.signal?.aborted) throw outcome.error;
      await sleep(200 * (attempt + 1), undefined, { signal: options.signal });
    }
  }

  /** One attempt: appends to the partial file what the server sends, then checks the whole. */
  async #fetchInto(path: string, file: FileInfo, part: string, options: DownloadOptions): Promise<Attempt> {
    let have = (await stat(part).catch(() => undefined))?.size ?? 0;
    if (have > file.bytes) {
      await unlink(part);
      have = 0;
    }
    const resumedFrom = have;
    let hash = createHash('md5');
    if (have > 0) await hashFile(part, hash, have, options.signal);
    const handle = await open(part, have > 0 ? 'r+' : 'w');
    try {
      if (have < file.bytes) {
        const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-`, 'if-range': `"${file.md5}"` } : {};
        const response = await this.#http.request(path, { headers, signal: options.signal });
        const served = response.headers.get('x-md5');
        if (served !== null && served !== file.md5) {
          await response.body?.cancel();
          throw new DatastoreError('file_changed', `${path} changed on the server since it was listed (md5 ${served}, listed ${file.md5}); list the fileset again`);
        }
        if (response.status === 200 && have > 0) {
          // The server sent the whole file (it ignored the range): start again from byte 0.
          await handle.truncate(0);
          hash = createHash('md5');
          have = 0;
        } else if (response.status === 206 && !response.headers.get('content-range')?.startsWith(`bytes ${have}-`)) {
          await response.body?.cancel();
          throw new DatastoreError('bad_response', `${path}: the server answered another range than the one asked (${response.headers.get('content-range')})`);
        }
        try {
          have += await appendBody(response, handle, have, hash, options);
        } catch (error) {
          if (options.signal?.aborted) throw error;
          return { kind: 'broken', resumedFrom, error: error as Error };
        }
      }
      if (options.fsync ?? true) await handle.datasync();
    } finally {
      await handle.close();
    }
    const md5 = hash.digest('hex');
    if (have === file.bytes && md5 === file.md5) return { kind: 'complete', resumedFrom };
    return {
      kind: 'bad', resumedFrom,
      error: new DatastoreError('download_md5_mismatch',
        `${path}: received ${have} bytes with md5 ${md5}, but the datastore registered ${file.bytes} bytes with md5 ${file.md5}`),
    };
  }
}

/** How one download attempt ended: complete and checked, cut off (resume), or wrong (start again). */
type Attempt = { kind: 'complete'; resumedFrom: number } | { kind: 'broken' | 'bad'; resumedFrom: number; error: Error };

/** Streams a response body into a file handle from `offset`, hashing it; returns the bytes written. */
async function appendBody(response: Response, handle: Awaited<ReturnType<typeof open>>, offset: number, hash: Hash, options: DownloadOptions): Promise<number> {
  if (response.body === null) return 0;
  let position = offset;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    let written = 0;
    while (written < pendingBytes) {
      const r = await handle.writev(written === 0 ? pending : [Buffer.concat(pending).subarray(written)], position + written);
      written += r.bytesWritten;
    }
    position += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    pending.push(chunk);
    pendingBytes += chunk.length;
    options.onBytes?.(chunk.length);
    if (pendingBytes >= WRITE_BATCH) await flush();
  }
  if (pendingBytes > 0) await flush();
  return position - offset;
}

async function hashFile(path: string, hash: Hash, bytes: number, signal?: AbortSignal): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(WRITE_BATCH);
    let done = 0;
    while (done < bytes) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, bytes - done), done);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/** The size and md5 of a file on disk. */
export async function fileMd5(path: string, signal?: AbortSignal): Promise<{ bytes: number; md5: string }> {
  const bytes = (await stat(path)).size;
  const hash = createHash('md5');
  await hashFile(path, hash, bytes, signal);
  return { bytes, md5: hash.digest('hex') };
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
