import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '../../common/index.ts';
import { testEngines } from '../../db/index.ts';
import { runIpp } from '../testing.ts';
import { isGroup } from '../command.ts';
import { gpc1Group } from './gpc1.ts';

const ipp = (...args: string[]) => runIpp(args);

async function ok(...args: string[]): Promise<string> {
  const r = await ipp(...args);
  assert.equal(r.code, 0, `ipp ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('ipp gpc1 with a SQLite path that holds no database', () => {
  it('refuses it for every command but create and register, and makes nothing there', () => withTempDir(async (dir) => {
    const { existsSync } = await import('node:fs');
    const db = ['--db', `sqlite:${join(dir, 'typo', 'gpc1.db')}`];
    for (const argv of [['summary'], ['runs', '--stage', 'chip'], ['pending', 'chip'], ['advance'], ['revert', 'chip'],
      ['define', 'chip', '--label', 'x'], ['done', 'chip', '1', 'XY01'], ['state', 'chip', '1', '--to', 'drop'], ['map', '1', 'skycell.1:XY01']]) {
      const r = await ipp('gpc1', ...argv, ...db);
      assert.equal(r.code, 1, argv.join(' '));
      assert.match(r.stderr, /error \[db_not_found\]: there is no database at sqlite:\S+typo\/gpc1\.db.*IPP_GPC1_DB.*ipp gpc1 create/, argv.join(' '));
    }
    assert.equal(existsSync(join(dir, 'typo')), false);
    assert.equal((await ipp('gpc1', 'create', 'extra', ...db)).code, 2);
    assert.match(await ok('gpc1', 'create', ...db), /applied/);
    assert.match(await ok('gpc1', 'summary', ...db), /no runs/);
  }));
});

for (const engine of testEngines()) {
  describe(`ipp gpc1 on ${engine.name}`, { skip: engine.skip }, () => {
    it('takes an exposure from registration through chip and camera, as text and JSON', () => engine.withUrl((url) => withTempDir(async (dir) => {
      const db = ['--db', url];
      assert.match(await ok('gpc1', 'create', ...db), /gpc1 schema at migration \d+ \(applied \d+\)/);
      assert.match(await ok('gpc1', 'create', ...db), /already up to date/);

      assert.match(await ok('gpc1', 'register', ...db, '--exp-name', 'o5000g0001o', '--chips', 'gpc1', '--filter', 'r.00000',
        '--tess-id', 'RINGS.V3', '--dateobs', '2010-05-01T10:00:00Z', '--exp-time', '45', '--uri-base', '/data/raw/'), /registered 1 exposure: exp_id 1/);
      const file = join(dir, 'exposures.json');
      await writeFile(file, JSON.stringify([
        { exp_name: 'o5000g0002o', camera: 'GPC1', telescope: 'PS1', filter: 'g.00000', tess_id: 'RINGS.V3', imfiles: [{ class_id: 'XY01' }, { class_id: 'XY02' }] },
      ]));
      assert.deepEqual(JSON.parse(await ok('gpc1', 'register', ...db, '--file', file, '--json')), { exp_ids: [2] });

      assert.match(await ok('gpc1', 'define', 'chip', ...db, '--label', 'night1', '--filter', 'g.00000', '--end-stage', 'camera'), /defined 1 chip run: 1/);
      assert.deepEqual(JSON.parse(await ok('gpc1', 'define', 'chip', ...db, '--label', 'night1', '--exp-id', '1', '--json')), { stage: 'chip', ids: [2] });
      assert.match(await ok('gpc1', 'define', 'chip', ...db, '--label', 'night1', '--filter', 'g.00000', '--unique'), /defined no chip runs/);

      const pending = JSON.parse(await ok('gpc1', 'pending', 'chip', ...db, '--label', 'night1', '--json'));
      assert.equal(pending.length, 62, 'two chips of the first run and 60 of the second');
      assert.match(await ok('gpc1', 'pending', 'chip', ...db, '--limit', '2'), /^ID\s+COMPONENT\s+STATE\s+LABEL\n 1\s+XY01\s+new\s+night1\n 1\s+XY02\s+new\s+night1\n$/);

      assert.match(await ok('gpc1', 'done', 'chip', '1', 'XY01', ...db, '--path', 'neb://a/XY01', '--metric', 'n_stars=812', '--metric', 'fwhm_major=1.2', '--hostname', 'ipp001'), /recorded chip run 1 XY01/);
      assert.match(await ok('gpc1', 'done', 'chip', '1', 'XY02', ...db, '--fault', '3'), /with fault 3/);
      const again = await ipp('gpc1', 'done', 'chip', '1', 'XY02', ...db);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /error \[gpc1_duplicate_component\]: chip run 1 component XY02 is already recorded with fault 3; revert the faults/);
      assert.match(await ok('gpc1', 'advance', ...db), /advanced 0 runs, queued 0/);
      assert.deepEqual(JSON.parse(await ok('gpc1', 'revert', 'chip', ...db, '--fault', '3', '--json')), { stage: 'chip', reverted: 1 });
      await ok('gpc1', 'done', 'chip', '1', 'XY02', ...db, '--quality', '2');
      assert.match(await ok('gpc1', 'advance', ...db, '--stage', 'chip'), /chip run 1: full; queued camera run 1; 1 bad-quality component\nadvanced 1 run, queued 1/);

      const chipRuns = JSON.parse(await ok('gpc1', 'runs', ...db, '--stage', 'chip', '--json'));
      assert.deepEqual(chipRuns.map((r: { id: number; state: string; done: number; bad_quality: number; exp_id: number }) => [r.id, r.state, r.done, r.bad_quality, r.exp_id]),
        [[1, 'full', 2, 1, 2], [2, 'new', 0, 0, 1]]);
      assert.match(await ok('gpc1', 'runs', ...db, '--stage', 'camera'), /^ID\s+STATE\s+LABEL\s+DATA_GROUP\s+END_STAGE\s+DONE\s+FAULTED\s+BAD\s+INPUT\s+REGISTERED\n 1\s+new\s+night1\s+night1\s+camera\s+0\s+0\s+0\s+chip_id=1 /);

      await ok('gpc1', 'done', 'camera', '1', ...db, '--uri', 'neb://a/a.smf', '--metric', 'zpt_obs=24.61');
      const advanced = JSON.parse(await ok('gpc1', 'advance', ...db, '--json'));
      assert.deepEqual(advanced.runs, [{ stage: 'camera', id: 1, queued: null, stopped: 'end_stage', bad_components: 0 }]);

      assert.match(await ok('gpc1', 'state', 'chip', '2', ...db, '--to', 'drop'), /set 1 chip run to drop: 2/);
      const bad = await ipp('gpc1', 'state', 'chip', '2', ...db, '--to', 'new');
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /\[gpc1_bad_transition\]: chip run 2 is drop and cannot become new; from drop it may become goto_cleaned, goto_scrubbed, goto_purged/);

      assert.equal(await ok('gpc1', 'summary', ...db), 'STAGE   FULL  DROP  TOTAL\nchip       1     1      2\ncamera     1     0      1\n');
      assert.deepEqual(JSON.parse(await ok('gpc1', 'summary', ...db, '--label', 'night1', '--json')), [
        { stage: 'chip', state: 'drop', runs: 1 }, { stage: 'chip', state: 'full', runs: 1 }, { stage: 'camera', state: 'full', runs: 1 },
      ]);
      assert.equal(await ok('gpc1', 'summary', ...db, '--label', 'other'), 'no runs\n');
    })));
  });
}

describe('ipp gpc1 refuses malformed arguments', () => {
  it('with exit code 2 and a message that says what to write', () => withTempDir(async (dir) => {
    const db = ['--db', `sqlite:${join(dir, 'g.db')}`];
    const cases: [string[], RegExp][] = [
      [['gpc1', 'define', 'chop', '--label', 'x'], /unknown stage "chop"; the stages are chip, camera/],
      [['gpc1', 'define', 'chip', '--label', 'x', '--chip-id', '3'], /--chip-id does not apply to define chip; it takes --exp-id/],
      [['gpc1', 'define', 'camera', '--label', 'x', '--exp-id', '3'], /--exp-id does not apply to define camera; it takes --chip-id/],
      [['gpc1', 'define', 'camera', '--label', 'x', '--obs-mode', '3PI'], /--obs-mode applies to define chip only/],
      [['gpc1', 'define', 'chip', '--label', 'x', '--exp-id', 'seven'], /--exp-id "seven" must be a whole number/],
      [['gpc1', 'define', 'chip', '--label', 'x', '--end-stage', 'warpp'], /unknown stage "warpp"/],
      [['gpc1', 'define', 'diff', '--label', 'x', '--spec', '{"tess_id": '], /--spec: the JSON given is not valid JSON/],
      [['gpc1', 'define'], /give one stage/],
      [['gpc1', 'done', 'chip'], /give STAGE ID \[COMPONENT\]/],
      [['gpc1', 'done', 'chip', '1'], /chip runs are recorded per class_id: ipp gpc1 done chip 1 COMPONENT/],
      [['gpc1', 'done', 'camera', '1', 'XY01'], /a camera run is recorded whole/],
      [['gpc1', 'done', 'chip', '0', 'XY01'], /run id "0" must be a whole number of at least 1/],
      [['gpc1', 'done', 'chip', '1', 'XY01', '--fault=-1'], /--fault "-1" must be a whole number/],
      [['gpc1', 'done', 'chip', '1', 'XY01', '--fault', '2', '--quality', '5'], /give --fault .* or --quality .*, not both/],
      [['gpc1', 'done', 'chip', '1', 'XY01', '--metric', 'zpt_obs'], /--metric "zpt_obs" must be NAME=VALUE/],
      [['gpc1', 'done', 'chip', '1', 'XY01', '--metric', 'zpt=1'], /--metric zpt: not a column of chipProcessedImfile/],
      [['gpc1', 'done', 'chip', '1', 'XY01', '--metric', 'n_stars=many'], /n_stars must be a whole number/],
      [['gpc1', 'revert'], /give one stage/],
      [['gpc1', 'revert', 'chip', '--fault', '0'], /--fault "0" must be a whole number of at least 1/],
      [['gpc1', 'runs'], /give the stage: ipp gpc1 runs --stage STAGE/],
      [['gpc1', 'runs', '--stage', 'chip', '--state', 'running'], /unknown run state "running"/],
      [['gpc1', 'pending', 'chip', '--limit', 'lots'], /--limit "lots" must be a whole number/],
      [['gpc1', 'state', 'chip', '1'], /give the new state with --to/],
      [['gpc1', 'state', 'chip', '1', '--to', 'done'], /unknown run state "done"; the states are new, wait, full/],
      [['gpc1', 'register'], /give --file FILE, or --exp-name and --chips/],
      [['gpc1', 'register', '--exp-name', 'x'], /give the exposure's chips/],
      [['gpc1', 'register', '--exp-name', 'x', '--chips', 'XY01', '--airmass', 'high'], /--airmass "high" must be a number/],
      [['gpc1', 'register', '--file', join(dir, 'missing.json')], /--file: cannot read .*missing\.json/],
      [['gpc1', 'advance', '--stage', 'nope'], /unknown stage "nope"/],
      [['gpc1', 'define', 'chip', '--exp-id', '4'], /give the runs' label: ipp gpc1 define chip --label LABEL/],
      [['gpc1', 'define', 'addstar', '--label', 'x', '--source-stage', 'bogus', '--source-id', '1'], /unknown stage "bogus"/],
      [['gpc1', 'map', '5'], /give the warp run and its skycells/],
      [['gpc1', 'summary', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, pattern] of cases) {
      const r = await ipp(...args, ...db);
      assert.equal(r.code, 2, `ipp ${args.join(' ')} should be a usage error: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
    }
    const url = await ipp('gpc1', 'summary', '--db', 'mysql://h/gpc1');
    assert.equal(url.code, 2);
    assert.match(url.stderr, /\[db_url_invalid\]: database URL scheme "mysql:" is not supported/);
  }));

  it('reports bad values found in the database with exit code 1', () => withTempDir(async (dir) => {
    const db = ['--db', `sqlite:${join(dir, 'g.db')}`];
    await ok('gpc1', 'create', ...db);
    const cases: [string[], RegExp][] = [
      [['gpc1', 'done', 'chip', '9', 'XY01'], /\[gpc1_unknown_run\]: chip run 9 does not exist/],
      [['gpc1', 'define', 'chip', '--label', 'x', '--exp-id', '4'], /\[gpc1_unknown_exposure\]: exposure 4 does not exist; register it first/],
      [['gpc1', 'state', 'chip', '3', '--to', 'drop'], /\[gpc1_unknown_run\]: chip run 3 does not exist/],
      [['gpc1', 'map', '5', 'skycell.1'], /\[gpc1_unknown_run\]: warp run 5 does not exist/],
    ];
    for (const [args, pattern] of cases) {
      const r = await ipp(...args, ...db);
      assert.equal(r.code, 1, `ipp ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
    }
    const unreachable = await ipp('gpc1', 'summary', '--db', 'postgres://nobody@127.0.0.1:1/none');
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /\[db_unreachable\]: cannot connect to PostgreSQL at postgres:\/\/nobody@127\.0\.0\.1:1\/none/);
  }));

  it('answers --help for every command', async () => {
    for (const command of gpc1Group.commands) {
      assert.ok(!isGroup(command));
      const r = await ipp('gpc1', command.name, '--help');
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^ipp gpc1 ${command.name}: `));
      assert.match(r.stdout, /Usage: ipp gpc1 /);
    }
    const group = await ipp('gpc1');
    assert.equal(group.code, 2);
    assert.match(group.stdout, /advance\s+set runs whose components are all done to full/);
  });
});
