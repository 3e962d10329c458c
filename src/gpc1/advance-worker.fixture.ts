// A separate process for the concurrency tests: advances a few runs at a time until nothing
// is left and prints what it advanced and queued as JSON. All workers start at the same
// moment (START, epoch milliseconds) so that they really race.
// Usage: node advance-worker.fixture.ts URL START
import { setTimeout as sleep } from 'node:timers/promises';
import { advance, openGpc1 } from './index.ts';

const [url, start] = process.argv.slice(2) as [string, string];
const db = await openGpc1(url);
await sleep(Math.max(0, Number(start) - Date.now()));
const advanced: { stage: string; id: number; queued: number | null }[] = [];
try {
  for (;;) {
    const result = await advance(db, { limit: 3 });
    if (result.advanced === 0) break;
    advanced.push(...result.runs.map((r) => ({ stage: r.stage, id: r.id, queued: r.queued?.id ?? null })));
  }
} finally {
  await db.close();
}
process.stdout.write(JSON.stringify(advanced));
