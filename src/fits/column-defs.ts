import { columnInfo, elementsPerRow, isIntegerType, type ColumnInfo, type ColumnType } from '../table/index.ts';
import { FitsError, type FitsLocation } from './errors.ts';
import type { Header, HeaderValue } from './header.ts';
import {
  formatTform, parseTform, tformByteWidth, type FixedCode, type Tform, type TformCode,
} from './tform.ts';

/**
 * How stored values become values in memory: `none` (as stored), `offset` (the TZERO
 * conventions for unsigned integers and signed bytes: a bit flip), `scaled`
 * (`zero + scale * stored`, held as float64).
 */
export type ColumnConversion = 'none' | 'offset' | 'scaled';

/** One column of a binary table: its keywords, where it sits in the row, and the ColumnInfo it maps to. */
export interface FitsColumnDef {
  /** Position in the table, from 0 (keywords use index + 1). */
  readonly index: number;
  readonly name: string;
  /** The TFORM text as written. */
  readonly tform: string;
  readonly code: TformCode;
  readonly repeat: number;
  /** For P/Q descriptors: the type of the elements in the heap. */
  readonly elementCode?: FixedCode;
  /** For P/Q: the largest element count, when known (the `(emax)` of the TFORM). */
  readonly maxLength?: number;
  /** For rAw: the substring width. */
  readonly substring?: number;
  readonly byteOffset: number;
  readonly byteWidth: number;
  /** TNULL in stored terms. */
  readonly tnull?: number | bigint;
  readonly tscal: number;
  readonly tzero: number | bigint;
  readonly tdim?: readonly number[];
  /** The type of the stored elements (of the heap elements for P/Q). */
  readonly storedType: ColumnType;
  readonly conversion: ColumnConversion;
  readonly info: ColumnInfo;
}

/** How one column keyword is read and written; the one place keyword ↔ attribute is spelt out. */
export interface ColumnKeyword {
  /** The keyword without its column number. */
  readonly prefix: string;
  readonly value: 'string' | 'integer' | 'number';
  /** The ColumnInfo attribute a descriptive keyword maps to (structural keywords have none). */
  readonly attribute?: 'name' | 'unit' | 'display' | 'description' | 'ucd' | 'utype';
  readonly comment: string;
}

/** Column keywords in the order they are written. TCOMM, TUCD and TUTYP are HEASARC/STIL conventions. */
export const COLUMN_KEYWORDS: readonly ColumnKeyword[] = [
  { prefix: 'TTYPE', value: 'string', attribute: 'name', comment: 'name of field' },
  { prefix: 'TFORM', value: 'string', comment: 'format of field' },
  { prefix: 'TUNIT', value: 'string', attribute: 'unit', comment: 'unit of field' },
  { prefix: 'TNULL', value: 'integer', comment: 'stored value of nulls' },
  { prefix: 'TSCAL', value: 'number', comment: 'scale of stored values' },
  { prefix: 'TZERO', value: 'number', comment: 'offset of stored values' },
  { prefix: 'TDIM', value: 'string', comment: 'dimensions of field' },
  { prefix: 'TDISP', value: 'string', attribute: 'display', comment: 'display format' },
  { prefix: 'TCOMM', value: 'string', attribute: 'description', comment: 'description of field' },
  { prefix: 'TUCD', value: 'string', attribute: 'ucd', comment: 'UCD of field' },
  { prefix: 'TUTYP', value: 'string', attribute: 'utype', comment: 'utype of field' },
];

/** Column keyword prefixes that are not ours but still describe columns (not table params). */
const OTHER_COLUMN_PREFIXES = ['TBCOL', 'TLMIN', 'TLMAX', 'TDMIN', 'TDMAX'];

const COLUMN_KEYWORD_PATTERN = new RegExp(
  `^(${[...COLUMN_KEYWORDS.map((k) => k.prefix), ...OTHER_COLUMN_PREFIXES].join('|')})([1-9][0-9]{0,2})$`,
);

/** True for a per-column keyword (TTYPE3, TFORM12, ...), which belongs to the column, not the table. */
export function isColumnKeyword(keyword: string): boolean {
  return COLUMN_KEYWORD_PATTERN.test(keyword.toUpperCase());
}

const STORED_TYPE: Readonly<Record<FixedCode, ColumnType>> = {
  L: 'boolean', X: 'bit', B: 'uint8', I: 'int16', J: 'int32', K: 'int64',
  A: 'string', E: 'float32', D: 'float64', C: 'complex64', M: 'complex128',
};

