// addstar: ingest catalogues into a DVO database.
//
// 1. Each catalogue is read and checked whole; a bad one is reported and left out, and the
//    database never sees it.
// 2. Under the Images lock: each catalogue's images are checked against Images.dat (an
//    IMAGEID taken by another image, or the image known under another IMAGEID, rejects the
//    catalogue; an image already fully ingested is skipped, so re-ingest changes nothing) and
//    new ones are added, marked pending, with their internal IMAGE_IDs.
// 3. Under exclusive locks on every region the detections fall in or may match across:
//    the regions are loaded, each detection goes to the nearest object within the match
//    radius of its photcode class that no other detection of the same image has taken, or
//    starts a new object in its own region; averages are updated as measures arrive; each
//    changed region is written once (new files, journal, renames).
// 4. Under the Images lock again: the pending marks are cleared.
// A process that dies between 2 and 4 leaves pending images; running addstar on the same
// catalogues again finishes them (regions that already hold an image's measures are skipped
// for that image), and `ipp dvo verify` lists them meanwhile.
import { isIppError, type Logger } from '../common/index.ts';
import { readCatalogue, type Catalogue } from './catalogue.ts';
import type { ColumnStore } from './column-store.ts';
import { createDvo, dvoExists, openDvo, type CreateOptions, type DvoDatabase } from './database.ts';
import { DvoError } from './errors.ts';
import { OBJECT_ID_WORDS, objectId, setObjectIdWords } from './ids.ts';
import { readImages, writeImages, type ImageTable } from './images.ts';
import { lockOptions, withLocks } from './lock.ts';
import { MatchGrid } from './match-grid.ts';
import { defaultPhotcodes, PhotcodeTable, type MatchClass } from './photcodes.ts';
import { loadRegion, saveRegion, type RegionData } from './region.ts';
import { RowStore } from './row-store.ts';
import { AVERAGE_COLUMNS, SECFILT_COLUMNS, SECFILT_SET_COLUMNS } from './layouts.ts';
import { recoverRegion, type CommitHooks } from './region-files.ts';
import { DensityGrid, normRa, type SkyRegion } from './sky-table.ts';

/** Default match radii by photcode class, arcseconds. */
export const DEFAULT_RADIUS: Readonly<Record<MatchClass, number>> = Object.freeze({ chip: 1.0, stack: 1.0, ref: 2.0 });

/** Options of {@link addstar}. */
export interface AddstarOptions {
  /** Match radius per photcode class, arcseconds (defaults {@link DEFAULT_RADIUS}). */
  readonly radius?: Partial<Record<MatchClass, number>>;
  /** How to create the database when it does not exist (the density comes from the catalogues). */
  readonly create?: Omit<CreateOptions, 'density' | 'log'>;
  readonly log?: Pick<Logger, 'warn' | 'info'>;
  readonly signal?: AbortSignal;
  readonly lockTimeoutMs?: number;
  /** Detections held in memory before the regions are written (default 4,000,000). */
  readonly maxGroupDetections?: number;
  /** Called as each catalogue is settled. */
  readonly onFile?: (result: FileResult) => void;
  /** When given, milliseconds spent in each phase are added to it (read, images, load, match, write). */
  readonly timings?: Record<string, number>;
  /** When given, CPU milliseconds of the whole process (all threads) in each phase are added to it. */
  readonly cpuTimings?: Record<string, number>;
  /** When given, the kernel's part of {@link cpuTimings} (system CPU milliseconds) per phase is added to it. */
  readonly sysTimings?: Record<string, number>;
  /** Test hooks: points in a region's update where a test stops the process. */
  readonly regionHooks?: (region: SkyRegion) => CommitHooks;
}

/** What became of one catalogue. */
export interface FileResult {
  readonly path: string;
  /** `unchanged`: every image was already ingested (or appears twice in the call). */
  readonly status: 'ingested' | 'unchanged' | 'failed';
  readonly images: number;
  readonly detections: number;
  readonly error?: { readonly code: string; readonly message: string };
  /** EXTERN_ID → IMAGE_ID of the catalogue's images. */
  readonly imageIds?: readonly { externId: number; imageId: number }[];
}

