// A sky region loaded for an update: its Average and SecFilt tables in memory (growable
// columns), and only the header and image index of its Measure table, whose rows stay on
// disk and are streamed into the new file with the new measures appended (grouped by image,
// so that each image's measures in a region are one run of rows, found through the index).
import { access } from 'node:fs/promises';
import { FitsFile, fitsTable, Header, writeCompressedFits, type CompressedHduInput, type HduInfo } from '../fits/index.ts';
import {
  collectTable, elementsPerRow, memoryTable, type ColumnBatch, type ColumnInfo, type ReadOptions, type Table,
} from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { DvoError } from './errors.ts';
import { AVERAGE_COLUMNS, EXTNAME, IMAGE_INDEX_COLUMNS, MEASURE_COLUMNS, SECFILT_COLUMNS, SECFILT_SET_COLUMNS } from './layouts.ts';
import { commitRegion, regionHasData, regionPath, REGION_EXTENSIONS, type CommitHooks } from './region-files.ts';
import type { SkyRegion } from './sky-table.ts';
import { RowStore } from './row-store.ts';
import { layoutRowBytes, writableLayout, writeTableFile, type RowSource } from './table-file.ts';

/** Header keywords of region files. */
const KEY = { generation: 'DVOGEN', nextObj: 'NEXTOBJ', nextDet: 'NEXTDET', catId: 'CATID', nsec: 'NSECFILT' } as const;

/** Values of a new object's Average row: missing floats are NaN, missing offsets -1. */
export const AVERAGE_DEFAULTS: Readonly<Record<string, number>> = Object.freeze({
  ...Object.fromEntries(AVERAGE_COLUMNS.filter((c) => c.type === 'float32' || c.type === 'float64').map((c) => [c.name, NaN])),
  OFF_MEASURE: -1, OFF_MISSING: -1, OFF_LENSING: -1, OFF_LENSOBJ: -1, OFF_STARPAR: -1, OFF_GALPHOT: -1, PROJECTION_ID: -1,
});

/** Values of a new object's SecFilt rows. */
export const SECFILT_DEFAULTS: Readonly<Record<string, number>> = Object.freeze({
  ...Object.fromEntries(SECFILT_COLUMNS.filter((c) => c.type === 'float32').map((c) => [c.name, NaN])),
  STACK_PRIMARY_OFF: -1, STACK_BEST_OFF: -1,
});

// The defaults of the columns an ingest sets.
const SECFILT_SET_DEFAULTS = Object.freeze(Object.fromEntries(Object.entries(SECFILT_DEFAULTS).filter(([k]) => SECFILT_SET_COLUMNS.some((c) => c.name === k))));

/** Measures waiting to be appended to a region: rows of some detection store. */
interface Pending {
  store: ColumnStore;
  rows: Int32Array;
  n: number;
}

/** A region held for an update (see the file comment). */
export class RegionData {
  readonly db: string;
  readonly region: SkyRegion;
  readonly nsec: number;
  /** The Average rows, as records (row-store.ts): a measure updates ~12 values of its object's row. */
  readonly averages: RowStore;
  /**
   * SecFilt rows that hold something: row 0 holds the defaults and is never changed, and
   * {@link secRow} maps each object's filter to its row here (0 until a measure of that
   * filter arrives). Most objects are seen in one or two of the six filters, so the other
   * rows (~0.75 GB of 1 GB for 700,000 objects) are never made in memory: the file gets
   * row 0 in their place. Rows are records (row-store.ts): a measure updates ~20 values of
   * one row, and the rows are in the order they were made, not in the file's order.
   * Rows loaded from the file are here; rows made in memory are in {@link secNew}.
   */
  readonly secfilt: RowStore;
  /**
   * SecFilt rows made in memory (from row 1 on), holding only the columns an ingest sets
   * (SECFILT_SET_COLUMNS: 80 of 176 bytes; the rest of such a row is the defaults, as in
   * row 0 of {@link secfilt}): less memory to fault in and fill, and more rows per cache.
   */
  readonly secNew: RowStore;
  /**
   * Row of object `o`'s filter `f`, at `o * nsec + f` (capacity may exceed the objects): a
   * row of {@link secfilt} when above 0 (0: its defaults row), of {@link secNew} when below
   * (row −value).
   */
  secRow: Int32Array;
  /** The image index of the Measure table on disk. */
  readonly index: ColumnStore;
  /** IMAGE_IDs that already have measures in this region. */
  readonly images: Set<number>;
  generation: number;
  nextObj: number;
  nextDet: number;
  /** Measure rows on disk. */
  measureRows: number;
  /** Objects as loaded (those past it are new). */
  readonly loadedObjects: number;
  private readonly pending: Pending[] = [];
  // Measures arrive in runs from one store: its queue without a search.
  private lastPending: Pending | undefined;
  private changed = false;

