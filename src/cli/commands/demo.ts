// `ipp demo`: the main job on embedded defaults. It runs the whole chain, each step through the
// same `ipp` commands a person would type (so the demo exercises exactly the code paths that
// are tested): simulate a survey and record it in gpc1, ingest its catalogues into DVO, start
// a datastore, an ODM and a pantasks server on loopback, queue the survey for ippToPsps, build
// the IN batch, and let pantasks run the programs as periodic jobs (queue, two loaders at a
// time, the DXLayer, pollodm, cleanup) until every batch is merged into the archive and
// cleaned up; metrics sums it up, and the archive is checked against the batches and the
// simulated catalogues.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IppError, UsageError, startServerChild, type ServerChild } from '../../common/index.ts';
import { listRuns, openGpc1 } from '../../gpc1/index.ts';
import { openIppToPsps } from '../../ipptopsps/index.ts';
import { PantasksClient } from '../../pantasks/index.ts';
import { openArchive } from '../../psps/index.ts';
import { readSurveyManifest } from '../../sim/index.ts';
import { runApp } from '../app.ts';
import { EXIT, type Command, type CommandContext, type CommandGroup } from '../command.ts';

const LABEL = 'demo';
const CONFIG = 'demo';
const PRODUCT = 'PSPS_demo';
/** The hosts whose volumes the demo's Nebulous keeps copies on. */
const NEB_HOSTS = ['ipp001', 'ipp002'];
const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

