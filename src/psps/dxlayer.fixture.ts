// A DXLayer in its own process, for tests that kill it (kill -9). Arguments: PSPS_DB_URL
// DATASTORE_URL ODM_URL PRODUCT DIR. Polls every 50 ms; stops on SIGTERM.
import { createLogger } from '../common/index.ts';
import { DatastoreClient } from '../datastore/index.ts';
import { openDatabase } from '../db/index.ts';
import { runDxlayer } from './dxlayer.ts';
import { PSPS_MIGRATIONS } from './migrations.ts';
import { OdmClient } from './odm-client.ts';

const [dbUrl, dsUrl, odmUrl, product, dir] = process.argv.slice(2);
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
const db = await openDatabase(dbUrl, { migrations: [PSPS_MIGRATIONS] });
process.stdout.write('READY\n');
await runDxlayer({
  db, datastore: new DatastoreClient({ url: dsUrl }), odm: new OdmClient({ url: odmUrl }), product, dir,
  log: createLogger({ level: 'error', sinks: [process.stderr] }), signal: controller.signal,
  intervalMs: 50, backoffMs: 20, maxBackoffMs: 200,
});
await db.close();