  constructor(db: string, region: SkyRegion, nsec: number, fields: {
    averages: RowStore; secfilt: RowStore; secRow: Int32Array; index: ColumnStore; generation: number; nextObj: number; nextDet: number; measureRows: number;
  }) {
    this.db = db;
    this.region = region;
    this.nsec = nsec;
    this.averages = fields.averages;
    this.secfilt = fields.secfilt;
    this.secRow = fields.secRow;
    this.secNew = new RowStore(SECFILT_SET_COLUMNS, 16, SECFILT_SET_DEFAULTS);
    this.secNew.grow(1);
    this.index = fields.index;
    this.generation = fields.generation;
    this.nextObj = fields.nextObj;
    this.nextDet = fields.nextDet;
    this.measureRows = fields.measureRows;
    this.loadedObjects = fields.averages.length;
    const ids = fields.index.u32('IMAGE_ID');
    this.images = new Set(Array.from(ids.subarray(0, fields.index.length)));
  }

  /** Objects in the region now. */
  get objects(): number {
    return this.averages.length;
  }

  /** True once something was added. */
  get dirty(): boolean {
    return this.changed;
  }

  /** Adds an object (rows in Average and SecFilt, missing values as NaN); returns its row. */
  newObject(): number {
    // The stores' spare rows already hold the defaults.
    const row = this.averages.grow(1);
    const need = (row + 1) * this.nsec;
    if (need > this.secRow.length) {
      // New entries are 0: the defaults row.
      const bigger = new Int32Array(Math.max(need, 2 * this.secRow.length));
      bigger.set(this.secRow);
      this.secRow = bigger;
    }
    this.changed = true;
    return row;
  }

  /** Reserves room for `objects` objects in {@link secRow}. */
  reserveObjects(objects: number): void {
    if (objects * this.nsec <= this.secRow.length) return;
    const bigger = new Int32Array(objects * this.nsec);
    bigger.set(this.secRow);
    this.secRow = bigger;
  }

  /** The SecFilt row of object `row`'s filter `f` as in {@link secRow}, made in {@link secNew} (holding the defaults) if it has none yet. */
  secfiltRow(row: number, f: number): number {
    const at = row * this.nsec + f;
    let q = this.secRow[at];
    if (q === 0) {
      q = -this.secNew.grow(1);
      this.secRow[at] = q;
    }
    return q;
  }

  /** For each object's filters in order, its row as in {@link secRow} (the SecFilt table as written). */
  secfiltRows(): Int32Array {
    return this.secRow.subarray(0, this.objects * this.nsec);
  }

  /** Queues row `row` of `store` (Measure columns, IDs filled in) to be appended. */
  addMeasure(store: ColumnStore, row: number): void {
    let p = this.lastPending;
    if (p?.store !== store) {
      p = this.pending.find((x) => x.store === store);
      if (!p) {
        p = { store, rows: new Int32Array(64), n: 0 };
        this.pending.push(p);
      }
      this.lastPending = p;
    }
    if (p.n === p.rows.length) {
      const bigger = new Int32Array(p.rows.length * 2);
      bigger.set(p.rows);
      p.rows = bigger;
    }
    p.rows[p.n++] = row;
    this.changed = true;
  }

  /** Measures queued so far. */
  get queued(): number {
    return this.pending.reduce((n, p) => n + p.n, 0);
  }

  /** Marks the region changed (averages updated in place). */
  touch(): void {
    this.changed = true;
  }