export const demo: Command = {
  name: 'demo',
  summary: 'run the main job on embedded defaults: simulate a survey and carry it through the whole chain into the archive',
  usage: '[--dir DIR] [--exposures N] [--stacks M] [--density X] [--seed S]',
  description: [
    'Runs, in DIR (replaced if it holds an earlier demo), with SQLite databases and servers it',
    'starts itself on loopback, nothing to set up:',
    '  1. ipp sim survey: a simulated GPC1 survey (smf per exposure, cmf per stack, truth),',
    '     recorded in the processing database (gpc1): chip → camera → fake → warp, stack →',
    '     staticsky → skycal, all full.',
    '  2. ipp neb serve with two hosts\' volumes: every smf and cmf stored by key, two copies each,',
    '     found and read through its key (ipp fits info neb:///KEY), and ipp neb fsck; gpc1 then',
    '     names the catalogues by key, as the IPP names every stage\'s files.',
    '  3. ipp gpc1 define addstar + ipp dvo addstar --from-gpc1: the camera and skycal',
    '     catalogues, found through their keys, ingested into a DVO database; ipp dvo verify.',
    '  4. ipp datastore serve and ipp odm serve on loopback (the hand-over and the archive side).',
    '  5. ipp config set + ipp queue: an ippToPsps loading config, its sky grid and queued items',
    '     (P2 exposures, ST stacks, OB DVO regions).',
    '  6. ipp loader init (the IN batch), then ipp pantasks server runs the programs as periodic',
    '     jobs (as the original ran them): ipp queue; ipp loader, two at a time, building P2, ST',
    '     and OB batches (objIDs from DVO) and publishing them; ipp dxlayer, taking them to the',
    '     ODM, which loads, validates and merges them into the archive database; ipp pollodm,',
    '     recording what the ODM did; ipp cleanup, deleting copies by the deletion policy.',
    '  7. when every batch is merged and cleaned up, pantasks stops: its status, the ODM\'s.',
    '  8. ipp metrics: the loading summary, printed and plotted.',
    '  9. the archive checked: its Detection rows equal the P2 batches\' rows and the simulated',
    '     detections; a query and a cone search to try.',
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
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const gpc1Url = `sqlite:${join(dir, 'gpc1.db')}`;
    const trackingUrl = `sqlite:${join(dir, 'ipptopsps.db')}`;
    const archiveUrl = `sqlite:${join(dir, 'archive.db')}`;
    const survey = join(dir, 'survey');
    const dvo = join(dir, 'dvo');
    const dxlayerDir = join(dir, 'dxlayer');
    const batchesDir = join(dir, 'batches');
    // Every step sees the same settings, as a campaign's settings file would give them.
    const env: Record<string, string | undefined> = {
      ...ctx.env, IPP_GPC1_DB: gpc1Url, IPP_IPPTOPSPS_DB: trackingUrl, IPP_IPPTOPSPS_DATA_DIR: batchesDir,
      IPP_PSPS_DB: `sqlite:${join(dir, 'psps.db')}`, IPP_ARCHIVE_DB: archiveUrl,
      IPP_DATASTORE_TOKEN: undefined, IPP_ODM_TOKEN: undefined, IPP_ODM_READ_TOKEN: undefined,
    };
    const ipp = (...argv: string[]) => runStep(rootGroup, argv, ctx, env);
    // Program steps log every batch; the demo shows their last word (the full logs: --log-file).
    const program = (...argv: string[]) => runStep(rootGroup, argv, ctx, env, { lastWord: true });
    const times: [string, number][] = [];
    let stepStart = performance.now();
    const step = (short: string, title: string) => {
      if (times.length > 0) times[times.length - 1]![1] = (performance.now() - stepStart) / 1000;
      times.push([short, 0]);
      stepStart = performance.now();
      say(`\n${title}`);
    };
    say(`ipp demo: a simulated survey carried through the whole chain into the archive; everything in ${dir}`);

    step('simulate', '1. simulate a survey and record it in gpc1');
    await ipp('sim', 'survey', '--out', survey, '--db', gpc1Url, '--label', LABEL, '--exposures', exposures,
      '--stacks', stacks, '--density', density, '--seed', seed);
    await ipp('gpc1', 'summary', '--db', gpc1Url, '--label', LABEL);

    step('Nebulous', '2. Nebulous on loopback: the catalogues stored by key on two hosts\' volumes');
    const manifest = await readSurveyManifest(survey);
    const servers: ServerChild[] = [];
    try {
      // Two copies of each camera and stack catalogue, found again and read through their
      // keys, and the store checked whole.
      const neb = await startServerStep(['neb', 'serve', '--db', `sqlite:${join(dir, 'neb.db')}`, '--port', '0', '--no-fsync', '--log-level', 'warn'], ctx, env);
      servers.push(neb);
      env.IPP_NEB_URL = neb.url;
      for (const host of NEB_HOSTS) {
        await mkdir(join(dir, 'nebulous', host), { recursive: true });
        await ipp('neb', 'volume', 'add', host, '0', join(dir, 'nebulous', host));
      }
      const products = [...manifest.exposures.map((e) => e.smf), ...manifest.stacks.map((s) => s.cmf)];
      const keys = products.map((p) => `gpc1/${LABEL}/${basename(p)}`);
      for (const [i, p] of products.entries()) {
        await runStep(rootGroup, ['neb', 'import', join(survey, p), keys[i]!, '--copies', '2'], ctx, env, { quiet: i > 0 });
      }
      if (products.length > 1) say(`  ... and ${products.length - 1} more (ipp neb import FILE KEY --copies 2)`);
      await runStep(rootGroup, ['neb', 'repair'], ctx, env, { maxLines: 4 });
      await ipp('neb', 'find', keys[0]!);
      await runStep(rootGroup, ['fits', 'info', `neb:///${keys[0]!}`], ctx, env, { maxLines: 7 });
      await ipp('neb', 'fsck');
      // From here on gpc1 names the catalogues by key, as the IPP names every stage's files:
      // addstar and the loaders find each one through Nebulous on their own host.
      const named = await openGpc1(gpc1Url);
      try {
        await named.transaction(async (q) => {
          for (const [i, p] of products.entries()) {
            const table = p.endsWith('.smf') ? 'camProcessedExp' : 'skycalResult';
            const { changes } = await q.run(`UPDATE ${table} SET path_base = ?, uri = NULL WHERE path_base = ?`, [`neb:///${keys[i]!}`, resolve(survey, p)]);
            if (changes !== 1) throw new IppError('demo_failed', `gpc1 ${table} has ${changes} rows naming ${resolve(survey, p)}, where the simulation recorded one`);
          }
        });
      } finally {
        await named.close();
      }
      say(`  gpc1 now names the ${products.length} catalogues by key (camProcessedExp, skycalResult path_base = neb:///gpc1/${LABEL}/...)`);

      step('DVO', '3. ingest the camera (smf) and skycal (cmf) catalogues into DVO, from gpc1, through their keys');
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
      await ipp('dvo', 'verify', '--db', dvo);

      step('servers', '4. start a datastore and the ODM on loopback');
      const datastore = await startServerStep(['datastore', 'serve', '--root', join(dir, 'datastore'),
        '--db', `sqlite:${join(dir, 'datastore.db')}`, '--port', '0', '--log-level', 'warn'], ctx, env);
      servers.push(datastore);
      const odm = await startServerStep(['odm', 'serve', '--dir', dxlayerDir, '--port', '0', '--log-level', 'warn'], ctx, env);
      servers.push(odm);
      env.IPP_DATASTORE_URL = datastore.url;
      env.IPP_ODM_URL = odm.url;

      step('queue', '5. an ippToPsps loading config, and its queue');
      const box = surveyBox(manifest.exposures);
      await ipp('config', 'set', CONFIG, `datastore_product=${PRODUCT}`, 'datastore_publish=1', `dvo_label=${LABEL}`,
        `dvo_location=${dvo}`, `gpc1_label=${LABEL}`, 'epoch=2020-01-01', `min_ra=${box.minRa}`, `max_ra=${box.maxRa}`,
        `min_dec=${box.minDec}`, `max_dec=${box.maxDec}`, 'box_size=2');
      await program('queue', CONFIG);

      step('campaign under pantasks', '6. the IN batch, then pantasks runs the ippToPsps programs and the DXLayer as periodic jobs');
      await program('loader', CONFIG, 'init');
      // As the original ran them (in screen sessions, or as pantasks tasks): every program on a
      // period, two loaders at a time; the jobs get this demo's settings from the scheduler's environment.
      const pantasks = await startServerStep(['pantasks', 'server', '--db', `sqlite:${join(dir, 'pantasks.db')}`, '--port', '0',
        '--log-level', 'warn'], ctx, env);
      servers.push(pantasks);
      const job = (...argv: string[]) => [process.execPath, MAIN, ...argv, '--log-level', 'warn'];
      const tasksFile = join(dir, 'ipptopsps-tasks.json');
      await writeFile(tasksFile, `${JSON.stringify({
        gpc1: gpc1Url, stages: {},
        programs: [
          { name: 'ipptopsps.queue', command: job('queue', CONFIG), period: 60 },
          { name: 'ipptopsps.loader', command: job('loader', CONFIG), period: 2, npending: 2 },
          { name: 'psps.dxlayer', command: job('dxlayer', '--product', PRODUCT, '--dir', dxlayerDir, '--once'), period: 2 },
          { name: 'ipptopsps.pollodm', command: job('pollodm', CONFIG, 'all', 'all'), period: 3 },
          { name: 'ipptopsps.cleanup', command: job('cleanup', CONFIG), period: 3 },
        ],
      }, null, 2)}\n`);
      await ipp('pantasks', 'client', 'load', 'gpc1-stages', '--config', tasksFile, '--url', pantasks.url);
      await ipp('pantasks', 'client', 'run', '--url', pantasks.url);
      await waitForCampaign(trackingUrl, ctx);

      step('pantasks stop', '7. every batch published, merged by the ODM and cleaned up: pantasks stops');
      await ipp('pantasks', 'client', 'stop', '--url', pantasks.url);
      // The jobs out finish their pass (a loader finding the queue empty) before the status.
      const scheduler = new PantasksClient(pantasks.url);
      for (let i = 0; i < 600 && ((await scheduler.status()).jobs.busy > 0); i++) await new Promise((done) => setTimeout(done, 100));
      await ipp('pantasks', 'client', 'status', '--url', pantasks.url);
      await ipp('odm', 'status');

      step('metrics', '8. metrics sums up the campaign');
      await program('metrics', CONFIG, '--plots', join(dir, 'plots'));

      step('archive check', '9. the archive against the batches and the simulation');
      const check = await checkArchive(trackingUrl, archiveUrl);
      say(`  archive Detection rows ${check.detections}; rows of the merged P2 batches ${check.p2Rows}; simulated detections ${manifest.totals.detections}`);
      say(`  archive ObjectThin rows ${check.objects}, StackObjectThin rows ${check.stackRows}; batches merged ${check.merged} of ${check.batches}`);
      if (check.detections !== check.p2Rows) {
        throw new IppError('demo_failed', `the archive holds ${check.detections} detections but the merged P2 batches carried ${check.p2Rows}`);
      }
      const first = manifest.exposures[0]!;
      await ipp('archive', 'query', 'SELECT filterID, count(*) AS detections, round(avg(psfFlux) * 1e6, 3) AS mean_psfFlux_uJy FROM Detection GROUP BY filterID ORDER BY filterID');
      times[times.length - 1]![1] = (performance.now() - stepStart) / 1000;
      say(`\nTime per step: ${times.map(([t, sec]) => `${t} ${sec.toFixed(1)} s`).join('; ')}`);

      say('\nLook further with:');
      say(`  export IPP_ARCHIVE_DB=${archiveUrl} IPP_IPPTOPSPS_DB=${trackingUrl}`);
      say('  npx ipp archive query "SELECT objID, raMean, decMean, nDetections FROM ObjectThin ORDER BY nDetections DESC LIMIT 5"');
      say(`  npx ipp archive cone --table Detection --limit 5 -- ${first.ra.toFixed(5)} ${first.dec.toFixed(5)} 30s`);
      say(`  npx ipp metrics ${CONFIG}`);
      say('  npx ipp console            (the campaign page, on http://127.0.0.1:8490/)');
      say(`  npx ipp fits info ${join(batchesDir, CONFIG, 'P2')}/*/*.fits`);
      say(`  plots: ${join(dir, 'plots')}`);
    } finally {
      for (const s of servers.reverse()) await s.stop();
    }
    return EXIT.ok;
  },
};

