// The FITS fuzzer: valid files (plain tables of every column type with P/Q arrays and
// strings, a multi-HDU file with images, tile-compressed tables) are damaged in ways a real
// file gets damaged or a hostile one is built (bytes flipped, cut short, keywords changed,
// heap descriptors and tiles pointing anywhere), then opened and read in full. Each case
// must end with data or one of our typed errors: never another exception, never a hang.
//
// Cases run in worker threads so that a case stuck in a synchronous loop can be stopped
// (a timer on the same thread would never fire); each case is made from (seed, case
// number) alone, so any one of them can be rebuilt and rerun by itself.
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { isIppError } from '../../common/index.ts';
import {
  checkBatch, columnIndexes, columnInfo, getCell, memoryTable,
  type ColumnBatch, type ColumnData, type ColumnInfo, type Table,
} from '../../table/index.ts';
import { encodeRows, MemoryHeap } from '../bintable-codec.ts';
import { columnDefsFromInfos, rowBytesOf } from '../column-defs.ts';
import { compressedTableLayout, writeCompressedFits } from '../compress/index.ts';
import { FitsFile } from '../fits-file.ts';
import { bintableHeader, primaryHeader, writeFits } from '../fits-writer.ts';
import { BLOCK, CARD, Header } from '../header.ts';
import { fitsTable } from '../open-table.ts';
import { elementBytes } from '../tform.ts';
import { verifyFits } from '../verify.ts';
import { mulberry32 } from '../../common/index.ts';

// ---------------------------------------------------------------------------------------
// Deterministic randomness

/** A small seeded random source (mulberry32); every case draws from its own. */
export class Random {
  private readonly source: () => number;

  constructor(seed: number) {
    this.source = mulberry32(seed);
  }

  /** A number in [0, 1). */
  next(): number {
    return this.source() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The random source of case `index` of run `seed` (independent of every other case). */
export function caseRandom(seed: number, index: number): Random {
  return new Random(mix(seed >>> 0, index >>> 0));
}

// ---------------------------------------------------------------------------------------
// The corpus: valid files to damage

/** One valid file of the corpus, and where its parts are (so damage can be aimed). */
export interface CorpusFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly hdus: readonly HduLayout[];
}

/** Where one HDU's parts lie in a corpus file. */
export interface HduLayout {
  readonly index: number;
  readonly kind: string;
  readonly headerStart: number;
  readonly dataStart: number;
  readonly dataBytes: number;
  /** Each card's keyword and byte offset in the file. */
  readonly cards: readonly { readonly keyword: string; readonly offset: number }[];
  /** The header's values, to derive plausible wrong ones. */
  readonly values: ReadonlyMap<string, unknown>;
  readonly rows: number;
  readonly rowBytes: number;
  /** Descriptor columns of a plain table: byte offset in the row, Q or P, bytes per element. */
  readonly descriptors: readonly { readonly byteOffset: number; readonly q: boolean; readonly elementBytes: number }[];
  readonly heapStart: number;
  readonly heapSize: number;
  /** A compressed table's cells: one descriptor per column per tile. */
  readonly cells?: { readonly tiles: number; readonly cellBytes: number; readonly offsets: readonly number[]; readonly q: readonly boolean[] };
}

type Numeric = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** A table of every column type the writer stores: nulls, scaling, shapes, strings, P arrays. */
function everyTypeTable(rows: number, seed: number, name = 'EVERY', variableStrings = true): Table {
  const r = new Random(seed);
  const columns: ColumnInfo[] = [];
  const data: ColumnData[] = [];
  const add = (info: ColumnInfo, d: ColumnData) => { columns.push(info); data.push(d); };
  const nulls = (n: number, every: number) => Uint8Array.from({ length: n }, (_, i) => (i % every === 3 ? 0 : 1));
  const fill = <A extends Numeric>(a: A, f: (i: number) => number): A => { for (let i = 0; i < a.length; i++) a[i] = f(i); return a; };
  const variable = <A extends Numeric>(alloc: (n: number) => A, f: (i: number) => number, slots = 1) => {
    const offsets = new Int32Array(rows + 1);
    for (let i = 0; i < rows; i++) offsets[i + 1] = offsets[i] + r.int(5);
    return { values: fill(alloc(offsets[rows] * slots), f), offsets };
  };
  add(columnInfo('flag', 'boolean'), { values: fill(new Uint8Array(rows), () => r.int(2)), valid: nulls(rows, 5) });
  add(columnInfo('bits', 'bit', { shape: [11] }), { values: fill(new Uint8Array(rows * 11), () => r.int(2)) });
  add(columnInfo('i8', 'int8', { nullValue: -128 }), { values: fill(new Int8Array(rows), () => r.range(-127, 127)), valid: nulls(rows, 7) });
  add(columnInfo('u8', 'uint8', { nullValue: 255 }), { values: fill(new Uint8Array(rows), () => r.int(255)) });
  add(columnInfo('i16', 'int16', { nullValue: -999, unit: 'count' }), { values: fill(new Int16Array(rows), () => r.range(-30000, 30000)), valid: nulls(rows, 6) });
  add(columnInfo('u16', 'uint16'), { values: fill(new Uint16Array(rows), () => r.int(65536)) });
  add(columnInfo('i32', 'int32'), { values: fill(new Int32Array(rows), () => r.range(-2e9, 2e9)) });
  add(columnInfo('u32', 'uint32', { nullValue: 0 }), { values: fill(new Uint32Array(rows), () => 1 + r.int(4e9)) });
  add(columnInfo('i64', 'int64', { nullValue: -1n }), { values: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i) * 1234567890123n - 7n) });
  add(columnInfo('u64', 'uint64'), { values: BigUint64Array.from({ length: rows }, (_, i) => 18446744073709551615n - BigInt(i)) });
  add(columnInfo('f32', 'float32', { unit: 'mag' }), { values: fill(new Float32Array(rows), (i) => (i % 9 === 0 ? NaN : r.next() * 30)) });
  add(columnInfo('f64', 'float64'), { values: fill(new Float64Array(rows), () => r.next() * 360) });
  add(columnInfo('img', 'float64', { shape: [3, 2] }), { values: fill(new Float64Array(rows * 6), (i) => i / 7) });
  add(columnInfo('cube', 'int16', { shape: [2, 2, 2] }), { values: fill(new Int16Array(rows * 8), (i) => i % 3000) });
  add(columnInfo('one', 'int32', { shape: [1] }), { values: fill(new Int32Array(rows), (i) => -i) });
  add(columnInfo('c64', 'complex64'), { values: fill(new Float32Array(rows * 2), (i) => i - 3) });
  add(columnInfo('c128', 'complex128', { shape: [2] }), { values: fill(new Float64Array(rows * 4), (i) => i * 1e-5) });
  add(columnInfo('name', 'string', { width: 12 }), { values: Array.from({ length: rows }, (_, i) => (i % 4 === 0 ? '' : `obj-${i}`)) });
  add(columnInfo('tags', 'string', { width: 4, shape: [3] }), { values: Array.from({ length: rows * 3 }, (_, i) => 'abcd'.slice(0, i % 5)) });
  add(columnInfo('scaled', 'float64', { storage: { type: 'int16', scale: 0.01, zero: 100 }, nullValue: -32768 }), { values: fill(new Float64Array(rows), (i) => 100 + 0.01 * ((i % 2000) - 1000)) });
  add(columnInfo('vj', 'int32', { variable: true, nullValue: -2147483648 }), variable((n) => new Int32Array(n), (i) => i * 3));
  add(columnInfo('vd', 'float64', { variable: true }), variable((n) => new Float64Array(n), (i) => i / 3));
  add(columnInfo('vu', 'uint16', { variable: true }), variable((n) => new Uint16Array(n), (i) => (i * 77) % 65536));
  add(columnInfo('vc', 'complex64', { variable: true }), variable((n) => new Float32Array(n), (i) => i, 2));
  // Tile compression refuses variable-length strings (funpack cannot restore them).
  if (variableStrings) add(columnInfo('vs', 'string', { variable: true }), { values: Array.from({ length: rows }, (_, i) => 'variable-string'.slice(0, i % 16)) });
  return memoryTable(columns, [{ rowCount: rows, columns: data }], { name, params: [{ name: 'TELESCOP', value: 'PS1' }, { name: 'EXPTIME', value: 30.5 }] });
}

