// `dvograbber`: every measurement of one image, by the IMAGEID of its catalogue. The IMAGEID
// is Images.dat's EXTERN_ID; its IMAGE_ID (DVO's own number) is what the measures carry
// (the seed's "IMAGEID confusion"). The regions that may hold the image's measures are those
// within its radius (plus the match radius: a measure lives with its object, which may sit
// across a region edge); each holds an index of where each image's rows are, so only those
// rows are read.
import { FitsFile, fitsTable } from '../fits/index.ts';
import { collectTable, columnInfo, type ColumnBatch, type ColumnInfo, type NumericArray } from '../table/index.ts';
import type { Logger } from '../common/index.ts';
import { openDvo } from './database.ts';
import { DvoError } from './errors.ts';
import { IMAGE_PENDING, readImages } from './images.ts';
import { EXTNAME } from './layouts.ts';
import { withLocks } from './lock.ts';
import { readImageIndex } from './region.ts';
import { regionPath } from './region-files.ts';
import { readMeasureRows, regionsWithData, withRegionsRead } from './region-reader.ts';
import type { SkyRegion } from './sky-table.ts';

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
  return (await grabImages(dir, [externId], options))[0];
}

/**
 * Every measure of several images at once (e.g. the 60 chips of an exposure): each region is
 * read once for all of them, its objects' IDs once, and adjacent runs of rows in one read.
 */