/** The FITS letter for values stored as each type (unsigned and int8 through their TZERO offsets). */
const CODE_OF_TYPE: Readonly<Record<ColumnType, FixedCode>> = {
  boolean: 'L', bit: 'X', int8: 'B', uint8: 'B', int16: 'I', uint16: 'I', int32: 'J', uint32: 'J',
  int64: 'K', uint64: 'K', float32: 'E', float64: 'D', complex64: 'C', complex128: 'M', string: 'A',
};

/** TZERO values that turn a signed FITS integer into an unsigned one (and B into a signed byte). */
export const OFFSET_TZERO: Readonly<Partial<Record<FixedCode, bigint>>> = {
  B: -128n, I: 32768n, J: 2147483648n, K: 9223372036854775808n,
};

const OFFSET_TYPE: Readonly<Partial<Record<FixedCode, ColumnType>>> = {
  B: 'int8', I: 'uint16', J: 'uint32', K: 'uint64',
};

/** Range of stored integers of each integer letter. */
const STORED_RANGE: Readonly<Partial<Record<FixedCode, readonly [bigint, bigint]>>> = {
  B: [0n, 255n], I: [-32768n, 32767n], J: [-2147483648n, 2147483647n],
  K: [-9223372036854775808n, 9223372036854775807n],
};

/** The memory type of values stored with each FITS letter, before any TZERO/TSCAL. */
export function storedTypeOf(code: FixedCode): ColumnType {
  return STORED_TYPE[code];
}

/** The FITS letter that stores a column's elements (its `storage` type when scaled). */
export function fitsCodeOf(info: ColumnInfo): FixedCode {
  return CODE_OF_TYPE[info.storage ? info.storage.type : info.type];
}

/** Raw keyword values of one column, read through {@link COLUMN_KEYWORDS}. */
type RawKeywords = Partial<Record<string, string | number | bigint>>;

function readColumnKeywords(header: Header, n: number, at: FitsLocation): RawKeywords {
  const raw: RawKeywords = {};
  for (const k of COLUMN_KEYWORDS) {
    const keyword = `${k.prefix}${n}`;
    const v: HeaderValue | undefined = header.get(keyword);
    if (v === undefined || v === null) continue;
    const where = { ...at, keyword };
    if (k.value === 'string') {
      if (typeof v !== 'string') throw new FitsError('fits_bad_keyword', where, `expected a string value, found ${String(v)}`);
      raw[k.prefix] = v;
    } else if (k.value === 'integer') {
      if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) raw[k.prefix] = v;
      else throw new FitsError('fits_bad_keyword', where, `expected an integer, found ${JSON.stringify(v)}`);
    } else {
      if (typeof v === 'bigint' || (typeof v === 'number' && Number.isFinite(v))) raw[k.prefix] = v;
      else throw new FitsError('fits_bad_keyword', where, `expected a number, found ${JSON.stringify(v)}`);
    }
  }
  return raw;
}

/** Parses a TDIM value `(a,b,...)`. */
export function parseTdim(text: string, at: FitsLocation): number[] {
  const m = /^\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*\)\s*$/.exec(text);
  if (!m) throw new FitsError('fits_bad_tdim', at, `TDIM '${text}' is not a list of sizes such as (3,4)`);
  const dims = m[1].split(',').map((s) => Number(s.trim()));
  if (dims.some((d) => !Number.isSafeInteger(d))) throw new FitsError('fits_bad_tdim', at, `TDIM '${text}' has a size too large to handle`);
  return dims;
}

function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function isOffsetTzero(code: FixedCode, tscal: number, tzero: number | bigint): boolean {
  const want = OFFSET_TZERO[code];
  if (want === undefined || tscal !== 1) return false;
  return typeof tzero === 'bigint' ? tzero === want : tzero === Number(want);
}

/**
 * Reads the column definitions of a binary-table header and checks them: TFIELDS, each
 * TFORMn present and valid, widths adding up to NAXIS1, TDIM within the repeat, TNULL only on
 * integer columns, TSCAL/TZERO only on numeric ones.
 */
