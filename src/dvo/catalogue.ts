// Reading a pipeline catalogue for addstar: an smf (one exposure: per chip `XYnn.hdr` and an
// `XYnn.psf` table of CMF_PS1_V5 detections) or a cmf (one stack: one detection table). Each
// detection table becomes one image; its rows become Measure rows (IDs left for addstar).
// Everything is checked before the database is touched: a file that is truncated, has a chip
// without IMAGEID, NaN coordinates, duplicate IPP_IDETs or a filter without a photcode is
// rejected whole with an error naming the file, chip and row.
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { FitsFile, fitsTable, scanHdus, scannedColumnDefs, type FitsColumnDef, type HduInfo, type HeaderValue, type ScannedHdu } from '../fits/index.ts';
import { isIppError, readAt } from '../common/index.ts';
import { compileFunction, type NumericArray, type Table } from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { DvoError } from './errors.ts';
import { fillDetectionIds } from './ids.ts';
import type { ImageInfo } from './images.ts';
import { MEASURE_COLUMNS } from './layouts.ts';
import { chipPhotcodeName, FILTERS, stackPhotcodeName, type Filter, type PhotcodeTable } from './photcodes.ts';

/** One image of a catalogue and where its detections are in the catalogue's store. */
export interface CatalogueImage extends ImageInfo {
  /** The detection table's EXTNAME. */
  readonly table: string;
  readonly first: number;
  readonly count: number;
}

/** A catalogue read for ingest. */
export interface Catalogue {
  readonly path: string;
  readonly images: readonly CatalogueImage[];
  /** Measure rows of every detection, images one after the other. */
  readonly detections: ColumnStore;
}

const REQUIRED = ['IPP_IDET', 'RA_PSF', 'DEC_PSF', 'PSF_INST_MAG', 'PSF_INST_MAG_SIG'] as const;
const OPTIONAL = [
  'X_PSF', 'Y_PSF', 'X_PSF_SIG', 'Y_PSF_SIG', 'POSANGLE', 'PLTSCALE', 'PSF_INST_FLUX', 'PSF_INST_FLUX_SIG',
  'AP_MAG', 'AP_FLUX', 'AP_FLUX_SIG', 'CAL_PSF_MAG', 'CAL_PSF_MAG_SIG', 'SKY', 'SKY_SIGMA', 'PSF_CHISQ', 'EXT_NSIGMA',
  'PSF_THETA', 'PSF_FWHM_MAJ', 'PSF_FWHM_MIN', 'PSF_QF', 'PSF_QF_PERFECT', 'PSF_NDOF', 'PSF_NPIX',
  'MOMENTS_XX', 'MOMENTS_XY', 'MOMENTS_YY', 'KRON_FLUX', 'KRON_FLUX_ERR', 'FLAGS', 'FLAGS2',
] as const;

const MJD_UNIX = 40587;

/** Keyword values of a header (the reader's Header, or a scanned header's text). */
interface HeaderLike {
  get(keyword: string): HeaderValue | undefined;
}

/** An HDU as the reading below needs it. */
interface SourceHdu {
  readonly index: number;
  readonly kind: string;
  readonly extname?: string;
  readonly rows?: number;
  readonly dataStart: number;
  readonly header: HeaderLike;
}

/** A catalogue's HDUs: scanned (the fits room's scanHdus) or opened by the FITS reader. */
interface Source {
  readonly hdus: readonly SourceHdu[];
  /** Column definitions of a plain binary table. */
  columnDefs(h: SourceHdu): { defs: FitsColumnDef[]; rowBytes: number };
  /** Column names of a tile-compressed table (undefined: none here). */
  compressedNames(h: SourceHdu): string[] | undefined;
  /** The reader's table of an HDU (compressed tables, columns not decoded here). */
  table(h: SourceHdu): Promise<Table>;
  close(): Promise<void>;
}

function fileSource(file: FitsFile): Source {
  return {
    hdus: file.hdus,
    columnDefs: (h) => columnDefsOf(file, h as HduInfo),
    compressedNames: (h) => (h.kind === 'compressed-table'
      ? (h as HduInfo).header.cards.filter((c) => /^TTYPE\d+$/.test(c.keyword)).map((c) => String(c.value).trim())
      : undefined),
    table: async (h) => fitsTable(file, h.index),
    close: () => file.close(),
  };
}

// The reader opens the file only if a table needs its general path.
function scannedSource(path: string, hdus: readonly ScannedHdu[]): Source {
  let file: Promise<FitsFile> | undefined;
  return {
    hdus,
    columnDefs: (h) => scannedColumnDefs(h as ScannedHdu),
    compressedNames: () => undefined,
    table: async (h) => fitsTable(await (file ??= FitsFile.open(path)), h.index),
    close: async () => {
      if (file) await file.then((f) => f.close(), () => {});
    },
  };
}
function lookup(headers: readonly (HeaderLike | undefined)[], key: string): string | number | boolean | bigint | null | undefined {
  for (const h of headers) {
    const v = h?.get(key);
    if (v !== undefined) return v;
  }
  return undefined;
}

// Where each of a table's headers comes from, in look-up order.
const HEADER_NAMES = ['table', 'chip', 'primary'];

/**
 * A numeric keyword: the first header holding it, after checking that no header holds it
 * as something else (a damaged value in any copy rejects the catalogue).
 */
function num(headers: readonly (HeaderLike | undefined)[], key: string, where: string): number | undefined {
  let found: number | undefined;
  for (let i = 0; i < headers.length; i++) {
    const v = headers[i]?.get(key);
    if (v === undefined || v === null) continue;
    const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v)
      : typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eEdD][-+]?\d+)?\s*$/.test(v) ? Number(v.replace(/[dD]/, 'e')) : NaN;
    if (!Number.isFinite(n)) {
      throw new DvoError('dvo_bad_catalogue', `${where}: keyword ${key} in the ${HEADER_NAMES[i]} header is ${JSON.stringify(v)}, not a number; the catalogue is rejected`);
    }
    found ??= n;
  }
  return found;
}

