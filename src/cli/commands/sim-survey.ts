// `ipp sim survey`: writes a simulated survey (smf and cmf catalogues, truth, survey.json).
import { resolve, sep } from 'node:path';
import { createProgress } from '../../common/index.ts';
import { listRuns, openGpc1 } from '../../gpc1/index.ts';
import {
  SURVEY_DEFAULTS, SimError, badArgument, defaultSurveyLabel, parseRange, recordSurveyInGpc1, resolveSurveyOptions, simulateSurvey, surveyIdClashes,
  type RecordResult, type SurveyConfig, type SurveyManifest, type SurveyOptions,
} from '../../sim/index.ts';
import { parseDbUrl, type Database } from '../../db/index.ts';
import { EXIT, type Command } from '../command.ts';
import { databaseUrl, dbOption } from '../settings.ts';

function wholeNumber(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\s*\d+\s*$/.test(text)) throw badArgument(name === 'seed' ? 'sim_bad_seed' : 'sim_bad_count', `--${name} "${text}" must be a whole number`);
  return Number(text);
}

/** Refuses, before anything is simulated, a survey whose label or ids gpc1 already holds: both said at once, so one answer fixes the command. */
async function refuseTaken(gpc1: Database, config: SurveyConfig, label: string): Promise<void> {
  const clashes = await surveyIdClashes(gpc1, config);
  const also = clashes.length > 0 ? `; it also already has ${clashes.join('; and ')}` : '';
  if ((await listRuns(gpc1, { stage: 'chip', label, limit: 1 })).length > 0) {
    throw new SimError('sim_label_taken', `gpc1 ${gpc1.url} already has runs labelled ${label}; give another --label, another --db, or --no-db${also}`);
  }
  if (clashes.length > 0) throw new SimError('sim_ids_taken', `gpc1 ${gpc1.url} already has ${clashes.join('; and ')}; or give another --db`);
}