export function parseColumnDefs(header: Header, at: FitsLocation): { defs: FitsColumnDef[]; rowBytes: number } {
  const tfields = header.requireInt('TFIELDS', at);
  if (tfields > 999) throw new FitsError('fits_bad_keyword', { ...at, keyword: 'TFIELDS' }, `TFIELDS = ${tfields}; at most 999 columns are allowed`);
  const naxis1 = header.requireInt('NAXIS1', at);
  const defs: FitsColumnDef[] = [];
  let offset = 0;
  for (let n = 1; n <= tfields; n++) {
    const raw = readColumnKeywords(header, n, at);
    const name = (raw.TTYPE as string | undefined)?.trim() || `col${n}`;
    const colAt: FitsLocation = { ...at, column: name };
    const tformText = raw.TFORM as string | undefined;
    if (tformText === undefined) throw new FitsError('fits_missing_keyword', { ...colAt, keyword: `TFORM${n}` }, 'required keyword is missing');
    const tform = parseTform(tformText, { ...colAt, keyword: `TFORM${n}` });
    const def = defineColumn(n - 1, name, tformText, tform, raw, offset, colAt);
    defs.push(def);
    offset += def.byteWidth;
  }
  if (offset !== naxis1) {
    throw new FitsError('fits_bad_naxis1', { ...at, keyword: 'NAXIS1' }, `NAXIS1 = ${naxis1} but the ${tfields} TFORMs add up to ${offset} bytes per row`);
  }
  return { defs, rowBytes: naxis1 };
}

function defineColumn(index: number, name: string, tformText: string, tform: Tform, raw: RawKeywords, byteOffset: number, at: FitsLocation): FitsColumnDef {
  const n = index + 1;
  const variable = tform.code === 'P' || tform.code === 'Q';
  const element: FixedCode = variable ? tform.element! : tform.code as FixedCode;
  const stored = STORED_TYPE[element];
  const tscalRaw = raw.TSCAL;
  const tscal = tscalRaw === undefined ? 1 : Number(tscalRaw);
  const tzero = (raw.TZERO ?? 0) as number | bigint;
  const numeric = 'BIJKEDCM'.includes(element);
  const integer = 'BIJK'.includes(element);
  const scaledKeywords = tscal !== 1 || (typeof tzero === 'bigint' ? tzero !== 0n : tzero !== 0);
  if (scaledKeywords && !numeric) {
    throw new FitsError('fits_bad_keyword', { ...at, keyword: raw.TSCAL !== undefined ? `TSCAL${n}` : `TZERO${n}` }, `TSCAL/TZERO apply to numeric columns only, not to TFORM ${tformText}`);
  }
  if (scaledKeywords && (element === 'C' || element === 'M') ) {
    throw new FitsError('fits_unsupported', { ...at, keyword: `TSCAL${n}` }, `scaled complex columns (TFORM ${tformText} with TSCAL/TZERO) are not supported`);
  }
  let conversion: ColumnConversion = 'none';
  let type: ColumnType = stored;
  let offsetValue = 0n;
  if (scaledKeywords) {
    if (integer && isOffsetTzero(element, tscal, tzero)) {
      conversion = 'offset';
      type = OFFSET_TYPE[element]!;
      offsetValue = OFFSET_TZERO[element]!;
    } else {
      conversion = 'scaled';
      type = 'float64';
    }
  }
  let tnull: number | bigint | undefined;
  let nullValue: number | bigint | undefined;
  if (raw.TNULL !== undefined) {
    const where = { ...at, keyword: `TNULL${n}` };
    if (!integer) throw new FitsError('fits_bad_tnull', where, `TNULL is allowed on integer columns only, not on TFORM ${tformText}; floating-point nulls are NaN`);
    const t = BigInt(raw.TNULL);
    const [lo, hi] = STORED_RANGE[element]!;
    if (t < lo || t > hi) throw new FitsError('fits_bad_tnull', where, `TNULL = ${t} is outside the range ${lo}..${hi} of TFORM ${tformText}`);
    tnull = element === 'K' ? t : Number(t);
    if (conversion === 'scaled') nullValue = tnull;
    else if (conversion === 'offset') nullValue = element === 'K' ? t + offsetValue : Number(t + offsetValue);
    else nullValue = tnull;
  }
  let tdim: number[] | undefined;
  if (raw.TDIM !== undefined) {
    tdim = parseTdim(raw.TDIM as string, { ...at, keyword: `TDIM${n}` });
    // A TDIM on a descriptor column describes its largest array; the arrays stay variable.
    if (!variable && product(tdim) > tform.repeat) {
      throw new FitsError('fits_bad_tdim', { ...at, keyword: `TDIM${n}` }, `TDIM '${raw.TDIM}' holds ${product(tdim)} elements but TFORM ${tformText} has only ${tform.repeat}`);
    }
  }
  let shape: number[] = [];
  let width: number | undefined;
  if (variable) {
    if (element === 'A' && tform.maxLength !== undefined) width = tform.maxLength;
  } else if (element === 'A') {
    if (tdim) {
      width = tdim[0];
      shape = tdim.slice(1);
    } else if (tform.substring !== undefined && tform.repeat % tform.substring === 0 && tform.substring < tform.repeat) {
      width = tform.substring;
      shape = [tform.repeat / tform.substring];
    } else {
      width = tform.repeat;
    }
  } else if (tdim) {
    shape = tdim;
  } else if (element === 'X' || tform.repeat !== 1) {
    shape = [tform.repeat];
  }
  const extra: Partial<Omit<ColumnInfo, 'name' | 'type'>> = {
    shape,
    ...(variable ? { variable: true } : {}),
    ...(width !== undefined ? { width } : {}),
    ...(raw.TUNIT ? { unit: String(raw.TUNIT) } : {}),
    ...(raw.TUCD ? { ucd: String(raw.TUCD) } : {}),
    ...(raw.TUTYP ? { utype: String(raw.TUTYP) } : {}),
    ...(raw.TCOMM ? { description: String(raw.TCOMM) } : {}),
    ...(raw.TDISP ? { display: String(raw.TDISP) } : {}),
    ...(nullValue !== undefined ? { nullValue } : {}),
    ...(conversion === 'scaled' ? { storage: { type: stored, scale: tscal, zero: Number(tzero) } } : {}),
  };
  return {
    index,
    name,
    tform: tformText,
    code: tform.code,
    repeat: tform.repeat,
    ...(variable ? { elementCode: element } : {}),
    ...(tform.maxLength !== undefined ? { maxLength: tform.maxLength } : {}),
    ...(tform.substring !== undefined ? { substring: tform.substring } : {}),
    byteOffset,
    byteWidth: tformByteWidth(tform),
    ...(tnull !== undefined ? { tnull } : {}),
    tscal,
    tzero,
    ...(tdim ? { tdim } : {}),
    storedType: stored,
    conversion,
    info: columnInfo(name, type, extra),
  };
}

