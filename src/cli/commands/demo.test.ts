import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTempDir } from '../../common/index.ts';
import { listRuns, openGpc1 } from '../../gpc1/index.ts';
import { verifyDvo } from '../../dvo/index.ts';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));

test('ipp demo runs the chain as a child process and leaves a consistent survey, gpc1, DVO and datastore', () => withTempDir(async (root) => {
  const dir = join(root, 'demo');
  const r = spawnSync(process.execPath, [main, 'demo', '--dir', dir, '--exposures', '3', '--stacks', '1', '--density', '0.05'],
    { encoding: 'utf8', timeout: 300_000, env: { ...process.env, IPP_DB: '', IPP_GPC1_DB: '', IPP_DVO_DIR: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /gpc1: 3 exposures registered/);
  assert.match(r.stdout, /ipp dvo grab \d+ \(exposure \w+, chip XY\d\d\): [1-9]\d* measurements, e\.g\. IPP_IDET \d+ → objID \d+/);
  assert.match(r.stdout, /the product lists 3 filesets/);
  assert.deepEqual((await readdir(dir)).sort(), ['datastore', 'datastore.db', 'download', 'dvo', 'gpc1.db', 'survey'].sort());
  // Every addstar run of the demo is full in gpc1, and DVO agrees with itself.
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

  const bad = spawnSync(process.execPath, [main, 'demo', '--dir', dir, '--exposures', 'many'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--exposures "many" must be a whole number/);
}, 'ipp-demo-'));
