import assert from 'node:assert/strict';
import { cp, rm } from 'node:fs/promises';
import { join, relative as relativePath } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { openDatabase, schemaOwners } from '../db/index.ts';
import { addstar } from './addstar.ts';
import { exportBox, grabFromScratch, openScratch } from './box-export.ts';
import { grabImage } from './grab.ts';
import { exportRegion } from './region-export.ts';
import { dvoStats, listRegions } from './stats.ts';
import { makeStars, writeSmf } from './test-support.ts';
import { regionPath } from './region-files.ts';

test('box export keeps what neighbouring boxes share, refreshes what changed; stats, regions, region export', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(3000, { ra: 10.5, dec: 0.25, size: 0.5 }, 51, 3);
    const files = [join(dir, 'a.smf'), join(dir, 'b.smf'), join(dir, 'c.smf')];
    await writeSmf(files[0], stars, { expId: 1 });
    await writeSmf(files[1], stars, { expId: 2, filter: 'i.00000' });
    const db = join(dir, 'db');
    await addstar(db, files.slice(0, 2), { create: { maxObjects: 400, floorDensity: 1 } });
    const stats = await dvoStats(db);
    assert.equal(stats.objects, 3000);
    assert.equal(stats.measures, 6000);
    assert.equal(stats.images, 4);
    assert.equal(stats.pendingImages, 0);
    assert.ok(stats.regionsWithData >= 4, `${stats.regionsWithData} regions`);
    assert.ok(stats.largest!.objects <= 800);

    const url = `sqlite:${join(dir, 'scratch.db')}`;
    const boxA = { raMin: 10.2, raMax: 10.5, decMin: 0, decMax: 0.5 };
    const boxB = { raMin: 10.4, raMax: 10.8, decMin: 0, decMax: 0.5 };
    const inA = (await listRegions(db, boxA)).filter((r) => r.objects > 0);
    const inB = (await listRegions(db, boxB)).filter((r) => r.objects > 0);
    const shared = inA.filter((r) => inB.some((b) => b.index === r.index));
    assert.ok(shared.length > 0 && shared.length < inB.length, `${inA.length} ${inB.length} ${shared.length}`);
    const a = await exportBox(db, boxA, url);
    assert.equal(a.imported, inA.length);
    assert.equal(a.measures, inA.reduce((n, r) => n + r.measures, 0));
    assert.deepEqual(a.tablesRefreshed, ['Images', 'Photcodes', 'SkyTable']);
    const b = await exportBox(db, boxB, url);
    assert.equal(b.kept, shared.length);
    assert.equal(b.imported, inB.length - shared.length);
    assert.equal(b.dropped, inA.length - shared.length);
    assert.deepEqual(b.tablesRefreshed, []);
    // The same database named by a relative path: the same files, nothing imported again.
    const relative = await exportBox(relativePath(process.cwd(), db), boxB, url);
    assert.deepEqual([relative.kept, relative.imported, relative.tablesRefreshed], [inB.length, 0, []]);

    // A new exposure on part of box B: only the regions it touched are imported again.
    const some = { ra: stars.ra.filter((r) => r > 10.7), dec: stars.dec.filter((_, i) => stars.ra[i] > 10.7), mag: stars.mag.filter((_, i) => stars.ra[i] > 10.7) };
    await writeSmf(files[2], some, { expId: 3 });
    await addstar(db, [files[2]]);
    const touched = (await listRegions(db, boxB)).filter((r) => r.objects > 0 && r.measures !== inB.find((x) => x.index === r.index)?.measures);
    assert.ok(touched.length > 0 && touched.length < inB.length);
    const c = await exportBox(db, boxB, url);
    assert.equal(c.imported, touched.length);
    assert.equal(c.kept, inB.length - touched.length);
    assert.deepEqual(c.tablesRefreshed, ['Images']);

    // The scratch answers look-ups by image as DVO does, for an image inside the box.
    const scratch = await openScratch(url);
    try {
      const chip = 334;
      const fromDvo = await grabImage(db, chip);
      const fromSql = await grabFromScratch(scratch, chip);
      assert.equal(fromSql.length, fromDvo.rows.rowCount);
      const dets = fromDvo.rows.columns[0].values as BigUint64Array;
      const objs = fromDvo.rows.columns[1].values as BigUint64Array;
      fromSql.forEach((row, i) => {
        assert.equal(BigInt(row.det_id), dets[i]);
        assert.equal(BigInt(row.obj_id), objs[i]);
      });
      const counts = await scratch.get<{ n: number }>('SELECT COUNT(*) AS n FROM dvo_measures');
      assert.equal(Number(counts!.n), (await listRegions(db, boxB)).reduce((n, r) => n + r.measures, 0));
    } finally {
      await scratch.close();
    }

    const reg = await exportRegion(db, inA[0].name);
    assert.equal(reg.rows.rowCount, inA[0].objects);
    const names = reg.columns.map((col) => col.name);
    const nr = reg.rows.columns[names.indexOf('r_NCODE')].values as Int16Array;
    const ni = reg.rows.columns[names.indexOf('i_NCODE')].values as Int16Array;
    assert.ok(nr.every((v) => v === 1) && ni.every((v) => v === 1));
    await assert.rejects(exportRegion(db, 'n9999/99999'), { code: 'dvo_no_such_region' });

    // A region that lost one of its files is an error, not a region left out.
    const damaged = join(dir, 'damaged');
    await cp(db, damaged, { recursive: true });
    await rm(regionPath(damaged, inB[0]!, 'cps'));
    await assert.rejects(exportBox(damaged, boxB, `sqlite:${join(dir, 'scratch2.db')}`),
      (e: Error & { code?: string }) => e.code === 'dvo_damaged' && new RegExp(`region ${inB[0]!.name}: .*\\.cps missing`).test(e.message));

    // A database of something else is not a scratch: refused, and left as it was.
    const gpc1Url = `sqlite:${join(dir, 'gpc1.db')}`;
    const room = { room: 'gpc1', migrations: [{ version: 1, name: 'runs', up: () => 'CREATE TABLE chipRun (chip_id INTEGER)' }] };
    await (await openDatabase(gpc1Url, { migrations: [room] })).close();
    await assert.rejects(exportBox(db, boxB, gpc1Url), (e: Error & { code?: string }) => e.code === 'dvo_bad_scratch' && /holds the gpc1 tables/.test(e.message));
    const other = await openDatabase(`sqlite:${join(dir, 'other.db')}`);
    await other.exec('CREATE TABLE notes (t TEXT)');
    await other.close();
    await assert.rejects(exportBox(db, boxB, `sqlite:${join(dir, 'other.db')}`), (e: Error & { code?: string }) => e.code === 'dvo_bad_scratch' && /1 tables not made by ipp/.test(e.message));
    const g = await openDatabase(gpc1Url);
    try {
      assert.deepEqual((await schemaOwners(g)).rooms, ['gpc1']);
    } finally {
      await g.close();
    }
  });
});
