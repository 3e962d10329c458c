// A separate process for the concurrency tests: claims jobs one at a time until none are
// left and prints the ids it took as JSON. Usage: node claim-worker.fixture.ts URL WORKER
import { claimRows, openDatabase } from './index.ts';

const [url, worker] = process.argv.slice(2) as [string, string];
const db = await openDatabase(url);
const taken: number[] = [];
try {
  for (;;) {
    const rows = await claimRows<{ id: number }>(db, {
      table: 'job', key: 'id', where: 'owner IS NULL', set: 'owner = ?', setParams: [worker], limit: 2, returning: 'id',
    });
    if (rows.length === 0) break;
    taken.push(...rows.map((r) => r.id));
  }
} finally {
  await db.close();
}
process.stdout.write(JSON.stringify(taken));
