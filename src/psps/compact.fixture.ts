// A compaction in its own process, for a test that kills it (kill -9) in the middle of a
// fold. Arguments: ARCHIVE_URL SCHEMA_DIR K STEP. Prints "at STEP" when the fold reaches that
// step (inside its transaction) and then waits to be killed.
import { openArchive } from './archive.ts';
import { compactArchive } from './compact.ts';

const [archiveUrl, schemaDir, k, stop] = process.argv.slice(2);
const archive = await openArchive(archiveUrl, { schemaDir });
await compactArchive(archive, {
  batchesPerPartition: Number(k),
  onStep: async (step) => {
    if (step !== stop) return;
    process.stdout.write(`at ${step}\n`);
    await new Promise(() => undefined);
  },
});
