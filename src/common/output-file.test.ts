import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { mulberry32 } from './testing.ts';
import { OutputFile, STAGE_BYTES } from './output-file.ts';

// A file of pieces staged in every way (put, space/advance, zeros), with placeholders patched
// later: one at the start, one across a staging buffer's end, one patched after its buffer
// went out, one never leaving the buffer; the end not on a block boundary.
async function writeSample(path: string, mode: 'direct' | 'cached', seed: number, directWrites?: number): Promise<{ expected: Uint8Array; direct: boolean }> {
  const rnd = mulberry32(seed);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rnd() & 0xff);
  const total = 2 * STAGE_BYTES + 123_457;
  const expected = new Uint8Array(total);
  const out = await OutputFile.create(path, { mode, ...(directWrites === undefined ? {} : { directWrites }) });
  try {
    // Placeholders at these offsets (their patches are random bytes of the same length).
    const holds = [0, STAGE_BYTES - 1000, STAGE_BYTES + 50_000, 2 * STAGE_BYTES + 100_000];
    const holdLength = 5760;
    let k = 0;
    let pending: { at: number; patch: Uint8Array; due: number } | undefined;
    while (out.position < total) {
      const at = out.position;
      if (pending && at >= pending.due) {
        await out.patch(pending.patch);
        expected.set(pending.patch, pending.at);
        pending = undefined;
      }
      if (!pending && k < holds.length && at >= holds[k]) {
        const placeholder = new Uint8Array(holdLength).fill(0x30);
        const patch = bytes(holdLength);
        await out.putHeld(placeholder);
        // Patched right away, a little later, or after more than a buffer.
        pending = { at, patch, due: at + [0, 10_000, STAGE_BYTES + 7, 300][k] };
        k++;
        continue;
      }
      const n = Math.min(total - at, 1 + (rnd() % 700_000));
      const piece = bytes(n);
      const how = rnd() % 3;
      if (how === 0) await out.put(piece);
      else if (how === 1) {
        piece.fill(0);
        await out.zeros(n);
      } else {
        const room = await out.space(1);
        const m = Math.min(n, room.length);
        room.set(piece.subarray(0, m));
        await out.advance(m);
        expected.set(piece.subarray(0, m), at);
        continue;
      }
      expected.set(piece, at);
    }
    if (pending) {
      await out.patch(pending.patch);
      expected.set(pending.patch, pending.at);
    }
    const direct = out.direct;
    await out.finish();
    return { expected, direct };
  } catch (error) {
    await out.close();
    throw error;
  }
}

test('output-file: staged pieces and patched placeholders give the same bytes direct and through the page cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ipp-output-file-'));
  try {
    for (const mode of ['direct', 'cached'] as const) {
      for (const seed of [1, 2]) {
        const path = join(dir, `${mode}-${seed}.bin`);
        const { expected, direct } = await writeSample(path, mode, seed);
        if (mode === 'cached') assert.equal(direct, false);
        assert.equal((await stat(path)).size, expected.length, `${mode} ${seed}: cut to its length`);
        assert.deepEqual(await readFile(path), Buffer.from(expected), `${mode} ${seed} (direct I/O: ${direct})`);
      }
    }
    // Misuse is a typed error, and the file is closed.
    const out = await OutputFile.create(join(dir, 'bad.bin'));
    await out.putHeld(new Uint8Array(10));
    await assert.rejects(out.putHeld(new Uint8Array(10)), { code: 'output_internal' });
    await assert.rejects(out.patch(new Uint8Array(9)), { code: 'output_internal' });
    await assert.rejects(out.finish(), { code: 'output_internal' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('output-file: a direct write refused part way (EINVAL) sends the rest through the page cache, and the file has the same bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ipp-output-file-'));
  try {
    const probe = await OutputFile.create(join(dir, 'probe.bin'));
    const direct = probe.direct;
    await probe.close();
    if (!direct) return; // nothing to refuse where the file system takes no direct I/O
    // Refused at the first write, between buffers, while a header is held aside, and at a patch.
    for (const allowed of [0, 1, 2, 3, 4, 5, 6]) {
      const path = join(dir, `refused-${allowed}.bin`);
      const { expected, direct: still } = await writeSample(path, 'direct', 3, allowed);
      assert.equal((await stat(path)).size, expected.length, `refused after ${allowed}: cut to its length`);
      assert.deepEqual(await readFile(path), Buffer.from(expected), `refused after ${allowed} direct writes (direct to the end: ${still})`);
    }
    // An existing file is refused when asked for a new one, and left as it was.
    await assert.rejects(OutputFile.create(join(dir, 'refused-0.bin'), { exclusive: true }), { code: 'EEXIST' });
    assert.ok((await stat(join(dir, 'refused-0.bin'))).size > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