/** Totals of an addstar run. */
export interface AddstarResult {
  readonly files: readonly FileResult[];
  /** Detections stored as measures. */
  readonly detections: number;
  /** Detections that joined an existing object. */
  readonly matched: number;
  readonly newObjects: number;
  /** Detections left out because their region already held their image (resumed ingest). */
  readonly skipped: number;
  readonly regionsWritten: number;
}

interface Claim {
  cat: Catalogue;
  imageIds: Uint32Array;
}

/**
 * Detections to associate: Measure rows (IDs to be filled in) in runs of one image each; run
 * `k` belongs to IMAGE_ID `imageIds[k]` (0: leave the run out).
 */
export interface DetectionBatch {
  readonly detections: ColumnStore;
  readonly segments: readonly { readonly first: number; readonly count: number }[];
  readonly imageIds: Uint32Array;
}

/** Running totals of an association. */
export interface Totals {
  detections: number;
  matched: number;
  newObjects: number;
  skipped: number;
  regionsWritten: number;
}

// CPU microseconds of the process (all, and the kernel's) at the start of the phase being timed.
let cpuMark = process.cpuUsage();

function timed(options: AddstarOptions, phase: string, since: number): number {
  const now = performance.now();
  if (options.timings) options.timings[phase] = (options.timings[phase] ?? 0) + now - since;
  if (options.cpuTimings || options.sysTimings) {
    const c = process.cpuUsage();
    if (options.cpuTimings) options.cpuTimings[phase] = (options.cpuTimings[phase] ?? 0) + (c.user + c.system - cpuMark.user - cpuMark.system) / 1000;
    if (options.sysTimings) options.sysTimings[phase] = (options.sysTimings[phase] ?? 0) + (c.system - cpuMark.system) / 1000;
    cpuMark = c;
  }
  return now;
}

// Starts a phase (for the CPU timings, which count from the last mark).
function mark(options: AddstarOptions): number {
  if (options.cpuTimings || options.sysTimings) cpuMark = process.cpuUsage();
  return performance.now();
}

/** Ingests catalogues (smf/cmf paths) into the database at `dir`, creating it if needed. */
export async function addstar(dir: string, paths: readonly string[], options: AddstarOptions = {}): Promise<AddstarResult> {
  const results = new Map<number, FileResult>();
  const totals: Totals = { detections: 0, matched: 0, newObjects: 0, skipped: 0, regionsWritten: 0 };
  let db: DvoDatabase | undefined = await dvoExists(dir) ? await openDvo(dir) : undefined;
  const photcodes = db?.photcodes ?? new PhotcodeTable(defaultPhotcodes());
  const limit = options.maxGroupDetections ?? 4_000_000;
  let group: { cat: Catalogue; at: number }[] = [];
  let held = 0;
  const settle = (at: number, r: FileResult): void => {
    results.set(at, r);
    options.onFile?.(r);
  };
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    db ??= await createDvo(dir, { ...options.create, density: densityOf(group.map((g) => g.cat)), lock: lockOptions(options) });
    await ingestGroup(db, group, options, totals, settle);
    group = [];
    held = 0;
  };
  for (let at = 0; at < paths.length; at++) {
    options.signal?.throwIfAborted();
    let cat: Catalogue;
    const t0 = mark(options);
    try {
      cat = await readCatalogue(paths[at], photcodes);
      timed(options, 'read', t0);
    } catch (error) {
      if (!isIppError(error)) throw error;
      settle(at, { path: paths[at], status: 'failed', images: 0, detections: 0, error: { code: error.code, message: error.message } });
      continue;
    }
    group.push({ cat, at });
    held += cat.detections.length;
    if (held >= limit) await flush();
  }
  await flush();
  return { files: [...results.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r), ...totals };
}

/**
 * Expected objects from catalogues, per density cell: 1.5 times the most detections any one
 * catalogue has there (exposures of different depth and pointing see more objects together
 * than any one alone), but never more than all their detections.
 */
