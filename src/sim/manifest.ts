// survey.json: everything a survey holds, for the programs that turn it into processing
// database rows and for failure tests. Field names are snake_case, as the database's
// columns are. `readSurveyManifest` validates a file against the types below.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFECT_KINDS, type DefectKind, type DefectRecord } from './defects.ts';
import { SimError } from './errors.ts';
import { FILTERS, type FilterName } from './sky-model.ts';

/** The manifest's file name inside the survey directory. */
export const MANIFEST_FILE = 'survey.json';
/** The `format` value that marks a directory as a simulated survey. */
export const MANIFEST_FORMAT = 'ipp-sim-survey';
/** The manifest version this code writes and reads. */
export const MANIFEST_VERSION = 1;

/** The arguments the survey was made with (enough to make it again). */
export interface ManifestArguments {
  readonly exposures: number;
  readonly stacks: number;
  readonly ra: readonly [number, number];
  readonly dec: readonly [number, number];
  readonly seed: number;
  readonly filters: string;
  readonly density: number;
  readonly inject_defects: readonly { readonly kind: DefectKind; readonly count: number }[];
  /** Absent in surveys made before these could be chosen: then 100001 and 200001. */
  readonly first_exp_id?: number;
  readonly first_stack_id?: number;
}

/** A chip of an exposure, as written to the smf (chips left out by a defect are not listed). */
export interface ManifestChip {
  /** `XY01`..`XY76`: the class_id of rawImfile/chipProcessedImfile. */
  readonly class_id: string;
  /** IMAGEID of the chip header: 100 × exp_id + OTA number. */
  readonly image_id: number;
  /** SOURCEID of the chip header (with IMAGEID, it names the chip's image in DVO). */
  readonly source_id: number;
  /** Index of the chip's `XYnn.psf` table in the smf (its `XYnn.hdr` is one before). */
  readonly hdu: number;
  readonly n_detections: number;
  readonly n_spurious: number;
  readonly n_saturated: number;
  /** Stars with S/N above 20: the astrometric and photometric references (NASTRO). */
  readonly n_astrom: number;
  /** Sky level, counts per pixel, and its noise. */
  readonly sky: number;
  readonly sky_sigma: number;
  /** PSF FWHM (pixels, major and minor; arcsec, mean). */
  readonly fwhm_maj: number;
  readonly fwhm_min: number;
  readonly fwhm: number;
  readonly zpt_obs: number;
  readonly zpt_err: number;
  /** Astrometric scatter, arcsec (CERROR). */
  readonly astrom_sigma: number;
  readonly nx: number;
  readonly ny: number;
  /** The chip's tangent-plane WCS (FITS convention pixels). */
  readonly wcs: ManifestWcs;
}

/** A tangent-plane WCS. */
export interface ManifestWcs {
  readonly crval1: number;
  readonly crval2: number;
  readonly crpix1: number;
  readonly crpix2: number;
  readonly cd1_1: number;
  readonly cd1_2: number;
  readonly cd2_1: number;
  readonly cd2_2: number;
}

/** One exposure and its smf file. */
export interface ManifestExposure {
  readonly exp_id: number;
  /** GPC1-style name, `o5562g0001o`. */
  readonly exp_name: string;
  readonly filter: FilterName;
  /** The camera's filter ID, `r.00000`. */
  readonly filter_id: string;
  /** `MD` (medium-deep patch) or `3PI` (tiling the box). */
  readonly survey: 'MD' | '3PI';
  readonly object: string;
  readonly mjd_obs: number;
  readonly exptime: number;
  readonly airmass: number;
  /** Boresight, degrees, and position angle. */
  readonly ra: number;
  readonly dec: number;
  readonly pos_angle: number;
  /** Seeing FWHM, arcsec. */
  readonly fwhm: number;
  readonly zpt_obs: number;
  readonly zpt_err: number;
  /** Sky brightness, mag/arcsec², and the 5σ point-source limit. */
  readonly sky_mag: number;
  readonly limit_mag: number;
  /** SOURCEID of the smf headers. */
  readonly source_id: number;
  /** Paths relative to the survey directory. */
  readonly smf: string;
  readonly truth: string;
  readonly n_detections: number;
  readonly chips: readonly ManifestChip[];
}

