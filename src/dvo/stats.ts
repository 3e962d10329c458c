// `ipp dvo stats` and `ipp dvo regions`: what a database holds, from the files' headers only.
import { stat } from 'node:fs/promises';
import { FitsFile } from '../fits/index.ts';
import { openDvo } from './database.ts';
import { readImages } from './images.ts';
import { regionPath } from './region-files.ts';
import { regionsWithData } from './region-reader.ts';
import type { SkyRegion } from './sky-table.ts';

/** One region as listed. */
export interface RegionSummary {
  readonly index: number;
  readonly name: string;
  readonly raMin: number;
  readonly raMax: number;
  readonly decMin: number;
  readonly decMax: number;
  readonly objects: number;
  readonly measures: number;
  /** Bytes of its three files (0 when it has none yet). */
  readonly bytes: number;
}

/** What {@link dvoStats} reports. */
export interface DvoStats {
  readonly dir: string;
  readonly regions: number;
  readonly regionsWithData: number;
  readonly objects: number;
  readonly measures: number;
  readonly images: number;
  readonly pendingImages: number;
  readonly bytes: number;
  readonly compressed: boolean;
  readonly maxObjects: number;
  readonly filters: readonly string[];
  readonly largest?: RegionSummary;
}

async function summarise(db: string, r: SkyRegion, hasFiles: boolean): Promise<RegionSummary> {
  const base = { index: r.index, name: r.name, raMin: r.rmin, raMax: r.rmax, decMin: r.dmin, decMax: r.dmax };
  if (!hasFiles) return { ...base, objects: 0, measures: 0, bytes: 0 };
  let bytes = 0;
  const headerInt = async (ext: 'cpt' | 'cpm', key: string): Promise<number> => {
    const f = await FitsFile.open(regionPath(db, r, ext));
    try {
      const v = f.hdus[0].header.get(key);
      return typeof v === 'number' ? v : 0;
    } finally {
      await f.close();
    }
  };
  for (const ext of ['cpt', 'cps', 'cpm'] as const) bytes += (await stat(regionPath(db, r, ext)).catch(() => ({ size: 0 }))).size;
  return { ...base, objects: await headerInt('cpt', 'NOBJ'), measures: await headerInt('cpm', 'NMEAS'), bytes };
}

/** The regions overlapping a box (all when no box), with their sizes. */
export async function listRegions(dir: string, box?: { raMin: number; raMax: number; decMin: number; decMax: number }): Promise<RegionSummary[]> {
  const db = await openDvo(dir);
  const regions = box ? db.sky.regionsInBox(box.raMin, box.raMax, box.decMin, box.decMax) : db.sky.regions;
  const have = await regionsWithData(dir, regions);
  const out: RegionSummary[] = [];
  for (const r of regions) out.push(await summarise(dir, r, have.has(r.name)));
  return out;
}

/** Totals of a database. */
export async function dvoStats(dir: string): Promise<DvoStats> {
  const db = await openDvo(dir);
  const have = await regionsWithData(dir, db.sky.regions);
  let objects = 0;
  let measures = 0;
  let bytes = 0;
  let largest: RegionSummary | undefined;
  for (const r of db.sky.regions) {
    if (!have.has(r.name)) continue;
    const s = await summarise(dir, r, true);
    objects += s.objects;
    measures += s.measures;
    bytes += s.bytes;
    if (!largest || s.measures > largest.measures) largest = s;
  }
  const images = await readImages(dir);
  return {
    dir, regions: db.sky.regions.length, regionsWithData: have.size, objects, measures, images: images.length, pendingImages: images.pending().length,
    bytes, compressed: db.compress, maxObjects: db.sky.maxObjects, filters: db.photcodes.secCodes.map((c) => c.name),
    ...(largest ? { largest } : {}),
  };
}
