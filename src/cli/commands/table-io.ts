// The registry of table formats the CLI reads and writes (STIL's idea): FITS and VOTable are
// recognised by their first bytes, CSV by name; writers are chosen by name or extension.
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { UsageError } from '../../common/index.ts';
import {
  FitsFile, fitsTable, writeCompressedFits, type CompressionChoice, type HduInfo, type Header,
} from '../../fits/index.ts';
import { readCsv, writeCsv, type Table } from '../../table/index.ts';
import { readVOTable, writeVOTable } from '../../votable/index.ts';
import type { FileRef } from '../file-ref.ts';
import { resolveHdu } from './fits-shared.ts';

/** The table formats `ipp fits convert` and `dump` know. */
export type TableFormat = 'fits' | 'csv' | 'votable';
export const TABLE_FORMATS: readonly TableFormat[] = ['fits', 'csv', 'votable'];

/** A format from a `--in-format`/`--out-format` value, with a clear error for others. */
export function formatOption(value: string | undefined, flag: string): TableFormat | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase() === 'vot' ? 'votable' : value.toLowerCase();
  if (!(TABLE_FORMATS as readonly string[]).includes(v)) throw new UsageError(`${flag} "${value}" is not one of ${TABLE_FORMATS.join(', ')}`);
  return v as TableFormat;
}

/** The format to write, from the output name's extension. */
export function formatFromName(path: string): TableFormat | undefined {
  const ext = extname(path.replace(/\.(gz|fz)$/i, (m) => (m.toLowerCase() === '.fz' ? '.fits' : m))).toLowerCase();
  if (['.fits', '.fit', '.fts', '.fz'].includes(ext)) return 'fits';
  if (ext === '.csv') return 'csv';
  if (['.vot', '.votable', '.xml'].includes(ext)) return 'votable';
  return undefined;
}

/** The format of an existing file, from its first bytes (then its name, for CSV). */
export async function sniffFormat(path: string): Promise<TableFormat> {
  let head: string;
  try {
    const handle = await open(path, 'r');
    try {
      const buf = Buffer.alloc(512);
      const { bytesRead } = await handle.read(buf, 0, 512, 0);
      head = buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await handle.close();
    }
  } catch (cause) {
    throw new UsageError(`cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (head.startsWith('SIMPLE  =')) return 'fits';
  const trimmed = head.replace(/^\uFEFF/, '').trimStart();
  if (/^<\?xml/.test(trimmed) || /^<(!--[\s\S]*?-->\s*)*<?VOTABLE/i.test(trimmed) || /<VOTABLE/i.test(trimmed)) return 'votable';
  const byName = formatFromName(path);
  if (byName === 'csv' || byName === undefined) return 'csv';
  throw new UsageError(`${path} does not look like ${byName} (its first bytes do not match); give --in-format if it is`);
}

/** Tables opened for reading, and how to release them. */
export interface OpenedTables {
  readonly format: TableFormat;
  readonly tables: Table[];
  /** Extra header of each FITS table HDU (kept through FITS→FITS conversion). */
  readonly hdus?: HduInfo[];
  readonly file?: FitsFile;
  close(): Promise<void>;
}

/** Opens the tables of a file: the named HDU (or, with `all`, every table HDU) of a FITS file; the tables of a VOTable; a CSV file. */
export async function openTables(ref: FileRef, options: { format?: TableFormat; all?: boolean } = {}): Promise<OpenedTables> {
  const format = options.format ?? (await sniffFormat(ref.path));
  if (format === 'fits') {
    const file = await FitsFile.open(ref.path);
    try {
      const hdus = options.all && ref.hdu === undefined
        ? file.hdus.filter((h) => h.kind === 'bintable' || h.kind === 'compressed-table')
        : [resolveHdu(file, ref, 'table')];
      if (hdus.length === 0) throw new UsageError(`${ref.path} has no binary table HDU`);
      const tables = hdus.map((h) => fitsTable(file, h.index));
      return { format, tables, hdus, file, close: () => file.close() };
    } catch (error) {
      await file.close();
      throw error;
    }
  }
  if (format === 'votable') {
    const all = await readVOTable(ref.path);
    let tables = all;
    if (ref.hdu !== undefined) {
      const pick = typeof ref.hdu === 'number' ? all[ref.hdu] : all.find((t) => t.name === ref.hdu);
      if (!pick) throw new UsageError(`${ref.path} has no table ${ref.hdu}; it has ${all.length} (${all.map((t, i) => t.name ?? i).join(', ')})`);
      tables = [pick];
    } else if (!options.all) {
      if (all.length === 0) throw new UsageError(`${ref.path} holds no TABLE`);
      tables = [all[0]];
    }
    return { format, tables, close: async () => {} };
  }
  if (ref.hdu !== undefined) throw new UsageError(`${ref.path}: a CSV file has one table; drop the [${ref.hdu}]`);
  return { format, tables: [await readCsv(ref.path)], close: async () => {} };
}

/** Options of {@link writeTables}. */
export interface WriteTablesOptions {
  /** FITS only: tile-compress every table with this choice. */
  readonly compress?: CompressionChoice;
  readonly primaryHeader?: Header;
  readonly signal?: AbortSignal;
  readonly onProgress?: (rows: number) => void;
}

/** Writes tables in a format; every writer is atomic (nothing left behind on error). */
export async function writeTables(path: string, format: TableFormat, tables: readonly Table[], options: WriteTablesOptions = {}): Promise<void> {
  const common = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  if (format === 'fits') {
    const hdus = tables.map((table) => ({
      table,
      ...(options.compress ? { compress: { algorithm: options.compress } } : { compress: false as const }),
    }));
    await writeCompressedFits(path, hdus, { ...common, ...(options.primaryHeader ? { primaryHeader: options.primaryHeader } : {}) });
    return;
  }
  if (options.compress) throw new UsageError(`--compress applies to FITS output only, not ${format}`);
  if (format === 'votable') {
    await writeVOTable(path, tables, common);
    return;
  }
  if (tables.length !== 1) throw new UsageError(`CSV holds one table; the input has ${tables.length}: pick one with IN[EXT]`);
  await writeCsv(tables[0], path, common);
}
