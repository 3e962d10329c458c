// Download throughput: DatastoreClient.download (HTTP from a server in another process, md5
// checked while the bytes arrive, written to a partial file and renamed) against `cp` of the
// same file in the same run (page cache warm for both; neither flushes to disk). The md5 of the
// file alone is printed too: checking md5 is single-threaded and sets a ceiling of its own.
//
//   node bench/datastore-download.ts [MiB=256] [runs=3]
//
// Target: at least 0.8 x the copy.
import { spawnSync } from 'node:child_process';
import { open, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DatastoreClient, fileMd5 } from '../src/datastore/index.ts';
import { startDatastore } from './datastore-lib.ts';
import { BENCH_DIR, check, mb, reportRate, target } from './lib.ts';

const mib = Number(process.argv[2] ?? 256);
const runs = Number(process.argv[3] ?? 3);
const size = mib * 2 ** 20;
const dir = join(BENCH_DIR, 'datastore-download');
await rm(dir, { recursive: true, force: true });
await mkdir(dir, { recursive: true });
const source = join(dir, 'batch.fits');

// A file of varied bytes (not all zeros, which some file systems and copies shortcut).
const handle = await open(source, 'w');
const block = Buffer.alloc(2 ** 20);
for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
for (let i = 0; i < mib; i++) {
  block.writeUInt32LE(i, 0);
  await handle.write(block);
}
await handle.close();

const server = await startDatastore(join(dir, 'root'), ['--no-fsync']);
try {
  const ds = new DatastoreClient({ url: server.url });
  await ds.addProduct({ name: 'PSPS', type: 'IPP-PSPS', description: 'download benchmark' });
  let t = performance.now();
  await ds.publish('PSPS', 'B1', [{ path: source }]);
  console.log(`setup: published ${mib} MiB in ${((performance.now() - t) / 1000).toFixed(2)} s (md5 on both sides, no fsync)`);
  const [file] = (await ds.fileset('PSPS', 'B1')).files;
  const stored = join(dir, 'root', 'PSPS', 'B1', file.name);

  let ours = Infinity;
  let copy = Infinity;
  let md5Only = Infinity;
  for (let r = 0; r < runs; r++) {
    t = performance.now();
    const cp = spawnSync('cp', [stored, join(dir, 'copy.fits')]);
    check(cp.status === 0, 'cp ran');
    copy = Math.min(copy, (performance.now() - t) / 1000);
    await rm(join(dir, 'copy.fits'));

    t = performance.now();
    const got = await ds.download('PSPS', 'B1', file, join(dir, 'got.fits'), { fsync: false });
    ours = Math.min(ours, (performance.now() - t) / 1000);
    check(got.md5 === file.md5 && got.bytes === size, 'the download is complete and checked');
    await rm(join(dir, 'got.fits'));

    t = performance.now();
    const m = await fileMd5(stored);
    md5Only = Math.min(md5Only, (performance.now() - t) / 1000);
    check(m.md5 === file.md5, 'md5 agrees');
  }
  console.log(`${mib} MiB, best of ${runs}: download ${ours.toFixed(3)} s, cp ${copy.toFixed(3)} s, md5 of the file alone ${md5Only.toFixed(3)} s (${(mb(size) / md5Only).toFixed(0)} MB/s)`);
  reportRate('download, md5-checked', mb(size) / ours, 'cp', mb(size) / copy);
  target('at least 0.8 x cp', copy / ours >= 0.8);
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
