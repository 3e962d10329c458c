// The DVO table layouts (PS1_V5), as column descriptions the fits room writes directly.
// Names, types and order follow the original autocode definitions (`average-ps1-v5.d`,
// `measure-ps1-v5.d`, `secfilt-ps1-v5.d`, `image-ps1-v5.d`, `SkyRegion.d`, `photcode.d`):
// C `double` → float64, `float` → float32, `int` → int32, `unsigned int`/`uint32_t` → uint32,
// `short` → int16, `unsigned short` → uint16, `uint64_t` → uint64 (stored with TZERO), a
// single `char`/`gfbyte` → uint8, `char[N]` → a string of width N. Two departures, both
// forced by FITS tools: the Measure layout's second `PADDING` column is named `PADDING2`
// (duplicate names make readers pick one silently), and the Image layout's `e_time` TZERO is
// stored as int32 Unix seconds (its 4 bytes are what makes the row 360 bytes).
import { columnInfo, type ColumnInfo, type ColumnType } from '../table/index.ts';

type Field = readonly [name: string, type: ColumnType | `char[${number}]`, unit?: string, shape?: readonly number[]];

function layout(fields: readonly Field[]): readonly ColumnInfo[] {
  return Object.freeze(fields.map(([name, type, unit, shape]) => {
    const m = /^char\[(\d+)\]$/.exec(type);
    if (m) return columnInfo(name, 'string', { width: Number(m[1]) });
    return columnInfo(name, type as ColumnType, { ...(unit ? { unit } : {}), ...(shape ? { shape } : {}) });
  }));
}

/** EXTNAME of each DVO table. */
export const EXTNAME = Object.freeze({
  average: 'DVO_AVERAGE_PS1_V5',
  measure: 'DVO_MEASURE_PS1_V5',
  secfilt: 'DVO_SECFILT_PS1_V5',
  image: 'DVO_IMAGE_PS1_V5',
  skyRegion: 'SKY_REGION',
  photcode: 'DVO_PHOTCODE_RAW',
  imageIndex: 'DVO_IMAGE_INDEX',
});

/** Average (`.cpt`): one row per object, 192 bytes. */
export const AVERAGE_COLUMNS = layout([
  ['RA', 'float64', 'deg'], ['DEC', 'float64', 'deg'], ['RA_ERR', 'float32', 'arcsec'], ['DEC_ERR', 'float32', 'arcsec'],
  ['U_RA', 'float32', 'arcsec/yr'], ['U_DEC', 'float32', 'arcsec/yr'], ['V_RA_ERR', 'float32', 'arcsec/yr'], ['V_DEC_ERR', 'float32', 'arcsec/yr'],
  ['PAR', 'float32', 'arcsec'], ['PAR_ERR', 'float32', 'arcsec'],
  ['RA_STK', 'float64', 'deg'], ['DEC_STK', 'float64', 'deg'], ['RA_STK_ERR', 'float32', 'arcsec'], ['DEC_STK_ERR', 'float32', 'arcsec'],
  ['CHISQ_POS', 'float32'], ['CHISQ_PM', 'float32'], ['CHISQ_PLX', 'float32'],
  ['MEAN_EPOCH', 'int32', 's'], ['TIME_RANGE', 'int32', 's'],
  ['PSF_QF', 'float32'], ['PSF_QF_PERF', 'float32'], ['STARGAL_SEP', 'float32'],
  ['NUMBER_POS', 'uint16'], ['NMEASURE', 'uint16'], ['NMISSING', 'uint16'], ['NLENSING', 'uint16'], ['NLENSOBJ', 'uint16'], ['NGALPHOT', 'uint16'],
  ['OFF_MEASURE', 'int32'], ['OFF_MISSING', 'int32'], ['OFF_LENSING', 'int32'], ['OFF_LENSOBJ', 'int32'], ['OFF_STARPAR', 'int32'], ['OFF_GALPHOT', 'int32'],
  ['REF_COLOR_BLUE', 'float32'], ['REF_COLOR_RED', 'float32'],
  ['TESS_ID', 'uint8'], ['SKYCELL_ID', 'uint8'], ['PROJECTION_ID', 'int16'],
  ['NSTARPAR', 'int16'], ['NWARP_OK', 'int16'],
  ['FLAGS', 'uint32'], ['PHOTFLAGS_U', 'uint32'], ['PHOTFLAGS_L', 'uint32'],
  ['OBJ_ID', 'uint32'], ['CAT_ID', 'uint32'], ['EXT_ID', 'uint64'],
  ['U_RA_GAL', 'float32'], ['U_DEC_GAL', 'float32'],
]);

