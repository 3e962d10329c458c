import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { withTempDir } from '../common/index.ts';
import { FitsFile, fitsTable } from '../fits/index.ts';
import { collectTable } from '../table/index.ts';
import { addstar } from './addstar.ts';
import { openDvo } from './database.ts';
import { grabImage } from './grab.ts';
import { EXTNAME } from './layouts.ts';
import { regionPath } from './region-files.ts';
import { makeStars, writeSmf, type SmfTruth } from './test-support.ts';
import { verifyDvo } from './verify.ts';

const run = promisify(execFile);

/** Path → sha256 of every file of a database but its locks. */
async function snapshot(db: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) { if (e.name !== 'locks') await walk(p); continue; }
      out.set(relative(db, p), createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  };
  await walk(db);
  return out;
}

async function dvoFiles(db: string): Promise<string[]> {
  return [...(await snapshot(db)).keys()].map((p) => join(db, p));
}

test('addstar: objects from repeated exposures, IDs, re-ingest changes nothing, grab by IMAGEID', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(1500, { ra: 359.8, dec: 5, size: 0.5 }, 11, 3);
    const files: string[] = [];
    const truths: SmfTruth[] = [];
    for (let e = 1; e <= 3; e++) {
      const p = join(dir, `e${e}.smf`);
      truths.push(await writeSmf(p, stars, { expId: e, filter: e === 3 ? 'g.00000' : 'r.00000' }));
      files.push(p);
    }
    const db = join(dir, 'db');
    const result = await addstar(db, files, { create: { maxObjects: 300, floorDensity: 1 } });
    assert.deepEqual(result.files.map((f) => f.status), ['ingested', 'ingested', 'ingested']);
    assert.equal(result.detections, 4500);
    assert.equal(result.newObjects, 1500);
    assert.equal(result.matched, 3000);
    const report = await verifyDvo(db);
    assert.deepEqual(report.faults, []);
    assert.equal(report.objects, 1500);
    assert.equal(report.measures, 4500);
    // Grab: every detection of a chip, with its detection ID, objID and IPP_IDET; the same
    // star gives the same objID in every exposure.
    const chip = truths[0].chips[1];
    const g1 = await grabImage(db, chip.imageId);
    assert.equal(g1.rows.rowCount, chip.star.length);
    const [detId, objId, idet] = g1.rows.columns.map((c) => c.values);
    const objOfStar = new Map<number, bigint>();
    for (let i = 0; i < g1.rows.rowCount; i++) {
      assert.equal((idet as Uint32Array)[i], i);
      assert.equal((detId as BigUint64Array)[i], (BigInt(chip.imageId) << 32n) | BigInt(i));
      objOfStar.set(chip.star[i], (objId as BigUint64Array)[i]);
    }
    const g3 = await grabImage(db, truths[2].chips[1].imageId);
    const star3 = truths[2].chips[1].star;
    for (let i = 0; i < g3.rows.rowCount; i++) {
      const want = objOfStar.get(star3[i]);
      if (want !== undefined) assert.equal((g3.rows.columns[1].values as BigUint64Array)[i], want);
    }
    await assert.rejects(grabImage(db, 999), { code: 'dvo_no_such_image' });
    // Mean photometry: g from one exposure, r from two.
    const dvo = await openDvo(db);
    const region = dvo.sky.regionOf(stars.ra[0], stars.dec[0]);
    const cps = await FitsFile.open(regionPath(db, region, 'cps'));
    const sec = await collectTable(fitsTable(cps, EXTNAME.secfilt), { columns: ['NCODE'] });
    await cps.close();
    const ncode = sec.columns[0].values as Int16Array;
    assert.equal(ncode[0], 1); // g
    assert.equal(ncode[1], 2); // r
    // Re-ingest: nothing changes, byte for byte.
    const before = await snapshot(db);
    const again = await addstar(db, [files[1], files[0]]);
    assert.deepEqual(again.files.map((f) => f.status), ['unchanged', 'unchanged']);
    assert.deepEqual(await snapshot(db), before);
  });
});

