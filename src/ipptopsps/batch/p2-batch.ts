// The P2 (detection) batch of one exposure: FrameMeta from the smf's primary header,
// ImageMeta per chip from its header, Detection per chip from its detection table with the
// DVO objID/detectID of each detection, and ObjectThin stubs for the objects referred to.
import { chipPhotcodeName, type Filter, type PhotcodeTable } from '../../dvo/index.ts';
import type { FitsFile, HduInfo, Header } from '../../fits/index.ts';
import type { TableSchema } from '../../votable/index.ts';
import { IppToPspsError } from '../errors.ts';
import { TablePart, columnIndex, type ArchiveTable } from './archive-table.ts';
import {
  dropMissingInTest, dvoPhotcodes, emptyTable, finishBatch, loadSchema, matchDetections, openCatalogue, readSourceColumns, schemaTable,
  sourceError, u32ToBig, type ColumnDefsCache, type SourceColumns,
} from './common.ts';
import {
  AB_JANSKY, ccdIdOf, filterIdOf, headerNumber, headerText, randomFromIds, requireNumber, surveyIdOf, wcsOf, type HeaderPlace,
} from './convert.ts';
import { objectStubs } from './object-stubs.ts';
import type { BatchContext, BuiltBatch, DetectionIds, DetectionLookup } from './types.ts';

/** The smf columns a P2 batch reads (the rest of the 232-byte rows are skipped). */
export const P2_SOURCE_COLUMNS: readonly string[] = [
  'IPP_IDET', 'X_PSF', 'Y_PSF', 'X_PSF_SIG', 'Y_PSF_SIG', 'POSANGLE', 'PLTSCALE',
  'PSF_INST_FLUX', 'PSF_INST_FLUX_SIG', 'AP_MAG_RADIUS', 'AP_FLUX', 'AP_FLUX_SIG', 'RA_PSF', 'DEC_PSF',
  'SKY', 'SKY_SIGMA', 'PSF_CHISQ', 'EXT_NSIGMA', 'PSF_THETA', 'PSF_CORE', 'PSF_FWHM_MAJ', 'PSF_FWHM_MIN',
  'PSF_QF', 'PSF_QF_PERFECT', 'MOMENTS_XX', 'MOMENTS_XY', 'MOMENTS_YY', 'MOMENTS_M3C', 'MOMENTS_M3S',
  'MOMENTS_M4C', 'MOMENTS_M4S', 'MOMENTS_R1', 'MOMENTS_RH', 'KRON_FLUX', 'KRON_FLUX_ERR', 'FLAGS', 'FLAGS2',
];
const REQUIRED_SOURCE = ['IPP_IDET', 'RA_PSF', 'DEC_PSF'];

/** The source of a P2 batch. */
export interface P2Source {
  readonly smfPath: string;
  readonly camId: number;
  /** The exposure ID (rawExp.exp_id): the archive's frameID. */
  readonly expId: number;
  readonly dvoDir: string;
  readonly lookup: DetectionLookup;
}

interface Chip {
  readonly name: string;
  readonly ccdId: number;
  readonly head: HduInfo;
  readonly table: HduInfo;
  readonly imageId: number;
}

/** The chips of an smf: `XYnn.hdr` + `XYnn.psf` pairs, in file order (only XY33 in test mode). */
function chipsOf(file: FitsFile, test: boolean): Chip[] {
  const chips: Chip[] = [];
  for (const h of file.hdus) {
    const m = /^(XY\d\d)\.psf$/i.exec(h.extname ?? '');
    if (!m) continue;
    const name = m[1].toUpperCase();
    if (test && name !== 'XY33') continue;
    const ccdId = ccdIdOf(name)!;
    const head = file.hdus.find((x) => x.extname?.toUpperCase() === `${name}.HDR`);
    if (!head) throw new IppToPspsError('batch_bad_source', `${file.name}: ${h.extname} (HDU ${h.index}) has no header extension ${name}.hdr`);
    const place = { file: file.name, hdu: `${head.extname} (HDU ${head.index})` };
    const imageId = requireNumber(head.header, 'IMAGEID', place);
    chips.push({ name, ccdId, head, table: h, imageId });
  }
  return chips;
}

/** The DVO photcode of a name (the archive's photoCalID), undefined when DVO lacks it. */
export function photoCalIdOf(photcodes: PhotcodeTable, name: string): number | undefined {
  try {
    return photcodes.byName(name).code;
  } catch {
    return undefined;
  }
}