/** The region the survey's exposures cover, widened by 2° (the config's RA/Dec limits). */
function surveyBox(exposures: readonly { ra: number; dec: number }[]): { minRa: number; maxRa: number; minDec: number; maxDec: number } {
  const ras = exposures.map((e) => e.ra);
  const decs = exposures.map((e) => e.dec);
  const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
  return {
    minRa: clamp(Math.floor(Math.min(...ras) - 2), 0, 360), maxRa: clamp(Math.ceil(Math.max(...ras) + 2), 0, 360),
    minDec: clamp(Math.floor(Math.min(...decs) - 2), -90, 90), maxDec: clamp(Math.ceil(Math.max(...decs) + 2), -90, 90),
  };
}

/**
 * Waits until every queued item is loaded and every batch (the IN batch too) is merged and has
 * lost every copy the deletion policy removes, printing the progress now and then.
 */
async function waitForCampaign(trackingUrl: string, ctx: CommandContext): Promise<void> {
  const deadline = Date.now() + 300_000;
  const tracking = await openIppToPsps(trackingUrl);
  let last = '';
  let shown = 0;
  try {
    for (;;) {
      const r = (await tracking.get<{ items: number; loaded: number; batches: number; merged: number; cleaned: number; failed: number }>(
        `SELECT (SELECT count(*) FROM queue_item) AS items,
                (SELECT count(*) FROM queue_item WHERE state = 'done') AS loaded,
                (SELECT count(*) FROM batch) AS batches,
                (SELECT count(*) FROM batch WHERE merged = 'succeeded') AS merged,
                (SELECT count(*) FROM batch WHERE deleted_local = 'succeeded') AS cleaned,
                (SELECT count(*) FROM batch WHERE processed = 'failed' OR merge_worthy = 'failed') AS failed`))!;
      const [items, loaded, batches, merged, cleaned, failed] = [r.items, r.loaded, r.batches, r.merged, r.cleaned, r.failed].map(Number);
      const line = `  items loaded ${loaded}/${items}; batches ${batches}, merged ${merged}, cleaned up ${cleaned}${failed ? `, failed ${failed}` : ''}`;
      if (line !== last && Date.now() - shown > 3000) {
        ctx.stdout.write(`${line}\n`);
        last = line;
        shown = Date.now();
      }
      if (items > 0 && loaded === items && batches > items && merged === batches && cleaned === batches) {
        if (line !== last) ctx.stdout.write(`${line}\n`);
        return;
      }
      if (failed > 0) throw new IppError('demo_failed', `${failed} batch(es) failed; see ipp console or: ipp metrics ${CONFIG}`);
      if (Date.now() > deadline) throw new IppError('demo_failed', 'the campaign did not finish in 5 minutes');
      await new Promise((done) => setTimeout(done, 250));
    }
  } finally {
    await tracking.close();
  }
}