function densityOf(cats: readonly Catalogue[]): DensityGrid {
  const grid = new DensityGrid();
  const cells = grid.counts.length;
  // Counts per cell in typed arrays (a Map update per detection cost more than the rest).
  const sum = new Float64Array(cells);
  const mine = new Float64Array(cells);
  const touched = new Int32Array(cells);
  for (const cat of cats) {
    const ra = cat.detections.f64('RA');
    const dec = cat.detections.f64('DEC');
    let nt = 0;
    for (let i = 0; i < cat.detections.length; i++) {
      const c = grid.cellOf(ra[i], dec[i]);
      if (mine[c] === 0) touched[nt++] = c;
      mine[c]++;
    }
    for (let k = 0; k < nt; k++) {
      const c = touched[k];
      const n = mine[c];
      if (n > grid.counts[c]) grid.counts[c] = n;
      sum[c] += n;
      mine[c] = 0;
    }
  }
  for (let c = 0; c < cells; c++) if (sum[c] > 0) grid.counts[c] = Math.min(sum[c], 1.5 * grid.counts[c]);
  return grid;
}

async function ingestGroup(
  db: DvoDatabase, group: readonly { cat: Catalogue; at: number }[], options: AddstarOptions, totals: Totals,
  settle: (at: number, r: FileResult) => void,
): Promise<void> {
  const claims: { claim: Claim; at: number }[] = [];
  const lock = lockOptions(options);
  // Phase 2: register images.
  const t = mark(options);
  await withLocks(db.dir, ['Images'], 'exclusive', lock, async () => {
    const images = await readImages(db.dir);
    const before = images.length;
    const claimed = new Set<number>();
    for (const { cat, at } of group) {
      const base = { path: cat.path, images: cat.images.length, detections: cat.detections.length };
      let plan;
      try {
        plan = images.register(cat.images, cat.path);
      } catch (error) {
        if (!(error instanceof DvoError)) throw error;
        settle(at, { ...base, status: 'failed', detections: 0, error: { code: error.code, message: error.message } });
        continue;
      }
      const imageIds = plan.map((p, i) => ({ externId: cat.images[i].externId, imageId: p.imageId }));
      const active = plan.filter((p) => p.status !== 'done' && !claimed.has(p.imageId));
      if (active.length === 0) {
        settle(at, { ...base, status: 'unchanged', detections: 0, imageIds });
        continue;
      }
      const ids = new Uint32Array(cat.images.length);
      plan.forEach((p, i) => {
        if (p.status === 'done' || claimed.has(p.imageId)) return;
        ids[i] = p.imageId;
        claimed.add(p.imageId);
      });
      claims.push({ claim: { cat, imageIds: ids }, at });
    }
    if (images.length !== before) await writeImages(db.dir, images);
  });
  timed(options, 'images', t);
  if (claims.length === 0) return;
  options.signal?.throwIfAborted();
  // Phase 3: the regions.
  const stored = await associate(db, claims.map(({ claim }) => ({ detections: claim.cat.detections, segments: claim.cat.images, imageIds: claim.imageIds })), options, totals);
  // Phase 4: the images are complete.
  const t4 = mark(options);
  await withLocks(db.dir, ['Images'], 'exclusive', lock, async () => {
    const images: ImageTable = await readImages(db.dir);
    const done: number[] = [];
    for (const { claim } of claims) for (const id of claim.imageIds) if (id) done.push(id);
    if (images.complete(done) > 0) await writeImages(db.dir, images);
  });
  timed(options, 'images', t4);
  claims.forEach(({ claim, at }, k) => {
    const cat = claim.cat;
    settle(at, {
      path: cat.path, status: 'ingested', images: cat.images.length, detections: stored[k],
      imageIds: cat.images.map((im, i) => ({ externId: im.externId, imageId: claim.imageIds[i] || 0 })),
    });
  });
}

/** Cached columns of a region's Average and SecFilt tables, fetched again when they grow. */
class RegionView {
  readonly data: RegionData;
  private cap = -1;
  private secCap = -1;
  private newCap = -1;
  /** The Average rows (row-store.ts) seen as each type; a field is at `row · A_W<bytes> + A_<field>`. */
  af64!: Float64Array; af32!: Float32Array; ai32!: Int32Array; au32!: Uint32Array; au16!: Uint16Array;
  /** The SecFilt rows as 32-bit floats and 16-bit integers (a row's fields at the S_* indexes from row · SEC_WORDS, or twice that). */
  sf!: Float32Array; si!: Int16Array;
  /** The same of the SecFilt rows made in memory (RegionData.secNew). */
  nf!: Float32Array; ni!: Int16Array;

