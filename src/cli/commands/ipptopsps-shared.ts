// What every ippToPsps program command shares: its options, the settings they resolve to
// (flags, then the settings file, then the environment, then the embedded defaults), and the
// wrapper that opens the tracking database and runs a body inside the program runner.
import { UsageError } from '../../common/index.ts';
import {
  DEFAULT_SETTINGS, openIppToPsps, readSettingsFile, runProgram,
  type IppToPspsSettings, type ProgramBody, type ProgramResult, type SettingsFileValues,
} from '../../ipptopsps/index.ts';
import type { CommandContext, OptionSpec, ParsedArgs } from '../command.ts';
import { dbOption } from '../settings.ts';

/** The options every ippToPsps command takes (the contract's shared options). */
export const IPPTOPSPS_OPTIONS: Readonly<Record<string, OptionSpec>> = Object.freeze({
  db: dbOption('ipptopsps'),
  settings: { type: 'string', value: 'FILE', help: 'the settings file (JSON: trackingDb, gpc1Db, dataDir, logDir, scratchUrl, datastoreUrl, datastoreToken, odmUrl, odmToken; default $IPP_IPPTOPSPS_SETTINGS)' },
  'gpc1-db': { type: 'string', value: 'URL', help: 'the gpc1 database (default: settings gpc1Db, $IPP_GPC1_DB, sqlite:ipp-data/gpc1.db)' },
  'data-dir': { type: 'string', value: 'DIR', help: 'where batches are written (default: settings dataDir, $IPP_IPPTOPSPS_DATA_DIR, ipp-data/ipptopsps)' },
  'log-file': { type: 'string', value: 'DIR', help: 'also log to DIR/<program>_<config>_<host>_<pid>.log (default: settings logDir)' },
  'datastore-url': { type: 'string', value: 'URL', help: 'the datastore (default: settings datastoreUrl, $IPP_DATASTORE_URL)' },
  'datastore-token': { type: 'string', value: 'TOKEN', help: 'the datastore write token (default: settings datastoreToken, $IPP_DATASTORE_TOKEN)' },
  'odm-url': { type: 'string', value: 'URL', help: 'the ODM status service (default: settings odmUrl, $IPP_ODM_URL)' },
  'odm-token': { type: 'string', value: 'TOKEN', help: 'the ODM token (default: settings odmToken, $IPP_ODM_TOKEN)' },
});

const flag = (args: ParsedArgs, name: string): string | undefined => {
  const v = args.values[name];
  if (typeof v !== 'string') return undefined;
  if (v.trim() === '') throw new UsageError(`--${name} is empty`);
  return v;
};

/**
 * The settings a command runs with: each field from its flag, else the settings file
 * (`--settings` or `$IPP_IPPTOPSPS_SETTINGS`), else the environment, else the default.
 */
export async function ippToPspsSettings(args: ParsedArgs, env: CommandContext['env']): Promise<IppToPspsSettings> {
  const file = flag(args, 'settings') ?? (env.IPP_IPPTOPSPS_SETTINGS || undefined);
  const fromFile: SettingsFileValues = file ? await readSettingsFile(file) : {};
  const pick = (flagName: string, field: keyof SettingsFileValues, ...envNames: string[]): string | undefined =>
    flag(args, flagName) ?? fromFile[field] ?? envNames.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const settings: IppToPspsSettings = {
    trackingDb: pick('db', 'trackingDb', 'IPP_IPPTOPSPS_DB', 'IPP_DB') ?? DEFAULT_SETTINGS.trackingDb,
    gpc1Db: pick('gpc1-db', 'gpc1Db', 'IPP_GPC1_DB') ?? DEFAULT_SETTINGS.gpc1Db,
    dataDir: pick('data-dir', 'dataDir', 'IPP_IPPTOPSPS_DATA_DIR') ?? DEFAULT_SETTINGS.dataDir,
  };
  const optional: [string, keyof SettingsFileValues, ...string[]][] = [
    ['log-file', 'logDir', 'IPP_IPPTOPSPS_LOG_DIR'],
    ['scratch', 'scratchUrl', 'IPP_IPPTOPSPS_SCRATCH'],
    ['datastore-url', 'datastoreUrl', 'IPP_DATASTORE_URL'],
    ['datastore-token', 'datastoreToken', 'IPP_DATASTORE_TOKEN'],
    ['odm-url', 'odmUrl', 'IPP_ODM_URL'],
    ['odm-token', 'odmToken', 'IPP_ODM_TOKEN'],
  ];
  const out: Record<string, string> = { ...settings };
  for (const [flagName, field, ...envNames] of optional) {
    const v = pick(flagName, field, ...envNames);
    if (v !== undefined) out[field] = v;
  }
  if (file) out.file = file;
  return Object.freeze(out as unknown as IppToPspsSettings);
}

/** Parses an `[hours]` argument: a positive number of hours. */
export function parseHours(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`hours must be a positive number, not "${text}"`);
  return n;
}

/** What {@link runProgramCommand} needs besides the body. */
export interface ProgramCommandOptions {
  readonly program: string;
  readonly configArg: string;
  readonly hours?: number;
  /** Log lines go to stderr instead of stdout (stdout carries --json). */
  readonly logToStderr?: boolean;
  /** Heartbeat period and claim lease (tests shorten them). */
  readonly heartbeatMs?: number;
  readonly leaseMs?: number;
}

/**
 * Resolves the settings, opens the tracking database and runs `body` in the program runner
 * (registered client, heartbeats, pause/stop, `all`/`edit`, `[hours]`, log file); closes the
 * database on every path. Ctrl-C and SIGTERM abort ctx.signal (src/cli/main.ts), which ends
 * the program cleanly.
 */
export async function runProgramCommand(
  args: ParsedArgs, ctx: CommandContext, options: ProgramCommandOptions, body: ProgramBody,
  prepared?: IppToPspsSettings,
): Promise<{ result: ProgramResult; settings: IppToPspsSettings }> {
  const settings = prepared ?? await ippToPspsSettings(args, ctx.env);
  const db = await openIppToPsps(settings.trackingDb);
  try {
    const result = await runProgram({
      program: options.program, configArg: options.configArg, hours: options.hours, db, settings,
      log: ctx.log, signal: ctx.signal, stdin: ctx.stdin, stdout: ctx.stdout,
      ...(options.logToStderr ? { logSink: ctx.stderr } : {}),
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
      ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
    }, body);
    return { result, settings };
  } finally {
    await db.close();
  }
}

/** Reads a duration in milliseconds from an environment variable (tests shorten heartbeats); undefined when unset. */
export function envMilliseconds(env: CommandContext['env'], name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number of milliseconds, not "${v}"`);
  return n;
}