/** One stack and its cmf file. */
export interface ManifestStack {
  readonly stack_id: number;
  /** `skycell.PPPP.SSS`, its projection cell and skycell numbers. */
  readonly skycell: string;
  readonly projection_id: number;
  readonly skycell_id: number;
  readonly tess_id: string;
  readonly filter: FilterName;
  readonly filter_id: string;
  readonly n_inputs: number;
  readonly input_exp_ids: readonly number[];
  /** Mean MJD and summed exposure time of the inputs. */
  readonly mjd_obs: number;
  readonly exptime: number;
  /** FPA.ZP (magnitude of 1 count per second) and its error. */
  readonly zpt: number;
  readonly zpt_err: number;
  readonly fwhm: number;
  readonly limit_mag: number;
  /** Skycell centre, degrees. */
  readonly ra: number;
  readonly dec: number;
  readonly image_id: number;
  readonly source_id: number;
  readonly cmf: string;
  readonly truth: string;
  readonly n_detections: number;
  readonly nx: number;
  readonly ny: number;
  readonly wcs: ManifestWcs;
}

/** The whole manifest. */
export interface SurveyManifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: typeof MANIFEST_VERSION;
  readonly seed: number;
  readonly arguments: ManifestArguments;
  readonly camera: {
    readonly name: 'GPC1';
    readonly pixel_scale: number;
    readonly chip_nx: number;
    readonly chip_ny: number;
    readonly chips: readonly string[];
  };
  readonly sky: {
    readonly md_patch: { readonly ra: number; readonly dec: number; readonly radius: number };
    readonly density: number;
    /** truth/objects.fits and its rows. */
    readonly objects: string;
    readonly n_objects: number;
  };
  readonly tessellation: { readonly tess_id: string; readonly skycell_scale: number; readonly skycell_pixels: number };
  readonly exposures: readonly ManifestExposure[];
  readonly stacks: readonly ManifestStack[];
  readonly defects: readonly DefectRecord[];
  readonly totals: {
    readonly detections: number;
    readonly stack_detections: number;
    readonly spurious: number;
    readonly bytes: number;
  };
}

// ---------------------------------------------------------------- validation

type Check = (value: unknown, path: string) => void;

function fail(path: string, what: string): never {
  throw new SimError('sim_bad_manifest', `${MANIFEST_FILE}: ${path}: ${what}; the survey is damaged or was written by another version; simulate it again`);
}

const num: Check = (v, p) => { if (typeof v !== 'number' || !Number.isFinite(v)) fail(p, `expected a number, found ${JSON.stringify(v)}`); };
const int: Check = (v, p) => { if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(p, `expected a whole number, found ${JSON.stringify(v)}`); };
const str: Check = (v, p) => { if (typeof v !== 'string') fail(p, `expected a string, found ${JSON.stringify(v)}`); };
const oneOf = (values: readonly string[]): Check => (v, p) => { if (typeof v !== 'string' || !values.includes(v)) fail(p, `expected one of ${values.join(', ')}, found ${JSON.stringify(v)}`); };
const arrayOf = (item: Check): Check => (v, p) => {
  if (!Array.isArray(v)) fail(p, `expected a list, found ${JSON.stringify(v)}`);
  v.forEach((x, i) => item(x, `${p}[${i}]`));
};
const pair: Check = (v, p) => {
  arrayOf(num)(v, p);
  if ((v as unknown[]).length !== 2) fail(p, 'expected two numbers');
};
function object(fields: Record<string, Check>, optional: Record<string, Check> = {}): Check {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, `expected an object, found ${JSON.stringify(v)}`);
    const o = v as Record<string, unknown>;
    for (const [k, check] of Object.entries(fields)) {
      if (!(k in o)) fail(`${p}.${k}`, 'missing');
      check(o[k], `${p}.${k}`);
    }
    for (const [k, check] of Object.entries(optional)) if (k in o) check(o[k], `${p}.${k}`);
  };
}

