// A DVO database is a directory: `SkyTable.fits` (the partition; its primary header also
// holds the database settings), `Photcodes.dat`, `Images.dat`, the region files in one
// directory per declination band, and `locks/`.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/index.ts';
import { Header } from '../fits/index.ts';
import { DvoError } from './errors.ts';
import { withLocks, type LockOptions } from './lock.ts';
import { defaultPhotcodes, readPhotcodes, writePhotcodes, type Photcode, type PhotcodeTable } from './photcodes.ts';
import { buildSkyTable, DensityGrid, readSkyTable, writeSkyTable, type SkyTable } from './sky-table.ts';

/** An open DVO database: its partition, photcodes and settings. */
export interface DvoDatabase {
  readonly dir: string;
  readonly sky: SkyTable;
  readonly photcodes: PhotcodeTable;
  /** Region tables are tile-compressed. */
  readonly compress: boolean;
  /** Filters (SEC photcodes) per object in `.cps`. */
  readonly nsec: number;
}

/** Options of {@link createDvo}. */
export interface CreateOptions {
  /** Expected objects; default: `floorDensity` everywhere. */
  readonly density?: DensityGrid;
  /** Objects per square degree assumed where the density says less (default 100). */
  readonly floorDensity?: number;
  /** Most objects a region is sized for (default 200,000). */
  readonly maxObjects?: number;
  /** Tile-compress region tables (default false). */
  readonly compress?: boolean;
  readonly photcodes?: readonly Photcode[];
  readonly log?: Pick<Logger, 'warn'>;
  /** How long to wait for another process creating the database (its lock). */
  readonly lock?: LockOptions;
}

/** The path of `SkyTable.fits`. */
export function skyTablePath(dir: string): string {
  return join(dir, 'SkyTable.fits');
}

/** The path of `Photcodes.dat`. */
export function photcodesPath(dir: string): string {
  return join(dir, 'Photcodes.dat');
}

/** True when `dir` holds a DVO database. */
export async function dvoExists(dir: string): Promise<boolean> {
  return access(skyTablePath(dir)).then(() => true, () => false);
}

/** Opens a database; throws `dvo_no_database` when the directory holds none. */
export async function openDvo(dir: string): Promise<DvoDatabase> {
  if (!await dvoExists(dir)) {
    throw new DvoError('dvo_no_database', `${dir} is not a DVO database (no SkyTable.fits); create one with ipp dvo addstar --db ${dir} CATALOGUE...`);
  }
  const { sky, header } = await readSkyTable(skyTablePath(dir));
  const photcodes = await readPhotcodes(photcodesPath(dir));
  return { dir, sky, photcodes, compress: header.get('COMPRESS') === true, nsec: photcodes.secCodes.length };
}

/** Creates a database (or opens the one another process created first). */
export async function createDvo(dir: string, options: CreateOptions = {}): Promise<DvoDatabase> {
  // Options are checked before anything is made on disk.
  if (options.maxObjects !== undefined && !(Number.isInteger(options.maxObjects) && options.maxObjects >= 1)) {
    throw new DvoError('dvo_bad_option', `the most objects per region (${options.maxObjects}) must be a whole number of at least 1`);
  }
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new DvoError('dvo_cannot_create', `cannot create the DVO database directory ${dir} (${(cause as Error).message}); give --db a directory you can write, not a file`, { cause });
  }
  return withLocks(dir, ['create'], 'exclusive', { ...(options.log ? { log: options.log } : {}), ...options.lock }, async () => {
    if (await dvoExists(dir)) return openDvo(dir);
    const density = (options.density ?? new DensityGrid()).floor(options.floorDensity ?? 100);
    const sky = buildSkyTable(density, options.maxObjects !== undefined ? { maxObjects: options.maxObjects } : {});
    for (const band of new Set(sky.regions.map((r) => r.name.split('/')[0]))) await mkdir(join(dir, band), { recursive: true });
    await writePhotcodes(photcodesPath(dir), options.photcodes ?? defaultPhotcodes());
    // SkyTable last: its presence is what makes the directory a database.
    await writeSkyTable(skyTablePath(dir), sky, new Header().set('COMPRESS', options.compress ?? false, 'region tables are tile-compressed'));
    return openDvo(dir);
  });
}
