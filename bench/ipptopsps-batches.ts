// ippToPsps batches. A full 60-OTA exposure (the largest of the DVO benchmarks' survey, a
// medium-deep one): smf + DVO look-up → P2 batch written (FITS + manifest), then published
// to a datastore server on loopback, as the loader does; detections per CPU-second of this
// process, with time per step. Peer in the same run: the original design's approach on the
// same input — the smf's needed columns imported into scratch SQL tables (SQLite, the embedded
// engine, multi-row INSERTs in one transaction), the DVO IDs of the exposure imported beside
// them, the archive-shaped Detection table filled by one INSERT ... SELECT doing the same
// conversions (duplicates discarded by its primary key), NULLs replaced by the defaults
// (one UPDATE per column), ObjectThin stubs by INSERT ... SELECT DISTINCT, then both tables
// exported to FITS through the same writer. Then ST and OB batch rates.
//
//   node bench/ipptopsps-batches.ts [runs=3]
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { DatastoreClient } from '../src/datastore/index.ts';
import { listRegions } from '../src/dvo/index.ts';
import { FitsFile, writeFits } from '../src/fits/index.ts';
import { openGpc1 } from '../src/gpc1/index.ts';
import { buildObBatch, buildP2Batch, buildStBatch, perImageLookup, type BatchContext } from '../src/ipptopsps/batch/index.ts';
import { P2_SOURCE_COLUMNS } from '../src/ipptopsps/batch/index.ts';
import { collectTable, columnInfo, memoryTable, type ColumnInfo } from '../src/table/index.ts';
import { readTableSchemas } from '../src/votable/index.ts';
import { PSPS_SCHEMA_DIR } from '../src/common/index.ts';
import { recordSurveyInGpc1 } from '../src/sim/index.ts';
import { benchDvo, benchSurvey } from './dvo-lib.ts';
import { startDatastore } from './datastore-lib.ts';
import { BENCH_DIR, check, target } from './lib.ts';

const runs = Number(process.argv[2] ?? 3);
const out = join(BENCH_DIR, 'ipptopsps-batches');
await rm(out, { recursive: true, force: true });
const survey = await benchSurvey();
const dvo = await benchDvo(survey);
const exp = survey.manifest.exposures.slice().sort((a, b) => b.n_detections - a.n_detections)[0];
check(exp.chips.length === 60, 'a full 60-OTA exposure');
const smf = join(survey.dir, exp.smf);
let seq = 0;
const ctx = (): BatchContext => ({ name: `B${String(++seq).padStart(8, '0')}`, config: 'bench', product: 'PSPS_bench', outDir: out });
const cpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const fmt = (t: Record<string, number>): string => Object.entries(t).map(([k, v]) => `${k} ${(v / 1000).toFixed(3)}`).join(', ');

// ---- ours: P2 batch, then publish
const server = await startDatastore(join(out, 'datastore'));
let best = { cpu: Infinity, buildCpu: 0, wall: 0, timings: {} as Record<string, number>, publish: 0, bytes: 0, rows: 0 };
try {
  const ds = new DatastoreClient({ url: server.url });
  await ds.addProduct({ name: 'PSPS_bench', type: 'IPP-PSPS', description: 'ipptopsps batch benchmark' });
  for (let r = 0; r < runs; r++) {
    const c0 = cpu();
    const t0 = performance.now();
    const b = await buildP2Batch(ctx(), { smfPath: smf, camId: exp.exp_id, expId: exp.exp_id, dvoDir: dvo, lookup: perImageLookup(dvo) });
    const wall = (performance.now() - t0) / 1000;
    const buildCpu = cpu() - c0;
    const p0 = performance.now();
    const fitsMd5 = b.md5;
    await ds.publish('PSPS_bench', b.name, [{ path: b.fitsPath, md5: fitsMd5 }, { path: b.manifestPath }], { type: 'IPP-PSPS' });
    const publish = (performance.now() - p0) / 1000;
    const used = cpu() - c0;
    check(b.mainRows === exp.n_detections, `P2 rows ${b.mainRows} = smf detections ${exp.n_detections}`);
    if (used < best.cpu) best = { cpu: used, buildCpu, wall, timings: { ...b.timings! }, publish, bytes: b.bytes, rows: b.mainRows };
  }
} finally {
  await server.stop();
}
const oursRate = best.rows / best.cpu;
console.log(`P2 of ${exp.exp_name}: ${best.rows} detections, 60 chips, ${(best.bytes / 1e6).toFixed(1)} MB; best of ${runs}: build ${best.wall.toFixed(3)} s wall (${fmt(best.timings)} s), publish ${best.publish.toFixed(3)} s; ${best.cpu.toFixed(3)} CPU s in this process (build ${best.buildCpu.toFixed(3)} + publish client), build alone ${Math.round(best.rows / best.buildCpu).toLocaleString('en')} detections per CPU-second`);

