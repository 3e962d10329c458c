// One stack's cmf file: a primary header with the stack's keywords (TESS_ID, SKYCELL,
// NINPUTS, FPA.ZP, the inputs), a header extension `SkyChip.hdr` with the skycell's WCS and
// a detection table `SkyChip.psf` in the CMF_PS1_SV2 layout; beside it a truth file.
import { join } from 'node:path';
import { Header } from '../fits/index.ts';
import { CMF_PS1_SV2, TRUTH_LAYOUT } from './cmf-layout.ts';
import { maxRows, measureChip, type ChipConditions } from './detections.ts';
import { FitsStream, emptyImageHeader, fileHeader, tableHeader, zeroPadding } from './fits-out.ts';
import { card, fcard, manifestWcs, wcsCards } from './headers.ts';
import type { ManifestStack } from './manifest.ts';
import { Random, hashSeed, hashText } from './random.ts';
import { FILTERS, tilesInCircle, type SkyTile } from './sky-model.ts';
import { TRUTH_EXTTYPE, type WriterState } from './smf-writer.ts';
import { LIMIT_MARGIN, SATURATION, filterId, round, stackLimits, type PlannedStack } from './survey-plan.ts';
import { SKYCELL_SCALE, TESS_ID } from './tessellation.ts';
import { skyToPixel } from './wcs.ts';

/** EXTTYPE of the cmf detection tables. */
export const CMF_EXTTYPE = CMF_PS1_SV2.name;
/** The extension names of a stack's chip (skycells are one "chip" named SkyChip). */
export const STACK_CHIP = 'SkyChip';

/** The cmf's file name (relative to the survey) and its truth file's. */
export function cmfPaths(s: PlannedStack): { cmf: string; truth: string } {
  const base = `${TESS_ID}.${s.skycell.name}.stk.${s.stackId}`;
  return { cmf: `cmf/${base}.cmf`, truth: `truth/${base}.cmf.truth.fits` };
}

function stackConditions(seed: number, s: PlannedStack, candidates: number): ChipConditions {
  const rng = new Random(hashSeed(seed, hashText('stack'), s.stackId));
  const px = s.fwhm / SKYCELL_SCALE;
  return {
    exptime: s.exptime,
    zpt: s.zpt,
    zptErr: s.zptErr,
    sky: s.sky,
    readVar: s.readVar,
    fwhmMaj: round(px * 1.02, 4),
    fwhmMin: round(px * 0.98, 4),
    psfTheta: round(180 * rng.uniform(), 3),
    psfCore: 0.5,
    saturation: SATURATION * s.inputs.length,
    pixelScale: SKYCELL_SCALE,
    posAngle: 0,
    nFrames: s.inputs.length,
    wcs: s.skycell.wcs,
    nx: s.skycell.nx,
    ny: s.skycell.ny,
    astromRa: 0.01 * rng.normal(),
    astromDec: 0.01 * rng.normal(),
    snrLimit: 5,
    spurious: 2 + 0.002 * candidates,
    apFailRate: 0.003,
  };
}