/** Measure (`.cpm`): one row per detection, 240 bytes. */
export const MEASURE_COLUMNS = layout([
  ['RA', 'float64', 'deg'], ['DEC', 'float64', 'deg'],
  ['MAG', 'float32', 'mag'], ['MAG_ERR', 'float32', 'mag'], ['M_APER', 'float32', 'mag'], ['M_APER_ERR', 'float32', 'mag'],
  ['M_KRON', 'float32', 'mag'], ['M_KRON_ERR', 'float32', 'mag'], ['M_CAL', 'float32', 'mag'], ['MAG_CAL_ERR', 'float32', 'mag'],
  ['M_TIME', 'float32', 'mag'],
  ['FLUX_PSF', 'float32', 'count/s'], ['FLUX_PSF_ERR', 'float32', 'count/s'], ['FLUX_KRON', 'float32', 'count/s'],
  ['FLUX_KRON_ERR', 'float32', 'count/s'], ['FLUX_AP', 'float32', 'count/s'], ['FLUX_AP_ERR', 'float32', 'count/s'],
  ['AIRMASS', 'float32'], ['AZ', 'float32', 'deg'],
  ['X_CCD', 'float32', 'pix'], ['Y_CCD', 'float32', 'pix'], ['X_FIX', 'float32', 'pix'], ['Y_FIX', 'float32', 'pix'],
  ['X_OFF_KH', 'float32', 'pix'], ['Y_OFF_KH', 'float32', 'pix'], ['X_OFF_DCR', 'float32', 'pix'], ['Y_OFF_DCR', 'float32', 'pix'],
  ['X_OFF_CAM', 'float32', 'pix'], ['Y_OFF_CAM', 'float32', 'pix'],
  ['M_FLAT', 'float32', 'mag'], ['PADDING', 'int32'],
  ['SKY_FLUX', 'float32', 'count/s'], ['SKY_FLUX_ERR', 'float32', 'count/s'],
  ['TIME', 'int32', 's'], ['AVE_REF', 'uint32'],
  ['DET_ID', 'uint32'], ['OBJ_ID', 'uint32'], ['CAT_ID', 'uint32'], ['EXT_ID', 'uint64'], ['IMAGE_ID', 'uint32'],
  ['PSF_QF', 'float32'], ['PSF_QF_PEFECT', 'float32'], ['PSF_CHISQ', 'float32'],
  ['PSF_NDOF', 'int32'], ['PSF_NPIX', 'int32'], ['PHOT_FLAGS2', 'int32'], ['EXT_NSIGMA', 'float32'],
  ['FWHM_MAJOR', 'int16'], ['FWHM_MINOR', 'int16'], ['PSF_THETA', 'int16'],
  ['MXX', 'int16'], ['MXY', 'int16'], ['MYY', 'int16'],
  ['TIME_MSEC', 'uint16', 'ms'], ['PHOTCODE', 'uint16'],
  ['X_CCD_ERR', 'int16'], ['Y_CCD_ERR', 'int16'], ['POS_SYS_ERR', 'int16'],
  ['POSANGLE', 'int16'], ['PLTSCALE', 'float32', 'arcsec/pix'],
  ['DB_FLAGS', 'uint32'], ['PHOT_FLAGS', 'uint32'], ['PADDING2', 'int32'],
]);