test('addstar: bad catalogues are rejected with clear errors and leave the database unchanged', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(400, { ra: 120, dec: -30, size: 0.3 }, 5, 3);
    const db = join(dir, 'db');
    const good = join(dir, 'good.smf');
    await writeSmf(good, stars, { expId: 10 });
    await addstar(db, [good], { create: { maxObjects: 1000, floorDensity: 1 } });
    const before = await snapshot(db);
    const truncated = join(dir, 'truncated.smf');
    await writeSmf(truncated, stars, { expId: 11 });
    await truncate(truncated, (await stat(truncated)).size - 5000);
    const nan = join(dir, 'nan.smf');
    await writeSmf(nan, stars, { expId: 12, nanRow: 3 });
    const filter = join(dir, 'filter.smf');
    await writeSmf(filter, stars, { expId: 13, filter: 'x.00000' });
    const noId = join(dir, 'noid.smf');
    await writeSmf(noId, stars, { expId: 14, noImageId: true });
    // The same exposure as good.smf under other IMAGEIDs; and another exposure reusing good's IMAGEIDs.
    const renamed = join(dir, 'renamed.smf');
    await writeSmf(renamed, stars, { expId: 10, imageIds: [5001, 5002] });
    const clash = join(dir, 'clash.smf');
    await writeSmf(clash, stars, { expId: 15, imageIds: [1033, 1034] });
    const empty = join(dir, 'empty.smf');
    await writeFile(empty, '');
    // Cut at the boundary of its last HDU: a whole FITS file, one chip table short of NEXTEND.
    const short = join(dir, 'short.smf');
    await writeSmf(short, stars, { expId: 16 });
    const whole = await FitsFile.open(short);
    const last = whole.hdus[whole.hdus.length - 1]!;
    await whole.close();
    await truncate(short, last.headerStart);
    const r = await addstar(db, [truncated, nan, filter, noId, renamed, clash, empty, short, join(dir, 'gone.smf')]);
    assert.deepEqual(r.files.map((f) => [f.status, f.error?.code]), [
      ['failed', 'dvo_bad_catalogue'], ['failed', 'dvo_bad_coordinates'], ['failed', 'dvo_unknown_photcode'],
      ['failed', 'dvo_bad_catalogue'], ['failed', 'dvo_image_conflict'], ['failed', 'dvo_image_conflict'],
      ['failed', 'dvo_bad_catalogue'], ['failed', 'dvo_bad_catalogue'], ['failed', 'dvo_no_catalogue'],
    ]);
    assert.match(r.files[6].error!.message, /empty\.smf.*not a FITS file: only 0 bytes/);
    assert.match(r.files[7].error!.message, /short\.smf: the primary header says NEXTEND = 4 extensions, but the file holds 3; it was cut short/);
    assert.match(r.files[0].error!.message, /truncated\.smf/);
    assert.match(r.files[1].error!.message, /XY33\.psf row 4/);
    assert.match(r.files[4].error!.message, /already ingested under IMAGEID 1033/);
    assert.match(r.files[5].error!.message, /IMAGEID 1033 .* already used/);
    assert.deepEqual(await snapshot(db), before);
  });
});

test('every DVO file passes fitsverify, compressed ones also after funpack', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(600, { ra: 45, dec: 60, size: 0.4 }, 3, 3);
    const files = [join(dir, 'a.smf'), join(dir, 'b.smf')];
    await writeSmf(files[0], stars, { expId: 1 });
    await writeSmf(files[1], stars, { expId: 2 });
    for (const compress of [false, true]) {
      const db = join(dir, compress ? 'packed' : 'plain');
      await addstar(db, files, { create: { maxObjects: 200, compress, floorDensity: 1 } });
      const all = await dvoFiles(db);
      assert.ok(all.some((f) => f.endsWith('.cpm')));
      for (const f of all) {
        const { stdout } = await run('fitsverify', ['-q', f]).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
        assert.match(stdout, /verification OK/, `${f}: ${stdout}`);
        if (compress && /\.cp[tsm]$/.test(f)) {
          const h = await FitsFile.open(f);
          assert.equal(h.hdus[1].kind, 'compressed-table');
          await h.close();
          const out = join(dir, 'unpacked.fits');
          await rm(out, { force: true });
          await run('funpack', ['-O', out, f]);
          const { stdout: o2, stderr: e2 } = await run('fitsverify', [out]).catch((e: { stdout: string; stderr: string }) => e);
          const s2 = `${o2}\n${e2}`;
          // funpack sometimes leaves one spare block after the table: cfitsio's own fpack -table
          // output of the same table unpacks the same way, so that one error is funpack's.
          const errors = s2.split('\n').filter((l) => /Error:/.test(l));
          const own = errors.every((l) => /extra byte\(s\) after last HDU/.test(l));
          assert.ok(/ 0 error\(s\)/.test(s2) || (/ 1 error\(s\)/.test(s2) && errors.length === 1 && own), `${f} unpacked: ${s2}`);
        }
      }
      assert.deepEqual((await verifyDvo(db, { fits: true })).faults, []);
    }
    // Both databases hold the same measures, and the same objects and per-filter means (the
    // compressed SecFilt table is made another way from the rows in memory).
    const g1 = await grabImage(join(dir, 'plain'), 233);
    const g2 = await grabImage(join(dir, 'packed'), 233);
    assert.deepEqual(g1.rows, g2.rows);
    for (const f of (await dvoFiles(join(dir, 'plain'))).filter((p) => /\.cp[ts]$/.test(p))) {
      const tables = await Promise.all([f, f.replace(`${join(dir, 'plain')}`, join(dir, 'packed'))].map(async (p) => {
        const h = await FitsFile.open(p);
        try {
          return await collectTable(fitsTable(h, 1));
        } finally {
          await h.close();
        }
      }));
      assert.ok(tables[0].rowCount > 0);
      assert.deepEqual(tables[1], tables[0], f);
    }
  });
});

test('addstar removes the temporary image table a killed writer left, once it holds the image lock', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(100, { ra: 40, dec: 5, size: 0.1 }, 9, 3);
    const [a, b] = [join(dir, 'a.smf'), join(dir, 'b.smf')];
    await writeSmf(a, stars, { expId: 1 });
    await writeSmf(b, stars, { expId: 2 });
    const db = join(dir, 'db');
    await addstar(db, [a], { create: { floorDensity: 1 } });
    await writeFile(join(db, '.Images.dat.0badcafe.tmp'), 'half an image table');
    await addstar(db, [b]);
    assert.deepEqual((await readdir(db)).filter((n) => n.endsWith('.tmp')), []);
  });
});
