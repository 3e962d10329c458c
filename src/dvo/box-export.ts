// The "pre-ingest" of ippToPsps: the regions overlapping a box of sky (objects, measures) and
// the small tables (Images, Photcodes, the partition) copied into a scratch database, where
// look-ups by image are one indexed query. Like rsync, each file's size and modification
// time are recorded: exporting a neighbouring box keeps the regions both boxes share when
// their files have not changed, imports the new ones and those that changed, and drops the
// rest. IDs are stored as SQL 64-bit integers (a uint64 above 2^63 reads back negative).
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FitsFile, fitsTable } from '../fits/index.ts';
import { applyMigrations, openDatabase, schemaOwners, type Database, type Migration, type Queryable, type SqlValue } from '../db/index.ts';
import type { Logger } from '../common/index.ts';
import { openDvo, photcodesPath, skyTablePath } from './database.ts';
import { DvoError } from './errors.ts';
import { imagesPath, readImages } from './images.ts';
import { EXTNAME } from './layouts.ts';
import { lockOptions, withLocks } from './lock.ts';
import { regionHasData, regionPath, REGION_EXTENSIONS } from './region-files.ts';
import { withRegionsRead } from './region-reader.ts';
import type { SkyRegion } from './sky-table.ts';

/** A box of sky; `raMin > raMax` crosses RA 0. */
export interface SkyBox {
  readonly raMin: number;
  readonly raMax: number;
  readonly decMin: number;
  readonly decMax: number;
}

/** The scratch database's schema (room `dvo_scratch`). */
export const SCRATCH_MIGRATIONS: readonly Migration[] = [{
  version: 1,
  name: 'dvo pre-ingest tables',
  up: (d) => `
    CREATE TABLE dvo_files (path TEXT PRIMARY KEY, region INTEGER NOT NULL, size ${d.bigint} NOT NULL, mtime_ms ${d.double} NOT NULL);
    CREATE TABLE dvo_regions (region INTEGER PRIMARY KEY, name TEXT NOT NULL, ra_min ${d.double}, ra_max ${d.double}, dec_min ${d.double}, dec_max ${d.double});
    CREATE TABLE dvo_objects (region INTEGER NOT NULL, dvo_obj_id INTEGER NOT NULL, obj_id ${d.bigint} NOT NULL,
      ra ${d.double}, dec ${d.double}, nmeasure INTEGER, PRIMARY KEY (region, dvo_obj_id));
    CREATE TABLE dvo_measures (region INTEGER NOT NULL, det_id ${d.bigint} NOT NULL, obj_id ${d.bigint} NOT NULL, ipp_idet ${d.bigint} NOT NULL,
      image_id ${d.bigint} NOT NULL, ra ${d.double}, dec ${d.double}, mag ${d.double}, mag_err ${d.double}, m_cal ${d.double},
      photcode INTEGER, dvo_obj_id ${d.bigint});
    CREATE INDEX dvo_measures_image ON dvo_measures (image_id);
    CREATE INDEX dvo_measures_region ON dvo_measures (region);
    CREATE TABLE dvo_images (image_id ${d.bigint} PRIMARY KEY, extern_id ${d.bigint} NOT NULL, name TEXT, photcode INTEGER,
      tzero ${d.bigint}, exptime ${d.double}, flags ${d.bigint}, ra_center ${d.double}, dec_center ${d.double}, radius ${d.double}, nstar ${d.bigint});
    CREATE INDEX dvo_images_extern ON dvo_images (extern_id);
    CREATE TABLE dvo_photcodes (code INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, zero_point ${d.double}, equiv INTEGER);
  `,
}];

/** What {@link exportBox} did. */
export interface BoxExportResult {
  readonly regions: number;
  readonly kept: number;
  readonly imported: number;
  readonly dropped: number;
  readonly objects: number;
  readonly measures: number;
  readonly tablesRefreshed: readonly string[];
}