function filterOf(headers: readonly (HeaderLike | undefined)[], where: string): Filter {
  const v = lookup(headers, 'FPA.FILTER') ?? lookup(headers, 'FILTER') ?? lookup(headers, 'FILTERID');
  if (typeof v !== 'string' || v.trim() === '') {
    throw new DvoError('dvo_unknown_photcode', `${where}: no FPA.FILTER keyword, so the photcode is unknown; the catalogue is rejected`);
  }
  const f = v.trim()[0].toLowerCase();
  if (!(FILTERS as readonly string[]).includes(f)) {
    throw new DvoError('dvo_unknown_photcode', `${where}: filter ${v.trim()} has no photcode (known filters: ${FILTERS.join(' ')}); the catalogue is rejected`);
  }
  return f as Filter;
}

function isDetectionTable(src: Source, h: SourceHdu): boolean {
  if (h.kind !== 'bintable' && h.kind !== 'compressed-table') return false;
  // A compressed table's columns are in ZFORM/TTYPE: look for the names.
  const cols = h.kind === 'bintable' ? src.columnDefs(h).defs.map((c) => c.name) : src.compressedNames(h) ?? [];
  return REQUIRED.every((r) => cols.includes(r));
}

// Column definitions shared by tables with the same column cards: an smf's ~60 chip tables
// have the same columns, and parsing ~40 columns' keywords per table cost more than reading
// the table. A table's cards are compared with those of each layout seen (no strings built).
// Bounded: cleared when it holds many layouts.
interface Layout {
  readonly keywords: readonly string[];
  readonly values: readonly unknown[];
  readonly defs: { defs: FitsColumnDef[]; rowBytes: number };
}
const layouts: Layout[] = [];
const MAX_LAYOUTS = 64;

// Every card a definition can depend on: the T* keywords (TFIELDS, TTYPEn, TFORMn, TZEROn...) and NAXIS1.
function definesColumns(keyword: string): boolean {
  return keyword.charCodeAt(0) === 84 || keyword === 'NAXIS1';
}

function sameCards(h: HduInfo, layout: Layout): boolean {
  let k = 0;
  for (const c of h.header.cards) {
    if (!definesColumns(c.keyword)) continue;
    if (k >= layout.keywords.length || layout.keywords[k] !== c.keyword || !Object.is(layout.values[k], c.value)) return false;
    k++;
  }
  return k === layout.keywords.length;
}

/** The column definitions of a plain binary table, parsed once per distinct set of column cards. */
function columnDefsOf(file: FitsFile, h: HduInfo): { defs: FitsColumnDef[]; rowBytes: number } {
  for (const layout of layouts) if (sameCards(h, layout)) return layout.defs;
  // Parsed by the file (errors name the file and HDU as before), then shared.
  const defs = file.columnDefs(h.index);
  const cards = h.header.cards.filter((c) => definesColumns(c.keyword));
  if (layouts.length >= MAX_LAYOUTS) layouts.length = 0;
  layouts.unshift({ keywords: cards.map((c) => c.keyword), values: cards.map((c) => c.value), defs });
  return defs;
}

/** Options of {@link readCatalogue}. */
export interface ReadCatalogueOptions {
  /** False: open the file with the FITS reader, not the header scan (the fits room's scanHdus); the same result, slower. */
  readonly scan?: boolean;
  /** False: decode and convert plain tables column by column, not by code made per layout; the same result, slower. */
  readonly fused?: boolean;
}

