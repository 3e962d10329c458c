import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testEngines } from '../db/index.ts';
import {
  Gpc1Error, advance, defineRun, mapSkyCells, openGpc1, recordComponents, registerExposures, stackInputs,
} from './index.ts';

const A = 'skycell.1133.081';
const B = 'skycell.1133.082';

for (const engine of testEngines()) {
  describe(`stack inputs on ${engine.name}`, { skip: engine.skip }, () => {
    it('lists per input warp its exposure and the chips mapped to the stack\'s skycell; all is every chip; broken links show', () => engine.withUrl(async (url) => {
      const db = await openGpc1(url);
      try {
        const chips = ['XY01', 'XY02', 'XY03'];
        const [expId] = await registerExposures(db, [{
          exp_name: 'o1', camera: 'GPC1', telescope: 'PS1', dateobs: '2010-05-01T10:00:00Z', exp_type: 'object', filter: 'r.00000',
          exp_time: 45, airmass: 1.1, ra: 150.1, decl: 2.2, obs_mode: '3PI', tess_id: 'RINGS.V3',
          imfiles: chips.map((class_id) => ({ class_id })),
        }]);
        const [chipId] = await defineRun(db, 'chip', { exp_ids: [expId!], label: 'l', end_stage: 'warp', tess_id: 'RINGS.V3' });
        await recordComponents(db, 'chip', chips.map((c) => ({ id: chipId!, component: c })));
        const camId = (await advance(db)).runs[0]!.queued!.id;
        await recordComponents(db, 'camera', [{ id: camId, component: null }]);
        const fakeId = (await advance(db)).runs[0]!.queued!.id;
        await recordComponents(db, 'fake', chips.map((c) => ({ id: fakeId, component: c })));
        const warpId = (await advance(db)).runs[0]!.queued!.id;
        await mapSkyCells(db, warpId, [{ skycell_id: A, class_id: 'XY02' }, { skycell_id: A, class_id: 'XY01' }, { skycell_id: B }]);
        await recordComponents(db, 'warp', [{ id: warpId, component: A }, { id: warpId, component: B }]);
        await advance(db);
        const [stackA] = await defineRun(db, 'stack', { label: 'l', skycell_id: A, tess_id: 'RINGS.V3', filter: 'r.00000', warp_ids: [warpId] });
        const [stackB] = await defineRun(db, 'stack', { label: 'l', skycell_id: B, tess_id: 'RINGS.V3', filter: 'r.00000', warp_ids: [warpId] });
        // A stack is of its warps' filter; a stack_id may be given (a simulated cmf carries one), once.
        await assert.rejects(defineRun(db, 'stack', { label: 'l', skycell_id: A, tess_id: 'RINGS.V3', filter: 'g.00000', warp_ids: [warpId] }),
          (e: unknown) => e instanceof Gpc1Error && e.code === 'gpc1_bad_input' && e.message.includes(`warp run ${warpId} (r.00000) is not of the stack's filter g.00000`));
        const spec = { label: 'given', skycell_id: A, tess_id: 'RINGS.V3', filter: 'r.00000', warp_ids: [warpId] };
        assert.deepEqual(await defineRun(db, 'stack', { ...spec, stack_id: 500 }), [500]);
        await assert.rejects(defineRun(db, 'stack', { ...spec, stack_id: 500 }),
          (e: unknown) => e instanceof Gpc1Error && e.code === 'gpc1_bad_input' && /stack run 500 already exists/.test(e.message));
        assert.deepEqual(await defineRun(db, 'stack', spec), [501], 'the ids assigned go on after the one given');
        await db.run("DELETE FROM stackInputSkyfile WHERE stack_id IN (SELECT stack_id FROM stackRun WHERE label = 'given')");
        await db.run("DELETE FROM stackRun WHERE label = 'given'");

        assert.deepEqual(await stackInputs(db, stackA!), {
          stackId: stackA, skycellId: A, tessId: 'RINGS.V3', warps: [{ warpId, expId, classIds: ['XY01', 'XY02'] }],
        });
        assert.deepEqual((await stackInputs(db, stackB!))!.warps, [{ warpId, expId, classIds: chips }], 'all: every chip of the exposure');
        await db.run('UPDATE rawImfile SET ignored = 1 WHERE exp_id = ? AND class_id = ?', [expId!, 'XY03']);
        assert.deepEqual((await stackInputs(db, stackB!))!.warps[0]!.classIds, ['XY01', 'XY02'], 'an ignored chip is not an input');
        assert.equal(await stackInputs(db, 999), undefined);
        await assert.rejects(stackInputs(db, -1), (e: unknown) => e instanceof Gpc1Error && e.code === 'gpc1_bad_input');

        // A damaged database: the map lost the skycell, the chain lost its chip run.
        await db.run('DELETE FROM warpSkyCellMap WHERE warp_id = ? AND skycell_id = ?', [warpId, A]);
        assert.deepEqual((await stackInputs(db, stackA!))!.warps, [{ warpId, expId, classIds: [] }]);
        await db.run('UPDATE warpRun SET fake_id = NULL WHERE warp_id = ?', [warpId]);
        assert.deepEqual((await stackInputs(db, stackB!))!.warps, [{ warpId, expId: null, classIds: ['all'] }]);
      } finally {
        await db.close();
      }
    }));
  });
}