/** The cmf primary header. */
export function cmfPrimaryHeader(s: PlannedStack): Header {
  const h = new Header();
  card(h, 'NEXTEND', 2, 'a header and a table');
  card(h, 'ORIGIN', 'IPP-SIM', 'simulated: the survey simulator wrote this file');
  card(h, 'TELESCOP', 'PS1', 'telescope');
  card(h, 'INSTRUME', 'GPC1', 'camera');
  card(h, 'STACK_ID', s.stackId, 'stack ID (stackRun.stack_id)');
  card(h, 'TESS_ID', TESS_ID, 'tessellation');
  card(h, 'SKYCELL', s.skycell.name, 'skycell');
  card(h, 'NINPUTS', s.inputs.length, 'exposures stacked');
  card(h, 'FPA.ZP', s.zpt, 'zero point (mag of 1 count/s)', true);
  card(h, 'ZPT_OBS', s.zpt, 'zero point (mag of 1 count/s)', true);
  card(h, 'ZPT_ERR', s.zptErr, 'zero point error', true);
  card(h, 'FILTERID', filterId(s.filter), 'filter');
  card(h, 'FPA.FILTER', s.filter, 'filter (camera concept)');
  card(h, 'FPA.FILTERID', filterId(s.filter), 'filter ID (camera concept)');
  card(h, 'MJD-OBS', s.mjd, 'mean MJD of the inputs', true);
  card(h, 'EXPTIME', s.exptime, '[s] summed exposure time of the inputs', true);
  card(h, 'IMAGEID', s.stackId, 'image ID of the stack');
  card(h, 'SOURCEID', s.stackId, 'source ID');
  s.inputs.forEach((e, i) => {
    const n = String(i).padStart(4, '0');
    card(h, `INP_${n}`, e.expName, 'input exposure');
    card(h, `ZPT_${n}`, e.zpt, 'input zero point', true);
    card(h, `EXP_${n}`, e.exptime, '[s] input exposure time', true);
    card(h, `AIR_${n}`, e.airmass, 'input airmass', true);
  });
  return fileHeader(h);
}

/** The sky tiles a stack's skycell may hold objects from. */
export function stackTiles(s: PlannedStack): number[] {
  const radius = (Math.SQRT2 * s.skycell.nx * SKYCELL_SCALE) / 3600 / 2 + 0.01;
  return tilesInCircle(s.skycell.ra, s.skycell.dec, radius);
}

