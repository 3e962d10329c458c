// The stages of the processing database in one table. Every operation (record, pending,
// revert, advance, state changes, listing) reads a stage's tables, keys and completion rule
// from here, so it is written once for all stages.
import { Gpc1Error } from './errors.ts';

/** Stage names, in pipeline order (the paper's names). */
export const STAGE_NAMES = [
  'chip', 'camera', 'fake', 'warp', 'stack', 'staticsky', 'skycal', 'fullforce', 'diff', 'addstar', 'publish',
] as const;

/** A processing stage. */
export type StageName = typeof STAGE_NAMES[number];

/** The stages that chain into each other by `end_stage` (the paper's chip → camera → fake → warp). */
export const CHAIN: readonly StageName[] = ['chip', 'camera', 'fake', 'warp'];

/** How a component column is stored: text, a 64-bit integer, or a double. */
export type ColumnKind = 'text' | 'int' | 'bigint' | 'real';

/**
 * The components a run needs, as SQL correlated with the run's alias `r`: the tables to read
 * (`from`), the join condition (`where`) and the expression naming one component. A run with
 * no expected rows yet (a warp run before its skycells are mapped) is never complete.
 */
export interface ExpectedComponents {
  readonly from: string;
  readonly where: string;
  readonly component: string;
}

/** One stage: its primary (run) table, its component table, and how runs complete and chain. */
export interface StageDescriptor {
  readonly name: StageName;
  /** One line for help and errors. */
  readonly summary: string;
  readonly runTable: string;
  /** The run's key column, shared by the component table. */
  readonly key: string;
  readonly componentTable: string;
  /** The column naming a component within a run (class_id, skycell_id, warp_id); null when a run has exactly one component. */
  readonly componentColumn: string | null;
  readonly componentKind: 'text' | 'int';
  /** What a run of a multi-component stage needs; null for one-component stages. */
  readonly expected: ExpectedComponents | null;
  /** Run columns copied into each component row (e.g. the exposure of a chip). */
  readonly copyFromRun: readonly string[];
  /** Optional result columns of a component row, besides fault and quality. */
  readonly metrics: Readonly<Record<string, ColumnKind>>;
  /** The run table's input column (chipRun.exp_id, camRun.chip_id...), for listings. */
  readonly inputs: readonly string[];
  /** The stage queued when a run of this one is advanced and its end_stage lies further on. */
  readonly next: StageName | null;
  /** For a stage queued by the previous one: the column naming the parent run. */
  readonly parentColumn: string | null;
}

const COMMON_METRICS: Record<string, ColumnKind> = {
  path_base: 'text', uri: 'text', hostname: 'text', dtime_script: 'real', software_ver: 'text', note: 'text',
};

function metrics(own: Record<string, ColumnKind>): Readonly<Record<string, ColumnKind>> {
  return Object.freeze({ ...COMMON_METRICS, ...own });
}

