import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { testEngines, type Database } from '../db/index.ts';
import {
  Gpc1Error, advance, allStages, defineRun, listRuns, mapSkyCells, openGpc1, pendingComponents, recordComponent,
  recordComponents, registerExposure, registerExposures, revertFaults, setRunState, summary, type ExposureSpec,
  type Gpc1ErrorCode,
} from './index.ts';

const run = promisify(execFile);

/** The 60 OTAs of GPC1: XY01..XY76 without the four corners. */
const OTAS = Array.from({ length: 8 }, (_, x) => Array.from({ length: 8 }, (_, y) => `XY${x}${y}`))
  .flat().filter((c) => !['XY00', 'XY07', 'XY70', 'XY77'].includes(c));

function exposure(name: string, chips: readonly string[], extra: Partial<ExposureSpec> = {}): ExposureSpec {
  return {
    exp_name: name, camera: 'GPC1', telescope: 'PS1', dateobs: '2010-05-01T10:00:00Z', exp_type: 'object', filter: 'r.00000',
    exp_time: 45, airmass: 1.1, ra: 150.1, decl: 2.2, obs_mode: '3PI', tess_id: 'RINGS.V3',
    imfiles: chips.map((class_id) => ({ class_id, uri: `neb://ipp/${name}/${name}.${class_id}.fits` })),
    ...extra,
  };
}

