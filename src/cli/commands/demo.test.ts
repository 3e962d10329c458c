import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTempDir } from '../../common/index.ts';
import { openDatabase } from '../../db/index.ts';
import { GRAB_COLUMNS, grabImage, verifyDvo } from '../../dvo/index.ts';
import { listRuns, openGpc1 } from '../../gpc1/index.ts';
import { readSurveyManifest } from '../../sim/index.ts';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));

test('ipp demo runs the whole chain as a child process (the ippToPsps programs under pantasks): every simulated detection in the archive once, with DVO objIDs; copies cleaned up; metrics kept', () => withTempDir(async (root) => {
  const dir = join(root, 'demo');
  const r = spawnSync(process.execPath, [main, 'demo', '--dir', dir, '--exposures', '3', '--stacks', '1', '--density', '0.05'], {
    encoding: 'utf8', timeout: 300_000,
    env: { ...process.env, IPP_DB: '', IPP_GPC1_DB: '', IPP_DVO_DIR: '', IPP_DATASTORE_URL: '', IPP_ODM_URL: '', IPP_NEB_URL: '', IPP_IPPTOPSPS_DB: '', IPP_ARCHIVE_DB: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /gpc1: 3 exposures registered/);
  assert.match(r.stdout, /loaded gpc1-stages: 5 tasks \(ipptopsps\.queue, ipptopsps\.loader, psps\.dxlayer, ipptopsps\.pollodm, ipptopsps\.cleanup\)/);
  assert.match(r.stdout, /items loaded (\d+)\/\1; batches (\d+), merged \2, cleaned up \2\n/);
  assert.match(r.stdout, /ipptopsps\.loader +yes +local +2 +2 /);
  assert.match(r.stdout, /ippToPsps loading summary/);
  assert.match(r.stdout, /Time per step: simulate [\d.]+ s/);
  // Nebulous: every catalogue (3 smf, 1 cmf) on both hosts' volumes, read through its key, the store clean
  assert.match(r.stdout, /repair: 4 examined, 4 done, 0 failed/);
  assert.match(r.stdout, /\$ ipp fits info neb:\/\/\/gpc1\/demo\/\S+\.smf\n +HDU +EXTNAME/);
  assert.match(r.stdout, /fsck: 8 instances checked, 8 files on 2 volume\(s\); clean/);
  // addstar found every catalogue through its key in gpc1.
  assert.equal([...r.stdout.matchAll(/^ +ingested +neb:\/\/\/gpc1\/demo\/\S+\.(smf|cmf) \(/gm)].length, 4);

  // Every addstar run is full in gpc1, and DVO agrees with itself.
  const gpc1 = await openGpc1(`sqlite:${join(dir, 'gpc1.db')}`);
  try {
    const runs = await listRuns(gpc1, { stage: 'addstar', label: 'demo' });
    assert.equal(runs.length, 4);
    assert.ok(runs.every((x) => x.state === 'full' && x.bad_quality === 0));
  } finally {
    await gpc1.close();
  }
  const report = await verifyDvo(join(dir, 'dvo'));
  assert.equal(report.faults.length, 0, JSON.stringify(report.faults.slice(0, 3)));

  // The archive holds every simulated detection once, each with the objID and detection ID DVO gave it.
  const manifest = await readSurveyManifest(join(dir, 'survey'));
  const archive = await openDatabase(`sqlite:${join(dir, 'archive.db')}`);
  const archiveCounts = { stack: 0 };
  try {
    const n = await archive.get<{ n: number; ids: number }>('SELECT count(*) AS n, count(DISTINCT detectID) AS ids FROM Detection');
    assert.equal(Number(n!.n), manifest.totals.detections);
    assert.equal(Number(n!.ids), manifest.totals.detections);
    const chip = manifest.exposures[0]!.chips.find((c) => c.n_detections > 0)!;
    const grabbed = await grabImage(join(dir, 'dvo'), chip.image_id);
    const imageID = manifest.exposures[0]!.exp_id * 100 + Number(chip.class_id.slice(2));
    const rows = await archive.all<{ objID: bigint | number; detectID: bigint | number }>(
      'SELECT objID, detectID FROM Detection WHERE imageID = ? ORDER BY detectID', [imageID]);
    assert.equal(rows.length, grabbed.rows.rowCount);
    const column = (name: string) => grabbed.rows.columns[GRAB_COLUMNS.findIndex((c) => c.name === name)]!.values as BigUint64Array;
    const det = column('DET_ID');
    const obj = column('OBJ_ID');
    const want = new Map([...det].map((d, i) => [d.toString(), obj[i]!.toString()]));
    for (const row of rows) assert.equal(want.get(BigInt(row.detectID).toString()), BigInt(row.objID).toString());
    archiveCounts.stack = Number((await archive.get<{ n: number }>('SELECT count(*) AS n FROM StackObjectThin'))!.n);
    assert.equal(archiveCounts.stack, manifest.totals.stack_detections);
    const objects = await archive.get<{ n: number }>('SELECT count(*) AS n FROM ObjectThin WHERE objID IN (SELECT objID FROM Detection)');
    const referenced = await archive.get<{ n: number }>('SELECT count(DISTINCT objID) AS n FROM Detection');
    assert.equal(Number(objects!.n), Number(referenced!.n), 'every detection\'s object is in ObjectThin');
  } finally {
    await archive.close();
  }

  // Every batch merged, every copy deleted by the default policy, the metrics series stored and plotted.
  const tracking = await openDatabase(`sqlite:${join(dir, 'ipptopsps.db')}`);
  try {
    const batches = await tracking.all<{ merged: string; deleted_datastore: string; deleted_dxlayer: string; deleted_local: string }>(
      'SELECT merged, deleted_datastore, deleted_dxlayer, deleted_local FROM batch');
    assert.ok(batches.length >= 4);
    for (const b of batches) assert.deepEqual([b.merged, b.deleted_datastore, b.deleted_dxlayer, b.deleted_local], ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    // The metrics series' totals equal the archive's counts.
    const metric = async (type: string, name: string) => Number((await tracking.get<{ value: number }>(
      'SELECT value FROM metrics WHERE config = ? AND batch_type = ? AND name = ? ORDER BY at DESC LIMIT 1', ['demo', type, name]))?.value);
    assert.equal(await metric('P2', 'merged_detections'), manifest.totals.detections);
    assert.equal(await metric('P2', 'total_detections'), manifest.totals.detections);
    assert.equal(await metric('ST', 'merged_detections'), archiveCounts.stack);
  } finally {
    await tracking.close();
  }
  assert.deepEqual(await readdir(join(dir, 'dxlayer')), []);
  assert.ok((await readdir(join(dir, 'plots'))).some((f) => f.endsWith('.png')));

  const bad = spawnSync(process.execPath, [main, 'demo', '--dir', dir, '--exposures', 'many'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--exposures "many" must be a whole number/);
}, 'ipp-demo-'));
