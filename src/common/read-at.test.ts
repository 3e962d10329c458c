import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { readAt, withTempDir } from './index.ts';

it('readAt fills the buffer from a position, and stops short only at the end of the file', () => withTempDir(async (dir) => {
  const path = join(dir, 'f.bin');
  const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  await writeFile(path, bytes);
  const handle = await open(path, 'r');
  try {
    const into = new Uint8Array(200_000);
    assert.equal(await readAt(handle, into, 50_000), 200_000);
    assert.deepEqual(Buffer.from(into), bytes.subarray(50_000, 250_000));
    assert.equal(await readAt(handle, into, 250_000), 50_000);
    assert.deepEqual(Buffer.from(into.subarray(0, 50_000)), bytes.subarray(250_000));
    assert.equal(await readAt(handle, into, 400_000), 0);
  } finally {
    await handle.close();
  }
}));