const PLACE = (file: FitsFile, h: HduInfo): HeaderPlace => ({ file: file.name, hdu: `${h.extname ?? (h.index === 0 ? 'primary header' : `HDU ${h.index}`)} (HDU ${h.index})` });

/** Builds the P2 batch of one exposure (see the README for every column's rule). */
export async function buildP2Batch(ctx: BatchContext, src: P2Source): Promise<BuiltBatch> {
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const schema = await loadSchema(ctx, 'P2');
  let t = performance.now();
  const file = await openCatalogue(src.smfPath);
  try {
    const primary = file.hdus[0].header;
    const pplace = PLACE(file, file.hdus[0]);
    const chips = chipsOf(file, ctx.test === true);
    if (chips.length === 0) {
      throw new IppToPspsError('batch_bad_source', `${src.smfPath}: no chip detection tables (XYnn.psf)${ctx.test ? ' of OTA 33 (test mode)' : ''}; is this an smf?`);
    }
    const exp = {
      mjd: requireNumber(primary, 'MJD-OBS', pplace),
      exptime: requireNumber(primary, 'EXPTIME', pplace),
      airmass: headerNumber(primary, 'AIRMASS', pplace),
      filter: headerText(primary, 'FPA.FILTER') ?? headerText(primary, 'FILTER'),
      zpt: headerNumber(primary, 'ZPT_OBS', pplace),
    };
    const filterId = filterIdOf(exp.filter);
    if (filterId === undefined) throw new IppToPspsError('batch_bad_keyword', `${pplace.file}: ${pplace.hdu}: FPA.FILTER ${JSON.stringify(exp.filter)} is not one of g r i z y`);
    const surveyId = ctx.surveyId ?? surveyIdOf(headerText(primary, 'OBJECT'));
    const photcodes = await dvoPhotcodes(src.dvoDir);
    timings.read = performance.now() - t;

    // DVO IDs of every chip, all at once when the look-up can (each region read once).
    t = performance.now();
    let ids: DetectionIds[];
    try {
      ids = src.lookup.many ? await src.lookup.many(chips.map((c) => c.imageId)) : await Promise.all(chips.map((c) => src.lookup(c.imageId)));
    } catch (error) {
      if (ctx.test && (error as { code?: string }).code === 'dvo_no_such_image') {
        warnings.push(`test mode: DVO ${src.dvoDir} does not know the exposure's images; its detections are dropped`);
        ids = chips.map(() => ({ ippIdet: new Uint32Array(0), detectId: new BigInt64Array(0), objId: new BigInt64Array(0) }));
      } else {
        throw sourceError(src.smfPath, error);
      }
    }
    timings.lookup = performance.now() - t;

    const frameS = schemaTable(schema, 'FrameMeta');
    const imageS = schemaTable(schema, 'ImageMeta');
    const detS = schemaTable(schema, 'Detection');
    const objS = schemaTable(schema, 'ObjectThin');
    const frame: ArchiveTable | undefined = frameS && { schema: frameS, parts: [] };
    const images: ArchiveTable | undefined = imageS && { schema: imageS, parts: [] };
    const detections: ArchiveTable | undefined = detS && { schema: detS, parts: [] };
    const detIndex = detS && columnIndex(detS);
    // The chips' tables describe the same columns: their definitions are parsed once.
    const defsCache: ColumnDefsCache = new Map();
    let readMs = 0;
    let convertMs = 0;
    let unknown = 0;
    for (let k = 0; k < chips.length; k++) {
      ctx.signal?.throwIfAborted();
      const chip = chips[k];
      const hplace = PLACE(file, chip.head);
      const head = chip.head.header;
      if (images) images.parts.push(imageMetaPart(images.schema, chip, head, hplace, src, filterId, photoCalIdOf(photcodes, chipPhotcodeName(exp.filter!.charAt(0) as Filter, chip.name))));
      if (!detections) continue;
      const r0 = performance.now();
      const { rows, columns } = await readSourceColumns(file, chip.table, P2_SOURCE_COLUMNS, REQUIRED_SOURCE, defsCache);
      const r1 = performance.now();
      readMs += r1 - r0;
      const at = matchDetections(columns.IPP_IDET!, rows, ids[k]);
      let part = detectionPart(detections.schema, detIndex!, chip, columns, rows, at, ids[k], {
        file: file.name, head, hplace, exp, filterId, surveyId, frameId: src.expId,
      });
      let missing = 0;
      for (let i = 0; i < rows; i++) if (at[i] < 0) missing++;
      if (missing > 0) {
        if (!ctx.test) {
          const i = at.indexOf(-1);
          throw new IppToPspsError('batch_unknown_object', `${file.name}: ${chip.table.extname} (HDU ${chip.table.index}): table Detection: column objID: ${part.describeRow(i)}: DVO ${src.dvoDir} has no detection IPP_IDET ${columns.IPP_IDET![i]} of IMAGEID ${chip.imageId} (${missing} of ${rows} detections of the chip are unknown); ingest the exposure with addstar first`);
        }
        unknown += missing;
        part = part.filter(Uint8Array.from(at, (x) => (x < 0 ? 0 : 1)));
      }
      detections.parts.push(part);
      convertMs += performance.now() - r1;
    }
    if (unknown > 0) warnings.push(`test mode: ${unknown} detection${unknown === 1 ? '' : 's'} unknown to DVO dropped`);
    timings.read += readMs;
    const c0 = performance.now();
    if (frame) frame.parts.push(frameMetaPart(frame.schema, primary, pplace, src, exp, filterId, surveyId, chips.length));
    if (detections) dropMissingInTest(ctx, detections, warnings);
    const tables: ArchiveTable[] = [];
    for (const s of schema.tables) {
      if (s === frameS) tables.push(frame!);
      else if (s === imageS) tables.push(images!);
      else if (s === detS) tables.push(detections!);
      else if (s === objS) tables.push(objectStubs(s, detections, { file: file.name, hdu: 'Detection objIDs' }, surveyId));
      else {
        warnings.push(`table ${s.name} of P2.xml has no source in the P2 builder: written empty`);
        tables.push(emptyTable(s));
      }
    }
    timings.convert = convertMs + performance.now() - c0;
    return await finishBatch(ctx, {
      type: 'P2', srcId: src.camId, source: { kind: 'camRun', id: src.camId, paths: [src.smfPath] },
      schemaFile: schema.file, schemaMd5: schema.md5, tables, mainTable: 'Detection', warnings, timings,
    });
  } finally {
    await file.close();
  }
}

