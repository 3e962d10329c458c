// The DXLayer's conversion (the original's step): every binary table of a batch FITS file
// becomes one CSV file named after the table (EXTNAME), the values written as they are
// (defaults such as -999 stay numbers; the batch carries no nulls).
import { join } from 'node:path';
import { FitsFile, fitsTable } from '../fits/index.ts';
import { writeCsv, type ColumnBatch, type ColumnInfo, type Table } from '../table/index.ts';
import { PspsError } from './errors.ts';

/** What the primary header of a batch file says. */
export interface BatchHeader {
  readonly batch?: string;
  readonly type?: string;
}

/** One converted table. */
export interface BatchCsvFile {
  readonly name: string;
  readonly path: string;
  readonly rows: number;
}

/** Converts each binary table of a batch FITS file into `<dir>/<EXTNAME>.csv`. */
export async function batchToCsv(fitsPath: string, dir: string, signal?: AbortSignal): Promise<{ header: BatchHeader; tables: BatchCsvFile[] }> {
  const file = await FitsFile.open(fitsPath);
  try {
    const primary = file.hdus[0].header;
    const text = (k: string) => {
      const v = primary.get(k);
      return typeof v === 'string' ? v.trim() : undefined;
    };
    const header: BatchHeader = { ...(text('BATCH') ? { batch: text('BATCH') } : {}), ...(text('BATCHTYP') ? { type: text('BATCHTYP') } : {}) };
    const tables: BatchCsvFile[] = [];
    for (const h of file.hdus) {
      if (h.kind !== 'bintable' && h.kind !== 'compressed-table') continue;
      const name = h.extname?.trim();
      if (!name || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
        throw new PspsError('psps_bad_batch', `${fitsPath}: HDU ${h.index} has no usable EXTNAME (${name ?? 'none'}); each table of a batch is named after its archive table`);
      }
      const path = join(dir, `${name}.csv`);
      const result = await writeCsv(asStored(fitsTable(file, h.index)), path, signal ? { signal } : {});
      tables.push({ name, path, rows: result.rows });
    }
    return { header, tables };
  } finally {
    await file.close();
  }
}

// The table with its values as stored: no null markers, so a TNULL-like default is written
// as the number it is and the ODM applies the schema's rules to it.
function asStored(table: Table): Table {
  const columns: ColumnInfo[] = table.columns.map((c) => {
    const { nullValue: _drop, ...rest } = c;
    return rest;
  });
  return {
    ...(table.name !== undefined ? { name: table.name } : {}),
    columns,
    ...(table.rowCount !== undefined ? { rowCount: table.rowCount } : {}),
    async *batches(options) {
      for await (const b of table.batches(options)) {
        yield { rowCount: b.rowCount, columns: b.columns.map((d) => ({ values: d.values, ...(d.offsets ? { offsets: d.offsets } : {}) })) } satisfies ColumnBatch;
      }
    },
  };
}