  constructor(data: RegionData) {
    this.data = data;
    this.refresh();
  }

  refresh(): void {
    const a = this.data.averages;
    const s = this.data.secfilt;
    const n = this.data.secNew;
    if (a.capacity === this.cap && s.capacity === this.secCap && n.capacity === this.newCap) return;
    this.cap = a.capacity;
    this.secCap = s.capacity;
    this.newCap = n.capacity;
    this.nf = n.f32;
    this.ni = n.i16;
    this.af64 = a.f64; this.af32 = a.f32; this.ai32 = a.i32; this.au32 = a.u32; this.au16 = a.u16;
    this.sf = s.f32;
    this.si = s.i16;
  }
}

const CLASS_CODE: Readonly<Record<MatchClass, number>> = { chip: 0, stack: 1, ref: 2 };

// Where the Average fields the association updates are in a row, per element width.
const AVE_ROW = new RowStore(AVERAGE_COLUMNS, 1);
const A_W8 = AVE_ROW.rowBytes / 8;
const A_W4 = AVE_ROW.rowBytes / 4;
const A_W2 = AVE_ROW.rowBytes / 2;
const A_RA = AVE_ROW.offsetOf('RA') / 8;
const A_DEC = AVE_ROW.offsetOf('DEC') / 8;
const A_RA_ERR = AVE_ROW.offsetOf('RA_ERR') / 4;
const A_DEC_ERR = AVE_ROW.offsetOf('DEC_ERR') / 4;
const A_NPOS = AVE_ROW.offsetOf('NUMBER_POS') / 2;
const A_NMEAS = AVE_ROW.offsetOf('NMEASURE') / 2;
const A_EPOCH = AVE_ROW.offsetOf('MEAN_EPOCH') / 4;
const A_QF = AVE_ROW.offsetOf('PSF_QF') / 4;
const A_QFP = AVE_ROW.offsetOf('PSF_QF_PERF') / 4;
const A_OBJ_ID = AVE_ROW.offsetOf('OBJ_ID') / 4;
const A_CAT_ID = AVE_ROW.offsetOf('CAT_ID') / 4;
const A_EXT_ID = AVE_ROW.offsetOf('EXT_ID') / 4;
// Where the SecFilt fields the association updates are in a row (row-store.ts), in 32-bit words and 16-bit halves.
const SEC_ROW = new RowStore(SECFILT_COLUMNS, 1);
const SEC_WORDS = SEC_ROW.rowBytes / 4;
const S_MAG = SEC_ROW.offsetOf('MAG') / 4;
const S_MAG_ERR = SEC_ROW.offsetOf('MAG_ERR') / 4;
const S_STDEV = SEC_ROW.offsetOf('MAG_STDEV') / 4;
const S_MIN = SEC_ROW.offsetOf('MAG_MIN') / 4;
const S_MAX = SEC_ROW.offsetOf('MAG_MAX') / 4;
const S_CHI = SEC_ROW.offsetOf('MAG_CHI') / 4;
const S_AP = SEC_ROW.offsetOf('MAG_AP') / 4;
const S_KRON = SEC_ROW.offsetOf('MAG_KRON') / 4;
const S_QF_MAX = SEC_ROW.offsetOf('PSF_QF_MAX') / 4;
const S_QFP_MAX = SEC_ROW.offsetOf('PSF_QF_PERF_MAX') / 4;
const S_STK = SEC_ROW.offsetOf('MAG_PSF_STK') / 4;
const S_FSTK = SEC_ROW.offsetOf('FLUX_PSF_STK') / 4;
const S_FSTK_ERR = SEC_ROW.offsetOf('FLUX_PSF_STK_ERR') / 4;
const S_NCODE = SEC_ROW.offsetOf('NCODE') / 2;
const S_NUSED = SEC_ROW.offsetOf('NUSED') / 2;
const S_NAP = SEC_ROW.offsetOf('NUSED_AP') / 2;
const S_NKRON = SEC_ROW.offsetOf('NUSED_KRON') / 2;
const S_NSTK = SEC_ROW.offsetOf('NSTACK') / 2;
const S_NSTK_DET = SEC_ROW.offsetOf('NSTACK_DET') / 2;
// The same in SecFilt rows made in memory (RegionData.secNew): the fields above up to NUSED_AP
// are at the same places; the stack fields (MAG_PSF_STK, FLUX_PSF_STK, its error in words,
// NSTACK, NSTACK_DET in halves) are elsewhere.
const NEW_ROW = new RowStore(SECFILT_SET_COLUMNS, 1);
const NEW_WORDS = NEW_ROW.rowBytes / 4;
const STK_FULL = [S_STK, S_FSTK, S_FSTK_ERR, S_NSTK, S_NSTK_DET] as const;
const STK_NEW = [
  NEW_ROW.offsetOf('MAG_PSF_STK') / 4, NEW_ROW.offsetOf('FLUX_PSF_STK') / 4, NEW_ROW.offsetOf('FLUX_PSF_STK_ERR') / 4,
  NEW_ROW.offsetOf('NSTACK') / 2, NEW_ROW.offsetOf('NSTACK_DET') / 2,
] as const;
for (const name of ['MAG', 'MAG_ERR', 'MAG_STDEV', 'MAG_MIN', 'MAG_MAX', 'MAG_CHI', 'MAG_AP', 'MAG_KRON', 'PSF_QF_MAX', 'PSF_QF_PERF_MAX', 'NCODE', 'NUSED', 'NUSED_AP', 'NUSED_KRON']) {
  if (NEW_ROW.offsetOf(name) !== SEC_ROW.offsetOf(name)) throw new DvoError('dvo_internal', `SecFilt ${name} is not at the same place in rows made in memory`);
}

