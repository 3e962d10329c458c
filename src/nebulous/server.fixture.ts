// A Nebulous server in a process of its own, for tests that kill it (SIGKILL mid-replicate)
// and for the benchmarks' load from another process. Arguments: a JSON object
// { db, volumes?: [{ host, path, state?, prepare? }], token?, syncData?, logLevel? }.
// Prints "READY <url>" once it listens; stops on SIGTERM.
import { createLogger, type LogLevel } from '../common/index.ts';
import { openDatabase } from '../db/index.ts';
import { NEBULOUS_MIGRATIONS } from './migrations.ts';
import { startNebulousServer } from './server.ts';
import type { VolumeState } from './types.ts';

interface FixtureConfig {
  db: string;
  volumes?: { host: string; path: string; state?: VolumeState; prepare?: boolean }[];
  token?: string;
  syncData?: boolean;
  logLevel?: LogLevel;
  port?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as FixtureConfig;
const db = await openDatabase(config.db, { migrations: [NEBULOUS_MIGRATIONS], maxConnections: 8 });
const server = await startNebulousServer({
  db, port: config.port, tokens: config.token ? { write: config.token } : undefined, syncData: config.syncData ?? true,
  log: createLogger({ level: config.logLevel ?? 'warn', sinks: [process.stderr] }), maintenanceMs: 0,
});
const known = new Set((await server.neb.listVolumes()).map((v) => v.name));
for (const v of config.volumes ?? []) {
  if (!known.has(`${v.host}.0`)) await server.neb.addVolume({ host: v.host, volume: '0', path: v.path, state: v.state, prepare: v.prepare });
}
process.stdout.write(`READY ${server.url}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => db.close()).then(() => process.exit(0));
});
