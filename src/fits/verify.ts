// `ipp fits verify`: our own structural check of a FITS file, its checksums, and a full decode
// of every table, reporting every problem found rather than stopping at the first.
import { stat } from 'node:fs/promises';
import { causeChain, isIppError } from '../common/index.ts';
import { parseColumnDefs } from './column-defs.ts';
import { describeLocation, type FitsLocation } from './errors.ts';
import { FitsFile, type HduInfo } from './fits-file.ts';
import { CARD, findEndCard, padToBlock } from './header.ts';
import { readCompressedTable } from './compress/index.ts';

/** One problem found by {@link verifyFits}. */
export interface VerifyProblem {
  readonly severity: 'error' | 'warning';
  readonly code: string;
  readonly hdu?: number;
  readonly message: string;
}

/** What {@link verifyFits} found. */
export interface VerifyReport {
  readonly file: string;
  readonly hdus: number;
  /** HDUs whose CHECKSUM/DATASUM were present and checked. */
  readonly checksumsChecked: number;
  /** Table rows decoded (every column of every row). */
  readonly rowsDecoded: number;
  readonly problems: readonly VerifyProblem[];
  readonly errors: number;
  readonly warnings: number;
}

/** Options of {@link verifyFits}. */
export interface VerifyOptions {
  /** Decode every row of every table (default true): finds bad strings, heap pointers, tiles. */
  readonly decode?: boolean;
  readonly signal?: AbortSignal;
}

const PRIMARY_ORDER = ['SIMPLE', 'BITPIX', 'NAXIS'];
const EXTENSION_ORDER = ['XTENSION', 'BITPIX', 'NAXIS'];

/** Checks a FITS file: structure, keywords, padding, checksums, and every table value. */
export async function verifyFits(path: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  let checksumsChecked = 0;
  let rowsDecoded = 0;
  const add = (severity: VerifyProblem['severity'], error: { code: string; message: string }, hdu?: number) => {
    problems.push({ severity, code: error.code, ...(hdu !== undefined ? { hdu } : {}), message: error.message });
  };
  let file: FitsFile;
  try {
    file = await FitsFile.open(path);
  } catch (error) {
    add('error', asProblem(error, { file: path }));
    return summarise(path, 0, 0, 0, problems);
  }
  try {
    for (const h of file.hdus) {
      options.signal?.throwIfAborted();
      const at: FitsLocation = { file: path, hdu: h.index, ...(h.extname ? { extname: h.extname } : {}) };
      checkKeywordOrder(h, at, (e) => add('error', e, h.index));
      await checkPadding(file, h, at, (sev, e) => add(sev, e, h.index));
      if (h.header.has('CHECKSUM') || h.header.has('DATASUM')) {
        checksumsChecked++;
        try {
          for (const e of await file.verifyChecksums(h.index)) add('error', e, h.index);
        } catch (error) {
          add('error', asProblem(error, at), h.index);
        }
      }
      if (h.kind === 'bintable' || h.kind === 'compressed-table') {
        try {
          if (h.kind === 'bintable') parseColumnDefs(h.header, at);
          if (options.decode !== false) {
            const table = h.kind === 'bintable' ? file.table(h.index) : readCompressedTable(file, h);
            {
              for await (const b of table.batches({ ...(options.signal ? { signal: options.signal } : {}) })) rowsDecoded += b.rowCount;
            }
          }
        } catch (error) {
          if (error instanceof Error && error.name === 'AbortError') throw error;
          add('error', asProblem(error, at), h.index);
        }
      } else if (h.kind === 'unknown') {
        add('warning', { code: 'fits_unknown_hdu', message: `${describeLocation(at)}extension type ${String(h.header.get('XTENSION') ?? 'random groups')} is not checked further` }, h.index);
      }
    }
    const last = file.hdus[file.hdus.length - 1];
    const end = last.dataStart + padToBlock(last.dataBytes);
    const size = await fileSize(path);
    if (size > end) {
      add('warning', { code: 'fits_trailing_bytes', message: `${path}: ${size - end} bytes after the last HDU are not part of any HDU` });
    }
    return summarise(path, file.hdus.length, checksumsChecked, rowsDecoded, problems);
  } finally {
    await file.close();
  }
}