/** The archive's counts beside the tracking database's. */
async function checkArchive(trackingUrl: string, archiveUrl: string): Promise<{
  detections: number; objects: number; stackRows: number; p2Rows: number; merged: number; batches: number;
}> {
  const tracking = await openIppToPsps(trackingUrl);
  let p2Rows = 0;
  let merged = 0;
  let batches: number;
  try {
    const rows = await tracking.all<{ batch_type: string; n_rows: number | null; merged: string | null }>(
      'SELECT batch_type, n_rows, merged FROM batch WHERE purged = 0');
    batches = rows.length;
    for (const r of rows) {
      if (r.merged !== 'succeeded') continue;
      merged++;
      if (r.batch_type === 'P2') p2Rows += Number(r.n_rows ?? 0);
    }
  } finally {
    await tracking.close();
  }
  const archive = await openArchive(archiveUrl);
  try {
    const count = async (table: string) => Number((await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))!.n);
    return { detections: await count('Detection'), objects: await count('ObjectThin'), stackRows: await count('StackObjectThin'), p2Rows, merged, batches };
  } finally {
    await archive.close();
  }
}

/**
 * A server command as a child process (as it would run on its own host, and on its own core:
 * the ODM loads and merges while the DXLayer in this process converts the next batch); its URL
 * from its first line. Stopped with SIGTERM, as a service manager would.
 */
