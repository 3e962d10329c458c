// The HDUs of a FITS file found without parsing every header card: for readers that want a
// few keywords of many headers. Opening a file through FitsFile parses every header whole
// (an smf's ~120 headers: ~110,000 cards for 16 catalogues, ~0.3 CPU s), where DVO's addstar
// looks at ~15 keywords per table plus the column cards, the same in every chip's table.
// Here each header is checked as FitsFile checks it (printable bytes, keyword characters, an
// END card, the structure keywords, the data within the file) but only the cards asked for
// are parsed; column definitions are parsed once per distinct set of column cards (compared
// as text). Anything this scan does not handle exactly as FitsFile would (long strings,
// lower-case or value-less keywords, random groups, compressed or ASCII tables, anything
// damaged) makes it give up, and the caller opens the file with FitsFile, whose errors name
// what is wrong.
import { open } from 'node:fs/promises';
import { readAt } from '../common/index.ts';
import { parseColumnDefs, type FitsColumnDef } from './column-defs.ts';
import type { FitsLocation } from './errors.ts';
import { findHeaderEnd, padToBlock, parseCard, parseHeader, CARD, type HeaderValue } from './header.ts';

/** A header held as its text: cards are parsed when asked for. */
export class LazyHeader {
  private readonly text: string;
  private readonly at: FitsLocation;
  // HIERARCH cards: keyword (upper case) and card number.
  private readonly hierarch: readonly { key: string; card: number }[];
  /** The column-defining cards (T…, NAXIS1) and HIERARCH cards as text: equal texts define equal columns. */
  readonly columnCards: string;

  constructor(text: string, at: FitsLocation, hierarch: readonly { key: string; card: number }[], columnCards: string) {
    this.text = text;
    this.at = at;
    this.hierarch = hierarch;
    this.columnCards = columnCards;
  }

  /** The value of the first card with this keyword (as Header.get gives it). */
  get(keyword: string): HeaderValue | undefined {
    const key = keyword.toUpperCase();
    let card = -1;
    if (key.length <= 8) {
      const want = `${key.padEnd(8)}= `;
      for (let from = 0; ;) {
        const i = this.text.indexOf(want, from);
        if (i < 0) break;
        if (i % CARD === 0) { card = i / CARD; break; }
        from = i + 1;
      }
    }
    for (const h of this.hierarch) {
      if (h.key === key && (card < 0 || h.card < card)) { card = h.card; break; }
    }
    if (card < 0) return undefined;
    return parseCard(this.text.slice(card * CARD, card * CARD + CARD), { ...this.at }, true).value;
  }

  /** The whole header, parsed (for the column definitions of a new set of column cards). */
  parse(): ReturnType<typeof parseHeader> {
    return parseHeader(Buffer.from(this.text, 'latin1'), this.at, true);
  }
}

/** One HDU found by {@link scanHdus}. */
export interface ScannedHdu {
  readonly index: number;
  readonly kind: 'primary' | 'image' | 'bintable';
  readonly extname?: string;
  /** Rows of a binary table. */
  readonly rows?: number;
  readonly dataStart: number;
  readonly header: LazyHeader;
  readonly at: FitsLocation;
}

// Given up on: FitsFile opens the file instead.
class GiveUp extends Error {}

const FIRST_READ = 3 * 2880;

/** The HDUs of a FITS file, or undefined when FitsFile must open it (see the file comment). */
export async function scanHdus(path: string): Promise<ScannedHdu[] | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    const hdus: ScannedHdu[] = [];
    let buf = new Uint8Array(FIRST_READ);
    const read = async (position: number, length: number): Promise<Uint8Array> => {
      if (buf.length < length) buf = new Uint8Array(length);
      return buf.subarray(0, await readAt(handle, buf.subarray(0, length), position));
    };
    let pos = 0;
    for (let index = 0; pos < size; index++) {
      let want = FIRST_READ;
      let bytes: Uint8Array;
      let end: number;
      for (;;) {
        const n = Math.min(want, size - pos);
        bytes = await read(pos, n);
        if (bytes.length < n) throw new GiveUp();
        if (index > 0) {
          // What the reader ignores after the last extension.
          if (size - pos < 80) return hdus;
          if (Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1') !== 'XTENSION') return hdus;
        }
        end = findHeaderEnd(bytes.subarray(0, n - (n % CARD)));
        if (end >= 0) break;
        if (pos + n >= size) throw new GiveUp();
        want *= 4;
      }
      if (pos + end > size) throw new GiveUp();
      const hdu = describe(bytes.subarray(0, end), index, pos + end, size, path);
      hdus.push(hdu.hdu);
      pos = hdu.hdu.dataStart + padToBlock(hdu.dataBytes);
    }
    // An empty file has no primary HDU: the reader says what is wrong with it.
    return hdus.length > 0 ? hdus : undefined;
  } catch (error) {
    if (error instanceof GiveUp) return undefined;
    // A file that cannot be read here is read (and its fault reported) by FitsFile.
    return undefined;
  } finally {
    await handle.close();
  }
}

