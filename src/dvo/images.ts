// The Images table (`Images.dat`): one row per chip or stack image ingested. EXTERN_ID is the
// catalogue's IMAGEID (what ippToPsps knows), IMAGE_ID our internal number (what the measures
// carry). NAME is `<exposure or stack>:<chip or skycell>`; an image's identity is its photcode,
// TZERO and the part of NAME after the last `:`, so the same image offered again under another
// IMAGEID is recognised. FLAGS bit 0x40000000 marks an image whose measures are being written:
// set before the regions are updated, cleared after; a process that dies in between leaves it
// set, and running addstar on the same catalogue again completes the ingest.
import { access, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FitsFile, fitsTable, Header, writeFits } from '../fits/index.ts';
import { memoryTable } from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { DvoError } from './errors.ts';
import { EXTNAME, IMAGE_COLUMNS } from './layouts.ts';

/** FLAGS bit: the image's measures are not all written yet. */
export const IMAGE_PENDING = 0x4000_0000;

/** What a catalogue says about one of its images. */
export interface ImageInfo {
  /** The catalogue's IMAGEID (becomes EXTERN_ID). */
  readonly externId: number;
  /** `<exposure or stack>:<chip or skycell>`. */
  readonly name: string;
  readonly photcode: number;
  /** Unix seconds of the exposure start. */
  readonly time: number;
  readonly exptime: number;
  readonly airmass: number;
  /** Zero point of the image, magnitudes. */
  readonly zeroPoint: number;
  readonly raCenter: number;
  readonly decCenter: number;
  /** Degrees from the centre that hold every detection. */
  readonly radius: number;
  readonly nstar: number;
  readonly sourceId: number;
  readonly ccdnum: number;
}

/** The path of `Images.dat`. */
export function imagesPath(db: string): string {
  return join(db, 'Images.dat');
}

function identity(photcode: number, time: number, name: string): string {
  return `${photcode}|${time}|${name.slice(name.lastIndexOf(':') + 1).trim()}`;
}

/** How an image stands after {@link ImageTable.register}. */
export type ImageStatus = 'new' | 'resume' | 'done';

/** `Images.dat` in memory. */
export class ImageTable {
  readonly store: ColumnStore;
  private readonly byExtern = new Map<number, number>();
  private readonly byImage = new Map<number, number>();
  private readonly byIdentity = new Map<string, number>();
  private maxId = 0;

  constructor(store: ColumnStore) {
    this.store = store;
    const ext = store.u32('EXTERN_ID');
    const id = store.u32('IMAGE_ID');
    for (let r = 0; r < store.length; r++) this.indexRow(r, ext[r], id[r]);
  }

  private indexRow(r: number, externId: number, imageId: number): void {
    this.byExtern.set(externId, r);
    this.byImage.set(imageId, r);
    this.byIdentity.set(identity(this.store.i16('PHOTCODE')[r], this.store.i32('TZERO')[r], this.store.str('NAME')[r]), r);
    if (imageId > this.maxId) this.maxId = imageId;
  }

  /** Rows in the table. */
  get length(): number {
    return this.store.length;
  }

  /** The row of an EXTERN_ID (the catalogues' IMAGEID). */
  rowOfExtern(externId: number): number | undefined {
    return this.byExtern.get(externId);
  }

  /** The row of an internal IMAGE_ID. */
  rowOfImage(imageId: number): number | undefined {
    return this.byImage.get(imageId);
  }

  /**
   * Checks a catalogue's images against the table (all of them, before anything changes) and
   * then adds the new ones, pending. Throws `dvo_image_conflict` when an IMAGEID is taken by a
   * different image or an image is already here under another IMAGEID.
   */
  register(images: readonly ImageInfo[], source: string): { status: ImageStatus; imageId: number }[] {
    const store = this.store;
    const seen = new Set<number>();
    const plan = images.map((info) => {
      if (seen.has(info.externId)) throw new DvoError('dvo_image_conflict', `${source}: IMAGEID ${info.externId} is given to two images of the catalogue`);
      seen.add(info.externId);
      const key = identity(info.photcode, info.time, info.name);
      const r = this.byExtern.get(info.externId);
      if (r !== undefined) {
        const had = identity(store.i16('PHOTCODE')[r], store.i32('TZERO')[r], store.str('NAME')[r]);
        if (had !== key) {
          throw new DvoError('dvo_image_conflict', `${source}: IMAGEID ${info.externId} (${info.name}) is already used in this database by a different image, ${store.str('NAME')[r].trim()} (photcode ${store.i16('PHOTCODE')[r]}, time ${store.i32('TZERO')[r]}); IMAGEIDs must be unique`);
        }
        const pending = (store.u32('FLAGS')[r] & IMAGE_PENDING) !== 0;
        return { status: (pending ? 'resume' : 'done') as ImageStatus, imageId: store.u32('IMAGE_ID')[r] };
      }
      const other = this.byIdentity.get(key);
      if (other !== undefined) {
        throw new DvoError('dvo_image_conflict', `${source}: image ${info.name} was already ingested under IMAGEID ${store.u32('EXTERN_ID')[other]}, and this catalogue calls it ${info.externId}; ingest it under one IMAGEID only`);
      }
      return { status: 'new' as ImageStatus, imageId: 0 };
    });
    plan.forEach((p, i) => {
      if (p.status !== 'new') return;
      p.imageId = ++this.maxId;
      this.addRow(images[i], p.imageId);
    });
    return plan;
  }

