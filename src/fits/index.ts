// FITS: headers, binary tables (read, write, checksums), tile-compressed tables.
export { FitsError, NotFitsError, describeLocation } from './errors.ts';
export type { FitsLocation } from './errors.ts';
export { Header, parseHeader, parseCard, formatCard, findEndCard, findHeaderEnd, padToBlock, BLOCK, CARD } from './header.ts';
export type { Card, HeaderValue } from './header.ts';
export { parseTform, formatTform } from './tform.ts';
export type { Tform, TformCode, FixedCode } from './tform.ts';
export { parseColumnDefs, columnDefsFromInfos, addColumnCards } from './column-defs.ts';
export type { FitsColumnDef } from './column-defs.ts';
export { decodeRows, encodeRows } from './bintable-codec.ts';
export {
  Checksum, addSums, encodeChecksum, decodeChecksum, reduceSum, rotateSum, setChecksums, sumWords, verifyChecksums,
} from './checksum.ts';
export { FitsFile, headerParams, isStructuralKeyword } from './fits-file.ts';
export type { HduInfo, HduKind } from './fits-file.ts';
export { scanHdus, scannedColumnDefs, LazyHeader } from './header-scan.ts';
export type { ScannedHdu } from './header-scan.ts';
export { writeFits, primaryHeader, bintableHeader } from './fits-writer.ts';
export type { FitsHduInput, WriteFitsOptions } from './fits-writer.ts';
export { verifyFits } from './verify.ts';
export type { VerifyReport, VerifyProblem, VerifyOptions } from './verify.ts';
export { fitsTable } from './open-table.ts';
export { fitsRawRows } from './csv-rows.ts';
export {
  readCompressedTable, writeCompressedFits, writeCompressedTableHdu, COMPRESSION_CHOICES,
} from './compress/index.ts';
export type { CompressOptions, CompressedHduInput, CompressionChoice } from './compress/index.ts';
