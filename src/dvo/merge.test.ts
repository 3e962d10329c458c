import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { addstar } from './addstar.ts';
import { grabImage } from './grab.ts';
import { mergeDvo } from './merge.ts';
import { IMAGE_PENDING, readImages, writeImages } from './images.ts';
import { makeStars, writeSmf } from './test-support.ts';
import { verifyDvo } from './verify.ts';

test('merge gives the database that ingesting everything at once gives', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(1000, { ra: 250, dec: -45, size: 0.4 }, 61, 3);
    const f = [1, 2, 3].map((e) => join(dir, `e${e}.smf`));
    for (let e = 0; e < 3; e++) await writeSmf(f[e], stars, { expId: e + 1, filter: e === 2 ? 'z.00000' : 'r.00000' });
    const create = { create: { maxObjects: 300, floorDensity: 1 } };
    await addstar(join(dir, 'A'), [f[0], f[1]], create);
    await addstar(join(dir, 'B'), [f[1], f[2]], create);
    await addstar(join(dir, 'D'), f, create);
    const m = await mergeDvo(join(dir, 'A'), join(dir, 'B'), join(dir, 'C'));
    assert.equal(m.imagesShared, 2);
    assert.equal(m.imagesAdded, 2);
    assert.equal(m.measures, 1000);
    assert.equal(m.newObjects, 0);
    const c = await verifyDvo(join(dir, 'C'));
    const d = await verifyDvo(join(dir, 'D'));
    assert.deepEqual(c.faults, []);
    assert.equal(c.objects, d.objects);
    assert.equal(c.measures, d.measures);
    for (const id of [333, 334]) {
      const gc = await grabImage(join(dir, 'C'), id);
      const gd = await grabImage(join(dir, 'D'), id);
      assert.deepEqual(gc.rows.columns.slice(0, 3), gd.rows.columns.slice(0, 3));
    }
    // The output must be new.
    await mkdir(join(dir, 'E'));
    await writeFile(join(dir, 'E', 'x'), '');
    await assert.rejects(mergeDvo(join(dir, 'A'), join(dir, 'B'), join(dir, 'E')), { code: 'dvo_exists' });
    await assert.rejects(mergeDvo(join(dir, 'A'), join(dir, 'nope'), join(dir, 'F')), { code: 'dvo_no_database' });
    // A file named as the output, or a place inside an input, is refused and left alone.
    await writeFile(join(dir, 'precious.txt'), 'keep me');
    await assert.rejects(mergeDvo(join(dir, 'A'), join(dir, 'B'), join(dir, 'precious.txt')), { code: 'dvo_exists' });
    assert.equal(await readFile(join(dir, 'precious.txt'), 'utf8'), 'keep me');
    const images = await readFile(join(dir, 'A', 'Images.dat'));
    await assert.rejects(mergeDvo(join(dir, 'A'), join(dir, 'B'), join(dir, 'A', 'Images.dat')), { code: 'dvo_exists' });
    await assert.rejects(mergeDvo(join(dir, 'A'), join(dir, 'B'), join(dir, 'A', 'sub')), (e: Error & { code?: string }) => e.code === 'dvo_exists' && /inside the database/.test(e.message));
    assert.deepEqual(await readFile(join(dir, 'A', 'Images.dat')), images);

    // An input with an ingest not finished (an image still pending) is refused, either side.
    await cp(join(dir, 'B'), join(dir, 'Bp'), { recursive: true });
    const table = await readImages(join(dir, 'Bp'));
    table.store.u32('FLAGS')[0] |= IMAGE_PENDING;
    await writeImages(join(dir, 'Bp'), table);
    for (const [x, y] of [[join(dir, 'A'), join(dir, 'Bp')], [join(dir, 'Bp'), join(dir, 'A')]]) {
      await assert.rejects(mergeDvo(x, y, join(dir, 'P')), (e: Error & { code?: string }) => e.code === 'dvo_merge_pending' && e.message.includes(`${join(dir, 'Bp')} has 1 image whose ingest has not finished`));
      assert.deepEqual((await readdir(dir)).filter((n) => n === 'P'), [], 'nothing left of the output');
    }
  });
});