/** Options for {@link columnDefsFromInfos}: facts about the data that the descriptions lack. */
export interface ColumnDefOptions {
  /** Total heap bytes; above 2^31 - 1 the descriptors are Q (64-bit) instead of P. */
  readonly heapSize?: number;
  /** Per column: the largest element count of a variable-length column (the TFORM's emax). */
  readonly maxLengths?: readonly (number | undefined)[];
}

/**
 * The column definitions that store these columns: uint16/uint32/uint64 and int8 through the
 * TZERO offsets, `storage` through TSCAL/TZERO, `nullValue` as TNULL, shapes as TDIM (none
 * for 1-D arrays longer than 1), `variable` as P/Q descriptors (Q when `heapSize` needs 64
 * bits). String columns need a `width`; an array of strings is `width × shape` characters.
 */
export function columnDefsFromInfos(infos: readonly ColumnInfo[], options: ColumnDefOptions = {}): FitsColumnDef[] {
  const defs: FitsColumnDef[] = [];
  let byteOffset = 0;
  const large = (options.heapSize ?? 0) > 2 ** 31 - 1;
  infos.forEach((info, index) => {
    const def = defFromInfo(info, index, byteOffset, large, options.maxLengths?.[index]);
    defs.push(def);
    byteOffset += def.byteWidth;
  });
  return defs;
}

