// Which single-exposure chips went into a stack, as gpc1 records it: the stack's warps
// (stackInputSkyfile), each warp's exposure through its fake, camera and chip runs, and the
// chips the warp's skycell map lists for the stack's skycell (warpSkyCellMap). ippToPsps
// turns this into StackToImage.
import type { Queryable } from '../db/index.ts';
import { checkId } from './values.ts';

/** One warp of a stack: its exposure (null when the chain to it is broken) and its chips on the stack's skycell. */
export interface StackInputWarp {
  readonly warpId: number;
  readonly expId: number | null;
  /** class_ids mapped to the stack's skycell, sorted; a map entry `all` stands for every chip of the exposure that is not ignored. */
  readonly classIds: readonly string[];
}

/** A stack's skycell and its input warps, ordered by warp_id. */
export interface StackInputs {
  readonly stackId: number;
  readonly skycellId: string;
  readonly tessId: string;
  readonly warps: readonly StackInputWarp[];
}

/** What gpc1 records of a stack's inputs; undefined when there is no such stack. */
export async function stackInputs(db: Queryable, stackId: number): Promise<StackInputs | undefined> {
  const id = checkId(stackId, 'stack inputs: stack_id');
  const stack = await db.get<{ skycell_id: string; tess_id: string }>('SELECT skycell_id, tess_id FROM stackRun WHERE stack_id = ?', [id]);
  if (!stack) return undefined;
  // Left joins: a missing link shows as NULL, so the caller can say which one is missing.
  const rows = await db.all<{ warp_id: number; exp_id: number | null; class_id: string | null }>(
    `SELECT i.warp_id, c.exp_id, m.class_id
     FROM stackInputSkyfile i
     LEFT JOIN warpRun w ON w.warp_id = i.warp_id
     LEFT JOIN fakeRun f ON f.fake_id = w.fake_id
     LEFT JOIN camRun k ON k.cam_id = f.cam_id
     LEFT JOIN chipRun c ON c.chip_id = k.chip_id
     LEFT JOIN warpSkyCellMap m ON m.warp_id = i.warp_id AND m.skycell_id = ? AND m.tess_id = ?
     WHERE i.stack_id = ?
     ORDER BY i.warp_id, m.class_id`, [stack.skycell_id, stack.tess_id, id]);
  const byWarp = new Map<number, { expId: number | null; classIds: Set<string> }>();
  for (const r of rows) {
    const w = Number(r.warp_id);
    let entry = byWarp.get(w);
    if (!entry) byWarp.set(w, (entry = { expId: r.exp_id === null ? null : Number(r.exp_id), classIds: new Set() }));
    if (r.class_id !== null) entry.classIds.add(r.class_id);
  }
  const warps: StackInputWarp[] = [];
  for (const [warpId, { expId, classIds }] of byWarp) {
    if (classIds.has('all') && expId !== null) {
      classIds.delete('all');
      const chips = await db.all<{ class_id: string }>('SELECT class_id FROM rawImfile WHERE exp_id = ? AND ignored = 0', [expId]);
      for (const c of chips) classIds.add(c.class_id);
    }
    warps.push({ warpId, expId, classIds: [...classIds].sort() });
  }
  return { stackId: id, skycellId: stack.skycell_id, tessId: stack.tess_id, warps };
}