/** `ipp sim survey`. */
export const simSurvey: Command = {
  name: 'survey',
  summary: 'simulate a survey: GPC1 exposures (smf), stacks (cmf), ground truth and survey.json',
  usage: '--out DIR [--db URL | --no-db] [--label L] [--exposures N] [--stacks M] [--ra A:B --dec C:D] [--seed S] [--filters grizy] [--density X] [--inject-defects LIST] [--json]',
  description: [
    'Writes a reproducible survey into DIR (same arguments, byte-identical files): a true sky of',
    'stars and galaxies with a medium-deep patch, N exposures of the 60-OTA GPC1 focal plane',
    '(smf/*.smf: a header and a CMF_PS1_V5 detection table per chip), M stacks on RINGS.V3',
    'skycells (cmf/*.cmf, CMF_PS1_SV2), the truth beside them (truth/) and survey.json.',
    'The survey is written into DIR.incomplete-XXXXXXXX and renamed to DIR at the end, so a',
    'failed run leaves nothing at DIR; an existing survey at DIR is replaced.',
    '',
    '--inject-defects takes a comma-separated list of truncated-smf, missing-chip,',
    'corrupt-keyword, nan-coords, duplicate-idet, each optionally with :count; survey.json',
    'lists under "defects" which file, chip and rows were damaged.',
    '',
    'The gpc1 rows the pipeline would have written are recorded in the database --db names',
    '(registration, chip → camera → fake → warp with camProcessedExp naming each smf, stack →',
    'staticsky → skycal with skycalResult naming each cmf), all in one transaction, labelled',
    '--label (default sim.SEED). The database is opened before anything is written; if the rows',
    'cannot be recorded the new survey directory is removed again, and a survey that was at DIR',
    'before is left as it was. Exposures take exp_ids from --first-exp-id on and stacks stack_ids',
    'from --first-stack-id on (these are in the files: IMAGEID, STACK_ID); a database that already',
    'holds them is refused before anything is simulated, naming the first free values. The ids',
    'also seed each chip\'s and stack\'s noise: the same seed with other ids gives other detections.',
  ].join('\n'),
  options: {
    out: { type: 'string', value: 'DIR', help: 'the survey directory to write' },
    exposures: { type: 'string', value: 'N', help: `exposures (default ${SURVEY_DEFAULTS.exposures})` },
    stacks: { type: 'string', value: 'M', help: `stacks, skycell x filter (default ${SURVEY_DEFAULTS.stacks})` },
    ra: { type: 'string', value: 'A:B', help: `RA range of the sky box, degrees (default ${SURVEY_DEFAULTS.ra.join(':')})` },
    dec: { type: 'string', value: 'C:D', help: `Dec range of the sky box, degrees (default ${SURVEY_DEFAULTS.dec.join(':')}; negative: --dec=-10:-4)` },
    seed: { type: 'string', value: 'S', help: `seed of every random choice (default ${SURVEY_DEFAULTS.seed})` },
    filters: { type: 'string', value: 'LETTERS', help: `filters to observe, of grizyw (default ${SURVEY_DEFAULTS.filters})` },
    density: { type: 'string', value: 'X', help: 'scale of the sky object counts (default 1; e.g. 0.05 for a quick small survey)' },
    'inject-defects': { type: 'string', value: 'LIST', help: 'defects to inject, e.g. truncated-smf,missing-chip:2' },
    'first-exp-id': { type: 'string', value: 'N', help: `exp_id of the first exposure (default ${SURVEY_DEFAULTS.firstExpId}); also moves the schedule and exposure names on` },
    'first-stack-id': { type: 'string', value: 'N', help: `stack_id of the first stack (default ${SURVEY_DEFAULTS.firstStackId})` },
    force: { type: 'boolean', help: 'replace DIR even if it is not a simulated survey' },
    db: dbOption('gpc1'),
    'no-db': { type: 'boolean', help: 'write the files only; record nothing in gpc1' },
    label: { type: 'string', value: 'L', help: 'the gpc1 label of the survey\'s runs (default sim.SEED)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  async run(args, ctx) {
    const v = args.values as Record<string, string | boolean | undefined>;
    if (args.positionals.length > 0) throw badArgument('sim_bad_argument', `unexpected argument "${args.positionals[0]}"; the survey directory is given with --out DIR`);
    const str = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
    const density = str('density');
    if (density !== undefined && !/^\s*(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(density)) {
      throw badArgument('sim_bad_density', `--density "${density}" must be a positive number (1 = realistic counts)`);
    }
    const exposures = wholeNumber(str('exposures'), 'exposures');
    const stacks = wholeNumber(str('stacks'), 'stacks');
    const seed = wholeNumber(str('seed'), 'seed');
    const firstExpId = wholeNumber(str('first-exp-id'), 'first-exp-id');
    const firstStackId = wholeNumber(str('first-stack-id'), 'first-stack-id');
    const ra = str('ra');
    const dec = str('dec');
    const filters = str('filters');
    const defects = str('inject-defects');
    const exposuresPlanned = exposures ?? SURVEY_DEFAULTS.exposures;
    const options: SurveyOptions = {
      out: str('out') ?? '',
      ...(exposures !== undefined ? { exposures } : {}),
      ...(stacks !== undefined ? { stacks } : {}),
      ...(ra !== undefined ? { ra: parseRange(ra, 'ra') } : {}),
      ...(dec !== undefined ? { dec: parseRange(dec, 'dec') } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(filters !== undefined ? { filters } : {}),
      ...(density !== undefined ? { density: Number(density) } : {}),
      ...(defects !== undefined ? { injectDefects: defects } : {}),
      ...(firstExpId !== undefined ? { firstExpId } : {}),
      ...(firstStackId !== undefined ? { firstStackId } : {}),
      force: v.force === true,
      signal: ctx.signal,
      progress: createProgress({
        label: 'sim survey', total: exposuresPlanned + (stacks ?? SURVEY_DEFAULTS.stacks), unit: 'files', stream: ctx.stderr,
      }),
    };
    const label = str('label') ?? defaultSurveyLabel(seed ?? SURVEY_DEFAULTS.seed);
    if (label.trim() === '') throw badArgument('sim_bad_argument', '--label is empty; give the label of the survey\'s gpc1 runs');
    const config = resolveSurveyOptions(options); // bad arguments are refused before the database is touched
    if (v['no-db'] && v.db !== undefined) throw badArgument('sim_bad_argument', 'give --db URL or --no-db, not both');
    const url = v['no-db'] ? null : databaseUrl('gpc1', args, ctx.env);
    const location = url === null ? null : parseDbUrl(url);
    const out = resolve(config.out);
    if (location?.engine === 'sqlite' && (location.path === out || location.path.startsWith(`${out}${sep}`))) {
      throw badArgument('sim_db_in_output', `the gpc1 database ${location.display} lies inside --out ${out}, which a survey replaces whole; keep the database outside it`);
    }
    // Open the database next: an unreachable one must fail before any file is written.
    const gpc1 = url === null ? null : await openGpc1(url);
    let recorded = null as RecordResult | null; // set by the record step
    let dir: string;
    let manifest;
    try {
      if (gpc1) await refuseTaken(gpc1, config, label);
      // The rows are written once the survey is in place, before an earlier one there is deleted.
      const record = gpc1 ? async (at: string, made: SurveyManifest) => {
        try {
          recorded = await recordSurveyInGpc1(gpc1, at, made, { label });
        } catch (error) {
          throw new SimError('sim_record_failed', `the survey could not be recorded in gpc1 ${gpc1.url}, so it was removed again (an earlier survey at ${at} is left as it was): ${(error as Error).message}`, { cause: error });
        }
      } : undefined;
      ({ dir, manifest } = await simulateSurvey({ ...options, ...(record ? { record } : {}) }));
    } finally {
      await gpc1?.close();
    }
    const t = manifest.totals;
    if (v.json) {
      ctx.stdout.write(`${JSON.stringify({
        dir, exposures: manifest.exposures.length, stacks: manifest.stacks.length, defects: manifest.defects.length,
        detections: t.detections, stack_detections: t.stack_detections, spurious: t.spurious, objects: manifest.sky.n_objects, bytes: t.bytes,
        gpc1: recorded,
      }, null, 2)}\n`);
    } else {
      ctx.stdout.write([
        `${dir}: ${manifest.exposures.length} smf, ${manifest.stacks.length} cmf, ${manifest.defects.length} defects`,
        `  ${t.detections} detections in exposures, ${t.stack_detections} in stacks (${t.spurious} of all of them spurious), ${manifest.sky.n_objects} true objects`,
        `  ${(t.bytes / 1e6).toFixed(1)} MB; see ${dir}/survey.json`,
        recorded
          ? `  gpc1: ${recorded.exposures} exposures registered, runs labelled ${recorded.label}: ${Object.entries(recorded.runs).map(([k, n]) => `${n} ${k}`).join(', ')} (all full)`
          : '  gpc1: nothing recorded (--no-db)',
        '',
      ].join('\n'));
    }
    return EXIT.ok;
  },
};
