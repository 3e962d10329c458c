// Tables to CSV (RFC 4180 quoting), built in large byte buffers a batch at a time.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { getCompileCacheDir } from 'node:module';
import { Worker } from 'node:worker_threads';
import { replaceTarget } from '../common/index.ts';
import { elementsPerRow, isBigIntType, slotsPerElement, type ColumnInfo } from './column-info.ts';
import type { ColumnBatch, NumericArray } from './column-batch.ts';
import { columnIndexes, type Table } from './table.ts';
import { canCompile } from './compile.ts';
import { CsvError } from './errors.ts';
import {
  CSV_WORKER_KIND, CsvRowFormatter, WriteControl, cellKind,
  type CsvArrayStyle, type CsvColumnPlan, type CsvRawField, type CsvRawRows, type CsvWorkerData, type EncodeReply, type PackedBatch,
} from './csv-worker.ts';

export type { CsvArrayStyle, CsvRawCode, CsvRawField, CsvRawRows } from './csv-worker.ts';

/** Options of {@link writeCsv}. */
export interface CsvWriteOptions {
  /** Write a first line of column names (default true). */
  readonly header?: boolean;
  /** One ASCII character between fields (default ","). */
  readonly delimiter?: string;
  /** Line ending (default "\n", as STILTS writes; RFC 4180 asks for "\r\n"). */
  readonly lineEnding?: '\n' | '\r\n';
  /** Array cells: default `space`. */
  readonly arrays?: CsvArrayStyle;
  /** Columns to write, in this order (default all). */
  readonly columns?: readonly string[];
  /** Rows per batch asked of the table. */
  readonly batchRows?: number;
  /** Called after each batch with the rows written so far. */
  readonly onProgress?: (rowsWritten: number) => void;
  /**
   * Worker threads that format batches in parallel (0 = format on this thread). Default: for
   * tables of more than 100 000 rows (or of unknown size), one per core up to 4 when the
   * cores are not all busy (1-minute load average at most the core count), else 0.
   */
  readonly threads?: number;
  /**
   * Where the table's rows lie in a file as fixed-width big-endian records: formatting
   * threads then read and format them straight from the bytes (the table's batches are not
   * read). Used only with threads and when every column written has a field; otherwise the
   * table's batches are formatted as usual.
   */
  readonly rawRows?: CsvRawRows;
  readonly signal?: AbortSignal;
}

/** What {@link writeCsv} wrote. */
export interface CsvWriteResult {
  readonly rows: number;
  readonly bytes: number;
}

const BUFFER_BYTES = 1 << 22;


function makePlan(info: ColumnInfo): CsvColumnPlan {
  let nullNumber: number | undefined;
  let nullLo = 0;
  let nullHi = 0;
  if (info.nullValue !== undefined) {
    if (isBigIntType(info.type)) {
      const b = BigInt.asUintN(64, BigInt(info.nullValue));
      nullLo = Number(b & 0xffffffffn) | 0;
      nullHi = Number(b >> 32n) | 0;
    } else {
      nullNumber = Number(info.nullValue);
    }
  }
  return { info, kind: cellKind(info), nullNumber, nullLo, nullHi, elements: elementsPerRow(info), complex: slotsPerElement(info.type) === 2 };
}

/**
 * Formats rows of batches into byte buffers. One instance per output; `encode` fills a
 * buffer with whole rows and says where it stopped, so the caller can write and go on.
 */
export class CsvEncoder extends CsvRowFormatter {
  constructor(columns: readonly ColumnInfo[], options: { delimiter?: string; lineEnding?: string; arrays?: CsvArrayStyle } = {}) {
    checkDelimiter(options.delimiter ?? ',');
    super(columns.map(makePlan), options);
  }
}

function checkDelimiter(delimiter: string): void {
  if (delimiter.length !== 1 || delimiter.charCodeAt(0) > 127 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new CsvError('csv_bad_option', `delimiter ${JSON.stringify(delimiter)} must be one ASCII character other than a quote or a line break`);
  }
}

/** Where CSV bytes go: a file path (written atomically) or a writable stream. */
export type CsvTarget = string | Writable;

