import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { copyVerified, createEmptyFile, digestFile, ioError } from './data-path.ts';
import { NebError } from './errors.ts';

const code = (c: string) => (e: unknown) => e instanceof NebError && e.code === c;

describe('the data path', () => {
  it('copies through a temporary name and returns size and SHA-256 of what it copied', () => withTempDir(async (dir) => {
    // Larger than the copy's chunks and its flush interval, with a tail.
    const content = Buffer.alloc((70 << 20) + 12345);
    for (let i = 0; i < content.length; i += 8191) content[i] = i & 0xff;
    const source = join(dir, 'source');
    await writeFile(source, content);
    const dest = join(dir, 'a', 'b', 'dest');
    const digest = await copyVerified(source, dest);
    const sum = createHash('sha256').update(content).digest('hex');
    assert.deepEqual(digest, { size: content.length, checksum: sum });
    assert.ok((await readFile(dest)).equals(content));
    assert.deepEqual(await digestFile(dest), digest);
    assert.deepEqual(await readdir(join(dir, 'a', 'b')), ['dest']);
    // The expected checksum holds: copied again, without flushing.
    await copyVerified(source, join(dir, 'a', 'b', 'again'), { expect: sum, sync: false });
  }));

  it('leaves nothing behind when the source is damaged, missing, or the copy is aborted', () => withTempDir(async (dir) => {
    const source = join(dir, 'source');
    await writeFile(source, 'some bytes');
    await assert.rejects(copyVerified(source, join(dir, 'x'), { expect: '0'.repeat(64) }), code('neb_checksum_mismatch'));
    await assert.rejects(copyVerified(join(dir, 'missing'), join(dir, 'y')), code('neb_source_missing'));
    const stop = new AbortController();
    stop.abort();
    await assert.rejects(copyVerified(source, join(dir, 'z'), { signal: stop.signal }), { name: 'AbortError' });
    assert.deepEqual(await readdir(dir), ['source']);
    // A temporary file in the way (another copy running) is not overwritten.
    await writeFile(join(dir, 'w.part'), 'busy');
    await assert.rejects(copyVerified(source, join(dir, 'w')), code('neb_io'));
    assert.equal(await readFile(join(dir, 'w.part'), 'utf8'), 'busy');
  }));

  it('creates an empty file once, making its directory when missing', () => withTempDir(async (dir) => {
    const path = join(dir, 'nebulous', 'ab', 'cd', '1.key');
    await createEmptyFile(path);
    assert.equal((await readFile(path)).length, 0);
    await assert.rejects(createEmptyFile(path), code('neb_io'));
  }));

  it('maps a full disk to neb_volume_full and other failures to neb_io', () => {
    const full = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    assert.equal(ioError(full, 'cannot write x').code, 'neb_volume_full');
    assert.match(ioError(full, 'cannot write x').message, /cannot write x: the disk is full/);
    assert.equal(ioError(Object.assign(new Error('denied'), { code: 'EACCES' }), 'cannot write x').code, 'neb_io');
  });
});
