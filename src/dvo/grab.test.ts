import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { FitsFile, fitsTable } from '../fits/index.ts';
import { collectTable } from '../table/index.ts';
import { addstar } from './addstar.ts';
import { GRAB_COLUMNS, grabImages } from './grab.ts';
import { EXTNAME } from './layouts.ts';
import { makeStars, writeSmf } from './test-support.ts';

test('grab: a narrowed grab (columns) returns exactly the columns of the full one, plain and compressed', async () => {
  await withTempDir(async (dir) => {
    // Several exposures over a few small regions: measures of one image sit in more than one
    // region, and each region's objects are only partly pointed at by the image grabbed.
    const stars = makeStars(1200, { ra: 120, dec: 20, size: 0.6 }, 7, 3);
    const files: string[] = [];
    const chips: number[] = [];
    for (let e = 1; e <= 3; e++) {
      files.push(join(dir, `e${e}.smf`));
      chips.push(...(await writeSmf(files[e - 1], stars, { expId: e, filter: 'r.00000' })).chips.map((c) => c.imageId));
    }
    const all = GRAB_COLUMNS.map((c) => c.name);
    const asked = [['DET_ID', 'OBJ_ID', 'IPP_IDET'], ['OBJ_ID'], ['CAT_ID', 'RA', 'PHOTCODE', 'DET_ID'], ['MAG', 'M_CAL', 'DVO_OBJ_ID'], [], [...all].reverse()];
    for (const compress of [false, true]) {
      const db = join(dir, compress ? 'packed' : 'plain');
      const r = await addstar(db, files, { create: { maxObjects: 150, compress, floorDensity: 1 } });
      assert.equal(r.detections, 3600);
      const ids = [chips[0], chips[1], chips.at(-1)!];
      const full = await grabImages(db, ids);
      assert.ok(full.every((g) => g.rows.rowCount > 0));
      assert.ok(full.some((g) => g.regionsRead > 1), 'an image spans regions');
      assert.deepEqual(full.map((g) => g.rows.columns.length), ids.map(() => all.length));
      // Every objID is its object's EXT_ID as the Average tables read whole give it (the grab
      // reads only the rows the measures point at).
      const objIds = new Map<string, bigint>();
      for (const band of await readdir(db, { withFileTypes: true })) {
        if (!band.isDirectory() || band.name === 'locks') continue;
        for (const f of (await readdir(join(db, band.name))).filter((n) => n.endsWith('.cpt'))) {
          const cpt = await FitsFile.open(join(db, band.name, f));
          const t = await collectTable(fitsTable(cpt, EXTNAME.average), { columns: ['CAT_ID', 'OBJ_ID', 'EXT_ID'] });
          await cpt.close();
          const [cat, obj, ext] = t.columns.map((c) => c.values) as [Uint32Array, Uint32Array, BigUint64Array];
          for (let i = 0; i < t.rowCount; i++) objIds.set(`${cat[i]}/${obj[i]}`, ext[i]);
        }
      }
      let checked = 0;
      for (const g of full) {
        const [objId, cat, dvoObj] = [1, 11, 10].map((c) => g.rows.columns[c].values) as [BigUint64Array, Uint32Array, Uint32Array];
        for (let i = 0; i < g.rows.rowCount; i++, checked++) assert.equal(objId[i], objIds.get(`${cat[i]}/${dvoObj[i]}`));
      }
      assert.ok(checked > 0 && checked < objIds.size * 3, `${checked} measures of ${objIds.size} objects`);
      for (const columns of asked) {
        const narrow = await grabImages(db, ids, { columns });
        narrow.forEach((g, k) => {
          assert.equal(g.rows.rowCount, full[k].rows.rowCount);
          assert.equal(g.regionsRead, full[k].regionsRead);
          assert.deepEqual(g.rows.columns.map((c) => c.values), columns.map((name) => full[k].rows.columns[all.indexOf(name)].values), `${compress ? 'packed' : 'plain'} ${columns.join(',')}`);
        });
      }
    }
    await assert.rejects(grabImages(join(dir, 'plain'), [chips[0]], { columns: ['DET_ID', 'NOPE'] }), { code: 'usage', message: /NOPE/ });
    await assert.rejects(grabImages(join(dir, 'plain'), [chips[0]], { columns: ['RA', 'RA'] }), { code: 'usage' });
  });
});