/** A small table of the benchmark's kind: twenty plain numeric columns. */
function plainTable(rows: number, seed: number, name: string): Table {
  const r = new Random(seed);
  const columns = [
    columnInfo('objID', 'int64'), columnInfo('ra', 'float64', { unit: 'deg' }), columnInfo('dec', 'float64', { unit: 'deg' }),
    columnInfo('flux', 'float32'), columnInfo('flags', 'int32'), columnInfo('filterID', 'uint8'), columnInfo('region', 'int16', { nullValue: -1 }),
  ];
  const batch: ColumnBatch = {
    rowCount: rows,
    columns: [
      { values: BigInt64Array.from({ length: rows }, (_, i) => 100000000000000000n + BigInt(i) * 7919n) },
      { values: Float64Array.from({ length: rows }, () => r.next() * 360) },
      { values: Float64Array.from({ length: rows }, () => r.next() * 180 - 90) },
      { values: Float32Array.from({ length: rows }, () => r.next() * 1e-3) },
      { values: Int32Array.from({ length: rows }, () => r.int(2 ** 31)) },
      { values: Uint8Array.from({ length: rows }, () => 1 + r.int(5)) },
      { values: Int16Array.from({ length: rows }, (_, i) => (i % 10 === 0 ? -1 : r.int(30000))), valid: Uint8Array.from({ length: rows }, (_, i) => (i % 10 === 0 ? 0 : 1)) },
    ],
  };
  return memoryTable(columns, [batch], { name });
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) { out.set(p, pos); pos += p.length; }
  return out;
}

function padBlock(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.length / BLOCK) * BLOCK);
  out.set(bytes);
  return out;
}

/** An image HDU (primary or extension) of 16-bit values, made by hand: the writers make tables only. */
function imageHdu(primary: boolean, width: number, height: number, extname?: string): Uint8Array {
  const h = new Header();
  if (primary) h.set('SIMPLE', true); else h.set('XTENSION', 'IMAGE');
  h.set('BITPIX', 16).set('NAXIS', 2).set('NAXIS1', width).set('NAXIS2', height);
  if (primary) h.set('EXTEND', true); else h.set('PCOUNT', 0).set('GCOUNT', 1);
  if (extname) h.set('EXTNAME', extname);
  h.set('BSCALE', 1).set('BZERO', 32768);
  const data = new Uint8Array(width * height * 2);
  const dv = new DataView(data.buffer);
  for (let i = 0; i < width * height; i++) dv.setInt16(i * 2, (i * 37) % 65536 - 32768);
  return concat([h.toBytes(), padBlock(data)]);
}

/** A table with Q (64-bit) descriptors and a THEAP gap, assembled from the writer's pieces (the writer picks Q only past 2 GiB of heap). */
function qTableFile(rows: number, seed: number): Uint8Array {
  const r = new Random(seed);
  const infos = [
    columnInfo('id', 'int32', { nullValue: -1 }),
    columnInfo('arr', 'float64', { variable: true }),
    columnInfo('txt', 'string', { variable: true }),
    columnInfo('ints', 'int16', { variable: true }),
  ];
  const off = (k: number) => { const o = new Int32Array(rows + 1); for (let i = 0; i < rows; i++) o[i + 1] = o[i] + r.int(k); return o; };
  const oa = off(6);
  const oi = off(4);
  const batch: ColumnBatch = {
    rowCount: rows,
    columns: [
      { values: Int32Array.from({ length: rows }, (_, i) => i) },
      { values: Float64Array.from({ length: oa[rows] }, (_, i) => i * 0.5), offsets: oa },
      { values: Array.from({ length: rows }, (_, i) => 'qstring'.slice(0, i % 8)) },
      { values: Int16Array.from({ length: oi[rows] }, (_, i) => i - 100), offsets: oi },
    ],
  };
  const defs = columnDefsFromInfos(infos, { heapSize: 2 ** 31, maxLengths: [undefined, 5, 7, 3] });
  const heap = new MemoryHeap();
  const rowBytes = rowBytesOf(defs);
  const main = encodeRows(defs, batch, rowBytes, heap);
  // A gap between the rows and the heap (THEAP), which our writer never leaves.
  const gap = 100;
  const header = bintableHeader(defs, rows, gap + heap.size, { name: 'QTABLE' });
  header.insert(header.indexOf('TFIELDS') + 1, { keyword: 'THEAP', value: main.length + gap, comment: 'heap offset' });
  return concat([primaryHeader().toBytes(), header.toBytes(), padBlock(concat([main, new Uint8Array(gap), heap.bytes()]))]);
}

/**
 * Writes the corpus into `dir` with our writers and returns the files with their layouts.
 * Deterministic: the same files every time.
 */
