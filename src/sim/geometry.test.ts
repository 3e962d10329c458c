import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHIPS, CHIP_NX, CHIP_NY, FOV_RADIUS, FPA_CENTER, DEG_PER_PIXEL, chipWcs, locateOnChip } from './focal-plane.ts';
import { pixelToSky, project, separation, skyToPixel } from './wcs.ts';
import { TESS_ID, parseSkycellName, projectionCell, skycell, skycellAt, skycellName, SKYCELL_PIXELS } from './tessellation.ts';
import { Random, hashSeed } from './random.ts';
import { generateTile, objectId, splitObjectId, tileAt, tileBounds, tilesInCircle, sinGalacticLatitude, FILTERS, MAX_R_MINUS } from './sky-model.ts';
import { CMF_PS1_SV2, CMF_PS1_V5 } from './cmf-layout.ts';
import { stackTiles } from './cmf-writer.ts';
import { expiringTiles } from './survey.ts';
import { exposureTiles } from './footprint.ts';
import { resolveSurveyOptions } from './survey-options.ts';
import { wcsCards } from './headers.ts';
import { Header } from '../fits/index.ts';
import { runPython } from '../common/index.ts';
import { planSurvey } from './survey-plan.ts';

test('GPC1: 60 OTAs XY01..XY76 without the corners, 4846 x 4868 pixels', () => {
  assert.equal(CHIPS.length, 60);
  const names = CHIPS.map((c) => c.name);
  for (const corner of ['XY00', 'XY07', 'XY70', 'XY77']) assert.ok(!names.includes(corner));
  assert.equal(names[0], 'XY01');
  assert.equal(names[59], 'XY76');
  assert.deepEqual([CHIP_NX, CHIP_NY], [4846, 4868]);
  assert.ok(FOV_RADIUS > 1.7 && FOV_RADIUS < 1.9, String(FOV_RADIUS));
});

test('a focal-plane position lands on the right chip pixel, gaps land nowhere, and the chip WCS agrees', () => {
  const out = new Float64Array(3);
  const rng = new Random(5);
  let onChips = 0;
  for (let k = 0; k < 20000; k++) {
    const X = FPA_CENTER.x + (rng.uniform() - 0.5) * 42000;
    const Y = FPA_CENTER.y + (rng.uniform() - 0.5) * 42000;
    const c = locateOnChip(X, Y, out);
    if (c < 0) continue;
    onChips++;
    const chip = CHIPS[c];
    assert.ok(out[1] >= 0.5 && out[1] < CHIP_NX + 0.5 && out[2] >= 0.5 && out[2] < CHIP_NY + 0.5);
    // The pixel's sky position through the chip WCS is the focal-plane position's.
    const w = chipWcs(chip, 150, 2);
    const sky = pixelToSky(w, out[1], out[2]);
    const p = project(sky.ra, sky.dec, 150, 2)!;
    assert.ok(Math.abs(FPA_CENTER.x - p.xi / DEG_PER_PIXEL - X) < 1e-6 && Math.abs(FPA_CENTER.y + p.eta / DEG_PER_PIXEL - Y) < 1e-6);
  }
  // 60 chips of 4846 x 4868 pixels cover about 80% of a 42000-pixel square.
  assert.ok(onChips > 14000 && onChips < 17500, String(onChips));
  assert.equal(locateOnChip(FPA_CENTER.x, FPA_CENTER.y, out), -1, 'the boresight falls in the central gap');
});

test('locating a position by grid cell gives the chip a scan of every chip extent gives, at chip edges too', () => {
  const bounds = CHIPS.map((c) => {
    const xlo = Math.min(c.x0 - 0.5 * c.xParity, c.x0 + (CHIP_NX - 0.5) * c.xParity);
    const ylo = Math.min(c.y0 - 0.5 * c.yParity, c.y0 + (CHIP_NY - 0.5) * c.yParity);
    return { xlo, ylo };
  });
  const scan = (X: number, Y: number): number =>
    bounds.findIndex((b) => X >= b.xlo && X < b.xlo + CHIP_NX && Y >= b.ylo && Y < b.ylo + CHIP_NY);
  const xs = [-1, 0, 1e6];
  const ys = [-1, 0, 1e6];
  for (const b of bounds) {
    for (const d of [-0.5, -1e-9, 0, 1e-9, 0.5]) {
      xs.push(b.xlo + d, b.xlo + CHIP_NX + d);
      ys.push(b.ylo + d, b.ylo + CHIP_NY + d);
    }
  }
  const rng = new Random(9);
  for (let k = 0; k < 3000; k++) {
    xs.push(FPA_CENTER.x + (rng.uniform() - 0.5) * 42000);
    ys.push(FPA_CENTER.y + (rng.uniform() - 0.5) * 42000);
  }
  const out = new Float64Array(3);
  let on = 0;
  for (let k = 0; k < 200000; k++) {
    const X = xs[k % xs.length];
    const Y = ys[(k * 7919) % ys.length];
    const want = scan(X, Y);
    assert.equal(locateOnChip(X, Y, out), want, `(${X}, ${Y})`);
    if (want >= 0) {
      on++;
      const c = CHIPS[want];
      assert.deepEqual([out[1], out[2]], [(X - c.x0) * c.xParity + 1, (Y - c.y0) * c.yParity + 1]);
    }
  }
  assert.ok(on > 1000, String(on));
});