function describe(bytes: Uint8Array, index: number, dataStart: number, size: number, file: string): { hdu: ScannedHdu; dataBytes: number } {
  // Checked as FitsFile's header parser checks (printable bytes, keyword characters) up to
  // END; the text is made once and its cards looked at in place (a string per card cost more).
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  const hierarch: { key: string; card: number }[] = [];
  const columnCards: string[] = [];
  let cards = 0;
  for (let off = 0; ; off += CARD, cards++) {
    if (off + CARD > bytes.length) throw new GiveUp();
    for (let j = off; j < off + CARD; j++) {
      const b = bytes[j];
      if (b < 0x20 || b > 0x7e) throw new GiveUp();
    }
    if (text.startsWith('END     ', off) && blank(bytes, off + 3, off + CARD)) break;
    if (text.startsWith('CONTINUE', off)) throw new GiveUp();
    if (text.startsWith('HIERARCH', off)) {
      const card = text.slice(off, off + CARD);
      const eq = card.indexOf('=', 8);
      if (eq < 0) throw new GiveUp();
      const key = card.slice(8, eq).trim();
      if (key !== key.toUpperCase()) throw new GiveUp();
      hierarch.push({ key, card: cards });
      columnCards.push(card);
      continue;
    }
    if (text.startsWith('COMMENT ', off) || text.startsWith('HISTORY ', off) || text.startsWith('        ', off)) continue;
    // Keywords with a value: A-Z 0-9 _ - then blanks (lower case is legal but looked up
    // otherwise, and a card without a value hides later ones: give up on both).
    if (bytes[off + 8] !== 0x3d || bytes[off + 9] !== 0x20) throw new GiveUp();
    let j = off;
    for (; j < off + 8; j++) {
      const b = bytes[j];
      if (!((b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x5f || b === 0x2d)) break;
    }
    if (j === off || !blank(bytes, j, off + 8)) throw new GiveUp();
    if (bytes[off] === 0x54 || text.startsWith('NAXIS1  ', off)) columnCards.push(text.slice(off, off + CARD));
  }
  const first = text.slice(0, 8).trimEnd();
  const provisional = new LazyHeader(text, { file, hdu: index }, hierarch, '');
  const extnameValue = provisional.get('EXTNAME');
  const extname = typeof extnameValue === 'string' ? extnameValue.trim() : undefined;
  const at: FitsLocation = { file, hdu: index, ...(extname ? { extname } : {}) };
  const header = new LazyHeader(text, at, hierarch, columnCards.join(''));
  if (index === 0 ? first !== 'SIMPLE' : first !== 'XTENSION') throw new GiveUp();
  const int = (key: string): number => {
    const v = header.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new GiveUp();
    return v;
  };
  const bitpix = header.get('BITPIX');
  if (typeof bitpix !== 'number' || ![8, 16, 32, 64, -32, -64].includes(bitpix)) throw new GiveUp();
  const naxis = int('NAXIS');
  if (naxis > 999) throw new GiveUp();
  if (index === 0 && (naxis > 0 || header.get('GROUPS') !== undefined)) throw new GiveUp();
  const pcount = index > 0 ? int('PCOUNT') : 0;
  const gcount = index > 0 ? int('GCOUNT') : 1;
  let elements = 1;
  for (let i = 1; i <= naxis; i++) elements *= int(`NAXIS${i}`);
  if (naxis === 0) elements = 0;
  const dataBytes = (Math.abs(bitpix) / 8) * gcount * (pcount + elements);
  if (!Number.isSafeInteger(dataBytes) || dataStart + dataBytes > size) throw new GiveUp();
  let kind: ScannedHdu['kind'] = 'primary';
  let rows: number | undefined;
  if (index > 0) {
    const xt = header.get('XTENSION');
    const name = typeof xt === 'string' ? xt.trim().toUpperCase() : '';
    if (name === 'BINTABLE') {
      if (bitpix !== 8 || naxis !== 2 || gcount !== 1 || header.get('ZTABLE') !== undefined || header.get('ZIMAGE') !== undefined) throw new GiveUp();
      kind = 'bintable';
      rows = int('NAXIS2');
    } else if (name === 'IMAGE') {
      kind = 'image';
    } else {
      throw new GiveUp();
    }
  }
  return {
    hdu: { index, kind, dataStart, header, at, ...(extname !== undefined ? { extname } : {}), ...(rows !== undefined ? { rows } : {}) },
    dataBytes,
  };
}

function blank(bytes: Uint8Array, from: number, to: number): boolean {
  for (let j = from; j < to; j++) if (bytes[j] !== 0x20) return false;
  return true;
}

// Column definitions by the text of the cards that define them (bounded).
const layouts = new Map<string, { defs: FitsColumnDef[]; rowBytes: number }>();
const MAX_LAYOUTS = 64;

/** The column definitions of a scanned binary table (parsed once per distinct set of column cards; errors as FitsFile's). */
export function scannedColumnDefs(h: ScannedHdu): { defs: FitsColumnDef[]; rowBytes: number } {
  const key = h.header.columnCards;
  let defs = layouts.get(key);
  if (!defs) {
    defs = parseColumnDefs(h.header.parse(), h.at);
    if (layouts.size >= MAX_LAYOUTS) layouts.clear();
    layouts.set(key, defs);
  }
  return defs;
}