function summarise(file: string, hdus: number, checksumsChecked: number, rowsDecoded: number, problems: VerifyProblem[]): VerifyReport {
  const errors = problems.filter((p) => p.severity === 'error').length;
  return { file, hdus, checksumsChecked, rowsDecoded, problems, errors, warnings: problems.length - errors };
}

function asProblem(error: unknown, at: FitsLocation): { code: string; message: string } {
  if (isIppError(error)) return { code: error.code, message: error.message };
  // Not one of our typed errors: a bug in the reader, reported as such rather than hidden.
  return { code: 'fits_internal', message: `${describeLocation(at)}internal error while reading: ${causeChain(error).join(' <- ')}` };
}

function checkKeywordOrder(h: HduInfo, at: FitsLocation, fail: (e: { code: string; message: string }) => void): void {
  const cards = h.header.cards;
  const expected = [...(h.index === 0 ? PRIMARY_ORDER : EXTENSION_ORDER)];
  const naxis = Number(h.header.get('NAXIS') ?? 0);
  for (let i = 1; i <= naxis; i++) expected.push(`NAXIS${i}`);
  if (h.index > 0) expected.push('PCOUNT', 'GCOUNT');
  if (h.kind === 'bintable' || h.kind === 'compressed-table' || h.kind === 'ascii-table') expected.push('TFIELDS');
  expected.forEach((keyword, i) => {
    if (cards[i]?.keyword !== keyword) {
      fail({ code: 'fits_keyword_order', message: `${describeLocation({ ...at, keyword })}must be card ${i + 1} of the header; found ${cards[i]?.keyword || 'a blank card'} there` });
    }
  });
  if (h.index === 0 && h.header.get('SIMPLE') !== true) {
    fail({ code: 'fits_bad_keyword', message: `${describeLocation({ ...at, keyword: 'SIMPLE' })}must be T for a standard FITS file` });
  }
  const seen = new Set<string>();
  for (const c of cards) {
    if (c.value === undefined || c.keyword === 'CONTINUE') continue;
    const k = c.keyword.toUpperCase();
    if (seen.has(k)) fail({ code: 'fits_duplicate_keyword', message: `${describeLocation({ ...at, keyword: c.keyword })}appears more than once` });
    seen.add(k);
  }
}

async function checkPadding(
  file: FitsFile, h: HduInfo, at: FitsLocation,
  report: (severity: 'error' | 'warning', e: { code: string; message: string }) => void,
): Promise<void> {
  // Header fill after END must be spaces.
  const headerBytes = await file.read(h.headerStart, h.dataStart - h.headerStart);
  const endAt = findEndCard(headerBytes);
  if (endAt >= 0 && headerBytes.subarray(endAt + CARD).some((b) => b !== 0x20)) {
    report('error', { code: 'fits_bad_padding', message: `${describeLocation(at)}the header's fill after END holds characters other than spaces` });
  }
  // Data fill must be zeros (spaces are allowed after ASCII tables).
  const fillStart = h.dataStart + h.dataBytes;
  const fillLength = padToBlock(h.dataBytes) - h.dataBytes;
  if (fillLength === 0) return;
  let fill: Uint8Array;
  try {
    fill = await file.read(fillStart, fillLength);
  } catch {
    report('error', { code: 'fits_truncated', message: `${describeLocation(at)}the data's last block is cut short: ${fillLength} bytes of fill are missing` });
    return;
  }
  const allowed = h.kind === 'ascii-table' ? 0x20 : 0;
  if (fill.some((b) => b !== allowed)) {
    report('warning', { code: 'fits_bad_padding', message: `${describeLocation(at)}the fill after the data holds bytes other than ${allowed === 0 ? 'zeros' : 'spaces'}` });
  }
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
