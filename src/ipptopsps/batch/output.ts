// Writing a batch: the FITS file (primary keywords, one BINTABLE per schema table, in file
// order) and its manifest, both atomically (temporary names, fsync, rename). On any error
// nothing is left behind: neither temporary files nor a FITS file without its manifest.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Header } from '../../fits/index.ts';
import { IppToPspsError } from '../errors.ts';
import { tableRows, type ArchiveTable } from './archive-table.ts';
import { writeBatchFits } from './batch-fits.ts';
import type { BatchContext, BatchType, BuiltBatch, TableRows } from './types.ts';

/** The manifest's `source` object. */
export interface BatchSource {
  readonly kind: 'camRun' | 'stackRun' | 'dvoRegion' | 'init';
  readonly id: number;
  readonly paths: readonly string[];
}

/** What a builder hands the writer. */
export interface BatchOutput {
  readonly type: BatchType;
  readonly srcId: number;
  readonly source: BatchSource;
  readonly schemaFile: string;
  readonly schemaMd5: string;
  readonly tables: readonly ArchiveTable[];
  /** Name of the main table (its rows are `mainRows`); undefined: all tables (IN). */
  readonly mainTable?: string;
  readonly warnings: readonly string[];
  readonly timings: Record<string, number>;
}

const BATCH_NAME = /^B\d{8}$/;

/** Checks a batch name: `B` + 8 digits. */
export function checkBatchName(name: string): void {
  if (!BATCH_NAME.test(name)) {
    throw new IppToPspsError('batch_bad_name', `batch name "${name}" is not B followed by 8 digits (e.g. B00000042)`);
  }
}

async function writeFileSynced(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes the batch FITS file and manifest; returns what was built. */
export async function writeBatch(ctx: BatchContext, out: BatchOutput): Promise<BuiltBatch> {
  checkBatchName(ctx.name);
  await mkdir(ctx.outDir, { recursive: true });
  const fitsPath = join(ctx.outDir, `${ctx.name}.fits`);
  const manifestPath = join(ctx.outDir, `${ctx.name}.manifest.json`);
  const manifestTmp = `${manifestPath}.tmp`;
  const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const primary = new Header()
    .set('BATCH', ctx.name, 'batch name')
    .set('BATCHTYP', out.type, 'batch type (IN, P2, ST, OB)')
    .set('CONFIG', ctx.config, 'ippToPsps loading config')
    .set('SRCID', out.srcId, out.type === 'P2' ? 'cam_id' : out.type === 'ST' ? 'stack_id' : out.type === 'OB' ? 'DVO region index' : 'none')
    .set('SCHEMA', `${out.schemaFile} ${out.schemaMd5}`, 'schema file and its md5')
    .set('DATE', created.slice(0, 19), 'file creation date (UTC)');
  const t0 = performance.now();
  let fitsWritten = false;
  try {
    const { bytes: size, md5 } = await writeBatchFits(fitsPath, primary, out.tables, ctx.signal);
    fitsWritten = true;
    const tables: TableRows[] = out.tables.map((t) => ({ name: t.schema.name, rows: tableRows(t) }));
    const mainRows = out.mainTable === undefined
      ? tables.reduce((n, t) => n + t.rows, 0)
      : tables.find((t) => t.name === out.mainTable)?.rows ?? 0;
    const manifest = {
      format: 'ipptopsps-batch',
      version: 1,
      batch: ctx.name,
      type: out.type,
      config: ctx.config,
      product: ctx.product,
      created,
      source: { kind: out.source.kind, id: out.source.id, paths: out.source.paths },
      schema: { file: out.schemaFile, md5: out.schemaMd5 },
      tables,
      files: [{ name: basename(fitsPath), bytes: size, md5 }],
      ...(out.warnings.length > 0 ? { warnings: out.warnings } : {}),
    };
    ctx.signal?.throwIfAborted();
    await rm(manifestTmp, { force: true });
    await writeFileSynced(manifestTmp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(manifestTmp, manifestPath);
    out.timings.write = performance.now() - t0;
    return {
      name: ctx.name, type: out.type, fitsPath, manifestPath, tables, mainRows, bytes: size, md5,
      warnings: out.warnings, timings: out.timings,
    };
  } catch (error) {
    await rm(manifestTmp, { force: true }).catch(() => {});
    if (fitsWritten) await rm(fitsPath, { force: true }).catch(() => {});
    if (error instanceof IppToPspsError) throw error;
    if (ctx.signal?.aborted) throw error;
    throw new IppToPspsError('batch_write_failed', `${fitsPath}: cannot write the ${out.type} batch: ${(error as Error).message}`, { cause: error });
  }
}
