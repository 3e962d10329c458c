// An ODM in its own process, for tests that kill it (kill -9). Arguments: PSPS_DB_URL
// ARCHIVE_URL SCHEMA_DIR PORT. Prints "URL http://..." once it listens; stops on SIGTERM.
import { openDatabase } from '../db/index.ts';
import { createLogger } from '../common/index.ts';
import { openArchive } from './archive.ts';
import { PSPS_MIGRATIONS } from './migrations.ts';
import { Odm } from './odm.ts';
import { startOdmServer } from './odm-server.ts';

const [dbUrl, archiveUrl, schemaDir, port] = process.argv.slice(2);
const log = createLogger({ level: 'info', sinks: [process.stderr] });
const archive = await openArchive(archiveUrl, { schemaDir, log });
const db = await openDatabase(dbUrl, { migrations: [PSPS_MIGRATIONS] });
const odm = await Odm.start({ db, archive, log, retryMs: 50 });
const server = await startOdmServer({ odm, port: Number(port) });
process.stdout.write(`URL ${server.url}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => odm.close()).then(() => db.close()).then(() => archive.close()).then(() => process.exit(0));
});
