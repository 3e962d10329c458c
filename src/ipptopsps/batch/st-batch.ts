// The ST (stack) batch of one stack (a cmf: one skycell in one filter): StackMeta from its
// headers, StackToImage from gpc1 (the chips the stack was made from), StackObjectThin per
// stack detection (that filter's columns; the other filters' keep their defaults) with the
// DVO IDs, and ObjectThin stubs for the objects referred to.
import type { Queryable } from '../../db/index.ts';
import { stackPhotcodeName, type Filter } from '../../dvo/index.ts';
import type { FitsFile, HduInfo, Header } from '../../fits/index.ts';
import { stackInputs } from '../../gpc1/index.ts';
import type { TableSchema } from '../../votable/index.ts';
import { IppToPspsError } from '../errors.ts';
import { TablePart, type ArchiveTable } from './archive-table.ts';
import {
  dropMissingInTest, dvoPhotcodes, emptyTable, finishBatch, loadSchema, matchDetections, openCatalogue, readSourceColumns, schemaTable,
  sourceError, u32ToBig, type SourceColumns,
} from './common.ts';
import {
  ccdIdOf, filterIdOf, headerNumber, headerText, randomFromIds, requireNumber, skycellIdsOf, surveyIdOf, wcsOf, type HeaderPlace,
} from './convert.ts';
import { objectStubs } from './object-stubs.ts';
import { photoCalIdOf, putWcs } from './p2-batch.ts';
import type { BatchContext, BuiltBatch, DetectionIds, DetectionLookup } from './types.ts';

/** The cmf columns an ST batch reads. */
export const ST_SOURCE_COLUMNS: readonly string[] = [
  'IPP_IDET', 'X_PSF_SIG', 'Y_PSF_SIG', 'PLTSCALE', 'PSF_INST_MAG', 'PSF_INST_MAG_SIG', 'AP_MAG', 'AP_FLUX', 'AP_FLUX_SIG',
  'RA_PSF', 'DEC_PSF', 'KRON_FLUX', 'KRON_FLUX_ERR', 'FLAGS', 'FLAGS2', 'N_FRAMES',
];
const REQUIRED_SOURCE = ['IPP_IDET', 'RA_PSF', 'DEC_PSF'];
// 2.5 / ln 10: a relative flux error as a magnitude error.
const MAG_PER_LN = 1.0857362047581294;

/** The source of an ST batch. */
export interface StSource {
  readonly cmfPath: string;
  readonly stackId: number;
  readonly dvoDir: string;
  readonly lookup: DetectionLookup;
  /**
   * gpc1, where StackToImage comes from (the stack's warps, their exposures and chips). The
   * loader always gives it; without it (a bench) the table is written empty with a warning.
   */
  readonly gpc1?: Queryable;
}

