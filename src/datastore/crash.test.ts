// Faults that need a server in its own process: kill -9 in the middle of uploads (then a
// restart, whose sweep must leave nothing partial), and a disk that fills up (a small tmpfs
// mounted in a private mount namespace, so nothing leaks onto the machine).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServerChild, withTempDir, type ServerChild } from '../common/index.ts';
import { testEngines } from '../db/index.ts';
import { DatastoreClient } from './index.ts';
import { bytesOf, md5, stalledUpload, waitFor } from './test-support.ts';

const FIXTURE = fileURLToPath(new URL('./server.fixture.ts', import.meta.url));

/** Starts the fixture server (optionally under a wrapper command) and waits for its URL. */
function startServer(root: string, dbUrl: string, options: object = {}, wrapper: string[] = []): Promise<ServerChild> {
  return startServerChild([...wrapper, process.execPath, FIXTURE, root, dbUrl, JSON.stringify(options)], { pattern: /^URL (\S+)/m });
}

for (const engine of testEngines()) {
  describe(`datastore killed mid-upload on ${engine.name}`, { skip: engine.skip }, () => {
    it('after kill -9 and a restart, no partial fileset is visible and the sweep removes staged and unregistered files', () => engine.withUrl((pgUrl) => withTempDir(async (dir) => {
      const root = join(dir, 'root');
      const dbUrl = engine.name === 'sqlite' ? `sqlite:${join(dir, 'ds.db')}` : pgUrl;
      let server = await startServer(root, dbUrl);
      const never = new Promise<void>(() => undefined);
      try {
        const ds = new DatastoreClient({ url: server.url });
        await ds.addProduct({ name: 'P', type: 'IPP-PSPS', description: 'crash test' });
        const kept = [bytesOf(1, 300_000), bytesOf(2, 70_000)];
        await ds.publish('P', 'C1', [{ data: kept[0], name: 'c1.fits' }]);
        await ds.publish('P', 'C2', [{ data: kept[1], name: 'c2.fits' }]);
        const stalled = [1, 2, 3, 4].map((i) => stalledUpload(server.url, 'P', `U${i}`, bytesOf(10 + i, 2_000_000), 1_200_000, never));
        for (const s of stalled) s.catch(() => undefined);
        await waitFor('four uploads in progress', async () => (await ds.health()).uploadsInProgress === 4);
        // What a crash between the rename into place and the commit leaves: directories no row owns.
        await mkdir(join(root, 'P', 'C3'));
        await writeFile(join(root, 'P', 'C3', 'c3.fits'), bytesOf(3, 1000));
        await mkdir(join(root, 'P', 'C1@0badbeef'));
        await server.stop('SIGKILL');
        assert.equal((await readdir(join(root, '.staging'))).length, 4, 'the killed server left its staged uploads');
        await Promise.allSettled(stalled);

        server = await startServer(root, dbUrl);
        const after = new DatastoreClient({ url: server.url });
        const health = await after.health();
        assert.deepEqual(health.sweep, { stagingRemoved: 4, orphansRemoved: 2, missing: 0 });
        assert.deepEqual((await after.filesets('P')).map((f) => f.name), ['C1', 'C2']);
        assert.deepEqual(await readdir(join(root, '.staging')), []);
        assert.deepEqual((await readdir(join(root, 'P'))).sort(), ['C1', 'C2']);
        for (const [i, name] of ['C1', 'C2'].entries()) {
          const out = join(dir, 'out', name);
          const [got] = await after.get('P', name, out);
          assert.equal(got.md5, md5(kept[i]));
        }
        // The stalled filesets can be published again, whole.
        await after.publish('P', 'U1', [{ data: bytesOf(11, 2_000_000), name: 'data.fits' }]);
        assert.deepEqual((await after.filesets('P')).map((f) => f.name), ['C1', 'C2', 'U1']);
      } finally {
        await server.stop('SIGTERM');
      }
    }, 'ipp-ds-crash-')));
  });
}

const unshare = spawnSync('unshare', ['-rm', 'true']).status === 0;

describe('datastore on a full disk', { skip: unshare ? false : 'unshare -rm (a private mount namespace) is not available here' }, () => {
  it('answers 507 and registers nothing, whether the check before the upload or the disk itself refuses', () => withTempDir(async (dir) => {
    const mountPoint = join(dir, 'mnt');
    await mkdir(mountPoint);
    const wrapper = ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', mountPoint];
    const server = await startServer(join(mountPoint, 'root'), `sqlite:${join(dir, 'ds.db')}`, {}, wrapper);
    let release = (): void => undefined;
    try {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct({ name: 'P', type: 'table', description: 'full disk' });
      const KiB = 1024;
      await ds.publish('P', 'A', [{ data: bytesOf(1, 700 * KiB), name: 'a.fits' }]);
      // Larger than the free space: refused before a byte is stored.
      await assert.rejects(ds.publish('P', 'B', [{ data: bytesOf(2, 1400 * KiB), name: 'b.fits' }]),
        (e: unknown) => (e as { status?: number }).status === 507 && (e as { code?: string }).code === 'insufficient_storage'
          && /bytes free/.test((e as Error).message));
      // Two uploads that each fit, but not together: the second to write hits ENOSPC.
      const x = stalledUpload(server.url, 'P', 'X', bytesOf(3, 700 * KiB), 10 * KiB, new Promise((resolve) => { release = resolve; }));
      await waitFor('X to pass its checks', async () => (await ds.health()).uploadsInProgress === 1);
      await ds.publish('P', 'Y', [{ data: bytesOf(4, 700 * KiB), name: 'y.fits' }]);
      const freeBeforeX = (await ds.health()).freeBytes;
      release();
      const answer = await x;
      assert.equal(answer.status, 507);
      const { error } = (await answer.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'insufficient_storage');
      assert.match(error.message, /disk is full/, 'refused by the disk itself (ENOSPC), not by the check before');
      assert.deepEqual((await ds.filesets('P')).map((f) => f.name), ['A', 'Y']);
      const health = await ds.health();
      assert.equal(health.uploadsInProgress, 0);
      assert.ok(health.freeBytes >= freeBeforeX, 'the failed upload\'s staged bytes were deleted');
      const [y] = await ds.get('P', 'Y', join(dir, 'out'));
      assert.equal(y.md5, md5(bytesOf(4, 700 * KiB)));
    } finally {
      release();
      await server.stop('SIGTERM');
    }
  }, 'ipp-ds-full-'));
});
