// Batches per hour through the whole chain on this machine. A simulated survey is set up
// first and not timed (ipp sim survey, gpc1 addstar, ipp dvo addstar); then, timed, the
// chain as a campaign runs it, every step an `ipp` program in its own process: a datastore
// and an ODM serving on loopback, ipp config set + ipp queue, ipp loader init and two
// ipp loader processes at once (build + publish to the datastore), ipp dxlayer --once (download,
// FITS → CSV, hand-over) with the ODM loading, validating and merging behind it, ipp pollodm,
// ipp cleanup. SQLite (embedded, as `ipp demo`) and PostgreSQL (tracking, psps and archive
// databases freshly created on --pg / IPP_TEST_PG_URL; gpc1 and the datastore stay SQLite).
// Peer in the same run: the same batches' bytes moved by the plain tools the original chained
// — `cp` of every batch file, and `stilts tcopy` FITS → CSV of every table of one P2 batch of
// median size, counted once per batch. The original's own rate (the guide's metrics example)
// was not measured here and is printed as a reference only.
//   node bench/chain.ts [--exposures N=30] [--stacks M=2] [--density X=0.3] [--pg URL] [--only sqlite|postgres]
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServerChild, type ServerChild } from '../src/common/index.ts';
import { FitsFile } from '../src/fits/index.ts';
import { openArchive } from '../src/psps/index.ts';
import { readSurveyManifest } from '../src/sim/index.ts';
import { BENCH_DIR, check, reportRate, withScratchDatabase } from './lib.ts';

const { values: opt } = parseArgs({
  options: {
    exposures: { type: 'string', default: '30' }, stacks: { type: 'string', default: '2' },
    density: { type: 'string', default: '0.3' }, seed: { type: 'string', default: '1' },
    pg: { type: 'string' }, only: { type: 'string' },
  },
});
const pgUrl = opt.pg ?? process.env.IPP_TEST_PG_URL;
if (opt.only !== undefined && opt.only !== 'sqlite' && opt.only !== 'postgres') throw new Error(`--only ${opt.only}: sqlite or postgres`);
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const LABEL = 'bench';
const CONFIG = 'bench';
const PRODUCT = 'PSPS_bench';
const root = join(BENCH_DIR, 'chain', `run-${process.pid}`);

type Env = Record<string, string | undefined>;

/** Runs one `ipp` program in its own process; its stdout. Fails the bench when it fails. */
function ipp(env: Env, ...argv: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...argv], { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { err = (err + c).slice(-4000); });
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done(out) : fail(new Error(`ipp ${argv.join(' ')} exited with ${code}: ${err}`))));
  });
}

/** A server program in its own process; resolves with its URL once it serves. */
function serve(env: Env, ...argv: string[]): Promise<ServerChild> {
  return startServerChild([process.execPath, MAIN, ...argv], { env, what: `ipp ${argv.join(' ')}` });
}

interface OdmBatch { name: string; type: string; state: string; receivedAt: string; loadedAt: string | null; mergeWorthyAt: string | null; mergedAt: string | null; failedAt: string | null; rows: Record<string, number> }

async function odmBatches(url: string): Promise<OdmBatch[]> {
  const r = await fetch(`${url}/batches`);
  check(r.ok, `GET ${url}/batches: ${r.status}`);
  return ((await r.json()) as { batches: OdmBatch[] }).batches;
}

/** Every FITS file under a directory. */
function fitsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.fits')).map((e) => join(e.parentPath, e.name));
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const ms = (iso: string | null) => (iso === null ? NaN : Date.parse(iso));

