// The sky grid of a config: RA stripes `box_size` wide across the config's region, each cut
// into boxes `box_size` high. Loaders reserve stripes and work box by box; the queue files
// every item under the box holding its position.
import type { Queryable, SqlValue } from '../db/index.ts';
import type { LoadingConfig } from './configs.ts';

/** A box of the grid, with its stripe. */
export interface GridBox {
  readonly boxId: number;
  readonly stripeId: number;
  readonly raMin: number;
  readonly raMax: number;
  readonly decMin: number;
  readonly decMax: number;
}

/** The grid of a config as stored: its stripes and boxes, and where a position falls. */
export interface Grid {
  readonly stripes: number;
  readonly boxes: readonly GridBox[];
  /** The box holding (ra, dec), or undefined outside the config's region. */
  boxAt(ra: number, dec: number): GridBox | undefined;
}

// Edges are computed from indices, never accumulated, so that every program derives the same
// numbers and the stored ra_min keys match.
function edges(min: number, max: number, step: number): number[] {
  const n = Math.max(1, Math.ceil((max - min) / step - 1e-9));
  const out: number[] = [];
  for (let i = 0; i <= n; i++) out.push(i === n ? max : min + i * step);
  return out;
}

/**
 * Makes the stripes and boxes of a config exist (idempotent) and drops those of an earlier
 * grid (box_size or limits since changed), moving their items into the new boxes. Returns the
 * grid.
 */
export async function ensureGrid(q: Queryable, config: LoadingConfig): Promise<Grid> {
  const ra = edges(config.min_ra, config.max_ra, config.box_size);
  const dec = edges(config.min_dec, config.max_dec, config.box_size);
  const stripeRows: SqlValue[][] = [];
  for (let i = 0; i + 1 < ra.length; i++) stripeRows.push([config.name, ra[i]!, ra[i + 1]!]);
  await insertIgnoring(q, 'stripe', ['config', 'ra_min', 'ra_max'], '(config, ra_min)', stripeRows);
  const storedStripes = new Map((await q.all<{ stripe_id: number; ra_min: number; ra_max: number }>(
    'SELECT stripe_id, ra_min, ra_max FROM stripe WHERE config = ?', [config.name])).map((r) => [Number(r.ra_min), r]));
  const stripeIds: number[] = [];
  for (let i = 0; i + 1 < ra.length; i++) {
    const row = storedStripes.get(ra[i]!)!;
    if (Number(row.ra_max) !== ra[i + 1]) await q.run('UPDATE stripe SET ra_max = ? WHERE stripe_id = ?', [ra[i + 1]!, row.stripe_id]);
    stripeIds.push(Number(row.stripe_id));
  }
  const boxRows: SqlValue[][] = [];
  for (let i = 0; i + 1 < ra.length; i++) {
    for (let j = 0; j + 1 < dec.length; j++) boxRows.push([config.name, stripeIds[i]!, ra[i]!, ra[i + 1]!, dec[j]!, dec[j + 1]!]);
  }
  await insertIgnoring(q, 'box', ['config', 'stripe_id', 'ra_min', 'ra_max', 'dec_min', 'dec_max'], '(config, ra_min, dec_min)', boxRows);
  const storedBoxes = new Map((await q.all<{ box_id: number; stripe_id: number; ra_min: number; ra_max: number; dec_min: number; dec_max: number }>(
    'SELECT box_id, stripe_id, ra_min, ra_max, dec_min, dec_max FROM box WHERE config = ?', [config.name])).map((r) => [`${Number(r.ra_min)} ${Number(r.dec_min)}`, r]));
  const boxes: GridBox[] = [];
  for (let i = 0; i + 1 < ra.length; i++) {
    for (let j = 0; j + 1 < dec.length; j++) {
      const row = storedBoxes.get(`${ra[i]!} ${dec[j]!}`)!;
      if (Number(row.stripe_id) !== stripeIds[i] || Number(row.ra_max) !== ra[i + 1] || Number(row.dec_max) !== dec[j + 1]) {
        await q.run('UPDATE box SET stripe_id = ?, ra_max = ?, dec_max = ? WHERE box_id = ?', [stripeIds[i]!, ra[i + 1]!, dec[j + 1]!, row.box_id]);
      }
      boxes.push({ boxId: Number(row.box_id), stripeId: stripeIds[i]!, raMin: ra[i]!, raMax: ra[i + 1]!, decMin: dec[j]!, decMax: dec[j + 1]! });
    }
  }
  const grid = makeGrid(config, ra, dec, stripeIds.length, boxes);
  await dropStaleGrid(q, config, grid);
  return grid;
}

function makeGrid(config: LoadingConfig, ra: number[], dec: number[], stripes: number, boxes: GridBox[]): Grid {
  const nDec = dec.length - 1;
  const index = (v: number, e: number[], min: number): number => {
    let i = Math.min(e.length - 2, Math.floor((v - min) / config.box_size));
    while (i > 0 && v < e[i]!) i--;
    while (i < e.length - 2 && v >= e[i + 1]!) i++;
    return i;
  };
  return {
    stripes,
    boxes,
    boxAt(r, d) {
      if (!(r >= config.min_ra && r <= config.max_ra && d >= config.min_dec && d <= config.max_dec)) return undefined;
      return boxes[index(r, ra, config.min_ra) * nDec + index(d, dec, config.min_dec)];
    },
  };
}

async function dropStaleGrid(q: Queryable, config: LoadingConfig, grid: Grid): Promise<void> {
  const keep = new Set(grid.boxes.map((b) => b.boxId));
  const stale = (await q.all<{ box_id: number }>('SELECT box_id FROM box WHERE config = ?', [config.name]))
    .map((r) => Number(r.box_id)).filter((id) => !keep.has(id));
  if (stale.length === 0) return;
  const items = await q.all<{ item_id: number; ra: number | null; dec: number | null }>(
    `SELECT item_id, ra, dec FROM queue_item WHERE box_id IN (${stale.map(() => '?').join(', ')})`, stale);
  for (const item of items) {
    const box = item.ra === null || item.dec === null ? undefined : grid.boxAt(Number(item.ra), Number(item.dec));
    await q.run('UPDATE queue_item SET box_id = ? WHERE item_id = ?', [box?.boxId ?? null, item.item_id]);
  }
  await q.run(`DELETE FROM box WHERE box_id IN (${stale.map(() => '?').join(', ')})`, stale);
  const stripeIds = new Set(grid.boxes.map((b) => b.stripeId));
  const stripes = (await q.all<{ stripe_id: number }>('SELECT stripe_id FROM stripe WHERE config = ?', [config.name]))
    .map((r) => Number(r.stripe_id)).filter((id) => !stripeIds.has(id));
  if (stripes.length) await q.run(`DELETE FROM stripe WHERE stripe_id IN (${stripes.map(() => '?').join(', ')})`, stripes);
}

/** Inserts rows in chunks, skipping those whose unique key exists; returns how many were new. */
export async function insertIgnoring(q: Queryable, table: string, columns: readonly string[], conflict: string, rows: readonly (readonly SqlValue[])[]): Promise<number> {
  let added = 0;
  const per = Math.max(1, Math.floor(900 / columns.length));
  for (let at = 0; at < rows.length; at += per) {
    const chunk = rows.slice(at, at + per);
    const marks = `(${columns.map(() => '?').join(', ')})`;
    const { changes } = await q.run(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => marks).join(', ')} ON CONFLICT ${conflict} DO NOTHING`, chunk.flat());
    added += changes;
  }
  return added;
}