test('tangent-plane projection round trips, near the poles and across RA 0', () => {
  for (const [ra0, dec0] of [[0.1, 0], [359.9, -45], [10, 89.5], [200, -89]]) {
    const w = { crval1: ra0, crval2: dec0, crpix1: 100, crpix2: -50, cd11: -7e-5, cd12: 1e-6, cd21: 2e-6, cd22: 7e-5 };
    for (const [x, y] of [[1, 1], [5000, 3000], [-2000, 6000]]) {
      const s = pixelToSky(w, x, y);
      const p = skyToPixel(w, s.ra, s.dec)!;
      assert.ok(Math.abs(p.x - x) < 1e-6 && Math.abs(p.y - y) < 1e-6, `${ra0},${dec0} ${x},${y}`);
    }
  }
  assert.ok(Math.abs(separation(359.99, 0, 0.01, 0) - 0.02) < 1e-9);
});

test('RINGS.V3-like skycells: names parse, every position has a skycell that covers it', () => {
  assert.equal(TESS_ID, 'RINGS.V3');
  assert.deepEqual(parseSkycellName('skycell.1133.081'), { projectionId: 1133, skycellId: 81 });
  assert.equal(skycellName(1133, 81), 'skycell.1133.081');
  assert.equal(parseSkycellName('skycell.x.1'), null);
  assert.equal(projectionCell(1).dec, -90);
  const rng = new Random(9);
  for (let k = 0; k < 300; k++) {
    const ra = 360 * rng.uniform();
    const dec = -89 + 178 * rng.uniform();
    const sc = skycellAt(ra, dec);
    const p = skyToPixel(sc.wcs, ra, dec)!;
    assert.ok(p.x > -0.1 * SKYCELL_PIXELS && p.x < 1.1 * SKYCELL_PIXELS && p.y > -0.1 * SKYCELL_PIXELS && p.y < 1.1 * SKYCELL_PIXELS, `${ra} ${dec} -> ${sc.name} ${p.x} ${p.y}`);
    assert.deepEqual(skycell(sc.projectionId, sc.skycellId).wcs, sc.wcs);
  }
});

test('sky tiles: the same seed gives the same objects; IDs decode; tiles cover a circle', () => {
  const opts = { seed: 11, density: 0.3, mdPatch: { ra: 0, dec: 0, radius: 0 } };
  const id = tileAt(153.2, 2.1);
  const a = generateTile(opts, id, [22, 22.5]);
  const b = generateTile(opts, id, [22, 22.5]);
  assert.deepEqual([...a.ra], [...b.ra]);
  assert.deepEqual([...a.mag], [...b.mag]);
  const c = generateTile({ ...opts, seed: 12 }, id, [22, 22.5]);
  assert.notDeepEqual([...a.ra.slice(0, 10)], [...c.ra.slice(0, 10)]);
  // A deeper tile holds the shallower one's objects (same IDs, same values).
  const deep = generateTile(opts, id, [23, 23.5]);
  const byId = new Map<number, number>();
  for (let k = 0; k < deep.count; k++) byId.set(objectId(deep, k), k);
  for (let k = 0; k < a.count; k++) {
    const j = byId.get(objectId(a, k));
    assert.ok(j !== undefined);
    assert.equal(deep.ra[j], a.ra[k]);
    assert.equal(deep.mag[j * 6 + 1], a.mag[k * 6 + 1]);
  }
  const b0 = tileBounds(id);
  for (let k = 0; k < a.count; k++) {
    assert.ok(a.ra[k] >= b0.raLo && a.ra[k] <= b0.raHi && a.dec[k] >= b0.decLo && a.dec[k] <= b0.decHi);
    assert.ok(Math.abs(Math.sin((a.dec[k] * Math.PI) / 180) - a.sinDec[k]) < 1e-14);
    assert.ok(Math.abs(Math.sin((a.ra[k] * Math.PI) / 180) - a.sinRa[k]) < 1e-14);
    assert.equal(splitObjectId(objectId(a, k)).tile, id);
    for (let f = 0; f < FILTERS.length; f++) assert.ok(a.mag[k * 6 + 1] - a.mag[k * 6 + f] <= MAX_R_MINUS[a.type[k]][f] + 1e-5);
  }
  const tiles = tilesInCircle(153, 2, 1.8);
  const rng = new Random(2);
  for (let k = 0; k < 500; k++) {
    const r = 1.8 * Math.sqrt(rng.uniform());
    const t = 2 * Math.PI * rng.uniform();
    const dec = 2 + r * Math.sin(t);
    const ra = 153 + (r * Math.cos(t)) / Math.cos((dec * Math.PI) / 180);
    assert.ok(tiles.includes(tileAt(ra, dec)));
  }
});

