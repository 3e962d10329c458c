import { UsageError, createProgress } from '../../common/index.ts';
import { COMPRESSION_CHOICES, fitsRawRows, type CompressionChoice } from '../../fits/index.ts';
import { writeCsv } from '../../table/index.ts';
import { EXIT, type Command } from '../command.ts';
import { resolveFileRef } from '../file-ref.ts';
import { formatFromName, formatOption, openTables, writeTables } from './table-io.ts';

export const fitsConvert: Command = {
  name: 'convert',
  summary: 'convert tables between FITS, CSV and VOTable; tile-compress or uncompress FITS',
  usage: 'IN[EXT] OUT [--compress gzip2|gzip1|rice|auto] [--uncompress] [--in-format F] [--out-format F]',
  description: [
    'Formats come from the input\'s first bytes and the output\'s extension (.fits/.fz, .csv,',
    '.vot/.xml), or --in-format/--out-format. FITS to FITS copies every table HDU (or the one',
    'named) with its keywords; other outputs take one table (the first, or IN[EXT]).',
    '--compress auto uses RICE_1 for integer columns, GZIP_2 for floats, GZIP_1 for the rest.',
    'The output is written under a temporary name and renamed at the end: a failed conversion',
    'leaves nothing behind.',
  ].join('\n'),
  options: {
    compress: { type: 'string', value: 'ALG', help: 'tile-compress FITS tables: gzip2, gzip1, rice or auto' },
    uncompress: { type: 'boolean', help: 'write plain (uncompressed) FITS tables (the default for FITS output)' },
    'in-format': { type: 'string', value: 'F', help: 'input format: fits, csv, votable' },
    'out-format': { type: 'string', value: 'F', help: 'output format: fits, csv, votable' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress report' },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 2) throw new UsageError('give an input and an output: ipp fits convert IN OUT');
    const [inText, out] = args.positionals;
    const compressFlag = args.values.compress as CompressionChoice | undefined;
    if (compressFlag !== undefined && !COMPRESSION_CHOICES.includes(compressFlag)) {
      throw new UsageError(`--compress "${compressFlag}" is not one of ${COMPRESSION_CHOICES.join(', ')}`);
    }
    if (compressFlag && args.values.uncompress) throw new UsageError('--compress and --uncompress exclude each other');
    const outFormat = formatOption(args.values['out-format'] as string | undefined, '--out-format') ?? formatFromName(out);
    if (!outFormat) throw new UsageError(`cannot tell the output format from "${out}"; use a .fits, .csv or .vot name, or --out-format`);
    const inFormat = formatOption(args.values['in-format'] as string | undefined, '--in-format');
    const ref = await resolveFileRef(inText, ctx.env);
    const opened = await openTables(ref, { ...(inFormat ? { format: inFormat } : {}), all: outFormat === 'fits' || outFormat === 'votable' });
    try {
      // A total only when every table knows its row count: counting would read the input twice.
      const total = opened.tables.every((t) => t.rowCount !== undefined)
        ? opened.tables.reduce((n, t) => n + t.rowCount!, 0)
        : undefined;
      const progress = args.values.quiet ? undefined : createProgress({ label: `convert ${out}`, ...(total !== undefined ? { total } : {}), unit: 'rows', stream: ctx.stderr });
      const common = { signal: ctx.signal, ...(progress ? { onProgress: (n: number) => progress.update(n) } : {}) };
      // FITS -> CSV: formatting threads may read the table's rows from the file themselves
      const rawRows = outFormat === 'csv' && !compressFlag && opened.file && opened.hdus?.length === 1 && opened.tables.length === 1
        ? fitsRawRows(opened.file, opened.hdus[0].index, ref.path)
        : undefined;
      if (rawRows) await writeCsv(opened.tables[0], out, { ...common, rawRows });
      else await writeTables(out, outFormat, opened.tables, { ...(compressFlag ? { compress: compressFlag } : {}), ...common });
      progress?.finish();
      ctx.log.info(`wrote ${out} (${outFormat}${compressFlag ? `, tile-compressed ${compressFlag}` : ''}): ${opened.tables.length} table(s)`);
      return EXIT.ok;
    } finally {
      await opened.close();
    }
  },
};
