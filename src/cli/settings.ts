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