// ---- set-up, not timed: the survey, gpc1 and DVO
const setup = join(root, 'setup');
mkdirSync(setup, { recursive: true });
const survey = join(setup, 'survey');
const dvo = join(setup, 'dvo');
const gpc1Setup = join(setup, 'gpc1.db');
{
  const t0 = performance.now();
  const env: Env = { ...process.env, IPP_GPC1_DB: `sqlite:${gpc1Setup}` };
  await ipp(env, 'sim', 'survey', '--out', survey, '--label', LABEL, '--exposures', opt.exposures!, '--stacks', opt.stacks!,
    '--density', opt.density!, '--seed', opt.seed!);
  const runs = async (stage: string) => (JSON.parse(await ipp(env, 'gpc1', 'runs', '--stage', stage, '--label', LABEL, '--state', 'full', '--json')) as { id: number }[]).map((r) => r.id);
  await ipp(env, 'gpc1', 'define', 'addstar', '--label', LABEL, '--source-stage', 'camera', '--source-id', (await runs('camera')).join(','));
  const skycal = await runs('skycal');
  if (skycal.length > 0) await ipp(env, 'gpc1', 'define', 'addstar', '--label', LABEL, '--source-stage', 'skycal', '--source-id', skycal.join(','));
  await ipp(env, 'dvo', 'addstar', '--db', dvo, '--from-gpc1', '--label', LABEL);
  await ipp(env, 'gpc1', 'advance', '--stage', 'addstar', '--label', LABEL);
  console.log(`set-up (not timed): ${opt.exposures} exposures, ${opt.stacks} stacks, density ${opt.density}: survey, gpc1 and DVO in ${seconds(t0).toFixed(1)} s`);
}
const manifest = await readSurveyManifest(survey);
const ras = manifest.exposures.map((e) => e.ra);
const decs = manifest.exposures.map((e) => e.dec);
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const box = [
  `min_ra=${clamp(Math.floor(Math.min(...ras) - 2), 0, 360)}`, `max_ra=${clamp(Math.ceil(Math.max(...ras) + 2), 0, 360)}`,
  `min_dec=${clamp(Math.floor(Math.min(...decs) - 2), -90, 90)}`, `max_dec=${clamp(Math.ceil(Math.max(...decs) + 2), -90, 90)}`,
];

interface ChainResult { batches: number; byType: string; detections: number; e2e: number; stages: [string, number][]; odm: string; peer: { seconds: number; cp: number; tcopy: number; bytes: number } }

