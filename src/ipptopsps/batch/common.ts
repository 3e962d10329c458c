// What every builder does the same way: the schema of its batch type (read once per file
// version), opening the source catalogue, reading a table's needed columns, matching
// detections to their DVO IDs, and the steps after conversion (validate, write).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PSPS_SCHEMA_DIR } from '../../common/index.ts';
import { DvoError, photcodesPath, readPhotcodes, type PhotcodeTable } from '../../dvo/index.ts';
import { FitsFile, FitsError, decodeRows, type FitsColumnDef, type HduInfo, type Header } from '../../fits/index.ts';
import { collectTable, columnIndexes, type ColumnBatch, type NumericArray } from '../../table/index.ts';
import { readTableSchemas, schemaFileMd5, type TableSchema } from '../../votable/index.ts';
import { IppError } from '../../common/index.ts';
import { IppToPspsError } from '../errors.ts';
import { checkReferences, missingRequired, validateTable, type ArchiveTable, type TablePart } from './archive-table.ts';
import { checkBatchName, writeBatch, type BatchOutput } from './output.ts';
import type { BatchContext, BatchType, BuiltBatch, DetectionIds } from './types.ts';

/** A batch type's schema file, read. */
export interface LoadedSchema {
  readonly file: string;
  readonly path: string;
  readonly md5: string;
  readonly tables: readonly TableSchema[];
}

const schemaCache = new Map<string, { stamp: string; schema: LoadedSchema }>();

/** The schema file of a batch type (cached while the file's size and time stay the same). */
export async function loadSchema(ctx: BatchContext, type: BatchType): Promise<LoadedSchema> {
  // Every build starts here: a bad name or a cancelled build fails before any work.
  checkBatchName(ctx.name);
  ctx.signal?.throwIfAborted();
  const file = `${type}.xml`;
  const path = join(ctx.schemaDir ?? PSPS_SCHEMA_DIR, file);
  let stamp: string;
  try {
    const s = await stat(path);
    stamp = `${s.size}:${s.mtimeMs}`;
  } catch (cause) {
    throw new IppToPspsError('batch_no_schema', `${path}: cannot read the ${type} schema file: ${(cause as Error).message}`, { cause });
  }
  const hit = schemaCache.get(path);
  if (hit && hit.stamp === stamp) return hit.schema;
  try {
    const [tables, md5] = await Promise.all([readTableSchemas(path), schemaFileMd5(path)]);
    const schema = { file, path, md5, tables };
    schemaCache.set(path, { stamp, schema });
    return schema;
  } catch (cause) {
    throw new IppToPspsError('batch_bad_schema', `the ${type} schema is not usable: ${(cause as Error).message}`, { cause });
  }
}

const photcodeCache = new Map<string, { stamp: string; table: PhotcodeTable }>();

/** The DVO database's photcodes (read again only when Photcodes.dat changes). */
export async function dvoPhotcodes(dvoDir: string): Promise<PhotcodeTable> {
  const path = photcodesPath(dvoDir);
  try {
    const s = await stat(path);
    const stamp = `${s.size}:${s.mtimeMs}`;
    const hit = photcodeCache.get(path);
    if (hit && hit.stamp === stamp) return hit.table;
    const table = await readPhotcodes(path);
    photcodeCache.set(path, { stamp, table });
    return table;
  } catch (error) {
    throw sourceError(dvoDir, error);
  }
}

/** A table of the schema by name, or undefined (the builder then has nothing to put there). */
export function schemaTable(schema: LoadedSchema, name: string): TableSchema | undefined {
  return schema.tables.find((t) => t.name === name);
}