export async function buildCorpus(dir: string): Promise<CorpusFile[]> {
  await mkdir(dir, { recursive: true });
  const files: { name: string; bytes: Uint8Array }[] = [];
  const written = async (name: string, write: (path: string) => Promise<void>) => {
    const path = join(dir, name);
    await write(path);
    files.push({ name, bytes: new Uint8Array(await readFile(path)) });
    await rm(path, { force: true });
  };
  await written('every.fits', (p) => writeFits(p, [{ table: everyTypeTable(40, 1) }]));
  files.push({ name: 'qtable.fits', bytes: qTableFile(30, 2) });
  // Several tables behind a primary image, and an image extension last.
  await written('tables.fits', (p) => writeFits(p, [
    { table: plainTable(50, 3, 'DETECTION') },
    { table: everyTypeTable(7, 4) },
    { table: plainTable(0, 5, 'EMPTY') },
  ]));
  const tables = files[files.length - 1];
  tables.bytes = concat([imageHdu(true, 12, 9), tables.bytes.subarray(BLOCK), imageHdu(false, 5, 4, 'MASK')]);
  tables.name = 'multi.fits';
  await written('compressed.fits', (p) => writeCompressedFits(p, [
    { table: everyTypeTable(60, 6, 'AUTO', false), compress: { algorithm: 'auto', tileRows: 16 } },
    { table: plainTable(40, 7, 'RICE'), compress: { algorithm: 'rice', tileRows: 9 } },
    { table: plainTable(30, 8, 'GZIP1'), compress: { algorithm: 'gzip1', tileRows: 30 } },
    { table: plainTable(10, 9, 'PLAIN'), compress: false },
  ]));
  await written('compressed-gzip2.fits', (p) => writeCompressedFits(p, [
    { table: everyTypeTable(45, 10, 'GZIP2', false), compress: { algorithm: 'gzip2', tileRows: 7 } },
  ]));
  const corpus: CorpusFile[] = [];
  for (const f of files) corpus.push({ name: f.name, bytes: f.bytes, hdus: await layoutOf(f.bytes, f.name) });
  return corpus;
}

async function layoutOf(bytes: Uint8Array, name: string): Promise<HduLayout[]> {
  const file = await FitsFile.fromBytes(bytes, name);
  const out: HduLayout[] = [];
  for (const h of file.hdus) {
    const cards: { keyword: string; offset: number }[] = [];
    for (let off = h.headerStart; off < h.dataStart; off += CARD) {
      const keyword = Buffer.from(bytes.subarray(off, off + 8)).toString('latin1').trimEnd();
      cards.push({ keyword, offset: off });
      if (keyword === 'END') break;
    }
    const values = new Map<string, unknown>(h.header.cards.filter((c) => c.value !== undefined).map((c) => [c.keyword, c.value]));
    let rows = h.rows ?? 0;
    let rowBytes = 0;
    const descriptors: HduLayout['descriptors'][number][] = [];
    let heapStart = h.dataStart + h.dataBytes;
    let heapSize = 0;
    let cells: HduLayout['cells'];
    if (h.kind === 'bintable') {
      const defs = file.columnDefs(h.index);
      rowBytes = defs.rowBytes;
      for (const d of defs.defs) {
        if (d.code === 'P' || d.code === 'Q') descriptors.push({ byteOffset: d.byteOffset, q: d.code === 'Q', elementBytes: d.elementCode === 'X' ? 1 : elementBytes(d.elementCode!) });
      }
      heapStart = h.dataStart + rows * rowBytes;
      heapSize = h.dataBytes - rows * rowBytes;
    } else if (h.kind === 'compressed-table') {
      const l = compressedTableLayout(file, h);
      rows = l.tiles;
      rowBytes = l.cellBytes;
      heapStart = l.heapStart;
      heapSize = l.heapSize;
      cells = { tiles: l.tiles, cellBytes: l.cellBytes, offsets: l.cellOffsets, q: l.cellQ };
    }
    out.push({
      index: h.index, kind: h.kind, headerStart: h.headerStart, dataStart: h.dataStart, dataBytes: h.dataBytes,
      cards, values, rows, rowBytes, descriptors, heapStart, heapSize, ...(cells ? { cells } : {}),
    });
  }
  await file.close();
  return out;
}

// ---------------------------------------------------------------------------------------
// Mutations

/** A damaged file: which corpus file it came from and what was done to it. */
export interface FuzzCase {
  readonly seed: number;
  readonly index: number;
  readonly base: string;
  readonly mutations: readonly string[];
  readonly bytes: Uint8Array;
}

/** A file being damaged: its bytes may grow or shrink, so it is held in a resizable box. */
interface Work {
  bytes: Uint8Array;
  readonly base: CorpusFile;
  readonly r: Random;
}

type Mutator = (w: Work) => string | undefined;

const HUGE_INTS = [
  '0', '1', '-1', '2', '7', '2147483647', '2147483648', '-2147483648', '4294967296', '9007199254740991',
  '9007199254740993', '9223372036854775807', '99999999999999999999', '1E20', '1.5', '-0', 'T', "'12'", '',
];

function intValue(r: Random, old: unknown): string {
  if (typeof old === 'number' && r.chance(0.5)) {
    const n = r.pick([old + 1, old - 1, old * 2, Math.floor(old / 2), old + r.range(2, 100), old - r.range(2, 100), old + 2880, old * 1000]);
    return String(n);
  }
  return r.pick(HUGE_INTS);
}

const TFORM_CODES = 'LXBIJKAEDCM';

function tformValue(r: Random): string {
  const repeat = r.pick(['', '', '0', '1', '2', '3', '7', '12', '100', '65536', '2147483648', '99999999999', '-1']);
  if (r.chance(0.35)) {
    const pq = r.pick(['P', 'Q']);
    const el = r.pick([...TFORM_CODES, 'P', 'Q', 'Z']);
    const emax = r.pick(['', '', '(0)', '(3)', '(100)', '(-1)', '(99999999999)', '(', '(x)']);
    return `'${r.pick(['', '1', '2', '0'])}${pq}${el}${emax}'`;
  }
  const code = r.chance(0.9) ? r.pick([...TFORM_CODES]) : r.pick(['Z', 'p', 'j', ' ', '']);
  const suffix = code === 'A' && r.chance(0.3) ? r.pick(['12', '4', '0', '99']) : '';
  return `'${repeat}${code}${suffix}'`;
}

function tdimValue(r: Random): string {
  const dims = r.pick(['1', '0', '2,3', '3,2', '3,2,1', '2,2,2', '12', '4,3', '100000,100000', '-1', '1,,2', 'a,b', '2147483647,2', '9999999999']);
  return r.chance(0.9) ? `'(${dims})'` : r.pick(["'('", "'()'", "'3'", '5']);
}