/**
 * Writes a table as CSV: a header line of column names, one line per row, nulls as empty
 * fields, floats as the shortest text that reads back at the column's precision, 64-bit
 * integers exactly. A path is written to a temporary file and renamed into place, so a
 * failure leaves nothing behind; a stream is written with backpressure and left open.
 */
export async function writeCsv(table: Table, target: CsvTarget, options: CsvWriteOptions = {}): Promise<CsvWriteResult> {
  const idx = columnIndexes(table.columns, options.columns);
  const columns = idx.map((i) => table.columns[i]);
  const encoder = new CsvEncoder(columns, options);
  const names = columns.map((c) => c.name);
  if (typeof target === 'string') return writeToPath(table, target, encoder, names, options);
  return writeToStream(table, target, encoder, names, options);
}

type Sink = (chunk: Uint8Array) => Promise<void>;

// `file`: the output file when there is one (formatting threads then write it themselves).
async function pump(table: Table, encoder: CsvEncoder, names: string[], options: CsvWriteOptions, sink: Sink, file?: FileHandle): Promise<CsvWriteResult> {
  let bytes = 0;
  if (options.header ?? true) {
    const h = encoder.header();
    await sink(h);
    bytes += h.length;
  }
  const threads = options.threads ?? defaultThreads(table.rowCount);
  const selected = names.map((n) => columnIndexes(table.columns, [n])[0]);
  const plans = selected.map((i) => makePlan(table.columns[i]));
  const body = threads > 0
    ? await pumpThreaded(table, plans, names, options, sink, threads, file ? { fd: file.fd, at: bytes } : undefined, rawFieldsOf(options.rawRows, selected))
    : await pumpInline(table, encoder, names, options, sink);
  return { rows: body.rows, bytes: bytes + body.bytes };
}

// The raw fields of the columns written, when threads can format them all from the file's bytes.
function rawFieldsOf(raw: CsvRawRows | undefined, selected: number[]): CsvRawField[] | undefined {
  if (raw === undefined || raw.rows === 0 || !canCompile()) return undefined;
  const fields = selected.map((i) => raw.fields[i]);
  return fields.every((f) => f !== undefined) ? fields as CsvRawField[] : undefined;
}

// Worker threads pay off for large tables on cores that are free; on a machine already busy
// (load average near the core count) they only fight each other, so format inline then.
function defaultThreads(rowCount: number | undefined): number {
  if (rowCount !== undefined && rowCount <= 100_000) return 0;
  const cores = availableParallelism();
  if (cores < 2 || loadavg()[0] > cores) return 0;
  return Math.min(4, cores);
}

// Rows per batch handed to a formatting thread when the caller sets none: small enough that
// the batches in flight (column data plus their CSV) stay a few tens of MB.
const THREAD_BATCH_ROWS = 16384;
// Rows per batch a thread reads from the file itself: the CSV of a batch (~2 MB for the bench
// table) then stays in the core's caches until it is written (16384 rows measured ~10% slower
// on the bench's 2 cores, with more spread).
const RAW_BATCH_ROWS = 8192;
// Most bytes of rows a thread reads for one batch.
const RAW_BATCH_BYTES = 1 << 20;

function batchOptionsOf(names: string[], options: CsvWriteOptions, defaultRows?: number) {
  const batchRows = options.batchRows ?? defaultRows;
  return { columns: names, ...(batchRows ? { batchRows } : {}), ...(options.signal ? { signal: options.signal } : {}) };
}

async function pumpInline(table: Table, encoder: CsvEncoder, names: string[], options: CsvWriteOptions, sink: Sink): Promise<CsvWriteResult> {
  let bytes = 0;
  let rows = 0;
  // two buffers: one is formatted while the other is being written
  let current = Buffer.allocUnsafe(BUFFER_BYTES);
  let spare = Buffer.allocUnsafe(BUFFER_BYTES);
  let pending: Promise<void> | undefined;
  let pos = 0;
  const result = new Int32Array(2);
  const flush = async () => {
    if (pos === 0) return;
    const chunk = current.subarray(0, pos);
    if (pending) await pending;
    pending = sink(chunk);
    // a write that fails while the next batch is read is reported when awaited, not as an
    // unhandled rejection
    pending.catch(() => {});
    bytes += pos;
    [current, spare] = [spare, current];
    pos = 0;
  };
  try {
    for await (const batch of table.batches(batchOptionsOf(names, options))) {
      options.signal?.throwIfAborted();
      encoder.setBatch(batch);
      let row = 0;
      while (row < batch.rowCount) {
        encoder.encode(row, current, pos, result);
        const done = result[0] - row;
        row = result[0];
        pos = result[1];
        rows += done;
        if (row < batch.rowCount) {
          if (done === 0 && pos === 0) {
            // one row larger than the buffer: give it a buffer of its own size
            const need = encoder.rowBytes(row);
            current = Buffer.allocUnsafe(Math.max(need, BUFFER_BYTES));
            spare = Buffer.allocUnsafe(current.length);
            continue;
          }
          await flush();
        }
      }
      options.onProgress?.(rows);
    }
    await flush();
    if (pending) await pending;
    return { rows, bytes };
  } finally {
    // after a failure, let the write in flight settle before the caller closes the file
    await pending?.catch(() => {});
  }
}