test('star counts rise towards the galactic plane; magnitudes follow steeper counts for galaxies', () => {
  const opts = { seed: 1, density: 1, mdPatch: { ra: 0, dec: 0, radius: 0 } };
  const count = (ra: number, dec: number, type: number, lim: number) => {
    let n = 0;
    for (const dd of [0, 0.25, 0.5]) {
      const t = generateTile(opts, tileAt(ra, dec + dd), [lim, lim]);
      for (let k = 0; k < t.count; k++) if (t.type[k] === type && t.mag[k * 6 + 1] < lim) n++;
    }
    return n;
  };
  // (190, 25): near the north galactic pole; (100, 25): about 14° from the plane.
  assert.ok(Math.abs(sinGalacticLatitude(192.86, 27.13) - 1) < 1e-6);
  assert.ok(count(100, 25, 0, 21) > 2.5 * count(190, 25, 0, 21));
  // log N rises by ~0.3 per magnitude for stars, 0.32-0.45 for galaxies.
  const slope = (type: number) => Math.log10(count(190, 25, type, 22) / count(190, 25, type, 20)) / 2;
  assert.ok(Math.abs(slope(0) - 0.3) < 0.06, String(slope(0)));
  assert.ok(slope(1) > slope(0) + 0.03, String(slope(1)));
});

test('random numbers: seeded, uniform and normal with the right moments', () => {
  const a = new Random(hashSeed(1, 2, 3));
  const b = new Random(hashSeed(1, 2, 3));
  for (let k = 0; k < 100; k++) assert.equal(a.next32(), b.next32());
  assert.notEqual(hashSeed(1, 2, 3), hashSeed(1, 2, 4));
  const r = new Random(42);
  let s = 0, s2 = 0, c = 0, c2 = 0, u = 0;
  const n = 200000;
  for (let k = 0; k < n; k++) {
    const z = r.normal();
    s += z; s2 += z * z;
    const q = r.coarseNormal();
    c += q; c2 += q * q;
    u += r.uniform();
  }
  assert.ok(Math.abs(s / n) < 0.01 && Math.abs(s2 / n - 1) < 0.015);
  assert.ok(Math.abs(c / n) < 0.01 && Math.abs(c2 / n - 1) < 0.03);
  assert.ok(Math.abs(u / n - 0.5) < 0.005);
  let p = 0;
  for (let k = 0; k < 20000; k++) p += r.poisson(3.5);
  assert.ok(Math.abs(p / 20000 - 3.5) < 0.05);
});

test('the detection layouts have the original row sizes and column order', () => {
  assert.equal(CMF_PS1_V5.rowBytes, 232);
  assert.equal(CMF_PS1_SV2.rowBytes, 208);
  assert.deepEqual(CMF_PS1_V5.fields.slice(17, 22).map((f) => f.name), ['CAL_PSF_MAG', 'CAL_PSF_MAG_SIG', 'RA_PSF', 'DEC_PSF', 'PEAK_FLUX_AS_MAG']);
  assert.deepEqual(CMF_PS1_V5.fields.slice(-4).map((f) => [f.name, f.type]), [['FLAGS', 'u32'], ['FLAGS2', 'u32'], ['N_FRAMES', 'u16'], ['PADDING', 'i16']]);
  assert.equal(CMF_PS1_V5.offset('RA_PSF'), 76);
  assert.equal(CMF_PS1_SV2.offset('PADDING2'), 200);
});

