import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EMPTY_CELL, checkPng, mulberry32 } from '../../common/index.ts';
import { testEngines } from '../../db/index.ts';
import { defaultCellSize, fileTimestamp, writeDensityPlots } from './plotter.ts';
import { addConfig, insertItem, withTracking } from './test-support.ts';

test('file timestamps have no colons and cell sizes give 20-400 cells across', () => {
  assert.equal(fileTimestamp(new Date('2026-11-21T03:04:05.678Z')), '20261121T030405Z');
  const area = { min_ra: 0, max_ra: 360, min_dec: -30, max_dec: 90 };
  assert.equal(defaultCellSize({ ...area, box_size: 2 }), 2);
  assert.equal(defaultCellSize({ ...area, box_size: 0.1 }), 1.6);
  assert.equal(defaultCellSize({ min_ra: 10, max_ra: 12, min_dec: 0, max_dec: 1, box_size: 1 }), 0.0625);
});

for (const engine of testEngines()) {
  describe(`plotter on ${engine.name}`, { skip: engine.skip }, () => {
    it('maps the pending items of each batch type onto the config\'s sky, counted as an independent count gives', () => withTracking(engine, async (db, dir) => {
      const config = await addConfig(db, 'c1', { min_ra: '10', max_ra: '20', min_dec: '-5', max_dec: '5', box_size: '1', batch_types: 'P2,ST,OB' });
      const next = mulberry32(9);
      const u = () => next() / 2 ** 32;
      const placed: { type: string; ra: number; dec: number; state: string }[] = [];
      for (let i = 0; i < 300; i++) {
        const type = ['P2', 'ST', 'OB'][i % 3];
        const ra = type === 'OB' ? 10 + u() * 2 : 8 + u() * 14; // some outside the area
        const dec = -5 + u() * 10;
        const state = u() < 0.7 ? 'pending' : 'done';
        placed.push({ type, ra, dec, state });
        await insertItem(db, { config: 'c1', batchType: type, sourceId: i, ra, dec, state });
      }
      const now = new Date('2026-11-21T03:04:05Z');
      const out = await writeDensityPlots(db, config, { dir: join(dir, 'plots'), now, width: 420, height: 300, pageSize: 37 });
      assert.deepEqual((await readdir(join(dir, 'plots'))).sort(), ['c1_OB_20261121T030405Z.png', 'c1_P2_20261121T030405Z.png', 'c1_ST_20261121T030405Z.png']);
      for (const plot of out) {
        const cell = 0.5; // box 1 deg over a 10 deg area: halved once to reach 20 cells
        assert.equal(plot.grid.nRa, 20);
        assert.equal(plot.grid.nDec, 20);
        const expected = new Float64Array(400);
        for (const p of placed) {
          if (p.type !== plot.batchType || p.state !== 'pending' || p.ra < 10 || p.ra > 20) continue;
          expected[Math.min(19, Math.floor((p.dec + 5) / cell)) * 20 + Math.min(19, Math.floor((p.ra - 10) / cell))]++;
        }
        assert.deepEqual([...plot.grid.counts], [...expected], `${plot.batchType} counts`);
        assert.equal(plot.pending, expected.reduce((a, b) => a + b, 0));
        const png = await checkPng(plot.path);
        assert.deepEqual([png.width, png.height, png.text.Title], [420, 300, `c1 ${plot.batchType}: pending items`]);
        // OB items all sit at RA 10-12: the map's left part (high RA) is empty-cell grey.
        if (plot.batchType === 'OB') {
          let grey = 0;
          for (let i = 0; i < png.width * png.height; i++) {
            if (png.rgba[i * 4] === EMPTY_CELL[0] && png.rgba[i * 4 + 1] === EMPTY_CELL[1] && png.rgba[i * 4 + 2] === EMPTY_CELL[2]) grey++;
          }
          assert.ok(grey > 0.3 * png.width * png.height * 0.5, `${grey} grey pixels`);
        }
      }
    }));
  });
}