/** SecFilt (`.cps`): per object, one row per SEC photcode (filter), 176 bytes. */
export const SECFILT_COLUMNS = layout([
  ['MAG', 'float32', 'mag'], ['MAG_ERR', 'float32', 'mag'], ['MAG_AP', 'float32', 'mag'], ['MAG_AP_ERR', 'float32', 'mag'],
  ['MAG_AP_STDEV', 'float32', 'mag'], ['MAG_KRON', 'float32', 'mag'], ['MAG_KRON_ERR', 'float32', 'mag'], ['MAG_KRON_STDEV', 'float32', 'mag'],
  ['PSF_QF_MAX', 'float32'], ['PSF_QF_PERF_MAX', 'float32'],
  ['MAG_STDEV', 'float32', 'mag'], ['MAG_MIN', 'float32', 'mag'], ['MAG_MAX', 'float32', 'mag'], ['MAG_CHI', 'float32'],
  ['NCODE', 'int16'], ['NUSED', 'int16'], ['NUSED_KRON', 'int16'], ['NUSED_AP', 'int16'],
  ['FLAGS', 'uint32'],
  ['MAG_PSF_STK', 'float32', 'mag'], ['FLUX_PSF_STK', 'float32'], ['FLUX_PSF_STK_ERR', 'float32'],
  ['MAG_KRON_STK', 'float32', 'mag'], ['FLUX_KRON_STK', 'float32'], ['FLUX_KRON_STK_ERR', 'float32'],
  ['MAG_AP_STK', 'float32', 'mag'], ['FLUX_AP_STK', 'float32'], ['FLUX_AP_STK_ERR', 'float32'],
  ['NSTACK', 'int16'], ['NSTACK_DET', 'int16'],
  ['STACK_PRIMARY_OFF', 'int32'], ['STACK_BEST_OFF', 'int32'],
  ['MAG_PSF_WRP', 'float32', 'mag'], ['FLUX_PSF_WRP', 'float32'], ['FLUX_PSF_WRP_ERR', 'float32'], ['FLUX_PSF_WRP_STD', 'float32'],
  ['MAG_KRON_WRP', 'float32', 'mag'], ['FLUX_KRON_WRP', 'float32'], ['FLUX_KRON_WRP_ERR', 'float32'], ['FLUX_KRON_WRP_STD', 'float32'],
  ['MAG_AP_WRP', 'float32', 'mag'], ['FLUX_AP_WRP', 'float32'], ['FLUX_AP_WRP_ERR', 'float32'], ['FLUX_AP_WRP_STD', 'float32'],
  ['NUSED_WRP', 'int16'], ['NUSED_KRON_WRP', 'int16'], ['NUSED_AP_WRP', 'int16'],
  ['NWARP', 'int16'], ['NWARP_GOOD', 'int16'], ['UBERCAL_DIST', 'int16'],
]);

/**
 * The SecFilt columns an ingest sets (and the four of the first 64 bytes it leaves alone), in
 * file order: SecFilt rows made in memory hold only these (80 of 176 bytes; the others keep
 * their defaults, written from the defaults row). The first 64 bytes are at the same offsets
 * as in the full row.
 */
export const SECFILT_SET_COLUMNS: readonly ColumnInfo[] = Object.freeze(SECFILT_COLUMNS.filter((c, i) =>
  i < SECFILT_COLUMNS.findIndex((x) => x.name === 'FLAGS') || ['MAG_PSF_STK', 'FLUX_PSF_STK', 'FLUX_PSF_STK_ERR', 'NSTACK', 'NSTACK_DET'].includes(c.name)));