/** Reads and checks a catalogue; throws a DvoError naming what is wrong. */
export async function readCatalogue(path: string, photcodes: PhotcodeTable, options: ReadCatalogueOptions = {}): Promise<Catalogue> {
  let src: Source;
  const scanned = options.scan === false ? undefined : await scanHdus(path);
  if (scanned) src = scannedSource(path, scanned);
  else {
    try {
      src = fileSource(await FitsFile.open(path));
    } catch (cause) {
      if (((cause as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
        throw new DvoError('dvo_no_catalogue', `${path}: no such file; the catalogue is rejected`, { cause });
      }
      throw new DvoError('dvo_bad_catalogue', `${path}: cannot be read as a catalogue: ${(cause as Error).message}; the catalogue is rejected`, { cause });
    }
  }
  try {
    return await readOpen(src, path, photcodes, options);
  } catch (error) {
    if (error instanceof DvoError) throw error;
    if (isIppError(error)) {
      throw new DvoError('dvo_bad_catalogue', `${path}: ${error.message}; the catalogue is rejected`, { cause: error });
    }
    throw error;
  } finally {
    await src.close();
  }
}

async function readOpen(src: Source, path: string, photcodes: PhotcodeTable, options: ReadCatalogueOptions): Promise<Catalogue> {
  const primary = src.hdus[0].header;
  // A file cut at an HDU boundary reads as a whole file of fewer extensions: NEXTEND tells.
  const nextend = primary.get('NEXTEND');
  if (typeof nextend === 'number' && src.hdus.length - 1 < nextend) {
    throw new DvoError('dvo_bad_catalogue', `${path}: the primary header says NEXTEND = ${nextend} extensions, but the file holds ${src.hdus.length - 1}; it was cut short`);
  }
  const tables = src.hdus.filter((h) => isDetectionTable(src, h));
  if (tables.length === 0) {
    throw new DvoError('dvo_bad_catalogue', `${path}: no detection table (a table with ${REQUIRED.join(', ')}); is this an smf or cmf?`);
  }
  const scratch = new Scratch(path);
  try {
    return await readTables(src, path, photcodes, tables, primary, scratch, options);
  } finally {
    await scratch.close();
  }
}

async function readTables(
  src: Source, path: string, photcodes: PhotcodeTable, tables: readonly SourceHdu[], primary: HeaderLike, scratch: Scratch, options: ReadCatalogueOptions,
): Promise<Catalogue> {
  const total = tables.reduce((n, h) => n + (h.rows ?? 0), 0);
  const store = new ColumnStore(MEASURE_COLUMNS, Math.max(1, total));
  const images: CatalogueImage[] = [];
  const exposure = String(lookup([primary], 'EXPNAME') ?? lookup([primary], 'FPA.OBS') ?? basename(path).replace(/\.(smf|cmf|fits?)$/i, '')).trim();
  for (const h of tables) {
    const extname = h.extname ?? `HDU${h.index}`;
    const chipMatch = /^(XY\d\d)\.psf$/i.exec(extname);
    const chip = chipMatch ? chipMatch[1].toUpperCase() : undefined;
    const hdr = chip ? src.hdus.find((x) => x.extname?.toUpperCase() === `${chip}.HDR`)?.header : undefined;
    const headers = [h.header, hdr, primary];
    const where = `${path} ${extname}`;
    const imageId = lookup(headers, 'IMAGEID');
    const externId = typeof imageId === 'bigint' ? Number(imageId) : imageId;
    if (typeof externId !== 'number' || !Number.isInteger(externId) || externId < 1 || externId > 0xffffffff) {
      throw new DvoError('dvo_bad_catalogue', `${where}: IMAGEID is ${String(imageId)}; each detection table needs an IMAGEID from 1 to 4294967295`);
    }
    const filter = filterOf(headers, where);
    const skycell = String(lookup(headers, 'SKYCELL') ?? '').trim();
    const photcode = photcodes.byName(chip ? chipPhotcodeName(filter, chip) : stackPhotcodeName(filter), `${where}: `);
    const mjd = num(headers, 'MJD-OBS', where);
    if (mjd === undefined) throw new DvoError('dvo_bad_catalogue', `${where}: no MJD-OBS; the exposure time is unknown`);
    const unix = (mjd - MJD_UNIX) * 86400;
    const time = Math.floor(unix);
    const msec = Math.min(999, Math.round((unix - time) * 1000));
    const exptime = num(headers, 'EXPTIME', where) ?? 1;
    const airmass = num(headers, 'AIRMASS', where) ?? NaN;
    const zp = num(headers, 'ZPT_OBS', where) ?? num(headers, 'FPA.ZP', where) ?? photcode.zeroPoint;
    const zpErr = num(headers, 'ZPT_ERR', where) ?? NaN;
    const mTime = exptime > 0 ? 2.5 * Math.log10(exptime) : 0;
    // A plain table is read here (columnBatches) with shared definitions; others through the general reader.
    const table = h.kind === 'bintable' ? undefined : await src.table(h);
    const have = new Set(table ? table.columns.map((c) => c.name) : src.columnDefs(h).defs.map((d) => d.name));
    const optional = OPTIONAL.filter((c) => have.has(c));
    const names = [...REQUIRED, ...optional];
    const first = store.length;
    const rows = (table ? table.rowCount : h.rows) ?? 0;
    store.grow(rows);
    let at = first;
    let unique = new UniqueIds(where);
    // Fetched after grow: the store does not grow again inside this table.
    const m = {
      ra: store.f64('RA'), dec: store.f64('DEC'), mag: store.f32('MAG'), magErr: store.f32('MAG_ERR'),
      ap: store.f32('M_APER'), apErr: store.f32('M_APER_ERR'), kron: store.f32('M_KRON'), kronErr: store.f32('M_KRON_ERR'),
      cal: store.f32('M_CAL'), calErr: store.f32('MAG_CAL_ERR'), mt: store.f32('M_TIME'),
      fpsf: store.f32('FLUX_PSF'), fpsfErr: store.f32('FLUX_PSF_ERR'), fkron: store.f32('FLUX_KRON'), fkronErr: store.f32('FLUX_KRON_ERR'),
      fap: store.f32('FLUX_AP'), fapErr: store.f32('FLUX_AP_ERR'), airmass: store.f32('AIRMASS'),
      x: store.f32('X_CCD'), y: store.f32('Y_CCD'), xf: store.f32('X_FIX'), yf: store.f32('Y_FIX'),
      sky: store.f32('SKY_FLUX'), skyErr: store.f32('SKY_FLUX_ERR'), t: store.i32('TIME'), tms: store.u16('TIME_MSEC'),
      ext: store.u64('EXT_ID'), qf: store.f32('PSF_QF'), qfp: store.f32('PSF_QF_PEFECT'), chisq: store.f32('PSF_CHISQ'),
      ndof: store.i32('PSF_NDOF'), npix: store.i32('PSF_NPIX'), flags2: store.i32('PHOT_FLAGS2'), extns: store.f32('EXT_NSIGMA'),
      fwx: store.i16('FWHM_MAJOR'), fwy: store.i16('FWHM_MINOR'), theta: store.i16('PSF_THETA'),
      mxx: store.i16('MXX'), mxy: store.i16('MXY'), myy: store.i16('MYY'), pc: store.u16('PHOTCODE'),
      xe: store.i16('X_CCD_ERR'), ye: store.i16('Y_CCD_ERR'), pa: store.i16('POSANGLE'), ps: store.f32('PLTSCALE'),
      flags: store.u32('PHOT_FLAGS'),
    };
    // A plain table's rows go through code made for its layout (fused.ts below) unless a row is
    // bad: then the table is read again column by column, which raises the error as it always has.
    const fused = !table && options.fused !== false ? fusedRows(src, h, names) : undefined;
    let done = false;
    if (fused) {
      const { rowBytes, rows: fn } = fused;
      const chunk = Math.max(1, Math.floor(READ_BYTES / Math.max(1, rowBytes)));
      const k = { inv: 1 / exptime, zpTerm: zp + mTime, zpErr, mTime, airmass, time, msec, photcode: photcode.code };
      let bad = false;
      for (let start = 0; start < rows && !bad; start += chunk) {
        const n = Math.min(chunk, rows - start);
        const bytes = await scratch.read(h.dataStart + start * rowBytes, n * rowBytes);
        if (bytes.length < n * rowBytes) throw new DvoError('dvo_bad_catalogue', `${where}: the file ends within rows ${start + 1}..${start + n}; the catalogue is rejected`);
        const ids = scratch.ids(n).subarray(0, n);
        if (fn(new DataView(bytes.buffer, bytes.byteOffset, n * rowBytes), n, at, m, k, ids) >= 0) { bad = true; break; }
        fillDetectionIds(m.ext, at, externId, ids, n);
        unique.check(ids, at - first, () => Array.from(m.ext.subarray(first, at), (v) => Number(v & 0xffffffffn)));
        at += n;
      }
      if (bad) {
        at = first;
        unique = new UniqueIds(where);
      } else done = true;
    }
    for await (const b of done ? [] : columnBatches(src, h, table, names, where, scratch)) {
      const c = (name: string): NumericArray | undefined => {
        const i = names.indexOf(name as never);
        return i < 0 ? undefined : b.columns[i];
      };
      const idet = c('IPP_IDET')!;
      const n = b.rowCount;
      // Column by column: each helper's loop sees one pair of array types.
      copyF64(m.ra, at, c('RA_PSF')!, n);
      copyF64(m.dec, at, c('DEC_PSF')!, n);
      const bad = checkPositions(m.ra, m.dec, at, n);
      if (bad >= 0) {
        throw new DvoError('dvo_bad_coordinates', `${where} row ${at - first + bad + 1} (IPP_IDET ${String(idet[bad])}): RA_PSF, DEC_PSF = ${m.ra[at + bad]}, ${m.dec[at + bad]} is not a position on the sky; the catalogue is rejected (fix the chip's astrometry and ingest it again)`);
      }
      copyF32(m.mag, at, c('PSF_INST_MAG'), n);
      copyF32(m.magErr, at, c('PSF_INST_MAG_SIG'), n);
      copyF32(m.cal, at, c('CAL_PSF_MAG'), n);
      calibration(m.cal, m.mag, at, n, zp + mTime);
      copyF32(m.calErr, at, c('CAL_PSF_MAG_SIG'), n);
      fillNaN(m.calErr, at, n, zpErr);
      m.mt.fill(mTime, at, at + n);
      copyF32(m.ap, at, c('AP_MAG'), n);
      m.apErr.fill(NaN, at, at + n);
      copyF32(m.fkron, at, c('KRON_FLUX'), n, 1 / exptime);
      copyF32(m.fkronErr, at, c('KRON_FLUX_ERR'), n, 1 / exptime);
      kronMags(m.kron, m.kronErr, m.fkron, m.fkronErr, at, n);
      copyF32(m.fpsf, at, c('PSF_INST_FLUX'), n, 1 / exptime);
      copyF32(m.fpsfErr, at, c('PSF_INST_FLUX_SIG'), n, 1 / exptime);
      copyF32(m.fap, at, c('AP_FLUX'), n, 1 / exptime);
      copyF32(m.fapErr, at, c('AP_FLUX_SIG'), n, 1 / exptime);
      m.airmass.fill(airmass, at, at + n);
      copyF32(m.x, at, c('X_PSF'), n);
      copyF32(m.y, at, c('Y_PSF'), n);
      m.xf.set(m.x.subarray(at, at + n), at);
      m.yf.set(m.y.subarray(at, at + n), at);
      toInt16(m.xe, at, c('X_PSF_SIG'), n, 100);
      toInt16(m.ye, at, c('Y_PSF_SIG'), n, 100);
      copyF32(m.sky, at, c('SKY'), n, 1 / exptime);
      copyF32(m.skyErr, at, c('SKY_SIGMA'), n, 1 / exptime);
      m.t.fill(time, at, at + n);
      m.tms.fill(msec, at, at + n);
      copyF32(m.qf, at, c('PSF_QF'), n);
      copyF32(m.qfp, at, c('PSF_QF_PERFECT'), n);
      copyF32(m.chisq, at, c('PSF_CHISQ'), n);
      toInt32(m.ndof, at, c('PSF_NDOF'), n);
      toInt32(m.npix, at, c('PSF_NPIX'), n);
      copyF32(m.extns, at, c('EXT_NSIGMA'), n);
      toInt16(m.fwx, at, c('PSF_FWHM_MAJ'), n, 100);
      toInt16(m.fwy, at, c('PSF_FWHM_MIN'), n, 100);
      toAngle16(m.theta, at, c('PSF_THETA'), n);
      toInt16(m.mxx, at, c('MOMENTS_XX'), n, 100);
      toInt16(m.mxy, at, c('MOMENTS_XY'), n, 100);
      toInt16(m.myy, at, c('MOMENTS_YY'), n, 100);
      toAngle16(m.pa, at, c('POSANGLE'), n);
      copyF32(m.ps, at, c('PLTSCALE'), n);
      m.pc.fill(photcode.code, at, at + n);
      toUint32(m.flags, at, c('FLAGS'), n);
      toInt32(m.flags2, at, c('FLAGS2'), n);
      const ids = idet instanceof Uint32Array ? idet : Uint32Array.from(idet as ArrayLike<number>, (v) => Number(v) >>> 0);
      fillDetectionIds(m.ext, at, externId, ids, n);
      unique.check(ids, at - first, () => Array.from(m.ext.subarray(first, at), (v) => Number(v & 0xffffffffn)));
      at += n;
    }
    if (at - first !== rows) throw new DvoError('dvo_bad_catalogue', `${where}: the table gave ${at - first} rows, not the ${rows} its header states`);
    const { ra, dec, radius } = footprint(m.ra, m.dec, first, rows);
    images.push({
      externId, name: `${exposure}:${chip ?? (skycell || extname)}`, photcode: photcode.code, time, exptime, airmass, zeroPoint: zp,
      raCenter: ra, decCenter: dec, radius, nstar: rows,
      sourceId: num(headers, 'SOURCEID', where) ?? 0, ccdnum: chip ? Number(chip.slice(2)) : 0,
      table: extname, first, count: rows,
    });
  }
  checkAcrossTables(images, path);
  return { path, images, detections: store };
}

/** Columns of a batch of rows, in the order asked for (arrays may be longer than the batch). */
interface RawBatch {
  readonly rowCount: number;
  readonly columns: readonly NumericArray[];
}

// Bytes of rows read at a time, and decoded a tile at a time (the tile stays in the cache
// while each column is taken out of it).
const READ_BYTES = 4 << 20;
const TILE_BYTES = 32 << 10;

/**
 * The columns `names` of a detection table, batch by batch. A plain binary table whose
 * columns are single numbers (E, D, J, I, B, with the TZERO of unsigned types only) is decoded
 * here straight from the bytes into arrays reused for every batch: the general reader makes
 * new arrays (stored, then converted) per column per batch, and a catalogue has ~60 tables of
 * ~40 columns. Anything else goes through the general reader.
 */
async function* columnBatches(src: Source, h: SourceHdu, table: Table | undefined, names: readonly string[], where: string, scratch: Scratch): AsyncGenerator<RawBatch> {
  const plan = h.kind === 'bintable' ? directPlan(src, h, names) : undefined;
  if (!plan) {
    for await (const b of (table ?? await src.table(h)).batches({ columns: [...names] })) yield { rowCount: b.rowCount, columns: b.columns.map((c) => c.values as NumericArray) };
    return;
  }
  const { rowBytes, cols } = plan;
  const rows = h.rows ?? 0;
  const chunk = Math.max(1, Math.floor(READ_BYTES / Math.max(1, rowBytes)));
  const size = Math.min(chunk, rows);
  const out = cols.map((c, k) => scratch.get(k, c.Ctor, size));
  const tile = Math.max(1, Math.floor(TILE_BYTES / Math.max(1, rowBytes)));
  for (let start = 0; start < rows; start += chunk) {
    const n = Math.min(chunk, rows - start);
    const bytes = await scratch.read(h.dataStart + start * rowBytes, n * rowBytes);
    if (bytes.length < n * rowBytes) throw new DvoError('dvo_bad_catalogue', `${where}: the file ends within rows ${start + 1}..${start + n}; the catalogue is rejected`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, n * rowBytes);
    for (let t = 0; t < n; t += tile) {
      const end = Math.min(n, t + tile);
      for (let k = 0; k < cols.length; k++) {
        const c = cols[k];
        switch (c.code) {
          case 'E': getF32(dv, out[k] as Float32Array, t, end, c.offset, rowBytes); break;
          case 'D': getF64(dv, out[k] as Float64Array, t, end, c.offset, rowBytes); break;
          case 'J': getI32(dv, out[k] as Int32Array | Uint32Array, t, end, c.offset, rowBytes, c.flip); break;
          case 'I': getI16(dv, out[k] as Int16Array | Uint16Array, t, end, c.offset, rowBytes, c.flip); break;
          default: getU8(bytes, out[k] as Uint8Array, t, end, c.offset, rowBytes); break;
        }
      }
    }
    yield { rowCount: n, columns: out.map((a) => a.subarray(0, n)) };
  }
}

/**
 * Column arrays reused from table to table of a catalogue (a new typed array costs ~2 µs),
 * and the bytes of rows read into one buffer through a handle of our own: a new buffer per
 * read would be ~360 MB of allocations per 16 catalogues, and every ~64 MB of them costs V8 a
 * full garbage collection.
 */
class Scratch {
  private readonly arrays: NumericArray[][] = [];
  private readonly path: string;
  private handle: FileHandle | undefined;
  private bytes = new Uint8Array(0);
  private idArray = new Uint32Array(0);

  constructor(path: string) {
    this.path = path;
  }

  /** `length` bytes at `position` (fewer at the end of the file); valid until the next read. */
  async read(position: number, length: number): Promise<Uint8Array> {
    this.handle ??= await open(this.path, 'r');
    if (this.bytes.length < length) this.bytes = new Uint8Array(length);
    return this.bytes.subarray(0, await readAt(this.handle, this.bytes.subarray(0, length), position));
  }

  /** An array for `n` IPP_IDETs (reused). */
  ids(n: number): Uint32Array {
    if (this.idArray.length < n) this.idArray = new Uint32Array(n);
    return this.idArray;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }

  get(slot: number, Ctor: Ctor, size: number): NumericArray {
    const mine = (this.arrays[slot] ??= []);
    let a = mine.find((x) => x.constructor === Ctor);
    if (!a || a.length < size) {
      if (a) mine.splice(mine.indexOf(a), 1);
      a = new Ctor(size);
      mine.push(a);
    }
    return a;
  }
}

type DirectCode = 'E' | 'D' | 'J' | 'I' | 'B';
type Ctor = Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor
  | Int16ArrayConstructor | Uint16ArrayConstructor | Uint8ArrayConstructor;

// How each asked-for column is decoded, or undefined when one of them needs the general reader.
function directPlan(src: Source, h: SourceHdu, names: readonly string[]): { rowBytes: number; cols: { code: DirectCode; offset: number; flip: number; Ctor: Ctor }[] } | undefined {
  const { defs, rowBytes } = src.columnDefs(h);
  const cols: { code: DirectCode; offset: number; flip: number; Ctor: Ctor }[] = [];
  for (const name of names) {
    const found = defs.filter((d) => d.name === name);
    if (found.length !== 1) return undefined;
    const d = found[0];
    if (d.repeat !== 1 || d.tscal !== 1 || d.tnull !== undefined || d.tdim !== undefined) return undefined;
    const tz = Number(d.tzero);
    const at = { offset: d.byteOffset };
    if (d.code === 'E' && tz === 0) cols.push({ code: 'E', ...at, flip: 0, Ctor: Float32Array });
    else if (d.code === 'D' && tz === 0) cols.push({ code: 'D', ...at, flip: 0, Ctor: Float64Array });
    else if (d.code === 'J' && tz === 0) cols.push({ code: 'J', ...at, flip: 0, Ctor: Int32Array });
    else if (d.code === 'J' && tz === 2 ** 31) cols.push({ code: 'J', ...at, flip: 0x80000000, Ctor: Uint32Array });
    else if (d.code === 'I' && tz === 0) cols.push({ code: 'I', ...at, flip: 0, Ctor: Int16Array });
    else if (d.code === 'I' && tz === 32768) cols.push({ code: 'I', ...at, flip: 0x8000, Ctor: Uint16Array });
    else if (d.code === 'B' && tz === 0) cols.push({ code: 'B', ...at, flip: 0, Ctor: Uint8Array });
    else return undefined;
  }
  return { rowBytes, cols };
}

function getF32(dv: DataView, out: Float32Array, start: number, end: number, offset: number, stride: number): void {
  for (let r = start, p = start * stride + offset; r < end; r++, p += stride) out[r] = dv.getFloat32(p);
}

function getF64(dv: DataView, out: Float64Array, start: number, end: number, offset: number, stride: number): void {
  for (let r = start, p = start * stride + offset; r < end; r++, p += stride) out[r] = dv.getFloat64(p);
}

function getI32(dv: DataView, out: Int32Array | Uint32Array, start: number, end: number, offset: number, stride: number, flip: number): void {
  for (let r = start, p = start * stride + offset; r < end; r++, p += stride) out[r] = dv.getInt32(p) ^ flip;
}

function getI16(dv: DataView, out: Int16Array | Uint16Array, start: number, end: number, offset: number, stride: number, flip: number): void {
  for (let r = start, p = start * stride + offset; r < end; r++, p += stride) out[r] = dv.getInt16(p) ^ flip;
}

function getU8(bytes: Uint8Array, out: Uint8Array, start: number, end: number, offset: number, stride: number): void {
  for (let r = start, p = start * stride + offset; r < end; r++, p += stride) out[r] = bytes[p];
}

function copyF64(dst: Float64Array, at: number, src: NumericArray, n: number): void {
  if (src instanceof Float64Array) dst.set(src.subarray(0, n), at);
  else for (let i = 0; i < n; i++) dst[at + i] = Number(src[i]);
}

/** Copies a column (times `scale`); NaN where the catalogue lacks it. */
function copyF32(dst: Float32Array, at: number, src: NumericArray | undefined, n: number, scale = 1): void {
  if (!src) dst.fill(NaN, at, at + n);
  else if (src instanceof Float32Array) {
    if (scale === 1) dst.set(src.subarray(0, n), at);
    else scaleF32(dst, at, src, n, scale);
  } else for (let i = 0; i < n; i++) dst[at + i] = Number(src[i]) * scale;
}

function scaleF32(dst: Float32Array, at: number, src: Float32Array, n: number, scale: number): void {
  for (let i = 0; i < n; i++) dst[at + i] = src[i] * scale;
}

/** Index (in the batch) of the first position not on the sky, or -1; RA brought into [0, 360). */
function checkPositions(ra: Float64Array, dec: Float64Array, at: number, n: number): number {
  for (let i = at; i < at + n; i++) {
    const a = ra[i];
    const d = dec[i];
    if (!(a >= -360 && a <= 720) || !(d >= -90 && d <= 90)) return i - at;
    if (a < 0) ra[i] = a + 360;
    else if (a >= 360) ra[i] = a - 360;
  }
  return -1;
}

/** M_CAL: CAL_PSF_MAG − PSF_INST_MAG where both are known, else the image's zero point term. */
function calibration(cal: Float32Array, mag: Float32Array, at: number, n: number, fallback: number): void {
  for (let i = at; i < at + n; i++) {
    const v = cal[i] - mag[i];
    cal[i] = v === v ? v : fallback;
  }
}

function fillNaN(dst: Float32Array, at: number, n: number, value: number): void {
  for (let i = at; i < at + n; i++) if (dst[i] !== dst[i]) dst[i] = value;
}

/** Kron magnitudes from Kron fluxes. */
function kronMags(mag: Float32Array, err: Float32Array, flux: Float32Array, fluxErr: Float32Array, at: number, n: number): void {
  for (let i = at; i < at + n; i++) {
    const k = flux[i];
    mag[i] = k > 0 ? -2.5 * Math.log10(k) : NaN;
    err[i] = k > 0 ? (1.0857362 * fluxErr[i]) / k : NaN;
  }
}

/** Scaled, rounded and clamped to 16 bits (0 where missing). */
function toInt16(dst: Int16Array, at: number, src: NumericArray | undefined, n: number, scale: number): void {
  if (!src) { dst.fill(0, at, at + n); return; }
  // The usual float columns get a loop of their own (one array type: no per-value dispatch).
  if (src instanceof Float32Array) { toInt16F32(dst, at, src, n, scale); return; }
  for (let i = 0; i < n; i++) {
    const v = Number(src[i]) * scale;
    dst[at + i] = v === v ? (v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v)) : 0;
  }
}

/** Degrees to the layout's 16-bit angle (0xffff/360 per degree). */
function toAngle16(dst: Int16Array, at: number, src: NumericArray | undefined, n: number): void {
  if (!src) { dst.fill(0, at, at + n); return; }
  if (src instanceof Float32Array) { toAngle16F32(dst, at, src, n); return; }
  for (let i = 0; i < n; i++) {
    const deg = Number(src[i]);
    if (!Number.isFinite(deg)) { dst[at + i] = 0; continue; }
    const u = Math.round((((deg % 360) + 360) % 360) * (0xffff / 360)) & 0xffff;
    dst[at + i] = u > 32767 ? u - 65536 : u;
  }
}

function toInt16F32(dst: Int16Array, at: number, src: Float32Array, n: number, scale: number): void {
  for (let i = 0; i < n; i++) {
    const v = src[i] * scale;
    dst[at + i] = v === v ? (v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v)) : 0;
  }
}

