// ObjectThin stubs: one row per object that a batch's detections refer to, with only what
// the objID itself says (its zone). The archive keeps an existing row (merge "keep"); the
// OB batch of the object's region brings the full row later (merge "replace").
import type { TableSchema } from '../../votable/index.ts';
import { TablePart, type ArchiveTable, type RowOrigin } from './archive-table.ts';
import { randomFromIds } from './convert.ts';
import { wordsOf } from './id-set.ts';

const ZONE_FACTOR = 10_000_000_000_000n;

/** The distinct objIDs of a table's `objID` column, sorted (zonesOf needs them so). */
export function distinctObjIds(t: ArchiveTable | undefined): BigInt64Array {
  if (!t) return new BigInt64Array(0);
  const k = t.schema.columns.findIndex((c) => c.name === 'objID');
  if (k < 0) return new BigInt64Array(0);
  const n = t.parts.reduce((m, p) => m + p.rows, 0);
  const all = new BigInt64Array(n);
  let at = 0;
  for (const p of t.parts) {
    all.set(p.values(k) as BigInt64Array, at);
    at += p.rows;
  }
  all.sort();
  let m = 0;
  for (let i = 0; i < n; i++) if (i === 0 || all[i] !== all[i - 1]) all[m++] = all[i];
  return all.subarray(0, m);
}

const INT64_MAX = 0x7fffffffffffffffn;

/**
 * objID div 10^13 (BigInt division, truncating): one division per run of IDs in one zone
 * (sorted IDs make one run per zone), the run found by comparing words with its bounds.
 */
export function zonesOf(ids: BigInt64Array): Float64Array {
  const n = ids.length;
  const zone = new Float64Array(n);
  const w = wordsOf(ids);
  for (let i = 0; i < n;) {
    const id = ids[i];
    const z = id / ZONE_FACTOR;
    // The first ID past this zone (truncation puts (−10^13, 10^13) in zone 0).
    const bound = id >= 0n ? (z + 1n) * ZONE_FACTOR : z === 0n ? ZONE_FACTOR : z * ZONE_FACTOR + 1n;
    // Past the largest int64 there is no upper bound.
    const open = bound > INT64_MAX;
    const bh = open ? 0 : Number(BigInt.asIntN(32, bound >> 32n));
    const bl = open ? 0 : Number(BigInt.asUintN(32, bound));
    const ih = w[2 * i + 1];
    const il = w[2 * i] >>> 0;
    // Every ID in [id, bound) has the quotient z (the IDs need not be sorted for this to hold).
    let j = i + 1;
    for (; j < n; j++) {
      const h = w[2 * j + 1];
      const l = w[2 * j] >>> 0;
      if (h < ih || (h === ih && l < il) || (!open && (h > bh || (h === bh && l >= bl)))) break;
    }
    zone.fill(Number(z), i, j);
    i = j;
  }
  return zone;
}

/** The ObjectThin stub table for the objects `from` refers to. */
export function objectStubs(s: TableSchema, from: ArchiveTable | undefined, origin: RowOrigin, surveyId: number): ArchiveTable {
  const ids = distinctObjIds(from);
  const n = ids.length;
  const part = new TablePart(s, n, { ...origin, describeRow: (i) => `objID ${ids[i]}` });
  part.putBig('objID', ids);
  const zone = zonesOf(ids);
  part.put('zoneID', zone);
  const rnd = new Float64Array(n);
  randomFromIds(ids, rnd);
  part.put('randomID', rnd);
  part.fill('surveyID', surveyId);
  return { schema: s, parts: n > 0 ? [part] : [] };
}
