// Tile-compressed binary tables (FITS 4.0 §10.3): RICE_1, GZIP_1 and GZIP_2, in the layout
// cfitsio's fpack writes and funpack reads.
export { readCompressedTable, compressedTableLayout, uncompressedHeader } from './read-compressed-table.ts';
export type { CompressedTableLayout } from './read-compressed-table.ts';
export {
  writeCompressedTableHdu, writeCompressedFits, compressedHeader, columnCodecs, tileRowsFor, DEFAULT_TILE_BYTES,
} from './write-compressed-table.ts';
export type { CompressOptions, CompressedHduOptions, CompressedHduInput } from './write-compressed-table.ts';
export { chooseAlgorithm, columnCodec, COMPRESSION_CHOICES } from './column-codec.ts';
export type { CompressionChoice, ColumnCodec } from './column-codec.ts';
export { compressTile, decompressTile, TILE_ALGORITHMS } from './tile-codec.ts';
export type { TileAlgorithm } from './tile-codec.ts';
export { riceCompress, riceDecompress, RICE_BLOCK_SIZE } from './rice.ts';
export type { RiceWidth } from './rice.ts';
export { shuffleBytes, unshuffleBytes } from './shuffle.ts';
export { DEFAULT_GZIP_LEVEL } from './gzip.ts';
export { TileCodecError } from './tile-error.ts';
