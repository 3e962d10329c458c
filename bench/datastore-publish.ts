// Publish rate of small filesets (two files: a 16 KiB "FITS" and a 1 KiB manifest, like a
// small ippToPsps batch) through the server in another process, one publisher and eight at
// once, with the server flushing files to disk (its default) and without. The peer stores the
// same filesets locally in the same run: md5 both files, write them into a new directory and
// rename it into place (with fsync when the server does), one after another.
//
//   node bench/datastore-publish.ts [filesets=400]
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DatastoreClient } from '../src/datastore/index.ts';
import { startDatastore } from './datastore-lib.ts';
import { BENCH_DIR, check, reportRate } from './lib.ts';

const count = Number(process.argv[2] ?? 400);
const dir = join(BENCH_DIR, 'datastore-publish');
const fits = Buffer.alloc(16 * 1024);
for (let i = 0; i < fits.length; i++) fits[i] = (i * 31) & 0xff;
const manifest = Buffer.from(`<batch>${'x'.repeat(1000)}</batch>`);

async function writeLocally(target: string, fsync: boolean): Promise<void> {
  const staging = `${target}.tmp`;
  await mkdir(staging);
  for (const [name, data] of [['batch.fits', fits], ['manifest.xml', manifest]] as const) {
    createHash('md5').update(data).digest('hex');
    const h = await open(join(staging, name), 'wx');
    await h.write(data);
    if (fsync) await h.datasync();
    await h.close();
  }
  await rename(staging, target);
}

for (const fsync of [true, false]) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'local'), { recursive: true });
  const server = await startDatastore(join(dir, 'root'), fsync ? [] : ['--no-fsync']);
  try {
    const ds = new DatastoreClient({ url: server.url });
    await ds.addProduct({ name: 'PSPS', type: 'IPP-PSPS', description: 'publish benchmark' });
    let t = performance.now();
    for (let i = 0; i < count; i++) await writeLocally(join(dir, 'local', `L${i}`), fsync);
    const local = count / ((performance.now() - t) / 1000);
    for (const publishers of [1, 8]) {
      let next = 0;
      t = performance.now();
      await Promise.all(Array.from({ length: publishers }, async () => {
        while (next < count) {
          const name = `P${publishers}-${next++}`;
          await ds.publish('PSPS', name, [{ data: fits, name: 'batch.fits' }, { data: manifest, name: 'manifest.xml' }]);
        }
      }));
      const rate = count / ((performance.now() - t) / 1000);
      reportRate(`publish, ${publishers} publisher${publishers > 1 ? 's' : ''}, ${fsync ? 'fsync' : 'no fsync'}`, rate, 'local write', local, 'filesets/s');
    }
    check((await ds.health()).filesets === 2 * count, 'every fileset registered');
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