function frameMetaPart(
  s: TableSchema, h: Header, place: HeaderPlace, src: P2Source,
  exp: { mjd: number; exptime: number; airmass?: number; zpt?: number }, filterId: number, surveyId: number, nChips: number,
): TablePart {
  const p = new TablePart(s, 1, { file: place.file, hdu: place.hdu });
  p.fill('frameID', src.expId);
  p.fillText('frameName', headerText(h, 'EXPNAME') ?? headerText(h, 'FILENAME'));
  p.fill('surveyID', surveyId);
  p.fill('filterID', filterId);
  p.fill('ippCamID', src.camId);
  p.fill('nOTA', nChips);
  p.fill('expStart', exp.mjd);
  p.fill('expTime', exp.exptime);
  p.fill('airmass', exp.airmass);
  p.fill('raBore', headerNumber(h, 'RA', place));
  p.fill('decBore', headerNumber(h, 'DEC', place));
  p.fill('posAngle', headerNumber(h, 'POSANGLE', place));
  p.fill('zp', exp.zpt);
  p.fill('zpErr', headerNumber(h, 'ZPT_ERR', place));
  p.fill('fwhmMajor', headerNumber(h, 'FWHM_MAJ', place));
  p.fill('fwhmMinor', headerNumber(h, 'FWHM_MIN', place));
  return p;
}

function imageMetaPart(
  s: TableSchema, chip: Chip, h: Header, place: HeaderPlace, src: P2Source, filterId: number, photoCalId: number | undefined,
): TablePart {
  const p = new TablePart(s, 1, { file: place.file, hdu: place.hdu });
  const wcs = wcsOf(h, place);
  // Header widths are in pixels; the archive wants arcsec (the chip's WCS scale).
  const scale = wcs.scale;
  const arcsec = (v: number | undefined) => (v === undefined || scale === undefined ? undefined : v * scale);
  const fwMaj = headerNumber(h, 'FWHM_MAJ', place);
  const fwMin = headerNumber(h, 'FWHM_MIN', place);
  p.fill('imageID', 100 * src.expId + chip.ccdId);
  p.fill('frameID', src.expId);
  p.fill('ccdID', chip.ccdId);
  p.fill('photoCalID', photoCalId);
  p.fill('filterID', filterId);
  p.fill('sky', headerNumber(h, 'MSKY_MN', place));
  p.fill('skyScat', headerNumber(h, 'MSKY_SIG', place));
  p.fill('nDetect', chip.table.rows);
  p.fill('astroScat', headerNumber(h, 'CERROR', place));
  p.fill('nAstroRef', headerNumber(h, 'NASTRO', place));
  p.fill('psfFWHM', fwMaj !== undefined && fwMin !== undefined ? arcsec((fwMaj + fwMin) / 2) : undefined);
  p.fill('psfWidMajor', arcsec(fwMaj));
  p.fill('psfWidMinor', arcsec(fwMin));
  p.fill('psfTheta', headerNumber(h, 'ANGLE', place));
  p.fill('apResid', headerNumber(h, 'APMIFIT', place));
  p.fill('dapResid', headerNumber(h, 'DAPMIFIT', place));
  p.fill('photoZero', headerNumber(h, 'ZPT_OBS', place));
  p.fill('numCols', headerNumber(h, 'IMNAXIS1', place));
  p.fill('numRows', headerNumber(h, 'IMNAXIS2', place));
  putWcs(p, wcs);
  return p;
}

