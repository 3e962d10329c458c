// `ipp dvo merge A B --out C`: C starts as a copy of A (its partition, photcodes, images and
// regions); then B's images are registered in C (an image both hold, same IMAGEID and
// identity, is taken once; a conflict stops the merge) and B's measures, region by region in
// ingest order, go through the same association as addstar: each joins the nearest object of C
// within the match radius or starts one. Detection IDs travel unchanged; an object new to C
// takes the objID of its first measure's position, as it did in B.
import { cp, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { FitsFile, fitsTable } from '../fits/index.ts';
import type { Logger } from '../common/index.ts';
import { associate, type AddstarOptions, type DetectionBatch, type Totals } from './addstar.ts';
import { ColumnStore } from './column-store.ts';
import { dvoExists, openDvo, type DvoDatabase } from './database.ts';
import { DvoError } from './errors.ts';
import { readImages, writeImages, type ImageInfo, type ImageTable } from './images.ts';
import { EXTNAME, MEASURE_COLUMNS } from './layouts.ts';
import { lockOptions, withLocks } from './lock.ts';
import { readImageIndex } from './region.ts';
import { regionPath } from './region-files.ts';
import { regionsWithData, withRegionsRead } from './region-reader.ts';

/** Options of {@link mergeDvo}. */
export interface MergeOptions {
  readonly radius?: AddstarOptions['radius'];
  readonly log?: Pick<Logger, 'warn' | 'info'>;
  readonly lockTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Measures of B held before C's regions are written (default 4,000,000). */
  readonly maxGroupDetections?: number;
}

/** What {@link mergeDvo} did. */
export interface MergeResult {
  readonly imagesAdded: number;
  readonly imagesShared: number;
  readonly measures: number;
  readonly matched: number;
  readonly newObjects: number;
}

/** Merges databases `a` and `b` into a new database `out`. */
export async function mergeDvo(a: string, b: string, out: string, options: MergeOptions = {}): Promise<MergeResult> {
  const found = await stat(out).catch(() => undefined);
  if (found && !found.isDirectory()) {
    throw new DvoError('dvo_exists', `${out} exists and is not a directory; merge writes a new database, so give a new directory`);
  }
  for (const input of [a, b]) {
    if (resolve(out).startsWith(`${resolve(input)}${sep}`)) {
      throw new DvoError('dvo_exists', `${out} lies inside the database ${input}; give a directory outside both inputs`);
    }
  }
  if (await dvoExists(out) || (found && (await readdir(out)).length > 0)) {
    throw new DvoError('dvo_exists', `${out} already exists; merge writes a new database, so give a new directory (or remove it, if it is what a merge stopped part way left)`);
  }
  const dbA = await openDvo(a);
  const dbB = await openDvo(b);
  for (const c of dbB.photcodes.codes) {
    const same = dbA.photcodes.byCode(c.code);
    if (!same || same.name !== c.name) {
      throw new DvoError('dvo_merge_mismatch', `photcode ${c.code} (${c.name}) of ${b} is ${same ? `${same.name} in` : 'not in'} ${a}; the databases must share their photcodes`);
    }
  }
  const lock = lockOptions(options);
  try {
    // C = A, copied under read locks of A's image table and of every region with data, so no
    // region is copied in the middle of a commit.
    const held = [...await regionsWithData(a, dbA.sky.regions)];
    await withLocks(a, ['Images', ...held], 'soft', lock, () => cp(a, out, { recursive: true, filter: (src) => !src.startsWith(join(a, 'locks')) && !/\.(new|commit|tmp)$/.test(src) }));
    refusePending(await readImages(out), a);
    const dbC = await openDvo(out);
    return await mergeInto(dbC, dbB, options, lock);
  } catch (error) {
    // Only what the merge made goes: an empty directory given as --out stays, empty.
    if (found) for (const name of await readdir(out).catch(() => [] as string[])) await rm(join(out, name), { recursive: true, force: true });
    else await rm(out, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Refuses a database with images whose ingest has not finished: merged, their missing
 * measures could never be completed (the image would look ingested in the output).
 */
function refusePending(images: ImageTable, dir: string): void {
  const pending = images.pending().length;
  if (pending > 0) {
    throw new DvoError('dvo_merge_pending', `${dir} has ${pending} image${pending === 1 ? '' : 's'} whose ingest has not finished (an addstar still running, or stopped: run it again on the same catalogues); merge once none is pending (ipp dvo verify ${dir} lists them)`);
  }
}

async function mergeInto(dbC: DvoDatabase, dbB: DvoDatabase, options: MergeOptions, lock: { log?: Pick<Logger, 'warn'>; timeoutMs?: number; signal?: AbortSignal }): Promise<MergeResult> {
  const imagesB = await withLocks(dbB.dir, ['Images'], 'soft', lock, () => readImages(dbB.dir));
  refusePending(imagesB, dbB.dir);
  const sB = imagesB.store;
  const infos: ImageInfo[] = [];
  for (let r = 0; r < imagesB.length; r++) {
    infos.push({
      externId: sB.u32('EXTERN_ID')[r], name: sB.str('NAME')[r].trim(), photcode: sB.i16('PHOTCODE')[r], time: sB.i32('TZERO')[r],
      exptime: sB.f32('EXPTIME')[r], airmass: sB.f32('SECZ')[r], zeroPoint: sB.f32('MCAL')[r],
      raCenter: sB.f32('RA_CENTER')[r], decCenter: sB.f32('DEC_CENTER')[r], radius: sB.f32('RADIUS')[r],
      nstar: sB.u32('NSTAR')[r], sourceId: sB.u16('SOURCE_ID')[r], ccdnum: sB.u8('CCDNUM')[r],
    });
  }
  // B's IMAGE_ID → C's IMAGE_ID (0: the image is already in C).
  const mapping = new Map<number, number>();
  let added = 0;
  await withLocks(dbC.dir, ['Images'], 'exclusive', lock, async () => {
    const imagesC = await readImages(dbC.dir);
    const plan = imagesC.register(infos, dbB.dir);
    plan.forEach((p, r) => {
      mapping.set(sB.u32('IMAGE_ID')[r], p.status === 'done' ? 0 : p.imageId);
      if (p.status !== 'done') added++;
    });
    await writeImages(dbC.dir, imagesC);
  });
  const totals: Totals = { detections: 0, matched: 0, newObjects: 0, skipped: 0, regionsWritten: 0 };
  const limit = options.maxGroupDetections ?? 4_000_000;
  let group: DetectionBatch[] = [];
  let held = 0;
  const addOptions: AddstarOptions = {
    ...(options.radius ? { radius: options.radius } : {}), ...(options.log ? { log: options.log } : {}),
    ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}), ...(options.signal ? { signal: options.signal } : {}),
  };
  const flush = async (): Promise<void> => {
    if (group.length) await associate(dbC, group, addOptions, totals);
    group = [];
    held = 0;
  };
  const withData = await regionsWithData(dbB.dir, dbB.sky.regions);
  for (const r of dbB.sky.regions) {
    options.signal?.throwIfAborted();
    if (!withData.has(r.name)) continue;
    const batch = await withRegionsRead(dbB.dir, [r], lock, async () => {
      const cpm = await FitsFile.open(regionPath(dbB.dir, r, 'cpm'));
      try {
        const index = await readImageIndex(cpm);
        const [ids, firsts, counts] = index.columns.map((c) => c.values) as [Uint32Array, Int32Array, Int32Array];
        const store = new ColumnStore(MEASURE_COLUMNS, Math.max(16, cpm.hdu(EXTNAME.measure).rows ?? 0));
        for await (const bt of fitsTable(cpm, EXTNAME.measure).batches({ columns: MEASURE_COLUMNS.map((c) => c.name) })) store.appendBatch(bt);
        const segments = Array.from({ length: index.rowCount }, (_, k) => ({ first: firsts[k], count: counts[k] }));
        const imageIds = Uint32Array.from(ids.subarray(0, index.rowCount), (id) => mapping.get(id) ?? 0);
        return { detections: store, segments, imageIds };
      } finally {
        await cpm.close();
      }
    });
    group.push(batch);
    held += batch.detections.length;
    if (held >= limit) await flush();
  }
  await flush();
  await withLocks(dbC.dir, ['Images'], 'exclusive', lock, async () => {
    const imagesC = await readImages(dbC.dir);
    if (imagesC.complete([...mapping.values()].filter((v) => v > 0)) > 0) await writeImages(dbC.dir, imagesC);
  });
  return { imagesAdded: added, imagesShared: imagesB.length - added, measures: totals.detections, matched: totals.matched, newObjects: totals.newObjects };
}
