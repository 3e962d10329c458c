// One sky region's files and how they are replaced. A region is three FITS files next to each
// other, `<name>.cpt` (Average), `<name>.cps` (SecFilt) and `<name>.cpm` (Measure, then our
// image index). An update writes complete new files under `.new` names, then a journal
// (`<name>.commit`, itself written under a temporary name and renamed), then renames each new
// file over the old one and removes the journal. A process killed at any point leaves either
// the old three files (no journal: stray `.new` files are removed) or a journal whose renames
// are finished by the next process that locks the region, so a region is always read as one
// consistent generation (the DVOGEN keyword of all three files).
import { randomUUID } from 'node:crypto';
import { readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { SkyRegion } from './sky-table.ts';
import { DvoError } from './errors.ts';

/** The kinds of region file. */
export const REGION_EXTENSIONS = ['cpt', 'cps', 'cpm'] as const;

/** One kind of region file. */
export type RegionExtension = (typeof REGION_EXTENSIONS)[number];

/** The path of one of a region's files. */
export function regionPath(db: string, region: Pick<SkyRegion, 'name'>, ext: RegionExtension): string {
  return join(db, `${region.name}.${ext}`);
}

function commitPath(db: string, region: Pick<SkyRegion, 'name'>): string {
  return join(db, `${region.name}.commit`);
}

/**
 * Whether a region holds data, from which of its files are there (`present`, in
 * REGION_EXTENSIONS order): none is a region without data, all is one with data, and some of
 * them a damaged region (`dvo_damaged`, naming what is missing).
 */
export function regionHasData(region: Pick<SkyRegion, 'name'>, paths: readonly string[], present: readonly boolean[]): boolean {
  if (!present.some(Boolean)) return false;
  if (!present.every(Boolean)) {
    const missing = paths.filter((_, i) => !present[i]);
    throw new DvoError('dvo_damaged', `region ${region.name}: ${missing.join(', ')} missing while the other files exist; restore them from a backup or run ipp dvo verify`);
  }
  return true;
}

/**
 * Finishes or undoes an interrupted update of a region (call with the region locked): a
 * journal means every new file was complete, so the renames are finished; without one, new
 * files are leftovers of an update that never committed and are removed. Returns what it did.
 */
export async function recoverRegion(db: string, region: Pick<SkyRegion, 'name'>): Promise<'none' | 'rolled-forward' | 'cleaned'> {
  const journal = commitPath(db, region);
  let text: string | undefined;
  try {
    text = await readFile(journal, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== undefined) {
    let files: string[];
    try {
      files = (JSON.parse(text) as { files: string[] }).files;
    } catch (cause) {
      throw new DvoError('dvo_damaged', `${journal}: the commit journal is unreadable; remove it and the region's .new files, then re-run the last addstar on this region`, { cause });
    }
    for (const ext of files) {
      const target = join(db, `${region.name}.${ext}`);
      await rename(`${target}.new`, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
    await unlink(journal).catch(() => {});
    return 'rolled-forward';
  }
  const dir = join(db, dirname(region.name));
  const stem = `${basename(region.name)}.`;
  let cleaned = false;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    // `.new` files and the writer's temporaries of them (`.<name>.cpt.new.<id>.tmp`).
    if ((name.startsWith(stem) && (name.endsWith('.new') || name.endsWith('.tmp'))) || (name.startsWith(`.${stem}`) && name.endsWith('.tmp'))) {
      await rm(join(dir, name), { force: true });
      cleaned = true;
    }
  }
  return cleaned ? 'cleaned' : 'none';
}

/** Test hooks of {@link commitRegion}: points where a test stops the process. */
export interface CommitHooks {
  readonly beforeJournal?: () => Promise<void>;
  readonly afterJournal?: () => Promise<void>;
}

/**
 * Commits new files of a region: each `<name>.<ext>.new` must already be complete. Writes the
 * journal, renames the new files into place, removes the journal.
 */
export async function commitRegion(db: string, region: Pick<SkyRegion, 'name'>, exts: readonly RegionExtension[], hooks: CommitHooks = {}): Promise<void> {
  await hooks.beforeJournal?.();
  const journal = commitPath(db, region);
  const tmp = `${journal}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(tmp, JSON.stringify({ files: exts, time: new Date().toISOString(), pid: process.pid }));
  await rename(tmp, journal);
  await hooks.afterJournal?.();
  for (const ext of exts) {
    const target = regionPath(db, region, ext);
    await rename(`${target}.new`, target);
  }
  await unlink(journal);
}
