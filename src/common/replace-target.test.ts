import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceTarget } from './replace-target.ts';
import { withTempDir } from './testing.ts';

test('replaceTarget: files as they are, links followed to their file, directories and devices refused', () => withTempDir(async (dir) => {
  const file = join(dir, 'a.fits');
  await writeFile(file, 'x');
  assert.deepEqual(await replaceTarget(file), { path: file });
  assert.deepEqual(await replaceTarget(join(dir, 'new.fits')), { path: join(dir, 'new.fits') });
  await mkdir(join(dir, 'sub'));
  await symlink('../a.fits', join(dir, 'sub', 'link.fits'));
  await symlink(join(dir, 'sub', 'link.fits'), join(dir, 'chain.fits'));
  assert.deepEqual(await replaceTarget(join(dir, 'chain.fits')), { path: file }, 'a chain of links, relative and absolute');
  await symlink('nowhere.fits', join(dir, 'dangling.fits'));
  assert.deepEqual(await replaceTarget(join(dir, 'dangling.fits')), { path: join(dir, 'nowhere.fits') }, 'a dangling link: the file it names');
  assert.match((await replaceTarget(join(dir, 'sub')) as { problem: string }).problem, /a directory is there/);
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  assert.match((await replaceTarget(join(dir, 'pipe')) as { problem: string }).problem, /not a regular file/);
  assert.match((await replaceTarget('/dev/null') as { problem: string }).problem, /not a regular file/);
  await symlink('loop2', join(dir, 'loop1'));
  await symlink('loop1', join(dir, 'loop2'));
  assert.match((await replaceTarget(join(dir, 'loop1')) as { problem: string }).problem, /too many levels/);
}));