function toAngle16F32(dst: Int16Array, at: number, src: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) dst[at + i] = angleF32(src[i]);
}

function toInt32(dst: Int32Array, at: number, src: NumericArray | undefined, n: number): void {
  if (!src) { dst.fill(0, at, at + n); return; }
  if (src instanceof Int32Array) { dst.set(src.subarray(0, n), at); return; }
  for (let i = 0; i < n; i++) {
    const v = Number(src[i]);
    dst[at + i] = Number.isFinite(v) ? v | 0 : 0;
  }
}

function toUint32(dst: Uint32Array, at: number, src: NumericArray | undefined, n: number): void {
  if (!src) { dst.fill(0, at, at + n); return; }
  for (let i = 0; i < n; i++) {
    const v = Number(src[i]);
    dst[at + i] = Number.isFinite(v) ? v >>> 0 : 0;
  }
}

/** Checks that the IPP_IDETs of one table, given batch by batch, never repeat. */
class UniqueIds {
  private readonly where: string;
  private last = -1;
  private seen: Set<number> | undefined;

  constructor(where: string) {
    this.where = where;
  }

  // Strictly increasing IDs (the usual case) need no set.
  check(ids: Uint32Array, offset: number, earlier: () => Iterable<number>): void {
    if (!this.seen) {
      let ok = ids.length === 0 || ids[0] > this.last;
      for (let i = 1; ok && i < ids.length; i++) ok = ids[i] > ids[i - 1];
      if (ok) {
        if (ids.length) this.last = ids[ids.length - 1];
        return;
      }
      // The rows before this batch had no repeats; their IDs come back from the store.
      this.seen = new Set(earlier());
    }
    for (let i = 0; i < ids.length; i++) {
      if (this.seen.has(ids[i])) {
        throw new DvoError('dvo_bad_catalogue', `${this.where} row ${offset + i + 1}: IPP_IDET ${ids[i]} appears twice in the table; detection IDs would not be unique`);
      }
      this.seen.add(ids[i]);
    }
  }
}

