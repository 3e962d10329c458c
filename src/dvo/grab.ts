// `dvograbber`: every measurement of one image, by the IMAGEID of its catalogue. The IMAGEID
// is Images.dat's EXTERN_ID; its IMAGE_ID (DVO's own number) is what the measures carry
// (the seed's "IMAGEID confusion"). The regions that may hold the image's measures are those
// within its radius (plus the match radius: a measure lives with its object, which may sit
// across a region edge); each holds an index of where each image's rows are, so only those
// rows are read.
import { FitsFile, fitsTable } from '../fits/index.ts';
import { UsageError } from '../common/index.ts';
import { collectTable, columnInfo, type ColumnBatch, type ColumnInfo, type NumericArray } from '../table/index.ts';
import type { Logger } from '../common/index.ts';
import { openDvo } from './database.ts';
import { DvoError } from './errors.ts';
import { IMAGE_PENDING, readImages } from './images.ts';
import { EXTNAME } from './layouts.ts';
import { lockOptions, withLocks } from './lock.ts';
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
  /** Rows by IPP_IDET; columns as {@link GrabOptions.columns} asks (default: {@link GRAB_COLUMNS} in order). */
  readonly rows: ColumnBatch;
}

/** Options of {@link grabImage}. */
export interface GrabOptions {
  readonly log?: Pick<Logger, 'warn'>;
  readonly lockTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Names of {@link GRAB_COLUMNS} to return, in this order; only what they need is read. */
  readonly columns?: readonly string[];
}

// The Measure column each grab column comes from (OBJ_ID comes from the Average table).
const MEASURE_SOURCE: Readonly<Record<string, string>> = {
  DET_ID: 'EXT_ID', OBJ_ID: 'AVE_REF', IPP_IDET: 'EXT_ID', IMAGE_ID: 'IMAGE_ID', RA: 'RA', DEC: 'DEC', MAG: 'MAG',
  MAG_ERR: 'MAG_ERR', M_CAL: 'M_CAL', PHOTCODE: 'PHOTCODE', DVO_OBJ_ID: 'OBJ_ID', CAT_ID: 'CAT_ID',
};
// A measure may sit in the region of its object, up to a match radius across a region edge.
const MARGIN_DEG = 10 / 3600;
// Object IDs are read row by row where the measures point: a gap shorter than this is read
// through (cheaper than another read), and no read is longer than the second.
const OBJ_GAP_BYTES = 64 * 1024;
const OBJ_SPAN_BYTES = 4 * 1024 * 1024;

/** Every measure of the image whose catalogue IMAGEID is `externId`. */
export async function grabImage(dir: string, externId: number, options: GrabOptions = {}): Promise<GrabResult> {
  return (await grabImages(dir, [externId], options))[0];
}

/**
 * Every measure of several images at once (e.g. the 60 chips of an exposure): each region is
 * read once for all of them, adjacent runs of rows in one read, and of its objects only the
 * IDs of those the measures point at.
 */
