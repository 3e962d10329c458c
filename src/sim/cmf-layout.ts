// The detection table layouts the simulator writes, as the original pipeline's psphot writes
// them (psModules/src/objects/pmSourceIO_CMF.c.in in ps-ipp/ipp-trunk-20250502; units from
// Ohana/src/libautocode/def/cmf-ps1-v5.d and cmf-ps1-sv2.d):
//
// - CMF_PS1_V5 (chip detections in smf files, 232-byte rows). The column set and types are
//   the .d file's; the order is the one psphot writes, with PEAK_FLUX_AS_MAG after DEC_PSF
//   (the .d file lists it before RA_PSF and says itself that in the files it sits between
//   DEC and SKY). IPP_IDET, FLAGS and FLAGS2 are unsigned 32-bit and N_FRAMES unsigned
//   16-bit, as psphot declares them.
// - CMF_PS1_SV2 (stack detections in cmf files, 208-byte rows): the one stack layout whose
//   .d file and psphot's column list agree (same columns, same order, PADDING2 before
//   N_FRAMES). The .d file's SKY_SIG is the column SKY_SIGMA in the files (its own
//   name map says so, and psphot writes SKY_SIGMA for every layout).
import { columnInfo, type ColumnInfo, type ColumnType } from '../table/index.ts';

/** Storage types of the detection columns. */
export type FieldType = 'u8' | 'u32' | 'i32' | 'i64' | 'f32' | 'f64' | 'u16' | 'i16';

/** One column of a detection layout. */
export interface LayoutField {
  readonly name: string;
  readonly type: FieldType;
  readonly unit?: string;
  /** Byte offset in the row. */
  readonly offset: number;
}

/** A detection table layout: its name (EXTTYPE), row size and columns. */
export interface CmfLayout {
  readonly name: string;
  readonly rowBytes: number;
  readonly fields: readonly LayoutField[];
  /** Byte offset of a column by name, −1 when the layout lacks it. */
  offset(name: string): number;
}

const SIZE: Record<FieldType, number> = { u8: 1, u32: 4, i32: 4, i64: 8, f32: 4, f64: 8, u16: 2, i16: 2 };
const MEMORY_TYPE: Record<FieldType, ColumnType> = {
  u8: 'uint8', u32: 'uint32', i32: 'int32', i64: 'int64', f32: 'float32', f64: 'float64', u16: 'uint16', i16: 'int16',
};

/** A layout from its columns in order: name, type, unit; offsets are summed. */
export function defineLayout(name: string, spec: readonly (readonly [string, FieldType, string?])[]): CmfLayout {
  let offset = 0;
  const fields = spec.map(([n, type, unit]) => {
    const f: LayoutField = { name: n, type, ...(unit ? { unit } : {}), offset };
    offset += SIZE[type];
    return f;
  });
  const byName = new Map(fields.map((f) => [f.name, f.offset]));
  return Object.freeze({ name, rowBytes: offset, fields: Object.freeze(fields), offset: (n: string) => byName.get(n) ?? -1 });
}

const PX = 'pixels';
const MAG = 'mags';
const CNT = 'counts';

/** Chip detections (smf `XYnn.psf` tables): 232-byte rows. */
export const CMF_PS1_V5: CmfLayout = defineLayout('CMF_PS1_V5', [
  ['IPP_IDET', 'u32'],
  ['X_PSF', 'f32', PX], ['Y_PSF', 'f32', PX], ['X_PSF_SIG', 'f32', PX], ['Y_PSF_SIG', 'f32', PX],
  ['POSANGLE', 'f32', 'degrees'], ['PLTSCALE', 'f32', 'arcsec/pixel'],
  ['PSF_INST_MAG', 'f32', MAG], ['PSF_INST_MAG_SIG', 'f32', MAG],
  ['PSF_INST_FLUX', 'f32', CNT], ['PSF_INST_FLUX_SIG', 'f32', CNT],
  ['AP_MAG', 'f32', MAG], ['AP_MAG_RAW', 'f32', MAG], ['AP_MAG_RADIUS', 'f32', PX],
  ['AP_FLUX', 'f32', CNT], ['AP_FLUX_SIG', 'f32', CNT], ['AP_NPIX', 'i32', PX],
  ['CAL_PSF_MAG', 'f32', MAG], ['CAL_PSF_MAG_SIG', 'f32', MAG],
  ['RA_PSF', 'f64', 'degrees'], ['DEC_PSF', 'f64', 'degrees'],
  ['PEAK_FLUX_AS_MAG', 'f32', MAG],
  ['SKY', 'f32', 'cnts/sec'], ['SKY_SIGMA', 'f32', 'cnts/sec'],
  ['PSF_CHISQ', 'f32'], ['CR_NSIGMA', 'f32'], ['EXT_NSIGMA', 'f32'],
  ['PSF_MAJOR', 'f32', PX], ['PSF_MINOR', 'f32', PX], ['PSF_THETA', 'f32', 'degrees'], ['PSF_CORE', 'f32', 'unitless'],
  ['PSF_FWHM_MAJ', 'f32', PX], ['PSF_FWHM_MIN', 'f32', PX],
  ['PSF_QF', 'f32'], ['PSF_QF_PERFECT', 'f32'], ['PSF_NDOF', 'i32'], ['PSF_NPIX', 'i32'],
  ['MOMENTS_XX', 'f32', 'pixels^2'], ['MOMENTS_XY', 'f32', 'pixels^2'], ['MOMENTS_YY', 'f32', 'pixels^2'],
  ['MOMENTS_M3C', 'f32', 'pixels^3'], ['MOMENTS_M3S', 'f32', 'pixels^3'],
  ['MOMENTS_M4C', 'f32', 'pixels^4'], ['MOMENTS_M4S', 'f32', 'pixels^4'],
  ['MOMENTS_R1', 'f32', PX], ['MOMENTS_RH', 'f32', 'pixels^1/2'],
  ['KRON_FLUX', 'f32', CNT], ['KRON_FLUX_ERR', 'f32', CNT], ['KRON_FLUX_INNER', 'f32', CNT], ['KRON_FLUX_OUTER', 'f32', CNT],
  ['SKY_LIMIT_RAD', 'f32'], ['SKY_LIMIT_FLUX', 'f32'], ['SKY_LIMIT_SLOPE', 'f32'],
  ['FLAGS', 'u32'], ['FLAGS2', 'u32'], ['N_FRAMES', 'u16'], ['PADDING', 'i16'],
]);