function checkAcrossTables(images: readonly CatalogueImage[], path: string): void {
  const seen = new Map<number, string>();
  for (const im of images) {
    const other = seen.get(im.externId);
    if (other) throw new DvoError('dvo_image_conflict', `${path}: tables ${other} and ${im.table} have the same IMAGEID ${im.externId}`);
    seen.set(im.externId, im.table);
  }
}

/** Centre and radius (degrees) of a set of positions; RA taken relative to the first, so RA 0 is no edge. */
function footprint(ra: Float64Array, dec: Float64Array, first: number, n: number): { ra: number; dec: number; radius: number } {
  if (n === 0) return { ra: 0, dec: 0, radius: 0 };
  const ra0 = ra[first];
  let sx = 0;
  let sd = 0;
  for (let i = first; i < first + n; i++) {
    let d = ra[i] - ra0;
    if (d > 180) d -= 360; else if (d < -180) d += 360;
    sx += d;
    sd += dec[i];
  }
  let cra = ra0 + sx / n;
  cra = cra < 0 ? cra + 360 : cra >= 360 ? cra - 360 : cra;
  const cdec = sd / n;
  let r2 = 0;
  for (let i = first; i < first + n; i++) {
    let d = ra[i] - cra;
    if (d > 180) d -= 360; else if (d < -180) d += 360;
    const x = d * Math.cos(dec[i] * Math.PI / 180);
    const y = dec[i] - cdec;
    const q = x * x + y * y;
    if (q > r2) r2 = q;
  }
  return { ra: cra, dec: cdec, radius: Math.sqrt(r2) };
}