function defFromInfo(info: ColumnInfo, index: number, byteOffset: number, largeHeap: boolean, maxLength: number | undefined): FitsColumnDef {
  const at: FitsLocation = { column: info.name };
  let element: FixedCode;
  let conversion: ColumnConversion = 'none';
  let tscal = 1;
  let tzero: number | bigint = 0;
  let offsetValue = 0n;
  if (info.storage) {
    const s = info.storage;
    if (info.type !== 'float64') throw new FitsError('fits_unsupported_column', at, `a scaled column (storage) must hold float64 values in memory, not ${info.type}`);
    if (!['uint8', 'int16', 'int32', 'int64', 'float32', 'float64'].includes(s.type)) {
      throw new FitsError('fits_unsupported_column', at, `scaled values cannot be stored as ${s.type}; use uint8, int16, int32, int64, float32 or float64`);
    }
    if (!Number.isFinite(s.scale) || !Number.isFinite(s.zero)) throw new FitsError('fits_unsupported_column', at, `storage scale ${s.scale} and zero ${s.zero} must be finite`);
    element = CODE_OF_TYPE[s.type];
    conversion = 'scaled';
    tscal = s.scale;
    tzero = s.zero;
  } else {
    element = CODE_OF_TYPE[info.type];
    const off = info.type === 'int8' || info.type === 'uint16' || info.type === 'uint32' || info.type === 'uint64';
    if (off) {
      conversion = 'offset';
      offsetValue = OFFSET_TZERO[element]!;
      tzero = element === 'K' ? offsetValue : Number(offsetValue);
    }
  }
  const stored = STORED_TYPE[element];
  let tnull: number | bigint | undefined;
  if (info.nullValue !== undefined && isIntegerType(stored)) {
    const t = BigInt(info.nullValue) - offsetValue;
    const [lo, hi] = STORED_RANGE[element]!;
    if (t < lo || t > hi) {
      throw new FitsError('fits_bad_tnull', at, `null value ${info.nullValue} cannot be stored in a ${info.storage?.type ?? info.type} column`);
    }
    tnull = element === 'K' ? t : Number(t);
  }
  let tform: Tform;
  let tdim: number[] | undefined;
  if (info.variable) {
    const emax = info.type === 'string' ? (maxLength ?? info.width) : maxLength;
    tform = { repeat: 1, code: largeHeap ? 'Q' : 'P', element, ...(emax !== undefined ? { maxLength: emax } : {}) };
  } else {
    const elements = elementsPerRow(info);
    if (element === 'A') {
      if (info.width === undefined) throw new FitsError('fits_unknown_width', at, 'string column has no width; scan the data for the longest string first');
      tform = { repeat: info.width * elements, code: 'A' };
      if (info.shape.length > 0) tdim = [info.width, ...info.shape];
    } else {
      tform = { repeat: elements, code: element };
      // One-element arrays keep a TDIM so that they do not read back as scalars.
      if (info.shape.length > 1 || (info.shape.length === 1 && info.shape[0] === 1 && element !== 'X')) tdim = [...info.shape];
    }
  }
  const variable = tform.code === 'P' || tform.code === 'Q';
  return {
    index,
    name: info.name,
    tform: formatTform(tform),
    code: tform.code,
    repeat: tform.repeat,
    ...(variable ? { elementCode: element } : {}),
    ...(tform.maxLength !== undefined ? { maxLength: tform.maxLength } : {}),
    byteOffset,
    byteWidth: tformByteWidth(tform),
    ...(tnull !== undefined ? { tnull } : {}),
    tscal,
    tzero,
    ...(tdim ? { tdim } : {}),
    storedType: stored,
    conversion,
    info,
  };
}

/** Bytes per row of these columns (NAXIS1). */
export function rowBytesOf(defs: readonly FitsColumnDef[]): number {
  let n = 0;
  for (const d of defs) n += d.byteWidth;
  return n;
}

function keywordValue(def: FitsColumnDef, k: ColumnKeyword): HeaderValue | undefined {
  if (k.attribute) {
    const v = def.info[k.attribute];
    return v === undefined || v === '' ? (k.attribute === 'name' ? def.name : undefined) : v;
  }
  switch (k.prefix) {
    case 'TFORM': return def.tform;
    case 'TNULL': return def.tnull;
    case 'TSCAL': return def.tscal !== 1 ? def.tscal : undefined;
    case 'TZERO': return (typeof def.tzero === 'bigint' ? def.tzero !== 0n : def.tzero !== 0) ? def.tzero : undefined;
    case 'TDIM': return def.tdim ? `(${def.tdim.join(',')})` : undefined;
    default: return undefined;
  }
}

/** Appends each column's TTYPE/TFORM/TUNIT/TNULL/TSCAL/TZERO/TDIM/TDISP/TCOMM/TUCD/TUTYP cards. */
export function addColumnCards(header: Header, defs: readonly FitsColumnDef[]): Header {
  for (const def of defs) {
    const n = def.index + 1;
    for (const k of COLUMN_KEYWORDS) {
      const v = keywordValue(def, k);
      if (v === undefined) continue;
      const float = (k.prefix === 'TSCAL' || k.prefix === 'TZERO') && def.conversion === 'scaled';
      header.add({ keyword: `${k.prefix}${n}`, value: v, comment: k.comment, ...(float ? { float: true } : {}) });
    }
  }
  return header;
}