/** Options of {@link exportBox}. */
export interface BoxExportOptions {
  readonly log?: Pick<Logger, 'warn'>;
  readonly lockTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

const SCRATCH_ROOM = 'dvo_scratch';

/**
 * Opens (creating) a scratch database. One that holds anything else (the tables of another
 * room, such as gpc1's, or of something not made by ipp) is refused, not written into.
 */
export async function openScratch(url: string): Promise<Database> {
  const db = await openDatabase(url);
  try {
    const { rooms, tables } = await schemaOwners(db);
    const others = rooms.filter((r) => r !== SCRATCH_ROOM);
    if (others.length > 0 || (rooms.length === 0 && tables > 0)) {
      throw new DvoError('dvo_bad_scratch', `${db.url} holds ${others.length > 0 ? `the ${others.join(', ')} tables` : `${tables} tables not made by ipp`}; a DVO scratch database must be one of its own: give a new one`);
    }
    await applyMigrations(db, [{ room: SCRATCH_ROOM, migrations: SCRATCH_MIGRATIONS }]);
    return db;
  } catch (error) {
    await db.close();
    throw error;
  }
}

const PARAMS = 30_000;

/** Inserts rows given as columns (one statement per chunk, no object per row). */
async function insertColumns(q: Queryable, table: string, names: readonly string[], cols: readonly ArrayLike<SqlValue>[], n: number): Promise<void> {
  const per = Math.max(1, Math.floor(PARAMS / names.length));
  const tuple = `(${names.map(() => '?').join(',')})`;
  for (let start = 0; start < n; start += per) {
    const end = Math.min(n, start + per);
    const params: SqlValue[] = new Array((end - start) * names.length);
    let k = 0;
    for (let i = start; i < end; i++) for (let c = 0; c < cols.length; c++) params[k++] = cols[c][i];
    await q.run(`INSERT INTO ${table} (${names.join(',')}) VALUES ${Array(end - start).fill(tuple).join(',')}`, params);
  }
}

function signed(values: BigUint64Array): BigInt64Array {
  return new BigInt64Array(values.buffer, values.byteOffset, values.length);
}

async function fileStamp(path: string): Promise<{ size: number; mtime: number } | undefined> {
  const s = await stat(path).catch(() => undefined);
  return s ? { size: s.size, mtime: s.mtimeMs } : undefined;
}

async function recorded(q: Queryable, path: string): Promise<{ size: number; mtime: number } | undefined> {
  const row = await q.get<{ size: number | bigint; mtime_ms: number }>('SELECT size, mtime_ms FROM dvo_files WHERE path = ?', [path]);
  return row ? { size: Number(row.size), mtime: row.mtime_ms } : undefined;
}

async function record(q: Queryable, path: string, region: number, stamp: { size: number; mtime: number }): Promise<void> {
  await q.run('DELETE FROM dvo_files WHERE path = ?', [path]);
  await q.run('INSERT INTO dvo_files (path, region, size, mtime_ms) VALUES (?, ?, ?, ?)', [path, region, stamp.size, stamp.mtime]);
}

/** One region's rows, read from its files. */
interface RegionRows {
  objects: { n: number; cols: ArrayLike<SqlValue>[] };
  measures: { n: number; cols: ArrayLike<SqlValue>[] };
}

async function readRegionRows(dir: string, r: SkyRegion): Promise<RegionRows> {
  const cpt = await FitsFile.open(regionPath(dir, r, 'cpt'));
  const cpm = await FitsFile.open(regionPath(dir, r, 'cpm'));
  try {
    const at = fitsTable(cpt, EXTNAME.average);
    const n = at.rowCount ?? 0;
    const ext = new BigUint64Array(n);
    const oid = new Uint32Array(n);
    const ra = new Float64Array(n);
    const dec = new Float64Array(n);
    const nm = new Uint16Array(n);
    let o = 0;
    for await (const b of at.batches({ columns: ['EXT_ID', 'OBJ_ID', 'RA', 'DEC', 'NMEASURE'] })) {
      ext.set(b.columns[0].values as BigUint64Array, o);
      oid.set(b.columns[1].values as Uint32Array, o);
      ra.set(b.columns[2].values as Float64Array, o);
      dec.set(b.columns[3].values as Float64Array, o);
      nm.set(b.columns[4].values as Uint16Array, o);
      o += b.rowCount;
    }
    const mt = fitsTable(cpm, EXTNAME.measure);
    const m = mt.rowCount ?? 0;
    const det = new BigUint64Array(m);
    const obj = new BigInt64Array(m);
    const idet = new Uint32Array(m);
    const img = new Uint32Array(m);
    const mra = new Float64Array(m);
    const mdec = new Float64Array(m);
    const mag = new Float32Array(m);
    const magErr = new Float32Array(m);
    const cal = new Float32Array(m);
    const pc = new Uint16Array(m);
    const dob = new Uint32Array(m);
    const objSigned = signed(ext);
    let k = 0;
    for await (const b of mt.batches({ columns: ['EXT_ID', 'AVE_REF', 'IMAGE_ID', 'RA', 'DEC', 'MAG', 'MAG_ERR', 'M_CAL', 'PHOTCODE', 'OBJ_ID'] })) {
      const [e, ref, im, a, d, mg, me, mc, p, ob] = b.columns.map((c) => c.values);
      det.set(e as BigUint64Array, k);
      img.set(im as Uint32Array, k);
      mra.set(a as Float64Array, k);
      mdec.set(d as Float64Array, k);
      mag.set(mg as Float32Array, k);
      magErr.set(me as Float32Array, k);
      cal.set(mc as Float32Array, k);
      pc.set(p as Uint16Array, k);
      dob.set(ob as Uint32Array, k);
      for (let i = 0; i < b.rowCount; i++) {
        const id = (e as BigUint64Array)[i];
        idet[k + i] = Number(id & 0xffffffffn);
        const rr = (ref as Uint32Array)[i];
        if (rr >= n) throw new DvoError('dvo_damaged', `${cpm.name}: measure row ${k + i + 1} points at object row ${rr + 1} of ${n}; run ipp dvo verify`);
        obj[k + i] = objSigned[rr];
      }
      k += b.rowCount;
    }
    const fill = (v: number, len: number): Int32Array => new Int32Array(len).fill(v);
    return {
      objects: { n, cols: [fill(r.index, n), oid, objSigned, ra, dec, nm] as ArrayLike<SqlValue>[] },
      measures: { n: m, cols: [fill(r.index, m), signed(det), obj, idet, img, mra, mdec, mag, magErr, cal, pc, dob] as ArrayLike<SqlValue>[] },
    };
  } finally {
    await cpt.close();
    await cpm.close();
  }
}

const OBJECT_COLUMNS = ['region', 'dvo_obj_id', 'obj_id', 'ra', 'dec', 'nmeasure'];
const MEASURE_COLUMNS_SQL = ['region', 'det_id', 'obj_id', 'ipp_idet', 'image_id', 'ra', 'dec', 'mag', 'mag_err', 'm_cal', 'photcode', 'dvo_obj_id'];

/** Imports one region's rows (replacing what the scratch held for it). */
async function importRegion(db: Database, r: SkyRegion, rows: RegionRows, stamps: { path: string; stamp: { size: number; mtime: number } }[]): Promise<void> {
  await db.transaction(async (q) => {
    await dropRegion(q, r.index);
    await q.run('INSERT INTO dvo_regions (region, name, ra_min, ra_max, dec_min, dec_max) VALUES (?, ?, ?, ?, ?, ?)', [r.index, r.name, r.rmin, r.rmax, r.dmin, r.dmax]);
    await insertColumns(q, 'dvo_objects', OBJECT_COLUMNS, rows.objects.cols, rows.objects.n);
    await insertColumns(q, 'dvo_measures', MEASURE_COLUMNS_SQL, rows.measures.cols, rows.measures.n);
    for (const s of stamps) await record(q, s.path, r.index, s.stamp);
  });
}

async function dropRegion(q: Queryable, region: number): Promise<void> {
  await q.run('DELETE FROM dvo_measures WHERE region = ?', [region]);
  await q.run('DELETE FROM dvo_objects WHERE region = ?', [region]);
  await q.run('DELETE FROM dvo_regions WHERE region = ?', [region]);
  await q.run('DELETE FROM dvo_files WHERE region = ?', [region]);
}

/** Refreshes Images, Photcodes and the partition record when their files changed. */
async function refreshTables(dir: string, db: Database, options: BoxExportOptions): Promise<string[]> {
  const refreshed: string[] = [];
  const imgStamp = await fileStamp(imagesPath(dir));
  if (imgStamp) {
    const had = await recorded(db, imagesPath(dir));
    if (!had || had.size !== imgStamp.size || had.mtime !== imgStamp.mtime) {
      const lock = { ...(options.log ? { log: options.log } : {}), ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}) };
      const { images, stamp } = await withLocks(dir, ['Images'], 'soft', lock, async () => ({ images: await readImages(dir), stamp: await fileStamp(imagesPath(dir)) }));
      const s = images.store;
      const n = images.length;
      await db.transaction(async (q) => {
        await q.run('DELETE FROM dvo_images');
        await insertColumns(q, 'dvo_images', ['image_id', 'extern_id', 'name', 'photcode', 'tzero', 'exptime', 'flags', 'ra_center', 'dec_center', 'radius', 'nstar'],
          [s.u32('IMAGE_ID'), s.u32('EXTERN_ID'), s.str('NAME').map((x) => x.trim()), s.i16('PHOTCODE'), s.i32('TZERO'), s.f32('EXPTIME'), s.u32('FLAGS'),
            s.f32('RA_CENTER'), s.f32('DEC_CENTER'), s.f32('RADIUS'), s.u32('NSTAR')], n);
        await record(q, imagesPath(dir), -1, stamp ?? imgStamp);
      });
      refreshed.push('Images');
    }
  }
  for (const [path, name] of [[photcodesPath(dir), 'Photcodes'], [skyTablePath(dir), 'SkyTable']] as const) {
    const stamp = await fileStamp(path);
    const had = await recorded(db, path);
    if (stamp && (!had || had.size !== stamp.size || had.mtime !== stamp.mtime)) {
      if (name === 'Photcodes') {
        const { photcodes } = await openDvo(dir);
        await db.transaction(async (q) => {
          await q.run('DELETE FROM dvo_photcodes');
          const c = photcodes.codes;
          await insertColumns(q, 'dvo_photcodes', ['code', 'name', 'type', 'zero_point', 'equiv'],
            [c.map((x) => x.code), c.map((x) => x.name), c.map((x) => x.type), c.map((x) => x.zeroPoint), c.map((x) => x.equiv)], c.length);
          await record(q, path, -1, stamp);
        });
      } else {
        await db.transaction((q) => record(q, path, -1, stamp));
      }
      refreshed.push(name);
    }
  }
  return refreshed;
}