/** Builds the ST batch of one stack (see the README for every column's rule). */
export async function buildStBatch(ctx: BatchContext, src: StSource): Promise<BuiltBatch> {
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const schema = await loadSchema(ctx, 'ST');
  let t = performance.now();
  const file = await openCatalogue(src.cmfPath);
  try {
    const primary = file.hdus[0].header;
    const pplace = place(file, file.hdus[0]);
    const table = file.hdus.find((h) => /\.psf$/i.test(h.extname ?? ''));
    if (!table) throw new IppToPspsError('batch_bad_source', `${src.cmfPath}: no stack detection table (SkyChip.psf); is this a cmf?`);
    const stem = table.extname!.replace(/\.psf$/i, '');
    const head = file.hdus.find((h) => h.extname?.toUpperCase() === `${stem.toUpperCase()}.HDR`);
    const hplace = head ? place(file, head) : pplace;
    const hh = head?.header ?? primary;
    const filter = headerText(primary, 'FPA.FILTER') ?? headerText(primary, 'FILTER');
    const filterId = filterIdOf(filter);
    if (filterId === undefined) throw new IppToPspsError('batch_bad_keyword', `${pplace.file}: ${pplace.hdu}: FPA.FILTER ${JSON.stringify(filter)} is not one of g r i z y`);
    const f = filter!.charAt(0);
    const imageId = requireNumber(primary, 'IMAGEID', pplace);
    const st = {
      mjd: headerNumber(primary, 'MJD-OBS', pplace),
      exptime: headerNumber(primary, 'EXPTIME', pplace),
      zpt: headerNumber(primary, 'ZPT_OBS', pplace) ?? headerNumber(primary, 'FPA.ZP', pplace),
      skycell: skycellIdsOf(headerText(primary, 'SKYCELL')),
      // TESS_ID names the tessellation (RINGS.V3); the archive's tessID is a number only when the header gives one.
      tessId: typeof primary.get('TESS_ID') === 'number' ? primary.get('TESS_ID') as number : undefined,
    };
    const surveyId = ctx.surveyId ?? surveyIdOf(headerText(primary, 'OBJECT'));
    const photcodes = await dvoPhotcodes(src.dvoDir);
    const { rows, columns } = await readSourceColumns(file, table, ST_SOURCE_COLUMNS, REQUIRED_SOURCE);
    timings.read = performance.now() - t;

    t = performance.now();
    let ids: DetectionIds;
    try {
      ids = await src.lookup(imageId);
    } catch (error) {
      throw sourceError(src.cmfPath, error);
    }
    timings.lookup = performance.now() - t;

    t = performance.now();
    const metaS = schemaTable(schema, 'StackMeta');
    const objS = schemaTable(schema, 'StackObjectThin');
    const thinS = schemaTable(schema, 'ObjectThin');
    const toImageS = schemaTable(schema, 'StackToImage');
    let toImage: ArchiveTable | undefined;
    if (toImageS) {
      if (src.gpc1) toImage = { schema: toImageS, parts: [await stackToImagePart(toImageS, src.gpc1, src.stackId, src.cmfPath)] };
      else warnings.push('no gpc1 given: table StackToImage written empty');
    }
    const at = matchDetections(columns.IPP_IDET!, rows, ids);
    let stackObjects: ArchiveTable | undefined;
    if (objS) {
      let part = stackObjectPart(objS, columns, rows, at, ids, {
        file: file.name, hdu: `${table.extname} (HDU ${table.index})`, f, stackId: src.stackId, surveyId, st,
      });
      const missing = at.reduce((n, x) => n + (x < 0 ? 1 : 0), 0);
      if (missing > 0) {
        if (!ctx.test) {
          const i = at.indexOf(-1);
          throw new IppToPspsError('batch_unknown_object', `${file.name}: ${table.extname} (HDU ${table.index}): table StackObjectThin: column objID: ${part.describeRow(i)}: DVO ${src.dvoDir} has no detection IPP_IDET ${columns.IPP_IDET![i]} of IMAGEID ${imageId} (${missing} of ${rows} stack detections are unknown); ingest the stack with addstar first`);
        }
        warnings.push(`test mode: ${missing} stack detection${missing === 1 ? '' : 's'} unknown to DVO dropped`);
        part = part.filter(Uint8Array.from(at, (x) => (x < 0 ? 0 : 1)));
      }
      stackObjects = { schema: objS, parts: [part] };
      dropMissingInTest(ctx, stackObjects, warnings);
    }
    const tables: ArchiveTable[] = [];
    for (const s of schema.tables) {
      if (s === metaS) {
        tables.push({ schema: s, parts: [stackMetaPart(s, primary, hh, hplace, src, filterId, surveyId, st, rows, photoCalIdOf(photcodes, stackPhotcodeName(f as Filter)))] });
      } else if (s === objS) tables.push(stackObjects!);
      else if (s === toImageS) tables.push(toImage ?? emptyTable(s));
      else if (s === thinS) tables.push(objectStubs(s, stackObjects, { file: file.name, hdu: 'StackObjectThin objIDs' }, surveyId));
      else {
        warnings.push(`table ${s.name} of ST.xml has no source in the ST builder: written empty`);
        tables.push(emptyTable(s));
      }
    }
    timings.convert = performance.now() - t;
    return await finishBatch(ctx, {
      type: 'ST', srcId: src.stackId, source: { kind: 'stackRun', id: src.stackId, paths: [src.cmfPath] },
      schemaFile: schema.file, schemaMd5: schema.md5, tables, mainTable: 'StackObjectThin', warnings, timings,
    });
  } finally {
    await file.close();
  }
}