/**
 * Phase 3 of addstar (also merge's engine): associates detections with objects and writes the
 * regions; returns the measures stored per batch.
 */
export async function associate(db: DvoDatabase, claims: readonly DetectionBatch[], options: AddstarOptions, totals: Totals): Promise<number[]> {
  const radiusArcsec = { ...DEFAULT_RADIUS, ...options.radius };
  for (const [k, v] of Object.entries(radiusArcsec)) {
    if (!(v > 0 && v < 3600)) throw new DvoError('dvo_bad_option', `match radius for ${k} is ${v} arcsec; it must be above 0 and below 3600`);
  }
  const radiusDeg = [radiusArcsec.chip / 3600, radiusArcsec.stack / 3600, radiusArcsec.ref / 3600];
  const maxRadius = Math.max(...radiusDeg);
  const { sky, photcodes, nsec } = db;
  // Per photcode (16 bits): its .cps slot and its match class.
  const secSlot = new Int8Array(65536).fill(-1);
  const klass = new Uint8Array(65536);
  for (const c of photcodes.codes) {
    secSlot[c.code] = photcodes.secSlot(c.code);
    klass[c.code] = CLASS_CODE[photcodes.matchClass(c.code)];
  }
  // Home region of every detection, and every region a match may reach.
  const regions = new Map<number, SkyRegion>();
  const homes: Int32Array[] = [];
  for (const claim of claims) {
    const s = claim.detections;
    const ra = s.f64('RA');
    const dec = s.f64('DEC');
    const home = new Int32Array(s.length).fill(-1);
    let last: SkyRegion | undefined;
    for (let m = 0; m < claim.segments.length; m++) {
      if (!claim.imageIds[m]) continue;
      const im = claim.segments[m];
      for (let i = im.first; i < im.first + im.count; i++) {
        const a = ra[i];
        const d = dec[i];
        let r = last;
        if (!r || a < r.rmin || a >= r.rmax || d < r.dmin || d >= r.dmax) {
          r = sky.regionOf(a, d);
          last = r;
          regions.set(r.index, r);
        }
        home[i] = r.index;
        if (sky.nearEdge(r, a, d, maxRadius)) for (const n of sky.regionsNear(a, d, maxRadius)) regions.set(n.index, n);
      }
    }
    homes.push(home);
  }
  const landing = new Map<number, number>();
  for (const home of homes) {
    for (let i = 0; i < home.length;) {
      let j = i + 1;
      while (j < home.length && home[j] === home[i]) j++;
      if (home[i] >= 0) landing.set(home[i], (landing.get(home[i]) ?? 0) + j - i);
      i = j;
    }
  }
  const keys = [...regions.values()].map((r) => r.name);
  const stored = claims.map(() => 0);
  await withLocks(db.dir, keys, 'exclusive', lockOptions(options), async () => {
    let t = mark(options);
    const views: RegionView[] = [];
    const slotOf = new Map<number, number>();
    let objects = 0;
    for (const r of [...regions.values()].sort((a, b) => a.index - b.index)) {
      const how = await recoverRegion(db.dir, r);
      if (how === 'rolled-forward') options.log?.warn(`region ${r.name}: finished an update that a stopped process had committed`);
      if (how === 'cleaned') options.log?.warn(`region ${r.name}: removed files of an update that a stopped process had not committed`);
      const data = await loadRegion(db.dir, r, nsec);
      // Room for the new objects expected (half the detections landing here: most objects are
      // seen more than once), so the columns are copied at most once as they grow.
      const expected = data.objects + Math.ceil((landing.get(r.index) ?? 0) / 2);
      data.averages.reserve(expected);
      data.reserveObjects(expected);
      // At most a SecFilt row per detection landing here (room not used is never touched).
      data.secNew.reserve(data.secNew.length + (landing.get(r.index) ?? 0));
      slotOf.set(r.index, views.length);
      views.push(new RegionView(data));
      objects += data.objects;
    }
    t = timed(options, 'load', t);
    const incoming = claims.reduce((n, c) => n + c.detections.length, 0);
    const grid = new MatchGrid(maxRadius, objects + incoming);
    let objSlot = new Int32Array(Math.max(16, objects + incoming));
    let objRow = new Int32Array(objSlot.length);
    views.forEach((v, slot) => {
      for (let row = 0; row < v.data.objects; row++) {
        const g = grid.add(v.af64[row * A_W8 + A_RA], v.af64[row * A_W8 + A_DEC]);
        objSlot[g] = slot;
        objRow[g] = row;
      }
    });
    const holds = new Uint8Array(views.length);
    claims.forEach((claim, k) => {
      options.signal?.throwIfAborted();
      const s = claim.detections;
      const home = homes[k];
      const D = {
        ra: s.f64('RA'), dec: s.f64('DEC'), mag: s.f32('MAG'), magErr: s.f32('MAG_ERR'), cal: s.f32('M_CAL'), ap: s.f32('M_APER'),
        kron: s.f32('M_KRON'), fpsf: s.f32('FLUX_PSF'), fpsfErr: s.f32('FLUX_PSF_ERR'), qf: s.f32('PSF_QF'), qfp: s.f32('PSF_QF_PEFECT'),
        t: s.i32('TIME'), pc: s.u16('PHOTCODE'), xe: s.i16('X_CCD_ERR'), ye: s.i16('Y_CCD_ERR'), ps: s.f32('PLTSCALE'),
        imageId: s.u32('IMAGE_ID'), objId: s.u32('OBJ_ID'), catId: s.u32('CAT_ID'), detId: s.u32('DET_ID'), aveRef: s.u32('AVE_REF'),
      };
      let n = 0;
      for (let m = 0; m < claim.segments.length; m++) {
        const imageId = claim.imageIds[m];
        if (!imageId) continue;
        const im = claim.segments[m];
        D.imageId.fill(imageId, im.first, im.first + im.count);
        // Which regions already hold this image (a resumed ingest), once per image, not per detection.
        for (let slot = 0; slot < views.length; slot++) holds[slot] = views[slot].data.images.has(imageId) ? 1 : 0;
        for (let i = im.first; i < im.first + im.count; i++) {
          const ra = D.ra[i];
          const dec = D.dec[i];
          const pc = D.pc[i];
          let g = grid.nearest(ra, dec, radiusDeg[klass[pc]], imageId);
          let v: RegionView;
          let row: number;
          if (g >= 0) {
            // Stored before (a resumed ingest): the object is this image's all the same, so
            // that another of its detections does not match it now when it did not then.
            if (holds[objSlot[g]]) { grid.claim(g, imageId); totals.skipped++; continue; }
            v = views[objSlot[g]];
            row = objRow[g];
            totals.matched++;
          } else {
            const slot = slotOf.get(home[i])!;
            if (holds[slot]) { totals.skipped++; continue; }
            v = views[slot];
            row = v.data.newObject();
            v.refresh();
            v.af64[row * A_W8 + A_RA] = ra;
            v.af64[row * A_W8 + A_DEC] = dec;
            v.au32[row * A_W4 + A_OBJ_ID] = v.data.nextObj++;
            v.au32[row * A_W4 + A_CAT_ID] = v.data.region.index;
            if (OBJECT_ID_WORDS) setObjectIdWords(v.au32, row * A_W4 + A_EXT_ID, ra, dec);
            else {
              const id = objectId(ra, dec);
              v.au32[row * A_W4 + A_EXT_ID] = Number(id & 0xffffffffn);
              v.au32[row * A_W4 + A_EXT_ID + 1] = Number(id >> 32n);
            }
            g = grid.add(ra, dec);
            if (g >= objSlot.length) {
              const a = new Int32Array(objSlot.length * 2); a.set(objSlot); objSlot = a;
              const b = new Int32Array(objRow.length * 2); b.set(objRow); objRow = b;
            }
            objSlot[g] = slot;
            objRow[g] = row;
            totals.newObjects++;
          }
          grid.claim(g, imageId);
          D.objId[i] = v.au32[row * A_W4 + A_OBJ_ID];
          D.catId[i] = v.au32[row * A_W4 + A_CAT_ID];
          D.detId[i] = v.data.nextDet++;
          D.aveRef[i] = row;
          v.data.addMeasure(s, i);
          n++;
          // Mean position (Welford, errors of the mean in arcsec).
          const np = v.au16[row * A_W2 + A_NPOS];
          if (np === 0) {
            v.af32[row * A_W4 + A_RA_ERR] = (D.xe[i] / 100) * D.ps[i];
            v.af32[row * A_W4 + A_DEC_ERR] = (D.ye[i] / 100) * D.ps[i];
            v.ai32[row * A_W4 + A_EPOCH] = D.t[i];
          } else {
            let dra = ra - v.af64[row * A_W8 + A_RA];
            if (dra > 180) dra -= 360; else if (dra < -180) dra += 360;
            const ddec = dec - v.af64[row * A_W8 + A_DEC];
            const cosd = Math.cos(v.af64[row * A_W8 + A_DEC] * Math.PI / 180);
            const x = dra * cosd * 3600;
            const y = ddec * 3600;
            const m2x = np >= 2 ? v.af32[row * A_W4 + A_RA_ERR] * v.af32[row * A_W4 + A_RA_ERR] * np * (np - 1) : 0;
            const m2y = np >= 2 ? v.af32[row * A_W4 + A_DEC_ERR] * v.af32[row * A_W4 + A_DEC_ERR] * np * (np - 1) : 0;
            v.af64[row * A_W8 + A_RA] = normRa(v.af64[row * A_W8 + A_RA] + dra / (np + 1));
            v.af64[row * A_W8 + A_DEC] += ddec / (np + 1);
            v.af32[row * A_W4 + A_RA_ERR] = Math.sqrt((m2x + (x * x * np) / (np + 1)) / (np * (np + 1)));
            v.af32[row * A_W4 + A_DEC_ERR] = Math.sqrt((m2y + (y * y * np) / (np + 1)) / (np * (np + 1)));
            v.ai32[row * A_W4 + A_EPOCH] = Math.round(v.ai32[row * A_W4 + A_EPOCH] + (D.t[i] - v.ai32[row * A_W4 + A_EPOCH]) / (np + 1));
            grid.move(g, v.af64[row * A_W8 + A_RA], v.af64[row * A_W8 + A_DEC]);
          }
          if (np < 65535) v.au16[row * A_W2 + A_NPOS] = np + 1;
          if (v.au16[row * A_W2 + A_NMEAS] < 65535) v.au16[row * A_W2 + A_NMEAS]++;
          const qf = D.qf[i];
          if (!(v.af32[row * A_W4 + A_QF] >= qf)) v.af32[row * A_W4 + A_QF] = qf;
          if (!(v.af32[row * A_W4 + A_QFP] >= D.qfp[i])) v.af32[row * A_W4 + A_QFP] = D.qfp[i];
          // Mean photometry in the measure's filter.
          const f = secSlot[pc];
          if (f < 0) continue;
          let q = v.data.secRow[row * nsec + f];
          if (q === 0) {
            q = v.data.secfiltRow(row, f);
            v.refresh();
          }
          // A loaded row (above 0) or one made in memory (below 0: the fields an ingest sets,
          // the first 64 bytes where the full row has them, the stack fields after).
          const made = q < 0;
          const sf = made ? v.nf : v.sf;
          const si = made ? v.ni : v.si;
          const fq = made ? -q * NEW_WORDS : q * SEC_WORDS;
          const hq = 2 * fq;
          const mc = D.mag[i] + D.cal[i];
          if (klass[pc] === 1) {
            const stk = made ? STK_NEW : STK_FULL;
            if (Number.isFinite(mc)) sf[fq + stk[0]] = mc;
            sf[fq + stk[1]] = D.fpsf[i];
            sf[fq + stk[2]] = D.fpsfErr[i];
            if (si[hq + stk[3]] < 32767) si[hq + stk[3]]++;
            if (si[hq + stk[4]] < 32767) si[hq + stk[4]]++;
            continue;
          }
          if (Number.isFinite(mc)) {
            let e = D.magErr[i];
            if (!(e > 0.001)) e = e > 0 ? 0.001 : 0.1;
            const w = 1 / (e * e);
            const c = si[hq + S_NCODE];
            if (c === 0) {
              sf[fq + S_MAG] = mc; sf[fq + S_MAG_ERR] = e; sf[fq + S_STDEV] = 0; sf[fq + S_MIN] = mc; sf[fq + S_MAX] = mc; sf[fq + S_CHI] = 0;
            } else {
              const mean = sf[fq + S_MAG];
              const W = 1 / (sf[fq + S_MAG_ERR] * sf[fq + S_MAG_ERR]);
              const S = sf[fq + S_STDEV] * sf[fq + S_STDEV] * W;
              const mean2 = mean + (w * (mc - mean)) / (W + w);
              const S2 = S + w * (mc - mean) * (mc - mean2);
              sf[fq + S_MAG] = mean2;
              sf[fq + S_MAG_ERR] = 1 / Math.sqrt(W + w);
              sf[fq + S_STDEV] = Math.sqrt(S2 / (W + w));
              sf[fq + S_CHI] = S2 / c;
              if (mc < sf[fq + S_MIN]) sf[fq + S_MIN] = mc;
              if (mc > sf[fq + S_MAX]) sf[fq + S_MAX] = mc;
            }
            if (c < 32767) { si[hq + S_NCODE] = c + 1; si[hq + S_NUSED] = c + 1; }
          }
          const ap = D.ap[i] + D.cal[i];
          if (Number.isFinite(ap)) {
            const na = si[hq + S_NAP];
            sf[fq + S_AP] = na === 0 ? ap : sf[fq + S_AP] + (ap - sf[fq + S_AP]) / (na + 1);
            if (na < 32767) si[hq + S_NAP] = na + 1;
          }
          const kr = D.kron[i] + D.cal[i];
          if (Number.isFinite(kr)) {
            const nk = si[hq + S_NKRON];
            sf[fq + S_KRON] = nk === 0 ? kr : sf[fq + S_KRON] + (kr - sf[fq + S_KRON]) / (nk + 1);
            if (nk < 32767) si[hq + S_NKRON] = nk + 1;
          }
          if (!(sf[fq + S_QF_MAX] >= qf)) sf[fq + S_QF_MAX] = qf;
          if (!(sf[fq + S_QFP_MAX] >= D.qfp[i])) sf[fq + S_QFP_MAX] = D.qfp[i];
        }
      }
      stored[k] = n;
      totals.detections += n;
    });
    t = timed(options, 'match', t);
    for (const v of views) {
      if (!v.data.dirty) continue;
      options.signal?.throwIfAborted();
      await saveRegion(v.data, {
        compress: db.compress,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.regionHooks ? { hooks: options.regionHooks(v.data.region) } : {}),
      });
      totals.regionsWritten++;
    }
    timed(options, 'write', t);
  });
  return stored;
}
