// Read-only access to regions for the look-ups (grab, exports, verify, stats): soft locks,
// interrupted updates finished first, and row ranges of a Measure table read without the
// rows before them (plain tables) or with only the wanted columns decompressed.
import { access, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decodeRows, FitsFile, fitsTable } from '../fits/index.ts';
import { collectTable, columnIndexes, rowRange, type ColumnBatch } from '../table/index.ts';
import { DvoError } from './errors.ts';
import { EXTNAME } from './layouts.ts';
import { withLocks, type LockOptions } from './lock.ts';
import { recoverRegion, regionPath } from './region-files.ts';
import type { SkyRegion } from './sky-table.ts';

/** Runs `fn` with soft locks on these regions, after finishing interrupted updates. */
export async function withRegionsRead<T>(db: string, regions: readonly SkyRegion[], options: LockOptions, fn: () => Promise<T>): Promise<T> {
  return withLocks(db, regions.map((r) => r.name), 'soft', options, async () => {
    for (const r of regions) {
      const how = await recoverRegion(db, r);
      if (how === 'rolled-forward') options.log?.warn(`region ${r.name}: finished an update that a stopped process had committed`);
    }
    return fn();
  });
}

/** True when the region has files. */
export async function regionExists(db: string, region: SkyRegion): Promise<boolean> {
  return access(regionPath(db, region, 'cpt')).then(() => true, () => false);
}

/** Rows `[first, first + count)` of a file's Measure table, only the columns named. */
export async function readMeasureRows(cpm: FitsFile, first: number, count: number, columns: readonly string[]): Promise<ColumnBatch> {
  const h = cpm.hdu(EXTNAME.measure);
  const rows = h.rows ?? 0;
  if (first < 0 || first + count > rows) {
    throw new DvoError('dvo_damaged', `${cpm.name}: the image index points at rows ${first + 1}..${first + count} of a table of ${rows}; run ipp dvo verify`);
  }
  if (h.kind === 'compressed-table') {
    const table = fitsTable(cpm, h.index);
    return collectTable(rowRange(table, first, first + count), { columns });
  }
  const { defs, rowBytes } = cpm.columnDefs(h.index);
  const selected = columnIndexes(defs.map((d) => d.info), columns);
  const bytes = await cpm.read(h.dataStart + first * rowBytes, count * rowBytes);
  return decodeRows(defs, bytes, count, rowBytes, selected, undefined, { file: cpm.name, hdu: h.index, extname: EXTNAME.measure }, first);
}

/** The names of the regions (of those given) that have files: one directory listing per band. */
export async function regionsWithData(db: string, regions: readonly SkyRegion[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const band of new Set(regions.map((r) => dirname(r.name)))) {
    for (const name of await readdir(join(db, band)).catch(() => [] as string[])) {
      if (name.endsWith('.cpt')) out.add(`${band}/${name.slice(0, -4)}`);
    }
  }
  return out;
}