test('tiles are dropped before the first exposure after their last reader, never while an exposure or stack still reads them', () => {
  const config = resolveSurveyOptions({ out: '/nowhere', exposures: 12, stacks: 3, density: 1, seed: 2 });
  const plan = planSurvey(config);
  const order = [...plan.exposures].reverse();
  const expiring = expiringTiles(order, plan.stacks);
  assert.equal(expiring.length, order.length);
  const stackTileIds = new Set(plan.stacks.flatMap((s) => stackTiles(s)));
  const seen = new Set<number>();
  let dropped = 0;
  for (let p = 0; p < order.length; p++) {
    for (const id of expiring[p]) {
      assert.ok(!seen.has(id), `tile ${id} dropped twice`);
      seen.add(id);
      dropped++;
      assert.ok(!stackTileIds.has(id), `tile ${id} is read by a stack`);
      assert.ok(exposureTiles(order[p - 1].ra, order[p - 1].dec).includes(id), `tile ${id} was not read just before`);
      for (let q = p; q < order.length; q++) {
        assert.ok(!exposureTiles(order[q].ra, order[q].dec).includes(id), `tile ${id} is still read by exposure ${q}`);
      }
    }
  }
  assert.ok(dropped > 50, String(dropped));
});

test('an exposure reads every tile holding a point that lands on one of its chips, and leaves out tiles off the chips', () => {
  const out = new Float64Array(3);
  const rng = new Random(hashSeed(11, 3));
  for (const [ra0, dec0] of [[150, 2], [0.3, -20], [359.5, 45], [210, 72], [35, -84]]) {
    const circle = tilesInCircle(ra0, dec0, FOV_RADIUS);
    const kept = new Set(exposureTiles(ra0, dec0));
    for (const id of kept) assert.ok(circle.includes(id), `tile ${id} is outside the circle`);
    const needed = new Set<number>();
    for (let k = 0; k < 200000; k++) {
      const dec = dec0 + (rng.uniform() - 0.5) * 2 * FOV_RADIUS;
      const ra = (ra0 + ((rng.uniform() - 0.5) * 2 * FOV_RADIUS) / Math.cos((dec * Math.PI) / 180) + 360) % 360;
      const p = project(ra, dec, ra0, dec0);
      if (!p) continue;
      if (locateOnChip(FPA_CENTER.x - p.xi / DEG_PER_PIXEL, FPA_CENTER.y + p.eta / DEG_PER_PIXEL, out) < 0) continue;
      const id = tileAt(ra, dec);
      needed.add(id);
      assert.ok(kept.has(id), `(${ra}, ${dec}) lands on a chip of the exposure at (${ra0}, ${dec0}) but its tile ${id} is not read`);
    }
    // The corners of the square array and the ring around it hold no chip: a good part of
    // the circle's tiles is left out, and few tiles are kept that no sampled point needed
    // (near the pole, tiles wider than 2° are all kept).
    if (Math.abs(dec0) > 80) continue;
    assert.ok(kept.size < 0.8 * circle.length, `${kept.size} of ${circle.length} tiles kept at (${ra0}, ${dec0})`);
    assert.ok(kept.size <= needed.size * 1.1 + 4, `${kept.size} tiles kept, ${needed.size} needed at (${ra0}, ${dec0})`);
  }
});

test('the header WCS read by astropy puts sky positions where wcs.ts does, at the north pole too (LONPOLE)', async () => {
  const cells = [skycellAt(152.3, 2.1), skycellAt(10, 89.95), skycellAt(200, -89.95), chipWcs(CHIPS[5]!, 150, 89.99)];
  const wcsList = cells.map((c) => ('wcs' in c ? c.wcs : c));
  assert.ok(wcsList.some((w) => w.crval2 === 90), 'a tangent point on the pole is among the cases');
  const points = wcsList.map((w) => {
    const pts: [number, number][] = [];
    for (const [x, y] of [[100, 200], [1500, 900], [3000, 3000]]) {
      const s = pixelToSky(w, x, y);
      pts.push([s.ra, s.dec]);
    }
    return pts;
  });
  const headers = wcsList.map((w) => wcsCards(new Header(), w).cards.map((c) => [c.keyword, c.value]));
  const script = `
import json, sys
from astropy.io import fits
from astropy.wcs import WCS
cases = json.loads(sys.argv[1])
out = []
for cards, pts in cases:
    h = fits.Header()
    for k, v in cards:
        h[k] = v
    w = WCS(h)
    out.append([list(map(float, w.all_world2pix([p], 1)[0])) for p in pts])
print(json.dumps(out))
`;
  const pix = JSON.parse(await runPython(script, [JSON.stringify(headers.map((h, i) => [h, points[i]]))])) as number[][][];
  wcsList.forEach((w, i) => points[i]!.forEach(([ra, dec], k) => {
    const ours = skyToPixel(w, ra, dec)!;
    assert.ok(Math.hypot(pix[i]![k]![0]! - ours.x, pix[i]![k]![1]! - ours.y) < 1e-3, `case ${i} point ${k}: astropy ${pix[i]![k]} ours ${ours.x},${ours.y}`);
  }));
});
