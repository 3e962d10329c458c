// The two ways of the guide to find the DVO IDs of an image's detections: the per-image
// look-up in the DVO files (dvograbber), and the look-up in a scratch database that a box
// of DVO was pre-ingested into (exportBox).
import { grabImages, grabFromScratch, type GrabOptions } from '../../dvo/index.ts';
import type { Database } from '../../db/index.ts';
import type { DetectionIds, DetectionLookup } from './types.ts';

/** Reinterprets a BigUint64Array's words as signed (IDs stay below 2^63 in practice). */
function signed(a: BigUint64Array): BigInt64Array {
  return new BigInt64Array(a.buffer, a.byteOffset, a.length);
}

/**
 * Look-ups in the DVO files themselves (`grabImage`): the regions around the image are read
 * through their per-image index. Its `many` reads each region once for several images.
 */
export function perImageLookup(dvoDir: string, options: GrabOptions = {}): DetectionLookup {
  const many = async (imageIds: readonly number[]): Promise<DetectionIds[]> => {
    if (imageIds.length === 0) return [];
    // Only the three columns the batches use: the rest of a measure is not decoded.
    const grabbed = await grabImages(dvoDir, imageIds, { ...options, columns: ['DET_ID', 'OBJ_ID', 'IPP_IDET'] });
    return grabbed.map((g) => ({
      detectId: signed(g.rows.columns[0].values as BigUint64Array),
      objId: signed(g.rows.columns[1].values as BigUint64Array),
      ippIdet: g.rows.columns[2].values as Uint32Array,
    }));
  };
  const one = async (imageId: number): Promise<DetectionIds> => (await many([imageId]))[0];
  return Object.assign(one, { many });
}

/**
 * Look-ups in a scratch database holding a pre-ingested box of DVO (`exportBox`). An image
 * the box does not hold gives no rows (its detections are then unknown to the batch).
 */
export function scratchLookup(scratch: Database): DetectionLookup {
  return async (imageId: number): Promise<DetectionIds> => {
    const rows = await grabFromScratch(scratch, imageId);
    const n = rows.length;
    const ippIdet = new Uint32Array(n);
    const detectId = new BigInt64Array(n);
    const objId = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      ippIdet[i] = Number(r.ipp_idet);
      detectId[i] = BigInt(r.det_id);
      objId[i] = BigInt(r.obj_id);
    }
    return { ippIdet, detectId, objId };
  };
}
