import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServerChild } from './child-server.ts';

const node = process.execPath;
// A real HTTP server in a child process that prints where it listens, as `ipp ... serve` does.
const SERVER = `
const http = require('node:http');
const s = http.createServer((q, r) => r.end('hello')).listen(0, '127.0.0.1', () => {
  console.error('a log line on stderr');
  console.log('demo server listening at http://127.0.0.1:' + s.address().port + '.');
});
process.on('SIGTERM', () => s.close(() => process.exit(7)));
`;

test('startServerChild resolves with the printed URL, which serves; stop ends it', async () => {
  const server = await startServerChild([node, '-e', SERVER]);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the trailing full stop is not part of the URL');
  assert.match(server.banner, /^demo server listening at /);
  assert.equal(await (await fetch(server.url)).text(), 'hello');
  await server.stop();
  assert.equal(await server.exited, 7, 'SIGTERM reached the server, which closed itself');
  assert.match(server.stderr(), /a log line on stderr/);
});

test('a server that ends before it serves is reported with its exit code and stderr', async () => {
  await assert.rejects(
    startServerChild([node, '-e', 'console.error("port 1 is taken"); process.exit(3)'], { what: 'ipp datastore serve' }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'server_start_failed');
      assert.match(e.message, /^ipp datastore serve ended \(exit 3\) before it served: port 1 is taken/);
      return true;
    });
});

test('a server that prints no URL in time is killed and reported', async () => {
  let pid = 0;
  await assert.rejects(
    startServerChild([node, '-e', 'console.log("starting"); console.error(process.pid); setInterval(() => {}, 1000)'], {
      timeoutMs: 1500, onStderr: (t) => { pid = Number(t.trim()) || pid; },
    }),
    /printed no URL within 1\.5 s; it was killed/);
  assert.ok(pid > 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the silent server is gone');
});

test('a program that cannot be started is reported', async () => {
  await assert.rejects(startServerChild(['/nonexistent/ipp-server']), { code: 'server_start_failed', message: /cannot start \/nonexistent\/ipp-server/ });
});

test('a custom pattern picks the URL out of a READY line', async () => {
  const server = await startServerChild([node, '-e', 'console.log("READY http://127.0.0.1:1/x"); setInterval(() => {}, 1000)'], { pattern: /READY (\S+)/ });
  assert.equal(server.url, 'http://127.0.0.1:1/x');
  await server.stop('SIGKILL');
  assert.equal(await server.exited, 'SIGKILL');
});
