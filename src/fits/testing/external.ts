// Helpers for tests: run the independent FITS checkers (fitsverify, astropy, STILTS) on a
// file and return what they say in a form a test can compare. Test code only.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { getCell, type CellValue, type ColumnBatch, type ColumnInfo } from '../../table/index.ts';
import { PYTHON } from '../../common/index.ts';

const run = promisify(execFile);
const MAX_OUTPUT = 512 * 1024 * 1024;

export { PYTHON };

/** What fitsverify found: counts from its summary line and its whole output. */
export interface FitsverifyResult {
  readonly errors: number;
  readonly warnings: number;
  readonly output: string;
}

/** Runs HEASARC's fitsverify on a file and parses its summary ("found N warning(s) and M error(s)"). */
export async function fitsverify(path: string): Promise<FitsverifyResult> {
  let output: string;
  try {
    output = (await run('fitsverify', [path], { maxBuffer: MAX_OUTPUT })).stdout;
  } catch (error) {
    // fitsverify exits non-zero when it finds problems; its report is still on stdout.
    const e = error as { stdout?: string; code?: unknown };
    if (typeof e.stdout !== 'string' || e.stdout === '') throw error;
    output = e.stdout;
  }
  const m = /Verification found (\d+) warning\(s\) and (\d+) error\(s\)/.exec(output);
  if (!m) throw new Error(`fitsverify printed no summary for ${path}:\n${output.slice(-2000)}`);
  return { warnings: Number(m[1]), errors: Number(m[2]), output };
}

// Python that turns astropy's values into JSON: cells are scalars or flat lists (arrays in
// storage order); 64-bit integers, NaN and infinities travel as strings so that nothing is
// lost in JSON.
const PY_ENCODE = String.raw`
import sys, json, math, warnings
warnings.simplefilter('ignore')
import numpy as np
from astropy.io import fits

def enc(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode('latin-1')
    if isinstance(v, str):
        return str(v)
    if isinstance(v, np.ndarray):
        if v.dtype.kind in 'SU' and v.ndim == 0:
            return enc(v.item())
        return [enc(x) for x in v.ravel()]
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return str(int(v)) if v.dtype.itemsize == 8 else int(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, (np.complexfloating, complex)):
        return [enc(float(v.real)), enc(float(v.imag))]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if math.isnan(f):
            return 'NaN'
        if math.isinf(f):
            return 'Infinity' if f > 0 else '-Infinity'
        return f
    return repr(v)

def columns_of(hdu):
    out = {}
    data = hdu.data
    for col in hdu.columns:
        values = data[col.name] if data is not None else []
        fmt = str(col.format)
        if fmt[:2] in ('PA', 'QA') or fmt[:3] in ('1PA', '1QA'):
            # astropy hands out variable-length strings as arrays of characters (a chararray,
            # which would strip the spaces); joined here, ended at a NUL, trailing blanks trimmed.
            out[col.name] = [''.join(np.asarray(values[i]).view(np.ndarray).tolist()).split('\\x00')[0].rstrip(' ') for i in range(len(values))]
        else:
            out[col.name] = [enc(values[i]) for i in range(len(values))]
    return out
`;

const DUMP_COLUMNS = `${PY_ENCODE}
path, index = sys.argv[1], int(sys.argv[2])
with fits.open(path) as hdul:
    json.dump(columns_of(hdul[index]), sys.stdout)
`;

const DUMP_FILES = `${PY_ENCODE}
result = {}
for path in sys.argv[1:]:
    try:
        with fits.open(path, disable_image_compression=True) as hdul:
            hdus = []
            for h in hdul:
                # The private offsets exist for every HDU, non-standard ones included.
                size = h._data_size or 0
                entry = {'headerStart': h._header_offset, 'dataStart': h._data_offset, 'dataSpan': -(-size // 2880) * 2880}
                if type(h).__name__ == '_NonstandardHDU':
                    # SIMPLE = F: astropy takes whatever follows the header as its data.
                    entry['nonstandard'] = True
                if isinstance(h, fits.BinTableHDU) and not h.header.get('ZTABLE', False) and not h.header.get('ZIMAGE', False):
                    entry['columns'] = columns_of(h)
                hdus.append(entry)
            result[path] = {'hdus': hdus}
    except Exception as e:
        result[path] = {'error': type(e).__name__ + ': ' + str(e)}
json.dump(result, sys.stdout)
`;

