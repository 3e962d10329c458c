import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runIpp } from '../testing.ts';
import { withTempDir } from '../../common/index.ts';
import { readSurveyManifest } from '../../sim/index.ts';
import { openGpc1, summary } from '../../gpc1/index.ts';

const ipp = (...args: string[]) => runIpp(args);

test('ipp sim survey writes a survey, records it in gpc1 and reports it, as text and as JSON', () => withTempDir((dbDir) => withTempDir(async (root) => {
    const out = join(root, 'survey');
    const db = `sqlite:${join(dbDir, 'gpc1.db')}`;
    const r = await ipp('sim', 'survey', '--out', out, '--db', db, '--exposures', '2', '--stacks', '1', '--density', '0.01', '--seed', '5',
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
    assert.equal(summary.gpc1.label, 'sim.5');
    const gpc1 = await openGpc1(db);
    try {
      const full = new Map((await summaryOf(gpc1)).map((x) => [x.stage, x.runs]));
      assert.deepEqual([full.get('chip'), full.get('camera'), full.get('warp'), full.get('skycal')], [2, 2, 2, 1]);
    } finally {
      await gpc1.close();
    }
    // The same label again is refused before anything is written.
    const again = await ipp('sim', 'survey', '--out', join(root, 'other'), '--db', db, '--seed', '5', '--exposures', '1', '--density', '0.01');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[sim_label_taken\].*sim\.5/);
    const text = await ipp('sim', 'survey', '--out', out, '--no-db', '--exposures', '1', '--stacks', '0', '--density', '0.01');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /: 1 smf, 0 cmf, 0 defects\n.* detections in exposures[^]*gpc1: nothing recorded/);
    assert.deepEqual(await readdir(root), ['survey']);
}, 'ipp-sim-db-')));

async function summaryOf(db: Awaited<ReturnType<typeof openGpc1>>) {
  return (await summary(db)).filter((x) => x.state === 'full');
}

test('ipp sim survey writes nothing when the database cannot be reached', () => withTempDir(async (root) => {
  const out = join(root, 'survey');
  const r = await ipp('sim', 'survey', '--out', out, '--db', 'postgres://nobody@127.0.0.1:1/gpc1', '--exposures', '1', '--density', '0.01');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[db_unreachable\].*127\.0\.0\.1:1/);
  assert.deepEqual(await readdir(root), []);
}));

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
      const r = await ipp('sim', 'survey', '--out', out, '--db', `sqlite:${join(root, 'gpc1.db')}`, ...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message);
    }
    const none = await ipp('sim', 'survey', '--no-db');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /\[sim_no_output\].*--out DIR/);
    const unwritable = await ipp('sim', 'survey', '--no-db', '--out', join(root, 'missing', 'survey'));
    assert.match(unwritable.stderr, /\[sim_unwritable\]/);
    assert.deepEqual(await readdir(root), []);
    const help = await ipp('sim', 'survey', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--inject-defects LIST/);
  });
});
