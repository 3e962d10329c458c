// The OB (object) batch of one DVO region (a cpt/cps pair): ObjectThin (full rows that
// replace the stubs of P2/ST batches) and MeanObject (mean photometry per filter).
import { exportRegion, regionPath, zoneId } from '../../dvo/index.ts';
import type { NumericArray } from '../../table/index.ts';
import { TablePart, type ArchiveTable } from './archive-table.ts';
import { emptyTable, finishBatch, loadSchema, sourceError } from './common.ts';
import { FILTER_IDS, randomFromIds, skyCoordinates } from './convert.ts';
import type { BatchContext, BuiltBatch } from './types.ts';

/** The source of an OB batch. */
export interface ObSource {
  readonly dvoDir: string;
  /** The region's index in the DVO SkyTable. */
  readonly regionIndex: number;
}

// DVO's MEAN_EPOCH counts seconds from 1970 (Unix time); MJD 40587 is 1970-01-01.
const MJD_UNIX = 40587;

/** Builds the OB batch of one DVO region (see the README for every column's rule). */
export async function buildObBatch(ctx: BatchContext, src: ObSource): Promise<BuiltBatch> {
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const schema = await loadSchema(ctx, 'OB');
  let t = performance.now();
  let region: Awaited<ReturnType<typeof exportRegion>>;
  try {
    region = await exportRegion(src.dvoDir, src.regionIndex, ctx.log ? { log: ctx.log } : {});
  } catch (error) {
    throw sourceError(src.dvoDir, error);
  }
  timings.read = performance.now() - t;
  t = performance.now();
  const n = region.rows.rowCount;
  const col = (name: string): NumericArray | undefined => {
    const k = region.columns.findIndex((c) => c.name === name);
    return k < 0 ? undefined : region.rows.columns[k].values as NumericArray;
  };
  const ext = col('OBJ_ID') as BigUint64Array;
  const objId = new BigInt64Array(ext.buffer, ext.byteOffset, n);
  const ra = col('RA') as Float64Array;
  const dec = col('DEC') as Float64Array;
  const catId = col('CAT_ID') as Uint32Array;
  const dvoObj = col('DVO_OBJ_ID') as Uint32Array;
  const cpt = regionPath(src.dvoDir, region.region, 'cpt');
  const origin = { file: cpt, hdu: `region ${src.regionIndex}`, describeRow: (i: number) => `row ${i + 1} (objID ${objId[i]})` };
  const tables: ArchiveTable[] = [];
  for (const s of schema.tables) {
    if (s.name === 'ObjectThin') {
      const p = new TablePart(s, n, origin);
      p.putBig('objID', objId);
      // The IPP's own number of the object: its region in the high word, its row number in the low.
      const ipp = new BigInt64Array(n);
      const w = new Uint32Array(ipp.buffer);
      for (let i = 0; i < n; i++) { w[2 * i] = dvoObj[i]; w[2 * i + 1] = catId[i]; }
      p.putBig('ippObjID', ipp);
      const zone = new Float64Array(n);
      for (let i = 0; i < n; i++) zone[i] = zoneId(dec[i]);
      p.put('zoneID', zone);
      const rnd = new Float64Array(n);
      randomFromIds(objId, rnd);
      p.put('randomID', rnd);
      p.put('dvoRegionID', catId);
      p.put('raMean', ra);
      p.put('decMean', dec);
      const raErr = col('RA_ERR');
      if (raErr) p.put('raMeanErr', raErr as Float32Array);
      const decErr = col('DEC_ERR');
      if (decErr) p.put('decMeanErr', decErr as Float32Array);
      const epoch = col('MEAN_EPOCH') as Int32Array | undefined;
      if (epoch) {
        const mjd = new Float64Array(n);
        for (let i = 0; i < n; i++) mjd[i] = epoch[i] !== 0 ? epoch[i] / 86400 + MJD_UNIX : NaN;
        p.put('epochMean', mjd);
      }
      const sky = skyCoordinates(ra, dec, n);
      p.put('cx', sky.cx); p.put('cy', sky.cy); p.put('cz', sky.cz);
      p.put('l', sky.l); p.put('b', sky.b); p.put('lambda', sky.lambda); p.put('beta', sky.beta);
      const nmeas = col('NMEASURE');
      if (nmeas) p.put('nDetections', nmeas as Uint16Array);
      for (const f of Object.keys(FILTER_IDS)) {
        const ncode = col(`${f}_NCODE`);
        if (ncode) p.put(`n${f}`, ncode as Int16Array);
      }
      tables.push({ schema: s, parts: n > 0 ? [p] : [] });
    } else if (s.name === 'MeanObject') {
      const p = new TablePart(s, n, origin);
      p.putBig('objID', objId);
      for (const f of Object.keys(FILTER_IDS)) {
        const ncode = col(`${f}_NCODE`) as Int16Array | undefined;
        if (!ncode) continue;
        // A filter with no measurement has no mean: every column keeps its default.
        const masked = (name: string): Float64Array | undefined => {
          const v = col(`${f}_${name}`) as Float32Array | undefined;
          if (!v) return undefined;
          const out = new Float64Array(n);
          for (let i = 0; i < n; i++) out[i] = ncode[i] > 0 ? v[i] : NaN;
          return out;
        };
        const put = (to: string, from: string): void => { const v = masked(from); if (v) p.put(to, v); };
        put(`${f}MeanPSFMag`, 'MAG');
        put(`${f}MeanPSFMagErr`, 'MAG_ERR');
        put(`${f}MeanPSFMagStd`, 'MAG_STDEV');
        put(`${f}MeanKronMag`, 'MAG_KRON');
        put(`${f}MeanApMag`, 'MAG_AP');
        const npt = new Float64Array(n);
        for (let i = 0; i < n; i++) npt[i] = ncode[i] > 0 ? ncode[i] : NaN;
        p.put(`${f}MeanPSFMagNpt`, npt);
      }
      tables.push({ schema: s, parts: n > 0 ? [p] : [] });
    } else {
      warnings.push(`table ${s.name} of OB.xml has no source in the OB builder: written empty`);
      tables.push(emptyTable(s));
    }
  }
  timings.convert = performance.now() - t;
  return finishBatch(ctx, {
    type: 'OB', srcId: src.regionIndex,
    source: { kind: 'dvoRegion', id: src.regionIndex, paths: [cpt, regionPath(src.dvoDir, region.region, 'cps')] },
    schemaFile: schema.file, schemaMd5: schema.md5, tables, mainTable: 'ObjectThin', warnings, timings,
  });
}
