import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runIpp } from '../testing.ts';
import { withTempDir } from '../../common/index.ts';
import { readSurveyManifest } from '../../sim/index.ts';
import { openGpc1, summary } from '../../gpc1/index.ts';
import { FitsFile } from '../../fits/index.ts';

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
    // The same label again is refused before anything is written, with the ids it would also clash on.
    const again = await ipp('sim', 'survey', '--out', join(root, 'other'), '--db', db, '--seed', '5', '--exposures', '1', '--density', '0.01');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[sim_label_taken\].*sim\.5.*; it also already has exposures with exp_id 100001 to 100001.*--first-exp-id 100003 or more/);
    assert.equal((await ipp('sim', 'survey', '--out', join(root, 'other'), '--db', db, '--no-db')).code, 2);
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
      [['--first-exp-id', '5'], /\[sim_bad_count\]: --first-exp-id 5 must be a whole number from 100001 to/],
      [['--first-stack-id', '0'], /\[sim_bad_count\]: --first-stack-id 0 must be a whole number from 1 to/],
      // The schedule ends before MJD 60000 (exposure names keep their 4 digits of MJD).
      [['--first-exp-id', '159190'], /\[sim_bad_count\]: --first-exp-id 159190 must be a whole number from 100001 to 159189/],
      [['extra'], /\[sim_bad_argument\].*"extra"/],
      [['--density', '1.2.3'], /\[sim_bad_density\]: --density "1\.2\.3" must be a positive number/],
      [['--ra', '1.2.3:5'], /\[sim_bad_box\]: --ra "1\.2\.3:5" is not a range/],
      [['--inject-defects', 'missing-chip:0x2'], /\[sim_bad_defect\]: defect "missing-chip:0x2": the count/],
    ];
    for (const [args, message] of cases) {
      const r = await ipp('sim', 'survey', '--out', out, '--db', `sqlite:${join(root, 'gpc1.db')}`, ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    // A database inside the directory a survey replaces is refused before it is opened.
    const inside = await ipp('sim', 'survey', '--out', out, '--db', `sqlite:${join(out, 'gpc1.db')}`, '--exposures', '1', '--density', '0.01');
    assert.equal(inside.code, 2);
    assert.match(inside.stderr, /\[sim_db_in_output\].*lies inside --out/);
    const none = await ipp('sim', 'survey', '--no-db');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /\[sim_no_output\].*--out DIR/);
    const unwritable = await ipp('sim', 'survey', '--no-db', '--out', join(root, 'missing', 'survey'));
    assert.match(unwritable.stderr, /\[sim_unwritable\]/);
    assert.deepEqual(await readdir(root), []);
    const help = await ipp('sim', 'survey', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--inject-defects LIST/);
  });
});

test('ipp sim survey: a second survey into the same gpc1 is refused until it is given free ids; each stack run keeps its cmf\'s STACK_ID', () => withTempDir(async (root) => {
  const db = `sqlite:${join(root, 'gpc1.db')}`;
  const small = ['--exposures', '2', '--stacks', '1', '--density', '0.01'];
  const first = await ipp('sim', 'survey', '--out', join(root, 'a'), '--db', db, ...small);
  assert.equal(first.code, 0, first.stderr);
  // Another label and seed: the exp_ids and stack_ids are taken, and said before anything is written.
  const clash = await ipp('sim', 'survey', '--out', join(root, 'b'), '--db', db, '--label', 'b', '--seed', '2', ...small);
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /\[sim_ids_taken\].*exp_id 100001 to 100002.*--first-exp-id 100003 or more.*stack_id 200001 to 200001.*--first-stack-id 200002 or more/);
  assert.deepEqual((await readdir(root)).filter((f) => !f.startsWith('gpc1.db')), ['a']);
  const second = await ipp('sim', 'survey', '--out', join(root, 'b'), '--db', db, '--label', 'b', '--seed', '2', ...small,
    '--first-exp-id', '100003', '--first-stack-id', '200002', '--json');
  assert.equal(second.code, 0, second.stderr);
  const m = await readSurveyManifest(join(root, 'b'));
  assert.deepEqual(m.exposures.map((e) => e.exp_id), [100003, 100004]);
  assert.deepEqual(m.exposures.map((e) => e.exp_name), ['o5562g0003o', 'o5562g0004o'], 'later in the same night');
  assert.equal(new Set([...(await readSurveyManifest(join(root, 'a'))).exposures, ...m.exposures].map((e) => e.exp_name)).size, 4);
  const gpc1 = await openGpc1(db);
  try {
    const stacks = await gpc1.all<{ stack_id: number; label: string }>('SELECT stack_id, label FROM stackRun ORDER BY stack_id');
    assert.deepEqual(stacks.map((r) => [Number(r.stack_id), r.label]), [[200001, 'sim.1'], [200002, 'b']]);
    assert.equal(m.stacks[0]!.stack_id, 200002);
    const header = await FitsFile.open(join(root, 'b', m.stacks[0]!.cmf));
    try {
      assert.equal(header.hdus[0]!.header.get('STACK_ID'), 200002);
    } finally {
      await header.close();
    }
  } finally {
    await gpc1.close();
  }
}));

test('ipp sim survey: when gpc1 refuses the rows, the survey that was at --out stays as it was', () => withTempDir(async (root) => {
  const out = join(root, 'survey');
  const small = ['--exposures', '2', '--stacks', '1', '--density', '0.01'];
  const first = await ipp('sim', 'survey', '--out', out, '--db', `sqlite:${join(root, 'a.db')}`, ...small);
  assert.equal(first.code, 0, first.stderr);
  const before = await readFile(join(out, 'survey.json'), 'utf8');
  // A second database that refuses the skycal rows, the last the survey writes.
  const refusing = `sqlite:${join(root, 'b.db')}`;
  const b = await openGpc1(refusing);
  try {
    await b.exec("CREATE TRIGGER refuse BEFORE INSERT ON skycalRun BEGIN SELECT RAISE(ABORT, 'skycal rows refused by this test'); END;");
  } finally {
    await b.close();
  }
  const r = await ipp('sim', 'survey', '--out', out, '--db', refusing, '--seed', '7', ...small);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[sim_record_failed\].*an earlier survey at .* is left as it was.*skycal rows refused/);
  assert.equal(await readFile(join(out, 'survey.json'), 'utf8'), before);
  assert.deepEqual((await readdir(root)).filter((f) => f.startsWith('survey')), ['survey']);
  const after = await openGpc1(refusing);
  try {
    assert.equal(Number((await after.get<{ n: number }>('SELECT count(*) AS n FROM rawExp'))!.n), 0);
  } finally {
    await after.close();
  }
}));
