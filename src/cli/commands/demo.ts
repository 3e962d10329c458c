// `ipp demo`: the main job on embedded defaults. It runs the chain as far as it is built, each
// step through the same `ipp` commands a person would type (so the demo exercises exactly the
// code paths that are tested): simulate a survey and record it in gpc1, ingest its catalogues
// into DVO from gpc1, check DVO and grab one exposure's detections, then publish the
// catalogues on a datastore server and fetch one fileset back with its md5 checked.
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { IppError, UsageError } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import { DatastoreClient, startDatastoreServer } from '../../datastore/index.ts';
import { listRuns, openGpc1 } from '../../gpc1/index.ts';
import { readSurveyManifest } from '../../sim/index.ts';
import { runApp } from '../app.ts';
import { EXIT, type Command, type CommandContext, type CommandGroup } from '../command.ts';

const LABEL = 'demo';

export const demo: Command = {
  name: 'demo',
  summary: 'run the main job on embedded defaults: simulate a survey and carry it through the chain built so far',
  usage: '[--dir DIR] [--exposures N] [--stacks M] [--density X] [--seed S]',
  description: [
    'Runs, in DIR (replaced if it holds an earlier demo), with SQLite databases and no server',
    'to set up:',
    '  1. ipp sim survey: a simulated GPC1 survey (smf per exposure, cmf per stack, truth),',
    '     recorded in the processing database (gpc1) as the pipeline would have: chip → camera',
    '     → fake → warp, stack → staticsky → skycal, all full.',
    '  2. ipp gpc1 define addstar + ipp dvo addstar --from-gpc1: the camera and skycal',
    '     catalogues ingested into a DVO database; the addstar runs recorded in gpc1.',
    '  3. ipp dvo verify / stats / grab: the object database checked, one exposure\'s detections',
    '     looked up by IMAGEID with their objIDs and detection IDs.',
    '  4. a datastore server on loopback: the smf files published as filesets of a product,',
    '     listed through the plain-text index, one fileset downloaded and md5-checked.',
    'ippToPsps, the archive side, Nebulous and the scheduler join the demo as they are built.',
  ].join('\n'),
  options: {
    dir: { type: 'string', value: 'DIR', help: 'where to write everything', default: 'ipp-demo' },
    exposures: { type: 'string', value: 'N', help: 'exposures to simulate', default: '8' },
    stacks: { type: 'string', value: 'M', help: 'stacks (skycell x filter) to simulate', default: '2' },
    density: { type: 'string', value: 'X', help: 'scale of the sky object counts (1: realistic)', default: '0.3' },
    seed: { type: 'string', value: 'S', help: 'seed of the simulation', default: '1' },
  },
  async run(args, ctx) {
    const dir = resolve(String(args.values.dir));
    const whole = (name: string, max: number): string => {
      const text = String(args.values[name]);
      if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`--${name} "${text}" must be a whole number from 1 to ${max}`);
      return text;
    };
    const exposures = whole('exposures', 1000);
    const stacks = whole('stacks', 100);
    const seed = whole('seed', 2 ** 31);
    const density = String(args.values.density);
    if (!(Number(density) > 0 && Number(density) <= 10)) throw new UsageError(`--density "${density}" must be a number above 0, at most 10`);

    const { rootGroup } = await import('../registry.ts');
    const say = (s: string) => ctx.stdout.write(`${s}\n`);
    const ipp = (...argv: string[]) => runStep(rootGroup, argv, ctx);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const gpc1Url = `sqlite:${join(dir, 'gpc1.db')}`;
    const survey = join(dir, 'survey');
    const dvo = join(dir, 'dvo');
    say(`ipp demo: a simulated survey carried through the chain built so far; everything in ${dir}`);

    say('\n1. simulate a survey and record it in gpc1');
    await ipp('sim', 'survey', '--out', survey, '--db', gpc1Url, '--label', LABEL, '--exposures', exposures,
      '--stacks', stacks, '--density', density, '--seed', seed);
    await ipp('gpc1', 'summary', '--db', gpc1Url, '--label', LABEL);

    say('\n2. ingest the camera (smf) and skycal (cmf) catalogues into DVO, from gpc1');
    const gpc1 = await openGpc1(gpc1Url);
    let camIds: number[];
    let skycalIds: number[];
    try {
      camIds = (await listRuns(gpc1, { stage: 'camera', label: LABEL, state: 'full' })).map((r) => r.id);
      skycalIds = (await listRuns(gpc1, { stage: 'skycal', label: LABEL, state: 'full' })).map((r) => r.id);
    } finally {
      await gpc1.close();
    }
    await ipp('gpc1', 'define', 'addstar', '--db', gpc1Url, '--label', LABEL, '--source-stage', 'camera', '--source-id', camIds.join(','));
    if (skycalIds.length > 0) {
      await ipp('gpc1', 'define', 'addstar', '--db', gpc1Url, '--label', LABEL, '--source-stage', 'skycal', '--source-id', skycalIds.join(','));
    }
    await ipp('dvo', 'addstar', '--db', dvo, '--from-gpc1', '--label', LABEL, '--gpc1-db', gpc1Url);
    await ipp('gpc1', 'advance', '--db', gpc1Url, '--stage', 'addstar', '--label', LABEL);

    say('\n3. check the object database and look up one exposure by IMAGEID');
    await ipp('dvo', 'verify', '--db', dvo);
    await ipp('dvo', 'stats', '--db', dvo);
    const manifest = await readSurveyManifest(survey);
    const first = manifest.exposures[0]!;
    const chip = first.chips[0]!;
    const grabbed = await runStep(rootGroup, ['dvo', 'grab', '--db', dvo, String(chip.image_id), '--json'], ctx, { quiet: true });
    const rows = parseGrab(grabbed);
    say(`  ipp dvo grab ${chip.image_id} (exposure ${first.exp_name}, chip ${chip.class_id}): ${rows.length} measurements`
      + (rows[0] ? `, e.g. IPP_IDET ${rows[0].IPP_IDET} → objID ${rows[0].OBJ_ID}, detection ID ${rows[0].DET_ID}` : ''));

    say('\n4. publish the smf catalogues on a datastore server and fetch one fileset back');
    const storeDb = await openDatabase(`sqlite:${join(dir, 'datastore.db')}`);
    const server = await startDatastoreServer({ root: join(dir, 'datastore'), db: storeDb });
    try {
      const url = server.url;
      await ipp('datastore', 'product', 'add', 'gpc1-smf', '--type', 'smf', '--description', 'camera-stage catalogues of the simulated survey', '--url', url);
      for (const e of manifest.exposures.slice(0, 3)) {
        await ipp('datastore', 'publish', 'gpc1-smf', e.exp_name, join(survey, e.smf), '--url', url);
      }
      await ipp('datastore', 'ls', 'gpc1-smf', '--url', url);
      await ipp('datastore', 'get', 'gpc1-smf', first.exp_name, '--out', join(dir, 'download'), '--url', url);
      const client = new DatastoreClient({ url });
      const filesets = await client.filesets('gpc1-smf');
      say(`  the product lists ${filesets.length} filesets; ${first.exp_name} downloaded to ${join(dir, 'download')} with its md5 checked`);
    } finally {
      await server.close();
      await storeDb.close();
    }

    say('\nLook further with:');
    say(`  npx ipp gpc1 runs --db ${gpc1Url} --stage camera --label ${LABEL}`);
    say(`  npx ipp fits info ${join(survey, first.smf)}`);
    say(`  npx ipp fits dump '${join(survey, first.smf)}[${chip.class_id}.psf]' --columns IPP_IDET,RA_PSF,DEC_PSF,PSF_INST_MAG --rows 0:5`);
    say(`  npx ipp dvo grab --db ${dvo} ${chip.image_id}`);
    say(`  npx ipp dvo regions --db ${dvo}`);
    return EXIT.ok;
  },
};

/** Runs one `ipp` command in this process, showing it and its output indented; a failure stops the demo. */
async function runStep(root: CommandGroup, argv: string[], ctx: CommandContext, options: { quiet?: boolean } = {}): Promise<string> {
  let out = '';
  // Logs, progress bars and error messages of the step go straight to the demo's stderr.
  const code = await runApp(root, argv, {
    stdout: { write: (s: string) => { out += s; return true; } },
    stderr: ctx.stderr,
    signal: ctx.signal,
    env: ctx.env,
  });
  if (!options.quiet) {
    ctx.stdout.write(`  $ ipp ${argv.map((a) => (/[\s'"]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
    for (const line of out.trimEnd().split('\n')) if (line) ctx.stdout.write(`    ${line}\n`);
  }
  if (code !== 0) {
    if (code === EXIT.interrupted) throw Object.assign(new Error('interrupted'), { name: 'AbortError' });
    throw new IppError('demo_failed', `step "ipp ${argv.join(' ')}" failed (exit ${code}); its message is above`);
  }
  return out;
}

interface GrabRow { IPP_IDET: number; OBJ_ID: string; DET_ID: string }

function parseGrab(text: string): GrabRow[] {
  return (JSON.parse(text) as { measures: GrabRow[] }).measures;
}
