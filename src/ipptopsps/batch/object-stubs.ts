// ObjectThin stubs: one row per object that a batch's detections refer to, with only what
// the objID itself says (its zone). The archive keeps an existing row (merge "keep"); the
// OB batch of the object's region brings the full row later (merge "replace").
import type { TableSchema } from '../../votable/index.ts';
import { TablePart, type ArchiveTable, type RowOrigin } from './archive-table.ts';
import { randomFromIds } from './convert.ts';

const ZONE_FACTOR = 10_000_000_000_000n;

/** The distinct objIDs of a table's `objID` column, sorted. */
export function distinctObjIds(t: ArchiveTable | undefined): BigInt64Array {
  if (!t) return new BigInt64Array(0);
  const k = t.schema.columns.findIndex((c) => c.name === 'objID');
  if (k < 0) return new BigInt64Array(0);
  const n = t.parts.reduce((m, p) => m + p.rows, 0);
  const all = new BigInt64Array(n);
  let at = 0;
  for (const p of t.parts) {
    all.set(p.columns[k] as BigInt64Array, at);
    at += p.rows;
  }
  all.sort();
  let m = 0;
  for (let i = 0; i < n; i++) if (i === 0 || all[i] !== all[i - 1]) all[m++] = all[i];
  return all.slice(0, m);
}

/** The ObjectThin stub table for the objects `from` refers to. */
export function objectStubs(s: TableSchema, from: ArchiveTable | undefined, origin: RowOrigin, surveyId: number): ArchiveTable {
  const ids = distinctObjIds(from);
  const n = ids.length;
  const part = new TablePart(s, n, { ...origin, describeRow: (i) => `objID ${ids[i]}` });
  part.putBig('objID', ids);
  const zone = new Float64Array(n);
  for (let i = 0; i < n; i++) zone[i] = Number(ids[i] / ZONE_FACTOR);
  part.put('zoneID', zone);
  const rnd = new Float64Array(n);
  randomFromIds(ids, rnd);
  part.put('randomID', rnd);
  part.fill('surveyID', surveyId);
  return { schema: s, parts: n > 0 ? [part] : [] };
}
