// The server is killed (SIGKILL) in the middle of replicating a large file while other clients
// create objects. After a restart, fsck reports what the crash left (the unfinished copy,
// perhaps a created file whose rows never committed), fixes it, and is clean afterwards;
// every object whose creation or replication was acknowledged is still there, intact.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { testEngines } from '../db/index.ts';
import { NebulousClient } from './client.ts';
import { startServerProcess } from './testing.ts';

const BIG = 96 << 20;


async function findPart(dir: string): Promise<string | undefined> {
  const walk = async (d: string): Promise<string | undefined> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        const hit = await walk(p);
        if (hit) return hit;
      } else if (e.name.endsWith('.part')) {
        return p;
      }
    }
    return undefined;
  };
  return walk(dir);
}

for (const engine of testEngines()) {
  describe(`Nebulous after SIGKILL on ${engine.name}`, { skip: engine.skip }, () => {
    it('fsck after a restart fixes what a kill mid-replicate left; nothing acknowledged is lost', () => withTempDir((dir) => engine.withUrl(async (db) => {
      const volumes = ['node01', 'node02', 'node03'].map((host) => ({ host, path: join(dir, `${host}.0`) }));
      for (const v of volumes) await mkdir(v.path);
      const config = { db, volumes, token: 'secret', syncData: true };
      let server = await startServerProcess(config);
      const acknowledged = new Map<string, string>();
      let client = new NebulousClient({ url: server.url, token: 'secret' });
      try {
        // A large object on node01, replicated (acknowledged) once to node02.
        const big = Buffer.alloc(BIG);
        for (let i = 0; i < BIG; i += 4096) big.writeUInt32LE(i, i);
        const bigSum = createHash('sha256').update(big).digest('hex');
        const { path } = await client.create('crash/big.fits', { volume: '~node01.0' });
        await writeFile(path, big);
        await client.replicate('crash/big.fits', { volume: '~node02.0' });
        for (let i = 0; i < 20; i++) {
          const k = `crash/small/${i}`;
          const placed = await client.create(k);
          await writeFile(placed.path, `small ${i}`);
          acknowledged.set(k, `small ${i}`);
        }

        // Other clients keep creating; once they are under way, replicate to node03 and kill
        // the server as soon as the copy's temporary file appears.
        let creating = true;
        const failures: unknown[] = [];
        const creators = Array.from({ length: 4 }, async (_, c) => {
          for (let i = 0; creating; i++) {
            const k = `crash/during/${c}/${i}`;
            try {
              const placed = await client.create(k);
              await writeFile(placed.path, k);
              acknowledged.set(k, k);
            } catch (error) {
              failures.push(error);
              return;
            }
          }
        });
        while (acknowledged.size < 28 && failures.length === 0) await new Promise((r) => setTimeout(r, 2));
        assert.deepEqual(failures, [], 'creates before the kill succeed');
        const replicating = client.replicate('crash/big.fits', { volume: '~node03.0' }).then(() => 'finished', () => 'failed');
        let part: string | undefined;
        for (let tries = 0; tries < 4000 && !part; tries++) {
          part = await findPart(volumes[2].path);
          if (!part) await new Promise((r) => setTimeout(r, 2));
        }
        server.child.kill('SIGKILL');
        creating = false;
        assert.ok(part, 'the copy was caught in flight');
        assert.equal(await replicating, 'failed');
        await Promise.all(creators);
        await server.exited;
        client.close();

        server = await startServerProcess(config);
        client = new NebulousClient({ url: server.url, token: 'secret' });
        const report = await client.fsck({ graceMs: 0, checksum: true });
        assert.equal(report.clean, false);
        assert.ok(report.problems.some((p) => p.kind === 'temp' && p.path === part), JSON.stringify(report.problems));
        // Only leftovers of unfinished work: temporary copies and files whose creation never committed.
        for (const p of report.problems) assert.ok(p.kind === 'temp' || p.kind === 'orphan', JSON.stringify(p));
        const fixed = await client.fsck({ graceMs: 0, checksum: true, fix: true });
        assert.ok(fixed.problems.every((p) => p.fixed), JSON.stringify(fixed.problems));
        assert.deepEqual((await client.fsck({ graceMs: 0, checksum: true })).problems, []);

        const bigPaths = await client.find('crash/big.fits');
        assert.equal(bigPaths.length, 2);
        for (const p of bigPaths) assert.equal(createHash('sha256').update(await readFile(p)).digest('hex'), bigSum);
        assert.ok(acknowledged.size >= 28);
        for (const [k, content] of acknowledged) {
          const [p] = await client.find(k);
          assert.equal(await readFile(p, 'utf8'), content, k);
        }
        // The server works on: the interrupted replicate can be done again.
        assert.equal((await client.replicate('crash/big.fits', { volume: '~node03.0' })).volume, 'node03.0');
      } finally {
        client.close();
        server.child.kill('SIGKILL');
      }
    }), 'ipp-neb-crash-'));
  });
}