function valueFor(r: Random, keyword: string, old: unknown): string {
  if (/^(T|Z)FORM\d+$/.test(keyword)) return tformValue(r);
  if (/^TDIM\d+$/.test(keyword)) return tdimValue(r);
  if (/^ZCTYP\d+$/.test(keyword)) return `'${r.pick(['RICE_1', 'GZIP_1', 'GZIP_2', 'NOCOMPRESS', 'HCOMPRESS_1', 'PLIO_1', 'rice_1', '', 'GZIP_3'])}'`;
  if (/^(TSCAL|TZERO)\d+$/.test(keyword)) return r.pick(['0', '1', '-1', '0.0', '1E308', '-1E308', '1E-320', '32768', '2147483648', '9223372036854775808', '18446744073709551616', '128', '-128', "'x'", '']);
  if (keyword === 'BITPIX') return r.pick(['8', '16', '32', '64', '-32', '-64', '0', '7', '-8', '24']);
  if (keyword === 'XTENSION') return `'${r.pick(['BINTABLE', 'TABLE', 'IMAGE', 'A3DTABLE', 'FOO', ''])}'`;
  if (keyword === 'ZTABLE' || keyword === 'SIMPLE' || keyword === 'EXTEND') return r.pick(['T', 'F', '1', "'T'", '']);
  if (/^(TTYPE|EXTNAME|TUNIT)\d*$/.test(keyword)) return r.pick(["'DETECTION'", "''", "'a''b'", "'EVERY'", '3', "'x" + 'y'.repeat(60) + "'"]);
  if (/^TNULL\d+$/.test(keyword)) return r.pick(['0', '-1', '255', '-128', '32767', '-32768', '2147483647', '-9223372036854775808', '9223372036854775808', '1.5', "'a'"]);
  return intValue(r, old);
}

function writeText(bytes: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length && at + i < bytes.length; i++) bytes[at + i] = text.charCodeAt(i) & 0xff;
}

function cardText(keyword: string, value: string): string {
  const v = value.startsWith("'") ? value : value.padStart(20);
  return `${keyword.padEnd(8)}= ${v}`.slice(0, CARD).padEnd(CARD);
}

const TARGET_KEYWORDS = /^(NAXIS\d*|TFIELDS|PCOUNT|GCOUNT|THEAP|BITPIX|XTENSION|TFORM\d+|TDIM\d+|TNULL\d+|TSCAL\d+|TZERO\d+|TTYPE\d+|Z(FORM|CTYP)\d+|ZTILELEN|ZNAXIS\d|ZPCOUNT|ZTABLE|ZHEAPPTR|EXTNAME|SIMPLE|EXTEND)$/;

function pickHdu(w: Work, want?: (h: HduLayout) => boolean): HduLayout | undefined {
  const list = want ? w.base.hdus.filter(want) : w.base.hdus;
  return list.length ? w.r.pick(list) : undefined;
}

/** A structural keyword (or, now and then, any card) set to a wrong but plausible value. */
const changeKeyword: Mutator = (w) => {
  const h = pickHdu(w)!;
  const targets = h.cards.filter((c) => TARGET_KEYWORDS.test(c.keyword));
  const card = targets.length && w.r.chance(0.9) ? w.r.pick(targets) : w.r.pick(h.cards.filter((c) => c.keyword !== 'END'));
  const keyword = card.keyword || 'BLANK';
  const value = valueFor(w.r, keyword, h.values.get(keyword));
  writeText(w.bytes, card.offset, cardText(keyword, value));
  return `HDU ${h.index}: ${keyword} = ${value.trim() || '(no value)'}`;
};

/** A keyword the file lacks (THEAP, a TDIMn, TNULLn...) added before END, which moves down a card. */
const addKeyword: Mutator = (w) => {
  const h = pickHdu(w)!;
  const end = h.cards.find((c) => c.keyword === 'END');
  if (!end) return undefined;
  const tfields = Number(h.values.get('TFIELDS') ?? 3);
  const n = w.r.range(1, Math.max(1, tfields + 1));
  const main = h.rows * h.rowBytes;
  const choices: [string, () => string][] = [
    ['THEAP', () => String(w.r.pick([main, main + 1, main - 1, main + w.r.int(h.heapSize + 1), h.dataBytes, h.dataBytes + 1, 0, -1, 2 ** 31, 2 ** 53]))],
    ['ZHEAPPTR', () => String(w.r.pick([main, 0, -1, h.dataBytes + 1]))],
    [`TDIM${n}`, () => tdimValue(w.r)],
    [`TNULL${n}`, () => valueFor(w.r, 'TNULL1', undefined)],
    [`TSCAL${n}`, () => valueFor(w.r, 'TSCAL1', undefined)],
    [`TZERO${n}`, () => valueFor(w.r, 'TZERO1', undefined)],
    [`ZCTYP${n}`, () => valueFor(w.r, 'ZCTYP1', undefined)],
    [`TFORM${tfields + 1}`, () => tformValue(w.r)],
    ['GROUPS', () => 'T'],
    ['ZTABLE', () => 'T'],
    ['ZTILELEN', () => intValue(w.r, h.values.get('ZTILELEN'))],
    ['ZNAXIS2', () => intValue(w.r, h.values.get('NAXIS2'))],
  ];
  const [keyword, value] = w.r.pick(choices);
  const text = value();
  writeText(w.bytes, end.offset, cardText(keyword, text));
  // Room is left for END when the block has some; otherwise the header now has no END.
  if (end.offset + CARD < h.dataStart) writeText(w.bytes, end.offset + CARD, 'END'.padEnd(CARD));
  return `HDU ${h.index}: added ${keyword} = ${text.trim() || '(no value)'}`;
};

/** Cards deleted, swapped, duplicated, or END moved. */
const shuffleCards: Mutator = (w) => {
  const h = pickHdu(w)!;
  const cards = h.cards;
  const a = w.r.pick(cards);
  const b = w.r.pick(cards);
  const op = w.r.int(5);
  if (op === 0) {
    writeText(w.bytes, a.offset, ' '.repeat(CARD));
    return `HDU ${h.index}: card ${a.keyword || '(blank)'} blanked`;
  }
  if (op === 1) {
    // Earlier damage may have cut the file short; what lies past its end is left alone.
    if (Math.max(a.offset, b.offset) + CARD > w.bytes.length) return undefined;
    const ta = w.bytes.slice(a.offset, a.offset + CARD);
    w.bytes.copyWithin(a.offset, b.offset, b.offset + CARD);
    w.bytes.set(ta, b.offset);
    return `HDU ${h.index}: cards ${a.keyword} and ${b.keyword} swapped`;
  }
  if (op === 2) {
    w.bytes.copyWithin(a.offset, b.offset, b.offset + CARD);
    return `HDU ${h.index}: card ${b.keyword} copied over ${a.keyword}`;
  }
  if (op === 3) {
    writeText(w.bytes, a.offset, 'END'.padEnd(CARD));
    return `HDU ${h.index}: END written over ${a.keyword}`;
  }
  // A card continued (long-string convention) into the next.
  writeText(w.bytes, a.offset, cardText(a.keyword || 'LONG', `'${'x'.repeat(w.r.int(70))}&'`));
  writeText(w.bytes, a.offset + CARD, `CONTINUE  '${'y'.repeat(w.r.int(60))}${w.r.chance(0.5) ? '&' : ''}'`.padEnd(CARD));
  return `HDU ${h.index}: ${a.keyword} made a long string`;
};

