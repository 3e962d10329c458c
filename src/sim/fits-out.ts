// Writing the simulator's FITS files: HDUs whose data are already laid out in memory (one
// chip's table at a time), staged and streamed to the file with one write in flight so the
// disk works while the next chip is generated. Headers come from the fits room (Header, bintableHeader,
// primaryHeader) and carry CHECKSUM/DATASUM like every file the project writes.
import { OutputFile } from '../common/index.ts';
import {
  BLOCK, CARD, Checksum, Header, bintableHeader, columnDefsFromInfos, encodeChecksum, formatCard, isStructuralKeyword,
  padToBlock, primaryHeader, sumWords, type FitsColumnDef,
} from '../fits/index.ts';
import { layoutColumns, type CmfLayout } from './cmf-layout.ts';
import { SimError } from './errors.ts';

/** The FITS column definitions of a layout, computed once per layout. */
const DEFS = new WeakMap<CmfLayout, FitsColumnDef[]>();

/** Column definitions for a layout (cached). */
export function layoutDefs(layout: CmfLayout): FitsColumnDef[] {
  let defs = DEFS.get(layout);
  if (!defs) {
    defs = columnDefsFromInfos(layoutColumns(layout));
    DEFS.set(layout, defs);
  }
  return defs;
}

/**
 * The header of a binary table of `rows` rows in a layout, with EXTNAME and extra cards:
 * what `bintableHeader` makes, formatted from a per-layout template (see {@link TableHead}).
 */
export function tableHeader(layout: CmfLayout, rows: number, extname: string, extra: Header): TableHead {
  return new TableHead(layout, rows, extname, extra);
}

/** A layout's column cards, formatted once: the same for every table of the layout. */
interface TableTemplate {
  /** The header of a table of 0 rows without name or extra cards (for keyword look-ups). */
  readonly header: Header;
  /** The cards before NAXIS2, as bytes. */
  readonly before: Uint8Array;
  /** The cards after NAXIS2 (TFIELDS and the column cards), as bytes. */
  readonly after: Uint8Array;
}

const TEMPLATES = new WeakMap<CmfLayout, TableTemplate>();

function templateOf(layout: CmfLayout): TableTemplate {
  let t = TEMPLATES.get(layout);
  if (!t) {
    const header = bintableHeader(layoutDefs(layout), 0, 0, {});
    const i = header.indexOf('NAXIS2');
    const bytes = (from: number, to: number): Uint8Array => Buffer.from(header.cards.slice(from, to).map(formatCard).join(''), 'latin1');
    t = { header, before: bytes(0, i), after: bytes(i + 1, header.cards.length) };
    TEMPLATES.set(layout, t);
  }
  return t;
}

/**
 * A binary-table header not yet formatted. Formatting some 200 column cards per chip cost
 * as much as measuring the chip's detections, so the column cards come from a template and
 * only NAXIS2, EXTNAME, the extra cards and the checksums are formatted each time. Extra
 * cards the template could not place as `bintableHeader` would (structural, commentary, or
 * a keyword the template has) take the general way, through {@link TableHead.header}.
 */
export class TableHead {
  readonly layout: CmfLayout;
  readonly rows: number;
  readonly extname: string;
  readonly extra: Header;

  constructor(layout: CmfLayout, rows: number, extname: string, extra: Header) {
    this.layout = layout;
    this.rows = rows;
    this.extname = extname;
    this.extra = extra;
  }

  /** The whole header as a Header (the general way). */
  header(): Header {
    return bintableHeader(layoutDefs(this.layout), this.rows, 0, { name: this.extname, extra: this.extra });
  }