async function startServerStep(argv: string[], ctx: CommandContext, env: Record<string, string | undefined>): Promise<ServerChild> {
  const server = await startServerChild([process.execPath, MAIN, ...argv], {
    env, what: `step "ipp ${argv.join(' ')}"`, onStderr: (text) => ctx.stderr.write(text),
  }).catch((error: Error) => {
    throw new IppError('demo_failed', `${error.message}; its message is above`, { cause: error });
  });
  ctx.stdout.write(`  $ ipp ${argv.join(' ')} &\n    ${server.banner}\n`);
  return server;
}

/** Runs one `ipp` command in this process, showing it and its output indented; a failure stops the demo. */
async function runStep(
  root: CommandGroup, argv: string[], ctx: CommandContext, env: Readonly<Record<string, string | undefined>>,
  options: { quiet?: boolean; lastWord?: boolean; maxLines?: number } = {},
): Promise<string> {
  let out = '';
  // Logs, progress bars and error messages of the step go straight to the demo's stderr.
  const code = await runApp(root, argv, {
    stdout: { write: (s: string) => { out += s; return true; } },
    stderr: ctx.stderr,
    signal: ctx.signal,
    env,
  });
  if (!options.quiet) {
    ctx.stdout.write(`  $ ipp ${argv.map((a) => (/[\s'"*()]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
    let lines = out.trimEnd().split('\n').filter((l) => l !== '');
    if (options.lastWord) {
      // Keep what the program printed itself, else its last INFO line before it exited.
      const info = / INFO {2}/;
      const last = lines.filter((l) => info.test(l) && !/: (started|exited)\b/.test(l)).at(-1);
      const own = lines.filter((l) => !info.test(l));
      lines = own.length > 0 ? own : lines.filter((l) => l === last).map((l) => l.replace(/^\S+Z INFO {2}/, ''));
    }
    if (options.maxLines !== undefined && lines.length > options.maxLines) {
      // the first lines and the last (a summary, as a rule)
      lines = [...lines.slice(0, options.maxLines - 2), `... (${lines.length - options.maxLines + 1} lines more)`, lines.at(-1)!];
    }
    for (const line of lines) ctx.stdout.write(`    ${line}\n`);
  }
  if (code !== 0) {
    if (code === EXIT.interrupted) throw Object.assign(new Error('interrupted'), { name: 'AbortError' });
    throw new IppError('demo_failed', `step "ipp ${argv.join(' ')}" failed (exit ${code}); its message is above`);
  }
  return out;
}
