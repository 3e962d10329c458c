// Reading a pipeline catalogue for addstar: an smf (one exposure: per chip `XYnn.hdr` and an
// `XYnn.psf` table of CMF_PS1_V5 detections) or a cmf (one stack: one detection table). Each
// detection table becomes one image; its rows become Measure rows (IDs left for addstar).
// Everything is checked before the database is touched: a file that is truncated, has a chip
// without IMAGEID, NaN coordinates, duplicate IPP_IDETs or a filter without a photcode is
// rejected whole with an error naming the file, chip and row.
import { basename } from 'node:path';
import { FitsFile, fitsTable, type HduInfo, type Header } from '../fits/index.ts';
import { isIppError } from '../common/index.ts';
import type { NumericArray } from '../table/index.ts';
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
const INT16 = (v: number): number => (Number.isFinite(v) ? Math.max(-32768, Math.min(32767, Math.round(v))) : 0);
const ANGLE16 = (deg: number): number => {
  if (!Number.isFinite(deg)) return 0;
  const u = Math.round((((deg % 360) + 360) % 360) * (0xffff / 360)) & 0xffff;
  return u > 32767 ? u - 65536 : u;
};

function lookup(headers: readonly (Header | undefined)[], key: string): string | number | boolean | bigint | null | undefined {
  for (const h of headers) {
    const v = h?.get(key);
    if (v !== undefined) return v;
  }
  return undefined;
}