  /** The header's bytes with CHECKSUM and DATASUM for `datasum` (the same bytes as `headerBytes(this.header(), datasum)`). */
  bytes(datasum: number): Uint8Array {
    const t = templateOf(this.layout);
    if (this.extname === '' || !this.extra.cards.every((c) => c.value !== undefined && !isStructuralKeyword(c.keyword) && !t.header.has(c.keyword))) {
      return headerBytes(this.header(), datasum);
    }
    // The cards after the column cards, added as bintableHeader and setChecksums add them.
    const tail = new Header().set('EXTNAME', this.extname, 'name of this table');
    for (const c of this.extra.cards) tail.set(c.keyword, c.value!, c.comment, c.float ? { float: true } : {});
    addChecksumCards(tail, datasum);
    // Only NAXIS2 and the tail are formatted; the column cards are copied as bytes.
    let text = formatCard(new Header().set('NAXIS2', this.rows, 'number of rows in table').cards[0]);
    const tailFrom = text.length;
    for (const c of tail.cards) text += formatCard(c);
    text += 'END'.padEnd(CARD);
    const head = t.before.length + t.after.length;
    const bytes = new Uint8Array(padToBlock(head + text.length)).fill(0x20);
    bytes.set(t.before, 0);
    const own = Buffer.from(text, 'latin1');
    bytes.set(own.subarray(0, tailFrom), t.before.length);
    bytes.set(t.after, t.before.length + tailFrom);
    bytes.set(own.subarray(tailFrom), head + tailFrom);
    const at = head + tailFrom + cardOffset(own.subarray(tailFrom), 'CHECKSUM');
    sealChecksum(tail, bytes, at, datasum);
    return bytes;
  }
}

/**
 * The header of an IMAGE extension without data: the smf's `XYnn.hdr`. The original writes
 * NAXIS = 0 there; this writes NAXIS = 2 with both lengths 0 (no data either, by the FITS
 * standard), so that the chip's two-axis WCS keywords are valid for fitsverify. The chip's
 * size is in IMNAXIS1/IMNAXIS2, as in the original.
 */
export function emptyImageHeader(extname: string, extra: Header): Header {
  const h = new Header()
    .set('XTENSION', 'IMAGE', 'image extension')
    .set('BITPIX', 8, 'array data type')
    .set('NAXIS', 2, 'two axes, no data')
    .set('NAXIS1', 0, 'no data (size in IMNAXIS1)')
    .set('NAXIS2', 0, 'no data (size in IMNAXIS2)')
    .set('PCOUNT', 0, 'no extra parameters')
    .set('GCOUNT', 1, 'one group')
    .set('EXTNAME', extname, 'name of this HDU');
  for (const card of extra.cards) h.add(card);
  return h;
}

/** The primary header of a file of extensions, with extra cards. */
export function fileHeader(extra: Header): Header {
  return primaryHeader(extra);
}

/** A change made to a header's bytes after it is formatted (the corrupt-keyword defect). */
export type HeaderPatch = (bytes: Uint8Array) => void;

const CHECKSUM_ZEROS = '0000000000000000';

/** The CHECKSUM (a placeholder) and DATASUM cards, placed as `setChecksums` places them. */
function addChecksumCards(header: Header, datasum: number): void {
  if (!header.has('CHECKSUM')) header.set('CHECKSUM', CHECKSUM_ZEROS, 'HDU checksum');
  header.set('DATASUM', String(datasum >>> 0), 'data unit checksum');
  header.set('CHECKSUM', CHECKSUM_ZEROS);
}

/**
 * Writes the checksum into formatted header bytes whose CHECKSUM card (at `at`) holds the
 * placeholder: the value has a fixed width, so the bytes are those `setChecksums` would
 * format, without formatting the header twice. The header gets the value too.
 */
function sealChecksum(header: Header, bytes: Uint8Array, at: number, datasum: number): void {
  const sum = new Checksum().add(bytes, 0).addSum(datasum >>> 0).sum;
  const value = encodeChecksum(~sum >>> 0);
  bytes.set(Buffer.from(value, 'latin1'), at + 11); // the quoted value's first character
  header.set('CHECKSUM', value);
}

/**
 * The bytes of a header with CHECKSUM and DATASUM for `datasum`. With a patch (a damaged
 * card), CHECKSUM is computed over the damaged bytes, so that only the card is wrong.
 */
