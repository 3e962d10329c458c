// The survey simulator: a true sky, GPC1 exposures and RINGS.V3 stacks, written as the
// pipeline's smf and cmf catalogues with ground truth and a manifest (survey.json).
export { simulateSurvey, assignDefects } from './survey.ts';
export type { SurveyResult } from './survey.ts';
export { resolveSurveyOptions, parseRange, SURVEY_DEFAULTS } from './survey-options.ts';
export type { SurveyOptions, SurveyConfig } from './survey-options.ts';
export { readSurveyManifest, validateManifest, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION } from './manifest.ts';
export type {
  SurveyManifest, ManifestExposure, ManifestChip, ManifestStack, ManifestWcs, ManifestArguments,
} from './manifest.ts';
export { DEFECT_KINDS, parseDefects } from './defects.ts';
export type { DefectKind, DefectRequest, DefectRecord } from './defects.ts';
export { SimError, badArgument } from './errors.ts';
export { CMF_PS1_V5, CMF_PS1_SV2, TRUTH_LAYOUT, FLAGS, FLAGS2, layoutColumns } from './cmf-layout.ts';
export type { CmfLayout, LayoutField } from './cmf-layout.ts';
export { SMF_EXTTYPE, TRUTH_EXTTYPE } from './smf-writer.ts';
export { CMF_EXTTYPE, STACK_CHIP } from './cmf-writer.ts';
export { CHIPS, CHIP_NX, CHIP_NY, PIXEL_SCALE, chipWcs } from './focal-plane.ts';
export type { Chip } from './focal-plane.ts';
export { TESS_ID, skycell, skycellAt, skycellName, parseSkycellName } from './tessellation.ts';
export type { Skycell } from './tessellation.ts';
export { FILTERS } from './sky-model.ts';
export type { FilterName } from './sky-model.ts';
export { pixelToSky, skyToPixel } from './wcs.ts';
export type { TanWcs } from './wcs.ts';
export { defaultSurveyLabel, recordSurveyInGpc1, surveyIdClashes } from './record-gpc1.ts';
export type { RecordOptions, RecordResult } from './record-gpc1.ts';
