import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withTempDir } from '../../common/index.ts';
import { runIpp, startIpp } from '../testing.ts';


const ipp = (env: Record<string, string>, ...args: string[]) => runIpp(args, env);

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('ipp pantasks', () => {
  it('server until shutdown; client load, run, status, jobs, book, task, labels, host, stop', () => withTempDir(async (dir) => {
    const urlFile = join(dir, 'url');
    const serving = startIpp(['pantasks', 'server', '--db', `sqlite:${join(dir, 'p.db')}`, '--url-file', urlFile, '--label', 'night'], {
      env: { PATH: process.env.PATH ?? '' },
    });
    const out = { text: serving.stdout };
    const err = { text: serving.stderr };
    let url = '';
    await until('the server URL', async () => (url = (await readFile(urlFile, 'utf8').catch(() => '')).trim()) !== '');
    const env = { IPP_PANTASKS_URL: url };
    try {
      assert.match(out.text(), /pantasks server \S+ listening at http:\/\/127\.0\.0\.1:[0-9]+ \(stopped/);
      let r = await ipp(env, 'pantasks', 'client', 'status');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /stopped; labels: night/);
      assert.match(r.stdout, /no tasks/);

      const module = join(dir, 'tasks.ts');
      await writeFile(module, `export default (ctx) => [
  { name: 'greet', command: ['echo', 'hello ' + ctx.config.who], period: 0.05, nmax: 3 },
  { name: 'pages', period: 0.05, exec: (t) => {
      const b = t.books.book('work');
      if (b.count() === 0) for (const k of ['a', 'b']) b.add(k, { n: k });
      const p = b.first('INIT');
      return p ? { command: ['true'], page: p } : null;
  } },
];\n`);
      r = await ipp(env, 'pantasks', 'client', 'load', module, '--config', '{"who": "world"}');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /loaded .*tasks\.ts: 2 tasks \(greet, pages\)/);
      r = await ipp(env, 'pantasks', 'client', 'run');
      assert.equal(r.code, 0, r.stderr);
      await until('three greetings and two pages done', async () => {
        const s = JSON.parse((await ipp(env, 'pantasks', 'client', 'status', '--json')).stdout);
        return s.tasks.find((t: { name: string }) => t.name === 'greet').succeeded === 3 && s.books[0]?.states.DONE === 2;
      });
      r = await ipp(env, 'pantasks', 'client', 'jobs', '--finished');
      assert.match(r.stdout, /greet\s+done\s+local\s+-\s+exit 0\s+echo 'hello world'/);
      r = await ipp(env, 'pantasks', 'client', 'book', 'work');
      assert.match(r.stdout, /book work: 2 pages \(DONE=2\)/);
      r = await ipp(env, 'pantasks', 'client', 'status', 'tasks');
      assert.match(r.stdout, /greet\s+yes\s+local\s+0.05\s+-\s+3\s+0\s+3\s+3\s+0/);

      r = await ipp(env, 'pantasks', 'client', 'task', 'greet', '--nmax', '5', '--npending', '1', '--trange', '00:00 23:59:59', '--json');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([JSON.parse(r.stdout).nmax, JSON.parse(r.stdout).npending, JSON.parse(r.stdout).trange], [5, 1, ['00:00 23:59:59']]);
      r = await ipp(env, 'pantasks', 'client', 'task', 'greet', '--active', 'off');
      assert.match(r.stdout, /task greet: active false/);
      r = await ipp(env, 'pantasks', 'client', 'labels', '--add', 'deep', '--remove', 'night');
      assert.equal(r.stdout, 'labels: deep\n');

      r = await ipp(env, 'pantasks', 'client', 'host', 'add', 'p1', '--kind', 'pclient', '--slots', '2');
      assert.equal(r.code, 0, r.stderr);
      await until('p1 up', async () => /p1\s+pclient\s+idle\s+2/.test((await ipp(env, 'pantasks', 'client', 'status', 'hosts')).stdout));
      r = await ipp(env, 'pantasks', 'client', 'host', 'off', 'p1');
      assert.match((await ipp(env, 'pantasks', 'client', 'status', 'hosts')).stdout, /p1\s+pclient\s+off/);
      r = await ipp(env, 'pantasks', 'client', 'host', 'rm', 'p1');
      assert.equal(r.code, 0, r.stderr);
      r = await ipp(env, 'pantasks', 'client', 'stop');
      assert.equal(r.stdout, 'stopped\n');

      // Mistakes: usage errors exit 2, refusals exit 1 with their code.
      r = await ipp(env, 'pantasks', 'client', 'task', 'greet');
      assert.equal(r.code, 2);
      r = await ipp(env, 'pantasks', 'client', 'host', 'add', 'x', '--kind', 'bogus');
      assert.equal(r.code, 2);
      r = await ipp(env, 'pantasks', 'client', 'task', 'nope', '--active', 'on');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error \[pantasks_unknown_task\]: pantasks server: no task named nope/);
      r = await ipp(env, 'pantasks', 'client', 'load', join(dir, 'missing.ts'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /pantasks_task_module_failed.*does not exist/);
      r = await ipp(env, 'pantasks', 'client', 'host', 'add', 'local', '--kind', 'pclient');
      assert.match(r.stderr, /pantasks_bad_host/);
      r = await ipp({}, 'pantasks', 'client', 'status');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /IPP_PANTASKS_URL/);

      r = await ipp(env, 'pantasks', 'client', 'shutdown');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await serving.done, 0, err.text());
      assert.match(out.text(), /pantasks server stopped/);
      r = await ipp(env, 'pantasks', 'client', 'status');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /service_unreachable/);
    } finally {
      await ipp(env, 'pantasks', 'client', 'shutdown');
      await serving.done;
    }
  }));

  it('pclient and server refuse stray arguments; help lists the commands', async () => {
    let r = await ipp({}, 'pclient', 'extra');
    assert.equal(r.code, 2);
    r = await ipp({}, 'pantasks', 'client', '--help');
    assert.match(r.stdout, /host\s+pcontrol hosts/);
    r = await ipp({}, 'pantasks', 'server', '--host', '0.0.0.0', '--db', 'sqlite::memory:');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /give it a token/);
  });
});
