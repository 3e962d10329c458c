import { once } from 'node:events';
import { UsageError } from '../../common/index.ts';
import { formatFloat32, getCell, rowRange, writeCsv, columnIndexes, type CellValue, type Table } from '../../table/index.ts';
import { EXIT, type Command, type CommandContext } from '../command.ts';
import { parseColumnList, parseRowRange, resolveFileRef } from '../file-ref.ts';
import { openTables } from './table-io.ts';

export const fitsDump: Command = {
  name: 'dump',
  summary: 'print the rows of a table HDU as CSV or JSON',
  usage: 'FILE[EXT] [--columns a,b] [--rows 0:100] [--format csv|json]',
  description: 'Without EXT, the first binary table (plain or tile-compressed) is dumped.\n--rows takes START:END, half-open, 0-based (0:100 = the first 100 rows).',
  options: {
    columns: { type: 'string', value: 'A,B', help: 'only these columns, in this order' },
    rows: { type: 'string', value: 'START:END', help: 'only these rows' },
    format: { type: 'string', value: 'FMT', help: 'csv or json', default: 'csv' },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one file: ipp fits dump FILE[EXT]');
    const format = String(args.values.format);
    if (format !== 'csv' && format !== 'json') throw new UsageError(`--format "${format}" is not csv or json`);
    const opened = await openTables(await resolveFileRef(args.positionals[0], ctx.env));
    try {
      let table = opened.tables[0];
      const columns = parseColumnList(args.values.columns as string | undefined);
      if (columns) columnIndexes(table.columns, columns); // names checked before any output
      if (args.values.rows !== undefined) {
        const { start, end } = parseRowRange(String(args.values.rows));
        table = rowRange(table, start, end);
      }
      if (format === 'csv') {
        await writeCsv(table, ctx.stdout as never, { ...(columns ? { columns } : {}), signal: ctx.signal, threads: 0 });
      } else {
        await dumpJson(table, columns, ctx);
      }
      return EXIT.ok;
    } finally {
      await opened.close();
    }
  },
};

/** Writes rows as a JSON array of objects; 64-bit integers exactly, NaN as null. */
async function dumpJson(table: Table, columns: string[] | undefined, ctx: CommandContext): Promise<void> {
  const idx = columnIndexes(table.columns, columns);
  const infos = idx.map((i) => table.columns[i]);
  const keys = infos.map((c) => JSON.stringify(c.name));
  let first = true;
  ctx.stdout.write('[');
  for await (const batch of table.batches({ columns: infos.map((c) => c.name), signal: ctx.signal })) {
    let text = '';
    for (let r = 0; r < batch.rowCount; r++) {
      const fields = infos.map((info, c) => `${keys[c]}:${jsonValue(getCell(info, batch.columns[c], r), info.type === 'float32' || info.type === 'complex64')}`);
      text += `${first ? '\n' : ',\n'}{${fields.join(',')}}`;
      first = false;
    }
    // Wait for a full pipe to drain, so a large dump holds one batch of text at a time.
    if (ctx.stdout.write(text) === false) await once(ctx.stdout as NodeJS.WriteStream, 'drain');
  }
  ctx.stdout.write(first ? ']\n' : '\n]\n');
}

function jsonValue(v: CellValue, single: boolean): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? (single ? formatFloat32(v) : String(v)) : 'null';
  if (Array.isArray(v)) return `[${v.map((x) => jsonValue(x, single)).join(',')}]`;
  return JSON.stringify(v);
}
