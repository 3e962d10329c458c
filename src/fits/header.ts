import { FitsError, type FitsLocation } from './errors.ts';

/** FITS files are made of 2880-byte blocks. */
export const BLOCK = 2880;
/** One header card is 80 ASCII characters. */
export const CARD = 80;

/** Bytes `n` bytes take once padded to whole 2880-byte blocks. */
export function padToBlock(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** A header value: `null` is an explicitly undefined value (`KEY     =` with nothing after). */
export type HeaderValue = string | number | bigint | boolean | null;

/** One header card. `value` is absent for commentary cards (COMMENT, HISTORY, blank). */
export interface Card {
  readonly keyword: string;
  readonly value?: HeaderValue;
  readonly comment?: string;
  /** Write an integral number as a float (`2.0`), as the file had it. */
  readonly float?: boolean;
  /** The original text (80 × n characters with CONTINUE cards), reused when unchanged. */
  readonly raw?: string;
}

const COMMENTARY = new Set(['COMMENT', 'HISTORY', '']);
const STANDARD_KEYWORD = /^[A-Z0-9_-]{0,8}$/;

/**
 * `card` equals `upper` (already upper case) ignoring ASCII case, without allocating: a
 * look-up in a long header (a table of 70 columns has ~500 cards, looked up ~10 times per
 * column) compares every card.
 */
function sameKeyword(card: string, upper: string): boolean {
  if (card === upper) return true;
  if (card.length !== upper.length) return false;
  for (let i = 0; i < card.length; i++) {
    let a = card.charCodeAt(i);
    if (a >= 97 && a <= 122) a -= 32;
    if (a !== upper.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A FITS header: an ordered list of cards with keyword look-up and update in place.
 * Keyword look-up ignores case; HIERARCH keywords (e.g. `FPA.FILTER`) are looked up by
 * their name without the `HIERARCH` prefix.
 */
export class Header {
  readonly cards: Card[];

  constructor(cards: Card[] = []) {
    this.cards = cards;
  }

  // First index of each keyword (upper case), built on the first look-up in a long header:
  // column definitions look keywords up ~10 times per column, so a scan per look-up made
  // reading a wide table's header quadratic. The methods below that insert or remove cards
  // drop the index; a card replaced in place keeps its keyword; a list changed from outside
  // (its length, or a card moved) is noticed and looked up the slow way.
  #index: Map<string, number> | null = null;
  #indexedLength = -1;

  // Keeps the index right for a card about to be appended (a later repeat of a keyword is not its first).
  #appended(keyword: string): void {
    if (this.#index === null) return;
    if (this.#indexedLength !== this.cards.length) {
      this.#index = null;
      return;
    }
    const k = keyword.toUpperCase();
    if (!this.#index.has(k)) this.#index.set(k, this.cards.length);
    this.#indexedLength++;
  }

  /** The index of the first card with this keyword, or -1. */
  indexOf(keyword: string): number {
    const k = keyword.toUpperCase();
    const cards = this.cards;
    if (cards.length < 32) {
      for (let i = 0; i < cards.length; i++) if (sameKeyword(cards[i].keyword, k)) return i;
      return -1;
    }
    if (this.#index === null || this.#indexedLength !== cards.length) {
      const index = new Map<string, number>();
      for (let i = cards.length - 1; i >= 0; i--) index.set(cards[i].keyword.toUpperCase(), i);
      this.#index = index;
      this.#indexedLength = cards.length;
    }
    const i = this.#index.get(k);
    if (i !== undefined && sameKeyword(cards[i].keyword, k)) return i;
    if (i === undefined) return -1;
    // The list was changed behind the index: look the slow way and index again next time.
    this.#index = null;
    for (let j = 0; j < cards.length; j++) if (sameKeyword(cards[j].keyword, k)) return j;
    return -1;
  }

  /** True if a card with this keyword exists. */
  has(keyword: string): boolean {
    return this.indexOf(keyword) >= 0;
  }

  /** The value of the first card with this keyword (undefined if missing). */
  get(keyword: string): HeaderValue | undefined {
    const i = this.indexOf(keyword);
    return i < 0 ? undefined : this.cards[i].value;
  }

  /** The comment of the first card with this keyword. */
  comment(keyword: string): string | undefined {
    const i = this.indexOf(keyword);
    return i < 0 ? undefined : this.cards[i].comment;
  }

  /** A string value, or undefined when missing; throws when present but not a string. */
  getString(keyword: string, at: FitsLocation = {}): string | undefined {
    const v = this.get(keyword);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new FitsError('fits_bad_keyword', { ...at, keyword }, `expected a string value, found ${String(v)}`);
    return v;
  }

  /** A numeric value, or undefined when missing; throws when present but not a number. */
  getNumber(keyword: string, at: FitsLocation = {}): number | undefined {
    const v = this.get(keyword);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v !== 'number') throw new FitsError('fits_bad_keyword', { ...at, keyword }, `expected a number, found ${JSON.stringify(v)}`);
    return v;
  }

  /** A required non-negative integer (NAXISn, PCOUNT, TFIELDS...); throws naming the keyword. */
  requireInt(keyword: string, at: FitsLocation = {}, min = 0): number {
    const v = this.get(keyword);
    if (v === undefined) throw new FitsError('fits_missing_keyword', { ...at, keyword }, 'required keyword is missing');
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) {
      throw new FitsError('fits_bad_keyword', { ...at, keyword }, `expected an integer >= ${min}, found ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`);
    }
    return n;
  }

  /** Values of all commentary cards with this keyword (COMMENT or HISTORY). */
  commentary(keyword: 'COMMENT' | 'HISTORY' | ''): string[] {
    return this.cards.filter((c) => c.keyword === keyword).map((c) => c.comment ?? '');
  }

  /**
   * Sets a keyword's value: updates the first card in place, or appends a card.
   * `comment` undefined keeps the old comment.
   */
  set(keyword: string, value: HeaderValue, comment?: string, options: { float?: boolean } = {}): this {
    const i = this.indexOf(keyword);
    const key = normaliseKeyword(keyword);
    if (i >= 0) {
      const old = this.cards[i];
      this.cards[i] = { keyword: old.keyword, value, ...(comment ?? old.comment) !== undefined ? { comment: comment ?? old.comment } : {}, ...(options.float ? { float: true } : {}) };
    } else {
      this.#appended(key);
      this.cards.push({ keyword: key, value, ...(comment !== undefined ? { comment } : {}), ...(options.float ? { float: true } : {}) });
    }
    return this;
  }

  /** Inserts a card at a position (before the card now there). */
  insert(index: number, card: Card): this {
    this.#index = null;
    this.cards.splice(index, 0, { ...card, keyword: normaliseKeyword(card.keyword) });
    return this;
  }

  /** Appends a card (any keyword, repeated keywords allowed). */
  add(card: Card): this {
    const keyword = normaliseKeyword(card.keyword);
    this.#appended(keyword);
    this.cards.push({ ...card, keyword });
    return this;
  }

  /** Appends a COMMENT or HISTORY text, split over several cards when long. */
  addCommentary(keyword: 'COMMENT' | 'HISTORY', text: string): this {
    const chunks = text.length === 0 ? [''] : text.match(/.{1,72}/gs) ?? [''];
    for (const chunk of chunks) {
      this.#appended(keyword);
      this.cards.push({ keyword, comment: chunk });
    }
    return this;
  }

  /** Removes every card with this keyword; returns how many were removed. */
  delete(keyword: string): number {
    return this.deleteAll([keyword]);
  }

  /** Removes every card with any of these keywords, in one pass; returns how many were removed. */
  deleteAll(keywords: Iterable<string>): number {
    const drop = new Set<string>();
    for (const k of keywords) drop.add(k.toUpperCase());
    const cards = this.cards;
    this.#index = null;
    let kept = 0;
    for (const c of cards) if (!drop.has(c.keyword.toUpperCase())) cards[kept++] = c;
    const removed = cards.length - kept;
    cards.length = kept;
    return removed;
  }

  /** A deep copy without the cached raw text. */
  clone(): Header {
    return new Header(this.cards.map(({ raw: _raw, ...c }) => ({ ...c })));
  }

  /** The header as text (80 characters per card), with END, padded to whole blocks. */
  toString(): string {
    let text = '';
    for (const card of this.cards) text += formatCard(card);
    text += 'END'.padEnd(CARD);
    const blocks = Math.ceil(text.length / BLOCK);
    return text.padEnd(blocks * BLOCK, ' ');
  }

  /** The header as bytes, ready to write. */
  toBytes(): Uint8Array {
    return Buffer.from(this.toString(), 'latin1');
  }

  /** Number of bytes this header takes in a file. */
  byteLength(): number {
    let cards = 1;
    for (const c of this.cards) cards += formatCard(c).length / CARD;
    return padToBlock(cards * CARD);
  }
}

function normaliseKeyword(keyword: string): string {
  const up = keyword.toUpperCase();
  return STANDARD_KEYWORD.test(up) ? up : keyword;
}

/** The byte offset of the END card in header bytes (searched from `from`), or -1 if absent. */
export function findEndCard(bytes: Uint8Array, from = 0): number {
  for (let off = from; off + CARD <= bytes.length; off += CARD) {
    if (bytes[off] === 0x45 && bytes[off + 1] === 0x4e && bytes[off + 2] === 0x44) {
      let blank = true;
      for (let j = 3; j < 8; j++) if (bytes[off + j] !== 0x20) { blank = false; break; }
      if (blank) return off;
    }
  }
  return -1;
}

/**
 * Finds the END card in header bytes; returns the byte offset just past the header's last
 * block, or -1 if END is not in `bytes` (read more blocks).
 */
export function findHeaderEnd(bytes: Uint8Array, from = 0): number {
  const end = findEndCard(bytes, from);
  return end < 0 ? -1 : padToBlock(end + CARD);
}

/**
 * Parses header bytes (a whole number of cards that ends with END). Throws on non-ASCII
 * bytes, on a missing END, and on values that cannot be parsed — unless `lenient`, which
 * keeps such a value as its raw text (as astropy and cfitsio do), so that one malformed
 * keyword does not make a whole file unreadable.
 */
export function parseHeader(bytes: Uint8Array, at: FitsLocation = {}, lenient = false): Header {
  const cards: Card[] = [];
  let pendingLong: { keyword: string; text: string; comment?: string; raw: string } | undefined;
  const flush = (): void => {
    if (pendingLong) {
      cards.push({ keyword: pendingLong.keyword, value: pendingLong.text, ...(pendingLong.comment ? { comment: pendingLong.comment } : {}), raw: pendingLong.raw });
      pendingLong = undefined;
    }
  };
  for (let off = 0; off + CARD <= bytes.length; off += CARD) {
    for (let j = off; j < off + CARD; j++) {
      const b = bytes[j];
      if (b < 0x20 || b > 0x7e) {
        throw new FitsError('fits_bad_header', at, `card ${off / CARD + 1} holds a byte 0x${b.toString(16).padStart(2, '0')} that is not printable ASCII; the header is damaged or this is not a FITS file`);
      }
    }
    const text = Buffer.from(bytes.buffer, bytes.byteOffset + off, CARD).toString('latin1');
    const keyword = text.slice(0, 8).trimEnd();
    if (keyword === 'END' && text.slice(3).trim() === '') {
      flush();
      return new Header(cards);
    }
    if (keyword === 'CONTINUE' && pendingLong) {
      const parsed = parseValueField(text.slice(8), { ...at, keyword: pendingLong.keyword }, lenient);
      if (typeof parsed.value === 'string') {
        pendingLong.raw += text;
        if (parsed.comment) pendingLong.comment = parsed.comment;
        if (parsed.value.endsWith('&')) {
          pendingLong.text += parsed.value.slice(0, -1);
          continue;
        }
        pendingLong.text += parsed.value;
        flush();
        continue;
      }
    }
    flush();
    const card = parseCard(text, { ...at }, lenient);
    if (typeof card.value === 'string' && card.value.endsWith('&') && !COMMENTARY.has(card.keyword)) {
      // Maybe a long string (CONTINUE convention); decided by the next card.
      const next = off + CARD + CARD <= bytes.length ? Buffer.from(bytes.buffer, bytes.byteOffset + off + CARD, 8).toString('latin1') : '';
      if (next === 'CONTINUE') {
        pendingLong = { keyword: card.keyword, text: card.value.slice(0, -1), ...(card.comment ? { comment: card.comment } : {}), raw: text };
        continue;
      }
    }
    cards.push(card);
  }
  throw new FitsError('fits_header_no_end', at, 'header has no END card before the end of the data read; the file is truncated or damaged');
}

/** Parses one 80-character card (`lenient`: see {@link parseHeader}). */
export function parseCard(text: string, at: FitsLocation = {}, lenient = false): Card {
  const key8 = text.slice(0, 8).trimEnd();
  if (key8 === 'HIERARCH') {
    const eq = text.indexOf('=', 8);
    if (eq < 0) return { keyword: 'HIERARCH', comment: text.slice(8).trimEnd(), raw: text };
    const keyword = text.slice(8, eq).trim();
    const parsed = parseValueField(text.slice(eq + 1), { ...at, keyword }, lenient);
    return { keyword, ...parsed, raw: text };
  }
  if (text.slice(8, 10) === '= ' && !COMMENTARY.has(key8)) {
    const keyword = key8.toUpperCase();
    if (!STANDARD_KEYWORD.test(keyword)) {
      throw new FitsError('fits_bad_header', { ...at, keyword }, `keyword "${key8}" has characters FITS does not allow (A-Z, 0-9, _ and -)`);
    }
    return { keyword, ...parseValueField(text.slice(10), { ...at, keyword }, lenient), raw: text };
  }
  return { keyword: key8, comment: text.slice(8).trimEnd(), raw: text };
}

function parseValueField(field: string, at: FitsLocation, lenient = false): { value: HeaderValue; comment?: string; float?: boolean } {
  let i = 0;
  while (i < field.length && field[i] === ' ') i++;
  if (i >= field.length) return { value: null };
  if (field[i] === "'") {
    let out = '';
    let j = i + 1;
    for (;;) {
      if (j >= field.length) throw new FitsError('fits_bad_keyword', at, `string value has no closing quote: ${field.trim()}`);
      if (field[j] === "'") {
        if (field[j + 1] === "'") { out += "'"; j += 2; continue; }
        break;
      }
      out += field[j++];
    }
    const rest = field.slice(j + 1);
    const slash = rest.indexOf('/');
    const comment = slash >= 0 ? rest.slice(slash + 1).trim() : undefined;
    return { value: out.replace(/ +$/, ''), ...(comment ? { comment } : {}) };
  }
  const slash = field.indexOf('/', i);
  const token = (slash >= 0 ? field.slice(i, slash) : field.slice(i)).trim();
  const comment = slash >= 0 ? field.slice(slash + 1).trim() : undefined;
  const withComment = <T extends object>(o: T) => (comment ? { ...o, comment } : o);
  if (token === '') return withComment({ value: null });
  if (token === 'T' || token === 'F') return withComment({ value: token === 'T' });
  if (/^[+-]?\d+$/.test(token)) {
    const n = Number(token);
    return withComment({ value: Number.isSafeInteger(n) ? n : BigInt(token) });
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$/.test(token)) {
    return withComment({ value: Number(token.replace(/[dD]/, 'E')), float: true });
  }
  if (/^\(.*\)$/.test(token)) return withComment({ value: token }); // complex: kept as text
  if (lenient) return withComment({ value: token });
  throw new FitsError('fits_bad_keyword', at, `cannot parse value "${token}"`);
}

/** Formats one card (80 characters, or a multiple with CONTINUE for long strings). */
export function formatCard(card: Card): string {
  if (card.raw !== undefined) {
    const reparsed = card.raw.length === CARD ? safeReparse(card.raw) : undefined;
    if (card.raw.length > CARD || (reparsed && sameCard(reparsed, card))) return card.raw;
  }
  const keyword = card.keyword;
  if (card.value === undefined) {
    const text = (keyword.padEnd(8) + (card.comment ?? '')).slice(0, CARD);
    return text.padEnd(CARD);
  }
  const hierarch = !STANDARD_KEYWORD.test(keyword);
  if (hierarch && !/^[\x21-\x7e]+( [\x21-\x7e]+)*$/.test(keyword)) {
    throw new FitsError('fits_bad_keyword', { keyword }, 'HIERARCH keyword names must be printable ASCII');
  }
  const prefix = hierarch ? `HIERARCH ${keyword} = ` : `${keyword.padEnd(8)}= `;
  const v = card.value;
  if (typeof v === 'string') return formatStringCard(prefix, v, card.comment, hierarch, keyword);
  let text: string;
  if (v === null) text = '';
  else if (typeof v === 'boolean') text = v ? 'T' : 'F';
  else if (typeof v === 'bigint') text = v.toString();
  else text = formatNumber(v, card.float === true, keyword);
  const valueField = hierarch ? text : text.padStart(20);
  return withComment(prefix + valueField, card.comment);
}

function safeReparse(raw: string): Card | undefined {
  try { return parseCard(raw); } catch { return undefined; }
}

function sameCard(a: Card, b: Card): boolean {
  return a.keyword === b.keyword && a.value === b.value && (a.comment ?? '') === (b.comment ?? '');
}

function formatNumber(v: number, float: boolean, keyword: string): string {
  if (!Number.isFinite(v)) throw new FitsError('fits_bad_keyword', { keyword }, `${v} cannot be written in a FITS header`);
  if (Number.isInteger(v) && !float && Math.abs(v) < 1e21) return String(v);
  let s = String(v).toUpperCase();
  if (!s.includes('.') && !s.includes('E')) s += '.0';
  else if (!s.includes('.') && s.includes('E')) s = s.replace('E', '.0E');
  if (s.length > 20) s = v.toExponential(15).toUpperCase();
  return s;
}

function withComment(head: string, comment: string | undefined): string {
  if (comment === undefined || comment === '') return head.padEnd(CARD).slice(0, CARD).padEnd(CARD);
  if (head.length >= CARD) return head.slice(0, CARD);
  const text = `${head} / ${comment}`;
  return text.slice(0, CARD).padEnd(CARD);
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function formatStringCard(prefix: string, value: string, comment: string | undefined, hierarch: boolean, keyword: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new FitsError('fits_bad_keyword', { keyword }, 'string values must be printable ASCII');
  }
  // Fixed format: the quoted string opens at column 11 and holds at least 8 characters.
  const padded = hierarch ? value : value.padEnd(8);
  const single = prefix + quote(padded);
  if (single.length <= CARD) {
    const field = hierarch ? single : single.padEnd(30);
    return withComment(field, comment);
  }
  // Long string: CONTINUE convention, each piece ending with '&' but the last.
  const cards: string[] = [];
  let rest = value;
  let first = true;
  while (rest.length > 0 || first) {
    const head = first ? prefix : 'CONTINUE  ';
    const room = CARD - head.length - 3; // quotes and '&'
    let take = Math.min(rest.length, room);
    // Do not split a doubled quote across cards.
    while (take > 0 && quote(rest.slice(0, take)).length > room + 2) take--;
    const piece = rest.slice(0, take);
    rest = rest.slice(take);
    const last = rest.length === 0;
    const text = head + quote(piece + (last ? '' : '&'));
    cards.push(last ? withComment(text, comment) : text.padEnd(CARD));
    first = false;
  }
  return cards.join('');
}