/** The Measure columns a table's rows are converted into (see readTables). */
type MeasureArrays = Readonly<Record<string, Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | BigUint64Array>>;

/** Per-table values of the conversion: 1/EXPTIME, the zero point term, and the values every row gets. */
interface TableConstants {
  readonly inv: number;
  readonly zpTerm: number;
  readonly zpErr: number;
  readonly mTime: number;
  readonly airmass: number;
  readonly time: number;
  readonly msec: number;
  readonly photcode: number;
}

/**
 * Rows of a plain table converted straight from their bytes into the Measure columns from
 * row `at` on, IPP_IDETs into `ids`; returns -1, or the first row whose position is not on
 * the sky (its error is then raised by the column-by-column path).
 */
type FusedRows = (dv: DataView, n: number, at: number, m: MeasureArrays, k: TableConstants, ids: Uint32Array) => number;

const fusedCache = new Map<string, FusedRows | null>();

/**
 * The conversions of readTables (the column-by-column path below, which stays for tables
 * this does not take and for errors) as one loop over the rows, made per table layout: each
 * value read from the row bytes once and written once, where the columns path decodes into
 * arrays and then copies and converts each column (two passes over ~45 columns of every row).
 * The same operations in the same order, so the same values to the bit (a test compares).
 */
function fusedRows(src: Source, h: SourceHdu, names: readonly string[]): { rowBytes: number; rows: FusedRows } | undefined {
  const plan = directPlan(src, h, names);
  if (!plan) return undefined;
  const key = `${plan.rowBytes}|${names.map((nm, i) => `${nm}:${plan.cols[i].code}:${plan.cols[i].offset}:${plan.cols[i].flip}`).join(',')}`;
  let fn = fusedCache.get(key);
  if (fn === undefined) {
    fn = compileFused(plan.rowBytes, names, plan.cols);
    if (fusedCache.size >= 64) fusedCache.clear();
    fusedCache.set(key, fn);
  }
  return fn ? { rowBytes: plan.rowBytes, rows: fn } : undefined;
}