/** The WCS columns shared by ImageMeta and StackMeta. */
export function putWcs(p: TablePart, wcs: ReturnType<typeof wcsOf>): void {
  p.fillText('ctype1', wcs.ctype1);
  p.fillText('ctype2', wcs.ctype2);
  p.fill('crval1', wcs.crval1);
  p.fill('crval2', wcs.crval2);
  p.fill('crpix1', wcs.crpix1);
  p.fill('crpix2', wcs.crpix2);
  p.fill('cdelt1', wcs.cdelt1);
  p.fill('cdelt2', wcs.cdelt2);
  p.fill('pc001001', wcs.pc11);
  p.fill('pc001002', wcs.pc12);
  p.fill('pc002001', wcs.pc21);
  p.fill('pc002002', wcs.pc22);
}

interface ChipContext {
  readonly file: string;
  readonly head: Header;
  readonly hplace: HeaderPlace;
  readonly exp: { mjd: number; exptime: number; airmass?: number; zpt?: number };
  readonly filterId: number;
  readonly surveyId: number;
  readonly frameId: number;
}

/** `s[i] ** power` for every row, each power computed once per chip however many columns use it. */
function powers(s: ArrayLike<number>, n: number): (power: number) => Float64Array {
  const done = new Map<number, Float64Array>();
  return (power) => {
    let out = done.get(power);
    if (!out) {
      out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = s[i] ** power;
      done.set(power, out);
    }
    return out;
  };
}

/** The plate scale as float64 (the products' second factor). */
function asFloat64(a: ArrayLike<number>, n: number): Float64Array {
  if (a instanceof Float64Array) return a;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a[i];
  return out;
}

