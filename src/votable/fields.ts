// VOTable FIELD descriptions <-> ColumnInfo: datatypes, arraysize, null values, display hints.
import { columnInfo, isIntegerType, type ColumnInfo, type ColumnType } from '../table/index.ts';
import { VOTableError, type VOTableLocation } from './errors.ts';

/** The VOTable 1.4 primitive datatypes. */
export type VOTableDatatype =
  | 'boolean' | 'bit' | 'unsignedByte' | 'short' | 'int' | 'long' | 'char' | 'unicodeChar'
  | 'float' | 'double' | 'floatComplex' | 'doubleComplex';

/** Every {@link VOTableDatatype}, for validation. */
export const VOTABLE_DATATYPES: readonly VOTableDatatype[] = [
  'boolean', 'bit', 'unsignedByte', 'short', 'int', 'long', 'char', 'unicodeChar',
  'float', 'double', 'floatComplex', 'doubleComplex',
];

/** A FIELD (or PARAM) as written in the file: attributes and children, not yet interpreted. */
export interface VOTableField {
  readonly name: string;
  readonly datatype: string;
  readonly id?: string;
  readonly arraysize?: string;
  readonly width?: string;
  readonly precision?: string;
  readonly unit?: string;
  readonly ucd?: string;
  readonly utype?: string;
  readonly xtype?: string;
  readonly ref?: string;
  readonly description?: string;
  /** VALUES null="...": the text that marks a null. */
  readonly nullText?: string;
  /** PARAM only: the value attribute. */
  readonly value?: string;
}

/**
 * VOTable attributes that ColumnInfo does not model, kept so that a column read from a
 * VOTable is written back exactly as it was (the datatype and arraysize as spelled, ID,
 * width, precision, xtype, ref).
 */
export interface VOTableFieldAttributes {
  readonly datatype?: string;
  readonly arraysize?: string;
  readonly id?: string;
  readonly width?: string;
  readonly precision?: string;
  readonly xtype?: string;
  readonly ref?: string;
}

/** A ColumnInfo that may carry the VOTable attributes it was read with. */
export interface VOTableColumnInfo extends ColumnInfo {
  readonly votable?: VOTableFieldAttributes;
}

/** The shape of a cell as VOTable's arraysize says it: dimensions, and a variable last one. */
export interface ArraySize {
  /** Dimensions, fastest-varying first; for a variable last dimension its bound (0 = none). */
  readonly dims: readonly number[];
  readonly variable: boolean;
}

/** Parses an arraysize attribute ("10", "*", "10*", "3x4", "3x*"); undefined means a scalar. */
export function parseArraySize(text: string | undefined, at: VOTableLocation = {}): ArraySize | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === '') return undefined;
  const parts = t.split('x');
  const dims: number[] = [];
  let variable = false;
  parts.forEach((p, i) => {
    const m = /^(\d*)(\*?)$/.exec(p.trim());
    if (!m || (m[1] === '' && m[2] === '') || (m[2] === '*' && i !== parts.length - 1)) {
      throw new VOTableError('votable_bad_arraysize', at, `arraysize "${text}" is not valid; write N, N*, *, or dimensions like 3x4 or 3x* (only the last may be variable)`);
    }
    if (m[2] === '*') variable = true;
    dims.push(m[1] === '' ? 0 : Number(m[1]));
  });
  return { dims, variable };
}

/** Writes an arraysize attribute value. */
export function formatArraySize(size: ArraySize): string {
  return size.dims.map((d, i) => {
    const last = i === size.dims.length - 1;
    if (last && size.variable) return d === 0 ? '*' : `${d}*`;
    return String(d);
  }).join('x');
}

/** The ColumnType a VOTable datatype is read into. */
export function columnTypeOf(datatype: string, at: VOTableLocation = {}): ColumnType {
  switch (datatype) {
    case 'boolean': return 'boolean';
    case 'bit': return 'bit';
    case 'unsignedByte': return 'uint8';
    case 'short': return 'int16';
    case 'int': return 'int32';
    case 'long': return 'int64';
    case 'char': case 'unicodeChar': return 'string';
    case 'float': return 'float32';
    case 'double': return 'float64';
    case 'floatComplex': return 'complex64';
    case 'doubleComplex': return 'complex128';
    default:
      throw new VOTableError('votable_bad_datatype', at, `datatype "${datatype}" is not a VOTable datatype; use one of ${VOTABLE_DATATYPES.join(', ')}`);
  }
}