/** Column values of HDU `hdu` as astropy reads them (scaled, unsigned, TNULL left as stored). */
export async function astropyColumns(path: string, hdu: number): Promise<Record<string, unknown[]>> {
  const { stdout } = await run(PYTHON, ['-c', DUMP_COLUMNS, path, String(hdu)], { maxBuffer: MAX_OUTPUT });
  return JSON.parse(stdout) as Record<string, unknown[]>;
}

/** How astropy sees one HDU: where it lies (data span padded) and, for binary tables, the column values. */
export interface AstropyHdu {
  readonly headerStart: number;
  readonly dataStart: number;
  readonly dataSpan: number;
  /** SIMPLE = F: astropy's data span is then whatever follows the header, not what NAXIS says. */
  readonly nonstandard?: boolean;
  readonly columns?: Record<string, unknown[]>;
}

/** Several files through astropy in one run: per path its HDUs, or the error astropy raised opening it. */
export async function astropyFiles(paths: readonly string[]): Promise<Record<string, { hdus?: AstropyHdu[]; error?: string }>> {
  const { stdout } = await run(PYTHON, ['-c', DUMP_FILES, ...paths], { maxBuffer: MAX_OUTPUT });
  return JSON.parse(stdout) as Record<string, { hdus?: AstropyHdu[]; error?: string }>;
}

/** STILTS's CSV rendering of HDU `hdu` (`stilts tcopy in=path#hdu ofmt=csv`). */
export async function stiltsCsv(path: string, hdu: number): Promise<string> {
  const { stdout } = await run('stilts', ['tcopy', `in=${path}#${hdu}`, 'ofmt=csv'], { maxBuffer: MAX_OUTPUT });
  return stdout;
}

function encodeNumber(v: number | bigint, info: ColumnInfo): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  // astropy hands out 64-bit integers; the dump writes those as strings.
  if (info.type === 'int64' || info.type === 'uint64') return String(v);
  return v;
}

/**
 * One of our cells in the form the astropy dump uses, so that the two compare with deepEqual:
 * integer nulls as their null value (scaled ones scaled), logical nulls as false, float nulls as NaN.
 */
export function astropyCell(info: ColumnInfo, data: ColumnBatch['columns'][number], row: number): unknown {
  const cell = getCell(info, data, row);
  const nullCell = (): unknown => {
    if (info.type === 'boolean') return false;
    if (info.type === 'string') return '';
    // astropy scales a stored TNULL like any other value.
    if (info.storage) return info.nullValue !== undefined ? encodeNumber(info.storage.zero + info.storage.scale * Number(info.nullValue), info) : 'NaN';
    if (info.type === 'float32' || info.type === 'float64') return 'NaN';
    if (info.nullValue !== undefined) return encodeNumber(info.nullValue, info);
    return null;
  };
  const one = (v: CellValue): unknown => {
    if (v === null) return nullCell();
    if (info.type === 'bit') return v === 1;
    if (typeof v === 'number' || typeof v === 'bigint') return encodeNumber(v, info);
    if (Array.isArray(v)) return v.map((x) => one(x)); // complex pairs
    return v;
  };
  const scalar = info.shape.length === 0 && !info.variable;
  if (scalar || (info.variable && info.type === 'string')) return one(cell);
  return (cell as CellValue[]).map((x) => one(x));
}

/** A whole batch in the astropy dump's form, keyed by column name. */
export function astropyColumnsOf(infos: readonly ColumnInfo[], batch: ColumnBatch): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  infos.forEach((info, c) => {
    const cells: unknown[] = [];
    for (let r = 0; r < batch.rowCount; r++) cells.push(astropyCell(info, batch.columns[c], r));
    out[info.name] = cells;
  });
  return out;
}