// Bytes of one shared output slot: the CSV of a THREAD_BATCH_ROWS batch of a few hundred bytes a row.
const SLOT_BYTES = 1 << 23;
// Bytes of one shared input slot at first (grown for batches of wider rows).
const INPUT_SLOT_BYTES = 1 << 21;

interface Encoded { readonly used: number; readonly chunks: Uint8Array[] }

// Copies a batch's typed arrays into a shared slot (grown when too small), so that posting it
// to a worker neither copies it again nor leaves a buffer per column behind as garbage.
function packBatch(batch: ColumnBatch, inputs: SharedArrayBuffer[], index: number): PackedBatch {
  let need = 0;
  const size = (a: ArrayBufferView | undefined) => { if (a !== undefined) need += (a.byteLength + 7) & ~7; };
  for (const d of batch.columns) {
    if (!Array.isArray(d.values)) size(d.values as NumericArray);
    size(d.valid);
    size(d.offsets);
  }
  if (inputs[index].byteLength < need) inputs[index] = new SharedArrayBuffer(Math.max(need, 2 * inputs[index].byteLength));
  const sab = inputs[index];
  const bytes = new Uint8Array(sab);
  let at = 0;
  const put = (a: NumericArray | undefined) => {
    if (a === undefined) return undefined;
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    const packed = { kind: a.constructor.name, at, length: a.length };
    at += (a.byteLength + 7) & ~7;
    return packed;
  };
  const columns = batch.columns.map((d) => {
    const values = Array.isArray(d.values) ? d.values : put(d.values as NumericArray)!;
    const valid = put(d.valid);
    const offsets = put(d.offsets);
    return { values, ...(valid ? { valid } : {}), ...(offsets ? { offsets } : {}) };
  });
  return { rowCount: batch.rowCount, columns };
}

// The error a thread reported: a system error keeps its code (so a full disk reads as
// one), anything else is a formatting failure.
function threadError(m: EncodeReply): Error {
  if (m.code !== undefined && /^E[A-Z]+$/.test(m.code)) return Object.assign(new Error(m.error), { code: m.code });
  return new CsvError('csv_encode_failed', m.error ?? 'a CSV formatting thread failed');
}

// A formatting thread starts from this script (plain JavaScript, so nothing is type-stripped
// before the compile cache is on): it turns on Node's compile cache, the directory the
// process uses if it has one (as the ipp command does), then loads csv-worker.ts. A thread
// that finds the formatter in the cache starts on ~0.05 s of CPU instead of ~0.15 s.
const WORKER_BOOT = `const { workerData } = require('node:worker_threads');
require('node:module').enableCompileCache(workerData.cacheDir);
import(workerData.url);`;

// Threads format batches in turn. Writing to a file, the threads also write the batches
// themselves, at offsets given in batch order through a shared control block (see
// WriteControl), so this thread only reads and hands out batches; to a stream, the bytes
// come back here to be written.
async function pumpThreaded(
  table: Table, plans: CsvColumnPlan[], names: string[], options: CsvWriteOptions, sink: Sink, threads: number,
  file: { fd: number; at: number } | undefined, rawFields?: CsvRawField[],
): Promise<CsvWriteResult> {
  const raw = options.rawRows;
  let input: FileHandle | undefined;
  if (rawFields !== undefined && raw !== undefined) {
    try {
      input = await open(raw.path, 'r');
    } catch (cause) {
      throw new CsvError('csv_cannot_read', `${raw.path}: cannot open the table's file: ${(cause as Error).message}`, { cause });
    }
  }
  try {
    return await pumpThreadedFrom(table, plans, names, options, sink, threads, file, input && raw && rawFields ? { rows: raw, fields: rawFields, fd: input.fd } : undefined);
  } finally {
    await input?.close();
  }
}

