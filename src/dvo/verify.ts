// `ipp dvo verify`: reads every region (soft locks) and checks what the database promises:
// every measure's object exists and carries the same OBJ_ID/CAT_ID; each object's NMEASURE
// equals its measures; OBJ_IDs and DET_IDs are unique in their region, objIDs and detection
// IDs in the database; the image index agrees with the measures; every IMAGE_ID is in
// Images.dat, and each image's measures add up to its NSTAR; the three files of a region are
// of one generation; no image is left pending and no update half done. Nothing is changed.
import { access, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FitsFile, fitsTable, verifyFits } from '../fits/index.ts';
import { collectTable } from '../table/index.ts';
import { isIppError, type Logger } from '../common/index.ts';
import { openDvo, photcodesPath, skyTablePath } from './database.ts';
import { IMAGE_PENDING, imagesPath, readImages } from './images.ts';
import { DvoError } from './errors.ts';
import { EXTNAME } from './layouts.ts';
import { lockOptions, withLocks } from './lock.ts';
import { regionPath, REGION_EXTENSIONS } from './region-files.ts';
import type { SkyRegion } from './sky-table.ts';

/** One thing found wrong. */
export interface VerifyFault {
  readonly code: string;
  readonly region?: string;
  readonly message: string;
}

/** What {@link verifyDvo} found. */
export interface DvoVerifyReport {
  readonly regions: number;
  readonly objects: number;
  readonly measures: number;
  readonly images: number;
  readonly filesChecked: number;
  readonly faults: readonly VerifyFault[];
}

/** Options of {@link verifyDvo}. */
export interface DvoVerifyOptions {
  /** Also run the FITS checker (structure, checksums, full decode) on every file. */
  readonly fits?: boolean;
  readonly log?: Pick<Logger, 'warn'>;
  readonly lockTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Stop listing faults after this many (default 1000); they are still counted. */
  readonly maxFaults?: number;
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

function duplicates(values: BigUint64Array): bigint[] {
  const sorted = values.slice().sort();
  const out: bigint[] = [];
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1] && out.at(-1) !== sorted[i]) out.push(sorted[i]);
  return out;
}

