// Ground truth beside the catalogues. Every true object is written to truth/objects.fits
// the first time it is detected (in an smf or a cmf), from the tile in hand, so the sky is
// never generated again for the truth; rows go straight to their place in a scratch file
// (after room for the headers) as they come, and when the survey ends the headers are
// written into that room and the file is renamed into place. For each smf and cmf,
// truth/<file>.truth.fits holds a table per chip whose row r names the true object of
// detection row r (written by the catalogue writers from the rows measureChip makes).
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { Checksum, Header, padToBlock } from '../fits/index.ts';
import { defineLayout } from './cmf-layout.ts';
import { fileHeader, headerBytes, tableHeader } from './fits-out.ts';
import { SimError } from './errors.ts';
import { card } from './headers.ts';
import { objectId, type SkyTile } from './sky-model.ts';

/** The true-object table: one row per object detected at least once, in order of first detection. */
export const OBJECT_LAYOUT = defineLayout('SIM_OBJECTS', [
  ['OBJ_ID', 'i64'], ['RA', 'f64', 'deg'], ['DEC', 'f64', 'deg'], ['TYPE', 'u8'],
  ['MAG_G', 'f32', 'mag'], ['MAG_R', 'f32', 'mag'], ['MAG_I', 'f32', 'mag'],
  ['MAG_Z', 'f32', 'mag'], ['MAG_Y', 'f32', 'mag'], ['MAG_W', 'f32', 'mag'],
  ['R_EFF', 'f32', 'arcsec'], ['AXIS_RATIO', 'f32'], ['ANGLE', 'f32', 'deg'],
]);

const FLUSH_BYTES = 1 << 22;

/** The header of the true-object table of `count` rows. */
function objectsTableHeader(count: number): ReturnType<typeof tableHeader> {
  const extra = new Header();
  card(extra, 'EXTTYPE', OBJECT_LAYOUT.name, 'true objects, each detected at least once');
  card(extra, 'OBJ_TYPE', '0 star, 1 galaxy', 'meaning of TYPE');
  return tableHeader(OBJECT_LAYOUT, count, 'OBJECTS', extra);
}

// Where the rows start in the file: after the primary header and the table's header, whose
// sizes do not depend on the row count or the sums (fixed-width values, the same cards).
const DATA_START = headerBytes(fileHeader(new Header()), 0).length + objectsTableHeader(0).bytes(0).length;

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done, position + done)).bytesWritten;
}

/** Collects the true objects as they are first detected and writes truth/objects.fits at the end. */
export class TruthObjects {
  private readonly scratchPath: string;
  private handle: FileHandle | undefined;
  private buffer = new Uint8Array(FLUSH_BYTES + OBJECT_LAYOUT.rowBytes * 1024);
  private view = new DataView(this.buffer.buffer);
  private used = 0;
  private written = 0;
  private readonly sum = new Checksum();
  /** Objects recorded so far. */
  count = 0;

  constructor(scratchPath: string) {
    this.scratchPath = scratchPath;
  }

  /** Records object `k` of a tile. */
  add(tile: SkyTile, k: number): void {
    this.room(1);
    this.used = writeObject(this.view, this.used, tile, k);
    this.count++;
  }

  /**
   * Records the objects a chip detected for the first time (marking them in their tile's
   * `hits`): `detected[0..n)` index `srcTile`/`srcIndex`, −1 for spurious rows. Given in
   * candidate order (tile by tile) the tiles are read in turn, not at random.
   */
  addFirstDetections(tiles: readonly SkyTile[], srcTile: Int32Array, srcIndex: Int32Array, detected: Int32Array, n: number): void {
    this.room(n);
    const v = this.view;
    let at = this.used;
    let count = 0;
    for (let j = 0; j < n; j++) {
      const i = detected[j];
      if (i < 0) continue;
      const t = tiles[srcTile[i]];
      const k = srcIndex[i];
      const hits = t.hits;
      if (hits[k] !== 0) continue;
      hits[k] = 1;
      at = writeObject(v, at, t, k);
      count++;
    }
    this.used = at;
    this.count += count;
  }

  /** Makes room for `n` more rows in the buffer. */
  private room(n: number): void {
    const need = this.used + n * OBJECT_LAYOUT.rowBytes;
    if (need <= this.buffer.length) return;
    const bigger = new Uint8Array(Math.max(need, this.buffer.length * 2));
    bigger.set(this.buffer.subarray(0, this.used));
    this.buffer = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** Writes the rows gathered so far to the scratch file once they are many. */
  async flushIfLarge(): Promise<void> {
    if (this.used >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    this.handle ??= await open(this.scratchPath, 'wx+');
    const chunk = this.buffer.subarray(0, this.used);
    this.sum.add(chunk, this.written);
    await writeAll(this.handle, chunk, DATA_START + this.written);
    this.written += chunk.length;
    this.used = 0;
  }

  /** Writes the headers and padding into the scratch file and renames it to `path`. */
  async finish(path: string): Promise<void> {
    await this.flush();
    try {
      this.handle ??= await open(this.scratchPath, 'wx+');
      const h = this.handle;
      const primary = headerBytes(fileHeader(new Header()), 0);
      const table = objectsTableHeader(this.count).bytes(this.sum.sum);
      if (primary.length + table.length !== DATA_START) {
        throw new SimError('sim_internal', `the true-object headers take ${primary.length + table.length} bytes, not the ${DATA_START} kept for them`);
      }
      await writeAll(h, primary, 0);
      await writeAll(h, table, primary.length);
      const pad = padToBlock(this.written) - this.written;
      if (pad > 0) await writeAll(h, new Uint8Array(pad), DATA_START + this.written);
      await h.close();
      this.handle = undefined;
      await rename(this.scratchPath, path);
    } catch (error) {
      await this.abandon();
      throw error;
    }
  }

  /** Removes the scratch file after a failure. */
  async abandon(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    await rm(this.scratchPath, { force: true });
  }
}

/** Writes object `k` of a tile as a true-object row at `at`; returns the offset after it. */
function writeObject(v: DataView, at: number, tile: SkyTile, k: number): number {
  const id = objectId(tile, k);
  v.setInt32(at, Math.floor(id / 4294967296));
  v.setInt32(at + 4, id | 0); // the low word (setUint32 of it boxed a number per row)
  v.setFloat64(at + 8, tile.ra[k]);
  v.setFloat64(at + 16, tile.dec[k]);
  const type = tile.type[k];
  v.setUint8(at + 24, type);
  const mag = tile.mag;
  const m = k * 6;
  v.setFloat32(at + 25, mag[m]);
  v.setFloat32(at + 29, mag[m + 1]);
  v.setFloat32(at + 33, mag[m + 2]);
  v.setFloat32(at + 37, mag[m + 3]);
  v.setFloat32(at + 41, mag[m + 4]);
  v.setFloat32(at + 45, mag[m + 5]);
  v.setFloat32(at + 49, tile.reff[k]);
  v.setFloat32(at + 53, type === 0 ? 1 : tile.axisRatio[k]);
  v.setFloat32(at + 57, tile.angle[k]);
  return at + OBJECT_LAYOUT.rowBytes;
}
