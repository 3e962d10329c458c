// Where a file written whole and then renamed into place (an atomic write) must land. A
// rename replaces the directory entry it is given: renamed onto a symbolic link it would
// replace the link and leave its target as it was, and onto a device or a pipe
// (/dev/stdout, a FIFO) it would replace the device. So links are followed to the file they
// name, and anything that is not a regular file is refused.
import { lstat, readlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** The path to write and rename onto, or why the path cannot be written that way (said of the path, without naming it). */
export type ReplaceTarget = { readonly path: string } | { readonly problem: string };

// As the kernel does, give up on a chain of links this long (a loop).
const MAX_LINKS = 40;

/** The regular file (existing or not) that `path` names, links followed; see the file comment. */
export async function replaceTarget(path: string): Promise<ReplaceTarget> {
  let at = resolve(path);
  try {
    for (let links = 0; links <= MAX_LINKS; links++) {
      const info = await lstat(at).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (!info || info.isFile()) return { path: at };
      if (info.isDirectory()) return { problem: 'a directory is there; give the path of a file' };
      if (!info.isSymbolicLink()) {
        return { problem: 'not a regular file (a device, pipe or socket), which writing a whole file and renaming it onto it would replace; give the path of a file' };
      }
      at = resolve(dirname(at), await readlink(at));
    }
  } catch (error) {
    // What the system refuses to say of the path (a directory that cannot be searched) is the problem.
    return { problem: (error as Error).message };
  }
  return { problem: 'too many levels of symbolic links' };
}
