import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../../common/index.ts';
import { writeFits } from '../../fits/index.ts';
import { columnInfo, memoryTable } from '../../table/index.ts';
import { resolveFileRef, resolveInputPath } from '../file-ref.ts';
import { runIpp, withNebServer } from '../testing.ts';

const ipp = (env: Record<string, string>, ...args: string[]) => runIpp(args, env);

test('ipp neb: serve, volumes, create, find, replicate, stat, glob, locks, rename, fsck', () => withTempDir(async (dir) => {
  await withNebServer(dir, async (url) => {
    const env = { IPP_NEB_URL: url, IPP_NEB_TOKEN: 'tok' };
    const neb = (...args: string[]) => ipp(env, 'neb', ...args);
    for (const host of ['node01', 'node02']) {
      await mkdir(join(dir, host));
      const r = await neb('volume', 'add', host, '0', join(dir, host));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`added volume ${host}\\.0 on ${host}`));
    }
    assert.equal((await neb('volume', 'add', 'node01', '0', join(dir, 'node01'))).code, 1);
    const ls = await neb('volume', 'ls');
    assert.match(ls.stdout, /^VOLUME\s+HOST\s+STATE/);
    assert.match(ls.stdout, /node02\.0\s+node02\s+available/);
    assert.equal(JSON.parse((await neb('volume', 'ls', '--json')).stdout).length, 2);
    const set = await neb('volume', 'set', 'node02.0', '--capacity', '10G', '--free', '5G');
    assert.match(set.stdout, /5\.4 GB free of 10\.7 GB \(50%\)/);

    // create prints the path to write; find prints one instance path per line.
    const created = await neb('create', 'neb://node01.0/cli/chip.fits');
    assert.equal(created.code, 0, created.stderr);
    const path = created.stdout.trim();
    assert.ok(path.startsWith(join(dir, 'node01', 'nebulous')));
    await writeFits(path, [{ table: memoryTable([columnInfo('X', 'int32')], [{ rowCount: 2, columns: [{ values: new Int32Array([1, 2]) }] }], { name: 'XY01.psf' }) }]);
    const copy = (await neb('replicate', 'cli/chip.fits')).stdout.trim();
    assert.ok(copy.startsWith(join(dir, 'node02')));
    assert.deepEqual((await neb('find', 'cli/chip.fits')).stdout.trim().split('\n'), [path, copy]);
    assert.deepEqual((await neb('find', 'cli/chip.fits', '--host', 'node02')).stdout.trim().split('\n'), [copy, path]);
    const many = await neb('find', 'cli/chip.fits', 'cli/none.fits');
    assert.equal(many.code, 1);
    assert.equal(many.stdout, `cli/chip.fits ${path} ${copy}\n`);
    assert.match(many.stderr, /cli\/none\.fits: error \[neb_not_found\]/);
    const stat = await neb('stat', 'cli/chip.fits');
    assert.match(stat.stdout, /^key:\s+cli\/chip\.fits$/m);
    assert.match(stat.stdout, /^sha256:\s+[0-9a-f]{64}$/m);
    assert.equal(JSON.parse((await neb('stat', 'cli/chip.fits', '--json')).stdout).instances.length, 2);

    // neb: keys wherever a file path is taken: resolved through the server in the settings.
    assert.deepEqual(await resolveFileRef('neb:///cli/chip.fits[XY01.psf]', env), { path, hdu: 'XY01.psf' });
    assert.equal(await resolveInputPath('neb://node02.0/cli/chip.fits', env), copy);
    assert.equal(await resolveInputPath('plain/file.fits', env), 'plain/file.fits');
    const info = await ipp(env, 'fits', 'info', 'neb:///cli/chip.fits');
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /XY01\.psf\s+bintable\s+2\s+1/);
    const dump = await ipp(env, 'fits', 'dump', 'neb://node02.0/cli/chip.fits[XY01.psf]', '--format', 'csv');
    assert.equal(dump.code, 0, dump.stderr);
    assert.equal(dump.stdout, 'X\n1\n2\n');
    assert.equal((await ipp(env, 'fits', 'verify', 'neb:///cli/chip.fits')).code, 0);
    const noServer = await ipp({}, 'fits', 'header', 'neb:///cli/chip.fits');
    assert.equal(noServer.code, 2);
    assert.match(noServer.stderr, /IPP_NEB_URL/);
    await assert.rejects(resolveFileRef('neb:///cli/chip.fits', {}), /IPP_NEB_URL/);
    await assert.rejects(resolveInputPath('neb:///cli/none.fits', env), (e: unknown) => (e as { code?: string }).code === 'neb_not_found');

    // glob, attributes, copies, locks, move, swap, copy, import, delete.
    for (const k of ['cli/a/1', 'cli/a/2', 'cli/b/1']) assert.equal((await neb('create', k)).code, 0);
    assert.deepEqual((await neb('glob', 'cli/a/*')).stdout.trim().split('\n'), ['cli/a/1', 'cli/a/2']);
    assert.deepEqual((await neb('glob', '--regex', '/1$')).stdout.trim().split('\n'), ['cli/a/1', 'cli/b/1']);
    assert.equal((await neb('glob', 'cli/**', '--limit', '2')).stdout.trim().split('\n').length, 2);
    assert.equal((await neb('attr', 'cli/a/1', 'stage', 'chip')).stdout.trim(), 'stage=chip');
    assert.equal((await neb('attr', 'cli/a/1')).stdout.trim(), 'stage=chip');
    assert.equal((await neb('attr', 'cli/a/1', 'stage', '--delete')).stdout.trim(), '');
    assert.match((await neb('copies', 'cli/a/1', '2')).stdout, /keeps 2 copies/);
    assert.match((await neb('repair')).stdout, /repair: 1 examined, 1 done, 0 failed/);
    assert.match((await neb('lock', 'cli/a/2', '--write')).stdout, /write-locked cli\/a\/2/);
    const refused = await neb('delete', 'cli/a/2', '--holder', 'someone-else');
    assert.equal(refused.code, 2, 'delete takes no --holder');
    assert.match((await neb('unlock', 'cli/a/2', '--write')).stdout, /released the write lock/);
    assert.match((await neb('heartbeat')).stdout, /holds 0 locks/);
    assert.match((await neb('move', 'cli/a/2', 'cli/c/2')).stdout, /moved cli\/a\/2 to cli\/c\/2/);
    assert.match((await neb('swap', 'cli/c/2', 'cli/b/1')).stdout, /swapped/);
    const copied = (await neb('copy', 'cli/chip.fits', 'cli/chip-copy.fits')).stdout.trim();
    assert.deepEqual(await readFile(copied), await readFile(path));
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, 'adopted');
    const imported = (await neb('import', outside, 'cli/imported.txt', '--volume', '~node02.0')).stdout.trim();
    assert.equal(await readFile(imported, 'utf8'), 'adopted');
    assert.match((await neb('open', 'cli/chip.fits', '--write', '--host', 'node01')).stdout.trim(), new RegExp(`^${path}$`));
    assert.match((await neb('cull', 'cli/a/1')).stderr, /\[neb_copies_needed\]/);
    await neb('copies', 'cli/a/1', '1');
    assert.match((await neb('cull', 'cli/a/1')).stdout, /^removed /);
    assert.match((await neb('delete', 'cli/b/1', 'cli/c/2')).stdout, /deleted cli\/b\/1 \(1 instance\)\ndeleted cli\/c\/2/);

    // fsck: exit 0 when clean, 1 while a problem remains, 0 again once --fix repaired it.
    const clean = await neb('fsck', '--grace', '0');
    assert.equal(clean.code, 0, clean.stdout);
    assert.match(clean.stdout, /clean$/m);
    await rm(imported);
    const found = await neb('fsck', '--grace', '0');
    assert.equal(found.code, 1);
    assert.match(found.stdout, /found missing: cli\/imported\.txt/);
    const fixed = await neb('fsck', '--grace', '0', '--fix', '--json');
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.deepEqual(JSON.parse(fixed.stdout).problems.map((p: { kind: string }) => p.kind), ['missing', 'lost']);
    assert.match((await neb('rebalance')).stdout, /rebalance: 0 examined/);
    assert.match((await neb('sweep-locks', '--timeout', '0')).stdout, /lock\(s\) released/);

    // Errors: the server's code and message, exit 1; bad usage, exit 2.
    const missing = await neb('find', 'cli/nothing');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error \[neb_not_found\]: Nebulous server: no storage object has the key cli\/nothing/);
    assert.match((await neb('create', 'bad/../key')).stderr, /\[neb_key_invalid\]/);
    assert.equal((await neb('create')).code, 2);
    assert.equal((await neb('volume', 'set', 'node01.0', '--state', 'gone')).code, 2);
    assert.equal((await ipp({}, 'neb', 'find', 'x')).code, 2);
    const unauthorized = await ipp({ IPP_NEB_URL: url }, 'neb', 'create', 'cli/x');
    assert.match(unauthorized.stderr, /\[unauthorized\]/);
  });
}, 'ipp-cli-neb-'));

test('ipp neb serve refuses to listen beyond loopback without a token', () => withTempDir(async (dir) => {
  const r = await ipp({}, 'neb', 'serve', '--db', `sqlite:${join(dir, 'x.db')}`, '--host', '0.0.0.0', '--port', '0');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs a write token/);
}, 'ipp-cli-neb-'));
