// How each column of a tile-compressed table is compressed: the algorithm, and the value
// width each algorithm works on. The rules follow what cfitsio (fpack/funpack) writes and
// reads, since that is the one other implementation files must travel between:
// - RICE_1 only for B, I and J values;
// - GZIP_2 shuffles I, J, K, E and D values by their size; cfitsio labels C and M columns
//   GZIP_2 but leaves them unshuffled (and funpack then refuses them), so such columns are
//   read unshuffled and written GZIP_1;
// - in variable-length arrays cfitsio shuffles by the element size when it is 2, 4 or 8
//   bytes (so a C array is shuffled as 8-byte values) and cannot store X arrays at all.
import type { FitsColumnDef } from '../column-defs.ts';
import { FitsError, type FitsLocation } from '../errors.ts';
import type { FixedCode } from '../tform.ts';
import type { TileAlgorithm } from './tile-codec.ts';

/** A column's compression as asked for: `auto` picks per type (see {@link chooseAlgorithm}). */
export type CompressionChoice = 'auto' | 'rice' | 'gzip1' | 'gzip2';

/** Every {@link CompressionChoice}, for validation of options. */
export const COMPRESSION_CHOICES: readonly CompressionChoice[] = ['auto', 'rice', 'gzip1', 'gzip2'];

const ALGORITHM_OF: Readonly<Record<Exclude<CompressionChoice, 'auto'>, TileAlgorithm>> = {
  rice: 'RICE_1', gzip1: 'GZIP_1', gzip2: 'GZIP_2',
};

// Bytes per element as cfitsio counts them in variable-length arrays (X cannot be stored).
const VLA_ELEMENT_BYTES: Readonly<Record<FixedCode, number>> = {
  L: 1, X: 0, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16,
};

const FIXED_ELEMENT_BYTES: Readonly<Record<FixedCode, number>> = {
  L: 1, X: 1, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16,
};

/** How one column's tiles are compressed and decompressed. */
export interface ColumnCodec {
  readonly def: FitsColumnDef;
  readonly algorithm: TileAlgorithm;
  /** The value width the algorithm works on: RICE_1's integer size, GZIP_2's shuffle width (1: none). */
  readonly width: number;
  /** Bytes of one row of this column in the original table (a P/Q column: its descriptor). */
  readonly rowBytes: number;
  /** For P/Q columns: bytes per heap element, as cfitsio counts them. */
  readonly elementBytes?: number;
}

/** The type letter of the values a column holds (the heap elements for P/Q). */
export function valueCode(def: FitsColumnDef): FixedCode {
  return def.code === 'P' || def.code === 'Q' ? def.elementCode! : def.code;
}

function isVariable(def: FitsColumnDef): boolean {
  return def.code === 'P' || def.code === 'Q';
}

/** True when cfitsio can both write and read this algorithm for this column. */
export function algorithmFits(def: FitsColumnDef, algorithm: TileAlgorithm): boolean {
  const code = valueCode(def);
  if (algorithm === 'RICE_1') return code === 'B' || code === 'I' || code === 'J';
  if (algorithm === 'GZIP_2') return 'IJKED'.includes(code);
  return true;
}

/**
 * The algorithm for a column: `auto` gives RICE_1 to B/I/J integers, GZIP_2 to E/D floats
 * and K integers, GZIP_1 to everything else (strings, logicals, bits, complex). A forced
 * choice that does not fit the column falls back to `auto` when it came from the table-wide
 * default, and is an error when it was asked for this column by name.
 */
export function chooseAlgorithm(def: FitsColumnDef, choice: CompressionChoice, named: boolean, at: FitsLocation = {}): TileAlgorithm {
  if (choice !== 'auto') {
    const algorithm = ALGORITHM_OF[choice];
    if (algorithm === undefined) {
      throw new FitsError('fits_bad_compression', { ...at, column: def.name }, `unknown compression "${String(choice)}"; use one of ${COMPRESSION_CHOICES.join(', ')}`);
    }
    if (algorithmFits(def, algorithm)) return algorithm;
    if (named) {
      const allowed = algorithm === 'RICE_1' ? 'B, I and J (8, 16 and 32-bit integer)' : 'I, J, K, E and D (2, 4 and 8-byte numeric)';
      throw new FitsError('fits_bad_compression', { ...at, column: def.name }, `${algorithm} applies to ${allowed} columns only, not to TFORM ${def.tform}; choose gzip1 or auto`);
    }
  }
  const code = valueCode(def);
  if (code === 'B' || code === 'I' || code === 'J') return 'RICE_1';
  if (code === 'K' || code === 'E' || code === 'D') return 'GZIP_2';
  return 'GZIP_1';
}

/**
 * The codec of a column stored with `algorithm`; throws `fits_unsupported` for what cfitsio
 * cannot store (variable-length bit arrays) and `fits_bad_compression` for RICE_1 on a
 * non-integer column.
 */
export function columnCodec(def: FitsColumnDef, algorithm: TileAlgorithm, at: FitsLocation = {}): ColumnCodec {
  const code = valueCode(def);
  const where = { ...at, column: def.name };
  if (algorithm === 'RICE_1' && !algorithmFits(def, algorithm)) {
    throw new FitsError('fits_bad_compression', where, `RICE_1 applies to B, I and J columns only, not to TFORM ${def.tform}`);
  }
  if (isVariable(def)) {
    const elementBytes = VLA_ELEMENT_BYTES[code];
    if (elementBytes === 0) {
      throw new FitsError('fits_unsupported', where, `variable-length bit arrays (TFORM ${def.tform}) cannot be tile-compressed in a form cfitsio reads; store them as bytes (PB) or uncompressed`);
    }
    const width = algorithm === 'RICE_1' ? elementBytes
      : algorithm === 'GZIP_2' && (elementBytes === 2 || elementBytes === 4 || elementBytes === 8) ? elementBytes : 1;
    return { def, algorithm, width, rowBytes: def.byteWidth, elementBytes };
  }
  const size = FIXED_ELEMENT_BYTES[code];
  const width = algorithm === 'RICE_1' ? size
    : algorithm === 'GZIP_2' && 'IJKED'.includes(code) ? size : 1;
  return { def, algorithm, width, rowBytes: def.byteWidth };
}
