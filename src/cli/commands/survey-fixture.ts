// Test support of the ippToPsps commands: a simulated survey carried into gpc1 and DVO the way
// the demo does it (sim survey → gpc1 define addstar → dvo addstar --from-gpc1 → gpc1 advance),
// through the real `ipp` commands; and a campaign's datastore and ODM on loopback.
import { join } from 'node:path';
import { openDatabase } from '../../db/index.ts';
import { startDatastoreServer } from '../../datastore/index.ts';
import { listRuns, openGpc1 } from '../../gpc1/index.ts';
import { runIpp, startIpp } from '../testing.ts';

/** Where a survey fixture lives. */
export interface SurveyFixture {
  readonly dir: string;
  readonly survey: string;
  readonly gpc1Url: string;
  readonly dvo: string;
  readonly label: string;
  readonly camIds: readonly number[];
  readonly skycalIds: readonly number[];
}

/** Options of {@link makeSurvey}. */
export interface SurveyFixtureOptions {
  readonly exposures?: number;
  readonly stacks?: number;
  readonly density?: number;
  readonly seed?: number;
  readonly defects?: string;
  readonly ra?: string;
  readonly dec?: string;
}

async function ipp(args: string[]): Promise<string> {
  const run = await runIpp(args);
  if (run.code !== 0) throw new Error(`ipp ${args.join(' ')} failed (${run.code}): ${run.stderr}${run.stdout}`);
  return run.stdout;
}

/** Simulates a survey in `dir` and ingests it into gpc1 and DVO. */
export async function makeSurvey(dir: string, options: SurveyFixtureOptions = {}): Promise<SurveyFixture> {
  const label = 'qtest';
  const survey = join(dir, 'survey');
  const gpc1Url = `sqlite:${join(dir, 'gpc1.db')}`;
  const dvo = join(dir, 'dvo');
  await ipp(['sim', 'survey', '--out', survey, '--db', gpc1Url, '--label', label,
    '--exposures', String(options.exposures ?? 6), '--stacks', String(options.stacks ?? 2),
    '--density', String(options.density ?? 0.03), '--seed', String(options.seed ?? 3),
    ...(options.ra ? ['--ra', options.ra] : []), ...(options.dec ? [`--dec=${options.dec}`] : []),
    ...(options.defects ? ['--inject-defects', options.defects] : [])]);
  const gpc1 = await openGpc1(gpc1Url);
  let camIds: number[];
  let skycalIds: number[];
  try {
    camIds = (await listRuns(gpc1, { stage: 'camera', label, state: 'full' })).map((r) => r.id);
    skycalIds = (await listRuns(gpc1, { stage: 'skycal', label, state: 'full' })).map((r) => r.id);
  } finally {
    await gpc1.close();
  }
  await ipp(['gpc1', 'define', 'addstar', '--db', gpc1Url, '--label', label, '--source-stage', 'camera', '--source-id', camIds.join(',')]);
  if (skycalIds.length) await ipp(['gpc1', 'define', 'addstar', '--db', gpc1Url, '--label', label, '--source-stage', 'skycal', '--source-id', skycalIds.join(',')]);
  // Bad catalogues (injected defects) are recorded with a quality code and exit 1: expected.
  await runIpp(['dvo', 'addstar', '--db', dvo, '--from-gpc1', '--label', label, '--gpc1-db', gpc1Url]);
  await ipp(['gpc1', 'advance', '--db', gpc1Url, '--stage', 'addstar', '--label', label]);
  return { dir, survey, gpc1Url, dvo, label, camIds, skycalIds };
}

/** A campaign's services on loopback, and the settings every `ipp` step of it reads. */
export interface CampaignServices {
  /** IPP_* settings: tracking, gpc1, psps and archive databases under the root, datastore and ODM URLs. */
  readonly env: Record<string, string>;
  readonly datastoreUrl: string;
  readonly dxlayerDir: string;
  close(): Promise<void>;
}

/**
 * Starts a datastore (in this process) and `ipp odm serve` (as a command run until closed)
 * for a campaign on `fx`, with its databases and directories under `root`.
 */
export async function startCampaignServices(root: string, fx: SurveyFixture): Promise<CampaignServices> {
  const storeDb = await openDatabase(`sqlite:${join(root, 'datastore.db')}`);
  const store = await startDatastoreServer({ root: join(root, 'datastore'), db: storeDb });
  const dxlayerDir = join(root, 'dxlayer');
  const env: Record<string, string> = {
    IPP_IPPTOPSPS_DB: `sqlite:${join(root, 'ipptopsps.db')}`, IPP_GPC1_DB: fx.gpc1Url, IPP_IPPTOPSPS_DATA_DIR: join(root, 'batches'),
    IPP_PSPS_DB: `sqlite:${join(root, 'psps.db')}`, IPP_ARCHIVE_DB: `sqlite:${join(root, 'archive.db')}`, IPP_DATASTORE_URL: store.url,
  };
  const stop = new AbortController();
  const odm = startIpp(['odm', 'serve', '--port', '0', '--dir', dxlayerDir, '--log-level', 'warn'], { env, signal: stop.signal });
  const close = async (): Promise<void> => {
    stop.abort();
    await odm.done;
    await store.close();
    await storeDb.close();
  };
  for (let i = 0; i < 200 && !/http:\/\/\S+/.test(odm.stdout()); i++) await new Promise((r) => setTimeout(r, 50));
  const url = /(http:\/\/[^\s)]+)/.exec(odm.stdout())?.[1];
  if (!url) {
    await close();
    throw new Error(`ipp odm serve did not start: ${odm.stdout()}`);
  }
  env.IPP_ODM_URL = url;
  return { env, datastoreUrl: store.url, dxlayerDir, close };
}
