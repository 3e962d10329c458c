// Positioned reads that fill their buffer: a file handle's read may return fewer bytes than
// asked for, so the readers of FITS, VOTable and catalogue files all loop until the buffer is
// full or the file ends.
import type { FileHandle } from 'node:fs/promises';

/** Reads into all of `into` from `position`, stopping early only at the end of the file; returns the bytes read. */
export async function readAt(handle: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
