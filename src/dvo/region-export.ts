// The objects of one region with their mean photometry (what an OB batch is made from):
// the Average columns ippToPsps uses and, per filter, the SecFilt means.
import { FitsFile, fitsTable } from '../fits/index.ts';
import { allocColumn, collectTable, columnInfo, type ColumnBatch, type ColumnInfo } from '../table/index.ts';
import type { Logger } from '../common/index.ts';
import { openDvo } from './database.ts';
import { DvoError } from './errors.ts';
import { EXTNAME } from './layouts.ts';
import { regionPath } from './region-files.ts';
import { regionExists, withRegionsRead } from './region-reader.ts';
import type { SkyRegion } from './sky-table.ts';

const AVERAGE_WANTED = ['EXT_ID', 'RA', 'DEC', 'RA_ERR', 'DEC_ERR', 'NMEASURE', 'MEAN_EPOCH', 'OBJ_ID', 'CAT_ID'] as const;
const SECFILT_WANTED = ['MAG', 'MAG_ERR', 'MAG_STDEV', 'NCODE', 'MAG_AP', 'MAG_KRON', 'MAG_PSF_STK'] as const;

/** The objects of a region as a batch and its column descriptions. */
export interface RegionObjects {
  readonly region: SkyRegion;
  readonly columns: readonly ColumnInfo[];
  readonly rows: ColumnBatch;
}

/** Reads the objects of the region named (`n0000/00123`) or numbered (its SkyTable index). */
export async function exportRegion(dir: string, which: string | number, options: { log?: Pick<Logger, 'warn'>; lockTimeoutMs?: number } = {}): Promise<RegionObjects> {
  const db = await openDvo(dir);
  const region = typeof which === 'number' ? db.sky.regions.find((r) => r.index === which) : db.sky.regions.find((r) => r.name === which);
  if (!region) throw new DvoError('dvo_no_such_region', `${dir} has no region ${which}; list them with ipp dvo regions --db ${dir}`);
  const filters = db.photcodes.secCodes.map((c) => c.name);
  const columns: ColumnInfo[] = [
    columnInfo('OBJ_ID', 'uint64', { description: 'PS1 objID' }),
    columnInfo('RA', 'float64', { unit: 'deg' }), columnInfo('DEC', 'float64', { unit: 'deg' }),
    columnInfo('RA_ERR', 'float32', { unit: 'arcsec' }), columnInfo('DEC_ERR', 'float32', { unit: 'arcsec' }),
    columnInfo('NMEASURE', 'uint16'), columnInfo('MEAN_EPOCH', 'int32', { unit: 's' }),
    columnInfo('DVO_OBJ_ID', 'uint32'), columnInfo('CAT_ID', 'uint32'),
  ];
  for (const f of filters) {
    for (const c of SECFILT_WANTED) columns.push(columnInfo(`${f}_${c}`, c === 'NCODE' ? 'int16' : 'float32', c === 'NCODE' ? {} : { unit: 'mag' }));
  }
  const lock = { ...(options.log ? { log: options.log } : {}), ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}) };
  return withRegionsRead(dir, [region], lock, async () => {
    if (!await regionExists(dir, region)) {
      return { region, columns, rows: { rowCount: 0, columns: columns.map((c) => allocColumn(c, 0)) } };
    }
    const cpt = await FitsFile.open(regionPath(dir, region, 'cpt'));
    const cps = await FitsFile.open(regionPath(dir, region, 'cps'));
    try {
      const ave = await collectTable(fitsTable(cpt, EXTNAME.average), { columns: [...AVERAGE_WANTED] });
      const sec = await collectTable(fitsTable(cps, EXTNAME.secfilt), { columns: [...SECFILT_WANTED] });
      const n = ave.rowCount;
      const nsec = filters.length;
      const out = ave.columns.map((c) => ({ values: c.values }));
      // SecFilt rows are object-major: object o, filter f at row o·nsec + f.
      for (let f = 0; f < nsec; f++) {
        SECFILT_WANTED.forEach((_, k) => {
          const src = sec.columns[k].values as Float32Array | Int16Array;
          const dst = new (src.constructor as new (n: number) => Float32Array | Int16Array)(n);
          for (let o = 0; o < n; o++) dst[o] = src[o * nsec + f];
          out.push({ values: dst });
        });
      }
      return { region, columns, rows: { rowCount: n, columns: out } };
    } finally {
      await cpt.close();
      await cps.close();
    }
  });
}