  /**
   * The queued measures as rows of the stores they are in (each part's `rows` in their new
   * order; parts one after the other), grouped by IMAGE_ID (in order of first appearance,
   * rows of an image in queue order), with the runs for the image index.
   */
  takeNewMeasureRows(): { parts: { store: ColumnStore; rows: Int32Array }[]; runs: { image: number; first: number; count: number }[] } {
    const parts: { store: ColumnStore; rows: Int32Array }[] = [];
    const runs: { image: number; first: number; count: number }[] = [];
    let done = 0;
    for (const p of this.pending) {
      // A stable counting sort by image: images in order of first appearance.
      const ids = p.store.u32('IMAGE_ID');
      const slot = new Map<number, number>();
      const order: number[] = [];
      const which = new Int32Array(p.n);
      let lastId = -1;
      let lastSlot = -1;
      for (let k = 0; k < p.n; k++) {
        const id = ids[p.rows[k]];
        if (id !== lastId) {
          let s = slot.get(id);
          if (s === undefined) { s = order.length; slot.set(id, s); order.push(id); }
          lastId = id;
          lastSlot = s;
        }
        which[k] = lastSlot;
      }
      const start = new Int32Array(order.length + 1);
      for (let k = 0; k < p.n; k++) start[which[k] + 1]++;
      for (let s = 0; s < order.length; s++) start[s + 1] += start[s];
      const fill = start.slice(0, order.length);
      const sorted = new Int32Array(p.n);
      for (let k = 0; k < p.n; k++) sorted[fill[which[k]]++] = p.rows[k];
      const base = this.measureRows + done;
      parts.push({ store: p.store, rows: sorted });
      done += p.n;
      order.forEach((image, s) => {
        const first = base + start[s];
        const count = start[s + 1] - start[s];
        const prev = runs.at(-1);
        if (prev && prev.image === image && prev.first + prev.count === first) prev.count += count;
        else runs.push({ image, first, count });
      });
    }
    this.pending.length = 0;
    this.lastPending = undefined;
    return { parts, runs };
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

function checkColumns(path: string, found: readonly ColumnInfo[], wanted: readonly ColumnInfo[]): void {
  const names = found.map((c) => c.name);
  const missing = wanted.filter((c) => !names.includes(c.name)).map((c) => c.name);
  if (missing.length) {
    throw new DvoError('dvo_damaged', `${path}: not a PS1_V5 DVO table; columns ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '...' : ''} are missing`);
  }
}

async function readStore(file: FitsFile, extname: string, columns: readonly ColumnInfo[], defaults: Readonly<Record<string, number>> = {}): Promise<ColumnStore> {
  const table = fitsTable(file, extname);
  checkColumns(file.name, table.columns, columns);
  const store = new ColumnStore(columns, Math.max(16, table.rowCount ?? 0), defaults);
  for await (const b of table.batches({ columns: columns.map((c) => c.name) })) store.appendBatch(b);
  return store;
}

function headerInt(h: Header, key: string, path: string, fallback?: number): number {
  const v = h.get(key);
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new DvoError('dvo_damaged', `${path}: primary header keyword ${key} is ${String(v)}; expected an integer`);
  return v;
}

/** Loads a region for an update (hold its exclusive lock, recovered first). */
export async function loadRegion(db: string, region: SkyRegion, nsec: number): Promise<RegionData> {
  const paths = Object.fromEntries(REGION_EXTENSIONS.map((e) => [e, regionPath(db, region, e)])) as Record<(typeof REGION_EXTENSIONS)[number], string>;
  const present = await Promise.all(REGION_EXTENSIONS.map((e) => exists(paths[e])));
  if (!regionHasData(region, REGION_EXTENSIONS.map((e) => paths[e]), present)) {
    const secfilt = new RowStore(SECFILT_COLUMNS, 16 * nsec, SECFILT_DEFAULTS);
    secfilt.grow(1);
    return new RegionData(db, region, nsec, {
      averages: new RowStore(AVERAGE_COLUMNS, 16, AVERAGE_DEFAULTS), secfilt, secRow: new Int32Array(16 * nsec), index: new ColumnStore(IMAGE_INDEX_COLUMNS),
      generation: 0, nextObj: 1, nextDet: 1, measureRows: 0,
    });
  }
  const cpt = await FitsFile.open(paths.cpt);
  const cps = await FitsFile.open(paths.cps).catch(async (e) => { await cpt.close(); throw e; });
  const cpm = await FitsFile.open(paths.cpm).catch(async (e) => { await cpt.close(); await cps.close(); throw e; });
  try {
    const gens = [cpt, cps, cpm].map((f) => headerInt(f.hdus[0].header, KEY.generation, f.name));
    if (gens.some((g) => g !== gens[0])) {
      throw new DvoError('dvo_damaged', `region ${region.name}: its files are of different generations (${gens.join(', ')}); run ipp dvo verify`);
    }
    const fileNsec = headerInt(cps.hdus[0].header, KEY.nsec, cps.name);
    if (fileNsec !== nsec) throw new DvoError('dvo_damaged', `${cps.name}: NSECFILT = ${fileNsec} but the database has ${nsec} filters`);
    const averages = new RowStore(AVERAGE_COLUMNS, 16, AVERAGE_DEFAULTS);
    averages.appendColumns(await readStore(cpt, EXTNAME.average, AVERAGE_COLUMNS, AVERAGE_DEFAULTS));
    // Row 0 the defaults, then the file's rows (object o's filter f at 1 + o·nsec + f).
    const secTable = fitsTable(cps, EXTNAME.secfilt);
    checkColumns(cps.name, secTable.columns, SECFILT_COLUMNS);
    const secfilt = new RowStore(SECFILT_COLUMNS, Math.max(16, 1 + (secTable.rowCount ?? 0)), SECFILT_DEFAULTS);
    secfilt.grow(1);
    for await (const b of secTable.batches({ columns: SECFILT_COLUMNS.map((c) => c.name) })) {
      const part = new ColumnStore(SECFILT_COLUMNS, Math.max(1, b.rowCount));
      part.appendBatch(b);
      secfilt.appendColumns(part);
    }
    if (secfilt.length - 1 !== averages.length * nsec) {
      throw new DvoError('dvo_damaged', `${cps.name}: ${secfilt.length - 1} rows for ${averages.length} objects × ${nsec} filters`);
    }
    const secRow = new Int32Array(Math.max(16, averages.length) * nsec);
    for (let q = 0; q < averages.length * nsec; q++) secRow[q] = q + 1;
    const index = await readStore(cpm, EXTNAME.imageIndex, IMAGE_INDEX_COLUMNS);
    const measureRows = cpm.hdu(EXTNAME.measure).rows ?? 0;
    return new RegionData(db, region, nsec, {
      averages, secfilt, secRow, index, generation: gens[0],
      nextObj: headerInt(cpt.hdus[0].header, KEY.nextObj, cpt.name),
      nextDet: headerInt(cpm.hdus[0].header, KEY.nextDet, cpm.name),
      measureRows,
    });
  } finally {
    await Promise.all([cpt.close(), cps.close(), cpm.close()]);
  }
}

/** A table of several tables with the same columns, one after the other. */
function chainTables(columns: readonly ColumnInfo[], parts: readonly Table[], name: string): Table {
  const rowCount = parts.reduce((n, t) => n + (t.rowCount ?? 0), 0);
  return {
    name, columns, rowCount,
    async *batches(options: ReadOptions = {}): AsyncIterable<ColumnBatch> {
      for (const t of parts) yield* t.batches(options);
    },
  };
}

/** Options of {@link saveRegion}. */
export interface SaveRegionOptions {
  /** Tile-compress the tables (GZIP_2 floats, GZIP_1 strings, RICE_1 integers). */
  readonly compress?: boolean;
  readonly signal?: AbortSignal;
  /** Test hooks: run when the new files are written, before and after the journal. */
  readonly hooks?: CommitHooks;
}

/** Writes a region's new generation (new files, journal, renames). */
export async function saveRegion(data: RegionData, options: SaveRegionOptions = {}): Promise<void> {
  const { db, region } = data;
  const gen = data.generation + 1;
  const { parts, runs } = data.takeNewMeasureRows();
  // OFF_MEASURE: the row of each new object's first measure.
  const off = data.averages.i32;
  const offW = data.averages.rowBytes / 4;
  const offAt = data.averages.offsetOf('OFF_MEASURE') / 4;
  let k = data.measureRows;
  for (const p of parts) {
    const aveRef = p.store.u32('AVE_REF');
    for (let j = 0; j < p.rows.length; j++, k++) {
      const o = aveRef[p.rows[j]];
      if (off[o * offW + offAt] < 0) off[o * offW + offAt] = k;
    }
  }
  const common = new Header()
    .set(KEY.generation, gen, 'update generation of this region')
    .set(KEY.catId, region.index, 'SkyTable index of this region')
    .set('REGION', region.name, 'region name')
    .set('DVOFMT', 'PS1_V5', 'DVO table layout');
  const cptHeader = common.clone().set(KEY.nextObj, data.nextObj, 'next OBJ_ID in this region').set('NOBJ', data.objects, 'objects');
  const cpsHeader = common.clone().set(KEY.nsec, data.nsec, 'filters (SEC photcodes) per object');
  if (!options.compress && FAST) {
    const signal = options.signal;
    const settled = await Promise.allSettled([
      writeTableFile(`${regionPath(db, region, 'cpt')}.new`, cptHeader, [
        { name: EXTNAME.average, columns: AVERAGE_COLUMNS, parts: [{ store: data.averages, rows: allRows(data.objects) }] },
      ], signal),
      writeTableFile(`${regionPath(db, region, 'cps')}.new`, cpsHeader, [
        { name: EXTNAME.secfilt, columns: SECFILT_COLUMNS, parts: [{ store: data.secfilt, rows: data.secfiltRows(), template: 0, overlay: data.secNew }] },
      ], signal),
      writeMeasuresPlain(data, parts, runs, common, options),
    ]);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    await commitRegion(db, region, REGION_EXTENSIONS, options.hooks ?? {});
    data.generation = gen;
    return;
  }
  const added = new ColumnStore(MEASURE_COLUMNS, Math.max(1, k - data.measureRows));
  for (const p of parts) added.appendRows(p.store, p.rows);
  const compress = options.compress ? {} : false as const;
  const write = (ext: 'cpt' | 'cps' | 'cpm', header: Header, hdus: CompressedHduInput[]) =>
    writeCompressedFits(`${regionPath(db, region, ext)}.new`, hdus, { primaryHeader: header, ...(options.signal ? { signal: options.signal } : {}) });
  // The three files are written at once: one's encoding overlaps another's writes and fsync.
  // All of them are complete before the journal, as before; a failure leaves only .new files,
  // which the next lock holder removes.
  const writes = [
    write('cpt', cptHeader,
      [{ table: memoryTable(AVERAGE_COLUMNS, [data.averages.toColumnStore(allRows(data.objects)).toBatch()], { name: EXTNAME.average }), compress }]),
    write('cps', cpsHeader,
      [{ table: memoryTable(SECFILT_COLUMNS, [denseSecfilt(data).toBatch()], { name: EXTNAME.secfilt }), compress }]),
    writeMeasures(data, added, runs, common, compress, write),
  ];
  const settled = await Promise.allSettled(writes);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  await commitRegion(db, region, REGION_EXTENSIONS, options.hooks ?? {});
  data.generation = gen;
}

// Rows 0..n-1.
function allRows(n: number): Int32Array {
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) rows[i] = i;
  return rows;
}

// The SecFilt table as written: every object's filters in order (rows made in memory: the
// defaults row with their columns set).
function denseSecfilt(data: RegionData): ColumnStore {
  const rows = data.secfiltRows();
  const out = data.secfilt.toColumnStore(rows.map((q) => (q < 0 ? 0 : q)));
  const at: number[] = [];
  const from: number[] = [];
  rows.forEach((q, k) => { if (q < 0) { at.push(k); from.push(-q); } });
  const made = data.secNew.toColumnStore(Int32Array.from(from));
  for (const c of SECFILT_SET_COLUMNS) {
    // As bytes, as the rows are copied everywhere else.
    const to = out.col(c.name);
    const src = made.col(c.name);
    const toBytes = new Uint8Array(to.buffer, to.byteOffset, to.byteLength);
    const srcBytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    const w = to.BYTES_PER_ELEMENT;
    at.forEach((k, j) => toBytes.set(srcBytes.subarray(j * w, (j + 1) * w), k * w));
  }
  return out;
}

// Uncompressed region files are written from the stores by table-file.ts.
const FAST = [AVERAGE_COLUMNS, SECFILT_COLUMNS, MEASURE_COLUMNS, IMAGE_INDEX_COLUMNS].every(writableLayout);

// The image index with the new runs added (the region then knows these images).
function addRuns(data: RegionData, runs: readonly { image: number; first: number; count: number }[]): void {
  const index = data.index;
  const first = index.length;
  index.grow(runs.length);
  const [ids, firsts, counts] = [index.u32('IMAGE_ID'), index.i32('FIRST'), index.i32('COUNT')];
  runs.forEach((r, k) => {
    ids[first + k] = r.image;
    firsts[first + k] = r.first;
    counts[first + k] = r.count;
    data.images.add(r.image);
  });
}

// True when a Measure table on disk is stored exactly as this writer stores it (so its rows can be copied as bytes).
function sameLayout(file: FitsFile, hdu: HduInfo): boolean {
  if (hdu.kind !== 'bintable' || !hdu.columns || (hdu.header.get('PCOUNT') ?? 0) !== 0) return false;
  const found = hdu.columns;
  if (found.length !== MEASURE_COLUMNS.length) return false;
  for (let i = 0; i < found.length; i++) {
    const a = found[i];
    const b = MEASURE_COLUMNS[i];
    if (a.name !== b.name || a.type !== b.type || a.storage || a.variable || elementsPerRow(a) !== elementsPerRow(b)) return false;
  }
  return file.columnDefs(hdu.index).rowBytes === layoutRowBytes(MEASURE_COLUMNS);
}

/**
 * The uncompressed Measure file: the old rows copied as bytes from the current file (or
 * decoded and encoded again if it is stored otherwise), the new ones, the image index.
 */
async function writeMeasuresPlain(
  data: RegionData, added: readonly { store: ColumnStore; rows: Int32Array }[], runs: readonly { image: number; first: number; count: number }[], common: Header, options: SaveRegionOptions,
): Promise<void> {
  const { db, region } = data;
  const cpmPath = regionPath(db, region, 'cpm');
  const old = data.measureRows > 0 ? await FitsFile.open(cpmPath) : undefined;
  try {
    const parts: RowSource[] = [];
    if (old) {
      const hdu = old.hdu(EXTNAME.measure);
      if ((hdu.rows ?? 0) !== data.measureRows) throw new DvoError('dvo_damaged', `${cpmPath}: ${hdu.rows} measures, but ${data.measureRows} when the region was loaded`);
      if (sameLayout(old, hdu)) {
        parts.push({ file: old, position: hdu.dataStart, rows: data.measureRows });
      } else {
        const store = new ColumnStore(MEASURE_COLUMNS, Math.max(1, data.measureRows));
        for await (const b of fitsTable(old, EXTNAME.measure).batches({ columns: MEASURE_COLUMNS.map((c) => c.name) })) store.appendBatch(b);
        parts.push({ store, first: 0, count: store.length });
      }
    }
    let count = 0;
    for (const p of added) {
      parts.push({ store: p.store, rows: p.rows });
      count += p.rows.length;
    }
    addRuns(data, runs);
    const total = data.measureRows + count;
    const header = common.clone().set(KEY.nextDet, data.nextDet, 'next DET_ID in this region').set('NMEAS', total, 'measures')
      .set('SORTED', false, 'measures are in ingest order, grouped by image (AVE_REF links objects)');
    await writeTableFile(`${cpmPath}.new`, header, [
      { name: EXTNAME.measure, columns: MEASURE_COLUMNS, parts },
      { name: EXTNAME.imageIndex, columns: IMAGE_INDEX_COLUMNS, parts: [{ store: data.index, first: 0, count: data.index.length }] },
    ], options.signal);
    data.measureRows = total;
  } finally {
    await old?.close();
  }
}

/** Writes a region's new Measure file: the old measures streamed from the current file, then the new ones, then the image index. */
async function writeMeasures(
  data: RegionData, added: ColumnStore, runs: readonly { image: number; first: number; count: number }[], common: Header,
  compress: false | Record<string, never>, write: (ext: 'cpm', header: Header, hdus: CompressedHduInput[]) => Promise<void>,
): Promise<void> {
  const { db, region } = data;
  // The old measures are streamed from the current file into the new one.
  const cpmPath = regionPath(db, region, 'cpm');
  const old = data.measureRows > 0 ? await FitsFile.open(cpmPath) : undefined;
  try {
    const parts: Table[] = [];
    if (old) parts.push(fitsTable(old, EXTNAME.measure));
    parts.push(memoryTable(MEASURE_COLUMNS, [added.toBatch()]));
    const index = data.index;
    addRuns(data, runs);
    const total = data.measureRows + added.length;
    await write('cpm', common.clone().set(KEY.nextDet, data.nextDet, 'next DET_ID in this region').set('NMEAS', total, 'measures')
      .set('SORTED', false, 'measures are in ingest order, grouped by image (AVE_REF links objects)'), [
      { table: chainTables(MEASURE_COLUMNS, parts, EXTNAME.measure), compress },
      { table: memoryTable(IMAGE_INDEX_COLUMNS, [index.toBatch()], { name: EXTNAME.imageIndex }), compress: false },
    ]);
    data.measureRows = total;
  } finally {
    await old?.close();
  }
}

/** Reads a region's image index without loading the rest (for look-ups by image). */
export async function readImageIndex(cpm: FitsFile): Promise<ColumnBatch> {
  return collectTable(fitsTable(cpm, EXTNAME.imageIndex));
}
