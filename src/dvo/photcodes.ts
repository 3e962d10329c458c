// Photcodes: the numeric codes that say where a measurement came from (paper: SEC codes are
// the filter systems of the averages, DEP codes a camera's measurements with image metadata,
// REF codes external catalogues). Ours:
//   SEC  g r i z y w                       codes 1..6 (the order of the `.cps` rows of an object)
//   DEP  GPC1.<filter>.XYnn (one per chip)  10000 + 100·(filter slot + 1) + OTA number
//   DEP  GPC1.<filter>.STK (stacks)         20000 + filter slot + 1
//   REF  2MASS.J/H/K, GAIA.G                30001..30004
// Zero points are kept in C_LAM (millimag), as the layout's primary calibration term.
import { FitsFile, fitsTable, Header, writeFits } from '../fits/index.ts';
import { collectTable, memoryTable } from '../table/index.ts';
import { ColumnStore } from './column-store.ts';
import { DvoError } from './errors.ts';
import { EXTNAME, PHOTCODE_COLUMNS } from './layouts.ts';

/** The photcode classes. */
export type PhotcodeType = 'PRI' | 'SEC' | 'DEP' | 'REF';

/** Which match radius applies to a photcode's measurements. */
export type MatchClass = 'chip' | 'stack' | 'ref';

/** One photcode. */
export interface Photcode {
  readonly code: number;
  readonly name: string;
  readonly type: PhotcodeType;
  /** Nominal zero point, magnitudes. */
  readonly zeroPoint: number;
  /** For DEP and REF codes: the SEC code (filter) they are averaged into; 0 if none. */
  readonly equiv: number;
}

/** The filters of the SEC photcodes, in `.cps` order. */
export const FILTERS = Object.freeze(['g', 'r', 'i', 'z', 'y', 'w'] as const);

/** A filter name. */
export type Filter = (typeof FILTERS)[number];

const TYPE_CODE: Readonly<Record<PhotcodeType, number>> = { PRI: 1, SEC: 2, DEP: 3, REF: 4 };
const TYPE_OF = ['', 'PRI', 'SEC', 'DEP', 'REF'] as const;

// Nominal GPC1 zero points (mag for 1 count/s), used only when a catalogue gives none.
const NOMINAL_ZP: Readonly<Record<Filter, number>> = { g: 24.56, r: 24.75, i: 24.61, z: 24.25, y: 23.31, w: 26.0 };

/** The SEC code of a filter. */
export function secCode(filter: Filter): number {
  return FILTERS.indexOf(filter) + 1;
}

/** The DEP photcode name of a GPC1 chip (`GPC1.g.XY33`). */
export function chipPhotcodeName(filter: Filter, chip: string): string {
  return `GPC1.${filter}.${chip.toUpperCase()}`;
}

/** The DEP photcode name of GPC1 stacks in a filter (`GPC1.g.STK`). */
export function stackPhotcodeName(filter: Filter): string {
  return `GPC1.${filter}.STK`;
}

/** The photcodes a new database starts with. */
export function defaultPhotcodes(): Photcode[] {
  const out: Photcode[] = [];
  FILTERS.forEach((f, slot) => out.push({ code: slot + 1, name: f, type: 'SEC', zeroPoint: 0, equiv: 0 }));
  FILTERS.forEach((f, slot) => {
    for (let ix = 0; ix < 8; ix++) {
      for (let iy = 0; iy < 8; iy++) {
        if ((ix === 0 || ix === 7) && (iy === 0 || iy === 7)) continue;
        const ota = 10 * ix + iy;
        out.push({ code: 10000 + 100 * (slot + 1) + ota, name: chipPhotcodeName(f, `XY${ix}${iy}`), type: 'DEP', zeroPoint: NOMINAL_ZP[f], equiv: slot + 1 });
      }
    }
    out.push({ code: 20000 + slot + 1, name: stackPhotcodeName(f), type: 'DEP', zeroPoint: NOMINAL_ZP[f], equiv: slot + 1 });
  });
  out.push({ code: 30001, name: '2MASS.J', type: 'REF', zeroPoint: 0, equiv: 0 });
  out.push({ code: 30002, name: '2MASS.H', type: 'REF', zeroPoint: 0, equiv: 0 });
  out.push({ code: 30003, name: '2MASS.K', type: 'REF', zeroPoint: 0, equiv: 0 });
  out.push({ code: 30004, name: 'GAIA.G', type: 'REF', zeroPoint: 0, equiv: 0 });
  return out;
}