/** Writes a stack's cmf and truth files into `dir`. */
export async function writeStack(state: WriterState, dir: string, s: PlannedStack): Promise<{ manifest: ManifestStack; bytes: number; spurious: number }> {
  const paths = cmfPaths(s);
  // The skycell's objects, from tiles generated as deep as the stack sees.
  const c = state.sorted;
  c.length = 0;
  const f = FILTERS.indexOf(s.filter);
  const maxMag = s.limit + LIMIT_MARGIN;
  const limits = stackLimits(s);
  const tiles: SkyTile[] = [];
  c.tiles = tiles;
  for (const id of stackTiles(s)) {
    const t = state.sky.tileTo(id, limits);
    const ti = tiles.push(t) - 1;
    for (let k = 0; k < t.count; k++) {
      const m = t.mag[k * 6 + f];
      if (m > maxMag) continue;
      const p = skyToPixel(s.skycell.wcs, t.ra[k], t.dec[k]);
      if (!p || p.x < 0.5 || p.y < 0.5 || p.x >= s.skycell.nx + 0.5 || p.y >= s.skycell.ny + 0.5) continue;
      c.ensure(c.length + 1);
      c.push(t, ti, k, p.x, p.y, m);
    }
  }
  const cond = stackConditions(state.seed, s, c.length);
  const room = maxRows(c.length, cond);
  const R = CMF_PS1_SV2.rowBytes;
  const T = TRUTH_LAYOUT.rowBytes;
  const rows = state.rows.next(room * R);
  const truth = state.truth.next(room * T);
  const rng = new Random(hashSeed(state.seed, hashText('measure-stack'), s.stackId));
  const r = measureChip(CMF_PS1_SV2, cond, c, 0, c.length, rng, rows, truth, state.measure);
  for (let j = 0; j < r.rows; j++) {
    const i = r.detected[j];
    if (i < 0) continue;
    const t = tiles[c.srcTile[i]];
    if (state.sky.firstStackDetection(t, c.srcIndex[i])) state.objects.add(t, c.srcIndex[i]);
  }
  await state.objects.flushIfLarge();
  zeroPadding(rows, r.rows * R);
  zeroPadding(truth, r.rows * T);

  const cmf = await FitsStream.create(join(dir, paths.cmf));
  const truthFile = await FitsStream.create(join(dir, paths.truth)).catch(async (error) => { await cmf.abandon(); throw error; });
  let ok = false;
  try {
    await cmf.writeHdu(cmfPrimaryHeader(s), null, 0);
    const head = new Header();
    card(head, 'EXTDATA', `${STACK_CHIP}.psf`, 'name of the table extension');
    card(head, 'EXTTYPE', 'IMAGE', 'extension type');
    card(head, 'IMNAXIS1', s.skycell.nx, 'columns of the skycell image');
    card(head, 'IMNAXIS2', s.skycell.ny, 'rows of the skycell image');
    card(head, 'TESS_ID', TESS_ID, 'tessellation');
    card(head, 'SKYCELL', s.skycell.name, 'skycell');
    card(head, 'NINPUTS', s.inputs.length, 'exposures stacked');
    card(head, 'FPA.ZP', s.zpt, 'zero point (mag of 1 count/s)', true);
    card(head, 'FPA.FILTER', s.filter, 'filter (camera concept)');
    card(head, 'MJD-OBS', s.mjd, 'mean MJD of the inputs', true);
    card(head, 'EXPTIME', s.exptime, '[s] summed exposure time', true);
    card(head, 'NSTARS', r.rows, 'detections in the table');
    card(head, 'FWHM_MAJ', cond.fwhmMaj, '[pixels] PSF FWHM, major axis', true);
    card(head, 'FWHM_MIN', cond.fwhmMin, '[pixels] PSF FWHM, minor axis', true);
    card(head, 'MSKY_MN', cond.sky, '[counts] mean sky per pixel', true);
    fcard(head, 'MSKY_SIG', Math.sqrt(cond.sky + cond.readVar), 3, '[counts] sky noise per pixel');
    wcsCards(head, s.skycell.wcs);
    await cmf.writeHdu(emptyImageHeader(`${STACK_CHIP}.hdr`, head), null, 0);
    const extra = new Header();
    card(extra, 'EXTHEAD', `${STACK_CHIP}.hdr`, 'name of the header extension');
    card(extra, 'EXTTYPE', CMF_EXTTYPE, 'detection table layout');
    await cmf.writeHdu(tableHeader(CMF_PS1_SV2, r.rows, `${STACK_CHIP}.psf`, extra), rows, r.rows * R);
    const tp = new Header();
    card(tp, 'CMF', paths.cmf, 'the detections these tables describe');
    await truthFile.writeHdu(fileHeader(tp), null, 0);
    const textra = new Header();
    card(textra, 'EXTTYPE', TRUTH_EXTTYPE, 'truth rows, one per detection row');
    await truthFile.writeHdu(tableHeader(TRUTH_LAYOUT, r.rows, `${STACK_CHIP}.truth`, textra), truth, r.rows * T);
    await cmf.close();
    await truthFile.close();
    ok = true;
  } finally {
    if (!ok) {
      await cmf.abandon();
      await truthFile.abandon();
    }
  }
  return {
    manifest: {
      stack_id: s.stackId,
      skycell: s.skycell.name,
      projection_id: s.skycell.projectionId,
      skycell_id: s.skycell.skycellId,
      tess_id: TESS_ID,
      filter: s.filter,
      filter_id: filterId(s.filter),
      n_inputs: s.inputs.length,
      input_exp_ids: s.inputs.map((e) => e.expId),
      mjd_obs: s.mjd,
      exptime: s.exptime,
      zpt: s.zpt,
      zpt_err: s.zptErr,
      fwhm: s.fwhm,
      limit_mag: s.limit,
      ra: round(s.skycell.ra, 7),
      dec: round(s.skycell.dec, 7),
      image_id: s.stackId,
      source_id: s.stackId,
      cmf: paths.cmf,
      truth: paths.truth,
      n_detections: r.rows,
      nx: s.skycell.nx,
      ny: s.skycell.ny,
      wcs: manifestWcs(s.skycell.wcs),
    },
    bytes: cmf.position + truthFile.position,
    spurious: r.spurious,
  };
}