// ---- the peer: scratch SQL tables, INSERT ... SELECT, export
async function peer(): Promise<{ cpu: number; wall: number; steps: Record<string, number>; rows: number; sum: number }> {
  const steps: Record<string, number> = {};
  const c0 = cpu();
  const t0 = performance.now();
  let t = performance.now();
  const step = (name: string): void => { steps[name] = (steps[name] ?? 0) + performance.now() - t; t = performance.now(); };
  const dbPath = join(out, 'peer-scratch.db');
  await rm(dbPath, { force: true });
  const db = new DatabaseSync(dbPath);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  const src = P2_SOURCE_COLUMNS.filter((c) => c !== 'IPP_IDET');
  db.exec(`CREATE TABLE smf_det (chip INTEGER, ipp_idet INTEGER, ${src.map((c) => `"${c}" REAL`).join(', ')})`);
  db.exec('CREATE TABLE smf_chip (chip INTEGER PRIMARY KEY, image_id INTEGER, ccd_id INTEGER, zpt REAL, exptime REAL, airmass REAL, mjd REAL, filter_id INTEGER)');
  db.exec('CREATE TABLE dvo_ids (image_id INTEGER, ipp_idet INTEGER, det_id INTEGER, obj_id INTEGER, PRIMARY KEY (image_id, ipp_idet))');
  // Import: the smf's needed columns (the original: STILTS into scratch tables), chip by chip.
  const file = await FitsFile.open(smf);
  const perStatement = Math.floor(30000 / (src.length + 2));
  const rowsSql = (n: number) => `INSERT INTO smf_det VALUES ${Array.from({ length: n }, () => `(${Array.from({ length: src.length + 2 }, () => '?').join(',')})`).join(',')}`;
  const full = db.prepare(rowsSql(perStatement));
  const chips: number[] = [];
  db.exec('BEGIN');
  let chipNo = 0;
  const imageIds: number[] = [];
  for (const h of file.hdus) {
    if (!/^XY\d\d\.psf$/.test(h.extname ?? '')) continue;
    const name = h.extname!.slice(0, 4);
    const head = file.find(`${name}.hdr`).header;
    const imageId = Number(head.get('IMAGEID'));
    imageIds.push(imageId);
    db.prepare('INSERT INTO smf_chip VALUES (?,?,?,?,?,?,?,?)').run(chipNo, imageId, 10 * Number(name[2]) + Number(name[3]),
      Number(head.get('ZPT_OBS')), Number(head.get('EXPTIME')), Number(head.get('AIRMASS')), Number(head.get('MJD-OBS')), Number(head.get('FILTERID')));
    const b = await collectTable(file.table(h.index), { columns: ['IPP_IDET', ...src] });
    const cols = b.columns.map((c) => c.values as ArrayLike<number>);
    const params: (number | null)[] = [];
    let inStatement = 0;
    for (let i = 0; i < b.rowCount; i++) {
      params.push(chipNo);
      for (let k = 0; k < cols.length; k++) { const v = cols[k][i]; params.push(Number.isFinite(v) ? v : null); }
      if (++inStatement === perStatement) { full.run(...params); params.length = 0; inStatement = 0; }
    }
    if (inStatement > 0) db.prepare(rowsSql(inStatement)).run(...params);
    chips.push(chipNo++);
  }
  await file.close();
  step('import');
  // DVO IDs of the exposure (the original: dvograbber's output loaded into the scratch db).
  const lookup = perImageLookup(dvo);
  const ids = await lookup.many!(imageIds);
  step('lookup');
  const idStmt = db.prepare(`INSERT INTO dvo_ids VALUES ${Array.from({ length: 5000 }, () => '(?,?,?,?)').join(',')}`);
  ids.forEach((g, k) => {
    const p: (number | bigint)[] = [];
    for (let i = 0; i < g.ippIdet.length; i++) {
      p.push(imageIds[k], g.ippIdet[i], g.detectId[i], g.objId[i]);
      if (p.length === 20000) { idStmt.run(...p); p.length = 0; }
    }
    if (p.length > 0) db.prepare(`INSERT INTO dvo_ids VALUES ${Array.from({ length: p.length / 4 }, () => '(?,?,?,?)').join(',')}`).run(...p);
  });
  db.exec('COMMIT');
  step('import');
  // Archive-shaped tables, converted by SQL.
  const [, , detS, objS] = await readTableSchemas(join(PSPS_SCHEMA_DIR, 'P2.xml'));
  const sqlType = (t: string) => (t === 'string' ? 'TEXT' : t.startsWith('float') ? 'REAL' : 'INTEGER');
  const lit = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : String(v));
  for (const s of [detS, objS]) {
    // Columns with a default get it from the table definition when the INSERT leaves them out.
    db.exec(`CREATE TABLE "${s.name}" (${s.columns.map((c) => `"${c.name}" ${sqlType(c.type)}${c.defaultValue !== undefined ? ` DEFAULT ${lit(c.defaultValue)}` : ''}`).join(', ')}, PRIMARY KEY (${s.primaryKey.map((k) => `"${k}"`).join(',')}))`);
  }
  const coalesce = (s: typeof detS, c: string, e: string): string => {
    const d = s.columns.find((x) => x.name === c)!.defaultValue;
    return d === undefined ? e : `coalesce(${e}, ${lit(d)})`;
  };
  const k = '(3631.0 * pow(10, -0.4 * c.zpt) / c.exptime)';
  const expr: Record<string, string> = {
    objID: 'i.obj_id', detectID: 'i.det_id', ippDetectID: 'd.ipp_idet', filterID: 'c.filter_id', surveyID: '2',
    imageID: `100 * ${exp.exp_id} + c.ccd_id`, obsTime: 'c.mjd + c.exptime / 2 / 86400',
    xPos: 'd.X_PSF', yPos: 'd.Y_PSF', xPosErr: 'd.X_PSF_SIG', yPosErr: 'd.Y_PSF_SIG', pltScale: 'd.PLTSCALE', posAngle: 'd.POSANGLE',
    ra: 'd.RA_PSF', dec: 'd.DEC_PSF', raErr: 'd.X_PSF_SIG * d.PLTSCALE', decErr: 'd.Y_PSF_SIG * d.PLTSCALE', extNSigma: 'd.EXT_NSIGMA',
    zp: 'c.zpt', expTime: 'c.exptime', airMass: 'c.airmass',
    psfFlux: `d.PSF_INST_FLUX * ${k}`, psfFluxErr: `d.PSF_INST_FLUX_SIG * ${k}`,
    psfMajorFWHM: 'd.PSF_FWHM_MAJ * d.PLTSCALE', psfMinorFWHM: 'd.PSF_FWHM_MIN * d.PLTSCALE', psfTheta: 'd.PSF_THETA', psfCore: 'd.PSF_CORE',
    psfQf: 'd.PSF_QF', psfQfPerfect: 'd.PSF_QF_PERFECT', psfChiSq: 'd.PSF_CHISQ',
    momentXX: 'd.MOMENTS_XX * d.PLTSCALE * d.PLTSCALE', momentXY: 'd.MOMENTS_XY * d.PLTSCALE * d.PLTSCALE', momentYY: 'd.MOMENTS_YY * d.PLTSCALE * d.PLTSCALE',
    momentR1: 'd.MOMENTS_R1 * d.PLTSCALE', momentRH: 'd.MOMENTS_RH * sqrt(d.PLTSCALE)',
    momentM3C: 'd.MOMENTS_M3C * pow(d.PLTSCALE, 3)', momentM3S: 'd.MOMENTS_M3S * pow(d.PLTSCALE, 3)',
    momentM4C: 'd.MOMENTS_M4C * pow(d.PLTSCALE, 4)', momentM4S: 'd.MOMENTS_M4S * pow(d.PLTSCALE, 4)',
    apFlux: `d.AP_FLUX * ${k}`, apFluxErr: `d.AP_FLUX_SIG * ${k}`, apRadius: 'd.AP_MAG_RADIUS * d.PLTSCALE',
    kronFlux: `d.KRON_FLUX * ${k}`, kronFluxErr: `d.KRON_FLUX_ERR * ${k}`,
    sky: `d.SKY * 3631.0 * pow(10, -0.4 * c.zpt) / (d.PLTSCALE * d.PLTSCALE)`, skyErr: `d.SKY_SIGMA * 3631.0 * pow(10, -0.4 * c.zpt) / (d.PLTSCALE * d.PLTSCALE)`,
    infoFlag: '(d.FLAGS & 0xffffffff) - ((d.FLAGS & 0x80000000) << 1)', infoFlag2: 'd.FLAGS2',
  };
  db.exec(`INSERT OR IGNORE INTO Detection (${Object.keys(expr).map((c) => `"${c}"`).join(', ')})
    SELECT ${Object.entries(expr).map(([c, e]) => coalesce(detS, c, e)).join(', ')} FROM smf_det d JOIN smf_chip c USING (chip) JOIN dvo_ids i ON i.image_id = c.image_id AND i.ipp_idet = d.ipp_idet`);
  db.exec('INSERT OR IGNORE INTO ObjectThin ("objID", "zoneID") SELECT DISTINCT "objID", "objID" / 10000000000000 FROM Detection');
  // Missing values got the archive's defaults in the same statements (coalesce, DEFAULT):
  // one pass, not the original's UPDATE per column afterwards.
  step('convert');
  // Export both tables to FITS (the original: STILTS from the scratch database).
  const tables = [detS, objS].map((s) => {
    const n = Number((db.prepare(`SELECT count(*) AS n FROM "${s.name}"`).get() as { n: number }).n);
    const stmt = db.prepare(`SELECT * FROM "${s.name}" ORDER BY ${s.primaryKey.map((x) => `"${x}"`).join(',')}`);
    stmt.setReadBigInts(true);
    stmt.setReturnArrays(true);
    const infos: ColumnInfo[] = s.columns.map((c) => columnInfo(c.name, c.type, { ...(c.width !== undefined ? { width: c.width } : {}) }));
    const columns = s.columns.map((c) => {
      if (c.type === 'int64') return { values: new BigInt64Array(n) };
      if (c.type === 'string') return { values: new Array<string>(n) };
      const Ctor = c.type === 'float64' ? Float64Array : c.type === 'float32' ? Float32Array : c.type === 'int32' ? Int32Array : c.type === 'int16' ? Int16Array : Uint8Array;
      return { values: new Ctor(n) };
    });
    const kinds = s.columns.map((c) => (c.type === 'int64' ? 0 : c.type === 'string' ? 1 : 2));
    let i = 0;
    for (const row of stmt.iterate() as Iterable<(bigint | number | string | null)[]>) {
      for (let k = 0; k < row.length; k++) {
        const v = row[k];
        if (kinds[k] === 0) (columns[k].values as BigInt64Array)[i] = v as bigint;
        else if (kinds[k] === 1) (columns[k].values as string[])[i] = String(v ?? '');
        else (columns[k].values as Float64Array)[i] = Number(v);
      }
      i++;
    }
    return { table: memoryTable(infos, [{ rowCount: n, columns }], { name: s.name }) };
  });
  step('export');
  await writeFits(join(out, 'peer.fits'), tables);
  step('export');
  const summed = db.prepare('SELECT count(*) AS n, sum("psfFlux") AS s FROM Detection').get() as { n: number; s: number };
  db.close();
  await rm(dbPath, { force: true });
  for (const sfx of ['-wal', '-shm']) await rm(dbPath + sfx, { force: true });
  return { cpu: cpu() - c0, wall: (performance.now() - t0) / 1000, steps, rows: Number(summed.n), sum: summed.s };
}
const p = await peer();
check(p.rows === best.rows, `the peer's Detection rows ${p.rows} = ours ${best.rows}`);
// The same conversion: the peer's psfFlux sum equals ours (float32 rounding aside).
const mine = await FitsFile.open(join(out, 'B00000001.fits'));
const flux = await collectTable(mine.table('Detection'), { columns: ['psfFlux'] });
await mine.close();
let oursSum = 0;
for (const v of flux.columns[0].values as Float32Array) oursSum += v;
check(Math.abs(oursSum - p.sum) / Math.abs(p.sum) < 1e-5, `psfFlux sums agree: ours ${oursSum}, peer ${p.sum}`);
const peerRate = p.rows / p.cpu;
console.log(`peer (SQLite scratch tables, INSERT ... SELECT, export): ${p.wall.toFixed(3)} s wall (${fmt(p.steps)} s), ${p.cpu.toFixed(3)} CPU s`);
console.log(`P2 detections per CPU-second: ours ${Math.round(oursRate).toLocaleString('en')}, peer ${Math.round(peerRate).toLocaleString('en')}, ratio ${(oursRate / peerRate).toFixed(1)}x ${oursRate >= peerRate ? 'faster' : 'slower'}`);
target('≥ 1,000,000 detections per CPU-second (P2, build + publish)', oursRate >= 1e6);

