// The box pre-ingest of ippToPsps: the regions overlapping a 1° box on the medium-deep patch
// exported into a scratch SQLite database, then the neighbouring box (the next degree in RA:
// the regions across the boundary are shared and kept), then every measure of one exposure looked up in
// the scratch database. Peer in the same run: the plain approach, every region of the database
// imported into a fresh SQLite database with the generic multi-row insert, for each box
// (it keeps nothing between boxes).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FitsFile, fitsTable } from '../src/fits/index.ts';
import { insertRows, openDatabase, type SqlValue } from '../src/db/index.ts';
import { EXTNAME, exportBox, grabFromScratch, openDvo, openScratch, regionPath } from '../src/dvo/index.ts';
import { BENCH_DIR, check, report } from './lib.ts';
import { benchDvo, benchSurvey } from './dvo-lib.ts';

const survey = await benchSurvey();
const dir = await benchDvo(survey);
const p = survey.manifest.sky.md_patch;
const boxA = { raMin: p.ra - 0.5, raMax: p.ra + 0.5, decMin: p.dec - 0.5, decMax: p.dec + 0.5 };
const boxB = { ...boxA, raMin: p.ra + 0.5, raMax: p.ra + 1.5 };
const scratch = join(BENCH_DIR, 'dvo-scratch.db');
for (const f of [scratch, `${scratch}-wal`, `${scratch}-shm`]) await rm(f, { force: true });
const url = `sqlite:${scratch}`;

let t0 = performance.now();
const a = await exportBox(dir, boxA, url);
const firstBox = (performance.now() - t0) / 1000;
t0 = performance.now();
const b = await exportBox(dir, boxB, url);
const nextBox = (performance.now() - t0) / 1000;
check(b.kept > 0 && b.imported > 0, `the neighbouring box keeps some regions (${b.kept}) and imports others (${b.imported})`);

// One exposure's measures from the scratch database.
const md = survey.manifest.exposures.find((e) => e.survey === 'MD')!;
const db = await openScratch(url);
t0 = performance.now();
let rows = 0;
for (const chip of md.chips) rows += (await grabFromScratch(db, chip.image_id)).length;
const query = (performance.now() - t0) / 1000;
await db.close();

// The peer: every region into a fresh database, rows as arrays, for each box.
async function plainImport(): Promise<number> {
  const path = join(BENCH_DIR, 'dvo-plain.db');
  for (const f of [path, `${path}-wal`, `${path}-shm`]) await rm(f, { force: true });
  const start = performance.now();
  const q = await openDatabase(`sqlite:${path}`);
  await q.exec('CREATE TABLE objects (region INTEGER, obj_id INTEGER, ra REAL, dec REAL); CREATE TABLE measures (region INTEGER, det_id INTEGER, ave_ref INTEGER, image_id INTEGER, ra REAL, dec REAL, mag REAL); CREATE INDEX m_image ON measures (image_id);');
  const dvo = await openDvo(dir);
  let n = 0;
  for (const r of dvo.sky.regions) {
    let cpt: FitsFile;
    try {
      cpt = await FitsFile.open(regionPath(dir, r, 'cpt'));
    } catch {
      continue;
    }
    const cpm = await FitsFile.open(regionPath(dir, r, 'cpm'));
    await q.transaction(async (tx) => {
      for await (const bt of fitsTable(cpt, EXTNAME.average).batches({ columns: ['EXT_ID', 'RA', 'DEC'] })) {
        const [id, ra, dec] = bt.columns.map((c) => c.values);
        const list: SqlValue[][] = [];
        for (let i = 0; i < bt.rowCount; i++) list.push([r.index, BigInt.asIntN(64, (id as BigUint64Array)[i]), (ra as Float64Array)[i], (dec as Float64Array)[i]]);
        await insertRows(tx, 'objects', ['region', 'obj_id', 'ra', 'dec'], list);
      }
      for await (const bt of fitsTable(cpm, EXTNAME.measure).batches({ columns: ['EXT_ID', 'AVE_REF', 'IMAGE_ID', 'RA', 'DEC', 'MAG'] })) {
        const [id, ref, img, ra, dec, mag] = bt.columns.map((c) => c.values);
        const list: SqlValue[][] = [];
        for (let i = 0; i < bt.rowCount; i++) {
          list.push([r.index, BigInt.asIntN(64, (id as BigUint64Array)[i]), (ref as Uint32Array)[i], (img as Uint32Array)[i], (ra as Float64Array)[i], (dec as Float64Array)[i], (mag as Float32Array)[i]]);
        }
        n += list.length;
        await insertRows(tx, 'measures', ['region', 'det_id', 'ave_ref', 'image_id', 'ra', 'dec', 'mag'], list);
      }
    });
    await cpt.close();
    await cpm.close();
  }
  await q.close();
  check(n > 0, 'the plain import loaded measures');
  return (performance.now() - start) / 1000;
}
const peerA = await plainImport();
const peerB = await plainImport();
console.log(`export-box: first box ${a.regions} regions (${a.objects} objects, ${a.measures} measures) in ${firstBox.toFixed(2)} s; neighbouring box: ${b.kept} kept, ${b.imported} imported, ${b.dropped} dropped in ${nextBox.toFixed(2)} s`);
report('pre-ingest of the first box', firstBox, 'plain import of every region', peerA);
report('pre-ingest of the neighbouring box', nextBox, 'plain import of every region', peerB);
console.log(`  one medium-deep exposure (${md.chips.length} chips, ${rows} measures) from the scratch database: ${query.toFixed(3)} s`);
