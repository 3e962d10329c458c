// One exposure's smf file: a primary header with the exposure's keywords, then per chip a
// header extension `XYnn.hdr` (an IMAGE with no data: the chip's keywords and WCS) and a
// detection table `XYnn.psf` in the CMF_PS1_V5 layout (extension names as the GPC1 camera
// configuration's EXTNAME.RULES give them: CMF.HEAD {CHIP.NAME}.hdr, CMF.DATA
// {CHIP.NAME}.psf). Beside it, truth/<smf>.truth.fits holds a truth table per chip.
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Header } from '../fits/index.ts';
import { CandidateBuffer, GatherBuffer } from './candidates.ts';
import { CMF_PS1_V5, TRUTH_LAYOUT } from './cmf-layout.ts';
import type { DefectKind, DefectRecord } from './defects.ts';
import { MeasureScratch, SIGN32, maxRows, measureChip, type ChipConditions, type ChipResult } from './detections.ts';
import { CHIPS, CHIP_NX, CHIP_NY, DEG_PER_PIXEL, FPA_CENTER, PIXEL_SCALE, chipWcs, locateOnChip, type Chip } from './focal-plane.ts';
import { FitsStream, HduBuffer, cardOffset, emptyImageHeader, fileHeader, tableHeader, zeroPadding } from './fits-out.ts';
import { card, fcard, manifestWcs, wcsCards } from './headers.ts';
import type { ManifestChip, ManifestExposure } from './manifest.ts';
import { Random, hashSeed, hashText } from './random.ts';
import { exposureTiles } from './footprint.ts';
import { FILTERS, GROUPS, MAG_BRIGHT, MAX_R_MINUS, type SkyModel, type SkyTile } from './sky-model.ts';
import type { TruthObjects } from './truth.ts';
import { LIMIT_MARGIN, READ_VAR, SATURATION, filterId, round, type PlannedExposure } from './survey-plan.ts';

/** EXTTYPE of the smf detection tables. */
export const SMF_EXTTYPE = CMF_PS1_V5.name;
/** EXTTYPE of the truth tables. */
export const TRUTH_EXTTYPE = TRUTH_LAYOUT.name;

/** What the writers share from exposure to exposure: the sky, scratch space, buffers. */
export class WriterState {
  readonly sky: SkyModel;
  readonly seed: number;
  readonly gathered = new GatherBuffer();
  readonly sorted = new CandidateBuffer();
  readonly measure = new MeasureScratch();
  readonly rows = new HduBuffer();
  readonly truth = new HduBuffer();
  readonly onChipScratch = new Float64Array(3);
  readonly objects: TruthObjects;

  constructor(sky: SkyModel, seed: number, objects: TruthObjects) {
    this.sky = sky;
    this.seed = seed;
    this.objects = objects;
  }
}

/** What writing one exposure gives. */
export interface ExposureResult {
  readonly manifest: ManifestExposure;
  readonly defects: DefectRecord[];
  readonly bytes: number;
  readonly spurious: number;
}

const RAD_TO_PIX = 180 / Math.PI / DEG_PER_PIXEL;

/** Gathers the true objects an exposure may detect, with their chip and chip pixel position. */
export function gatherExposure(state: WriterState, e: PlannedExposure): SkyTile[] {
  const c = state.gathered;
  c.length = 0;
  const f = FILTERS.indexOf(e.filter);
  const maxMag = e.limit + LIMIT_MARGIN;
  const a0 = (e.ra * Math.PI) / 180;
  const d0 = (e.dec * Math.PI) / 180;
  const p: Pointing = { sinA0: Math.sin(a0), cosA0: Math.cos(a0), sinD0: Math.sin(d0), cosD0: Math.cos(d0) };
  const tiles: SkyTile[] = [];
  c.tiles = tiles;
  for (const id of exposureTiles(e.ra, e.dec)) {
    const t = state.sky.tile(id);
    const ti = tiles.push(t) - 1;
    // Whole magnitude slices too faint for this filter are skipped (objects are stored
    // slice by slice, brightest first, per type).
    for (let g = 0; g < GROUPS; g++) {
      const start = t.groupStart[g];
      if (start < 0) continue;
      if (MAG_BRIGHT + (g >> 1) * 0.5 - MAX_R_MINUS[g & 1][f] > maxMag) continue;
      gatherGroup(c, t, ti, start, start + t.groupCount[g], f, maxMag, p, state.onChipScratch);
    }
  }
  return tiles;
}

