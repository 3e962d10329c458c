// A child process for the SIGKILL tests: runs one pollodm or cleanup pass over a config and
// prints a line after each batch recorded or deletion made, so the parent can kill it at a
// chosen point. Usage: kill.fixture.ts pollodm|cleanup TRACKING_URL CONFIG ODM_URL [DATASTORE_URL]
import { DatastoreClient } from '../../datastore/index.ts';
import { getConfig } from '../configs.ts';
import { openIppToPsps } from '../tracking-db.ts';
import { cleanupConfig } from './cleanup.ts';
import { OdmClient } from './odm-client.ts';
import { pollOdm } from './poll-odm.ts';

const [mode, trackingUrl, configName, odmUrl, datastoreUrl] = process.argv.slice(2);
const db = await openIppToPsps(trackingUrl);
try {
  const config = await getConfig(db, configName);
  const odm = new OdmClient({ url: odmUrl, retry: { initialMs: 20, maxMs: 100, giveUpMs: 5000 } });
  process.stdout.write('ready\n');
  if (mode === 'pollodm') {
    await pollOdm(db, config, { odm, batchTypes: ['P2', 'ST', 'OB', 'IN'], stage: 'all', concurrency: 2, onBatch: (name) => { process.stdout.write(`batch ${name}\n`); } });
  } else {
    const datastore = new DatastoreClient({ url: datastoreUrl });
    await cleanupConfig(db, config, { odm, datastore, onDeletion: (name, copy, ok) => { process.stdout.write(`deleted ${name} ${copy} ${ok}\n`); } });
  }
  process.stdout.write('finished\n');
} finally {
  await db.close();
}