const PRINTABLE = " =/'0123456789-+.EDTFABCDEFGHIJKLMNOPQRSTUVWXYZ()";

/** Bytes changed in a header: mostly printable (those get past the first check), now and then not. */
const flipHeader: Mutator = (w) => {
  const h = pickHdu(w)!;
  const n = w.r.range(1, 6);
  const where: number[] = [];
  for (let k = 0; k < n; k++) {
    const c = w.r.pick(h.cards);
    const at = c.offset + (w.r.chance(0.7) ? 10 + w.r.int(25) : w.r.int(CARD));
    w.bytes[at] = w.r.chance(0.85) ? PRINTABLE.charCodeAt(w.r.int(PRINTABLE.length)) : w.r.int(256);
    where.push(at);
  }
  return `HDU ${h.index}: header bytes at ${where.join(',')} changed`;
};

/** Bytes changed in the data: rows, heap, padding. */
const flipData: Mutator = (w) => {
  const h = pickHdu(w, (x) => x.dataBytes > 0);
  if (!h) return undefined;
  const n = w.r.pick([1, 1, 2, 4, 16]);
  for (let k = 0; k < n; k++) {
    const at = h.dataStart + w.r.int(h.dataBytes);
    w.bytes[at] = w.r.chance(0.5) ? w.bytes[at] ^ (1 << w.r.int(8)) : w.r.int(256);
  }
  return `HDU ${h.index}: ${n} data byte(s) changed`;
};

/** The file cut short: at a block boundary, inside an HDU's data, or anywhere. */
const truncate: Mutator = (w) => {
  const len = w.bytes.length;
  let at: number;
  const mode = w.r.int(3);
  if (mode === 0) at = BLOCK * w.r.int(Math.ceil(len / BLOCK));
  else if (mode === 1) {
    const h = w.r.pick(w.base.hdus);
    at = h.dataStart + w.r.int(Math.max(1, h.dataBytes));
  } else at = w.r.int(len);
  at = Math.min(at, len - 1);
  w.bytes = w.bytes.slice(0, at);
  return `truncated to ${at} bytes`;
};

/** Bytes inserted or removed, shifting everything after (a file damaged in transfer). */
const shift: Mutator = (w) => {
  const at = w.r.int(w.bytes.length);
  const n = w.r.pick([1, 8, 80, BLOCK, w.r.range(2, 5000)]);
  if (w.r.chance(0.5)) {
    const fill = new Uint8Array(n).map(() => (w.r.chance(0.5) ? 0x20 : w.r.int(256)));
    w.bytes = concat([w.bytes.subarray(0, at), fill, w.bytes.subarray(at)]);
    return `${n} bytes inserted at ${at}`;
  }
  w.bytes = concat([w.bytes.subarray(0, at), w.bytes.subarray(Math.min(w.bytes.length, at + n))]);
  return `${n} bytes removed at ${at}`;
};

/** Something after the last HDU: zeros, a partial extension, a header with no END. */
const append: Mutator = (w) => {
  const kind = w.r.int(4);
  let extra: Uint8Array;
  if (kind === 0) extra = new Uint8Array(BLOCK);
  else if (kind === 1) extra = new TextEncoder().encode('XTENSION'.padEnd(w.r.range(8, 200)));
  else if (kind === 2) {
    const h = w.base.hdus[w.base.hdus.length - 1];
    extra = w.base.bytes.slice(h.headerStart, h.dataStart + w.r.int(h.dataBytes + 1));
  } else extra = new Uint8Array(w.r.range(1, 4000)).map(() => w.r.int(256));
  w.bytes = concat([w.bytes, extra]);
  return `${extra.length} bytes appended (${['zeros', 'XTENSION', 'copy of last HDU', 'garbage'][kind]})`;
};

function interestingCount(r: Random, heapSize: number, elementBytes: number): bigint {
  return BigInt(r.pick([0, 1, 2, -1, 255, 65536, 2 ** 31 - 1, -(2 ** 31), Math.floor(heapSize / elementBytes), Math.floor(heapSize / elementBytes) + 1, r.int(100)]));
}

function interestingOffset(r: Random, heapSize: number): bigint {
  return BigInt(r.pick([0, 1, heapSize, heapSize - 1, heapSize + 1, -1, -8, 2 ** 31 - 1, -(2 ** 31), r.int(heapSize + 1)]));
}

function setDescriptor(bytes: Uint8Array, at: number, q: boolean, count: bigint, offset: bigint, huge: boolean): void {
  if (at < 0 || at + (q ? 16 : 8) > bytes.length) return;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (q) {
    dv.setBigInt64(at, huge ? BigInt.asIntN(64, count * 0x100000001n) : count);
    dv.setBigInt64(at + 8, huge ? BigInt.asIntN(64, offset + 2n ** 53n) : offset);
  } else {
    dv.setInt32(at, Number(BigInt.asIntN(32, count)));
    dv.setInt32(at + 4, Number(BigInt.asIntN(32, offset)));
  }
}

/** Heap descriptors (P/Q) of a plain table set to counts and offsets that may lie anywhere. */
const heapDescriptor: Mutator = (w) => {
  const h = pickHdu(w, (x) => x.descriptors.length > 0 && x.rows > 0);
  if (!h) return undefined;
  const n = w.r.range(1, 4);
  const what: string[] = [];
  for (let k = 0; k < n; k++) {
    const d = w.r.pick(h.descriptors);
    const row = w.r.int(h.rows);
    const count = interestingCount(w.r, h.heapSize, d.elementBytes);
    const offset = interestingOffset(w.r, h.heapSize);
    const huge = d.q && w.r.chance(0.15);
    setDescriptor(w.bytes, h.dataStart + row * h.rowBytes + d.byteOffset, d.q, count, offset, huge);
    what.push(`row ${row + 1}@${d.byteOffset} = (${count}, ${offset})${huge ? ' huge' : ''}`);
  }
  return `HDU ${h.index}: descriptors ${what.join('; ')}`;
};