export async function grabImages(dir: string, externIds: readonly number[], options: GrabOptions = {}): Promise<GrabResult[]> {
  const db = await openDvo(dir);
  const lock = { ...(options.log ? { log: options.log } : {}), ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  const images = await withLocks(dir, ['Images'], 'soft', lock, () => readImages(dir));
  const s = images.store;
  const wanted = externIds.map((externId) => {
    const row = images.rowOfExtern(externId);
    if (row === undefined) {
      throw new DvoError('dvo_no_such_image', `IMAGEID ${externId} is not in ${dir}/Images.dat; grab takes the IMAGEID of the smf/cmf header (Images EXTERN_ID), not DVO's internal IMAGE_ID`);
    }
    return { externId, row, imageId: s.u32('IMAGE_ID')[row] };
  });
  // IMAGE_IDs are small sequence numbers: a typed array finds each row's image without a Map.
  const maxId = wanted.reduce((m, w) => Math.max(m, w.imageId), 0);
  const slotOf = new Int32Array(maxId + 1).fill(-1);
  wanted.forEach((w, k) => { slotOf[w.imageId] = k; });
  const slot = (id: number): number => (id <= maxId ? slotOf[id] : -1);
  const regionSet = new Map<number, SkyRegion>();
  for (const w of wanted) {
    for (const r of db.sky.regionsNear(s.f32('RA_CENTER')[w.row], s.f32('DEC_CENTER')[w.row], s.f32('RADIUS')[w.row] + MARGIN_DEG)) regionSet.set(r.index, r);
  }
  const regions = [...regionSet.values()].sort((a, b) => a.index - b.index);
  const have = await regionsWithData(dir, regions);
  const parts: { m: ColumnBatch; ext: BigUint64Array }[] = [];
  const regionsRead = new Array<number>(wanted.length).fill(0);
  await withRegionsRead(dir, regions.filter((r) => have.has(r.name)), lock, async () => {
    for (const r of regions) {
      options.signal?.throwIfAborted();
      if (!have.has(r.name)) continue;
      const cpm = await FitsFile.open(regionPath(dir, r, 'cpm'));
      try {
        const index = await readImageIndex(cpm);
        const [ids, firsts, counts] = index.columns.map((c) => c.values as Uint32Array | Int32Array);
        const runs: [number, number][] = [];
        const seen = new Set<number>();
        for (let k = 0; k < index.rowCount; k++) {
          const w = slot(ids[k]);
          if (w < 0 || counts[k] === 0) continue;
          runs.push([firsts[k], counts[k]]);
          if (!seen.has(w)) { seen.add(w); regionsRead[w]++; }
        }
        if (runs.length === 0) continue;
        // Adjacent runs (the chips of one exposure usually are) in one read.
        runs.sort((a, b) => a[0] - b[0]);
        const merged: [number, number][] = [];
        for (const [f, c] of runs) {
          const last = merged.at(-1);
          if (last && last[0] + last[1] === f) last[1] += c;
          else merged.push([f, c]);
        }
        const cpt = await FitsFile.open(regionPath(dir, r, 'cpt'));
        try {
          const objExt = (await collectTable(fitsTable(cpt, EXTNAME.average), { columns: ['EXT_ID'] })).columns[0].values as BigUint64Array;
          for (const [first, count] of merged) parts.push({ m: await readMeasureRows(cpm, first, count, MEASURE_WANTED), ext: objExt });
        } finally {
          await cpt.close();
        }
      } finally {
        await cpm.close();
      }
    }
  });
  // Rows per image.
  const counts = new Array<number>(wanted.length).fill(0);
  for (const { m } of parts) {
    const img = m.columns[2].values as Uint32Array;
    for (let i = 0; i < m.rowCount; i++) {
      const id = img[i];
      const w = id <= maxId ? slotOf[id] : -1;
      if (w >= 0) counts[w]++;
    }
  }
  const outs = counts.map((n) => GRAB_COLUMNS.map((c) => new (c.type === 'uint64' ? BigUint64Array : c.type === 'uint32' ? Uint32Array : c.type === 'float64' ? Float64Array : c.type === 'uint16' ? Uint16Array : Float32Array)(n)));
  const at = new Array<number>(wanted.length).fill(0);
  // 64-bit IDs are copied as their two 32-bit words (reading a BigUint64Array element
  // would allocate a BigInt per row); IPP_IDET is the low word of the detection ID.
  const words = (a: BigUint64Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, 2 * a.length);
  const idWords = outs.map((out) => words(out[0] as BigUint64Array));
  const objWords = outs.map((out) => words(out[1] as BigUint64Array));
  for (const { m, ext } of parts) {
    const [detExt, aveRef, img, ra, dec, mag, magErr, cal, pc, objId, catId] = m.columns.map((c) => c.values);
    const detW = words(detExt as BigUint64Array);
    const extW = words(ext);
    for (let i = 0; i < m.rowCount; i++) {
      const image = (img as Uint32Array)[i];
      const w = image <= maxId ? slotOf[image] : -1;
      if (w < 0) continue;
      const out = outs[w];
      const idW = idWords[w];
      const objW = objWords[w];
      const j = at[w]++;
      const ref = (aveRef as Uint32Array)[i];
      if (ref >= ext.length) throw new DvoError('dvo_damaged', `a measure of image ${wanted[w].imageId} points at object row ${ref + 1} of ${ext.length}; run ipp dvo verify`);
      idW[2 * j] = detW[2 * i];
      idW[2 * j + 1] = detW[2 * i + 1];
      objW[2 * j] = extW[2 * ref];
      objW[2 * j + 1] = extW[2 * ref + 1];
      (out[2] as Uint32Array)[j] = detW[2 * i];
      (out[3] as Uint32Array)[j] = (img as Uint32Array)[i];
      (out[4] as Float64Array)[j] = (ra as Float64Array)[i];
      (out[5] as Float64Array)[j] = (dec as Float64Array)[i];
      (out[6] as Float32Array)[j] = (mag as Float32Array)[i];
      (out[7] as Float32Array)[j] = (magErr as Float32Array)[i];
      (out[8] as Float32Array)[j] = (cal as Float32Array)[i];
      (out[9] as Uint16Array)[j] = (pc as Uint16Array)[i];
      (out[10] as Uint32Array)[j] = (objId as Uint32Array)[i];
      (out[11] as Uint32Array)[j] = (catId as Uint32Array)[i];
    }
  }
  return wanted.map((w, k) => {
    const out = outs[k];
    const total = counts[k];
    // By IPP_IDET, as the catalogue's rows: IDs are unique in an image, so each row's place
    // is found by counting (no comparison sort).
    const idet = out[2] as Uint32Array;
    let max = 0;
    let sorted = true;
    for (let i = 0; i < total; i++) {
      if (idet[i] > max) max = idet[i];
      if (i > 0 && idet[i] < idet[i - 1]) sorted = false;
    }
    let columns: { values: NumericArray }[];
    if (sorted) columns = out.map((values) => ({ values }));
    else {
      const place = new Int32Array(max + 2);
      for (let i = 0; i < total; i++) place[idet[i] + 1]++;
      for (let v = 0; v <= max; v++) place[v + 1] += place[v];
      const order = new Int32Array(total);
      for (let i = 0; i < total; i++) order[place[idet[i]]++] = i;
      columns = out.map((a) => ({ values: permute(a, order) }));
    }
    return {
      externId: w.externId, imageId: w.imageId, name: s.str('NAME')[w.row].trim(),
      pending: (s.u32('FLAGS')[w.row] & IMAGE_PENDING) !== 0, regionsRead: regionsRead[k], rows: { rowCount: total, columns },
    };
  });
}

/** `a` reordered: element i of the result is a[order[i]] (copied as words of its width). */
function permute(a: NumericArray, order: Int32Array): NumericArray {
  const out = new (a.constructor as new (n: number) => NumericArray)(order.length);
  const words = a.BYTES_PER_ELEMENT === 8 ? 2 : 1;
  if (a.BYTES_PER_ELEMENT === 2) {
    const from = new Uint16Array(a.buffer as ArrayBuffer, a.byteOffset, a.length);
    const to = new Uint16Array(out.buffer as ArrayBuffer);
    for (let i = 0; i < order.length; i++) to[i] = from[order[i]];
    return out;
  }
  const from = new Uint32Array(a.buffer as ArrayBuffer, a.byteOffset, a.length * words);
  const to = new Uint32Array(out.buffer as ArrayBuffer);
  if (words === 1) for (let i = 0; i < order.length; i++) to[i] = from[order[i]];
  else {
    for (let i = 0; i < order.length; i++) {
      to[2 * i] = from[2 * order[i]];
      to[2 * i + 1] = from[2 * order[i] + 1];
    }
  }
  return out;
}