/** The sines and cosines of an exposure's boresight. */
interface Pointing {
  readonly sinA0: number;
  readonly cosA0: number;
  readonly sinD0: number;
  readonly cosD0: number;
}

// A function called per group of a tile, not a loop inside gatherExposure (called once per
// exposure): that loop ran mostly in on-stack-replaced code, left at every exit from an
// inner loop, and boxed every double it computed (~12 M heap numbers per 12 exposures).
function gatherGroup(
  c: GatherBuffer, t: SkyTile, ti: number, start: number, end: number, f: number, maxMag: number, p: Pointing, out: Float64Array,
): void {
  const { mag, sinRa, cosRa, sinDec, type, reff } = t;
  const { sinA0, cosA0, sinD0, cosD0 } = p;
  const xc = FPA_CENTER.x;
  const yc = FPA_CENTER.y;
  // Room for every object of the group first, so the loop keeps the columns in locals.
  c.ensure(c.length + end - start);
  const { chip: cChip, x: cx, y: cy, mag: cMag, type: cType, reff: cReff, srcTile: cTile, srcIndex: cIndex } = c;
  let j = c.length;
  for (let k = start; k < end; k++) {
    const m = mag[k * 6 + f];
    if (m > maxMag) continue;
    const sa = sinRa[k];
    const ca = cosRa[k];
    const sd = sinDec[k];
    const cd = Math.sqrt(1 - sd * sd);
    const cosDa = ca * cosA0 + sa * sinA0;
    const sinDa = sa * cosA0 - ca * sinA0;
    const cosc = sinD0 * sd + cosD0 * cd * cosDa;
    if (cosc <= 0) continue;
    const X = xc - ((cd * sinDa) / cosc) * RAD_TO_PIX;
    const Y = yc + ((cosD0 * sd - sinD0 * cd * cosDa) / cosc) * RAD_TO_PIX;
    const chip = locateOnChip(X, Y, out);
    if (chip < 0) continue;
    cChip[j] = chip;
    cx[j] = out[1];
    cy[j] = out[2];
    cMag[j] = m;
    cType[j] = type[k];
    cReff[j] = reff[k];
    cTile[j] = ti;
    cIndex[j] = k;
    j++;
  }
  c.length = j;
}

/** A chip's conditions in an exposure: the exposure's, varied slightly across the focal plane. */
export function chipConditions(seed: number, e: PlannedExposure, chip: Chip, candidates: number): ChipConditions & { fwhm: number; astromSigma: number } {
  const rng = new Random(hashSeed(seed, hashText('chip'), e.expId, chip.index));
  const fwhm = e.fwhm * (1 + 0.03 * rng.normal());
  const px = fwhm / PIXEL_SCALE;
  const astromSigma = 0.03 + 0.03 * rng.uniform();
  return {
    exptime: e.exptime,
    zpt: round(e.zpt + 0.005 * rng.normal(), 4),
    zptErr: e.zptErr,
    sky: round(e.sky * (1 + 0.02 * rng.normal()), 3),
    readVar: READ_VAR,
    fwhmMaj: round(px * (1 + e.ellipticity / 2), 4),
    fwhmMin: round(px * (1 - e.ellipticity / 2), 4),
    psfTheta: round(e.psfAngle + 5 * rng.normal(), 3),
    psfCore: round(0.5 + 0.1 * rng.uniform(), 4),
    saturation: SATURATION,
    pixelScale: PIXEL_SCALE,
    posAngle: e.posAngle,
    nFrames: 1,
    wcs: chipWcs(chip, e.ra, e.dec),
    nx: CHIP_NX,
    ny: CHIP_NY,
    astromRa: astromSigma * rng.normal() * 0.5,
    astromDec: astromSigma * rng.normal() * 0.5,
    snrLimit: 5,
    spurious: 3 + 0.005 * candidates,
    apFailRate: 0.003,
    fwhm: round(fwhm, 4),
    astromSigma: round(astromSigma, 4),
  };
}