function readCell(bytes: Uint8Array, at: number, q: boolean): { length: number; offset: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return q
    ? { length: Number(dv.getBigInt64(at)), offset: Number(dv.getBigInt64(at + 8)) }
    : { length: dv.getInt32(at), offset: dv.getInt32(at + 4) };
}

/** A compressed table's tile damaged: garbage bytes, a shortened stream, a cell pointing elsewhere. */
const garbageTile: Mutator = (w) => {
  const h = pickHdu(w, (x) => x.cells !== undefined && x.cells.tiles > 0);
  if (!h) return undefined;
  const cells = h.cells!;
  const tile = w.r.int(cells.tiles);
  const col = w.r.int(cells.offsets.length);
  const at = h.dataStart + tile * cells.cellBytes + cells.offsets[col];
  const q = cells.q[col];
  const { length, offset } = readCell(w.base.bytes, at, q);
  const stream = h.heapStart + offset;
  const op = w.r.int(6);
  const where = `HDU ${h.index}: tile ${tile + 1} column ${col + 1}`;
  if (op === 0) {
    for (let i = 0; i < length; i++) if (w.r.chance(0.5) || i < 4) w.bytes[stream + i] = w.r.int(256);
    return `${where}: compressed bytes replaced by garbage`;
  }
  if (op === 1) {
    const k = w.r.range(1, Math.max(1, Math.min(8, length)));
    for (let i = 0; i < k; i++) { const p = stream + w.r.int(Math.max(1, length)); w.bytes[p] ^= 1 << w.r.int(8); }
    return `${where}: ${k} bit(s) flipped in the compressed bytes`;
  }
  if (op === 2) {
    const cut = w.r.range(1, Math.max(1, length));
    setDescriptor(w.bytes, at, q, BigInt(length - cut), BigInt(offset), false);
    return `${where}: stream shortened by ${cut}`;
  }
  if (op === 3) {
    const other = w.r.int(cells.offsets.length);
    const otherTile = w.r.int(cells.tiles);
    const src = h.dataStart + otherTile * cells.cellBytes + cells.offsets[other];
    const c = readCell(w.base.bytes, src, cells.q[other]);
    setDescriptor(w.bytes, at, q, BigInt(c.length), BigInt(c.offset), false);
    return `${where}: points at tile ${otherTile + 1} column ${other + 1}`;
  }
  if (op === 4) {
    w.bytes.fill(0, stream, stream + Math.max(0, length));
    return `${where}: compressed bytes zeroed`;
  }
  const count = interestingCount(w.r, h.heapSize, 1);
  const off = interestingOffset(w.r, h.heapSize);
  setDescriptor(w.bytes, at, q, count, off, q && w.r.chance(0.2));
  return `${where}: cell = (${count}, ${off})`;
};

const MUTATORS: readonly { readonly name: string; readonly weight: number; readonly run: Mutator }[] = [
  { name: 'keyword', weight: 30, run: changeKeyword },
  { name: 'add-keyword', weight: 8, run: addKeyword },
  { name: 'cards', weight: 6, run: shuffleCards },
  { name: 'header-bytes', weight: 10, run: flipHeader },
  { name: 'data-bytes', weight: 12, run: flipData },
  { name: 'truncate', weight: 8, run: truncate },
  { name: 'shift', weight: 4, run: shift },
  { name: 'append', weight: 3, run: append },
  { name: 'heap-descriptor', weight: 14, run: heapDescriptor },
  { name: 'tile', weight: 16, run: garbageTile },
];
const TOTAL_WEIGHT = MUTATORS.reduce((n, m) => n + m.weight, 0);

/** Case `index` of run `seed`: a corpus file with one to three pieces of damage. */
export function makeCase(corpus: readonly CorpusFile[], seed: number, index: number): FuzzCase {
  const r = caseRandom(seed, index);
  const base = r.pick(corpus);
  const w: Work = { bytes: base.bytes.slice(), base, r };
  const mutations: string[] = [];
  const count = r.chance(0.7) ? 1 : r.range(2, 3);
  for (let tries = 0; mutations.length < count && tries < 20; tries++) {
    let pick = r.next() * TOTAL_WEIGHT;
    const m = MUTATORS.find((x) => (pick -= x.weight) < 0) ?? MUTATORS[0];
    const what = m.run(w);
    if (what !== undefined) mutations.push(`${m.name}: ${what}`);
  }
  return { seed, index, base: base.name, mutations, bytes: w.bytes };
}

// ---------------------------------------------------------------------------------------
// Running one case

/** How one case ended. */
export interface CaseOutcome {
  /** `read`: every table read; `rejected`: some part raised a typed error; `budget`: reading was stopped by the row budget. */
  readonly result: 'read' | 'rejected' | 'budget';
  /** The codes of the typed errors raised, in order. */
  readonly codes: readonly string[];
  /** Anything that is not one of our typed errors (a bug): where and what. */
  readonly failures: readonly string[];
}

/** Options of {@link exercise}. */
export interface ExerciseOptions {
  /** Also write the bytes to this path and run verifyFits on it. */
  readonly verifyPath?: string;
  /** Also read one column again in small batches (tests the column selection and slicing paths). */
  readonly secondPass?: { readonly column: number; readonly batchRows: number };
  /** Rows read per table before reading stops (a header may announce billions of empty rows). */
  readonly rowBudget?: number;
  /** Called for each HDU inside the same guard as the reads (the harness's own test throws from it). */
  readonly onHdu?: (hdu: number) => void;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const top = (error.stack ?? '').split('\n').slice(1, 4).map((l) => l.trim()).join(' | ');
    return `${error.name}: ${error.message}${top ? ` @ ${top}` : ''}`;
  }
  return `non-error thrown: ${String(error)}`;
}

class Budget extends Error {}

function touch(infos: readonly ColumnInfo[], batch: ColumnBatch, fail: (what: string) => void): void {
  try {
    checkBatch(infos, batch);
  } catch (error) {
    // A reader that hands out a batch unlike its own columns is a bug, whatever it raises.
    fail(`batch does not match its columns: ${describe(error)}`);
    return;
  }
  if (batch.rowCount === 0) return;
  for (let c = 0; c < infos.length; c++) {
    getCell(infos[c], batch.columns[c], 0);
    getCell(infos[c], batch.columns[c], batch.rowCount - 1);
  }
}

/**
 * Opens bytes as a FITS file and reads everything in it: every HDU's description, every
 * table with every column, every checksum; optionally verifyFits on a copy. Typed errors
 * are collected as codes; anything else is a failure.
 */