function rejects(code: Gpc1ErrorCode, pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof Gpc1Error, `expected a Gpc1Error, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

async function withGpc1(url: string, fn: (db: Database) => Promise<void>): Promise<void> {
  const db = await openGpc1(url);
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

for (const engine of testEngines()) {
  describe(`gpc1 on ${engine.name}`, { skip: engine.skip }, () => {
    it('creates every table with the columns the stage table names', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      for (const d of allStages()) {
        const columns = [d.key, ...(d.componentColumn ? [d.componentColumn] : []), ...d.copyFromRun, ...Object.keys(d.metrics), 'fault', 'quality', 'data_state', 'registered'];
        await db.all(`SELECT ${columns.join(', ')} FROM ${d.componentTable} LIMIT 1`);
        await db.all(`SELECT ${d.key}, state, label, data_group, dist_group, end_stage, reduction, workdir, note, registered, ${d.inputs.join(', ') || d.key} FROM ${d.runTable} LIMIT 1`);
      }
      for (const table of ['summitExp', 'summitImfile', 'newExp', 'newImfile', 'lapSequence', 'lapRun', 'lapExp', 'warpSkyCellMap', 'stackInputSkyfile', 'staticskyInput', 'fullForceInput', 'diffInputSkyfile']) {
        await db.all(`SELECT * FROM ${table} LIMIT 1`);
      }
    })));

    it('keeps exposure IDs given before registration, and numbers later ones after them', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      const [given] = await registerExposures(db, [{ ...exposure('o5001g0001o', ['XY01']), exp_id: 5000 }]);
      assert.equal(given, 5000);
      const [next] = await registerExposures(db, [exposure('o5001g0002o', ['XY01'])]);
      assert.ok(next! > 5000, `an assigned ID after a given one (${next})`);
      await assert.rejects(registerExposures(db, [{ ...exposure('o5001g0003o', ['XY01']), exp_id: 5000 }]),
        (e: unknown) => e instanceof Gpc1Error && e.code === 'gpc1_duplicate_exposure' && /exp_id 5000 \(o5001g0001o\) is already registered/.test(e.message));
      await assert.rejects(registerExposures(db, [{ ...exposure('o5001g0004o', ['XY01']), exp_id: -3 }]),
        (e: unknown) => e instanceof Gpc1Error && e.code === 'gpc1_bad_input' && e.message.includes('exp_id'));
    })));

    it('runs an exposure through chip → camera → fake → warp: faults, revert, quality, end_stage', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      const chips = ['XY01', 'XY02', 'XY03'];
      const [a, b] = await registerExposures(db, [
        exposure('o5000g0001o', [...chips, 'XY04']),
        exposure('o5000g0002o', chips, { tess_id: null }),
      ]);
      // XY04 of the first exposure is ignored: it is neither processed nor waited for.
      await db.run("UPDATE rawImfile SET ignored = 1 WHERE exp_id = ? AND class_id = 'XY04'", [a!]);
      const [chipA] = await defineRun(db, 'chip', { exp_ids: [a!], label: 'night1', end_stage: 'warp', dist_group: 'SAS' });
      const [chipB] = await defineRun(db, 'chip', { exp_ids: [b!], label: 'night1', end_stage: 'chip' });
      assert.equal((await pendingComponents(db, 'chip', { label: 'night1' })).length, 6);

      await recordComponents(db, 'chip', [
        { id: chipA!, component: 'XY01', path_base: 'neb://ipp/a/XY01', n_stars: 812, fwhm_major: 1.1, hostname: 'ipp001' },
        { id: chipA!, component: 'XY02', quality: 4, path_base: 'neb://ipp/a/XY02', note: 'saturated: no stars found' },
        { id: chipA!, component: 'XY03', fault: 2 },
        ...chips.map((c) => ({ id: chipB!, component: c })),
      ]);
      await assert.rejects(recordComponents(db, 'chip', [{ id: chipB!, component: 'XY99', fault: 2, quality: 4 }]),
        (e: unknown) => e instanceof Gpc1Error && e.code === 'gpc1_bad_input' && /a fault .* or a quality code .*, not both/.test(e.message));
      const noted = await db.get<{ note: string }>("SELECT note FROM chipProcessedImfile WHERE chip_id = ? AND class_id = 'XY02'", [chipA!]);
      assert.equal(noted!.note, 'saturated: no stars found', 'the reason is kept beside the quality code');
      let result = await advance(db, { stage: 'chip' });
      assert.deepEqual(result.runs.map((r) => [r.id, r.queued, r.stopped]), [[chipB!, null, 'end_stage']], 'a faulted run is not advanced; end_stage=chip stops at chip');
      assert.deepEqual(await pendingComponents(db, 'chip'), [], 'a faulted chip is not pending until reverted');

      assert.equal(await revertFaults(db, { stage: 'chip', fault: 7 }), 0);
      assert.equal(await revertFaults(db, { stage: 'chip', label: 'other' }), 0);
      assert.equal(await revertFaults(db, { stage: 'chip', label: 'night1' }), 1, 'only the faulted chip is reverted, not the quality-bad one');
      assert.deepEqual((await pendingComponents(db, 'chip')).map((p) => [p.id, p.component]), [[chipA!, 'XY03']]);
      await recordComponent(db, 'chip', chipA!, 'XY03', { path_base: 'neb://ipp/a/XY03' });

      result = await advance(db);
      assert.equal(result.advanced, 1);
      const chipRun = result.runs[0]!;
      assert.equal(chipRun.id, chipA);
      assert.equal(chipRun.bad_components, 1, 'the quality-bad chip counts as done and is reported');
      assert.equal(chipRun.queued?.stage, 'camera');
      const [cam] = await listRuns(db, { stage: 'camera' });
      assert.equal(cam!.id, chipRun.queued!.id);
      assert.deepEqual([cam!.state, cam!.label, cam!.data_group, cam!.dist_group, cam!.end_stage, cam!.row.tess_id, cam!.row.chip_id],
        ['new', 'night1', 'night1', 'SAS', 'warp', 'RINGS.V3', chipA], 'the camera run inherits label, groups, end_stage and tessellation');
      assert.deepEqual((await listRuns(db, { stage: 'chip', ids: [chipA!] })).map((r) => [r.state, r.done, r.faulted, r.bad_quality]), [['full', 3, 0, 1]]);

      // Camera: one component per run, carrying the smf path and the calibration numbers.
      assert.deepEqual((await pendingComponents(db, 'camera')).map((p) => [p.id, p.component]), [[cam!.id, null]]);
      await recordComponent(db, 'camera', cam!.id, null, { uri: 'neb://ipp/a/a.smf', path_base: 'neb://ipp/a/a', zpt_obs: 24.61, n_stars: 3100, fwhm_major: 1.05 });
      const smf = await db.get<{ uri: string; zpt_obs: number }>('SELECT uri, zpt_obs FROM camProcessedExp WHERE cam_id = ?', [cam!.id]);
      assert.deepEqual({ ...smf }, { uri: 'neb://ipp/a/a.smf', zpt_obs: 24.61 });
      result = await advance(db);
      assert.deepEqual(result.runs.map((r) => [r.stage, r.queued?.stage]), [['camera', 'fake']]);
      const fakeId = result.runs[0]!.queued!.id;

      // Fake: one component per (non-ignored) chip of the exposure.
      assert.deepEqual((await pendingComponents(db, 'fake')).map((p) => p.component), chips);
      await recordComponents(db, 'fake', chips.map((c) => ({ id: fakeId, component: c, dtime_fake: 0.1 })));
      result = await advance(db);
      assert.deepEqual(result.runs.map((r) => [r.stage, r.queued?.stage]), [['fake', 'warp']]);
      const warpId = result.runs[0]!.queued!.id;

      // Warp: queued without a skycell map; it cannot finish until its skycells are mapped.
      assert.deepEqual((await pendingComponents(db, 'warp')).map((p) => [p.id, p.component]), [[warpId, null]]);
      await assert.rejects(recordComponent(db, 'warp', warpId, 'skycell.1133.081'), rejects('gpc1_component_not_in_run', /map its skycells first/));
      assert.equal((await advance(db)).advanced, 0);
      await assert.rejects(mapSkyCells(db, warpId, [{ skycell_id: 'skycell.1133.081', class_id: 'XY77' }]),
        rejects('gpc1_bad_input', /chip XY77 is not a chip of its exposure \(XY01, XY02, XY03, XY04\)/));
      await mapSkyCells(db, warpId, [
        { skycell_id: 'skycell.1133.081', class_id: 'XY01' }, { skycell_id: 'skycell.1133.081', class_id: 'XY02' },
        { skycell_id: 'skycell.1133.082', class_id: 'XY03' },
      ]);
      assert.deepEqual((await pendingComponents(db, 'warp')).map((p) => p.component), ['skycell.1133.081', 'skycell.1133.082']);
      await recordComponent(db, 'warp', warpId, 'skycell.1133.081', { good_frac: 0.93 });
      assert.equal((await advance(db)).advanced, 0, 'one skycell of two is not enough');
      await recordComponent(db, 'warp', warpId, 'skycell.1133.082', { good_frac: 0.4 });
      result = await advance(db);
      assert.deepEqual(result.runs.map((r) => [r.stage, r.id, r.queued, r.stopped]), [['warp', warpId, null, 'last_stage']]);
      const skyfile = await db.get<{ tess_id: string }>('SELECT tess_id FROM warpSkyfile WHERE warp_id = ? AND skycell_id = ?', [warpId, 'skycell.1133.082']);
      assert.equal(skyfile!.tess_id, 'RINGS.V3');

      assert.deepEqual(await summary(db), [
        { stage: 'chip', state: 'full', runs: 2 }, { stage: 'camera', state: 'full', runs: 1 },
        { stage: 'fake', state: 'full', runs: 1 }, { stage: 'warp', state: 'full', runs: 1 },
      ]);
      assert.deepEqual(await summary(db, { label: 'nobody' }), []);
      assert.equal((await advance(db)).advanced, 0, 'advancing again changes nothing');
      // A stack is outside the chip → warp chain: full, with nothing queued after it.
      const [stackId] = await defineRun(db, 'stack', { label: 'night1', skycell_id: 'skycell.1133.081', tess_id: 'RINGS.V3', filter: 'r.00000', warp_ids: [warpId] });
      await recordComponent(db, 'stack', stackId!, null, {});
      assert.deepEqual((await advance(db, { stage: 'stack' })).runs.map((r) => [r.stage, r.queued, r.stopped]), [['stack', null, 'not_chained']]);
      assert.equal((await listRuns(db, { stage: 'camera' })).length, 1, 'and queues nothing twice');
    })));

    it('defines chip runs for every matching exposure at once; a bad camera or an all-bad exposure stops the chain', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      await registerExposures(db, [
        exposure('e1', ['XY01', 'XY02']), exposure('e2', ['XY01', 'XY02']), exposure('e3', ['XY01'], { filter: 'g.00000' }),
      ]);
      const chipIds = await defineRun(db, 'chip', { exposures: { filter: 'r.00000' }, label: 'lap', unique: true });
      assert.equal(chipIds.length, 2);
      assert.deepEqual(await defineRun(db, 'chip', { exposures: { filter: 'r.00000' }, label: 'lap', unique: true }), [], 'unique skips exposures that already have a run of the label');
      await recordComponents(db, 'chip', [
        { id: chipIds[0]!, component: 'XY01', quality: 2 }, { id: chipIds[0]!, component: 'XY02', quality: 3 },
        { id: chipIds[1]!, component: 'XY01' }, { id: chipIds[1]!, component: 'XY02' },
      ]);
      let result = await advance(db, { stage: 'chip', label: 'lap' });
      assert.deepEqual(result.runs.map((r) => [r.id, r.stopped, r.bad_components]), [[chipIds[0]!, 'quality', 2], [chipIds[1]!, null, 0]]);
      const cam = result.runs[1]!.queued!.id;
      await recordComponent(db, 'camera', cam, null, { quality: 9 });
      result = await advance(db, { stage: 'camera' });
      assert.deepEqual(result.runs.map((r) => [r.id, r.stopped, r.bad_components]), [[cam, 'quality', 1]], 'a bad-quality camera run is full but queues no fake run');
      assert.deepEqual(await listRuns(db, { stage: 'fake' }), []);
    })));

    it('changes states by the rules: drop, wait, cleanup, and update to redo a full run', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      const exps = await registerExposures(db, [exposure('s1', ['XY01', 'XY02']), exposure('s2', ['XY01'])]);
      const ids = await defineRun(db, 'chip', { exp_ids: exps, label: 'st', end_stage: 'chip' });
      await recordComponents(db, 'chip', [
        { id: ids[0]!, component: 'XY01' }, { id: ids[0]!, component: 'XY02', quality: 1 }, { id: ids[1]!, component: 'XY01', fault: 5 },
      ]);
      await advance(db);
      await assert.rejects(setRunState(db, 'chip', [ids[1]!], 'full'), rejects('gpc1_bad_transition', /advance sets runs to full/));
      await assert.rejects(setRunState(db, 'chip', [ids[0]!, ids[1]!], 'goto_cleaned'), rejects('gpc1_bad_transition', new RegExp(`chip run ${ids[1]} is new and cannot become goto_cleaned; from new it may become wait, drop`)));
      assert.equal((await listRuns(db, { stage: 'chip', state: 'full' })).length, 1, 'a refused change changes nothing');
      await assert.rejects(setRunState(db, 'chip', [999], 'drop'), rejects('gpc1_unknown_run', /chip run 999 does not exist/));
      await assert.rejects(setRunState(db, 'chip', {}, 'drop'), rejects('gpc1_bad_input', /at least one of label/));

      assert.deepEqual(await setRunState(db, 'chip', [ids[1]!], 'wait'), { changed: [ids[1]!], skipped: 0 });
      assert.equal(await revertFaults(db, { stage: 'chip' }), 0, 'a waiting run is left alone');
      assert.deepEqual(await pendingComponents(db, 'chip'), [], 'and is not processed');
      await setRunState(db, 'chip', [ids[1]!], 'new');
      assert.equal(await revertFaults(db, { stage: 'chip' }), 1);
      assert.equal((await pendingComponents(db, 'chip')).length, 1);
      assert.deepEqual(await setRunState(db, 'chip', { label: 'st' }, 'wait'), { changed: [ids[1]!], skipped: 1 }, 'a filter moves the runs that may move');
      assert.deepEqual(await setRunState(db, 'chip', { label: 'st', state: 'wait' }, 'drop'), { changed: [ids[1]!], skipped: 0 });

      // Redo a full run: its good components are marked, redone, and the run is full again without re-queuing.
      await setRunState(db, 'chip', [ids[0]!], 'update');
      assert.deepEqual((await pendingComponents(db, 'chip')).map((p) => [p.id, p.component, p.state]), [[ids[0]!, 'XY01', 'update']]);
      assert.equal((await advance(db)).advanced, 0);
      await recordComponent(db, 'chip', ids[0]!, 'XY01', { fault: 3 });
      assert.equal(await revertFaults(db, { stage: 'chip' }), 1);
      await recordComponent(db, 'chip', ids[0]!, 'XY01', { path_base: 'redone' });
      await assert.rejects(recordComponent(db, 'chip', ids[0]!, 'XY01'), rejects('gpc1_duplicate_component', /already recorded as done/));
      const redo = await advance(db);
      assert.deepEqual(redo.runs.map((r) => [r.id, r.stopped]), [[ids[0]!, 'updated']]);
      // A cleaned run is updated too: its bad-quality component (cleaned, never redone) does not hold it back.
      for (const to of ['goto_cleaned', 'cleaned', 'update'] as const) await setRunState(db, 'chip', [ids[0]!], to);
      assert.deepEqual((await pendingComponents(db, 'chip')).map((p) => [p.id, p.component]), [[ids[0]!, 'XY01']]);
      await recordComponent(db, 'chip', ids[0]!, 'XY01', { path_base: 'redone again' });
      assert.deepEqual((await advance(db)).runs.map((r) => [r.id, r.stopped]), [[ids[0]!, 'updated']]);

      // Cleanup: full → goto_cleaned → cleaned (components follow) → goto_purged → purged, which is final.
      for (const to of ['goto_cleaned', 'cleaned', 'goto_purged', 'error_purged', 'goto_purged', 'purged'] as const) {
        await setRunState(db, 'chip', [ids[0]!], to);
      }
      const states = await db.all<{ data_state: string }>('SELECT data_state FROM chipProcessedImfile WHERE chip_id = ? ORDER BY class_id', [ids[0]!]);
      assert.deepEqual(states.map((s) => s.data_state), ['purged', 'purged']);
      await assert.rejects(setRunState(db, 'chip', [ids[0]!], 'update'), rejects('gpc1_bad_transition', /nothing \(it is final\)/));
      await assert.rejects(recordComponent(db, 'chip', ids[0]!, 'XY01'), rejects('gpc1_run_not_processing', /is purged; components are recorded only while a run is new/));
    })));

    it('defines and completes the sky stages: stack, staticsky, skycal, fullforce, diff, addstar, publish', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      const exps = await registerExposures(db, [exposure('w1', ['XY01']), exposure('w2', ['XY01'])]);
      const warps: number[] = [];
      for (const chip of await defineRun(db, 'chip', { exp_ids: exps, label: 'sky' })) {
        await recordComponent(db, 'chip', chip, 'XY01');
      }
      // Walk both exposures up to warp, each warp with one skycell.
      for (const s of ['chip', 'camera', 'fake'] as const) {
        const queued = (await advance(db, { stage: s })).runs.map((r) => r.queued!.id);
        for (const id of queued) {
          if (s === 'chip') await recordComponent(db, 'camera', id, null);
          if (s === 'camera') await recordComponent(db, 'fake', id, 'XY01');
          if (s === 'fake') {
            warps.push(id);
            await mapSkyCells(db, id, [{ skycell_id: 'skycell.0001.001' }]);
            await recordComponent(db, 'warp', id, 'skycell.0001.001', { good_frac: 0.9 });
          }
        }
      }
      assert.equal((await advance(db, { stage: 'warp' })).advanced, 2);
      await assert.rejects(defineRun(db, 'stack', { skycell_id: 'skycell.0001.002', tess_id: 'RINGS.V3', filter: 'r.00000', warp_ids: warps, label: 'sky' }),
        rejects('gpc1_input_not_ready', /has no good skyfile for RINGS.V3 skycell.0001.002/));
      const [stack] = await defineRun(db, 'stack', { skycell_id: 'skycell.0001.001', tess_id: 'RINGS.V3', filter: 'r.00000', warp_ids: warps, label: 'sky' });
      await assert.rejects(defineRun(db, 'staticsky', { stack_ids: [stack!], label: 'sky' }), rejects('gpc1_input_not_ready', new RegExp(`stack run ${stack} \\(new\\) is not full`)));
      await recordComponent(db, 'stack', stack!, null, { sources: 1000, mjd_obs: 55317.5 });
      assert.equal((await advance(db, { stage: 'stack' })).advanced, 1);
      const [sky] = await defineRun(db, 'staticsky', { stack_ids: [stack!], label: 'sky' });
      await recordComponent(db, 'staticsky', sky!, null, { uri: 'neb://sky/skycell.0001.001.cmf', sources: 900 });
      await advance(db);
      const [skycal] = await defineRun(db, 'skycal', { sky_id: sky!, label: 'sky' });
      assert.deepEqual((await listRuns(db, { stage: 'skycal' })).map((r) => [r.row.sky_id, r.row.stack_id]), [[sky, stack]]);
      await recordComponent(db, 'skycal', skycal!, null, { path_base: 'neb://sky/cal', uri: 'neb://sky/cal.cmf', zpt_obs: 25.0 });
      await advance(db);
      const [ff] = await defineRun(db, 'fullforce', { skycal_ids: [skycal!], label: 'sky' });
      assert.deepEqual((await pendingComponents(db, 'fullforce')).map((p) => p.component), warps.map(String), 'one component per warp that went into the stack');
      assert.equal((await listRuns(db, { stage: 'fullforce' }))[0]!.row.sources_path_base, 'neb://sky/cal');
      await recordComponent(db, 'fullforce', ff!, String(warps[0]), {});
      await assert.rejects(recordComponent(db, 'fullforce', ff!, 99999, {}), rejects('gpc1_component_not_in_run', new RegExp(`99999 is not a component of fullforce run ${ff}`)));
      await recordComponent(db, 'fullforce', ff!, warps[1]!, {});
      assert.equal((await advance(db, { stage: 'fullforce' })).advanced, 1);

      const diffOf = (skycell_id: string, sides: Record<string, number>) => defineRun(db, 'diff', { tess_id: 'RINGS.V3', label: 'sky', skycells: [{ skycell_id, ...sides }] });
      await assert.rejects(diffOf('skycell.0001.001', { warp1: warps[0]!, warp2: warps[0]! }), rejects('gpc1_bad_input', new RegExp(`subtract warp run ${warps[0]} from itself`)));
      await assert.rejects(diffOf('skycell.0001.002', { warp1: warps[0]!, stack2: stack! }), rejects('gpc1_input_not_ready', /warp run \d+ has no good skyfile for RINGS.V3 skycell.0001.002/));
      await assert.rejects(diffOf('skycell.0001.002', { stack1: stack!, warp2: warps[1]! }), rejects('gpc1_input_not_ready', new RegExp(`stack run ${stack} is not of RINGS.V3 skycell.0001.002`)));
      const [diff] = await diffOf('skycell.0001.001', { warp1: warps[0]!, stack2: stack! });
      await recordComponent(db, 'diff', diff!, 'skycell.0001.001', { sources: 12 });
      assert.equal((await advance(db, { stage: 'diff' })).advanced, 1);
      const adds = await defineRun(db, 'addstar', { source_stage: 'skycal', source_ids: [skycal!], label: 'sky', dvodb: 'dvo.pv3' });
      await assert.rejects(defineRun(db, 'addstar', { source_stage: 'chip', source_ids: [1], label: 'sky' }), rejects('gpc1_bad_input', /source_stage must be one of camera, staticsky/));
      const [pub] = await defineRun(db, 'publish', { client: 'psps', source_stage: 'diff', source_ids: [diff!], label: 'sky' });
      await recordComponent(db, 'addstar', adds[0]!, null, { dvodb_path: '/data/dvo.pv3' });
      await recordComponent(db, 'publish', pub!, null, { path_base: 'out' });
      const last = await advance(db);
      assert.deepEqual(last.runs.map((r) => r.stage), ['addstar', 'publish']);
      assert.deepEqual((await summary(db)).filter((s) => s.state !== 'full'), []);
    })));

    it('refuses bad input with errors that name the stage, run and component', () => engine.withUrl((url) => withGpc1(url, async (db) => {
      const [exp] = await registerExposures(db, [exposure('b1', ['XY01', 'XY02'])]);
      await assert.rejects(registerExposure(db, exposure('b1', ['XY01'])), rejects('gpc1_duplicate_exposure', /b1 \(GPC1, PS1\) is already registered/));
      await assert.rejects(registerExposure(db, exposure('b2', [])), rejects('gpc1_bad_input', /imfiles must list/));
      await assert.rejects(registerExposure(db, { ...exposure('b3', ['XY01']), exptime: 3 } as ExposureSpec), rejects('gpc1_unknown_column', /unknown field exptime/));
      await assert.rejects(registerExposure(db, exposure('b4', ['XY01'], { airmass: 'high' as never })), rejects('gpc1_bad_input', /airmass must be a finite number/));
      await assert.rejects(registerExposure(db, exposure('b5', ['XY01'], { dateobs: 'yesterday' })), rejects('gpc1_bad_input', /dateobs "yesterday" is not an ISO-8601 time/));
      // What Date would read as some time, but is not an ISO-8601 time of a day that exists.
      for (const dateobs of ['1', 'May 5', '2010-02-30T10:00:00Z', '2010-05-01T24:00:00Z']) {
        await assert.rejects(registerExposure(db, exposure('b5', ['XY01'], { dateobs })), rejects('gpc1_bad_input', /is not an ISO-8601 time/), dateobs);
      }
      await assert.rejects(registerExposure(db, exposure('b5', ['XY01'], { ra: Infinity })), rejects('gpc1_bad_input', /ra must be a finite number/));
      const [b7] = await registerExposures(db, [exposure('b7', ['XY01'], { dateobs: '2010-05-01 10:11:12+02:00' })]);
      assert.equal((await db.get<{ dateobs: string }>('SELECT dateobs FROM rawExp WHERE exp_id = ?', [b7!]))!.dateobs, '2010-05-01T08:11:12.000Z');
      await db.run('DELETE FROM rawImfile WHERE exp_id = ?', [b7!]);
      await db.run('DELETE FROM rawExp WHERE exp_id = ?', [b7!]);
      await db.run('DELETE FROM newImfile WHERE exp_id = ?', [b7!]);
      await db.run('DELETE FROM newExp WHERE exp_id = ?', [b7!]);
      assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM rawExp'))!.n, 1, 'nothing of a refused registration is kept');

      await assert.rejects(defineRun(db, 'nope' as never, { label: 'x' } as never), rejects('gpc1_unknown_stage', /unknown stage "nope"; the stages are chip, camera/));
      await assert.rejects(defineRun(db, 'chip', { exp_ids: [exp!] } as never), rejects('gpc1_bad_input', /define chip: label is required/));
      await assert.rejects(defineRun(db, 'chip', { exp_ids: [exp!, 77], label: 'x' }), rejects('gpc1_unknown_exposure', /exposure 77 does not exist/));
      await assert.rejects(defineRun(db, 'chip', { exp_ids: [exp!], label: 'x', end_stage: 'stack' }), rejects('gpc1_bad_input', /end_stage "stack" must be one of chip, camera, fake, warp/));
      await assert.rejects(defineRun(db, 'chip', { exp_ids: [exp!], label: 'x', tess_id: null, expgroup: 'x' } as never), rejects('gpc1_unknown_column', /unknown field expgroup/));
      const [noTess] = await registerExposures(db, [exposure('b6', ['XY01'], { tess_id: null })]);
      await assert.rejects(defineRun(db, 'chip', { exp_ids: [noTess!], label: 'x' }), rejects('gpc1_bad_input', new RegExp(`exposure ${noTess} would go on to warp but has no tess_id`)));
      const [chip] = await defineRun(db, 'chip', { exp_ids: [exp!], label: 'x' });
      await assert.rejects(defineRun(db, 'camera', { chip_ids: [chip!], label: 'x' }), rejects('gpc1_input_not_ready', new RegExp(`chip run ${chip} \\(new\\) is not full`)));

      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY99'), rejects('gpc1_component_not_in_run', new RegExp(`XY99 is not a component of chip run ${chip}; its class_id values are XY01, XY02`)));
      await assert.rejects(recordComponent(db, 'chip', 4242, 'XY01'), rejects('gpc1_unknown_run', /chip run 4242 does not exist/));
      await assert.rejects(recordComponent(db, 'chip', chip!, null), rejects('gpc1_bad_input', /needs a component \(class_id\)/));
      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY01', { zpt: 1 }), rejects('gpc1_unknown_column', /zpt is not a column of chipProcessedImfile/));
      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY01', { fault: -1 }), rejects('gpc1_bad_input', /fault must be a whole number from 0 to 32767/));
      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY01', { n_stars: 1.5 }), rejects('gpc1_bad_input', /n_stars must be a whole number/));
      // INTEGER columns hold 32 bits on PostgreSQL: the same refusal on both engines, not a database error.
      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY01', { n_stars: 3_000_000_000 }), rejects('gpc1_bad_input', /n_stars must be a whole number from -2147483648 to 2147483647/));
      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY01', { dtime_total: -Infinity }), rejects('gpc1_bad_input', /dtime_total must be a finite number/));
      await recordComponent(db, 'chip', chip!, 'XY01', { fault: 4 });
      await assert.rejects(recordComponent(db, 'chip', chip!, 'XY01'), rejects('gpc1_duplicate_component', /already recorded with fault 4; revert the faults/));
      await assert.rejects(recordComponents(db, 'chip', [{ id: chip!, component: 'XY02' }, { id: chip!, component: 'XY02' }]), rejects('gpc1_duplicate_component', /given twice/));
      assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM chipProcessedImfile'))!.n, 1, 'a refused batch records nothing');

      await assert.rejects(revertFaults(db, { stage: 'chip', fault: 0 }), rejects('gpc1_bad_input', /fault 0 means no fault/));
      await assert.rejects(pendingComponents(db, 'chip', { limit: 0 }), rejects('gpc1_bad_input', /limit must be a positive/));
      await assert.rejects(listRuns(db, { stage: 'chip', state: 'running' as never }), rejects('gpc1_unknown_state', /unknown run state "running"/));
      await assert.rejects(setRunState(db, 'chip', [chip!], 'gone' as never), rejects('gpc1_unknown_state', /the states are new, wait, full/));
      await assert.rejects(mapSkyCells(db, 31337, [{ skycell_id: 's' }]), rejects('gpc1_unknown_run', /warp run 31337 does not exist/));
    })));

    it('advances from several processes at once without queuing a stage twice', () => engine.withUrl(async (url) => {
      const runs = 40;
      await withGpc1(url, async (db) => {
        const exps = await registerExposures(db, Array.from({ length: runs }, (_, i) => exposure(`c${i}`, OTAS)));
        const chips = await defineRun(db, 'chip', { exp_ids: exps, label: 'race', end_stage: 'camera' });
        await recordComponents(db, 'chip', chips.flatMap((id) => OTAS.map((component) => ({ id, component }))));
      });
      const worker = fileURLToPath(new URL('./advance-worker.fixture.ts', import.meta.url));
      const start = String(Date.now() + 2000);
      const results = await Promise.all([1, 2, 3, 4].map(() => run(process.execPath, [worker, url, start])));
      const advanced = results.flatMap((r) => JSON.parse(r.stdout) as { stage: string; id: number; queued: number | null }[]);
      const chipRuns = advanced.filter((a) => a.stage === 'chip');
      assert.equal(chipRuns.length, runs, 'every chip run advanced');
      assert.equal(new Set(chipRuns.map((a) => a.id)).size, runs, 'no chip run advanced twice');
      await withGpc1(url, async (db) => {
        const cams = await listRuns(db, { stage: 'camera' });
        assert.equal(cams.length, runs, 'one camera run queued per chip run');
        assert.equal(new Set(cams.map((c) => c.row.chip_id)).size, runs);
        assert.deepEqual(await summary(db), [{ stage: 'chip', state: 'full', runs }, { stage: 'camera', state: 'new', runs }]);
      });
    }));
  });
}