const wcs = object({ crval1: num, crval2: num, crpix1: num, crpix2: num, cd1_1: num, cd1_2: num, cd2_1: num, cd2_2: num });
const filter = oneOf(FILTERS);
const chip = object({
  class_id: str, image_id: int, source_id: int, hdu: int, n_detections: int, n_spurious: int, n_saturated: int, n_astrom: int,
  sky: num, sky_sigma: num, fwhm_maj: num, fwhm_min: num, fwhm: num, zpt_obs: num, zpt_err: num, astrom_sigma: num,
  nx: int, ny: int, wcs,
});
const exposure = object({
  exp_id: int, exp_name: str, filter, filter_id: str, survey: oneOf(['MD', '3PI']), object: str,
  mjd_obs: num, exptime: num, airmass: num, ra: num, dec: num, pos_angle: num, fwhm: num,
  zpt_obs: num, zpt_err: num, sky_mag: num, limit_mag: num, source_id: int, smf: str, truth: str,
  n_detections: int, chips: arrayOf(chip),
});
const stack = object({
  stack_id: int, skycell: str, projection_id: int, skycell_id: int, tess_id: str, filter, filter_id: str,
  n_inputs: int, input_exp_ids: arrayOf(int), mjd_obs: num, exptime: num, zpt: num, zpt_err: num, fwhm: num,
  limit_mag: num, ra: num, dec: num, image_id: int, source_id: int, cmf: str, truth: str, n_detections: int,
  nx: int, ny: int, wcs,
});
const defect = object(
  { kind: oneOf(DEFECT_KINDS), exp_id: int, exp_name: str, file: str },
  { chip: str, hdu: int, rows: arrayOf(int), keyword: str, value: str, idet: int, full_bytes: int, truncated_bytes: int },
);
const manifest = object({
  format: oneOf([MANIFEST_FORMAT]),
  version: (v, p) => { if (v !== MANIFEST_VERSION) fail(p, `this code reads version ${MANIFEST_VERSION}, the file is version ${JSON.stringify(v)}`); },
  seed: int,
  arguments: object({
    exposures: int, stacks: int, ra: pair, dec: pair, seed: int, filters: str, density: num,
    inject_defects: arrayOf(object({ kind: oneOf(DEFECT_KINDS), count: int })),
  }, { first_exp_id: int, first_stack_id: int }),
  camera: object({ name: oneOf(['GPC1']), pixel_scale: num, chip_nx: int, chip_ny: int, chips: arrayOf(str) }),
  sky: object({ md_patch: object({ ra: num, dec: num, radius: num }), density: num, objects: str, n_objects: int }),
  tessellation: object({ tess_id: str, skycell_scale: num, skycell_pixels: int }),
  exposures: arrayOf(exposure),
  stacks: arrayOf(stack),
  defects: arrayOf(defect),
  totals: object({ detections: int, stack_detections: int, spurious: int, bytes: int }),
});

/** Checks that a parsed JSON value is a manifest; throws `sim_bad_manifest` naming the first bad field. */
export function validateManifest(value: unknown): SurveyManifest {
  manifest(value, MANIFEST_FILE.replace('.json', ''));
  const m = value as SurveyManifest;
  const ids = new Set<number>();
  for (const [i, e] of m.exposures.entries()) {
    if (ids.has(e.exp_id)) fail(`survey.exposures[${i}].exp_id`, `exp_id ${e.exp_id} appears twice`);
    ids.add(e.exp_id);
  }
  for (const [i, s] of m.stacks.entries()) {
    for (const id of s.input_exp_ids) if (!ids.has(id)) fail(`survey.stacks[${i}].input_exp_ids`, `exp_id ${id} is not an exposure of the survey`);
  }
  return m;
}

/** Reads and validates `DIR/survey.json`. */
export async function readSurveyManifest(dir: string): Promise<SurveyManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SimError('sim_no_manifest', `${path}: cannot read the survey manifest (${(error as Error).message}); is ${dir} a survey made by "ipp sim survey"?`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SimError('sim_bad_manifest', `${path}: not valid JSON (${(error as Error).message}); simulate the survey again`, { cause: error });
  }
  return validateManifest(value);
}