/** Turns errors of the rooms below into IppToPspsErrors naming the source file. */
export function sourceError(file: string, error: unknown): IppToPspsError {
  if (error instanceof IppToPspsError) return error;
  if (error instanceof FitsError) {
    const message = error.message.startsWith(file) ? error.message : `${file}: ${error.message}`;
    return new IppToPspsError(`batch_bad_source`, `${message} (the catalogue cannot be read: ${error.code})`, { cause: error });
  }
  if (error instanceof DvoError) return new IppToPspsError('batch_dvo_failed', `${file}: DVO look-up failed: ${error.message}`, { cause: error });
  if (error instanceof IppError) return new IppToPspsError('batch_bad_source', `${file}: ${error.message}`, { cause: error });
  return new IppToPspsError('batch_bad_source', `${file}: ${(error as Error).message ?? String(error)}`, { cause: error });
}

/** Opens a catalogue; failures name the file. */
export async function openCatalogue(path: string): Promise<FitsFile> {
  try {
    return await FitsFile.open(path);
  } catch (error) {
    throw sourceError(path, error);
  }
}

/** Columns read from a catalogue table: only those wanted that exist, by name. */
export type SourceColumns = Record<string, ArrayLike<number> | undefined>;

/**
 * Column definitions already parsed, by the text of the column cards: the 60 chip tables of
 * an smf describe the same columns, and parsing ~60 columns' keywords out of a ~600-card
 * header costs more than reading the chip's rows.
 */
export type ColumnDefsCache = Map<string, { defs: FitsColumnDef[]; rowBytes: number }>;

// The cards that column definitions are made of (TFORMn, TTYPEn, TSCALn, ... and the row size).
const COLUMN_CARD = /^(T[A-Z]+\d+|TFIELDS|NAXIS1|PCOUNT|THEAP)$/;
// Tables read in one piece through a cache hit; larger ones go through the table reader's chunks.
const ONE_READ_BYTES = 32 << 20;

function columnCardsKey(header: Header): string {
  let key = '';
  for (const c of header.cards) if (COLUMN_CARD.test(c.keyword)) key += `${c.keyword}\u0000${typeof c.value}:${String(c.value)}\u0001`;
  return key;
}

/**
 * Reads the wanted columns of a table HDU (those it lacks are absent from the result, which
 * the conversions treat as missing values); `required` ones must exist. With a `cache`, a
 * plain table whose column cards were seen before is decoded with the definitions parsed then.
 */
export async function readSourceColumns(
  file: FitsFile, hdu: HduInfo, wanted: readonly string[], required: readonly string[], cache?: ColumnDefsCache,
): Promise<{ rows: number; columns: SourceColumns }> {
  const where = `${file.name}: ${hdu.extname ?? `HDU ${hdu.index}`} (HDU ${hdu.index})`;
  try {
    let batch: ColumnBatch;
    const known = cache && hdu.kind === 'bintable' ? cachedDefs(file, hdu, cache) : undefined;
    const rows = hdu.rows ?? 0;
    const plain = known && !known.defs.some((d) => d.code === 'P' || d.code === 'Q') && rows * known.rowBytes <= ONE_READ_BYTES;
    const infos = known ? known.defs.map((d) => d.info) : file.table(hdu.index).columns;
    const have = new Set(infos.map((c) => c.name));
    for (const r of required) {
      if (!have.has(r)) throw new IppToPspsError('batch_bad_source', `${where}: the detection table has no column ${r}; the batch needs it`);
    }
    const names = wanted.filter((w) => have.has(w));
    if (plain && known) {
      const bytes = await file.read(hdu.dataStart, rows * known.rowBytes);
      const at = { file: file.name, hdu: hdu.index, ...(hdu.extname !== undefined ? { extname: hdu.extname } : {}) };
      batch = await decodeRows(known.defs, bytes, rows, known.rowBytes, columnIndexes(infos, names), undefined, at, 0);
    } else {
      batch = await collectTable(file.table(hdu.index), { columns: names });
    }
    const columns: SourceColumns = {};
    names.forEach((n, i) => {
      const v = batch.columns[i].values as NumericArray;
      // 64-bit source columns are rare here; conversions work on numbers.
      columns[n] = v instanceof BigInt64Array || v instanceof BigUint64Array ? Float64Array.from(v, Number) : v as ArrayLike<number>;
    });
    return { rows: batch.rowCount, columns };
  } catch (error) {
    if (error instanceof IppToPspsError) throw error;
    throw sourceError(file.name, error);
  }
}