/** Image (`Images.dat`): one row per chip or stack image, 360 bytes. */
export const IMAGE_COLUMNS = layout([
  ['CRVAL1', 'float64', 'deg'], ['CRVAL2', 'float64', 'deg'], ['CRPIX1', 'float32'], ['CRPIX2', 'float32'],
  ['CDELT1', 'float32', 'deg'], ['CDELT2', 'float32', 'deg'],
  ['PC1_1', 'float32'], ['PC1_2', 'float32'], ['PC2_1', 'float32'], ['PC2_2', 'float32'],
  ['POLYTERMS', 'float32', undefined, [2, 7]], ['CTYPE', 'char[15]'], ['NPOLYTERMS', 'uint8'],
  ['TZERO', 'int32', 's'], ['NSTAR', 'uint32'], ['SECZ', 'float32'], ['NX', 'uint16'], ['NY', 'uint16'],
  ['APMIFIT', 'float32', 'mag'], ['DAPMIFIT', 'float32', 'mag'], ['MCAL', 'float32', 'mag'], ['DMCAL', 'float32', 'mag'],
  ['XM', 'int16'], ['PHOTCODE', 'int16'], ['EXPTIME', 'float32', 's'], ['ST', 'float32'], ['LAT', 'float32', 'deg'],
  ['RA_CENTER', 'float32', 'deg'], ['DEC_CENTER', 'float32', 'deg'], ['RADIUS', 'float32', 'deg'],
  ['REF_COLOR_BLUE', 'float32'], ['REF_COLOR_RED', 'float32'],
  ['NAME', 'char[117]'],
  ['DETECTION_LIMIT', 'uint8'], ['SATURATION_LIMIT', 'uint8'], ['CERROR', 'uint8'], ['FWHM_X', 'uint8'], ['FWHM_Y', 'uint8'],
  ['TRATE', 'uint8'], ['CCDNUM', 'uint8'],
  ['FLAGS', 'uint32'], ['IMAGE_ID', 'uint32'], ['PARENT_ID', 'uint32'], ['EXTERN_ID', 'uint32'], ['SOURCE_ID', 'uint16'],
  ['NLINK_ASTROM', 'int16'], ['NLINK_PHOTOM', 'int16'], ['UBERCAL_DIST', 'int16'],
  ['XPIX_SYS_ERR', 'float32'], ['YPIX_SYS_ERR', 'float32'], ['MAG_SYS_ERR', 'float32'],
  ['N_FIT_ASTROM', 'int16'], ['N_FIT_PHOTOM', 'int16'],
  ['PHOTOM_MAP_ID', 'uint32'], ['ASTROM_MAP_ID', 'uint32'],
]);

/** SkyRegion (`SkyTable.fits`): one row per node of the sky partition, 56 bytes. */
export const SKY_REGION_COLUMNS = layout([
  ['R_MIN', 'float32', 'deg'], ['R_MAX', 'float32', 'deg'], ['D_MIN', 'float32', 'deg'], ['D_MAX', 'float32', 'deg'],
  ['CHILD_S', 'int32'], ['CHILD_E', 'int32'], ['PARENT', 'int32'], ['INDEX', 'int32'],
  ['DEPTH', 'uint8'], ['CHILD', 'uint8'], ['TABLE', 'uint8'], ['NAME', 'char[18]'],
  ['HOST_FLAGS', 'uint8'], ['HOST_ID', 'uint8'], ['BACKUP_ID', 'uint8'],
]);

/** PhotCode (`Photcodes.dat`): one row per photcode, 112 bytes. */
export const PHOTCODE_COLUMNS = layout([
  ['CODE', 'uint16'], ['NAME', 'char[32]'], ['TYPE', 'uint8'], ['DUMMY', 'char[3]'],
  ['C_LAM', 'int16', 'mmag'], ['C_LAM_ERR', 'int16', 'mmag'], ['X_ERR', 'int16', 'mmag'], ['K', 'float32'],
  ['C1', 'int32'], ['C2', 'int32'], ['EQUIV', 'int32'], ['NC', 'int32'], ['X', 'float32', undefined, [4]],
  ['ASTROM_ERR_SYS', 'float32', 'arcsec'], ['ASTROM_ERR_SCALE', 'float32'], ['ASTROM_ERR_MAG_SCALE', 'float32'],
  ['ASTROM_POOR_MASK', 'uint32'], ['ASTROM_BAD_MASK', 'uint32'],
  ['PHOTOM_ERR_SYS', 'float32', 'mag'], ['PHOTOM_POOR_MASK', 'uint32'], ['PHOTOM_BAD_MASK', 'uint32'],
]);

/**
 * Our addition, the second table of every `.cpm`: where each image's measures lie in the
 * region's Measure table (measures are appended grouped by image, so one run per image per
 * ingest), so that a look-up by image reads only those rows.
 */
export const IMAGE_INDEX_COLUMNS = layout([
  ['IMAGE_ID', 'uint32'], ['FIRST', 'int32'], ['COUNT', 'int32'],
]);

/** Bytes per row of a layout as FITS stores it. */
export function rowBytes(columns: readonly ColumnInfo[]): number {
  const size: Record<string, number> = {
    uint8: 1, int8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8,
  };
  let n = 0;
  for (const c of columns) {
    const per = c.type === 'string' ? c.width ?? 0 : size[c.type];
    n += per * c.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}
