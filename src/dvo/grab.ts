// `dvograbber`: every measurement of one image, by the IMAGEID of its catalogue. The IMAGEID
// is Images.dat's EXTERN_ID; its IMAGE_ID (DVO's own number) is what the measures carry
// (the seed's "IMAGEID confusion"). The regions that may hold the image's measures are those
// within its radius (plus the match radius: a measure lives with its object, which may sit
// across a region edge); each holds an index of where each image's rows are, so only those
// rows are read.
import { FitsFile, fitsTable } from '../fits/index.ts';
import { collectTable, columnInfo, type ColumnBatch, type ColumnInfo } from '../table/index.ts';
import type { Logger } from '../common/index.ts';
import { openDvo } from './database.ts';
import { DvoError } from './errors.ts';
import { IMAGE_PENDING, readImages } from './images.ts';
import { EXTNAME } from './layouts.ts';
import { withLocks } from './lock.ts';
import { readImageIndex } from './region.ts';
import { regionPath } from './region-files.ts';
import { readMeasureRows, regionExists, withRegionsRead } from './region-reader.ts';

/** The columns of a grab, in order. */
export const GRAB_COLUMNS: readonly ColumnInfo[] = Object.freeze([
  columnInfo('DET_ID', 'uint64', { description: 'detection ID (measure EXT_ID: EXTERN_ID << 32 | IPP_IDET)' }),
  columnInfo('OBJ_ID', 'uint64', { description: 'PS1 objID of the object (average EXT_ID)' }),
  columnInfo('IPP_IDET', 'uint32', { description: 'row number of the detection in its chip table' }),
  columnInfo('IMAGE_ID', 'uint32', { description: 'DVO internal image number' }),
  columnInfo('RA', 'float64', { unit: 'deg' }),
  columnInfo('DEC', 'float64', { unit: 'deg' }),
  columnInfo('MAG', 'float32', { unit: 'mag', description: 'instrumental PSF magnitude' }),
  columnInfo('MAG_ERR', 'float32', { unit: 'mag' }),
  columnInfo('M_CAL', 'float32', { unit: 'mag', description: 'calibration: MAG + M_CAL is the calibrated magnitude' }),
  columnInfo('PHOTCODE', 'uint16'),
  columnInfo('DVO_OBJ_ID', 'uint32', { description: 'OBJ_ID of the object in its region' }),
  columnInfo('CAT_ID', 'uint32', { description: 'region (SkyTable index) of the object' }),
]);

/** Result of {@link grabImage}. */
export interface GrabResult {
  readonly externId: number;
  readonly imageId: number;
  readonly name: string;
  /** The image's ingest did not finish (its measures may be incomplete). */
  readonly pending: boolean;
  readonly regionsRead: number;
  /** Rows in {@link GRAB_COLUMNS} order, by IPP_IDET. */
  readonly rows: ColumnBatch;
}

