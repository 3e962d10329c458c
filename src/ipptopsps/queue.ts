// `ipp queue`: what there is to load for a config. The master list of exposures and stacks is
// gpc1's addRun (full, merged into the config's DVO); objects are the DVO regions holding
// data. Each item is filed under the grid box holding its position. Items published since the
// config's epoch and items that failed max_attempts times are left out; failed items below
// that are queued again. Unique keys make a rerun add nothing.
import { resolve } from 'node:path';
import type { Logger } from '../common/index.ts';
import type { Queryable, SqlValue } from '../db/index.ts';
import { listRegions, regionPath } from '../dvo/index.ts';
import { openDvo } from '../dvo/index.ts';
import { parseSkycellName, skycell } from '../sim/index.ts';
import type { BatchType, LoadingConfig } from './configs.ts';
import { IppToPspsError } from './errors.ts';
import { ensureGrid, insertIgnoring, type Grid } from './grid.ts';

/** One thing that could be loaded, before it is filed in a box. */
export interface QueueCandidate {
  readonly batchType: BatchType;
  /** cam_id (P2), stack_id (ST), DVO region INDEX (OB). */
  readonly sourceId: number;
  readonly ra: number;
  readonly dec: number;
  /** The smf (P2), cmf (ST) or region cpt file (OB). */
  readonly path: string;
  readonly expId?: number;
  /** Bytes of the region's files (OB); the loader weighs DVO look-ups with it. */
  readonly bytes?: number;
}

/** Counts of one batch type in one queue pass. */
export interface QueueTypeSummary {
  /** Items the sources list. */
  candidates: number;
  /** New queue rows. */
  added: number;
  /** Failed items below max_attempts, and items loaded before the epoch, put back to pending. */
  requeued: number;
  /** Left out: published since the epoch. */
  published: number;
  /** Left out: failed max_attempts times. */
  failedOut: number;
  /** Left out: outside the config's region. */
  outside: number;
  /** Pending after the pass. */
  pending: number;
}

/** What one queue pass did for one config. */
export interface QueueSummary {
  readonly config: string;
  readonly stripes: number;
  readonly boxes: number;
  readonly types: Partial<Record<BatchType, QueueTypeSummary>>;
}

/** Where the queue reads from. */
export interface QueueSources {
  /** gpc1 (addRun, camRun, skycalRun...). */
  readonly gpc1: Queryable;
  /** Relative DVO locations are taken from here (default: the current directory). */
  readonly cwd?: string;
  readonly log?: Logger;
  readonly now?: Date;
}

/** The DVO directory a config names, absolute. */
export function dvoDirOf(config: LoadingConfig, cwd?: string): string {
  return resolve(cwd ?? process.cwd(), config.dvo_location);
}

/** True for a catalogue path that is a Nebulous key (`neb:...`): the loader resolves it on its own host (LoaderOptions.resolvePath). */
export function isNebulousKey(path: string): boolean {
  return path.startsWith('neb:');
}