function detectionPart(
  s: TableSchema, index: Map<string, number>, chip: Chip, c: SourceColumns, n: number, at: Int32Array, ids: DetectionIds, x: ChipContext,
): TablePart {
  const idet = c.IPP_IDET!;
  const p = new TablePart(s, n, {
    file: x.file, hdu: `${chip.table.extname} (HDU ${chip.table.index})`,
    describeRow: (i) => `row ${i + 1} (IPP_IDET ${idet[i]})`,
  }, index);
  // IDs from DVO (rows DVO does not know keep 0 here; they are dropped or fail the batch).
  const objId = new BigInt64Array(n);
  const detectId = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const k = at[i];
    if (k >= 0) { objId[i] = ids.objId[k]; detectId[i] = ids.detectId[k]; }
  }
  p.putBig('objID', objId);
  p.putBig('detectID', detectId);
  p.putBig('ippDetectID', u32ToBig(idet, n));
  p.fill('filterID', x.filterId);
  p.fill('surveyID', x.surveyId);
  p.fill('imageID', 100 * x.frameId + chip.ccdId);
  const rnd = new Float64Array(n);
  randomFromIds(detectId, rnd);
  p.put('randomDetID', rnd);
  const hplace = x.hplace;
  const exptime = headerNumber(x.head, 'EXPTIME', hplace) ?? x.exp.exptime;
  const zpt = headerNumber(x.head, 'ZPT_OBS', hplace) ?? x.exp.zpt;
  p.fill('obsTime', x.exp.mjd + exptime / 2 / 86400);
  p.fill('expTime', exptime);
  p.fill('airMass', headerNumber(x.head, 'AIRMASS', hplace) ?? x.exp.airmass);
  p.fill('zp', zpt);
  if (c.X_PSF) p.put('xPos', c.X_PSF);
  if (c.Y_PSF) p.put('yPos', c.Y_PSF);
  if (c.X_PSF_SIG) p.put('xPosErr', c.X_PSF_SIG);
  if (c.Y_PSF_SIG) p.put('yPosErr', c.Y_PSF_SIG);
  const sc = c.PLTSCALE;
  if (sc) p.put('pltScale', sc);
  if (c.POSANGLE) p.put('posAngle', c.POSANGLE);
  p.put('ra', c.RA_PSF!);
  p.put('dec', c.DEC_PSF!);
  // Pixels → arcsec with the detection's own plate scale: a product per row.
  const s64 = sc && asFloat64(sc, n);
  const pow = sc && powers(sc, n);
  if (s64 && c.X_PSF_SIG) p.putProduct('raErr', c.X_PSF_SIG, s64);
  if (s64 && c.Y_PSF_SIG) p.putProduct('decErr', c.Y_PSF_SIG, s64);
  if (c.EXT_NSIGMA) p.put('extNSigma', c.EXT_NSIGMA);
  // Counts → Jy: counts / exptime is the count rate; ZPT_OBS is the magnitude of 1 count/s.
  if (zpt !== undefined && exptime > 0) {
    const jyPerCount = (AB_JANSKY * 10 ** (-0.4 * zpt)) / exptime;
    if (c.PSF_INST_FLUX) p.put('psfFlux', c.PSF_INST_FLUX, jyPerCount);
    if (c.PSF_INST_FLUX_SIG) p.put('psfFluxErr', c.PSF_INST_FLUX_SIG, jyPerCount);
    if (c.AP_FLUX) p.put('apFlux', c.AP_FLUX, jyPerCount);
    if (c.AP_FLUX_SIG) p.put('apFluxErr', c.AP_FLUX_SIG, jyPerCount);
    if (c.KRON_FLUX) p.put('kronFlux', c.KRON_FLUX, jyPerCount);
    if (c.KRON_FLUX_ERR) p.put('kronFluxErr', c.KRON_FLUX_ERR, jyPerCount);
    // SKY is a count rate per pixel: Jy per square arcsec through the plate scale.
    const jyPerRate = AB_JANSKY * 10 ** (-0.4 * zpt);
    if (pow && c.SKY) p.putProduct('sky', c.SKY, pow(-2), jyPerRate);
    if (pow && c.SKY_SIGMA) p.putProduct('skyErr', c.SKY_SIGMA, pow(-2), jyPerRate);
  }
  if (s64 && c.PSF_FWHM_MAJ) p.putProduct('psfMajorFWHM', c.PSF_FWHM_MAJ, s64);
  if (s64 && c.PSF_FWHM_MIN) p.putProduct('psfMinorFWHM', c.PSF_FWHM_MIN, s64);
  if (c.PSF_THETA) p.put('psfTheta', c.PSF_THETA);
  if (c.PSF_CORE) p.put('psfCore', c.PSF_CORE);
  if (c.PSF_QF) p.put('psfQf', c.PSF_QF);
  if (c.PSF_QF_PERFECT) p.put('psfQfPerfect', c.PSF_QF_PERFECT);
  if (c.PSF_CHISQ) p.put('psfChiSq', c.PSF_CHISQ);
  // Moments: pixels^k → arcsec^k with the local plate scale.
  const moments: [string, string, number][] = [
    ['MOMENTS_XX', 'momentXX', 2], ['MOMENTS_XY', 'momentXY', 2], ['MOMENTS_YY', 'momentYY', 2],
    ['MOMENTS_R1', 'momentR1', 1], ['MOMENTS_RH', 'momentRH', 0.5],
    ['MOMENTS_M3C', 'momentM3C', 3], ['MOMENTS_M3S', 'momentM3S', 3], ['MOMENTS_M4C', 'momentM4C', 4], ['MOMENTS_M4S', 'momentM4S', 4],
  ];
  for (const [from, to, power] of moments) {
    const v = c[from];
    if (pow && v) p.putProduct(to, v, pow(power));
  }
  if (s64 && c.AP_MAG_RADIUS) p.putProduct('apRadius', c.AP_MAG_RADIUS, s64);
  // FLAGS/FLAGS2 are unsigned 32-bit; the archive's int columns hold the same bits.
  if (c.FLAGS) p.put('infoFlag', c.FLAGS);
  if (c.FLAGS2) p.put('infoFlag2', c.FLAGS2);
  return p;
}