// ---- the floor under the target: the steps whose cost is set by bytes alone, each done by
// native code (OpenSSL's MD5, memcpy, the kernel's read and write), on this run's own batch
// and smf. A published P2 batch must at least read the smf, produce the batch's bytes (the
// archive's layout fixes them: Detection rows and their ObjectThin stubs), write them once
// and take their md5 for the datastore. If these alone exceed the time 1 M/s allows, no
// build can reach the target on this machine. Best of 3 each.
async function floorSteps(): Promise<Record<string, number>> {
  const batchBytes = await readFile(join(out, 'B00000001.fits'));
  const copy = Buffer.allocUnsafe(batchBytes.length);
  copy.fill(0);
  const scratch = join(out, 'floor.bin');
  const best: Record<string, number> = {};
  const time = async (name: string, f: () => unknown): Promise<void> => {
    const c0 = cpu();
    await f();
    best[name] = Math.min(best[name] ?? Infinity, cpu() - c0);
  };
  for (let r = 0; r < 3; r++) {
    await time('read smf', () => readFile(smf));
    await time('copy batch bytes', () => batchBytes.copy(copy));
    await time('md5', () => createHash('md5').update(batchBytes).digest('hex'));
    await rm(scratch, { force: true });
    await time('write', () => writeFile(scratch, batchBytes));
  }
  await rm(scratch, { force: true });
  return best;
}
const floor = await floorSteps();
const floorCpu = Object.values(floor).reduce((a, b) => a + b, 0);
const budget = best.rows / 1e6;
console.log(`floor at 1 M/s (${(best.bytes / 1e6).toFixed(1)} MB batch, ${(statSync(smf).size / 1e6).toFixed(1)} MB smf; native code, CPU s, best of 3): ${Object.entries(floor).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')} = ${floorCpu.toFixed(3)} CPU s, against ${budget.toFixed(3)} s for ${best.rows} detections: ${(100 * floorCpu / budget).toFixed(0)}% of the budget before any look-up, conversion, validation or publish`);

