// A datastore server in its own process, for tests that kill it (kill -9) or run it in a
// mount namespace with a small file system. Arguments: ROOT DB_URL [OPTIONS_JSON].
// Prints "URL http://..." once it listens; stops on SIGTERM.
import { openDatabase } from '../db/index.ts';
import { createLogger } from '../common/index.ts';
import { DATASTORE_MIGRATIONS } from './migrations.ts';
import { startDatastoreServer } from './server.ts';

const [root, dbUrl, optionsJson] = process.argv.slice(2);
const db = await openDatabase(dbUrl, { migrations: [DATASTORE_MIGRATIONS] });
const server = await startDatastoreServer({
  root, db, log: createLogger({ level: 'warn', sinks: [process.stderr] }), fsync: false, reserveBytes: 0,
  ...(optionsJson ? JSON.parse(optionsJson) : {}),
});
process.stdout.write(`URL ${server.url}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => db.close()).then(() => process.exit(0));
});
