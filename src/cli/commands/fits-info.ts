import { FitsFile, type HduInfo } from '../../fits/index.ts';
import { EXIT, type Command } from '../command.ts';
import { UsageError } from '../../common/index.ts';
import { resolveInputPath } from '../file-ref.ts';

/** One HDU as `ipp fits info` reports it. */
export interface HduSummary {
  index: number;
  extname: string | null;
  extver: number | null;
  type: string;
  rows: number | null;
  columns: number | null;
  /** Image dimensions (NAXISn), for image HDUs. */
  dims: number[] | null;
}

/** Summarises an HDU: the facts `ipp fits info` prints. */
export function summariseHdu(h: HduInfo): HduSummary {
  const naxis = Number(h.header.get('NAXIS') ?? 0);
  const dims: number[] = [];
  for (let i = 1; i <= naxis; i++) dims.push(Number(h.header.get(`NAXIS${i}`) ?? 0));
  const isTable = h.kind === 'bintable' || h.kind === 'compressed-table' || h.kind === 'ascii-table';
  const tfields = h.header.get('TFIELDS');
  return {
    index: h.index,
    extname: h.extname ?? null,
    extver: h.extver ?? null,
    type: h.kind,
    rows: isTable ? (h.rows ?? null) : null,
    columns: isTable && typeof tfields === 'number' ? tfields : null,
    dims: isTable ? null : dims,
  };
}

export const fitsInfo: Command = {
  name: 'info',
  summary: 'list the HDUs of a FITS file: index, EXTNAME, type, rows, columns',
  usage: 'FILE [--json]',
  description: 'Reads only the headers, so it is quick on files of any size.',
  options: { json: { type: 'boolean', help: 'print a JSON list of HDUs' } },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one FITS file: ipp fits info FILE');
    await using file = await FitsFile.open(await resolveInputPath(args.positionals[0], ctx.env));
    const rows = file.hdus.map(summariseHdu);
    if (args.values.json) {
      ctx.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return EXIT.ok;
    }
    const cells = rows.map((r) => [
      String(r.index),
      r.extname === null ? '-' : r.extver !== null ? `${r.extname},${r.extver}` : r.extname,
      r.type,
      r.rows === null ? (r.dims && r.dims.length ? r.dims.join('x') : '-') : String(r.rows),
      r.columns === null ? '-' : String(r.columns),
    ]);
    const head = ['HDU', 'EXTNAME', 'TYPE', 'ROWS', 'COLUMNS'];
    const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c: string[]) => c.map((v, i) => (i === 0 || i >= 3 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd();
    ctx.stdout.write(`${line(head)}\n${cells.map(line).join('\n')}\n`);
    return EXIT.ok;
  },
};
