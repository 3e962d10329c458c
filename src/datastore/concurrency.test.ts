// Many publishers and pollers at once against one real server: every fileset a poller sees is
// whole (all its files listed, each one downloadable with its md5), none is seen twice or
// missed, and they come in registration order.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { testEngines } from '../db/index.ts';
import { DatastoreClient, parseFilesetIndex, parseProductIndex, type FilesetInfo } from './index.ts';
import { bytesOf, md5, withDatastore } from './test-support.ts';

const PUBLISHERS = 20;
const POLLERS = 6;
const PER_PUBLISHER = 4;

/** What publisher p's k-th fileset holds: 1 to 4 files of a few kilobytes, known to every poller. */
function expected(p: number, k: number): { name: string; files: { name: string; data: Buffer }[] } {
  const count = 1 + ((p + k) % 4);
  return {
    name: `p${String(p).padStart(2, '0')}-f${k}`,
    files: Array.from({ length: count }, (_, i) => ({ name: `chip${i}.fits`, data: bytesOf(p * 100 + k * 10 + i, 1000 + ((p * 7919 + k * 104729 + i * 31) % 40_000)) })),
  };
}

const byName = new Map<string, ReturnType<typeof expected>>();
for (let p = 0; p < PUBLISHERS; p++) for (let k = 0; k < PER_PUBLISHER; k++) byName.set(expected(p, k).name, expected(p, k));
const TOTAL = PUBLISHERS * PER_PUBLISHER;

for (const engine of testEngines()) {
  describe(`datastore under concurrent publishers and pollers on ${engine.name}`, { skip: engine.skip }, () => {
    it(`${PUBLISHERS} publishers and ${POLLERS} pollers: pollers see only whole filesets, each once, in order`, () => withDatastore(engine, {}, async ({ server, dir }) => {
      const admin = new DatastoreClient({ url: server.url });
      await admin.addProduct({ name: 'PSPS', type: 'IPP-PSPS', description: 'concurrency' });
      let publishing = true;

      const publishers = Array.from({ length: PUBLISHERS }, async (_, p) => {
        const ds = new DatastoreClient({ url: server.url });
        for (let k = 0; k < PER_PUBLISHER; k++) {
          const e = expected(p, k);
          await ds.publish('PSPS', e.name, e.files.map((f) => ({ data: f.data, name: f.name })));
        }
      });

      // Half the pollers use the JSON API with an id cursor, half the original text index with "after NAME".
      const pollers = Array.from({ length: POLLERS }, async (_, q) => {
        const ds = new DatastoreClient({ url: server.url });
        const seen: string[] = [];
        let lastId = 0;
        let lastName: string | undefined;
        while (seen.length < TOTAL) {
          let fresh: string[];
          if (q % 2 === 0) {
            const page: FilesetInfo[] = await ds.filesets('PSPS', { afterId: lastId });
            for (const f of page) {
              assert.ok(f.id > lastId, 'ids come in order');
              lastId = f.id;
              assert.equal(f.fileCount, byName.get(f.name)!.files.length, `${f.name} listed whole`);
            }
            fresh = page.map((f) => f.name);
          } else {
            fresh = parseProductIndex(await ds.textIndex('PSPS', undefined, lastName)).map((f) => f.name);
            if (fresh.length > 0) lastName = fresh.at(-1);
          }
          for (const name of fresh) {
            const want = byName.get(name)!;
            const files = q % 2 === 0 ? (await ds.fileset('PSPS', name)).files : parseFilesetIndex(await ds.textIndex('PSPS', name));
            assert.deepEqual(files.map((f) => [f.name, f.bytes, f.md5]), want.files.map((f) => [f.name, f.data.length, md5(f.data)]), `${name} whole`);
            const pick = want.files[seen.length % want.files.length];
            const got = await ds.download('PSPS', name, files.find((f) => f.name === pick.name)!, join(dir, `poller${q}`, `${name}-${pick.name}`), { fsync: false });
            assert.equal(got.md5, md5(pick.data));
          }
          seen.push(...fresh);
          if (fresh.length === 0) {
            if (!publishing && seen.length < TOTAL) assert.fail(`poller ${q} saw ${seen.length} of ${TOTAL} after publishing ended`);
            await sleep(5);
          }
        }
        return seen;
      });

      await Promise.all(publishers);
      publishing = false;
      const seen = await Promise.all(pollers);
      const registered = (await admin.filesets('PSPS')).map((f) => f.name);
      assert.equal(registered.length, TOTAL);
      assert.deepEqual(new Set(registered), new Set(byName.keys()));
      for (const s of seen) assert.deepEqual(s, registered, 'every poller saw every fileset once, in registration order');
      const health = await admin.health();
      assert.equal(health.files, [...byName.values()].reduce((n, e) => n + e.files.length, 0));
      assert.equal(health.uploadsInProgress, 0);
    }));
  });
}
