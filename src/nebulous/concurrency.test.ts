// Twenty clients creating, writing, replicating, culling and deleting at once, some of them on
// the same keys: afterwards the database and the disks agree (fsck, with checksums, is clean)
// and every object that was acknowledged and not deleted is there with its content.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { isIppError } from '../common/index.ts';
import { testEngines } from '../db/index.ts';
import { withNebWorld } from './testing.ts';

const CLIENTS = 20;
const ROUNDS = 8;

for (const engine of testEngines()) {
  describe(`Nebulous under concurrent clients on ${engine.name}`, { skip: engine.skip }, () => {
    it('20 clients at once leave the database and the disks in agreement', () => withNebWorld(engine, async (w) => {
      const expected = new Map<string, string>();
      const deleted = new Set<string>();
      const sharedWinners: string[] = [];
      const unexpected: unknown[] = [];
      const tolerate = (error: unknown, ...codes: string[]) => {
        if (!(isIppError(error) && codes.includes(error.code))) unexpected.push(error);
      };
      await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
        const client = w.newClient(`client-${c}`);
        for (let r = 0; r < ROUNDS; r++) {
          const key = `conc/c${c}/r${r}.fits`;
          const content = `client ${c} round ${r}`;
          const { path } = await client.create(key);
          await writeFile(path, content);
          expected.set(key, content);
          if (r % 2 === 0) await client.replicate(key);
          if (r % 4 === 1) {
            await client.delete(key);
            deleted.add(key);
          }
          if (r % 4 === 2) await client.cull(key);
          // Everyone races for the same shared keys: one create wins, the rest are told it exists.
          const shared = `conc/shared/${r}`;
          try {
            const won = await client.create(shared);
            await writeFile(won.path, `shared ${r}`);
            sharedWinners.push(shared);
          } catch (error) {
            tolerate(error, 'neb_exists');
          }
          // ...and replicate or lock it at the same time (an object may be mid-delete by its creator).
          try {
            if (c % 3 === 0) {
              await client.lock(shared, 'read');
              await client.unlock(shared, 'read');
            } else if (c % 3 === 1) {
              await client.replicate(shared);
            }
          } catch (error) {
            tolerate(error, 'neb_no_volume', 'neb_not_found', 'neb_locked', 'neb_exists');
          }
          for await (const k of client.glob(`conc/c${c}/*`)) assert.ok(k.startsWith(`conc/c${c}/`));
        }
      }));
      assert.deepEqual(unexpected, []);
      assert.deepEqual(new Set(sharedWinners).size, ROUNDS);
      assert.equal(sharedWinners.length, ROUNDS, 'exactly one client created each shared key');

      const report = await w.client.fsck({ graceMs: 0, checksum: true });
      assert.deepEqual(report.problems, []);
      assert.equal(report.clean, true);
      for (const [key, content] of expected) {
        if (deleted.has(key)) {
          await assert.rejects(w.client.find(key), (e: unknown) => isIppError(e) && e.code === 'neb_deleted');
          continue;
        }
        const paths = await w.client.find(key);
        assert.equal(paths.length, key.endsWith('r0.fits') || key.endsWith('r4.fits') ? 2 : 1, key);
        for (const p of paths) assert.equal(await readFile(p, 'utf8'), content);
      }
      const live = [];
      for await (const k of w.client.glob('conc/**')) live.push(k);
      assert.equal(live.length, expected.size - deleted.size + ROUNDS);
    }));

    it('finds from many clients at once (looked up in batches) each get their own key\'s answer', () => withNebWorld(engine, async (w) => {
      const keys = Array.from({ length: 40 }, (_, i) => `many/k${i}.fits`);
      for (const [i, key] of keys.entries()) {
        await w.client.create(key);
        if (i % 5 === 0) await w.client.replicate(key);
        if (i % 7 === 3) await w.client.delete(key);
      }
      const clients = Array.from({ length: 4 }, (_, c) => w.newClient(`finder-${c}`));
      const asks = Array.from({ length: 800 }, (_, n) => (n % 9 === 8 ? `many/missing${n}.fits` : keys[(n * 13) % keys.length]!));
      const answers = await Promise.all(asks.map((key, n) => clients[n % clients.length]!.find(key).then(
        (paths) => ({ key, paths }),
        (error: unknown) => ({ key, code: isIppError(error) ? error.code : String(error) }))));
      for (const a of answers) {
        const i = keys.indexOf(a.key);
        if (i < 0) assert.deepEqual(a, { key: a.key, code: 'neb_not_found' });
        else if (i % 7 === 3) assert.deepEqual(a, { key: a.key, code: 'neb_deleted' });
        else {
          assert.ok('paths' in a, a.key);
          assert.equal(a.paths.length, i % 5 === 0 ? 2 : 1, a.key);
          for (const p of a.paths) assert.ok(p.endsWith(`.${a.key.replaceAll('/', ':')}`), `${a.key}: ${p}`);
        }
      }
    }));
  });
}
