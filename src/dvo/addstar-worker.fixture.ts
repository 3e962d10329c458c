// A child process for the concurrency and crash tests (not a test itself):
//   addstar DB FILE...   runs addstar and prints its result as JSON; with DVO_KILL=before|after
//                        and DVO_KILL_REGION=n it kills itself (SIGKILL) at the n-th region
//                        update, before or after that region's journal is written;
//   lock DB KEY...       takes exclusive locks and kills itself while holding them.
import { addstar } from './addstar.ts';
import { acquireLocks } from './lock.ts';

const [mode, db, ...rest] = process.argv.slice(2);
if (mode === 'lock') {
  await acquireLocks(db, rest, 'exclusive');
  process.stdout.write('locked\n');
  process.kill(process.pid, 'SIGKILL');
} else {
  const when = process.env.DVO_KILL;
  let left = Number(process.env.DVO_KILL_REGION ?? 1);
  const die = async (): Promise<void> => {
    if (--left === 0) process.kill(process.pid, 'SIGKILL');
  };
  const result = await addstar(db, rest, {
    create: { maxObjects: 300, floorDensity: 1 },
    ...(when ? { regionHooks: () => (when === 'before' ? { beforeJournal: die } : { afterJournal: die }) } : {}),
    log: { warn: (m) => process.stderr.write(`warn: ${m}\n`), info: () => {} },
  });
  process.stdout.write(`${JSON.stringify({ ...result, files: result.files.map((f) => f.status) })}\n`);
}