/**
 * The VOTable datatype that holds a ColumnType. VOTable has no signed byte and no unsigned
 * 16/32/64-bit integers, so those are written as the next wider signed type, as STILTS does
 * (int8 -> short, uint16 -> int, uint32 -> long); uint64 is written as long, and a value
 * above 2^63-1 is refused when it is written (VOTable has nothing wider).
 */
export function votableDatatypeOf(type: ColumnType): VOTableDatatype {
  switch (type) {
    case 'boolean': return 'boolean';
    case 'bit': return 'bit';
    case 'uint8': return 'unsignedByte';
    case 'int8': case 'int16': return 'short';
    case 'uint16': case 'int32': return 'int';
    case 'uint32': case 'int64': case 'uint64': return 'long';
    case 'float32': return 'float';
    case 'float64': return 'double';
    case 'complex64': return 'floatComplex';
    case 'complex128': return 'doubleComplex';
    case 'string': return 'char';
  }
}

/** Parses the null text of an integer field into the ColumnInfo's nullValue. */
function parseNull(text: string, type: ColumnType, at: VOTableLocation): number | bigint {
  const t = text.trim();
  const ok = /^[+-]?\d+$/.test(t) || /^0x[0-9a-f]+$/i.test(t);
  if (!ok) throw new VOTableError('votable_bad_null', at, `VALUES null="${text}" is not an integer; give the value that marks a null in this ${type} column`);
  if (type === 'int64') return BigInt.asIntN(64, BigInt(t));
  return Number(t);
}

/** The TDISP-like display hint for a field's width and precision (kept in ColumnInfo.display). */
function displayOf(type: ColumnType, width: string | undefined, precision: string | undefined): string | undefined {
  const w = width !== undefined && /^\d+$/.test(width.trim()) ? Number(width) : undefined;
  if (type === 'string') return w !== undefined ? `A${w}` : undefined;
  if (isIntegerType(type)) return w !== undefined ? `I${w}` : undefined;
  if (precision === undefined || w === undefined) return undefined;
  const m = /^([EF]?)(\d+)$/.exec(precision.trim());
  if (!m) return undefined;
  const d = Number(m[2]);
  return m[1] === 'E' ? `E${w}.${Math.max(0, d - 1)}` : `F${w}.${d}`;
}

/** Width and precision from a TDISP-like display hint (Fw.d, Ew.d, Dw.d, Gw.d, Iw, Aw). */
function widthPrecisionOf(display: string | undefined): { width?: string; precision?: string } {
  if (!display) return {};
  const m = /^\s*([AIFEDG])[NS]?(\d+)(?:\.(\d+))?/i.exec(display);
  if (!m) return {};
  const code = m[1].toUpperCase();
  const out: { width?: string; precision?: string } = { width: m[2] };
  if (m[3] !== undefined) {
    if (code === 'F') out.precision = m[3];
    else if (code === 'E' || code === 'D') out.precision = `E${Number(m[3]) + 1}`;
    else if (code === 'G') out.precision = `E${m[3]}`;
  }
  return out;
}

/** Describes a FIELD as a ColumnInfo, keeping the attributes ColumnInfo lacks in `votable`. */
export function fieldToColumn(field: VOTableField, at: VOTableLocation = {}): VOTableColumnInfo {
  const here = { ...at, field: field.name };
  const type = columnTypeOf(field.datatype, here);
  const size = parseArraySize(field.arraysize, here);
  let shape: number[] = [];
  let variable = false;
  let width: number | undefined;
  if (type === 'string') {
    // char arrays: the first dimension counts characters, the rest count strings
    if (!size) width = 1;
    else if (size.dims.length === 1) {
      variable = size.variable;
      width = size.variable ? (size.dims[0] > 0 ? size.dims[0] : undefined) : size.dims[0];
    } else if (size.variable) {
      // strings of a variable count: read as one string per row
      variable = true;
    } else {
      width = size.dims[0];
      shape = size.dims.slice(1);
    }
  } else if (size) {
    variable = size.variable;
    shape = size.variable ? size.dims.filter((d, i) => i < size.dims.length - 1 || d > 0) : [...size.dims];
  }
  const votable: VOTableFieldAttributes = {
    datatype: field.datatype,
    ...(field.arraysize !== undefined ? { arraysize: field.arraysize } : {}),
    ...(field.id !== undefined ? { id: field.id } : {}),
    ...(field.width !== undefined ? { width: field.width } : {}),
    ...(field.precision !== undefined ? { precision: field.precision } : {}),
    ...(field.xtype !== undefined ? { xtype: field.xtype } : {}),
    ...(field.ref !== undefined ? { ref: field.ref } : {}),
  };
  const display = displayOf(type, field.width, field.precision);
  const info = columnInfo(field.name, type, {
    shape,
    ...(variable ? { variable } : {}),
    ...(width !== undefined ? { width } : {}),
    ...(field.unit !== undefined ? { unit: field.unit } : {}),
    ...(field.ucd !== undefined ? { ucd: field.ucd } : {}),
    ...(field.utype !== undefined ? { utype: field.utype } : {}),
    ...(field.description !== undefined ? { description: field.description } : {}),
    ...(field.nullText !== undefined && isIntegerType(type) ? { nullValue: parseNull(field.nullText, type, here) } : {}),
    ...(display !== undefined ? { display } : {}),
  });
  return Object.freeze({ ...info, votable: Object.freeze(votable) });
}