/**
 * StackToImage: one row per chip image that went into the stack, as gpc1 records it, sorted
 * by imageID (100 × exp_id + ccdID). A stack gpc1 does not know, one without inputs, an input
 * warp whose exposure cannot be reached or that has no chip mapped to the stack's skycell,
 * or a chip name that is not an OTA fails the batch naming the stack and what is missing.
 */
async function stackToImagePart(s: TableSchema, gpc1: Queryable, stackId: number, cmfPath: string): Promise<TablePart> {
  const fail = (what: string): never => {
    throw new IppToPspsError('batch_stack_inputs', `${cmfPath}: table StackToImage: stack_id ${stackId}: ${what}`);
  };
  let inputs;
  try {
    inputs = await stackInputs(gpc1, stackId);
  } catch (cause) {
    throw new IppToPspsError('batch_stack_inputs', `${cmfPath}: table StackToImage: stack_id ${stackId}: cannot read its inputs from gpc1: ${(cause as Error).message}`, { cause });
  }
  if (!inputs) return fail('gpc1 has no such stack run (stackRun); queue the stacks of this gpc1 again');
  if (inputs.warps.length === 0) return fail('gpc1 lists no input warps (stackInputSkyfile)');
  const ids: number[] = [];
  for (const w of inputs.warps) {
    if (w.expId === null) fail(`input warp_id ${w.warpId} leads to no exposure (warpRun → fakeRun → camRun → chipRun is broken)`);
    if (w.classIds.length === 0) fail(`input warp_id ${w.warpId} (exp_id ${w.expId}) has no chip mapped to ${inputs.tessId} ${inputs.skycellId} in warpSkyCellMap`);
    for (const c of w.classIds) {
      const ccd = ccdIdOf(c);
      if (ccd === undefined) fail(`input warp_id ${w.warpId} (exp_id ${w.expId}) maps chip "${c}" to ${inputs.skycellId}, which is not an OTA name XYnm`);
      ids.push(100 * w.expId! + ccd!);
    }
  }
  // Two warps of one exposure would give the same images twice: one row each.
  const images = BigInt64Array.from(new Set(ids), (x) => BigInt(x)).sort();
  const p = new TablePart(s, images.length, {
    file: cmfPath, hdu: `gpc1 stack_id ${stackId} inputs`, describeRow: (i) => `row ${i + 1} (imageID ${images[i]})`,
  });
  p.fill('stackImageID', stackId);
  p.putBig('imageID', images);
  return p;
}

function place(file: FitsFile, h: HduInfo): HeaderPlace {
  return { file: file.name, hdu: `${h.extname ?? (h.index === 0 ? 'primary header' : `HDU ${h.index}`)} (HDU ${h.index})` };
}

interface StackFacts {
  readonly mjd?: number;
  readonly exptime?: number;
  readonly zpt?: number;
  readonly skycell?: { projectionId: number; skyCellId: number };
  readonly tessId?: number;
}

function stackMetaPart(
  s: TableSchema, primary: Header, h: Header, hplace: HeaderPlace, src: StSource, filterId: number, surveyId: number,
  st: StackFacts, rows: number, photoCalId: number | undefined,
): TablePart {
  const p = new TablePart(s, 1, { file: hplace.file, hdu: hplace.hdu });
  const wcs = wcsOf(h, hplace);
  const arcsec = (v: number | undefined) => (v === undefined || wcs.scale === undefined ? undefined : v * wcs.scale);
  const fwMaj = headerNumber(h, 'FWHM_MAJ', hplace);
  const fwMin = headerNumber(h, 'FWHM_MIN', hplace);
  p.fill('stackImageID', src.stackId);
  p.fill('surveyID', surveyId);
  p.fill('filterID', filterId);
  p.fill('tessID', st.tessId);
  p.fill('projectionID', st.skycell?.projectionId);
  p.fill('skyCellID', st.skycell?.skyCellId);
  p.fill('photoCalID', photoCalId);
  p.fill('nP2Images', headerNumber(primary, 'NINPUTS', hplace));
  p.fill('psfFWHM', fwMaj !== undefined && fwMin !== undefined ? arcsec((fwMaj + fwMin) / 2) : undefined);
  p.fill('psfWidMajor', arcsec(fwMaj));
  p.fill('psfWidMinor', arcsec(fwMin));
  p.fill('photoZero', st.zpt);
  p.fill('expTime', st.exptime);
  p.fill('expStart', st.mjd);
  p.fill('nDetect', rows);
  p.fill('sky', headerNumber(h, 'MSKY_MN', hplace));
  p.fill('skyScat', headerNumber(h, 'MSKY_SIG', hplace));
  p.fill('numCols', headerNumber(h, 'IMNAXIS1', hplace));
  p.fill('numRows', headerNumber(h, 'IMNAXIS2', hplace));
  putWcs(p, wcs);
  return p;
}