/** Checks a database; see the file comment. */
export async function verifyDvo(dir: string, options: DvoVerifyOptions = {}): Promise<DvoVerifyReport> {
  const db = await openDvo(dir);
  const faults: VerifyFault[] = [];
  let faultCount = 0;
  const max = options.maxFaults ?? 1000;
  const fault = (code: string, message: string, region?: SkyRegion): void => {
    faultCount++;
    if (faults.length < max) faults.push({ code, message, ...(region ? { region: region.name } : {}) });
  };
  const lock = lockOptions(options);
  const images = await withLocks(dir, ['Images'], 'soft', lock, () => readImages(dir).catch((error: unknown) => {
    if (!(error instanceof DvoError && error.code === 'dvo_damaged')) throw error;
    fault('missing_file', error.message);
    return readImages(dir, { allowMissing: true });
  }));
  const imgIds = images.store.u32('IMAGE_ID');
  const extIds = images.store.u32('EXTERN_ID');
  const flags = images.store.u32('FLAGS');
  const nstar = images.store.u32('NSTAR');
  const seenImage = new Set<number>();
  const seenExtern = new Set<number>();
  for (let r = 0; r < images.length; r++) {
    if (seenImage.has(imgIds[r])) fault('duplicate_image_id', `Images.dat: IMAGE_ID ${imgIds[r]} appears twice`);
    if (seenExtern.has(extIds[r])) fault('duplicate_extern_id', `Images.dat: EXTERN_ID ${extIds[r]} appears twice`);
    seenImage.add(imgIds[r]);
    seenExtern.add(extIds[r]);
    if (flags[r] & IMAGE_PENDING) {
      fault('image_pending', `image ${images.store.str('NAME')[r].trim()} (IMAGEID ${extIds[r]}, IMAGE_ID ${imgIds[r]}) was not completely ingested; run addstar on its catalogue again`);
    }
  }
  const perImage = new Map<number, number>();
  const objExt: BigUint64Array[] = [];
  const detExt: BigUint64Array[] = [];
  let objects = 0;
  let measures = 0;
  let regions = 0;
  let filesChecked = 0;
  const files: string[] = [skyTablePath(dir), photcodesPath(dir)];
  if (await exists(imagesPath(dir))) files.push(imagesPath(dir));
  // One directory listing per declination band, not one look-up per region.
  const listing = new Map<string, string[]>();
  for (const band of new Set(db.sky.regions.map((r) => dirname(r.name)))) {
    for (const name of await readdir(join(dir, band)).catch(() => [] as string[])) {
      const stem = `${band}/${name.slice(0, name.indexOf('.'))}`;
      let list = listing.get(stem);
      if (!list) listing.set(stem, list = []);
      list.push(name.slice(name.indexOf('.') + 1));
    }
  }
  for (const r of db.sky.regions) {
    options.signal?.throwIfAborted();
    const found = listing.get(r.name);
    if (!found) continue;
    const paths = REGION_EXTENSIONS.map((e) => regionPath(dir, r, e));
    const leftovers = found.filter((n) => n.endsWith('commit') || n.endsWith('.new'));
    if (leftovers.length) fault('interrupted_update', `region ${r.name}: ${leftovers.join(', ')} left by an interrupted update; the next addstar or look-up on this region finishes or removes them`, r);
    const present = REGION_EXTENSIONS.map((e) => found.includes(e));
    if (!present.some(Boolean)) continue;
    if (!present.every(Boolean)) {
      fault('missing_file', `region ${r.name}: ${paths.filter((_, i) => !present[i]).join(', ')} missing`, r);
      continue;
    }
    regions++;
    files.push(...paths);
    await withLocks(dir, [r.name], 'soft', lock, async () => {
      // A file that cannot be read is a fault of its region; the other regions are still checked.
      const opened = await Promise.allSettled(paths.map((p) => FitsFile.open(p)));
      const refused = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (refused) {
        await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.close() : undefined)));
        if (!isIppError(refused.reason)) throw refused.reason;
        fault('unreadable_file', `region ${r.name}: ${refused.reason.message}`, r);
        return;
      }
      const [cpt, cps, cpm] = opened.map((o) => (o as PromiseFulfilledResult<FitsFile>).value) as [FitsFile, FitsFile, FitsFile];
      try {
        const gens = [cpt, cps, cpm].map((f) => f.hdus[0].header.get('DVOGEN'));
        if (gens.some((g) => g !== gens[0])) fault('generation_mismatch', `region ${r.name}: files of generations ${gens.join(', ')}`, r);
        const ave = await collectTable(fitsTable(cpt, EXTNAME.average), { columns: ['OBJ_ID', 'CAT_ID', 'EXT_ID', 'NMEASURE'] });
        const [objId, catId, ext, nmeas] = ave.columns.map((c) => c.values) as [Uint32Array, Uint32Array, BigUint64Array, Uint16Array];
        const n = ave.rowCount;
        objects += n;
        objExt.push(ext);
        const secRows = cps.hdu(EXTNAME.secfilt).rows ?? 0;
        if (secRows !== n * db.nsec) fault('secfilt_rows', `region ${r.name}: ${secRows} SecFilt rows for ${n} objects × ${db.nsec} filters`, r);
        const ids = new Set<number>();
        for (let i = 0; i < n; i++) {
          if (ids.has(objId[i])) fault('duplicate_obj_id', `region ${r.name}: OBJ_ID ${objId[i]} appears twice`, r);
          ids.add(objId[i]);
          if (catId[i] !== r.index) fault('wrong_cat_id', `region ${r.name}: object row ${i + 1} has CAT_ID ${catId[i]}, not ${r.index}`, r);
        }
        const counted = new Uint32Array(n);
        const dets = new Set<number>();
        const mt = fitsTable(cpm, EXTNAME.measure);
        const rows = mt.rowCount ?? 0;
        const measureImage = new Uint32Array(rows);
        const mext = new BigUint64Array(rows);
        let at = 0;
        for await (const b of mt.batches({ columns: ['AVE_REF', 'OBJ_ID', 'CAT_ID', 'DET_ID', 'EXT_ID', 'IMAGE_ID'] })) {
          const [ref, mo, mc, det, me, img] = b.columns.map((c) => c.values) as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, BigUint64Array, Uint32Array];
          for (let i = 0; i < b.rowCount; i++, at++) {
            const o = ref[i];
            if (o >= n) fault('measure_orphan', `region ${r.name}: measure row ${at + 1} (detection ${me[i]}) points at object row ${o + 1}, but the region has ${n} objects`, r);
            else {
              counted[o]++;
              if (objId[o] !== mo[i] || catId[o] !== mc[i]) fault('measure_object_mismatch', `region ${r.name}: measure row ${at + 1} says OBJ_ID ${mo[i]}/CAT_ID ${mc[i]} but its object is ${objId[o]}/${catId[o]}`, r);
            }
            if (dets.has(det[i])) fault('duplicate_det_id', `region ${r.name}: DET_ID ${det[i]} appears twice`, r);
            dets.add(det[i]);
            if (!seenImage.has(img[i])) fault('unknown_image', `region ${r.name}: measure row ${at + 1} has IMAGE_ID ${img[i]}, which Images.dat does not hold`, r);
            measureImage[at] = img[i];
            mext[at] = me[i];
            perImage.set(img[i], (perImage.get(img[i]) ?? 0) + 1);
          }
        }
        measures += rows;
        detExt.push(mext);
        for (let i = 0; i < n; i++) {
          if (nmeas[i] < 65535 && counted[i] !== nmeas[i]) fault('count_mismatch', `region ${r.name}: object OBJ_ID ${objId[i]} has NMEASURE ${nmeas[i]} but ${counted[i]} measures`, r);
        }
        const index = await collectTable(fitsTable(cpm, EXTNAME.imageIndex));
        const [iid, first, count] = index.columns.map((c) => c.values) as [Uint32Array, Int32Array, Int32Array];
        let covered = 0;
        for (let k = 0; k < index.rowCount; k++) {
          covered += count[k];
          let ok = first[k] >= 0 && first[k] + count[k] <= rows;
          for (let i = first[k]; ok && i < first[k] + count[k]; i++) ok = measureImage[i] === iid[k];
          if (!ok) fault('bad_image_index', `region ${r.name}: image index entry ${k + 1} (IMAGE_ID ${iid[k]}, rows ${first[k] + 1}..${first[k] + count[k]}) does not match the measures`, r);
        }
        if (covered !== rows) fault('bad_image_index', `region ${r.name}: the image index covers ${covered} of ${rows} measures`, r);
      } catch (error) {
        if (!isIppError(error)) throw error;
        fault('unreadable_file', `region ${r.name}: ${error.message}`, r);
      } finally {
        await Promise.all([cpt.close(), cps.close(), cpm.close()]);
      }
    });
  }
  for (let r = 0; r < images.length; r++) {
    const got = perImage.get(imgIds[r]) ?? 0;
    if (!(flags[r] & IMAGE_PENDING) && got !== nstar[r]) {
      fault('image_count_mismatch', `image ${images.store.str('NAME')[r].trim()} (IMAGEID ${extIds[r]}) has ${got} measures but its catalogue had NSTAR ${nstar[r]}`);
    }
  }
  const concat = (parts: BigUint64Array[]): BigUint64Array => {
    const out = new BigUint64Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  for (const id of duplicates(concat(objExt))) fault('duplicate_objid', `objID ${id} is given to more than one object`);
  for (const id of duplicates(concat(detExt))) fault('duplicate_detection_id', `detection ID ${id} appears in more than one measure`);
  if (options.fits) {
    for (const f of files) {
      const report = await verifyFits(f, options.signal ? { signal: options.signal } : {});
      filesChecked++;
      for (const p of report.problems) if (p.severity === 'error') fault('fits_invalid', `${f}: [${p.code}] ${p.message}`);
    }
  }
  if (faultCount > faults.length) faults.push({ code: 'more_faults', message: `${faultCount - faults.length} more faults not listed` });
  return { regions, objects, measures, images: images.length, filesChecked, faults };
}