// The batches to format: the table's own, or (raw rows) ranges of rows the threads read.
async function* jobsOf(table: Table, names: string[], options: CsvWriteOptions, raw: CsvWorkerData['raw']): AsyncGenerator<{ count: number; batch?: ColumnBatch; first?: number }> {
  if (raw === undefined) {
    for await (const batch of table.batches(batchOptionsOf(names, options, THREAD_BATCH_ROWS))) yield { count: batch.rowCount, batch };
    return;
  }
  // (wide rows: fewer of them, so that a thread's input and output buffers stay a few MB)
  const step = Math.max(1, Math.min(options.batchRows ?? RAW_BATCH_ROWS, Math.floor(RAW_BATCH_BYTES / raw.rows.rowBytes)));
  for (let first = 0; first < raw.rows.rows; first += step) yield { count: Math.min(step, raw.rows.rows - first), first };
}

async function pumpThreadedFrom(
  table: Table, plans: CsvColumnPlan[], names: string[], options: CsvWriteOptions, sink: Sink, threads: number,
  file: { fd: number; at: number } | undefined, raw: CsvWorkerData['raw'],
): Promise<CsvWriteResult> {
  const waiting = new Map<number, { resolve: (c: Encoded) => void; reject: (e: Error) => void }>();
  // one input and one output slot per batch that may be in flight (see the bound below)
  // Batches kept in flight besides the one being posted: two a thread, so that a thread
  // that finishes a batch before the one before it is done has its next batch queued.
  const ahead = 2 * threads - 1;
  // (a slot's memory is resident only as far as it is used: ~4 MB for a batch of the bench table)
  const slots = Array.from({ length: ahead + 2 }, () => new SharedArrayBuffer(SLOT_BYTES));
  const inputs = Array.from({ length: ahead + 2 }, () => new SharedArrayBuffer(raw ? 0 : INPUT_SLOT_BYTES));
  const control = file ? WriteControl.create(slots.length, file.at) : undefined;
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    // threads stop placing and writing batches
    control?.stop();
    for (const w of waiting.values()) w.reject(failure);
    waiting.clear();
  };
  const data: CsvWorkerData = {
    kind: CSV_WORKER_KIND, plans, options: { delimiter: options.delimiter, lineEnding: options.lineEnding, arrays: options.arrays },
    ...(file && control ? { fd: file.fd, control: control.buffer, slots } : {}),
    ...(raw ? { raw } : {}),
  };
  // Batches given to each thread and not yet finished: the next goes to the least busy, so
  // that a thread done with its batches is not left idle while another is behind.
  const inFlight = new Int32Array(threads);
  const ownerOf = new Map<number, number>();
  const pickThread = (id: number) => {
    let best = id % threads;
    for (let k = 0; k < threads; k++) if (inFlight[k] < inFlight[best]) best = k;
    inFlight[best]++;
    ownerOf.set(id, best);
    return workers[best];
  };
  const workers: Worker[] = Array.from({ length: threads }, () => {
    const w = new Worker(WORKER_BOOT, {
      eval: true,
      workerData: { ...data, url: new URL('./csv-worker.ts', import.meta.url).href, cacheDir: getCompileCacheDir() },
      // a formatting thread keeps little on its heap; a small young generation keeps its
      // resident memory small too
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    w.on('message', (m: EncodeReply) => {
      const owner = ownerOf.get(m.id);
      if (owner !== undefined) {
        inFlight[owner]--;
        ownerOf.delete(m.id);
      }
      const entry = waiting.get(m.id);
      if (!entry) return;
      waiting.delete(m.id);
      if (m.error !== undefined) entry.reject(threadError(m));
      else entry.resolve({ used: m.used!, chunks: m.chunks ?? [] });
    });
    w.on('error', (e) => fail(e));
    // a thread that ends while batches wait for it fails them (a thread stopped while still
    // starting ends with code 0)
    w.on('exit', (code) => { if (waiting.size > 0) fail(new CsvError('csv_worker_exit', `a CSV formatting thread stopped (code ${code}) with batches unfinished`)); });
    return w;
  });
  let rows = 0;
  let written = 0;
  let bytes = 0;
  let nextId = 0;
  // Batches are finished in order by a chain of their own, so that reading the next batches
  // goes on while earlier ones are written; `done` holds each queued batch's end.
  let writing: Promise<void> = Promise.resolve();
  const done: Promise<void>[] = [];
  const drainOne = () => done.shift()!;
  try {
    for await (const job of jobsOf(table, names, options, raw)) {
      options.signal?.throwIfAborted();
      if (failure) throw failure;
      const id = nextId++;
      const count = job.count;
      const slotIndex = id % slots.length;
      const slot = slots[slotIndex];
      const encoded = new Promise<Encoded>((resolve, reject) => waiting.set(id, { resolve, reject }));
      // errors surface through the writing chain; these handlers only mark them as seen
      encoded.catch(() => {});
      writing = writing.then(async () => {
        const { used, chunks } = await encoded;
        if (file) {
          bytes += used;
        } else {
          await sink(new Uint8Array(slot, 0, used));
          bytes += used;
          for (const c of chunks) {
            await sink(c);
            bytes += c.length;
          }
        }
        written += count;
        options.onProgress?.(written);
      });
      writing.catch((e: Error) => fail(e));
      done.push(writing);
      if (job.batch) {
        const packed = packBatch(job.batch, inputs, slotIndex);
        pickThread(id).postMessage({ id, batch: packed, input: inputs[slotIndex], slot });
      } else {
        pickThread(id).postMessage({ id, first: job.first, count, slot });
      }
      rows += count;
      // at most `ahead` batches queued or being written when the next is posted, so its
      // slots (last used by batch id - ahead - 2) are free; memory stays bounded
      while (done.length > ahead) await drainOne();
    }
    await writing;
    if (failure) throw failure;
    return { rows, bytes };
  } finally {
    // (a thread is stopped between two writes, never during one: none writes after this)
    await Promise.all(workers.map((w) => w.terminate()));
    // after a failure, fail what still waits, and let writes in flight settle before the
    // caller closes the file
    if (waiting.size > 0) fail(failure ?? new CsvError('csv_stopped', 'CSV formatting stopped'));
    await writing.catch(() => {});
  }
}

async function writeToPath(table: Table, path: string, encoder: CsvEncoder, names: string[], options: CsvWriteOptions): Promise<CsvWriteResult> {
  // A link is written through to its file; a directory or device is refused, not replaced.
  const target = await replaceTarget(path);
  if ('problem' in target) throw new CsvError('csv_cannot_write', `${path}: ${target.problem}`);
  const temp = join(dirname(target.path), `.${basename(target.path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
  } catch (cause) {
    throw new CsvError('csv_cannot_write', `${path}: cannot create ${temp}: ${(cause as Error).message}; check that the directory exists and is writable`, { cause });
  }
  try {
    const h = handle;
    const result = await pump(table, encoder, names, options, async (chunk) => {
      let off = 0;
      while (off < chunk.length) off += (await h.write(chunk, off, chunk.length - off)).bytesWritten;
    }, h);
    await handle.close();
    handle = undefined;
    await rename(temp, target.path);
    return result;
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true });
    if (error instanceof Error && 'code' in error && typeof error.code === 'string' && /^E[A-Z]+$/.test(error.code)) {
      throw new CsvError('csv_cannot_write', `${path}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

async function writeToStream(table: Table, stream: Writable, encoder: CsvEncoder, names: string[], options: CsvWriteOptions): Promise<CsvWriteResult> {
  let failure: Error | undefined;
  const onError = (e: Error) => { failure = e; };
  stream.on('error', onError);
  try {
    return await pump(table, encoder, names, options, (chunk) => new Promise<void>((resolve, reject) => {
      if (failure) { reject(failure); return; }
      // the stream keeps the chunk until its callback: copy, since the buffer is reused
      stream.write(Buffer.from(chunk), (err) => (err ? reject(err) : resolve()));
    }));
  } finally {
    stream.off('error', onError);
  }
}