export function headerBytes(header: Header, datasum: number, patch?: HeaderPatch): Uint8Array {
  addChecksumCards(header, datasum);
  const bytes = header.toBytes();
  patch?.(bytes);
  sealChecksum(header, bytes, cardOffset(bytes, 'CHECKSUM'), datasum);
  return bytes;
}

/** The byte offset of the card with this keyword (8 characters, padded) in header bytes; −1 if absent. */
export function cardOffset(bytes: Uint8Array, keyword: string): number {
  const key = Buffer.from(keyword.padEnd(8), 'latin1');
  for (let off = 0; off + CARD <= bytes.length; off += CARD) {
    let same = true;
    for (let k = 0; k < 8; k++) if (bytes[off + k] !== key[k]) { same = false; break; }
    if (same && bytes[off + 8] === 0x3d) return off;
  }
  return -1;
}

/**
 * A FITS file being written HDU by HDU through common's OutputFile: each HDU is copied into
 * a staging buffer, which goes out whole, with direct I/O where the file system takes it (one
 * write in flight while the next chip is generated). Through the page cache, the kernel's
 * copy of a survey's files cost about as much CPU as the copy into staging plus the direct
 * writes, and its cache traffic slowed the simulator's own loops (48 exposures, 1.7 GB: system
 * CPU 0.74-0.83 s through the cache, 0.26-0.42 s direct). The file is not synced: a survey is
 * complete when its directory is renamed, not when its bytes reach the disk.
 */
export class FitsStream {
  readonly path: string;
  private readonly out: OutputFile;

  private constructor(path: string, out: OutputFile) {
    this.path = path;
    this.out = out;
  }

  /** Creates the file (it must not exist). */
  static async create(path: string): Promise<FitsStream> {
    try {
      return new FitsStream(path, await OutputFile.create(path, { exclusive: true }));
    } catch (error) {
      throw new SimError('sim_cannot_write', `cannot create ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Bytes written or staged so far (the file's size once closed). */
  get position(): number {
    return this.out.position;
  }

  /**
   * Writes an HDU: the header (CHECKSUM over the header and `data`) and `dataBytes` bytes of
   * `data`, padded with zeros to a whole block. `data` must hold zeros from `dataBytes` to
   * the next block boundary (see {@link zeroPadding}); it is copied, so it may be reused at
   * once. Returns where the data start.
   */
  async writeHdu(header: Header | TableHead, data: Uint8Array | null, dataBytes: number, patch?: HeaderPatch): Promise<number> {
    const datasum = data && dataBytes > 0 ? sumWords(data.subarray(0, dataBytes)) : 0;
    const head = header instanceof TableHead && !patch ? header.bytes(datasum) : headerBytes(header instanceof TableHead ? header.header() : header, datasum, patch);
    const padded = padToBlock(dataBytes);
    if (padded > 0 && (!data || data.length < padded)) {
      throw new SimError('sim_internal', `a data buffer of ${data?.length ?? 0} bytes cannot hold ${padded} padded bytes`);
    }
    await this.out.put(head);
    const at = this.out.position;
    if (padded > 0) await this.out.put(data!.subarray(0, padded));
    return at;
  }

  /** Writes what is staged, waits for the last write, then closes the file. */
  async close(): Promise<void> {
    await this.out.finish(false);
  }

  /** Closes without reporting write errors (cleanup after a failure). */
  async abandon(): Promise<void> {
    await this.out.close().catch(() => {});
  }
}

/** Zeroes a buffer from `dataBytes` to the next block boundary (the padding FITS requires). */
export function zeroPadding(buffer: Uint8Array, dataBytes: number): void {
  buffer.fill(0, dataBytes, padToBlock(dataBytes));
}

/** A growable byte buffer for one HDU's data at a time (a FitsStream copies what it is given). */
export class HduBuffer {
  private buffer = new Uint8Array(BLOCK * 64);

  /** The buffer, with room for at least `bytes` plus block padding. */
  next(bytes: number): Uint8Array {
    const need = padToBlock(bytes) + BLOCK;
    if (this.buffer.length < need) this.buffer = new Uint8Array(Math.max(need, this.buffer.length * 2));
    return this.buffer;
  }
}