/** f(i) for every row, as float64 (a plain loop: Float64Array.from with a function is slow). */
function perRow(n: number, f: (i: number) => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

interface StackRowsContext {
  readonly file: string;
  readonly hdu: string;
  readonly f: string;
  readonly stackId: number;
  readonly surveyId: number;
  readonly st: StackFacts;
}

function stackObjectPart(
  s: TableSchema, c: SourceColumns, n: number, at: Int32Array, ids: DetectionIds, x: StackRowsContext,
): TablePart {
  const idet = c.IPP_IDET!;
  const p = new TablePart(s, n, { file: x.file, hdu: x.hdu, describeRow: (i) => `row ${i + 1} (IPP_IDET ${idet[i]})` });
  const objId = new BigInt64Array(n);
  const detectId = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const k = at[i];
    if (k >= 0) { objId[i] = ids.objId[k]; detectId[i] = ids.detectId[k]; }
  }
  const f = x.f;
  p.putBig('objID', objId);
  p.putBig('uniquePspsSTid', detectId);
  p.fill('surveyID', x.surveyId);
  p.fill('tessID', x.st.tessId);
  p.fill('projectionID', x.st.skycell?.projectionId);
  p.fill('skyCellID', x.st.skycell?.skyCellId);
  const rnd = new Float64Array(n);
  randomFromIds(detectId, rnd);
  p.put('randomStackObjID', rnd);
  p.putBig(`${f}ippDetectID`, u32ToBig(idet, n));
  p.putBig(`${f}stackDetectID`, detectId);
  p.fill(`${f}stackImageID`, x.stackId);
  p.put(`${f}ra`, c.RA_PSF!);
  p.put(`${f}dec`, c.DEC_PSF!);
  const sc = c.PLTSCALE;
  if (sc && c.X_PSF_SIG) p.put(`${f}raErr`, perRow(n, (i) => c.X_PSF_SIG![i] * sc[i]));
  if (sc && c.Y_PSF_SIG) p.put(`${f}decErr`, perRow(n, (i) => c.Y_PSF_SIG![i] * sc[i]));
  p.fill(`${f}Epoch`, x.st.mjd);
  // Instrumental magnitudes are of total counts: AB = inst + ZP + 2.5·log10(exptime).
  if (x.st.zpt !== undefined && x.st.exptime !== undefined && x.st.exptime > 0) {
    const off = x.st.zpt + 2.5 * Math.log10(x.st.exptime);
    if (c.PSF_INST_MAG) p.put(`${f}PSFMag`, c.PSF_INST_MAG, 1, off);
    if (c.AP_MAG) p.put(`${f}ApMag`, c.AP_MAG, 1, off);
    const kf = c.KRON_FLUX;
    if (kf) p.put(`${f}KronMag`, perRow(n, (i) => (kf[i] > 0 ? -2.5 * Math.log10(kf[i]) + off : NaN)));
  }
  if (c.PSF_INST_MAG_SIG) p.put(`${f}PSFMagErr`, c.PSF_INST_MAG_SIG);
  const af = c.AP_FLUX;
  const afs = c.AP_FLUX_SIG;
  if (af && afs) p.put(`${f}ApMagErr`, perRow(n, (i) => (af[i] > 0 ? (MAG_PER_LN * afs[i]) / af[i] : NaN)));
  const kf = c.KRON_FLUX;
  const kfe = c.KRON_FLUX_ERR;
  if (kf && kfe) p.put(`${f}KronMagErr`, perRow(n, (i) => (kf[i] > 0 ? (MAG_PER_LN * kfe[i]) / kf[i] : NaN)));
  if (c.FLAGS) p.put(`${f}infoFlag`, c.FLAGS);
  if (c.FLAGS2) p.put(`${f}infoFlag2`, c.FLAGS2);
  if (c.N_FRAMES) p.put(`${f}nFrames`, c.N_FRAMES);
  return p;
}