/** A database's photcodes, looked up by name or code. */
export class PhotcodeTable {
  readonly codes: readonly Photcode[];
  private readonly names = new Map<string, Photcode>();
  private readonly numbers = new Map<number, Photcode>();

  constructor(codes: readonly Photcode[]) {
    this.codes = codes;
    for (const c of codes) {
      this.names.set(c.name.toUpperCase(), c);
      this.numbers.set(c.code, c);
    }
  }

  /** The SEC photcodes (filters), in `.cps` slot order. */
  get secCodes(): Photcode[] {
    return this.codes.filter((c) => c.type === 'SEC').sort((a, b) => a.code - b.code);
  }

  /** The photcode of a name; throws `dvo_unknown_photcode` listing how names look. */
  byName(name: string, where = ''): Photcode {
    const c = this.names.get(name.toUpperCase());
    if (!c) {
      throw new DvoError('dvo_unknown_photcode', `${where}photcode ${name} is not in this database's Photcodes.dat (known: SEC ${this.secCodes.map((s) => s.name).join(' ')}, DEP like GPC1.g.XY33 and GPC1.g.STK, REF like 2MASS.J); check the catalogue's FPA.FILTER`);
    }
    return c;
  }

  /** The photcode of a number, if known. */
  byCode(code: number): Photcode | undefined {
    return this.numbers.get(code);
  }

  /** The `.cps` slot (0-based) a measurement with this photcode is averaged into; -1 for none. */
  secSlot(code: number): number {
    const c = this.numbers.get(code);
    if (!c) return -1;
    const sec = c.type === 'SEC' ? c.code : c.equiv;
    return sec > 0 ? this.secCodes.findIndex((s) => s.code === sec) : -1;
  }

  /** The match-radius class of a photcode. */
  matchClass(code: number): MatchClass {
    const c = this.numbers.get(code);
    if (!c || c.type === 'REF') return 'ref';
    return c.name.toUpperCase().endsWith('.STK') ? 'stack' : 'chip';
  }
}

/** Writes `Photcodes.dat` (atomically). */
export async function writePhotcodes(path: string, codes: readonly Photcode[]): Promise<void> {
  const store = new ColumnStore(PHOTCODE_COLUMNS, codes.length);
  store.grow(codes.length);
  const code = store.u16('CODE');
  const name = store.str('NAME');
  const type = store.u8('TYPE');
  const clam = store.i16('C_LAM');
  const equiv = store.i32('EQUIV');
  codes.forEach((c, i) => {
    code[i] = c.code;
    name[i] = c.name;
    type[i] = TYPE_CODE[c.type];
    clam[i] = Math.round(c.zeroPoint * 1000);
    equiv[i] = c.equiv;
  });
  await writeFits(path, [{ table: memoryTable(PHOTCODE_COLUMNS, [store.toBatch()], { name: EXTNAME.photcode }) }], {
    primaryHeader: new Header().set('DVOTABLE', 'PHOTCODES', 'DVO photometric codes'),
  });
}

/** Reads `Photcodes.dat`. */
export async function readPhotcodes(path: string): Promise<PhotcodeTable> {
  const file = await FitsFile.open(path);
  try {
    const table = fitsTable(file, EXTNAME.photcode);
    const b = await collectTable(table, { columns: ['CODE', 'NAME', 'TYPE', 'C_LAM', 'EQUIV'] });
    const [code, name, type, clam, equiv] = b.columns.map((c) => c.values);
    const out: Photcode[] = [];
    for (let i = 0; i < b.rowCount; i++) {
      const t = TYPE_OF[Number(type[i])];
      if (!t) throw new DvoError('dvo_damaged', `${path}: row ${i + 1} has photcode type ${String(type[i])}; expected 1..4 (PRI SEC DEP REF)`);
      out.push({ code: Number(code[i]), name: String(name[i]).trim(), type: t, zeroPoint: Number(clam[i]) / 1000, equiv: Number(equiv[i]) });
    }
    return new PhotcodeTable(out);
  } finally {
    await file.close();
  }
}