function cachedDefs(file: FitsFile, hdu: HduInfo, cache: ColumnDefsCache): { defs: FitsColumnDef[]; rowBytes: number } {
  const key = columnCardsKey(hdu.header);
  let hit = cache.get(key);
  if (!hit) {
    hit = file.columnDefs(hdu.index);
    cache.set(key, hit);
  }
  return hit;
}

/** A Uint32Array widened to int64 without a BigInt per element. */
export function u32ToBig(a: ArrayLike<number>, n: number): BigInt64Array {
  const out = new BigInt64Array(n);
  const w = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) w[2 * i] = a[i] >>> 0;
  return out;
}

/**
 * For each detection (by IPP_IDET) its row in the DVO look-up, −1 when DVO does not know it.
 * The look-up is sorted by IPP_IDET (both grab and the scratch query sort it); a dense
 * 0..n−1 run is indexed directly.
 */
export function matchDetections(idet: ArrayLike<number>, n: number, ids: DetectionIds): Int32Array {
  const at = new Int32Array(n);
  const known = ids.ippIdet;
  const m = known.length;
  let dense = true;
  for (let k = 0; k < m && dense; k++) if (known[k] !== k) dense = false;
  if (dense) {
    for (let i = 0; i < n; i++) {
      const v = idet[i] >>> 0;
      at[i] = v < m ? v : -1;
    }
    return at;
  }
  let sorted = true;
  for (let k = 1; k < m && sorted; k++) if (known[k] < known[k - 1]) sorted = false;
  let order: Int32Array | undefined;
  let keys: Uint32Array = known;
  if (!sorted) {
    order = Int32Array.from({ length: m }, (_, k) => k).sort((a, b) => known[a] - known[b]);
    keys = Uint32Array.from(order, (k) => known[k]);
  }
  for (let i = 0; i < n; i++) {
    const v = idet[i] >>> 0;
    let lo = 0;
    let hi = m - 1;
    let hit = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const x = keys[mid];
      if (x === v) { hit = mid; break; }
      if (x < v) lo = mid + 1; else hi = mid - 1;
    }
    at[i] = hit < 0 ? -1 : order ? order[hit] : hit;
  }
  return at;
}

/**
 * In test mode, rows whose required values are missing are dropped with a warning (the
 * guide's "ignore certain missing values"); otherwise validation fails on them.
 */
export function dropMissingInTest(ctx: BatchContext, t: ArchiveTable, warnings: string[]): void {
  if (!ctx.test) return;
  let dropped = 0;
  t.parts.forEach((p: TablePart, i) => {
    const { mask, count } = missingRequired(p);
    if (count === 0) return;
    dropped += count;
    t.parts[i] = p.filter(mask.map((x) => 1 - x));
  });
  if (dropped > 0) warnings.push(`test mode: ${dropped} ${t.schema.name} row${dropped === 1 ? '' : 's'} with missing required values dropped`);
}

/** Validates every table and the references inside the batch, then writes it. */
export async function finishBatch(ctx: BatchContext, out: BatchOutput): Promise<BuiltBatch> {
  const t0 = performance.now();
  const notes = { warnings: out.warnings as string[] };
  for (const t of out.tables) validateTable(t, notes);
  checkReferences(out.tables);
  out.timings.validate = performance.now() - t0;
  ctx.signal?.throwIfAborted();
  const built = await writeBatch(ctx, out);
  for (const w of built.warnings) ctx.log?.warn(`${ctx.name}: ${w}`);
  return built;
}

/** Empty parts for the schema tables a builder does not fill (written with no rows). */
export function emptyTable(schema: TableSchema): ArchiveTable {
  return { schema, parts: [] };
}