export async function grabImages(dir: string, externIds: readonly number[], options: GrabOptions = {}): Promise<GrabResult[]> {
  const names = options.columns ?? GRAB_COLUMNS.map((c) => c.name);
  const infos = names.map((name) => {
    const info = GRAB_COLUMNS.find((c) => c.name === name);
    if (!info) throw new UsageError(`grab has no column ${JSON.stringify(name)}; it has ${GRAB_COLUMNS.map((c) => c.name).join(', ')}`);
    return info;
  });
  if (new Set(names).size !== names.length) throw new UsageError(`grab columns are named twice in ${names.join(', ')}`);
  const wantObj = names.includes('OBJ_ID');
  // IMAGE_ID finds each row's image, EXT_ID gives IPP_IDET (the order of the rows).
  const measureCols = [...new Set(['IMAGE_ID', 'EXT_ID', ...names.map((n) => MEASURE_SOURCE[n])])];
  const mcol = (name: string): number => measureCols.indexOf(name);
  const db = await openDvo(dir);
  const lock = lockOptions(options);
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
  const parts: { m: ColumnBatch; ext: { words: Uint32Array; rows: number } }[] = [];
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
        const ms: ColumnBatch[] = [];
        for (const [first, count] of merged) ms.push(await readMeasureRows(cpm, first, count, measureCols));
        let ext: { words: Uint32Array; rows: number } = { words: new Uint32Array(0), rows: 0 };
        if (wantObj) {
          const cpt = await FitsFile.open(regionPath(dir, r, 'cpt'));
          try {
            ext = await objectIdWords(cpt, ms.map((m) => m.columns[mcol('AVE_REF')].values as Uint32Array));
          } finally {
            await cpt.close();
          }
        }
        for (const m of ms) parts.push({ m, ext });
      } finally {
        await cpm.close();
      }
    }
  });
  // Rows per image.
  const counts = new Array<number>(wanted.length).fill(0);
  for (const { m } of parts) {
    const img = m.columns[mcol('IMAGE_ID')].values as Uint32Array;
    for (let i = 0; i < m.rowCount; i++) {
      const id = img[i];
      const w = id <= maxId ? slotOf[id] : -1;
      if (w >= 0) counts[w]++;
    }
  }
  const outs = counts.map((n) => infos.map((c) => new (c.type === 'uint64' ? BigUint64Array : c.type === 'uint32' ? Uint32Array : c.type === 'float64' ? Float64Array : c.type === 'uint16' ? Uint16Array : Float32Array)(n)));
  // IPP_IDET orders the rows, asked for or not.
  const idetAt = names.indexOf('IPP_IDET');
  const idets = counts.map((n, k) => (idetAt >= 0 ? outs[k][idetAt] as Uint32Array : new Uint32Array(n)));
  const at = new Array<number>(wanted.length).fill(0);
  // Values are copied as 16- or 32-bit words (reading a BigUint64Array element would allocate
  // a BigInt per row), one column at a time; IPP_IDET is the low word of the detection ID.
  const words = (a: NumericArray): Uint32Array => new Uint32Array(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength >> 2);
  const halves = (a: NumericArray): Uint16Array => new Uint16Array(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength >> 1);
  for (const { m, ext } of parts) {
    const n = m.rowCount;
    const img = m.columns[mcol('IMAGE_ID')].values as Uint32Array;
    const detW = words(m.columns[mcol('EXT_ID')].values as BigUint64Array);
    // Where each row goes: its image (or -1) and its place there.
    const who = new Int32Array(n);
    const dst = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const image = img[i];
      const w = image <= maxId ? slotOf[image] : -1;
      who[i] = w;
      if (w >= 0) {
        const j = at[w]++;
        dst[i] = j;
        idets[w][j] = detW[2 * i];
      }
    }
    for (let c = 0; c < names.length; c++) {
      const name = names[c];
      if (name === 'IPP_IDET') continue;
      const to = outs.map((out) => out[c]);
      if (name === 'OBJ_ID') {
        const bad = scatterObjIds(ext, m.columns[mcol('AVE_REF')].values as Uint32Array, to.map(words), who, dst);
        if (bad >= 0) {
          throw new DvoError('dvo_damaged', `a measure of image ${wanted[who[bad]].imageId} points at object row ${(m.columns[mcol('AVE_REF')].values as Uint32Array)[bad] + 1} of ${ext.rows}; run ipp dvo verify`);
        }
        continue;
      }
      const from = m.columns[mcol(MEASURE_SOURCE[name])].values as NumericArray;
      const width = from.BYTES_PER_ELEMENT;
      if (width === 2) scatter16(halves(from), to.map(halves), who, dst);
      else scatter32(words(from), to.map(words), who, dst, width >> 2);
    }
  }
  return wanted.map((w, k) => {
    const out = outs[k];
    const total = counts[k];
    // By IPP_IDET, as the catalogue's rows: IDs are unique in an image, so each row's place
    // is found by counting (no comparison sort).
    const idet = idets[k];
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

/**
 * The EXT_ID (objID) of the Average rows that `refs` point at, as two 32-bit words per row
 * (index = row; rows not pointed at are 0). A plain table is read only where the rows are, and
 * only the column's 8 bytes are decoded; a compressed one (or an unexpected layout) whole.
 */
async function objectIdWords(cpt: FitsFile, refs: readonly Uint32Array[]): Promise<{ words: Uint32Array; rows: number }> {
  const h = cpt.hdu(EXTNAME.average);
  const plain = h.kind === 'bintable' ? cpt.columnDefs(h.index) : undefined;
  const def = plain?.defs.find((d) => d.name === 'EXT_ID');
  // uint64 as FITS stores it: big-endian int64 with TZERO 2^63, i.e. the top bit flipped.
  if (!plain || !def || def.code !== 'K' || def.repeat !== 1 || def.tscal !== 1 || !(def.tzero === 2n ** 63n || def.tzero === 2 ** 63)) {
    const all = (await collectTable(fitsTable(cpt, h.index), { columns: ['EXT_ID'] })).columns[0].values as BigUint64Array;
    return { words: new Uint32Array(all.buffer, all.byteOffset, 2 * all.length), rows: all.length };
  }
  const rows = h.rows ?? 0;
  const { rowBytes } = plain;
  const mark = new Uint8Array(rows);
  for (const r of refs) for (let i = 0; i < r.length; i++) if (r[i] < rows) mark[r[i]] = 1;
  const words = new Uint32Array(2 * rows);
  const gap = Math.max(1, Math.floor(OBJ_GAP_BYTES / rowBytes));
  const span = Math.max(1, Math.floor(OBJ_SPAN_BYTES / rowBytes));
  for (let a = 0; a < rows; a++) {
    if (mark[a] === 0) continue;
    let b = a;
    for (let k = a + 1; k < rows && k - a < span && k - b <= gap; k++) if (mark[k] !== 0) b = k;
    const bytes = await cpt.read(h.dataStart + a * rowBytes + def.byteOffset, (b - a) * rowBytes + 8);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = a; k <= b; k++) {
      if (mark[k] === 0) continue;
      const o = (k - a) * rowBytes;
      words[2 * k] = dv.getUint32(o + 4);
      words[2 * k + 1] = (dv.getUint32(o) ^ 0x80000000) >>> 0;
    }
    a = b;
  }
  return { words, rows };
}

/** The objID of each row's object to its place ({@link scatter16}); the first row pointing past the objects, or -1. */
function scatterObjIds(ext: { words: Uint32Array; rows: number }, aveRef: Uint32Array, to: Uint32Array[], who: Int32Array, dst: Int32Array): number {
  const extW = ext.words;
  for (let i = 0; i < who.length; i++) {
    const w = who[i];
    if (w < 0) continue;
    const ref = aveRef[i];
    if (ref >= ext.rows) return i;
    const t = to[w];
    const j = 2 * dst[i];
    t[j] = extW[2 * ref];
    t[j + 1] = extW[2 * ref + 1];
  }
  return -1;
}

/** Row i of `from` to row dst[i] of `to[who[i]]` (rows with who -1 skipped), as 16-bit words. */
function scatter16(from: Uint16Array, to: Uint16Array[], who: Int32Array, dst: Int32Array): void {
  for (let i = 0; i < who.length; i++) if (who[i] >= 0) to[who[i]][dst[i]] = from[i];
}

/** {@link scatter16} for values of `per` 32-bit words. */
function scatter32(from: Uint32Array, to: Uint32Array[], who: Int32Array, dst: Int32Array, per: number): void {
  if (per === 1) {
    for (let i = 0; i < who.length; i++) if (who[i] >= 0) to[who[i]][dst[i]] = from[i];
    return;
  }
  for (let i = 0; i < who.length; i++) {
    const w = who[i];
    if (w < 0) continue;
    const t = to[w];
    const j = 2 * dst[i];
    t[j] = from[2 * i];
    t[j + 1] = from[2 * i + 1];
  }
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
