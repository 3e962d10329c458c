// The IN (initialization) batch: the small system tables the other batches refer to. The
// filters and photometric calibrations come from the DVO database's photcodes (the camera's
// per-device and stack codes); surveys and flag bits from this system's definitions.
import { photcodesPath } from '../../dvo/index.ts';
import { FLAGS, FLAGS2 } from '../../sim/index.ts';
import type { TableSchema } from '../../votable/index.ts';
import { TablePart, type ArchiveTable } from './archive-table.ts';
import { dvoPhotcodes, emptyTable, finishBatch, loadSchema } from './common.ts';
import { FILTER_IDS, SURVEYS } from './convert.ts';
import type { BatchContext, BuiltBatch } from './types.ts';

/** The source of an IN batch. */
export interface InSource {
  readonly dvoDir: string;
}

// What each psphot bit means (FLAGS and FLAGS2 as the pipeline sets them), in our words.
const FLAG_TEXT: Readonly<Record<string, string>> = {
  PSFMODEL: 'fitted with the PSF model',
  EXTMODEL: 'fitted with an extended-source model',
  FITTED: 'a model fit was made',
  FAIL: 'the model fit failed',
  POOR: 'the model fit is poor',
  PSFSTAR: 'used to build the PSF model',
  SATSTAR: 'a saturated star',
  DEFECT: 'touches a detector defect',
  SATURATED: 'has saturated pixels',
  CR_LIMIT: 'consistent with a cosmic ray',
  EXT_LIMIT: 'more extended than the PSF',
  AP_MAGS: 'aperture magnitude measured',
  EXTENDED_STATS: 'extended-source statistics measured',
  LINEAR_FIT: 'fitted by the linear PSF fit',
  NONLINEAR_FIT: 'fitted by the non-linear PSF fit',
  PASS1_SRC: 'detected in the first detection pass',
  HAS_BRIGHTER_NEIGHBOR: 'a brighter source lies close by',
};

// ObjectThin.qualityFlag bits (MAST's ObjectQualityFlags), in our words.
const QUALITY_FLAGS: readonly [string, number, string][] = [
  ['QF_OBJ_EXT', 0x01, 'extended in this survey\'s data'],
  ['QF_OBJ_EXT_ALT', 0x02, 'extended in external data'],
  ['QF_OBJ_GOOD', 0x04, 'good-quality measurements in this survey\'s data'],
  ['QF_OBJ_GOOD_ALT', 0x08, 'good-quality measurements in external data'],
  ['QF_OBJ_GOOD_STACK', 0x10, 'good-quality object in the stacks'],
  ['QF_OBJ_BEST_STACK', 0x20, 'the primary stack measurements are the best ones'],
  ['QF_OBJ_SUSPECT_STACK', 0x40, 'suspect object in the stacks'],
  ['QF_OBJ_BAD_STACK', 0x80, 'poor-quality object in the stacks'],
];

function flagPart(s: TableSchema, file: string, rows: readonly [string, number, string][]): TablePart {
  const p = new TablePart(s, rows.length, { file, hdu: s.name, describeRow: (i) => `row ${i + 1} (${rows[i][0]})` });
  p.putText('name', rows.map((r) => r[0]));
  p.putBig('value', BigInt64Array.from(rows, (r) => BigInt(r[1])));
  p.putText('description', rows.map((r) => r[2]));
  return p;
}

const bits = (flags: Readonly<Record<string, number>>): [string, number, string][] =>
  Object.entries(flags).map(([name, value]) => [name, value, FLAG_TEXT[name] ?? '']);

/** Builds the IN batch (see the README). */
export async function buildInBatch(ctx: BatchContext, src: InSource): Promise<BuiltBatch> {
  const timings: Record<string, number> = {};
  const schema = await loadSchema(ctx, 'IN');
  const t = performance.now();
  const path = photcodesPath(src.dvoDir);
  const photcodes = await dvoPhotcodes(src.dvoDir);
  timings.read = performance.now() - t;
  const warnings: string[] = [];
  // Filters: the SEC photcodes the archive knows (g r i z y).
  const filters = photcodes.secCodes.filter((c) => FILTER_IDS[c.name] !== undefined);
  // Calibrations: the camera's photcodes (DEP) whose filter is one of those.
  const secName = new Map(photcodes.secCodes.map((c) => [c.code, c.name]));
  const cals = photcodes.codes.filter((c) => c.type === 'DEP' && FILTER_IDS[secName.get(c.equiv) ?? ''] !== undefined);
  const tables: ArchiveTable[] = schema.tables.map((s) => {
    switch (s.name) {
      case 'Filter': {
        const p = new TablePart(s, filters.length, { file: path, hdu: 'SEC photcodes' });
        p.put('filterID', filters.map((f) => FILTER_IDS[f.name]));
        p.putText('filterType', filters.map((f) => f.name));
        return { schema: s, parts: [p] };
      }
      case 'Survey': {
        const p = new TablePart(s, SURVEYS.length, { file: 'surveys', hdu: 'Survey' });
        p.put('surveyID', SURVEYS.map((v) => v.id));
        p.putText('name', SURVEYS.map((v) => v.name));
        p.putText('description', SURVEYS.map((v) => v.description));
        return { schema: s, parts: [p] };
      }
      case 'PhotoCal': {
        const p = new TablePart(s, cals.length, { file: path, hdu: 'DEP photcodes', describeRow: (i) => `row ${i + 1} (${cals[i].name})` });
        p.put('photoCalID', cals.map((c) => c.code));
        p.put('filterID', cals.map((c) => FILTER_IDS[secName.get(c.equiv)!]));
        p.putText('photoCode', cals.map((c) => c.name));
        p.put('zeroPoint', cals.map((c) => c.zeroPoint));
        return { schema: s, parts: [p] };
      }
      case 'DetectionFlags': return { schema: s, parts: [flagPart(s, 'psphot FLAGS', bits(FLAGS))] };
      case 'DetectionFlags2': return { schema: s, parts: [flagPart(s, 'psphot FLAGS2', bits(FLAGS2))] };
      case 'ObjectQualityFlags': return { schema: s, parts: [flagPart(s, 'quality flags', QUALITY_FLAGS)] };
      default:
        warnings.push(`table ${s.name} of IN.xml has no source in the IN builder: written empty`);
        return emptyTable(s);
    }
  });
  return finishBatch(ctx, {
    type: 'IN', srcId: 0, source: { kind: 'init', id: 0, paths: [path] },
    schemaFile: schema.file, schemaMd5: schema.md5, tables, warnings, timings,
  });
}
