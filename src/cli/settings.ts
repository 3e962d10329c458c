// Settings are read here and nowhere else: command-line flags first, then the environment,
// then the embedded defaults (SQLite files under ./ipp-data, no server to set up).
import { UsageError } from '../common/index.ts';
import type { OptionSpec, ParsedArgs } from './command.ts';

/** The `--db URL` option of every command that opens a room's database. */
export function dbOption(room: string): OptionSpec {
  return {
    type: 'string', value: 'URL',
    help: `the ${room} database: sqlite:PATH or postgres://user@host/db (default $IPP_${room.toUpperCase()}_DB, $IPP_DB, or sqlite:ipp-data/${room}.db)`,
  };
}

/** The database URL of a room: `--db`, then `IPP_<ROOM>_DB`, then `IPP_DB`, then `sqlite:ipp-data/<room>.db`. */
export function databaseUrl(room: string, args: ParsedArgs, env: Readonly<Record<string, string | undefined>>): string {
  const flag = args.values.db;
  if (typeof flag === 'string') {
    if (flag.trim() === '') throw new UsageError('--db is empty; give a database URL such as sqlite:gpc1.db');
    return flag;
  }
  return env[`IPP_${room.toUpperCase()}_DB`] || env.IPP_DB || `sqlite:ipp-data/${room}.db`;
}

/** The `--url` and `--token` options of a client command of a service (`datastore`, `neb`). */
export function serviceOptions(service: string): Record<string, OptionSpec> {
  const env = `IPP_${service.toUpperCase()}`;
  return {
    url: { type: 'string', value: 'URL', help: `the ${service} server, e.g. http://host:port (default $${env}_URL)` },
    token: { type: 'string', value: 'TOKEN', help: `bearer token for the ${service} (default $${env}_TOKEN)` },
  };
}

/** Where a service is and the token to show it: `--url`/`--token`, then `IPP_<SERVICE>_URL`/`_TOKEN`. */
export function serviceEndpoint(
  service: string, args: ParsedArgs, env: Readonly<Record<string, string | undefined>>,
): { url: string; token: string | undefined } {
  const name = `IPP_${service.toUpperCase()}`;
  const url = typeof args.values.url === 'string' ? args.values.url : env[`${name}_URL`];
  if (!url) throw new UsageError(`no ${service} server given: pass --url http://host:port or set ${name}_URL`);
  const token = typeof args.values.token === 'string' ? args.values.token : env[`${name}_TOKEN`] || undefined;
  return { url, token };
}

/** The token a server requires for writes: `--token`, then `IPP_<SERVICE>_TOKEN`; undefined when neither is set. */
export function serverToken(service: string, args: ParsedArgs, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const name = `IPP_${service.toUpperCase()}_TOKEN`;
  return typeof args.values.token === 'string' ? args.values.token : env[name] || undefined;
}

/** The DVO database directory: `--db`, then `IPP_DVO_DIR`, then `ipp-data/dvo`. */
export function dvoDirectory(args: ParsedArgs, env: Readonly<Record<string, string | undefined>>): string {
  const flag = args.values.db;
  const dir = typeof flag === 'string' ? flag : env.IPP_DVO_DIR || 'ipp-data/dvo';
  if (dir.trim() === '') throw new UsageError('--db is empty; give the DVO database directory');
  return dir;
}