/** Stack detections (cmf `SkyChip.psf` tables): 208-byte rows. */
export const CMF_PS1_SV2: CmfLayout = defineLayout('CMF_PS1_SV2', [
  ['IPP_IDET', 'u32'],
  ['X_PSF', 'f32', PX], ['Y_PSF', 'f32', PX], ['X_PSF_SIG', 'f32', PX], ['Y_PSF_SIG', 'f32', PX],
  ['POSANGLE', 'f32', 'degrees'], ['PLTSCALE', 'f32', 'arcsec/pixel'],
  ['PSF_INST_MAG', 'f32', MAG], ['PSF_INST_MAG_SIG', 'f32', MAG],
  ['PSF_INST_FLUX', 'f32', CNT], ['PSF_INST_FLUX_SIG', 'f32', CNT],
  ['AP_MAG', 'f32', MAG], ['AP_MAG_RAW', 'f32', MAG], ['AP_MAG_RADIUS', 'f32', PX],
  ['AP_FLUX', 'f32', CNT], ['AP_FLUX_SIG', 'f32', CNT],
  ['CAL_PSF_MAG', 'f32', MAG], ['CAL_PSF_MAG_SIG', 'f32', MAG],
  ['RA_PSF', 'f64', 'degrees'], ['DEC_PSF', 'f64', 'degrees'],
  ['PEAK_FLUX_AS_MAG', 'f32', MAG],
  ['SKY', 'f32', 'cnts/sec'], ['SKY_SIGMA', 'f32', 'cnts/sec'],
  ['PSF_CHISQ', 'f32'], ['CR_NSIGMA', 'f32'], ['EXT_NSIGMA', 'f32'],
  ['PSF_MAJOR', 'f32', PX], ['PSF_MINOR', 'f32', PX], ['PSF_THETA', 'f32', 'degrees'],
  ['PSF_QF', 'f32'], ['PSF_QF_PERFECT', 'f32'], ['PSF_NDOF', 'i32'], ['PSF_NPIX', 'i32'],
  ['MOMENTS_XX', 'f32', 'pixels^2'], ['MOMENTS_XY', 'f32', 'pixels^2'], ['MOMENTS_YY', 'f32', 'pixels^2'],
  ['MOMENTS_M3C', 'f32', 'pixels^3'], ['MOMENTS_M3S', 'f32', 'pixels^3'],
  ['MOMENTS_M4C', 'f32', 'pixels^4'], ['MOMENTS_M4S', 'f32', 'pixels^4'],
  ['MOMENTS_R1', 'f32', PX], ['MOMENTS_RH', 'f32', 'pixels^1/2'],
  ['KRON_FLUX', 'f32', CNT], ['KRON_FLUX_ERR', 'f32', CNT], ['KRON_FLUX_INNER', 'f32', CNT], ['KRON_FLUX_OUTER', 'f32', CNT],
  ['FLAGS', 'u32'], ['FLAGS2', 'u32'], ['PADDING2', 'i32'], ['N_FRAMES', 'u16'], ['PADDING', 'i16'],
]);

/** The table model's column descriptions of a layout (unsigned columns go through TZERO). */
export function layoutColumns(l: CmfLayout): ColumnInfo[] {
  return l.fields.map((f) => columnInfo(f.name, MEMORY_TYPE[f.type], f.unit ? { unit: f.unit } : {}));
}

/** psphot's FLAGS bits (psModules/src/objects/pmSourceMasks.h), the ones the simulator sets. */
export const FLAGS = Object.freeze({
  PSFMODEL: 0x00000001,
  EXTMODEL: 0x00000002,
  FITTED: 0x00000004,
  FAIL: 0x00000008,
  POOR: 0x00000010,
  PSFSTAR: 0x00000040,
  SATSTAR: 0x00000080,
  DEFECT: 0x00000800,
  SATURATED: 0x00001000,
  CR_LIMIT: 0x00002000,
  EXT_LIMIT: 0x00004000,
  AP_MAGS: 0x00200000,
  EXTENDED_STATS: 0x01000000,
  LINEAR_FIT: 0x02000000,
  NONLINEAR_FIT: 0x04000000,
});

/** psphot's FLAGS2 bits the simulator sets. */
export const FLAGS2 = Object.freeze({
  PASS1_SRC: 0x00000080,
  HAS_BRIGHTER_NEIGHBOR: 0x00000100,
});

/**
 * The truth table beside each detection table: row r describes row r of the detections
 * (OBJ_ID −1 for a spurious detection, TRUE_MAG NaN then).
 */
export const TRUTH_LAYOUT: CmfLayout = defineLayout('SIM_TRUTH', [
  ['IPP_IDET', 'u32'], ['OBJ_ID', 'i64'], ['TRUE_MAG', 'f32', MAG],
]);