function compileFused(rowBytes: number, names: readonly string[], cols: readonly { code: DirectCode; offset: number; flip: number }[]): FusedRows | null {
  // A column's value in row `p` as the columns path has it in its decoded array.
  const read = (name: string): string | undefined => {
    const i = names.indexOf(name);
    if (i < 0) return undefined;
    const { code, offset, flip } = cols[i];
    const at = `p + ${offset}`;
    switch (code) {
      case 'E': return `dv.getFloat32(${at})`;
      case 'D': return `dv.getFloat64(${at})`;
      case 'J': return flip ? `((dv.getInt32(${at}) ^ ${flip | 0}) >>> 0)` : `dv.getInt32(${at})`;
      case 'I': return flip ? `((dv.getInt16(${at}) ^ ${flip}) & 0xffff)` : `dv.getInt16(${at})`;
      default: return `dv.getUint8(${at})`;
    }
  };
  const isF32 = (name: string): boolean => cols[names.indexOf(name)]?.code === 'E';
  const body: string[] = [];
  // copyF32: the value (times the scale) as a 32-bit float, or NaN without the column.
  const f32 = (dst: string, name: string, scale?: string): void => {
    const v = read(name);
    body.push(`${dst}[i] = ${v === undefined ? 'NaN' : scale ? `${v} * ${scale}` : v};`);
  };
  const int16 = (dst: string, name: string): void => {
    const v = read(name);
    body.push(v === undefined ? `${dst}[i] = 0;` : `v = ${v} * 100; ${dst}[i] = v === v ? (v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v)) : 0;`);
  };
  const angle16 = (dst: string, name: string): void => {
    const v = read(name);
    body.push(v === undefined ? `${dst}[i] = 0;` : `${dst}[i] = ${isF32(name) ? 'angleF32' : 'angleAny'}(${v});`);
  };
  const int32 = (dst: string, name: string, unsigned: boolean): void => {
    const v = read(name);
    body.push(v === undefined ? `${dst}[i] = 0;` : `v = ${v}; ${dst}[i] = Number.isFinite(v) ? v ${unsigned ? '>>> 0' : '| 0'} : 0;`);
  };
  body.push(`ids[r] = ${read('IPP_IDET')} >>> 0;`);
  body.push(`let a = ${read('RA_PSF')};`, `const d = ${read('DEC_PSF')};`);
  body.push('if (!(a >= -360 && a <= 720) || !(d >= -90 && d <= 90)) return r;');
  body.push('if (a < 0) a += 360; else if (a >= 360) a -= 360;', 'ra[i] = a;', 'dec[i] = d;');
  f32('mag', 'PSF_INST_MAG');
  f32('magErr', 'PSF_INST_MAG_SIG');
  // M_CAL: CAL_PSF_MAG − PSF_INST_MAG of the stored floats, else the zero point term.
  const cal = read('CAL_PSF_MAG');
  body.push(cal === undefined ? 'cal[i] = zpTerm;' : `cal[i] = ${cal}; v = cal[i] - mag[i]; cal[i] = v === v ? v : zpTerm;`);
  const calErr = read('CAL_PSF_MAG_SIG');
  body.push(calErr === undefined ? 'calErr[i] = zpErr;' : `calErr[i] = ${calErr}; if (calErr[i] !== calErr[i]) calErr[i] = zpErr;`);
  body.push('mt[i] = mTime;');
  f32('ap', 'AP_MAG');
  body.push('apErr[i] = NaN;');
  f32('fkron', 'KRON_FLUX', 'inv');
  f32('fkronErr', 'KRON_FLUX_ERR', 'inv');
  body.push('v = fkron[i]; kron[i] = v > 0 ? -2.5 * Math.log10(v) : NaN; kronErr[i] = v > 0 ? (1.0857362 * fkronErr[i]) / v : NaN;');
  f32('fpsf', 'PSF_INST_FLUX', 'inv');
  f32('fpsfErr', 'PSF_INST_FLUX_SIG', 'inv');
  f32('fap', 'AP_FLUX', 'inv');
  f32('fapErr', 'AP_FLUX_SIG', 'inv');
  body.push('airmassCol[i] = airmass;');
  f32('x', 'X_PSF');
  f32('y', 'Y_PSF');
  body.push('xf[i] = x[i];', 'yf[i] = y[i];');
  int16('xe', 'X_PSF_SIG');
  int16('ye', 'Y_PSF_SIG');
  f32('sky', 'SKY', 'inv');
  f32('skyErr', 'SKY_SIGMA', 'inv');
  body.push('t[i] = time;', 'tms[i] = msec;');
  f32('qf', 'PSF_QF');
  f32('qfp', 'PSF_QF_PERFECT');
  f32('chisq', 'PSF_CHISQ');
  int32('ndof', 'PSF_NDOF', false);
  int32('npix', 'PSF_NPIX', false);
  f32('extns', 'EXT_NSIGMA');
  int16('fwx', 'PSF_FWHM_MAJ');
  int16('fwy', 'PSF_FWHM_MIN');
  angle16('theta', 'PSF_THETA');
  int16('mxx', 'MOMENTS_XX');
  int16('mxy', 'MOMENTS_XY');
  int16('myy', 'MOMENTS_YY');
  angle16('pa', 'POSANGLE');
  f32('ps', 'PLTSCALE');
  body.push('pc[i] = photcode;');
  int32('flags', 'FLAGS', true);
  int32('flags2', 'FLAGS2', false);
  const arrays = ['ra', 'dec', 'mag', 'magErr', 'cal', 'calErr', 'mt', 'ap', 'apErr', 'fkron', 'fkronErr', 'kron', 'kronErr', 'fpsf', 'fpsfErr', 'fap', 'fapErr',
    'x', 'y', 'xf', 'yf', 'xe', 'ye', 'sky', 'skyErr', 't', 'tms', 'qf', 'qfp', 'chisq', 'ndof', 'npix', 'extns', 'fwx', 'fwy', 'theta', 'mxx', 'mxy', 'myy',
    'pa', 'ps', 'pc', 'flags', 'flags2'];
  const source = `return function fusedRows(dv, n, at, m, k, ids) {
  const ${arrays.map((a) => `${a} = m.${a}`).join(', ')}, airmassCol = m.airmass;
  const inv = k.inv, zpTerm = k.zpTerm, zpErr = k.zpErr, mTime = k.mTime, airmass = k.airmass, time = k.time, msec = k.msec, photcode = k.photcode;
  let v = 0;
  for (let r = 0, p = 0; r < n; r++, p += ${rowBytes}) {
    const i = at + r;
    ${body.join('\n    ')}
  }
  return -1;
};`;
  return compileFunction<FusedRows>(source, { angleF32, angleAny });
}

// toAngle16F32 and toAngle16 for one value.
function angleF32(deg: number): number {
  if (!(deg - deg === 0)) return 0;
  // ((deg % 360) + 360) % 360 without the remainders (slow) in the usual range: there the
  // sums below are what the remainders give, to the bit.
  let d: number;
  if (deg >= 0 && deg < 360) d = (deg + 360) - 360;
  else if (deg >= -360 && deg < 0) d = deg + 360;
  else d = ((deg % 360) + 360) % 360;
  if (d >= 360) d -= 360;
  const u = Math.round(d * (0xffff / 360)) & 0xffff;
  return u > 32767 ? u - 65536 : u;
}

function angleAny(deg: number): number {
  if (!Number.isFinite(deg)) return 0;
  const u = Math.round((((deg % 360) + 360) % 360) * (0xffff / 360)) & 0xffff;
  return u > 32767 ? u - 65536 : u;
}