export async function exercise(bytes: Uint8Array, name: string, options: ExerciseOptions = {}): Promise<CaseOutcome> {
  const codes: string[] = [];
  const failures: string[] = [];
  let overBudget = false;
  const budget = options.rowBudget ?? 2_000_000;
  const guard = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (error) {
      if (error instanceof Budget) overBudget = true;
      else if (isIppError(error)) codes.push(error.code);
      else failures.push(`${what}: ${describe(error)}`);
    }
  };
  let file: FitsFile | undefined;
  await guard('FitsFile.fromBytes', async () => { file = await FitsFile.fromBytes(bytes, name); });
  if (file) {
    const f = file;
    for (const h of f.hdus) {
      await guard(`HDU ${h.index} description`, () => {
        void h.kind; void h.rows; void h.extname; void h.header.cards.length;
        void h.columns;
        options.onHdu?.(h.index);
      });
      if (h.kind === 'bintable' || h.kind === 'compressed-table') {
        await guard(`HDU ${h.index} read`, async () => {
          const table = fitsTable(f, h.index);
          void table.params;
          let rows = 0;
          for await (const b of table.batches()) {
            touch(table.columns, b, (what) => failures.push(`HDU ${h.index} read: ${what}`));
            rows += b.rowCount;
            if (rows > budget) throw new Budget();
          }
        });
        const second = options.secondPass;
        if (second) {
          await guard(`HDU ${h.index} second pass`, async () => {
            const table = fitsTable(f, h.index);
            if (table.columns.length === 0) return;
            // Names may repeat in a damaged file; asking by name gets the first column so named.
            const name = table.columns[second.column % table.columns.length].name;
            const info = table.columns[columnIndexes(table.columns, [name])[0]];
            let rows = 0;
            for await (const b of table.batches({ columns: [info.name], batchRows: second.batchRows })) {
              touch([info], b, (what) => failures.push(`HDU ${h.index} second pass: ${what}`));
              rows += b.rowCount;
              if (rows > budget) throw new Budget();
            }
          });
        }
      }
      await guard(`HDU ${h.index} checksums`, async () => { await f.verifyChecksums(h.index); });
    }
    await guard('close', () => f.close());
  }
  if (options.verifyPath) {
    const path = options.verifyPath;
    await writeFile(path, bytes);
    await guard('verifyFits', async () => {
      const report = await verifyFits(path);
      // verifyFits turns a reader's untyped error into a problem coded fits_internal.
      for (const p of report.problems) if (p.code === 'fits_internal') failures.push(`verifyFits: ${p.message}`);
    });
    await rm(path, { force: true });
  }
  const result = overBudget ? 'budget' : codes.length > 0 ? 'rejected' : 'read';
  // One fault repeats for every batch; keep each message once.
  return { result, codes, failures: [...new Set(failures)].slice(0, 10) };
}

// ---------------------------------------------------------------------------------------
// Running many cases in workers

/** A case that crashed, hung, or killed its worker. */
export interface FuzzFailure {
  readonly seed: number;
  readonly index: number;
  readonly kind: 'crash' | 'hang' | 'worker';
  readonly base: string;
  readonly mutations: readonly string[];
  readonly details: readonly string[];
}

/** What a run found. */
export interface FuzzReport {
  readonly seed: number;
  readonly first: number;
  readonly cases: number;
  readonly results: Readonly<Record<CaseOutcome['result'], number>>;
  /** How often each error code was raised. */
  readonly codes: Readonly<Record<string, number>>;
  /** How often each mutation kind was applied. */
  readonly mutations: Readonly<Record<string, number>>;
  readonly failures: readonly FuzzFailure[];
  /** The slowest cases (milliseconds), slowest first. */
  readonly slowest: readonly { readonly index: number; readonly ms: number; readonly mutations: readonly string[] }[];
}

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  readonly seed: number;
  readonly cases: number;
  /** The first case number (default 0), to rerun one case: `{ first: n, cases: 1 }`. */
  readonly first?: number;
  /** Worker threads (default 2). */
  readonly workers?: number;
  /** A case running longer than this is a hang (default 30 s: generous, as machines may be loaded). */
  readonly timeoutMs?: number;
  /** Run verifyFits on every n-th case (default 8; 0 for never). */
  readonly verifyEvery?: number;
  /** A directory for the corpus and verifyFits copies (created; the caller removes it). */
  readonly dir: string;
  /** Called after each case with the number done. */
  readonly onProgress?: (done: number, failures: number) => void;
  /** Tests of the harness itself: make these cases throw a TypeError or spin forever. */
  readonly selfTest?: { readonly crashAt?: readonly number[]; readonly hangAt?: readonly number[] };
}

interface WorkerData {
  readonly fitsFuzzWorker: true;
  readonly corpus: readonly CorpusFile[];
  readonly seed: number;
  readonly verifyEvery: number;
  readonly dir: string;
  readonly selfTest?: FuzzOptions['selfTest'];
}

type FromWorker =
  | { type: 'start'; index: number }
  | { type: 'done'; index: number; ms: number; base: string; mutations: string[]; outcome: CaseOutcome }
  | { type: 'idle' };

type ToWorker = { type: 'run'; from: number; to: number } | { type: 'stop' };

const CHUNK = 25;