function num(headers: readonly (Header | undefined)[], key: string): number | undefined {
  const v = lookup(headers, key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function filterOf(headers: readonly (Header | undefined)[], where: string): Filter {
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

function isDetectionTable(h: HduInfo): boolean {
  if (h.kind !== 'bintable' && h.kind !== 'compressed-table') return false;
  const cols = h.kind === 'bintable' ? h.columns?.map((c) => c.name) : undefined;
  if (cols) return REQUIRED.every((r) => cols.includes(r));
  // A compressed table's columns are in ZFORM/TTYPE: look for the names.
  const names = h.header.cards.filter((c) => /^TTYPE\d+$/.test(c.keyword)).map((c) => String(c.value).trim());
  return REQUIRED.every((r) => names.includes(r));
}

/** Reads and checks a catalogue; throws a DvoError naming what is wrong. */
export async function readCatalogue(path: string, photcodes: PhotcodeTable): Promise<Catalogue> {
  let file: FitsFile;
  try {
    file = await FitsFile.open(path);
  } catch (cause) {
    throw new DvoError('dvo_bad_catalogue', `${path}: cannot be read as a catalogue: ${(cause as Error).message}; the catalogue is rejected`, { cause });
  }
  try {
    return await readOpen(file, path, photcodes);
  } catch (error) {
    if (error instanceof DvoError) throw error;
    if (isIppError(error)) {
      throw new DvoError('dvo_bad_catalogue', `${path}: ${error.message}; the catalogue is rejected`, { cause: error });
    }
    throw error;
  } finally {
    await file.close();
  }
}

async function readOpen(file: FitsFile, path: string, photcodes: PhotcodeTable): Promise<Catalogue> {
  const primary = file.hdus[0].header;
  const tables = file.hdus.filter(isDetectionTable);
  if (tables.length === 0) {
    throw new DvoError('dvo_bad_catalogue', `${path}: no detection table (a table with ${REQUIRED.join(', ')}); is this an smf or cmf?`);
  }
  const total = tables.reduce((n, h) => n + (h.rows ?? 0), 0);
  const store = new ColumnStore(MEASURE_COLUMNS, Math.max(1, total));
  const images: CatalogueImage[] = [];
  const exposure = String(lookup([primary], 'EXPNAME') ?? lookup([primary], 'FPA.OBS') ?? basename(path).replace(/\.(smf|cmf|fits?)$/i, '')).trim();
  for (const h of tables) {
    const extname = h.extname ?? `HDU${h.index}`;
    const chipMatch = /^(XY\d\d)\.psf$/i.exec(extname);
    const chip = chipMatch ? chipMatch[1].toUpperCase() : undefined;
    const hdr = chip ? file.hdus.find((x) => x.extname?.toUpperCase() === `${chip}.HDR`)?.header : undefined;
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
    const mjd = num(headers, 'MJD-OBS');
    if (mjd === undefined || !Number.isFinite(mjd)) throw new DvoError('dvo_bad_catalogue', `${where}: no MJD-OBS; the exposure time is unknown`);
    const unix = (mjd - MJD_UNIX) * 86400;
    const time = Math.floor(unix);
    const msec = Math.min(999, Math.round((unix - time) * 1000));
    const exptime = num(headers, 'EXPTIME') ?? 1;
    const airmass = num(headers, 'AIRMASS') ?? NaN;
    const zp = num(headers, 'ZPT_OBS') ?? num(headers, 'FPA.ZP') ?? photcode.zeroPoint;
    const zpErr = num(headers, 'ZPT_ERR') ?? NaN;
    const mTime = exptime > 0 ? 2.5 * Math.log10(exptime) : 0;
    const table = fitsTable(file, h.index);
    const have = new Set(table.columns.map((c) => c.name));
    const optional = OPTIONAL.filter((c) => have.has(c));
    const names = [...REQUIRED, ...optional];
    const first = store.length;
    const rows = table.rowCount ?? 0;
    store.grow(rows);
    let at = first;
    const unique = new UniqueIds(where);
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
    for await (const b of table.batches({ columns: names })) {
      const c = (name: string): NumericArray | undefined => {
        const i = names.indexOf(name as never);
        return i < 0 ? undefined : b.columns[i].values as NumericArray;
      };
      const idet = c('IPP_IDET')!;
      const ra = c('RA_PSF')!;
      const dec = c('DEC_PSF')!;
      const mag = c('PSF_INST_MAG')!;
      const magErr = c('PSF_INST_MAG_SIG')!;
      const n = b.rowCount;
      if (NAN_SOURCE.length < n) NAN_SOURCE = new Float64Array(n).fill(NaN);
      const f = (name: string): ArrayLike<number> => (c(name) as ArrayLike<number> | undefined) ?? NAN_SOURCE;
      const [x, y, xs, ys, pa, ps, flux, fluxErr, apMag, apFlux, apFluxErr, calMag, calErr, sky, skyErr, chisq, extns, theta, fwMaj, fwMin, qf, qfp, ndof, npix, mxx, mxy, myy, kf, kfe, flags, flags2] =
        OPTIONAL.map(f);
      for (let i = 0; i < n; i++) {
        const r = at + i;
        const a = Number(ra[i]);
        const d = Number(dec[i]);
        if (!(a >= -360 && a <= 720) || !(d >= -90 && d <= 90)) {
          throw new DvoError('dvo_bad_coordinates', `${where} row ${r - first + 1} (IPP_IDET ${String(idet[i])}): RA_PSF, DEC_PSF = ${a}, ${d} is not a position on the sky; the catalogue is rejected (fix the chip's astrometry and ingest it again)`);
        }
        m.ra[r] = a < 0 ? a + 360 : a >= 360 ? a - 360 : a;
        m.dec[r] = d;
        const mi = Number(mag[i]);
        m.mag[r] = mi;
        m.magErr[r] = Number(magErr[i]);
        const cm = Number(calMag[i]);
        m.cal[r] = Number.isFinite(cm) && Number.isFinite(mi) ? cm - mi : zp + mTime;
        m.calErr[r] = Number.isFinite(Number(calErr[i])) ? Number(calErr[i]) : zpErr;
        m.mt[r] = mTime;
        m.ap[r] = Number(apMag[i]);
        m.apErr[r] = NaN;
        const k = Number(kf[i]);
        m.kron[r] = k > 0 ? -2.5 * Math.log10(k) : NaN;
        m.kronErr[r] = k > 0 ? 1.0857362 * Number(kfe[i]) / k : NaN;
        m.fpsf[r] = Number(flux[i]) / exptime;
        m.fpsfErr[r] = Number(fluxErr[i]) / exptime;
        m.fkron[r] = k / exptime;
        m.fkronErr[r] = Number(kfe[i]) / exptime;
        m.fap[r] = Number(apFlux[i]) / exptime;
        m.fapErr[r] = Number(apFluxErr[i]) / exptime;
        m.airmass[r] = airmass;
        m.x[r] = m.xf[r] = Number(x[i]);
        m.y[r] = m.yf[r] = Number(y[i]);
        m.xe[r] = INT16(Number(xs[i]) * 100);
        m.ye[r] = INT16(Number(ys[i]) * 100);
        m.sky[r] = Number(sky[i]) / exptime;
        m.skyErr[r] = Number(skyErr[i]) / exptime;
        m.t[r] = time;
        m.tms[r] = msec;
        m.qf[r] = Number(qf[i]);
        m.qfp[r] = Number(qfp[i]);
        m.chisq[r] = Number(chisq[i]);
        m.ndof[r] = Number.isFinite(Number(ndof[i])) ? Number(ndof[i]) : 0;
        m.npix[r] = Number.isFinite(Number(npix[i])) ? Number(npix[i]) : 0;
        m.extns[r] = Number(extns[i]);
        m.fwx[r] = INT16(Number(fwMaj[i]) * 100);
        m.fwy[r] = INT16(Number(fwMin[i]) * 100);
        m.theta[r] = ANGLE16(Number(theta[i]));
        m.mxx[r] = INT16(Number(mxx[i]) * 100);
        m.mxy[r] = INT16(Number(mxy[i]) * 100);
        m.myy[r] = INT16(Number(myy[i]) * 100);
        m.pa[r] = ANGLE16(Number(pa[i]));
        m.ps[r] = Number(ps[i]);
        m.pc[r] = photcode.code;
        const fl = Number(flags[i]);
        m.flags[r] = Number.isFinite(fl) ? fl >>> 0 : 0;
        const fl2 = Number(flags2[i]);
        m.flags2[r] = Number.isFinite(fl2) ? fl2 | 0 : 0;
      }
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
      sourceId: num(headers, 'SOURCEID') ?? 0, ccdnum: chip ? Number(chip.slice(2)) : 0,
      table: extname, first, count: rows,
    });
  }
  checkAcrossTables(images, path);
  return { path, images, detections: store };
}

// Stands in for an optional column the catalogue lacks.
let NAN_SOURCE = new Float64Array(65536).fill(NaN);

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
