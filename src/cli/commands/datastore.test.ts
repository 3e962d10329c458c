import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withTempDir } from '../../common/index.ts';
import { parseFilesetIndex, parseProductIndex, parseRootIndex } from '../../datastore/index.ts';
import { testEngines } from '../../db/index.ts';
import { runIpp, startIpp } from '../testing.ts';


const ipp = (env: Record<string, string>, ...args: string[]) => runIpp(args, env);

for (const engine of testEngines()) {
  describe(`ipp datastore on ${engine.name}`, { skip: engine.skip }, () => {
    it('serves until interrupted; product add/ls/show, publish, ls, get, rm through the CLI', () => engine.withUrl((pgUrl) => withTempDir(async (dir) => {
      const root = join(dir, 'root');
      const controller = new AbortController();
      const dbArgs = engine.name === 'postgres' ? ['--db', pgUrl] : [];
      const serving = startIpp(['datastore', 'serve', '--root', root, '--port', '0', ...dbArgs], {
        signal: controller.signal, env: { IPP_DATASTORE_TOKEN: 'cli-secret' },
      });
      const out = { text: serving.stdout };
      const err = { text: serving.stderr };
      let url: string | undefined;
      for (let i = 0; i < 400 && url === undefined; i++) {
        url = /at (http:\/\/\S+) /.exec(out.text())?.[1];
        if (url === undefined) await sleep(25);
      }
      assert.ok(url, `serve printed its URL: ${out.text()} ${err.text()}`);
      assert.match(out.text(), /writes need the token/);
      const env = { IPP_DATASTORE_URL: url, IPP_DATASTORE_TOKEN: 'cli-secret' };
      try {
        let r = await ipp(env, 'datastore', 'product', 'add', 'PSPS_test', '--type', 'IPP-PSPS', '--description', 'CLI test batches');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /added product PSPS_test/);
        r = await ipp(env, 'datastore', 'product', 'ls');
        assert.deepEqual(parseRootIndex(r.stdout).map((p) => p.name), ['PSPS_test']);
        r = await ipp(env, 'datastore', 'product', 'show', 'PSPS_test', '--json');
        assert.equal(JSON.parse(r.stdout).description, 'CLI test batches');

        const a = join(dir, 'B0001.fits');
        const b = join(dir, 'B0001.xml');
        await writeFile(a, Buffer.alloc(20_000, 7));
        await writeFile(b, '<batch/>');
        for (const name of ['B0001', 'B0002', 'B0003']) {
          r = await ipp(env, 'datastore', 'publish', 'PSPS_test', name, a, b, '--type', 'IPP_PSPS');
          assert.equal(r.code, 0, r.stderr);
        }
        assert.match(r.stdout, /published PSPS_test\/B0003: 2 files, 20008 bytes/);
        r = await ipp(env, 'datastore', 'publish', 'PSPS_test', 'B0001', a);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /\[fileset_exists\]/);
        r = await ipp(env, 'datastore', 'publish', 'PSPS_test', 'B0001', a, '--replace');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /replaced PSPS_test\/B0001: 1 files/);

        r = await ipp(env, 'datastore', 'ls', 'PSPS_test');
        assert.deepEqual(parseProductIndex(r.stdout).map((f) => f.name), ['B0002', 'B0003', 'B0001']);
        r = await ipp(env, 'datastore', 'ls', 'PSPS_test', '--after', 'B0002', '--json');
        assert.deepEqual(JSON.parse(r.stdout).map((f: { name: string }) => f.name), ['B0003', 'B0001']);
        r = await ipp(env, 'datastore', 'ls', 'PSPS_test', 'B0002');
        assert.deepEqual(parseFilesetIndex(r.stdout).map((f) => [f.name, f.bytes, f.type]), [['B0001.fits', 20_000, 'fits'], ['B0001.xml', 8, 'xml']]);

        const into = join(dir, 'got');
        r = await ipp(env, 'datastore', 'get', 'PSPS_test', 'B0002', '--out', into, '-q');
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual((await readdir(into)).sort(), ['B0001.fits', 'B0001.xml']);
        assert.equal(await readFile(join(into, 'B0001.xml'), 'utf8'), '<batch/>');
        r = await ipp(env, 'datastore', 'get', 'PSPS_test', 'B0002', '--out', into, '-q');
        assert.match(r.stdout, /already there/);

        r = await ipp(env, 'datastore', 'rm', 'PSPS_test', 'B0002', 'B0003');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /removed 2 filesets of PSPS_test: B0002 B0003/);
        r = await ipp(env, 'datastore', 'rm', 'PSPS_test', 'B0001', '--hide');
        assert.match(r.stdout, /hid 1 fileset of PSPS_test: B0001/);
        r = await ipp(env, 'datastore', 'ls', 'PSPS_test', '--hidden', '--json');
        assert.deepEqual(JSON.parse(r.stdout).map((f: { name: string; hidden: boolean }) => [f.name, f.hidden]), [['B0001', true]]);

        // Settings and refusals: no server given is a usage error; a wrong token is refused with its code.
        r = await ipp({}, 'datastore', 'ls', 'PSPS_test');
        assert.equal(r.code, 2);
        assert.match(r.stderr, /IPP_DATASTORE_URL/);
        r = await ipp({ IPP_DATASTORE_URL: url }, 'datastore', 'rm', 'PSPS_test', 'B0001', '--token', 'wrong');
        assert.equal(r.code, 1);
        assert.match(r.stderr, /\[forbidden\]/);
        r = await ipp(env, 'datastore', 'product', 'add', 'X');
        assert.equal(r.code, 2);
        r = await ipp(env, 'datastore', 'ls', 'nope');
        assert.match(r.stderr, /\[product_not_found\]/);
      } finally {
        controller.abort();
      }
      assert.equal(await serving.done, 0, err.text());
      assert.match(out.text(), /datastore: stopped/);
      if (engine.name === 'sqlite') assert.ok((await stat(join(root, '.datastore.db'))).isFile(), 'the default database lives in the root');
      await assert.rejects(stat(join(root, '.lock')), { code: 'ENOENT' });
    }, 'ipp-ds-cli-')));
  });
}

it('serve refuses a bad port and a missing root with usage errors', async () => {
  assert.equal((await ipp({}, 'datastore', 'serve')).code, 2);
  assert.equal((await ipp({}, 'datastore', 'serve', '--root', '/tmp/x', '--port', '70000')).code, 2);
  assert.equal((await ipp({}, 'datastore', 'serve', '--root', '/tmp/x', '--max-file-bytes', 'lots')).code, 2);
  const help = await ipp({}, 'datastore', '--help');
  assert.match(help.stdout, /publish/);
});
