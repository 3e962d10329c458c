// The ippToPsps commands through `ipp`: the interactive config editor fed through stdin, the
// settings file (checked, beaten by flags), setup-scratch and the loader's box pre-ingest,
// the log file.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openDatabase } from '../../db/index.ts';
import { makeSurvey, type SurveyFixture } from './survey-fixture.ts';
import { runIpp, startIpp } from '../testing.ts';

let root: string;
let fx: SurveyFixture;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ipp-q-cli-'));
  fx = await makeSurvey(root, { exposures: 3, stacks: 1, seed: 5 });
});
after(() => rm(root, { recursive: true, force: true }));

const last = (s: string): Record<string, unknown> => JSON.parse(s.trim().split('\n').at(-1)!);

test('ipp queue edit: the prompts of the guide, bad answers asked again, then the queue runs with the new config', async () => {
  const env = { IPP_IPPTOPSPS_DB: `sqlite:${join(root, 'edit.db')}`, IPP_GPC1_DB: fx.gpc1Url };
  const answers = [
    'e1', 'PSPS_test', '', 'x', '0', fx.label, fx.dvo, '', '148', '158', '-2', '8', '0', '2', 'yesterday', '2026-01-01',
    'P2,ZZ', 'P2', '', '', '', '', '',
  ];
  const run = startIpp(['queue', 'edit', '--json'], { env, input: answers });
  const code = await run.done;
  assert.equal(code, 0, run.stderr());
  const out = run.stdout();
  assert.match(out, / \* Name for new config, or existing config to edit\? /);
  assert.match(out, / \* datastore_product \(varchar\(30\)\)\? /);
  assert.match(out, / \* datastore_type \(varchar\(30\)\) hit return to accept default of: 'IPP_PSPS'\? /);
  assert.match(out, / \* min_ra \(double\) hit return to accept default of: '0'\? /);
  assert.match(out, /datastore_publish \(tinyint\(1\)\) "x" is not 0 or 1; try again/);
  assert.match(out, /box_size \(double\) "0" must be greater than 0; try again/);
  assert.match(out, /epoch \(date\) "yesterday" is not a date/);
  assert.match(out, /batch_types \(varchar\(20\)\) "P2,ZZ" names ZZ/);
  const summary = last(out) as { config: string; types: Record<string, { added: number }> };
  assert.equal(summary.config, 'e1');
  assert.deepEqual(Object.keys(summary.types), ['P2']);
  assert.equal(summary.types.P2!.added, 3);
  // Editing again shows the stored values as defaults.
  const again = startIpp(['queue', 'edit', '--json'], { env, input: ['e1', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', ''] });
  assert.equal(await again.done, 0, again.stderr());
  assert.match(again.stdout(), / \* min_ra \(double\) hit return to accept default of: '148'\? /);
  assert.match(again.stdout(), / \* box_size \(double\) hit return to accept default of: '2'\? /);
  const show = await runIpp(['config', 'show', 'e1', '--json'], env);
  assert.equal((last(show.stdout) as { batch_types: string }).batch_types, 'P2');
});

test('settings file: a bad field is named with its file; flags beat the file; the log file is named program_config_host_pid', async () => {
  const bad = join(root, 'bad-settings.json');
  await writeFile(bad, JSON.stringify({ trackingDb: `sqlite:${join(root, 's.db')}`, datastoreUrl: 'ftp://x' }));
  const r = await runIpp(['queue', 'all', '--settings', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /settings_invalid/);
  assert.ok(r.stderr.includes(bad) && r.stderr.includes('"datastoreUrl"'), r.stderr);
  const viaEnv = await runIpp(['queue', 'all'], { IPP_IPPTOPSPS_SETTINGS: join(root, 'missing.json') });
  assert.match(viaEnv.stderr, /settings_unreadable.*missing\.json/);

  const good = join(root, 'settings.json');
  await writeFile(good, JSON.stringify({ trackingDb: 'sqlite:s.db', gpc1Db: fx.gpc1Url, dataDir: 'from-settings', logDir: 'logs' }));
  const set = await runIpp(['config', 'set', 's1', 'datastore_product=P', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`, 'epoch=2026-01-01',
    'min_ra=148', 'max_ra=158', 'min_dec=-2', 'max_dec=8', 'batch_types=OB', '--settings', good]);
  assert.equal(set.code, 0, set.stderr);
  assert.equal((await runIpp(['queue', 's1', '--settings', good])).code, 0);
  const flagDir = join(root, 'from-flag');
  const l = await runIpp(['loader', 's1', '--settings', good, '--data-dir', flagDir, '--json']);
  assert.equal(l.code, 0, l.stderr);
  assert.ok((last(l.stdout) as { done: number }).done > 0);
  assert.deepEqual(await readdir(flagDir), ['s1', 'tmp']);
  const logs = await readdir(join(root, 'logs'));
  assert.ok(logs.some((f) => new RegExp(`^loader_s1_${hostname().replace(/[^A-Za-z0-9._+-]/g, '_')}_\\d+\\.log$`).test(f)), logs.join(','));
  const text = await readFile(join(root, 'logs', logs.find((f) => f.startsWith('loader_'))!), 'utf8');
  assert.match(text, /B\d{8} OB/);
});

test('setup-scratch registers a scratch database; a loader pre-ingesting boxes takes it and gives it back', async () => {
  const env = { IPP_IPPTOPSPS_DB: `sqlite:${join(root, 'box.db')}`, IPP_GPC1_DB: fx.gpc1Url, IPP_IPPTOPSPS_DATA_DIR: join(root, 'box-data') };
  const scratchFile = join(root, 'scratch.db');
  const setup = await runIpp(['setup-scratch', `sqlite:${scratchFile}`, '--json'], env);
  assert.equal(setup.code, 0, setup.stderr);
  assert.equal((await runIpp(['setup-scratch', `sqlite:${scratchFile}`], env)).code, 0, 'registering twice changes nothing');
  const list = last((await runIpp(['setup-scratch', '--list', '--json'], env)).stdout) as { scratch: { url: string; holder: number | null }[] };
  assert.equal(list.scratch.length, 1);
  for (const name of ['b1', 'b2']) {
    await runIpp(['config', 'set', name, 'datastore_product=P', `dvo_label=${fx.label}`, `dvo_location=${fx.dvo}`, 'epoch=2026-01-01',
      'min_ra=148', 'max_ra=158', 'min_dec=-2', 'max_dec=8', 'batch_types=P2,ST'], env);
    assert.equal((await runIpp(['queue', name], env)).code, 0);
  }
  // Forced box pre-ingest.
  const box = await runIpp(['loader', 'b1', '--lookup', 'box', '--json'], env);
  assert.equal(box.code, 0, box.stderr);
  const s = last(box.stdout) as { done: number; failed: number; configs: { lookups: { box: number; perImage: number }; batches: { lookup: string }[] }[] };
  assert.equal(s.done, 4);
  assert.ok(s.configs[0]!.lookups.box > 0 && s.configs[0]!.lookups.perImage === 0);
  assert.ok(s.configs[0]!.batches.every((b) => b.lookup === 'box'));
  const scratch = await openDatabase(`sqlite:${scratchFile}`);
  try {
    assert.ok(Number((await scratch.get<{ n: number }>('SELECT COUNT(*) AS n FROM dvo_measures'))!.n) > 0, 'the registered scratch was used');
  } finally {
    await scratch.close();
  }
  const after = last((await runIpp(['setup-scratch', '--list', '--json'], env)).stdout) as { scratch: { holder: number | null }[] };
  assert.equal(after.scratch[0]!.holder, null);
  // In auto mode the guide's ratio decides: under a huge threshold every box goes per image.
  const auto = await runIpp(['loader', 'b2', '--pre-ingest-ratio', '100000', '--json'], env);
  const a = last(auto.stdout) as { done: number; configs: { lookups: { box: number; perImage: number } }[] };
  assert.equal(a.done, 4);
  assert.ok(a.configs[0]!.lookups.perImage > 0 && a.configs[0]!.lookups.box === 0);
  assert.match(auto.stderr, /files\/MB\): per-image look-ups/);
  // Batches built both ways are the same rows.
  const db = await openDatabase(env.IPP_IPPTOPSPS_DB);
  try {
    const rows = await db.all<{ config: string; source_id: number; batch_type: string; rows_json: string }>(
      `SELECT config, source_id, batch_type, rows_json FROM batch WHERE processed = 'succeeded' ORDER BY batch_type, source_id, config`);
    for (let i = 0; i < rows.length; i += 2) assert.equal(rows[i]!.rows_json, rows[i + 1]!.rows_json);
  } finally {
    await db.close();
  }
  const usage = await runIpp(['loader', 'b1', '--lookup', 'sometimes'], env);
  assert.equal(usage.code, 2);
});