const DESCRIPTORS: readonly StageDescriptor[] = [
  {
    name: 'chip', summary: 'detrend and detect sources on each chip of an exposure (one component per rawImfile)',
    runTable: 'chipRun', key: 'chip_id', componentTable: 'chipProcessedImfile',
    componentColumn: 'class_id', componentKind: 'text',
    expected: { from: 'rawImfile e', where: 'e.exp_id = r.exp_id AND e.ignored = 0', component: 'e.class_id' },
    copyFromRun: ['exp_id'],
    metrics: metrics({
      bg: 'real', bg_stdev: 'real', bg_mean_stdev: 'real', fwhm_major: 'real', fwhm_minor: 'real',
      n_stars: 'int', n_extended: 'int', n_cr: 'int', dtime_detrend: 'real', dtime_photom: 'real', dtime_total: 'real',
    }),
    inputs: ['exp_id'], next: 'camera', parentColumn: null,
  },
  {
    name: 'camera', summary: 'calibrate the whole exposure: astrometry, photometry, the smf catalogue (one component)',
    runTable: 'camRun', key: 'cam_id', componentTable: 'camProcessedExp',
    componentColumn: null, componentKind: 'text', expected: null, copyFromRun: [],
    metrics: metrics({
      bg: 'real', bg_stdev: 'real', sigma_ra: 'real', sigma_dec: 'real', zpt_obs: 'real', zpt_stdev: 'real',
      fwhm_major: 'real', fwhm_minor: 'real', n_stars: 'int', n_astrom: 'int', n_extended: 'int', dtime_astrom: 'real',
    }),
    inputs: ['chip_id'], next: 'fake', parentColumn: 'chip_id',
  },
  {
    name: 'fake', summary: 'the fake-source stage, a pass-through per chip (one component per chip)',
    runTable: 'fakeRun', key: 'fake_id', componentTable: 'fakeProcessedImfile',
    componentColumn: 'class_id', componentKind: 'text',
    expected: {
      from: 'camRun x1 JOIN chipRun x2 ON x2.chip_id = x1.chip_id JOIN rawImfile e ON e.exp_id = x2.exp_id AND e.ignored = 0',
      where: 'x1.cam_id = r.cam_id', component: 'e.class_id',
    },
    copyFromRun: [], metrics: metrics({ dtime_fake: 'real' }),
    inputs: ['cam_id'], next: 'warp', parentColumn: 'cam_id',
  },
  {
    name: 'warp', summary: 'resample chips onto skycells (one component per skycell of the run\'s skycell map)',
    runTable: 'warpRun', key: 'warp_id', componentTable: 'warpSkyfile',
    componentColumn: 'skycell_id', componentKind: 'text',
    expected: { from: 'warpSkyCellMap e', where: 'e.warp_id = r.warp_id', component: 'e.skycell_id' },
    copyFromRun: ['tess_id'], metrics: metrics({ bg: 'real', bg_stdev: 'real', good_frac: 'real', dtime_warp: 'real' }),
    inputs: ['fake_id', 'tess_id'], next: null, parentColumn: 'fake_id',
  },
  {
    name: 'stack', summary: 'add the warps of one skycell and filter (one component)',
    runTable: 'stackRun', key: 'stack_id', componentTable: 'stackSumSkyfile',
    componentColumn: null, componentKind: 'text', expected: null, copyFromRun: [],
    metrics: metrics({ bg: 'real', bg_stdev: 'real', good_frac: 'real', mjd_obs: 'real', sources: 'int', dtime_stack: 'real' }),
    inputs: ['skycell_id', 'tess_id', 'filter'], next: null, parentColumn: null,
  },
  {
    name: 'staticsky', summary: 'photometry of the stacks of one skycell in all filters, the cmf catalogue (one component)',
    runTable: 'staticskyRun', key: 'sky_id', componentTable: 'staticskyResult',
    componentColumn: null, componentKind: 'text', expected: null, copyFromRun: [],
    metrics: metrics({ sources: 'int', num_inputs: 'int', good_frac: 'real', dtime_phot: 'real' }),
    inputs: [], next: null, parentColumn: null,
  },
  {
    name: 'skycal', summary: 'recalibrate one stack\'s static-sky catalogue (one component)',
    runTable: 'skycalRun', key: 'skycal_id', componentTable: 'skycalResult',
    componentColumn: null, componentKind: 'text', expected: null, copyFromRun: [],
    metrics: metrics({
      sigma_ra: 'real', sigma_dec: 'real', n_astrom: 'int', n_detections: 'int', n_extended: 'int',
      zpt_obs: 'real', zpt_stdev: 'real', fwhm_major: 'real', fwhm_minor: 'real', dtime_astrom: 'real',
    }),
    inputs: ['sky_id', 'stack_id'], next: null, parentColumn: null,
  },
  {
    name: 'fullforce', summary: 'forced photometry on every warp of a stack (one component per input warp)',
    runTable: 'fullForceRun', key: 'ff_id', componentTable: 'fullForceResult',
    componentColumn: 'warp_id', componentKind: 'int',
    expected: { from: 'fullForceInput e', where: 'e.ff_id = r.ff_id', component: 'e.warp_id' },
    copyFromRun: [], metrics: metrics({ n_detections: 'int' }),
    inputs: ['skycal_id'], next: null, parentColumn: null,
  },
  {
    name: 'diff', summary: 'difference images (one component per input skycell)',
    runTable: 'diffRun', key: 'diff_id', componentTable: 'diffSkyfile',
    componentColumn: 'skycell_id', componentKind: 'text',
    expected: { from: 'diffInputSkyfile e', where: 'e.diff_id = r.diff_id', component: 'e.skycell_id' },
    copyFromRun: [], metrics: metrics({ bg: 'real', bg_stdev: 'real', good_frac: 'real', sources: 'int', dtime_diff: 'real' }),
    inputs: ['tess_id'], next: null, parentColumn: null,
  },
  {
    name: 'addstar', summary: 'load a catalogue into DVO (one component)',
    runTable: 'addRun', key: 'add_id', componentTable: 'addProcessedExp',
    componentColumn: null, componentKind: 'text', expected: null, copyFromRun: [],
    metrics: metrics({ dvodb_path: 'text', dtime_addstar: 'real' }),
    inputs: ['stage', 'stage_id'], next: null, parentColumn: null,
  },
  {
    name: 'publish', summary: 'publish a run\'s products to a client (one component)',
    runTable: 'publishRun', key: 'pub_id', componentTable: 'publishDone',
    componentColumn: null, componentKind: 'text', expected: null, copyFromRun: [], metrics: metrics({}),
    inputs: ['client', 'stage', 'stage_id'], next: null, parentColumn: null,
  },
];

const BY_NAME = new Map(DESCRIPTORS.map((d) => [d.name, Object.freeze(d)]));

/** The descriptor of a stage. */
export function stage(name: StageName): StageDescriptor {
  return BY_NAME.get(name)!;
}

/** Every stage's descriptor, in pipeline order. */
export function allStages(): readonly StageDescriptor[] {
  return DESCRIPTORS;
}

/** Checks a stage name; a clear error listing the stages otherwise. */
export function parseStage(name: string): StageName {
  if (BY_NAME.has(name as StageName)) return name as StageName;
  throw new Gpc1Error('gpc1_unknown_stage', `unknown stage "${name}"; the stages are ${STAGE_NAMES.join(', ')}`);
}

/** The stages a run of `name` may name as its end_stage: itself and those it chains into. */
export function endStagesOf(name: StageName): StageName[] {
  const at = CHAIN.indexOf(name);
  return at < 0 ? [name] : CHAIN.slice(at);
}