/**
 * Runs cases `first .. first + cases - 1` of `seed` in worker threads, each case under a
 * watchdog: a case that does not finish within `timeoutMs` is reported as a hang (its
 * worker is stopped and a new one takes the remaining cases).
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const first = options.first ?? 0;
  const end = first + options.cases;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const corpus = await buildCorpus(join(options.dir, 'corpus'));
  const results: Record<CaseOutcome['result'], number> = { read: 0, rejected: 0, budget: 0 };
  const codes: Record<string, number> = {};
  const mutations: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  const times: { index: number; ms: number; mutations: readonly string[] }[] = [];
  let done = 0;
  // Work is handed out in chunks; a chunk cut short by a hang goes back on the queue.
  const queue: { from: number; to: number }[] = [];
  for (let s = first; s < end; s += CHUNK) queue.push({ from: s, to: Math.min(end, s + CHUNK) });
  const data: WorkerData = {
    fitsFuzzWorker: true, corpus, seed: options.seed, verifyEvery: options.verifyEvery ?? 8, dir: options.dir,
    ...(options.selfTest ? { selfTest: options.selfTest } : {}),
  };
  const failureOf = (index: number, kind: FuzzFailure['kind'], details: string[]): FuzzFailure => {
    let c: Pick<FuzzCase, 'base' | 'mutations'> = { base: '?', mutations: [] };
    try { c = makeCase(corpus, options.seed, index); } catch { /* reported by the worker already */ }
    return { seed: options.seed, index, kind, base: c.base, mutations: c.mutations, details };
  };

  await new Promise<void>((resolve, reject) => {
    let live = 0;
    const settle = (): void => {
      if (queue.length > 0) spawn();
      else if (live === 0) resolve();
    };
    const spawn = (): void => {
      live++;
      const worker = new Worker(new URL(import.meta.url), { workerData: data });
      let chunk: { from: number; to: number } | undefined;
      let current: { index: number; since: number } | undefined;
      let stopping = false;
      let retired = false;
      let answered = false;
      // Each worker leaves the pool once, whichever of exit, error or the watchdog comes first.
      const retire = (): boolean => {
        if (retired) return false;
        retired = true;
        clearInterval(watchdog);
        live--;
        return true;
      };
      const next = (): void => {
        chunk = queue.shift();
        if (!chunk) {
          stopping = true;
          worker.postMessage({ type: 'stop' } satisfies ToWorker);
          return;
        }
        worker.postMessage({ type: 'run', ...chunk } satisfies ToWorker);
      };
      // The rest of the chunk after a case that ended its worker goes back on the queue.
      const requeue = (after: number): void => {
        if (chunk && after + 1 < chunk.to) queue.unshift({ from: after + 1, to: chunk.to });
        chunk = undefined;
      };
      const lost = (kind: FuzzFailure['kind'], why: string): void => {
        if (current) {
          failures.push(failureOf(current.index, kind, [why]));
          done++;
          options.onProgress?.(done, failures.length);
          requeue(current.index);
          current = undefined;
        } else if (chunk) {
          queue.unshift(chunk);
          chunk = undefined;
        }
      };
      const watchdog = setInterval(() => {
        if (!current || performance.now() - current.since <= timeoutMs) return;
        if (!retire()) return;
        lost('hang', `no result after ${timeoutMs} ms`);
        void worker.terminate();
        settle();
      }, Math.min(1000, Math.max(50, timeoutMs / 10)));
      worker.on('message', (m: FromWorker) => {
        answered = true;
        if (m.type === 'start') current = { index: m.index, since: performance.now() };
        else if (m.type === 'idle') next();
        else {
          current = undefined;
          done++;
          results[m.outcome.result]++;
          for (const code of m.outcome.codes) codes[code] = (codes[code] ?? 0) + 1;
          for (const mut of m.mutations) { const k = mut.slice(0, mut.indexOf(':')); mutations[k] = (mutations[k] ?? 0) + 1; }
          if (m.outcome.failures.length) failures.push({ seed: options.seed, index: m.index, kind: 'crash', base: m.base, mutations: m.mutations, details: [...m.outcome.failures] });
          times.push({ index: m.index, ms: m.ms, mutations: m.mutations });
          options.onProgress?.(done, failures.length);
        }
      });
      const ended = (why: string): void => {
        if (!retire()) return;
        // A worker that never answered cannot run anything: respawning it would loop forever.
        if (!answered) { reject(new Error(`the fuzz worker did not start: ${why}`)); return; }
        // A worker that dies under a case (out of memory, a native crash...) is reported; the run goes on.
        if (!stopping) lost('worker', why);
        settle();
      };
      worker.on('error', (e) => ended(`worker error: ${describe(e)}`));
      worker.on('exit', (code) => ended(`worker exited with code ${code}`));
    };
    try {
      const slots = Math.max(1, Math.min(options.workers ?? 2, queue.length));
      for (let i = 0; i < slots; i++) spawn();
    } catch (error) {
      reject(error);
    }
  });
  times.sort((a, b) => b.ms - a.ms);
  failures.sort((a, b) => a.index - b.index);
  return { seed: options.seed, first, cases: options.cases, results, codes, mutations, failures, slowest: times.slice(0, 5) };
}

/** How to rebuild and rerun one failed case from the command line. */
export function reproduce(f: FuzzFailure): string {
  return `node scripts/fuzz.ts --seed ${f.seed} --first ${f.index} --cases 1`;
}

/** A failure as a few lines for a person: seed, case, base file, damage, what went wrong. */
export function formatFailure(f: FuzzFailure): string {
  return [
    `seed ${f.seed} case ${f.index} (${f.kind}) on ${f.base}: ${f.mutations.join(' + ')}`,
    ...f.details.map((d) => `    ${d}`),
    `    rerun: ${reproduce(f)}`,
  ].join('\n');
}

async function workerMain(data: WorkerData): Promise<void> {
  const port = parentPort!;
  const verifyDir = join(data.dir, `verify-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(verifyDir, { recursive: true });
  const runOne = async (index: number): Promise<void> => {
    port.postMessage({ type: 'start', index } satisfies FromWorker);
    const t0 = performance.now();
    let c: FuzzCase;
    try {
      c = makeCase(data.corpus, data.seed, index);
    } catch (error) {
      // A bug of the fuzzer itself, reported like any other so that it gets fixed.
      const outcome: CaseOutcome = { result: 'read', codes: [], failures: [`makeCase: ${describe(error)}`] };
      port.postMessage({ type: 'done', index, ms: performance.now() - t0, base: '?', mutations: [], outcome } satisfies FromWorker);
      return;
    }
    const r = caseRandom(data.seed ^ 0x5bd1e995, index);
    if (data.selfTest?.hangAt?.includes(index)) for (;;) { /* a deliberate hang, for the harness's own test */ }
    const outcome = await exercise(c.bytes, `case-${index}.fits`, {
      ...(data.verifyEvery > 0 && index % data.verifyEvery === 0 ? { verifyPath: join(verifyDir, `case-${index}.fits`) } : {}),
      ...(r.chance(0.3) ? { secondPass: { column: r.int(64), batchRows: r.pick([1, 3, 7, 64]) } } : {}),
      ...(data.selfTest?.crashAt?.includes(index) ? { onHdu: () => { throw new TypeError('deliberate crash (self test)'); } } : {}),
    });
    port.postMessage({ type: 'done', index, ms: performance.now() - t0, base: c.base, mutations: [...c.mutations], outcome } satisfies FromWorker);
  };
  port.on('message', (m: ToWorker) => {
    if (m.type === 'stop') {
      void rm(verifyDir, { recursive: true, force: true }).finally(() => port.close());
      return;
    }
    void (async () => {
      for (let i = m.from; i < m.to; i++) await runOne(i);
      port.postMessage({ type: 'idle' } satisfies FromWorker);
    })();
  });
  port.postMessage({ type: 'idle' } satisfies FromWorker);
}

if (!isMainThread && (workerData as Partial<WorkerData> | null)?.fitsFuzzWorker === true) {
  await workerMain(workerData as WorkerData);
}

/** Writes a case's bytes to a file, to look at it with other tools. */
export async function saveCase(c: FuzzCase, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `fuzz-${c.seed}-${c.index}.fits`);
  const handle = await open(path, 'w');
  try { await handle.writeFile(c.bytes); } finally { await handle.close(); }
  return path;
}
