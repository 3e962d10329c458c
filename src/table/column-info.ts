import { TableError } from './errors.ts';

/**
 * Element types of a column, in memory. Each maps to one typed array (see
 * {@link arrayTypeOf}); `string` columns hold JavaScript strings.
 */
export type ColumnType =
  | 'boolean'
  | 'bit'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float32'
  | 'float64'
  | 'complex64'
  | 'complex128'
  | 'string';

/** Every {@link ColumnType}, for validation. */
export const COLUMN_TYPES: readonly ColumnType[] = [
  'boolean', 'bit', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32',
  'int64', 'uint64', 'float32', 'float64', 'complex64', 'complex128', 'string',
];

/**
 * How stored values relate to the values in memory when a column is scaled
 * (FITS TSCAL/TZERO other than the unsigned-integer convention):
 * `value = zero + scale * stored`. Values in memory are then float64.
 */
export interface ColumnStorage {
  readonly type: ColumnType;
  readonly scale: number;
  readonly zero: number;
}

/**
 * The description of one column: everything but the values. Modelled on STIL's ColumnInfo.
 */
export interface ColumnInfo {
  readonly name: string;
  /** The element type of the values in memory. */
  readonly type: ColumnType;
  /**
   * Shape of one cell, in elements, fastest-varying first (FITS TDIM order). `[]` is a
   * scalar. For strings the shape counts strings, not characters (see `width`).
   */
  readonly shape: readonly number[];
  /** Variable-length arrays (FITS P/Q descriptors): each row has its own element count. */
  readonly variable?: boolean;
  /** For strings: the fixed width in characters (bytes); for variable ones, the largest. */
  readonly width?: number;
  readonly unit?: string;
  readonly ucd?: string;
  readonly utype?: string;
  readonly description?: string;
  /** The null value of integer columns, in stored terms (FITS TNULL, VOTable VALUES null). */
  readonly nullValue?: number | bigint;
  /** Present when stored values are scaled; see {@link ColumnStorage}. */
  readonly storage?: ColumnStorage;
  /** FITS TDISP / VOTable display hints (kept, not interpreted). */
  readonly display?: string;
}

/** Makes a column description, validating the name, type and shape. */
export function columnInfo(
  name: string,
  type: ColumnType,
  extra: Partial<Omit<ColumnInfo, 'name' | 'type'>> = {},
): ColumnInfo {
  if (!COLUMN_TYPES.includes(type)) {
    throw new TableError('table_bad_column', `column "${name}": unknown type "${type}"; use one of ${COLUMN_TYPES.join(', ')}`);
  }
  const shape = extra.shape ?? [];
  for (const n of shape) {
    if (!Number.isInteger(n) || n < 0) {
      throw new TableError('table_bad_column', `column "${name}": shape [${shape.join(',')}] must hold non-negative integers`);
    }
  }
  if (type === 'string' && extra.width !== undefined && (!Number.isInteger(extra.width) || extra.width < 0)) {
    throw new TableError('table_bad_column', `column "${name}": string width ${extra.width} must be a non-negative integer`);
  }
  return Object.freeze({ ...extra, name, type, shape: Object.freeze([...shape]) });
}

/** Elements in one cell of a fixed-shape column: the product of its shape (1 for scalars). */
export function elementsPerRow(info: ColumnInfo): number {
  let n = 1;
  for (const d of info.shape) n *= d;
  return n;
}

/** Number of typed-array slots one element takes (2 for complex, 1 otherwise). */
export function slotsPerElement(type: ColumnType): number {
  return type === 'complex64' || type === 'complex128' ? 2 : 1;
}

/** True for integer element types (those that may carry a `nullValue`). */
export function isIntegerType(type: ColumnType): boolean {
  return type === 'int8' || type === 'uint8' || type === 'int16' || type === 'uint16' ||
    type === 'int32' || type === 'uint32' || type === 'int64' || type === 'uint64';
}

/** True for 64-bit integer types, whose values are bigints. */
export function isBigIntType(type: ColumnType): boolean {
  return type === 'int64' || type === 'uint64';
}

/** True for floating-point and complex types, whose nulls are NaN. */
export function isFloatType(type: ColumnType): boolean {
  return type === 'float32' || type === 'float64' || type === 'complex64' || type === 'complex128';
}

/** The typed array constructor that holds values of each type. */
export function arrayTypeOf(type: ColumnType):
  | Uint8ArrayConstructor | Int8ArrayConstructor | Int16ArrayConstructor | Uint16ArrayConstructor
  | Int32ArrayConstructor | Uint32ArrayConstructor | BigInt64ArrayConstructor | BigUint64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor | undefined {
  switch (type) {
    case 'boolean': case 'bit': case 'uint8': return Uint8Array;
    case 'int8': return Int8Array;
    case 'int16': return Int16Array;
    case 'uint16': return Uint16Array;
    case 'int32': return Int32Array;
    case 'uint32': return Uint32Array;
    case 'int64': return BigInt64Array;
    case 'uint64': return BigUint64Array;
    case 'float32': case 'complex64': return Float32Array;
    case 'float64': case 'complex128': return Float64Array;
    case 'string': return undefined;
  }
}
