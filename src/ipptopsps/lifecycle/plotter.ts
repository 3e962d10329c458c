// plotter: sky density maps of the queue items still pending, one per batch type, saved as
// `<config>_<batchType>_<timestamp>.png` (the guide's naming). Items are read and binned a
// page at a time, so the queue's size does not matter.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { binSky, plotPng, renderDensityMap, type SkyGrid } from '../../common/index.ts';
import type { Queryable } from '../../db/index.ts';
import type { LoadingConfig } from '../configs.ts';
import { IppToPspsError } from '../errors.ts';

/** Options of {@link writeDensityPlots}. */
export interface DensityPlotOptions {
  /** Where the PNG files go (created if needed). */
  readonly dir: string;
  /** Batch types to plot (default: the config's). */
  readonly batchTypes?: readonly string[];
  /** Cell size in degrees (default: the config's box size, halved or doubled to give 20–400 cells across). */
  readonly cellSize?: number;
  readonly now?: Date;
  readonly width?: number;
  readonly height?: number;
  /** Items read per query (default 20,000). */
  readonly pageSize?: number;
}

/** One map written. */
export interface DensityPlot {
  readonly batchType: string;
  readonly path: string;
  /** Pending items of this type inside the config's sky area. */
  readonly pending: number;
  readonly grid: SkyGrid;
}

/** `20261121T034500Z`: a time for file names (no colons). */
export function fileTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

/** The default cell size for a config: its box size, halved or doubled until 20–400 cells span the longer side. */
export function defaultCellSize(config: Pick<LoadingConfig, 'min_ra' | 'max_ra' | 'min_dec' | 'max_dec' | 'box_size'>): number {
  const span = Math.max(config.max_ra - config.min_ra, config.max_dec - config.min_dec);
  let cell = config.box_size > 0 ? config.box_size : span / 60;
  while (span / cell < 20 && cell > 1e-4) cell /= 2;
  while (span / cell > 400) cell *= 2;
  return cell;
}

/** Bins the pending items of one type of a config onto its sky grid. */
export async function pendingDensity(
  q: Queryable, config: LoadingConfig, batchType: string, cellSize: number, pageSize = 20_000,
): Promise<SkyGrid> {
  const spec = { raMin: config.min_ra, raMax: config.max_ra, decMin: config.min_dec, decMax: config.max_dec, cellSize };
  let total: SkyGrid | undefined;
  let after = 0;
  for (;;) {
    const rows = await q.all<{ item_id: number; ra: number; dec: number }>(
      `SELECT item_id, ra, dec FROM queue_item WHERE config = ? AND batch_type = ? AND state = 'pending'
       AND ra IS NOT NULL AND dec IS NOT NULL AND item_id > ? ORDER BY item_id LIMIT ?`,
      [config.name, batchType, after, pageSize],
    );
    const ra = Float64Array.from(rows, (r) => Number(r.ra));
    const dec = Float64Array.from(rows, (r) => Number(r.dec));
    const grid = binSky(ra, dec, spec);
    if (total === undefined) total = grid;
    else for (let i = 0; i < grid.counts.length; i++) total.counts[i] += grid.counts[i];
    if (rows.length < pageSize) break;
    after = Number(rows.at(-1)!.item_id);
  }
  return total!;
}

/** Writes one density map of pending items per batch type; returns what it wrote. */
export async function writeDensityPlots(q: Queryable, config: LoadingConfig, options: DensityPlotOptions): Promise<DensityPlot[]> {
  if (!(config.max_ra > config.min_ra && config.max_dec > config.min_dec)) {
    throw new IppToPspsError('config_bad_area', `config ${config.name} covers no sky (RA ${config.min_ra}..${config.max_ra}, Dec ${config.min_dec}..${config.max_dec}); fix min/max_ra/dec`);
  }
  const cellSize = options.cellSize ?? defaultCellSize(config);
  if (!(cellSize > 0)) throw new IppToPspsError('bad_cell_size', `cell size ${cellSize} must be a positive number of degrees`);
  const now = options.now ?? new Date();
  const stamp = fileTimestamp(now);
  await mkdir(options.dir, { recursive: true });
  const out: DensityPlot[] = [];
  for (const batchType of options.batchTypes ?? config.batch_types) {
    const grid = await pendingDensity(q, config, batchType, cellSize, options.pageSize);
    let pending = 0;
    for (const c of grid.counts) pending += c;
    const title = `${config.name} ${batchType}: pending items`;
    const canvas = renderDensityMap({
      title, grid, unit: 'pending items per cell', width: options.width, height: options.height,
      subtitle: `${pending} pending at ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${Number(cellSize.toPrecision(3))}° cells`,
    });
    const path = join(options.dir, `${config.name}_${batchType}_${stamp}.png`);
    await writeFile(`${path}.tmp`, plotPng(canvas, title));
    await rename(`${path}.tmp`, path);
    out.push({ batchType, path, pending, grid });
  }
  return out;
}
