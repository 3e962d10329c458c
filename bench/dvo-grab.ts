// grab (dvograbber) for one exposure of the medium-deep patch: every measure of its 60 chips
// by IMAGEID, through each region's image index. Peer in the same run: the same look-up by a
// plain scan of every region the exposure touches (the whole Measure table of each, then
// filtered by IMAGE_ID), as a reader without the index must do. Target: ≤ 1 s per exposure
// (the original took 40 minutes directly, 30 s from a MySQL pre-ingest). The same grab from a
// database of tile-compressed tables (built once, ~20 s) is timed too: it must inflate the
// tiles holding the image's rows; its peer is the same scan of the compressed regions.
import { FitsFile, fitsTable } from '../src/fits/index.ts';
import { EXTNAME, grabImage, grabImages, openDvo, readImages, regionPath } from '../src/dvo/index.ts';
import { check, report, target } from './lib.ts';
import { benchDvo, benchSurvey } from './dvo-lib.ts';

const survey = await benchSurvey();
const dir = await benchDvo(survey);
const md = survey.manifest.exposures.filter((e) => e.survey === 'MD').sort((a, b) => b.n_detections - a.n_detections)[0];
check(md !== undefined, 'the survey has a medium-deep exposure');

let t0 = performance.now();
let rows = 0;
let regionsRead = 0;
const grabs = await grabImages(dir, md.chips.map((c) => c.image_id));
const ours = (performance.now() - t0) / 1000;
md.chips.forEach((chip, k) => {
  check(grabs[k].rows.rowCount === chip.n_detections, `chip ${chip.class_id}: ${grabs[k].rows.rowCount} measures for ${chip.n_detections} detections`);
  rows += grabs[k].rows.rowCount;
  regionsRead += grabs[k].regionsRead;
});
// One chip alone, as a single look-up.
t0 = performance.now();
const one = await grabImage(dir, md.chips[30].image_id);
const single = (performance.now() - t0) / 1000;
check(one.rows.rowCount === md.chips[30].n_detections, 'single chip');

// The peer: every region near the exposure read whole, measures filtered by IMAGE_ID; the
// measures found, the regions and the seconds.
async function scan(dir: string): Promise<{ found: number; regions: number; seconds: number }> {
  const t0 = performance.now();
  const db = await openDvo(dir);
  const images = await readImages(dir);
  const wanted = new Set(md.chips.map((c) => images.store.u32('IMAGE_ID')[images.rowOfExtern(c.image_id)!]));
  let found = 0;
  const regions = db.sky.regionsNear(md.ra, md.dec, 1.75);
  for (const r of regions) {
    let cpm: FitsFile;
    try {
      cpm = await FitsFile.open(regionPath(dir, r, 'cpm'));
    } catch {
      continue;
    }
    const cpt = await FitsFile.open(regionPath(dir, r, 'cpt'));
    const objIds: bigint[] = [];
    for await (const b of fitsTable(cpt, EXTNAME.average).batches({ columns: ['EXT_ID'] })) objIds.push(...(b.columns[0].values as BigUint64Array));
    for await (const b of fitsTable(cpm, EXTNAME.measure).batches({ columns: ['IMAGE_ID', 'EXT_ID', 'AVE_REF'] })) {
      const [img, , ref] = b.columns.map((c) => c.values) as [Uint32Array, BigUint64Array, Uint32Array];
      for (let i = 0; i < b.rowCount; i++) if (wanted.has(img[i]) && objIds[ref[i]] !== undefined) found++;
    }
    await cpm.close();
    await cpt.close();
  }
  return { found, regions: regions.length, seconds: (performance.now() - t0) / 1000 };
}
const peer = await scan(dir);
check(peer.found === rows, `the scan found ${peer.found} measures, grab ${rows}`);
console.log(`grab: exposure ${md.exp_name} (${md.chips.length} chips, ${rows} measures, ${regionsRead} chip-region reads) in ${ours.toFixed(3)} s; one chip alone (${one.rows.rowCount} measures) ${single.toFixed(3)} s`);
report('grab of one medium-deep exposure', ours, `scan of the ${peer.regions} regions it touches`, peer.seconds);
target('≤ 1 s per exposure', ours <= 1);

// The same exposure from the compressed database: the same rows, best of three.
const packed = await benchDvo(survey, true);
let compressed = Infinity;
for (let run = 0; run < 3; run++) {
  t0 = performance.now();
  const g = await grabImages(packed, md.chips.map((c) => c.image_id));
  compressed = Math.min(compressed, (performance.now() - t0) / 1000);
  check(g.every((x, k) => x.rows.rowCount === grabs[k].rows.rowCount), 'the compressed database gives the same rows');
}
const packedPeer = await scan(packed);
check(packedPeer.found === rows, `the scan of the compressed database found ${packedPeer.found} measures, grab ${rows}`);
report('grab from the tile-compressed database (best of 3)', compressed, `scan of its ${packedPeer.regions} regions`, packedPeer.seconds);
target('≤ 1 s per exposure, compressed', compressed <= 1);
