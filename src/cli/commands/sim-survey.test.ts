import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runApp } from '../app.ts';
import { rootGroup } from '../registry.ts';
import { withTempDir } from '../../common/index.ts';
import { readSurveyManifest } from '../../sim/index.ts';

async function ipp(...args: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (c: Buffer) => o.push(c));
  err.on('data', (c: Buffer) => e.push(c));
  const code = await runApp(rootGroup, args, { stdout: out, stderr: err });
  return { code, stdout: Buffer.concat(o).toString(), stderr: Buffer.concat(e).toString() };
}

test('ipp sim survey writes a survey and reports it, as text and as JSON', async () => {
  await withTempDir(async (root) => {
    const out = join(root, 'survey');
    const r = await ipp('sim', 'survey', '--out', out, '--exposures', '2', '--stacks', '1', '--density', '0.01', '--seed', '5',
      '--ra', '10:14', '--dec=-3:1', '--filters', 'gr', '--inject-defects', 'nan-coords', '--json');
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.dir, out);
    assert.deepEqual([summary.exposures, summary.stacks, summary.defects], [2, 1, 1]);
    const m = await readSurveyManifest(out);
    assert.deepEqual(m.arguments.ra, [10, 14]);
    assert.deepEqual(m.arguments.filters, 'gr');
    assert.equal(summary.detections, m.totals.detections);
    assert.match(r.stderr, /sim survey: 100\.0% 3\/3 files/);
    const text = await ipp('sim', 'survey', '--out', out, '--exposures', '1', '--stacks', '0', '--density', '0.01');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /: 1 smf, 0 cmf, 0 defects\n.* detections in exposures/);
    assert.deepEqual(await readdir(root), ['survey']);
  });
});

test('ipp sim survey refuses bad arguments with their codes and writes nothing', async () => {
  await withTempDir(async (root) => {
    const out = join(root, 'survey');
    const cases: [string[], RegExp][] = [
      [['--dec', '5:5'], /\[sim_bad_box\].*empty/],
      [['--dec', '80:95'], /\[sim_bad_box\].*-90:90/],
      [['--ra', 'east'], /\[sim_bad_box\].*FROM:TO/],
      [['--filters', 'grx'], /\[sim_bad_filter\].*"x"/],
      [['--exposures', '0'], /\[sim_bad_count\]/],
      [['--exposures', 'ten'], /\[sim_bad_count\].*"ten"/],
      [['--seed=-4'], /\[sim_bad_seed\]/],
      [['--density', 'lots'], /\[sim_bad_density\]/],
      [['--inject-defects', 'gremlins'], /\[sim_bad_defect\].*gremlins/],
    ];
    for (const [args, message] of cases) {
      const r = await ipp('sim', 'survey', '--out', out, ...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message);
    }
    const none = await ipp('sim', 'survey');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /\[sim_no_output\].*--out DIR/);
    const unwritable = await ipp('sim', 'survey', '--out', join(root, 'missing', 'survey'));
    assert.match(unwritable.stderr, /\[sim_unwritable\]/);
    assert.deepEqual(await readdir(root), []);
    const help = await ipp('sim', 'survey', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--inject-defects LIST/);
  });
});