/** The smf's file name (relative to the survey) and its truth file's. */
export function smfPaths(e: PlannedExposure): { smf: string; truth: string } {
  const base = `${e.expName}.${e.expId}`;
  return { smf: `smf/${base}.smf`, truth: `truth/${base}.smf.truth.fits` };
}

function exposureCards(h: Header, e: PlannedExposure): Header {
  card(h, 'EXPNAME', e.expName, 'exposure name');
  card(h, 'EXP_ID', e.expId, 'exposure ID (rawExp.exp_id)');
  card(h, 'MJD-OBS', e.mjd, 'start of the exposure (MJD)', true);
  card(h, 'EXPTIME', e.exptime, '[s] exposure time', true);
  card(h, 'AIRMASS', e.airmass, 'airmass at the start', true);
  card(h, 'FILTERID', filterId(e.filter), 'filter');
  card(h, 'FPA.FILTER', e.filter, 'filter (camera concept)');
  card(h, 'FPA.FILTERID', filterId(e.filter), 'filter ID (camera concept)');
  return h;
}

/** The smf primary header: the exposure's keywords. */
export function smfPrimaryHeader(e: PlannedExposure, chips: number): Header {
  const h = new Header();
  card(h, 'NEXTEND', 2 * chips, 'extensions: a header and a table per chip');
  card(h, 'ORIGIN', 'IPP-SIM', 'simulated: the survey simulator wrote this file');
  card(h, 'TELESCOP', 'PS1', 'telescope');
  card(h, 'INSTRUME', 'GPC1', 'camera');
  card(h, 'DETECTOR', 'GPC1', 'detector');
  card(h, 'PSFORMAT', 'MEF', 'file format (camera configuration)');
  card(h, 'FILENAME', e.expName, 'exposure name');
  card(h, 'OBSTYPE', 'OBJECT', 'observation type');
  card(h, 'OBJECT', e.object, 'target');
  exposureCards(h, e);
  card(h, 'EXPREQ', e.exptime, '[s] requested exposure time', true);
  card(h, 'RA', e.ra, '[deg] boresight RA', true);
  card(h, 'DEC', e.dec, '[deg] boresight Dec', true);
  card(h, 'EQUINOX', 2000, 'equinox of RA, DEC', true);
  card(h, 'RADESYS', 'ICRS', 'celestial frame');
  card(h, 'POSANGLE', e.posAngle, '[deg] position angle', true);
  card(h, 'ZPT_OBS', e.zpt, 'zero point (mag of 1 count/s)', true);
  card(h, 'ZPT_ERR', e.zptErr, 'zero point error', true);
  card(h, 'FPA.ZP', e.zpt, 'zero point (camera concept)', true);
  fcard(h, 'FWHM_MAJ', (e.fwhm / PIXEL_SCALE) * (1 + e.ellipticity / 2), 4, '[pixels] PSF FWHM, major axis');
  fcard(h, 'FWHM_MIN', (e.fwhm / PIXEL_SCALE) * (1 - e.ellipticity / 2), 4, '[pixels] PSF FWHM, minor axis');
  card(h, 'SOURCEID', e.expId, 'source ID (with IMAGEID, names a chip in DVO)');
  return fileHeader(h);
}