/** The timed chain on one engine's databases. */
async function chain(engine: string, urls: { tracking: string; psps: string; archive: string }): Promise<ChainResult> {
  const dir = join(root, engine);
  mkdirSync(dir, { recursive: true });
  // the loaders record nothing in gpc1, but each run gets its own copy all the same
  copyFileSync(gpc1Setup, join(dir, 'gpc1.db'));
  const batchesDir = join(dir, 'batches');
  const dxlayerDir = join(dir, 'dxlayer');
  const env: Env = {
    ...process.env, IPP_GPC1_DB: `sqlite:${join(dir, 'gpc1.db')}`, IPP_IPPTOPSPS_DB: urls.tracking, IPP_IPPTOPSPS_DATA_DIR: batchesDir,
    IPP_PSPS_DB: urls.psps, IPP_ARCHIVE_DB: urls.archive,
    IPP_DATASTORE_TOKEN: undefined, IPP_ODM_TOKEN: undefined, IPP_ODM_READ_TOKEN: undefined,
  };
  const stages: [string, number][] = [];
  let t = performance.now();
  const lap = (name: string) => { stages.push([name, seconds(t)]); t = performance.now(); };

  const datastore = await serve(env, 'datastore', 'serve', '--root', join(dir, 'datastore'), '--db', `sqlite:${join(dir, 'datastore.db')}`, '--port', '0', '--log-level', 'warn');
  const servers = [datastore];
  try {
    const odm = await serve(env, 'odm', 'serve', '--dir', dxlayerDir, '--port', '0', '--log-level', 'warn');
    servers.push(odm);
    env.IPP_DATASTORE_URL = datastore.url;
    env.IPP_ODM_URL = odm.url;
    lap('servers up');
    const start = performance.now();

    await ipp(env, 'config', 'set', CONFIG, `datastore_product=${PRODUCT}`, 'datastore_publish=1', `dvo_label=${LABEL}`,
      `dvo_location=${dvo}`, `gpc1_label=${LABEL}`, 'epoch=2020-01-01', ...box, 'box_size=2');
    await ipp(env, 'queue', CONFIG, '--log-level', 'warn');
    lap('queue');
    await ipp(env, 'loader', CONFIG, 'init', '--log-level', 'warn');
    await Promise.all([1, 2].map(() => ipp(env, 'loader', CONFIG, '--json', '--log-level', 'warn')));
    lap('loaders (build + publish)');
    const dxStart = performance.now();
    await ipp(env, 'dxlayer', '--product', PRODUCT, '--dir', dxlayerDir, '--once', '--log-level', 'warn');
    lap('DXLayer --once');
    let batches: OdmBatch[];
    for (;;) {
      batches = await odmBatches(odm.url);
      if (batches.every((b) => b.state === 'merged' || b.state === 'failed')) break;
      check(performance.now() - dxStart < 1_800_000, 'the ODM finished within 30 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
    lap('ODM after the DXLayer');
    const odmEnd = performance.now();

    // the peer, outside the timed chain (the copies are still there before cleanup)
    const peer = await measurePeer(batchesDir, join(dir, 'peer'), batches.length);
    const resume = performance.now();
    t = resume;

    await ipp(env, 'pollodm', CONFIG, 'all', 'all', '--log-level', 'warn');
    lap('pollodm');
    await ipp(env, 'cleanup', CONFIG, '--log-level', 'warn');
    lap('cleanup');
    const e2e = (odmEnd - start + performance.now() - resume) / 1000;

    // the ODM's worker takes one step of one batch at a time, in order of arrival; on
    // PostgreSQL a second lane loads a batch as soon as the one before is validated (while
    // that one merges), so a load is counted from then (from its arrival if later)
    const ahead = urls.archive.startsWith('postgres');
    let load = 0;
    let validate = 0;
    let merge = 0;
    let free = 0;
    let merged = 0;
    for (const b of batches) {
      const begin = Math.max(ms(b.receivedAt), free);
      load += ms(b.loadedAt) - begin;
      // (validated once the batch before is merged)
      validate += ms(b.mergeWorthyAt) - Math.max(ms(b.loadedAt), merged);
      merge += ms(b.mergedAt) - ms(b.mergeWorthyAt);
      free = Math.max(ms(b.loadedAt), ms(ahead ? b.mergeWorthyAt : b.mergedAt));
      merged = ms(b.mergedAt);
    }
    const failed = batches.filter((b) => b.state === 'failed');
    check(failed.length === 0, `no batch failed at the ODM (${failed.map((b) => b.name).join(', ')})`);
    const detections = batches.filter((b) => b.type === 'P2').reduce((n, b) => n + (b.rows.Detection ?? 0), 0);
    const archive = await openArchive(urls.archive);
    try {
      const n = await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection');
      check(Number(n?.n) === detections, `the archive holds ${String(n?.n)} detections, the P2 batches carried ${detections}`);
    } finally {
      await archive.close();
    }
    const types = Object.entries(Object.groupBy(batches, (b) => b.type)).map(([k, v]) => `${v!.length} ${k}`).join(', ');
    return {
      batches: batches.length, byType: types, detections, e2e, stages, peer,
      odm: `ODM${ahead ? ' (load ahead of merge)' : ' worker'}: load ${(load / 1000).toFixed(1)} s, validate ${(validate / 1000).toFixed(1)} s, merge ${(merge / 1000).toFixed(1)} s`,
    };
  } finally {
    for (const s of servers.reverse()) await s.stop();
  }
}

/** cp of every batch file, and stilts tcopy FITS → CSV of every table of the median P2 batch, counted once per batch. */
async function measurePeer(batchesDir: string, peerDir: string, batches: number): Promise<ChainResult['peer']> {
  const files = fitsFiles(batchesDir);
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  mkdirSync(peerDir, { recursive: true });
  let t0 = performance.now();
  const cp = spawnSync('cp', ['-r', batchesDir, join(peerDir, 'copy')]);
  check(cp.status === 0, `cp failed: ${String(cp.stderr)}`);
  const cpSeconds = seconds(t0);
  const p2 = files.filter((f) => f.includes(join(CONFIG, 'P2'))).sort((a, b) => statSync(a).size - statSync(b).size);
  check(p2.length > 0, 'the loaders wrote P2 batch files');
  const median = p2[Math.floor(p2.length / 2)]!;
  const fits = await FitsFile.open(median);
  const tables = fits.hdus.filter((h) => h.kind === 'bintable').map((h) => h.index);
  await fits.close();
  check(tables.length > 0, `the batch file ${median} has tables`);
  t0 = performance.now();
  for (const i of tables) {
    const r = spawnSync('stilts', ['tcopy', `in=${median}#${i}`, 'ifmt=fits', 'ofmt=csv', `out=${join(peerDir, `hdu${i}.csv`)}`], { encoding: 'utf8' });
    check(r.status === 0, `stilts tcopy failed: ${r.stderr}`);
  }
  const tcopy = seconds(t0);
  rmSync(peerDir, { recursive: true, force: true });
  return { seconds: cpSeconds + tcopy * batches, cp: cpSeconds, tcopy, bytes };
}

console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; 2 loaders; every step its own process`);
console.log('reference only (not measured here): the original\'s metrics example in the seed guide, P2 283 and ST 12,936 batches in the last 24 hours (11.8 P2 batches/h)');

async function runEngine(engine: string, urls: { tracking: string; psps: string; archive: string }): Promise<void> {
  const r = await chain(engine, urls);
  const perHour = (r.batches / r.e2e) * 3600;
  const peerPerHour = (r.batches / r.peer.seconds) * 3600;
  console.log(`${engine}: ${r.batches} batches (${r.byType}), ${r.detections.toLocaleString()} detections, end to end ${r.e2e.toFixed(1)} s: ${(r.detections / r.e2e).toFixed(0)} detections/s`);
  console.log(`  stages: ${r.stages.map(([n, s]) => `${n} ${s.toFixed(1)} s`).join('; ')}`);
  console.log(`  ${r.odm}`);
  console.log(`  peer: cp of ${(r.peer.bytes / 1e6).toFixed(0)} MB of batch files ${r.peer.cp.toFixed(2)} s + stilts tcopy of one median P2 batch ${r.peer.tcopy.toFixed(2)} s x ${r.batches} batches = ${r.peer.seconds.toFixed(1)} s`);
  reportRate(`${engine} chain`, perHour, 'cp + stilts tcopy of the same batches', peerPerHour, 'batches/h');
}

try {
  if (opt.only === undefined || opt.only === 'sqlite') {
    const dir = join(root, 'sqlite');
    await runEngine('SQLite', { tracking: `sqlite:${join(dir, 'ipptopsps.db')}`, psps: `sqlite:${join(dir, 'psps.db')}`, archive: `sqlite:${join(dir, 'archive.db')}` });
  }
  if (opt.only === undefined || opt.only === 'postgres') {
    if (!pgUrl) {
      console.log('PostgreSQL: skipped (no --pg URL and no IPP_TEST_PG_URL)');
    } else {
      // the tracking, psps and archive databases made for the run
      await withScratchDatabase(pgUrl, 'ipp_bench_chain_tracking', (tracking) =>
        withScratchDatabase(pgUrl, 'ipp_bench_chain_psps', (psps) =>
          withScratchDatabase(pgUrl, 'ipp_bench_chain_archive', (archive) => runEngine('PostgreSQL', { tracking, psps, archive }))));
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