// ---- ST and OB rates. The stacks are built `runs` times: the first pass also compiles the
// ST code (a loader builds many), so the best pass is the rate and the first is shown too.
const stacks = survey.manifest.stacks;
// StackToImage comes from gpc1 (the stack's warps, their exposures and chips), as in the
// loader: the survey is recorded in a processing database of the run's own.
const gpc1 = await openGpc1(`sqlite:${join(out, 'gpc1.db')}`);
await recordSurveyInGpc1(gpc1, survey.dir, survey.manifest);
const stackIdOf = new Map((await gpc1.all('SELECT stack_id, skycell_id, filter FROM stackRun')).map((r) => [`${String(r.skycell_id)} ${String(r.filter)}`, Number(r.stack_id)]));
let stRows = 0;
const stPasses: { cpu: number; wall: number; steps: Record<string, number> }[] = [];
for (let r = 0; r < runs; r++) {
  const c1 = cpu();
  const t1 = performance.now();
  const steps: Record<string, number> = {};
  stRows = 0;
  for (const s of stacks) {
    const stackId = stackIdOf.get(`${s.skycell} ${s.filter_id}`);
    check(stackId !== undefined, `gpc1 has a stack run of ${s.skycell} ${s.filter_id}`);
    const b = await buildStBatch(ctx(), { cmfPath: join(survey.dir, s.cmf), stackId: stackId!, dvoDir: dvo, lookup: perImageLookup(dvo), gpc1 });
    stRows += b.mainRows;
    for (const [k, v] of Object.entries(b.timings ?? {})) steps[k] = (steps[k] ?? 0) + v;
  }
  stPasses.push({ cpu: cpu() - c1, wall: (performance.now() - t1) / 1000, steps });
}
await gpc1.close();
const stBest = stPasses.reduce((a, b) => (b.cpu < a.cpu ? b : a));
console.log(`ST: ${stacks.length} stacks, ${stRows} stack detections; best of ${runs} passes ${stBest.wall.toFixed(3)} s wall (${fmt(stBest.steps)} s), ${stBest.cpu.toFixed(3)} CPU s: ${Math.round(stRows / stBest.cpu).toLocaleString('en')} detections per CPU-second (first pass ${stPasses[0].cpu.toFixed(3)} CPU s: ${Math.round(stRows / stPasses[0].cpu).toLocaleString('en')})`);
const regions = (await listRegions(dvo)).filter((r) => r.objects > 0).sort((a, b) => b.objects - a.objects).slice(0, 8);
let obRows = 0;
const c0 = cpu();
const t0 = performance.now();
for (const r of regions) obRows += (await buildObBatch(ctx(), { dvoDir: dvo, regionIndex: r.index })).mainRows;
const used = cpu() - c0;
console.log(`OB: ${regions.length} regions, ${obRows} objects in ${((performance.now() - t0) / 1000).toFixed(3)} s wall, ${used.toFixed(3)} CPU s: ${Math.round(obRows / used).toLocaleString('en')} objects per CPU-second`);
await rm(out, { recursive: true, force: true });