/**
 * Copies the regions overlapping `box` into the scratch database at `url` (see the file
 * comment); regions whose files did not change since the last export are kept as they are.
 */
export async function exportBox(given: string, box: SkyBox, url: string, options: BoxExportOptions = {}): Promise<BoxExportResult> {
  // Files are recorded by absolute path, so the same database named another way is the same files.
  const dir = resolve(given);
  const dvo = await openDvo(dir);
  const wanted = dvo.sky.regionsInBox(box.raMin, box.raMax, box.decMin, box.decMax);
  const db = await openScratch(url);
  try {
    const tablesRefreshed = await refreshTables(dir, db, options);
    let kept = 0;
    let imported = 0;
    let objects = 0;
    let measures = 0;
    const keep = new Set<number>();
    const lock = lockOptions(options);
    for (const r of wanted) {
      options.signal?.throwIfAborted();
      const paths = REGION_EXTENSIONS.map((e) => regionPath(dir, r, e));
      // Stamps and rows are taken under the region's read lock, so they belong together.
      const got = await withRegionsRead(dir, [r], lock, async () => {
        const stamps = await Promise.all(paths.map(async (path) => ({ path, stamp: await fileStamp(path) })));
        // A damaged region (some files missing) is an error, not left out unsaid.
        if (!regionHasData(r, paths, stamps.map((s) => s.stamp !== undefined))) return undefined;
        const same = (await Promise.all(stamps.map(async (s) => {
          const had = await recorded(db, s.path);
          return had !== undefined && had.size === s.stamp!.size && had.mtime === s.stamp!.mtime;
        }))).every(Boolean);
        if (same) return 'same' as const;
        return { stamps: stamps as { path: string; stamp: { size: number; mtime: number } }[], rows: await readRegionRows(dir, r) };
      });
      if (got === undefined) continue;
      keep.add(r.index);
      if (got === 'same') { kept++; continue; }
      await importRegion(db, r, got.rows, got.stamps);
      imported++;
      objects += got.rows.objects.n;
      measures += got.rows.measures.n;
    }
    const held = await db.all<{ region: number }>('SELECT region FROM dvo_regions');
    let dropped = 0;
    for (const { region } of held) {
      if (keep.has(Number(region))) continue;
      await db.transaction((q) => dropRegion(q, Number(region)));
      dropped++;
    }
    return { regions: keep.size, kept, imported, dropped, objects, measures, tablesRefreshed };
  } finally {
    await db.close();
  }
}

/** The measures of an image (by catalogue IMAGEID) from a scratch database. */
export async function grabFromScratch(q: Queryable, externId: number): Promise<{ det_id: bigint | number; obj_id: bigint | number; ipp_idet: number }[]> {
  return q.all('SELECT m.det_id, m.obj_id, m.ipp_idet FROM dvo_measures m JOIN dvo_images i ON m.image_id = i.image_id WHERE i.extern_id = ? ORDER BY m.ipp_idet', [externId]);
}
