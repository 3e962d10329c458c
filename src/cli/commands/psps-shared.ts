// Settings and output helpers shared by the archive-side commands (`ipp archive`, `ipp odm`,
// `ipp dxlayer`).
import { PSPS_SCHEMA_DIR, UsageError } from '../../common/index.ts';
import type { CommandContext, OptionSpec, ParsedArgs } from '../command.ts';
import { databaseUrl, serviceEndpoint } from '../settings.ts';

/** The `--schema-dir` option. */
export const schemaDirOption: OptionSpec = {
  type: 'string', value: 'DIR', help: 'the archive schema files (default: the package\'s schema/psps)',
};

/** The schema directory: `--schema-dir`, else the package's. */
export function schemaDir(args: ParsedArgs): string {
  const v = args.values['schema-dir'];
  return typeof v === 'string' && v !== '' ? v : PSPS_SCHEMA_DIR;
}

/** The archive database URL from an option (`--archive` or `--db`): then IPP_ARCHIVE_DB, IPP_DB, sqlite:ipp-data/archive.db. */
export function archiveUrl(args: ParsedArgs, env: CommandContext['env'], option: 'archive' | 'db'): string {
  return databaseUrl('archive', { values: { db: args.values[option] }, positionals: [] }, env);
}

/** The `--<service>-url` / `--<service>-token` options of a command that talks to several services. */
export function prefixedServiceOptions(service: string): Record<string, OptionSpec> {
  const env = `IPP_${service.toUpperCase()}`;
  return {
    [`${service}-url`]: { type: 'string', value: 'URL', help: `the ${service} server (default $${env}_URL)` },
    [`${service}-token`]: { type: 'string', value: 'TOKEN', help: `bearer token for the ${service} (default $${env}_TOKEN)` },
  };
}

/** Where a service is, from `--<service>-url`/`--<service>-token`, then the environment. */
export function prefixedEndpoint(service: string, args: ParsedArgs, env: CommandContext['env']): { url: string; token: string | undefined } {
  try {
    return serviceEndpoint(service, { values: { url: args.values[`${service}-url`], token: args.values[`${service}-token`] }, positionals: [] }, env);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(error.message.replace('--url', `--${service}-url`));
    throw error;
  }
}


/** Prints a line. */
export function say(ctx: CommandContext, text: string): void {
  ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** JSON of rows whose big integers are written as numbers when safe, as strings otherwise. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v), 2);
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return String(v);
}

/** Rows as CSV (RFC 4180 quoting). */
export function rowsToCsv(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const q = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const lines = [columns.map(q).join(',')];
  for (const r of rows) lines.push(columns.map((c) => q(cellText(r[c]))).join(','));
  return `${lines.join('\n')}\n`;
}

/** Rows as an aligned text table. */
export function rowsToText(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const cells = rows.map((r) => columns.map((c) => cellText(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (parts: string[]) => parts.map((p, i) => p.padEnd(widths[i])).join('  ').trimEnd();
  return [line([...columns]), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), `(${rows.length} row${rows.length === 1 ? '' : 's'})`].join('\n');
}
