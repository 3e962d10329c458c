import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyFits } from '../../fits/index.ts';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));

test('ipp demo runs end to end as a child process and leaves valid files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ipp-demo-'));
  try {
    const r = spawnSync(process.execPath, [main, 'demo', '--dir', dir, '--rows', '300'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /4\. read the compressed file back: 24000 values identical/);
    assert.deepEqual((await readdir(dir)).sort(), ['XY01.psf.csv', 'XY01.psf.vot', 'catalogue.fits', 'catalogue.fits.fz']);
    for (const f of ['catalogue.fits', 'catalogue.fits.fz']) {
      const report = await verifyFits(join(dir, f));
      assert.equal(report.errors, 0, JSON.stringify(report.problems));
    }
    const bad = spawnSync(process.execPath, [main, 'demo', '--dir', dir, '--rows', 'many'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--rows "many" must be a whole number/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
