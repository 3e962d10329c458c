// Helpers of the VOTable tests: temporary directories and the independent readers
// (astropy.io.votable, STILTS) whose view of a file the tests compare with ours.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { collectTable, getCell, type CellValue, type Table } from '../table/index.ts';

const run = promisify(execFile);

export { withTempDir as withDir } from '../common/index.ts';

/** A cell as the tests compare it: bigints and floats as text, so equal means equal. */
export type Cell = string | boolean | null | Cell[];

/** Our cells of a table, in the comparable form. */
export async function ourCells(table: Table): Promise<Cell[][]> {
  const batch = await collectTable(table);
  const rows: Cell[][] = [];
  for (let r = 0; r < batch.rowCount; r++) {
    rows.push(table.columns.map((c, i) => {
      let v = getCell(c, batch.columns[i], r);
      // bits compare as booleans, as astropy reads them
      if (c.type === 'bit') v = asBool(v);
      // an integer equal to the column's null value is a null
      if (c.nullValue !== undefined) v = nullsOf(v, c.nullValue);
      // float32 values as float32 (a reader that hands out doubles is rounded the same way)
      const cell = comparable(v);
      return c.type === 'float32' || c.type === 'complex64' ? asFloat32(cell) : cell;
    }));
  }
  return rows;
}

function nullsOf(v: CellValue, nullValue: number | bigint): CellValue {
  if (Array.isArray(v)) return v.map((x) => nullsOf(x, nullValue));
  return v !== null && (typeof v === 'number' || typeof v === 'bigint') && BigInt(v) === BigInt(nullValue) ? null : v;
}

/** Float text rounded to float32 and written shortest for float32 (so 0.1f is "0.10000000149011612" either way). */
export function asFloat32(v: Cell): Cell {
  if (Array.isArray(v)) return v.map(asFloat32);
  if (typeof v !== 'string') return v;
  const x = Number(v);
  return Number.isNaN(x) ? v : String(Math.fround(x));
}

function asBool(v: CellValue): CellValue {
  if (Array.isArray(v)) return v.map(asBool);
  return v === null ? null : v !== 0;
}

/** A plain value in the comparable form (numbers as their shortest text; NaN as null). */
export function comparable(v: CellValue): Cell {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map(comparable);
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (Number.isNaN(v)) return null;
  return String(v);
}

/** What astropy.io.votable reads from a file: field attributes and comparable cells, per table. */
export interface AstropyView {
  tables: {
    name: string | null;
    fields: { name: string; datatype: string; arraysize: string | null; unit: string | null; ucd: string | null; null: string | null; description: string | null }[];
    rows: Cell[][];
  }[];
}

const ASTROPY_DUMP = `
import sys, json, math, warnings
import numpy as np
warnings.simplefilter('ignore')
from astropy.io.votable import parse

def scalar(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode('utf-8')
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    if isinstance(v, (np.complexfloating, complex)):
        return [scalar(float(v.real)), scalar(float(v.imag))]
    f = float(v)
    if math.isnan(f):
        return None
    if math.isinf(f):
        return 'Infinity' if f > 0 else '-Infinity'
    return f

def cell(v, m):
    if isinstance(v, np.ma.MaskedArray):
        m = np.ma.getmaskarray(v)
        v = v.data
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return None if bool(np.all(m)) else scalar(v.item())
        mm = np.broadcast_to(np.asarray(m), v.shape) if np.ndim(m) else np.full(v.shape, bool(m))
        # astropy keeps VOTable's dimensions reversed (C order): ravel gives the file's order
        flat = v.ravel()
        fm = mm.ravel()
        return [None if bool(b) else scalar(x) for x, b in zip(flat.tolist() if v.dtype.kind not in 'SUc' else list(flat), fm)]
    if bool(np.all(m)):
        return None
    return scalar(v)

out = []
for t in parse(sys.argv[1]).iter_tables():
    fields = [{'name': f.name, 'datatype': f.datatype, 'arraysize': f.arraysize, 'unit': str(f.unit) if f.unit is not None else None,
               'ucd': f.ucd, 'null': (None if f.values.null is None else str(f.values.null)), 'description': f.description} for f in t.fields]
    arr = t.array
    names = arr.dtype.names
    cols = [arr[n] for n in names]
    masks = [np.ma.getmaskarray(arr[n]) for n in names]
    rows = []
    for i in range(len(arr)):
        rows.append([cell(cols[j][i], masks[j][i]) for j in range(len(names))])
    out.append({'name': t.name, 'fields': fields, 'rows': rows})
json.dump({'tables': out}, sys.stdout)
`;

// astropy hands floats over as JSON numbers (exact), integers as text: both become our text.
function normalize(v: unknown): Cell {
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === 'number') return String(v);
  return v as Cell;
}

/** Reads a VOTable with astropy.io.votable (the Debian python3-astropy of /usr/bin/python3). */
export async function astropyView(path: string): Promise<AstropyView> {
  const { stdout } = await run('/usr/bin/python3', ['-c', ASTROPY_DUMP, path], { maxBuffer: 1 << 28 });
  const view = JSON.parse(stdout) as AstropyView;
  for (const t of view.tables) t.rows = t.rows.map((r) => r.map(normalize));
  return view;
}

export { runPython as python } from '../common/index.ts';

/** Runs STILTS with the arguments given; returns its standard output. */
export async function stilts(args: string[]): Promise<string> {
  const { stdout } = await run('stilts', args, { maxBuffer: 1 << 28 });
  return stdout;
}