function chipHeader(e: PlannedExposure, chip: Chip, cond: ReturnType<typeof chipConditions>, r: ChipResult): Header {
  const h = new Header();
  card(h, 'EXTDATA', `${chip.name}.psf`, 'name of the table extension');
  card(h, 'EXTTYPE', 'IMAGE', 'extension type');
  card(h, 'IMNAXIS1', CHIP_NX, 'columns of the chip image');
  card(h, 'IMNAXIS2', CHIP_NY, 'rows of the chip image');
  card(h, 'CHIP.NAME', chip.name, 'OTA (class_id)');
  card(h, 'IMAGEID', 100 * e.expId + chip.ota, 'image ID: 100 x exp_id + OTA');
  card(h, 'SOURCEID', e.expId, 'source ID');
  exposureCards(h, e);
  card(h, 'ZPT_OBS', cond.zpt, 'zero point of this chip (mag of 1 count/s)', true);
  card(h, 'ZPT_ERR', cond.zptErr, 'zero point error', true);
  card(h, 'FWHM_MAJ', cond.fwhmMaj, '[pixels] PSF FWHM, major axis', true);
  card(h, 'FWHM_MIN', cond.fwhmMin, '[pixels] PSF FWHM, minor axis', true);
  card(h, 'ANGLE', cond.psfTheta, '[deg] PSF angle', true);
  card(h, 'IQ_FW1', cond.fwhmMaj, '[pixels] image quality FWHM (major)', true);
  card(h, 'IQ_FW2', cond.fwhmMin, '[pixels] image quality FWHM (minor)', true);
  card(h, 'MSKY_MN', cond.sky, '[counts] mean sky per pixel', true);
  fcard(h, 'MSKY_SIG', Math.sqrt(cond.sky + cond.readVar), 3, '[counts] sky noise per pixel');
  card(h, 'NSTARS', r.rows, 'detections in the table');
  card(h, 'NASTRO', r.references, 'astrometric reference stars');
  card(h, 'CERROR', cond.astromSigma, '[arcsec] astrometric scatter', true);
  card(h, 'APMIFIT', 0, 'aperture minus PSF magnitude offset', true);
  card(h, 'DAPMIFIT', 0.01, 'its scatter', true);
  card(h, 'PSFMODEL', 'PS_MODEL_PS1_V1', 'PSF model');
  wcsCards(h, cond.wcs);
  return h;
}

/** The plan of one exposure's defects: which kinds, and the random source that places them. */
interface DefectPlacement {
  readonly kind: DefectKind;
  readonly rng: Random;
  /** The chip index to start looking from. */
  readonly from: number;
}