/** Options of {@link grabImage}. */
export interface GrabOptions {
  readonly log?: Pick<Logger, 'warn'>;
  readonly lockTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

const MEASURE_WANTED = ['EXT_ID', 'AVE_REF', 'IMAGE_ID', 'RA', 'DEC', 'MAG', 'MAG_ERR', 'M_CAL', 'PHOTCODE', 'OBJ_ID', 'CAT_ID'];
// A measure may sit in the region of its object, up to a match radius across a region edge.
const MARGIN_DEG = 10 / 3600;

/** Every measure of the image whose catalogue IMAGEID is `externId`. */
export async function grabImage(dir: string, externId: number, options: GrabOptions = {}): Promise<GrabResult> {
  const db = await openDvo(dir);
  const lock = { ...(options.log ? { log: options.log } : {}), ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  const images = await withLocks(dir, ['Images'], 'soft', lock, () => readImages(dir));
  const row = images.rowOfExtern(externId);
  if (row === undefined) {
    throw new DvoError('dvo_no_such_image', `IMAGEID ${externId} is not in ${dir}/Images.dat; grab takes the IMAGEID of the smf/cmf header (Images EXTERN_ID), not DVO's internal IMAGE_ID`);
  }
  const s = images.store;
  const imageId = s.u32('IMAGE_ID')[row];
  const pending = (s.u32('FLAGS')[row] & IMAGE_PENDING) !== 0;
  const regions = db.sky.regionsNear(s.f32('RA_CENTER')[row], s.f32('DEC_CENTER')[row], s.f32('RADIUS')[row] + MARGIN_DEG);
  const parts: { m: ColumnBatch; ext: BigUint64Array }[] = [];
  let regionsRead = 0;
  await withRegionsRead(dir, regions, lock, async () => {
    for (const r of regions) {
      options.signal?.throwIfAborted();
      if (!await regionExists(dir, r)) continue;
      const cpm = await FitsFile.open(regionPath(dir, r, 'cpm'));
      try {
        const index = await readImageIndex(cpm);
        const [ids, firsts, counts] = index.columns.map((c) => c.values as Uint32Array | Int32Array);
        const runs: [number, number][] = [];
        for (let k = 0; k < index.rowCount; k++) if (ids[k] === imageId) runs.push([firsts[k], counts[k]]);
        if (runs.length === 0) continue;
        regionsRead++;
        const cpt = await FitsFile.open(regionPath(dir, r, 'cpt'));
        try {
          const objExt = (await collectTable(fitsTable(cpt, EXTNAME.average), { columns: ['EXT_ID'] })).columns[0].values as BigUint64Array;
          for (const [first, count] of runs) parts.push({ m: await readMeasureRows(cpm, first, count, MEASURE_WANTED), ext: objExt });
        } finally {
          await cpt.close();
        }
      } finally {
        await cpm.close();
      }
    }
  });
  const total = parts.reduce((n, p) => n + p.m.rowCount, 0);
  const out = GRAB_COLUMNS.map((c) => new (c.type === 'uint64' ? BigUint64Array : c.type === 'uint32' ? Uint32Array : c.type === 'float64' ? Float64Array : c.type === 'uint16' ? Uint16Array : Float32Array)(total));
  let at = 0;
  for (const { m, ext } of parts) {
    const [detExt, aveRef, img, ra, dec, mag, magErr, cal, pc, objId, catId] = m.columns.map((c) => c.values);
    for (let i = 0; i < m.rowCount; i++, at++) {
      const ref = (aveRef as Uint32Array)[i];
      if (ref >= ext.length) throw new DvoError('dvo_damaged', `a measure of image ${imageId} points at object row ${ref + 1} of ${ext.length}; run ipp dvo verify`);
      const id = (detExt as BigUint64Array)[i];
      (out[0] as BigUint64Array)[at] = id;
      (out[1] as BigUint64Array)[at] = ext[ref];
      (out[2] as Uint32Array)[at] = Number(id & 0xffffffffn);
      (out[3] as Uint32Array)[at] = (img as Uint32Array)[i];
      (out[4] as Float64Array)[at] = (ra as Float64Array)[i];
      (out[5] as Float64Array)[at] = (dec as Float64Array)[i];
      (out[6] as Float32Array)[at] = (mag as Float32Array)[i];
      (out[7] as Float32Array)[at] = (magErr as Float32Array)[i];
      (out[8] as Float32Array)[at] = (cal as Float32Array)[i];
      (out[9] as Uint16Array)[at] = (pc as Uint16Array)[i];
      (out[10] as Uint32Array)[at] = (objId as Uint32Array)[i];
      (out[11] as Uint32Array)[at] = (catId as Uint32Array)[i];
    }
  }
  // By IPP_IDET, as the catalogue's rows.
  const order = Uint32Array.from({ length: total }, (_, i) => i).sort((a, b) => (out[2] as Uint32Array)[a] - (out[2] as Uint32Array)[b]);
  const columns = out.map((a) => {
    const b = new (a.constructor as new (n: number) => typeof a)(total);
    for (let i = 0; i < total; i++) (b as Uint32Array)[i] = (a as Uint32Array)[order[i]];
    return { values: b };
  });
  return { externId, imageId, name: s.str('NAME')[row].trim(), pending, regionsRead, rows: { rowCount: total, columns } };
}
