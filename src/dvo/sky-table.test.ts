import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { mulberry32, withTempDir } from '../common/index.ts';
import { buildSkyTable, DensityGrid, readSkyTable, writeSkyTable } from './sky-table.ts';
import { detectionId, externIdOf, fillDetectionIds, ippIdetOf, OBJECT_ID_WORDS, objectId, setObjectId, zoneId } from './ids.ts';
import { defaultPhotcodes, PhotcodeTable, readPhotcodes, writePhotcodes } from './photcodes.ts';
import { AVERAGE_COLUMNS, IMAGE_COLUMNS, MEASURE_COLUMNS, PHOTCODE_COLUMNS, rowBytes, SECFILT_COLUMNS, SKY_REGION_COLUMNS } from './layouts.ts';

test('layouts have the row sizes of the original definitions', () => {
  assert.equal(rowBytes(AVERAGE_COLUMNS), 192);
  assert.equal(rowBytes(MEASURE_COLUMNS), 240);
  assert.equal(rowBytes(SECFILT_COLUMNS), 176);
  assert.equal(rowBytes(IMAGE_COLUMNS), 360);
  assert.equal(rowBytes(SKY_REGION_COLUMNS), 56);
  assert.equal(rowBytes(PHOTCODE_COLUMNS), 112);
});

test('objID follows the MAST formula', () => {
  // ra 10, dec 0: zid = 90 / 0.0083333 = 10800.04320017280..., izone 10800, zresid 0.0432...
  assert.equal(objectId(10, 0), 10800n * 10n ** 13n + 10_000_000n * 10_000n + 432n);
  assert.equal(zoneId(0), 10800);
  const id = detectionId(123456789, 4000000001);
  assert.equal(externIdOf(id), 123456789);
  assert.equal(ippIdetOf(id), 4000000001);
  const out = new BigUint64Array(4);
  fillDetectionIds(out, 1, 123456789, [7, 4000000001], 2);
  assert.deepEqual([...out], [0n, detectionId(123456789, 7), id, 0n]);
});

test('setObjectId writes the objID of objectId without a BigInt, at the poles, RA 0 and 360 and anywhere', () => {
  if (!OBJECT_ID_WORDS) return;
  const next = mulberry32(5);
  const rnd = (): number => next() / 2 ** 32;
  const positions: [number, number][] = [[0, -90], [0, 90], [359.9999999, 90], [359.9999999, -90], [10, 0], [180, -0.0000001]];
  for (let i = 0; i < 100_000; i++) positions.push([rnd() * 360, rnd() * 180 - 90]);
  const ids = new BigUint64Array(positions.length);
  const words = new Uint32Array(ids.buffer);
  positions.forEach(([ra, dec], k) => setObjectId(words, k, ra, dec));
  positions.forEach(([ra, dec], k) => assert.equal(ids[k], objectId(ra, dec), `${ra} ${dec}`));
});

test('every position falls in exactly one region, regions stay under maxObjects', async () => {
  const grid = new DensityGrid(0.25).floor(200);
  // A dense patch of 2e6 objects per square degree around (150, 2).
  for (let k = 0; k < grid.counts.length; k++) {
    const h = Math.floor(k / grid.bins);
    const j = k % grid.bins;
    const ra = (j + 0.5) * 0.25;
    const dec = -90 + h * 3.75 + 1.875;
    if (Math.abs(ra - 150) < 1 && Math.abs(dec - 1.875) < 1) grid.counts[k] += 2e6 * 0.25 * 3.75;
  }
  const sky = buildSkyTable(grid, { maxObjects: 500_000 });
  for (const r of sky.regions) {
    const parts = sky.node(r.parent).childE - sky.node(r.parent).childS;
    assert.ok(parts >= 2 && parts <= 8, `chunk of ${parts} parts`);
  }
  // Regions in the dense patch are narrow, elsewhere wide.
  const dense = sky.regionOf(150, 2);
  const sparse = sky.regionOf(300, 2);
  assert.ok(dense.rmax - dense.rmin <= 0.5, `dense region ${dense.rmin}..${dense.rmax}`);
  assert.ok(sparse.rmax - sparse.rmin > 5);
  const rand = mulberry32(7);
  for (let i = 0; i < 20000; i++) {
    const ra = (rand() / 2 ** 32) * 360;
    const dec = Math.asin(2 * (rand() / 2 ** 32) - 1) * 180 / Math.PI;
    const r = sky.regionOf(ra, dec);
    assert.ok(ra >= r.rmin && ra < r.rmax && dec >= r.dmin && dec <= r.dmax, `${ra},${dec} not in ${r.name}`);
    const box = sky.regionsInBox(ra - 0.001, ra + 0.001, dec - 0.001, dec + 0.001);
    assert.ok(box.some((b) => b.index === r.index));
  }
  // Edges: RA 0 and 360, the poles, band edges.
  for (const [ra, dec] of [[0, 0], [359.9999999, 0], [360, 0], [0, 90], [0, -90], [12, 7.5], [12, -7.5]]) {
    const r = sky.regionOf(ra, dec);
    assert.ok(r.table);
  }
  const boxWrap = sky.regionsInBox(359, 1, -1, 1);
  assert.ok(boxWrap.some((r) => r.rmin === 0) && boxWrap.some((r) => r.rmax === 360));
  await withTempDir(async (dir) => {
    const path = join(dir, 'SkyTable.fits');
    await writeSkyTable(path, sky);
    const back = await readSkyTable(path);
    assert.equal(back.sky.nodes.length, sky.nodes.length);
    assert.deepEqual(back.sky.regionOf(150.1, 2.2), sky.regionOf(150.1, 2.2));
    assert.equal(back.sky.maxObjects, 500_000);
    const pc = join(dir, 'Photcodes.dat');
    await writePhotcodes(pc, defaultPhotcodes());
    const codes = await readPhotcodes(pc);
    assert.equal(codes.byName('GPC1.g.XY33').code, 10133);
    assert.equal(codes.secSlot(10133), 0);
    assert.equal(codes.secSlot(codes.byName('GPC1.y.STK').code), 4);
    assert.equal(codes.matchClass(20002), 'stack');
    assert.throws(() => codes.byName('GPC1.x.XY33'), { code: 'dvo_unknown_photcode' });
    assert.equal(new PhotcodeTable(defaultPhotcodes()).byName('2MASS.J').type, 'REF');
  });
});