// A catalogue's path: a local one, or a Nebulous key.
const catalogueOf = (pathBase: unknown, uri: unknown, ext: '.smf' | '.cmf'): string | undefined => {
  const local = (v: unknown): string | undefined => {
    if (typeof v !== 'string' || v === '') return undefined;
    const p = v.replace(/^file:\/\//, '');
    return isNebulousKey(p) || !/^[a-z]+:\/\//i.test(p) ? p : undefined;
  };
  for (const v of [local(uri), local(pathBase)]) if (v && /\.(smf|cmf|fits?)$/i.test(v)) return v;
  const base = local(pathBase);
  return base ? `${base}${ext}` : undefined;
};

// addRun rows merged into this config's DVO: full, not faulted, not bad, and naming the
// config's DVO by label (addRun.dvodb) or by directory (addProcessedExp.dvodb_path).
function mergedInto(config: LoadingConfig, cwd?: string): { where: string; params: SqlValue[] } {
  const params: SqlValue[] = [config.dvo_label, dvoDirOf(config, cwd), config.dvo_location];
  let where = `a.state = 'full' AND ap.fault = 0 AND ap.quality = 0 AND (a.dvodb = ? OR ap.dvodb_path = ? OR ap.dvodb_path = ?)`;
  if (config.gpc1_label) { where += ' AND a.label = ?'; params.push(config.gpc1_label); }
  return { where, params };
}

/** The P2 candidates: camera runs whose smf is merged into the config's DVO. */
export async function exposureCandidates(gpc1: Queryable, config: LoadingConfig, cwd?: string): Promise<QueueCandidate[]> {
  const m = mergedInto(config, cwd);
  const rows = await gpc1.all(
    `SELECT DISTINCT c.cam_id, cp.path_base, cp.uri, ch.exp_id, r.ra, r.decl
     FROM addRun a JOIN addProcessedExp ap ON ap.add_id = a.add_id
     JOIN camRun c ON c.cam_id = a.stage_id
     JOIN camProcessedExp cp ON cp.cam_id = c.cam_id
     JOIN chipRun ch ON ch.chip_id = c.chip_id
     JOIN rawExp r ON r.exp_id = ch.exp_id
     WHERE a.stage = 'camera' AND cp.fault = 0 AND cp.quality = 0 AND ${m.where}
     ORDER BY c.cam_id`, m.params);
  const out: QueueCandidate[] = [];
  for (const r of rows) {
    const path = catalogueOf(r.path_base, r.uri, '.smf');
    if (!path || r.ra === null || r.decl === null) continue;
    out.push({ batchType: 'P2', sourceId: Number(r.cam_id), ra: Number(r.ra), dec: Number(r.decl), path, expId: Number(r.exp_id) });
  }
  return out;
}

/** The ST candidates: stacks whose skycal cmf is merged into the config's DVO, at their skycell's centre. */
export async function stackCandidates(gpc1: Queryable, config: LoadingConfig, cwd?: string): Promise<QueueCandidate[]> {
  const m = mergedInto(config, cwd);
  const rows = await gpc1.all(
    `SELECT DISTINCT s.stack_id, s.skycell_id, sr.path_base, sr.uri
     FROM addRun a JOIN addProcessedExp ap ON ap.add_id = a.add_id
     JOIN skycalRun k ON k.skycal_id = a.stage_id
     JOIN skycalResult sr ON sr.skycal_id = k.skycal_id
     JOIN stackRun s ON s.stack_id = k.stack_id
     WHERE a.stage = 'skycal' AND sr.fault = 0 AND sr.quality = 0 AND ${m.where}
     ORDER BY s.stack_id`, m.params);
  const out: QueueCandidate[] = [];
  for (const r of rows) {
    const path = catalogueOf(r.path_base, r.uri, '.cmf');
    const cell = parseSkycellName(String(r.skycell_id));
    if (!path || !cell) continue;
    const centre = skycell(cell.projectionId, cell.skycellId);
    out.push({ batchType: 'ST', sourceId: Number(r.stack_id), ra: centre.ra, dec: centre.dec, path });
  }
  return out;
}

/** The OB candidates: DVO regions holding objects that overlap the config's region. */
export async function regionCandidates(config: LoadingConfig, cwd?: string): Promise<QueueCandidate[]> {
  const dir = dvoDirOf(config, cwd);
  const regions = await listRegions(dir, { raMin: config.min_ra, raMax: config.max_ra, decMin: config.min_dec, decMax: config.max_dec });
  const dvo = await openDvo(dir);
  const byIndex = new Map(dvo.sky.regions.map((r) => [r.index, r]));
  const out: QueueCandidate[] = [];
  for (const r of regions) {
    if (r.objects <= 0) continue;
    // Regions can be far larger than the config's region: a region is filed at the centre of
    // its part inside the config's region, so that it lands in exactly one box of the grid.
    const raMin = Math.max(r.raMin, config.min_ra);
    const raMax = Math.min(r.raMax >= r.raMin ? r.raMax : 360, config.max_ra);
    const decMin = Math.max(r.decMin, config.min_dec);
    const decMax = Math.min(r.decMax, config.max_dec);
    if (raMin >= raMax || decMin >= decMax) continue;
    out.push({
      batchType: 'OB', sourceId: r.index, ra: (raMin + raMax) / 2, dec: (decMin + decMax) / 2,
      path: regionPath(dir, byIndex.get(r.index)!, 'cpt'), bytes: r.bytes,
    });
  }
  return out;
}

/**
 * One queue pass for a config: the grid, then for each of its batch types the candidates
 * filed into boxes (new ones added, failed ones below max_attempts and ones loaded before
 * the epoch put back to pending).
 */
export async function queueConfig(db: Queryable, config: LoadingConfig, sources: QueueSources): Promise<QueueSummary> {
  const now = (sources.now ?? new Date()).toISOString();
  const grid = await ensureGrid(db, config);
  const types: Partial<Record<BatchType, QueueTypeSummary>> = {};
  for (const type of config.batch_types) {
    let candidates: QueueCandidate[];
    try {
      candidates = type === 'P2' ? await exposureCandidates(sources.gpc1, config, sources.cwd)
        : type === 'ST' ? await stackCandidates(sources.gpc1, config, sources.cwd)
          : await regionCandidates(config, sources.cwd);
    } catch (cause) {
      if (cause instanceof IppToPspsError) throw cause;
      throw new IppToPspsError('queue_source_failed', `config ${config.name}: cannot list the ${type} items (${type === 'OB' ? `DVO ${dvoDirOf(config, sources.cwd)}` : 'gpc1'}): ${(cause as Error).message}`, { cause });
    }
    types[type] = await fileItems(db, config, grid, type, candidates, now);
    sources.log?.info(`config ${config.name} ${type}: ${candidates.length} listed, ${types[type]!.added} added, ${types[type]!.requeued} re-queued, ${types[type]!.pending} pending`);
  }
  return { config: config.name, stripes: grid.stripes, boxes: grid.boxes.length, types };
}

async function fileItems(
  db: Queryable, config: LoadingConfig, grid: Grid, type: BatchType, candidates: readonly QueueCandidate[], now: string,
): Promise<QueueTypeSummary> {
  const s: QueueTypeSummary = { candidates: candidates.length, added: 0, requeued: 0, published: 0, failedOut: 0, outside: 0, pending: 0 };
  // Loaded since the epoch: the last good batch of each source (its processing succeeded and
  // it reached the datastore, or publishing was off).
  const published = new Set((await db.all<{ source_id: number }>(
    `SELECT DISTINCT source_id FROM batch WHERE config = ? AND batch_type = ? AND created_at >= ? AND processed = 'succeeded'
       AND (loaded_to_datastore = 'succeeded' OR loaded_to_datastore IS NULL) AND purged = 0 AND test = 0`,
    [config.name, type, config.epoch])).map((r) => Number(r.source_id)));
  const existing = new Map((await db.all<{ source_id: number; state: string; attempts: number }>(
    'SELECT source_id, state, attempts FROM queue_item WHERE config = ? AND batch_type = ?', [config.name, type]))
    .map((r) => [Number(r.source_id), r]));
  const rows: SqlValue[][] = [];
  for (const c of candidates) {
    const box = grid.boxAt(c.ra, c.dec);
    const old = existing.get(c.sourceId);
    if (!box) { s.outside++; continue; }
    if (old) {
      if (old.state === 'failed' && Number(old.attempts) >= config.max_attempts) s.failedOut++;
      else if (published.has(c.sourceId) && old.state !== 'pending' && old.state !== 'claimed') s.published++;
      continue;
    }
    if (published.has(c.sourceId)) { s.published++; continue; }
    rows.push([config.name, type, c.sourceId, box.boxId, c.ra, c.dec, c.path, c.expId ?? null, c.bytes ?? null, 'pending', now, now]);
  }
  s.added = await insertIgnoring(db, 'queue_item',
    ['config', 'batch_type', 'source_id', 'box_id', 'ra', 'dec', 'path', 'exp_id', 'bytes', 'state', 'queued_at', 'updated_at'],
    '(config, batch_type, source_id)', rows);
  // Failed below the limit: try again. Done before the epoch (the archive was reset): load again.
  const failed = await db.run(
    `UPDATE queue_item SET state = 'pending', updated_at = ? WHERE config = ? AND batch_type = ? AND state = 'failed' AND attempts < ?`,
    [now, config.name, type, config.max_attempts]);
  const stale = await db.run(
    `UPDATE queue_item SET state = 'pending', attempts = 0, reason = NULL, batch_id = NULL, updated_at = ?
     WHERE config = ? AND batch_type = ? AND state = 'done'
       AND NOT EXISTS (SELECT 1 FROM batch b WHERE b.config = queue_item.config AND b.batch_type = queue_item.batch_type
         AND b.source_id = queue_item.source_id AND b.created_at >= ? AND b.processed = 'succeeded' AND b.purged = 0 AND b.test = 0
         AND (b.loaded_to_datastore = 'succeeded' OR b.loaded_to_datastore IS NULL))`,
    [now, config.name, type, config.epoch]);
  s.requeued = failed.changes + stale.changes;
  const pending = await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM queue_item WHERE config = ? AND batch_type = ? AND state = 'pending'`, [config.name, type]);
  s.pending = Number(pending?.n ?? 0);
  return s;
}