  private addRow(info: ImageInfo, imageId: number): void {
    const s = this.store;
    const r = s.grow(1);
    s.u32('EXTERN_ID')[r] = info.externId;
    s.u32('IMAGE_ID')[r] = imageId;
    s.str('NAME')[r] = info.name.slice(0, 117);
    s.str('CTYPE')[r] = 'RA---TAN';
    s.i16('PHOTCODE')[r] = info.photcode;
    s.i32('TZERO')[r] = info.time;
    s.f32('EXPTIME')[r] = info.exptime;
    s.f32('SECZ')[r] = info.airmass;
    s.f32('MCAL')[r] = info.zeroPoint;
    s.f32('RA_CENTER')[r] = info.raCenter;
    s.f32('DEC_CENTER')[r] = info.decCenter;
    // float32 rounding of the centre must not push detections outside the radius.
    s.f32('RADIUS')[r] = info.radius + 1e-4;
    s.f64('CRVAL1')[r] = info.raCenter;
    s.f64('CRVAL2')[r] = info.decCenter;
    s.u32('NSTAR')[r] = info.nstar;
    s.u16('SOURCE_ID')[r] = info.sourceId & 0xffff;
    s.u8('CCDNUM')[r] = info.ccdnum & 0xff;
    s.u32('FLAGS')[r] = IMAGE_PENDING;
    this.indexRow(r, info.externId, imageId);
  }

  /** Clears the pending mark of these images (their measures are all written). */
  complete(imageIds: Iterable<number>): number {
    const flags = this.store.u32('FLAGS');
    let n = 0;
    for (const id of imageIds) {
      const r = this.byImage.get(id);
      if (r === undefined || (flags[r] & IMAGE_PENDING) === 0) continue;
      flags[r] &= ~IMAGE_PENDING;
      n++;
    }
    return n;
  }

  /** IMAGE_IDs still marked pending. */
  pending(): number[] {
    const flags = this.store.u32('FLAGS');
    const ids = this.store.u32('IMAGE_ID');
    const out: number[] = [];
    for (let r = 0; r < this.store.length; r++) if (flags[r] & IMAGE_PENDING) out.push(ids[r]);
    return out;
  }
}

/** Reads `Images.dat` (an empty table if the file does not exist yet). */
export async function readImages(db: string, options: { allowMissing?: boolean } = {}): Promise<ImageTable> {
  const path = imagesPath(db);
  const store = new ColumnStore(IMAGE_COLUMNS, 64);
  if (!await access(path).then(() => true, () => false)) {
    // No images yet is a new database; region tables without their images is a damaged one
    // (`allowMissing`: an empty table all the same, for verify to list what depends on it).
    const held = options.allowMissing ? undefined : await regionTableIn(db);
    if (held) throw new DvoError('dvo_damaged', `${path} is missing while ${held} holds measures of its images; restore it from a backup (ipp dvo verify lists what depends on it)`);
    return new ImageTable(store);
  }
  const file = await FitsFile.open(path);
  try {
    const table = fitsTable(file, EXTNAME.image);
    for await (const b of table.batches({ columns: IMAGE_COLUMNS.map((c) => c.name) })) store.appendBatch(b);
  } finally {
    await file.close();
  }
  return new ImageTable(store);
}

/** A region table in the database (the first found), or undefined when it holds none. */
async function regionTableIn(db: string): Promise<string | undefined> {
  for (const band of await readdir(db, { withFileTypes: true }).catch(() => [])) {
    if (!band.isDirectory()) continue;
    const table = (await readdir(join(db, band.name)).catch(() => [] as string[])).find((n) => n.endsWith('.cpt'));
    if (table) return join(db, band.name, table);
  }
  return undefined;
}

/**
 * Writes `Images.dat` (atomically; hold the Images lock). The temporary files of a writer
 * killed part way (`.Images.dat.*.tmp`) are removed first: with the lock held, none is live.
 */
export async function writeImages(db: string, images: ImageTable): Promise<void> {
  for (const name of await readdir(db).catch(() => [] as string[])) {
    if (name.startsWith('.Images.dat.') && name.endsWith('.tmp')) await rm(join(db, name), { force: true });
  }
  await writeFits(imagesPath(db), [{ table: memoryTable(IMAGE_COLUMNS, [images.store.toBatch()], { name: EXTNAME.image }) }], {
    primaryHeader: new Header().set('DVOTABLE', 'IMAGES', 'DVO image table').set('NIMAGES', images.length, 'images'),
  });
}
