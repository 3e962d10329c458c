// Association quality against a known truth (for the tests and benchmarks with simulated
// surveys): every detection's true object is known from the simulator's truth tables; every
// measure's DVO object from the database. Completeness counts, for each true object, the
// detections that went to the DVO object holding most of them; purity counts, for each DVO
// object, the measures of its main true object (a spurious detection is a true object of its
// own). Both are weighted by detections. "Isolated stars" are stars with no other detected
// true object within `isolation` arcsec.
import { FitsFile, fitsTable } from '../fits/index.ts';
import { collectTable } from '../table/index.ts';
import { openDvo } from './database.ts';
import { EXTNAME } from './layouts.ts';
import { MatchGrid } from './match-grid.ts';
import { regionPath } from './region-files.ts';
import { regionsWithData } from './region-reader.ts';

/** One detection table's truth: the image it became and where its truth rows are. */
export interface TruthSource {
  readonly imageId: number;
  readonly truthFile: string;
  /** EXTNAME of its truth table (rows: IPP_IDET, OBJ_ID; OBJ_ID −1 for spurious). */
  readonly table: string;
}

/** What to compare. */
export interface TruthCheckInput {
  readonly dvo: string;
  /** The true objects (OBJ_ID, RA, DEC, TYPE; TYPE 0 = star). */
  readonly objectsFile: string;
  readonly sources: readonly TruthSource[];
  /** Arcsec free of other objects around an isolated star (default 5). */
  readonly isolation?: number;
  /** A sky patch to report on its own (the dense field): centre and radius, degrees. */
  readonly patch?: { readonly ra: number; readonly dec: number; readonly radius: number };
}

/** Figures for one subset of the sky. */
export interface AssociationFigures {
  readonly trueObjects: number;
  readonly dvoObjects: number;
  readonly detections: number;
  readonly completeness: number;
  readonly purity: number;
  /** True objects whose detections went to more than one DVO object. */
  readonly split: number;
  /** DVO objects holding detections of more than one true object. */
  readonly merged: number;
}

/** Figures for all objects, isolated stars, and the patch. */
export interface TruthCheck {
  readonly all: AssociationFigures;
  readonly isolatedStars: AssociationFigures;
  readonly patch?: AssociationFigures;
  /** Measures whose detection has no truth row (should be 0). */
  readonly unknown: number;
}

function sepDeg(ra1: number, dec1: number, ra2: number, dec2: number): number {
  let d = ra1 - ra2;
  if (d > 180) d -= 360; else if (d < -180) d += 360;
  const x = d * Math.cos(dec2 * Math.PI / 180);
  const y = dec1 - dec2;
  return Math.sqrt(x * x + y * y);
}