/** Writes an exposure's smf and truth files into `dir`; applies its defects. */
export async function writeExposure(
  state: WriterState, dir: string, e: PlannedExposure, defects: readonly DefectKind[], signal?: AbortSignal,
): Promise<ExposureResult> {
  const paths = smfPaths(e);
  const placements: DefectPlacement[] = defects.map((kind) => {
    const rng = new Random(hashSeed(state.seed, hashText(`defect:${kind}`), e.expId));
    return { kind, rng, from: rng.below(CHIPS.length) };
  });
  const has = (k: DefectKind) => placements.find((p) => p.kind === k);
  const records: DefectRecord[] = [];
  const base = { exp_id: e.expId, exp_name: e.expName, file: paths.smf };
  const missing = has('missing-chip');
  const skipChip = missing ? missing.from : -1;
  if (missing) records.push({ kind: 'missing-chip', ...base, chip: CHIPS[skipChip].name });

  // The previous exposure's tiles are no longer read: the buffers of those dropped may be reused.
  state.sky.recycle();
  const tiles = gatherExposure(state, e);
  const starts = state.sorted.sortByChip(state.gathered, CHIPS.length);
  const cands = state.sorted;
  // A row defect goes to the first chip from its starting place with enough objects.
  const targetOf = (p: DefectPlacement | undefined): number => {
    if (!p) return -1;
    let best = p.from;
    for (let k = 0; k < CHIPS.length; k++) {
      const ci = (p.from + k) % CHIPS.length;
      if (ci === skipChip) continue;
      if (starts[ci + 1] - starts[ci] >= 20) return ci;
      if (starts[ci + 1] - starts[ci] > starts[best + 1] - starts[best] || best === skipChip) best = ci;
    }
    return best;
  };

  const smf = await FitsStream.create(join(dir, paths.smf));
  const truthFile = await FitsStream.create(join(dir, paths.truth)).catch(async (error) => { await smf.abandon(); throw error; });
  let ok = false;
  const chips: ManifestChip[] = [];
  const tableAt: { chip: string; hdu: number; dataStart: number; rows: number }[] = [];
  let detections = 0;
  let spurious = 0;
  try {
    // The primary header, damaged if asked (only the card: the checksum is over the damage).
    const corrupt = has('corrupt-keyword');
    let patch: ((bytes: Uint8Array) => void) | undefined;
    if (corrupt) {
      const keyword = corrupt.rng.uniform() < 0.5 ? 'MJD-OBS' : 'ZPT_OBS';
      let written = '';
      patch = (bytes) => {
        const at = cardOffset(bytes, keyword);
        const field = Buffer.from(bytes.subarray(at + 10, at + 30)).toString('latin1');
        const digits = [...field].map((ch, i) => (/\d/.test(ch) ? i : -1)).filter((i) => i >= 0);
        const i = digits[Math.floor(digits.length / 2)];
        written = `${field.slice(0, i)}O${field.slice(i + 1)}`;
        bytes.set(Buffer.from(written, 'latin1'), at + 10);
      };
      const primary = smfPrimaryHeader(e, CHIPS.length - (missing ? 1 : 0));
      await smf.writeHdu(primary, null, 0, patch);
      records.push({ kind: 'corrupt-keyword', ...base, hdu: 0, keyword, value: written.trim() });
    } else {
      await smf.writeHdu(smfPrimaryHeader(e, CHIPS.length - (missing ? 1 : 0)), null, 0);
    }
    const truthPrimary = new Header();
    exposureCards(truthPrimary, e);
    card(truthPrimary, 'SMF', paths.smf, 'the detections these tables describe');
    await truthFile.writeHdu(fileHeader(truthPrimary), null, 0);

    const nan = has('nan-coords');
    const dup = has('duplicate-idet');
    const nanChip = targetOf(nan);
    const dupChip = targetOf(dup);
    let hdu = 1;
    const R = CMF_PS1_V5.rowBytes;
    const T = TRUTH_LAYOUT.rowBytes;
    for (let ci = 0; ci < CHIPS.length; ci++) {
      signal?.throwIfAborted();
      const chip = CHIPS[ci];
      const start = starts[ci];
      const end = starts[ci + 1];
      if (ci === skipChip) continue;
      const cond = chipConditions(state.seed, e, chip, end - start);
      const room = maxRows(end - start, cond);
      const rows = state.rows.next(room * R);
      const truth = state.truth.next(room * T);
      const rng = new Random(hashSeed(state.seed, hashText('measure'), e.expId, chip.index));
      const r = measureChip(CMF_PS1_V5, cond, cands, start, end, rng, rows, truth, state.measure);
      state.objects.addFirstDetections(tiles, cands.srcTile, cands.srcIndex, r.selected, r.selected.length);
      await state.objects.flushIfLarge();
      const dv = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
      if (nan && ci === nanChip) {
        const picked = pickRows(nan.rng, r.rows, 3);
        for (const row of picked) {
          dv.setFloat64(row * R + CMF_PS1_V5.offset('RA_PSF'), NaN);
          dv.setFloat64(row * R + CMF_PS1_V5.offset('DEC_PSF'), NaN);
        }
        records.push({ kind: 'nan-coords', ...base, chip: chip.name, hdu: hdu + 1, rows: picked });
      }
      if (dup && ci === dupChip) {
        // Too few rows to repeat an IPP_IDET leaves nothing damaged; the record says so (no rows).
        const row = r.rows >= 2 ? 1 + dup.rng.below(r.rows - 1) : -1;
        if (row > 0) dv.setUint32(row * R + CMF_PS1_V5.offset('IPP_IDET'), ((row - 1) ^ SIGN32) >>> 0);
        records.push({ kind: 'duplicate-idet', ...base, chip: chip.name, hdu: hdu + 1, rows: row > 0 ? [row] : [], ...(row > 0 ? { idet: row - 1 } : {}) });
      }
      zeroPadding(rows, r.rows * R);
      zeroPadding(truth, r.rows * T);
      await smf.writeHdu(emptyImageHeader(`${chip.name}.hdr`, chipHeader(e, chip, cond, r)), null, 0);
      const extra = new Header();
      card(extra, 'EXTHEAD', `${chip.name}.hdr`, 'name of the header extension');
      card(extra, 'EXTTYPE', SMF_EXTTYPE, 'detection table layout');
      const dataStart = await smf.writeHdu(tableHeader(CMF_PS1_V5, r.rows, `${chip.name}.psf`, extra), rows, r.rows * R);
      tableAt.push({ chip: chip.name, hdu: hdu + 1, dataStart, rows: r.rows });
      const textra = new Header();
      card(textra, 'EXTTYPE', TRUTH_EXTTYPE, 'truth rows, one per detection row');
      card(textra, 'CHIP.NAME', chip.name, 'chip');
      await truthFile.writeHdu(tableHeader(TRUTH_LAYOUT, r.rows, `${chip.name}.truth`, textra), truth, r.rows * T);
      chips.push({
        class_id: chip.name,
        image_id: 100 * e.expId + chip.ota,
        source_id: e.expId,
        hdu: hdu + 1,
        n_detections: r.rows,
        n_spurious: r.spurious,
        n_saturated: r.saturated,
        n_astrom: r.references,
        sky: cond.sky,
        sky_sigma: round(Math.sqrt(cond.sky + cond.readVar), 3),
        fwhm_maj: cond.fwhmMaj,
        fwhm_min: cond.fwhmMin,
        fwhm: cond.fwhm,
        zpt_obs: cond.zpt,
        zpt_err: cond.zptErr,
        astrom_sigma: cond.astromSigma,
        nx: CHIP_NX,
        ny: CHIP_NY,
        wcs: manifestWcs(cond.wcs),
      });
      detections += r.rows;
      spurious += r.spurious;
      hdu += 2;
    }
    await smf.close();
    await truthFile.close();
    ok = true;
  } finally {
    if (!ok) {
      await smf.abandon();
      await truthFile.abandon();
    }
  }
  let bytes = smf.position + truthFile.position;
  const cut = has('truncated-smf');
  if (cut) {
    // Cut the file inside a table's rows, in the middle of a row.
    const name = CHIPS[targetOf(cut)].name;
    const target = tableAt.find((t) => t.chip === name)!;
    const at = target.dataStart + Math.floor(target.rows / 2) * CMF_PS1_V5.rowBytes + 100;
    await truncate(join(dir, paths.smf), at);
    records.push({ kind: 'truncated-smf', ...base, chip: target.chip, hdu: target.hdu, full_bytes: smf.position, truncated_bytes: at });
    bytes -= smf.position - at;
  }
  return {
    manifest: {
      exp_id: e.expId,
      exp_name: e.expName,
      filter: e.filter,
      filter_id: filterId(e.filter),
      survey: e.survey,
      object: e.object,
      mjd_obs: e.mjd,
      exptime: e.exptime,
      airmass: e.airmass,
      ra: e.ra,
      dec: e.dec,
      pos_angle: e.posAngle,
      fwhm: e.fwhm,
      zpt_obs: e.zpt,
      zpt_err: e.zptErr,
      sky_mag: e.skyMag,
      limit_mag: e.limit,
      source_id: e.expId,
      smf: paths.smf,
      truth: paths.truth,
      n_detections: detections,
      chips,
    },
    defects: records,
    bytes,
    spurious,
  };
}

/** `count` distinct rows below `n`, ascending. */
function pickRows(rng: Random, n: number, count: number): number[] {
  const picked = new Set<number>();
  while (picked.size < Math.min(count, n)) picked.add(rng.below(n));
  return [...picked].sort((a, b) => a - b);
}