/** The arraysize a ColumnInfo needs (undefined for a scalar, or a one-character string). */
function arraySizeOf(info: ColumnInfo): string | undefined {
  if (info.type === 'string') {
    if (info.variable) return info.width !== undefined && info.width > 0 ? `${info.width}*` : '*';
    const w = info.width ?? 1;
    if (info.shape.length === 0) return w === 1 ? undefined : String(w);
    return [w, ...info.shape].join('x');
  }
  if (info.variable) {
    const dims = info.shape;
    if (dims.length === 0) return '*';
    return formatArraySize({ dims, variable: true });
  }
  if (info.shape.length === 0) return undefined;
  return info.shape.join('x');
}

/**
 * Describes a ColumnInfo as a FIELD. Attributes kept from a VOTable (`votable`) are written
 * back when they still agree with the column (same datatype family, same shape).
 */
export function columnToField(info: ColumnInfo): VOTableField {
  const kept = (info as VOTableColumnInfo).votable ?? {};
  let datatype: string = votableDatatypeOf(info.type);
  if (kept.datatype !== undefined && VOTABLE_DATATYPES.includes(kept.datatype as VOTableDatatype) && columnTypeOf(kept.datatype) === info.type) {
    datatype = kept.datatype;
  }
  let arraysize = arraySizeOf(info);
  if (kept.arraysize !== undefined && sameShapeKept(kept.arraysize, info)) arraysize = kept.arraysize;
  const fromDisplay = kept.width === undefined && kept.precision === undefined ? widthPrecisionOf(info.display) : {};
  const width = kept.width ?? fromDisplay.width;
  const precision = kept.precision ?? (info.type === 'string' || isIntegerType(info.type) ? undefined : fromDisplay.precision);
  let nullText: string | undefined;
  if (info.nullValue !== undefined && isIntegerType(info.type)) nullText = String(info.nullValue);
  return {
    name: info.name,
    datatype,
    ...(kept.id !== undefined ? { id: kept.id } : {}),
    ...(arraysize !== undefined ? { arraysize } : {}),
    ...(width !== undefined ? { width } : {}),
    ...(precision !== undefined ? { precision } : {}),
    ...(info.unit !== undefined ? { unit: info.unit } : {}),
    ...(info.ucd !== undefined ? { ucd: info.ucd } : {}),
    ...(info.utype !== undefined ? { utype: info.utype } : {}),
    ...(kept.xtype !== undefined ? { xtype: kept.xtype } : {}),
    ...(kept.ref !== undefined ? { ref: kept.ref } : {}),
    ...(info.description !== undefined ? { description: info.description } : {}),
    ...(nullText !== undefined ? { nullText } : {}),
  };
}

// A kept arraysize such as "3x*" or "4x*" (strings) maps to a ColumnInfo that "3*" also maps
// to; use the kept text only when reading it gives this very column back.
function sameShapeKept(arraysize: string, info: ColumnInfo): boolean {
  try {
    const back = fieldToColumn({ name: info.name, datatype: votableDatatypeOf(info.type), arraysize });
    return back.variable === info.variable && back.width === info.width && back.shape.join('x') === info.shape.join('x');
  } catch {
    return false;
  }
}