/** Compares a DVO database with the truth; see the file comment. */
export async function checkAssociation(input: TruthCheckInput): Promise<TruthCheck> {
  // True objects.
  const of = await FitsFile.open(input.objectsFile);
  const objects = await collectTable(fitsTable(of, 1), { columns: ['OBJ_ID', 'RA', 'DEC', 'TYPE'] }).finally(() => of.close());
  const [oid, ora, odec, otype] = objects.columns.map((c) => c.values) as [BigInt64Array, Float64Array, Float64Array, Uint8Array];
  const nTrue = objects.rowCount;
  const indexOf = new Map<bigint, number>();
  for (let i = 0; i < nTrue; i++) indexOf.set(oid[i], i);
  const iso = (input.isolation ?? 5) / 3600;
  const grid = new MatchGrid(iso, nTrue);
  for (let i = 0; i < nTrue; i++) grid.add(ora[i], odec[i]);
  const isolatedStar = new Uint8Array(nTrue);
  for (let i = 0; i < nTrue; i++) {
    if (otype[i] !== 0) continue;
    grid.claim(i, 1);
    isolatedStar[i] = grid.nearest(ora[i], odec[i], iso, 1) < 0 ? 1 : 0;
    grid.claim(i, 0);
  }
  // Each image's truth: true object index by IPP_IDET (−1 spurious, −2 no truth).
  const truthOf = new Map<number, Int32Array>();
  const byFile = new Map<string, TruthSource[]>();
  for (const s of input.sources) byFile.set(s.truthFile, [...(byFile.get(s.truthFile) ?? []), s]);
  for (const [file, sources] of byFile) {
    const f = await FitsFile.open(file);
    try {
      for (const s of sources) {
        const t = await collectTable(fitsTable(f, s.table), { columns: ['IPP_IDET', 'OBJ_ID'] });
        const [idet, obj] = t.columns.map((c) => c.values) as [Uint32Array, BigInt64Array];
        let max = 0;
        for (let i = 0; i < t.rowCount; i++) if (idet[i] > max) max = idet[i];
        const map = new Int32Array(max + 1).fill(-2);
        for (let i = 0; i < t.rowCount; i++) map[idet[i]] = obj[i] < 0n ? -1 : indexOf.get(obj[i]) ?? -1;
        truthOf.set(s.imageId, map);
      }
    } finally {
      await f.close();
    }
  }
  // Every measure: its true object and its DVO object.
  const db = await openDvo(input.dvo);
  const T: number[] = [];
  const D: number[] = [];
  const dRa: number[] = [];
  const dDec: number[] = [];
  let unknown = 0;
  let spurious = nTrue;
  let base = 0;
  const have = await regionsWithData(input.dvo, db.sky.regions);
  for (const r of db.sky.regions) {
    if (!have.has(r.name)) continue;
    const cpt = await FitsFile.open(regionPath(input.dvo, r, 'cpt'));
    const ave = await collectTable(fitsTable(cpt, EXTNAME.average), { columns: ['RA', 'DEC'] }).finally(() => cpt.close());
    const [ara, adec] = ave.columns.map((c) => c.values) as [Float64Array, Float64Array];
    for (let i = 0; i < ave.rowCount; i++) { dRa.push(ara[i]); dDec.push(adec[i]); }
    const cpm = await FitsFile.open(regionPath(input.dvo, r, 'cpm'));
    try {
      for await (const b of fitsTable(cpm, EXTNAME.measure).batches({ columns: ['EXT_ID', 'AVE_REF'] })) {
        const [ext, ref] = b.columns.map((c) => c.values) as [BigUint64Array, Uint32Array];
        for (let i = 0; i < b.rowCount; i++) {
          const image = Number(ext[i] >> 32n);
          const idet = Number(ext[i] & 0xffffffffn);
          const map = truthOf.get(image);
          const t = map && idet < map.length ? map[idet] : -2;
          if (t === -2) { unknown++; continue; }
          T.push(t === -1 ? spurious++ : t);
          D.push(base + ref[i]);
        }
      }
    } finally {
      await cpm.close();
    }
    base += ave.rowCount;
  }
  const nD = base;
  const figures = (trueIn: (t: number) => boolean, dvoIn: (d: number) => boolean): AssociationFigures => {
    // Pairs (T, D) with counts, by sorting keys T·nD + D.
    const keys = new Float64Array(T.length);
    for (let k = 0; k < T.length; k++) keys[k] = T[k] * nD + D[k];
    keys.sort();
    const bestOfT = new Map<number, number>();
    const totalOfT = new Map<number, number>();
    const partsOfT = new Map<number, number>();
    const bestOfD = new Map<number, number>();
    const totalOfD = new Map<number, number>();
    const partsOfD = new Map<number, number>();
    const mainOfD = new Map<number, number>();
    for (let k = 0; k < keys.length;) {
      let j = k;
      while (j < keys.length && keys[j] === keys[k]) j++;
      const n = j - k;
      const t = Math.floor(keys[k] / nD);
      const d = keys[k] - t * nD;
      totalOfT.set(t, (totalOfT.get(t) ?? 0) + n);
      partsOfT.set(t, (partsOfT.get(t) ?? 0) + 1);
      if (n > (bestOfT.get(t) ?? 0)) bestOfT.set(t, n);
      totalOfD.set(d, (totalOfD.get(d) ?? 0) + n);
      partsOfD.set(d, (partsOfD.get(d) ?? 0) + 1);
      if (n > (bestOfD.get(d) ?? 0)) { bestOfD.set(d, n); mainOfD.set(d, t); }
      k = j;
    }
    let cNum = 0; let cDen = 0; let split = 0; let trueObjects = 0;
    for (const [t, total] of totalOfT) {
      if (!trueIn(t)) continue;
      trueObjects++;
      cNum += bestOfT.get(t)!;
      cDen += total;
      if (partsOfT.get(t)! > 1) split++;
    }
    let pNum = 0; let pDen = 0; let merged = 0; let dvoObjects = 0;
    for (const [d, total] of totalOfD) {
      if (!dvoIn(d) || !trueIn(mainOfD.get(d)!)) continue;
      dvoObjects++;
      pNum += bestOfD.get(d)!;
      pDen += total;
      if (partsOfD.get(d)! > 1) merged++;
    }
    return { trueObjects, dvoObjects, detections: cDen, completeness: cDen ? cNum / cDen : 1, purity: pDen ? pNum / pDen : 1, split, merged };
  };
  const all = figures(() => true, () => true);
  const isolatedStars = figures((t) => t < nTrue && isolatedStar[t] === 1, () => true);
  const p = input.patch;
  const patch = p ? figures((t) => t < nTrue && sepDeg(ora[t], odec[t], p.ra, p.dec) <= p.radius, (d) => sepDeg(dRa[d], dDec[d], p.ra, p.dec) <= p.radius) : undefined;
  return { all, isolatedStars, ...(patch ? { patch } : {}), unknown };
}
