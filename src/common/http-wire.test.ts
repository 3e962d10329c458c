// The kit client's JSON calls over raw sockets (http-wire.ts) against real servers on loopback:
// the service kit's server for typed errors and many calls at once, node:http for chunked and
// Connection: close answers, and hand-written servers for what a kit server never does (a
// body ended by closing, a kept-alive socket closed as a request goes out, no answer, garbage).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createHttpClient, HttpError, isIppError, RemoteError, startHttpService, type HttpRoute } from './index.ts';

const routes: HttpRoute[] = [
  { method: 'GET', path: '/echo', access: 'read', handler: async ({ url }) => ({ json: { q: url.searchParams.get('q') } }) },
  { method: 'POST', path: '/echo', access: 'write', handler: async ({ json }) => ({ json: await json() }) },
  { method: 'GET', path: '/teapot', access: 'open', handler: async () => { throw new HttpError(418, 'neb_teapot', 'short and stout'); } },
];

const code = (c: string) => (e: unknown) => isIppError(e) && e.code === c;

async function listen(server: Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A raw server: `answer` gets each connection's n-th request head (0-based) and the socket. */
async function rawServer(answer: (socket: Socket, n: number, head: string) => void): Promise<{ url: string; server: Server; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let n = 0;
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const head = text.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        text = text.slice(end + 4 + length);
        answer(socket, n++, head);
      }
    });
    socket.on('error', () => undefined);
  });
  server.on('close', () => { for (const s of sockets) s.destroy(); });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, server, connections: () => connections };
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('HTTP client: JSON calls on raw sockets', () => {
  it('answers many calls at once on few sockets, each with its own answer; UTF-8 bodies; typed errors', async () => {
    const service = await startHttpService({ name: 'test', routes, tokens: { write: 'w' } });
    const t = createHttpClient({ baseUrl: service.url, name: 'test server', token: 'w', maxSockets: 4 });
    try {
      const answers = await Promise.all(Array.from({ length: 300 }, (_, i) =>
        i % 3 === 0
          ? t.json<{ key: string }>('/echo', { method: 'POST', json: { key: `ключ/${i}/星` } }).then((a) => a.key)
          : t.json<{ q: string }>(`/echo?q=${encodeURIComponent(`é${i}`)}`).then((a) => a.q)));
      answers.forEach((a, i) => assert.equal(a, i % 3 === 0 ? `ключ/${i}/星` : `é${i}`));
      await assert.rejects(t.json('/teapot'),
        (e: unknown) => e instanceof RemoteError && e.status === 418 && e.code === 'neb_teapot' && e.message === 'test server: short and stout');
      await assert.rejects(t.json('/nothing'), (e: unknown) => e instanceof RemoteError && e.status === 404 && e.code === 'not_found');
      const anonymous = createHttpClient({ baseUrl: service.url, name: 'test server' });
      await assert.rejects(anonymous.json('/echo', { method: 'POST', json: {} }), code('unauthorized'));
      anonymous.close();
      await assert.rejects(t.json('/echo?q=a b'), code('url_invalid'));
    } finally {
      t.close();
      await service.close();
    }
  });

  it('reads chunked answers and Connection: close answers (node:http), and goes on after them', async () => {
    const server = createHttpServer((req, res) => {
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"parts":[');
        setTimeout(() => res.end(`${Array.from({ length: 5000 }, (_, i) => i).join(',')}]}`), 5);
      } else if (req.url === '/close') {
        res.writeHead(200, { 'content-type': 'application/json', connection: 'close', 'content-length': 11 });
        res.end('{"bye":"x"}');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
        res.end('no such thing');
      }
    });
    const port = await listen(server);
    const t = createHttpClient({ baseUrl: `http://127.0.0.1:${port}`, name: 'test server', maxSockets: 2 });
    try {
      for (let round = 0; round < 3; round++) {
        const chunked = await t.json<{ parts: number[] }>('/chunked');
        assert.equal(chunked.parts.length, 5000);
        assert.equal(chunked.parts[4999], 4999);
        assert.deepEqual(await t.json('/close'), { bye: 'x' });
        await assert.rejects(t.json('/else'),
          (e: unknown) => e instanceof RemoteError && e.status === 404 && e.code === 'http_404' && e.message.includes('no such thing'));
      }
    } finally {
      t.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('reads a body ended by closing the connection; garbage is bad_response', async () => {
    const raw = await rawServer((socket, _n, head) => {
      if (head.startsWith('GET /eof')) socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"until":"eof"}');
      else socket.end('SSH-2.0-OpenSSH\r\n\r\n');
    });
    const t = createHttpClient({ baseUrl: raw.url, name: 'test server' });
    try {
      assert.deepEqual(await t.json('/eof'), { until: 'eof' });
      assert.deepEqual(await t.json('/eof'), { until: 'eof' });
      await assert.rejects(t.json('/ssh'), code('bad_response'));
    } finally {
      t.close();
      raw.server.close();
    }
  });

  it('sends again on a fresh socket when a kept-alive one was closed as the request went out, never when a fresh one was', async () => {
    // Each connection answers its first request and drops the socket at the second.
    const raw = await rawServer((socket, n) => {
      if (n === 0) socket.write(ok('{"n":1}'));
      else socket.destroy();
    });
    const t = createHttpClient({ baseUrl: raw.url, name: 'test server', maxSockets: 1 });
    try {
      for (let i = 0; i < 4; i++) assert.deepEqual(await t.json('/x', { method: 'POST', json: { i } }), { n: 1 });
      assert.equal(raw.connections(), 4);
    } finally {
      t.close();
      raw.server.close();
    }
    const rude = await rawServer((socket) => socket.destroy());
    const r = createHttpClient({ baseUrl: rude.url, name: 'test server' });
    try {
      await assert.rejects(r.json('/x', { method: 'POST', json: {} }), code('service_unreachable'));
      assert.equal(rude.connections(), 1);
    } finally {
      r.close();
      rude.server.close();
    }
  });

  it('times out a call the server never answers; says which server cannot be reached', async () => {
    const silent = await rawServer(() => undefined);
    const t = createHttpClient({ baseUrl: silent.url, name: 'test server', timeoutMs: 300 });
    try {
      await assert.rejects(t.json('/x'), (e: unknown) => code('service_unreachable')(e) && (e as Error).message.includes('300 ms'));
    } finally {
      t.close();
      silent.server.close();
    }
    const gone = createHttpClient({ baseUrl: silent.url, name: 'test server' });
    await assert.rejects(gone.json('/x'),
      (e: unknown) => code('service_unreachable')(e) && (e as Error).message.includes('ECONNREFUSED') && (e as Error).message.includes('test server'));
    gone.close();
  });

  it('goes on after the server restarts on the same port', async () => {
    let service = await startHttpService({ name: 'test', routes });
    const t = createHttpClient({ baseUrl: service.url, name: 'test server', maxSockets: 4 });
    try {
      await Promise.all(Array.from({ length: 8 }, () => t.json('/echo?q=1')));
      await service.close();
      await assert.rejects(t.json('/echo?q=2'), code('service_unreachable'));
      service = await startHttpService({ name: 'test', routes, port: service.port });
      const again = await Promise.all(Array.from({ length: 8 }, (_, i) => t.json<{ q: string }>(`/echo?q=${i}`)));
      assert.deepEqual(again.map((a) => a.q), ['0', '1', '2', '3', '4', '5', '6', '7']);
    } finally {
      t.close();
      await service.close();
    }
  });
  it('uploads a streamed body with its Content-Length; a short body, a failing one and an early refusal each fail clearly, and calls go on', async () => {
    const server = createHttpServer((req, res) => {
      if (req.url === '/refuse') {
        // Answers at once, before the body, and closes: the upload must end with this answer.
        res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: { code: 'too_big', message: 'no room' } }));
        return;
      }
      let bytes = 0;
      let sum = 0;
      req.on('data', (chunk: Buffer) => {
        // every 4096th byte of the body, by its offset in the body (chunks arrive cut anywhere)
        for (let i = (4096 - (bytes % 4096)) % 4096; i < chunk.length; i += 4096) sum = (sum + chunk[i]!) % 65521;
        bytes += chunk.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, sum, length: req.headers['content-length'], type: req.headers['content-type'] }));
      });
      req.on('error', () => undefined);
    });
    const port = await listen(server);
    const t = createHttpClient({ baseUrl: `http://127.0.0.1:${port}`, name: 'test server' });
    const chunk = (i: number) => Buffer.alloc(1 << 20, i & 255);
    async function* chunks(n: number, fail?: Error): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < n; i++) yield chunk(i);
      if (fail) throw fail;
    }
    let expectSum = 0;
    for (let i = 0; i < 24; i++) for (let k = 0; k < 1 << 20; k += 4096) expectSum = (expectSum + (i & 255)) % 65521;
    try {
      const answer = await (await t.request('/up', { method: 'PUT', headers: { 'content-type': 'application/x-test' }, body: chunks(24), bodyLength: 24 << 20 })).json();
      assert.deepEqual(answer, { bytes: 24 << 20, sum: expectSum, length: String(24 << 20), type: 'application/x-test' });
      await assert.rejects(t.request('/up', { method: 'PUT', body: chunks(2), bodyLength: 3 << 20 }),
        (e: unknown) => code('body_length')(e) && /shorter than the 3145728 bytes declared/.test((e as Error).message));
      await assert.rejects(t.request('/up', { method: 'PUT', body: chunks(3), bodyLength: 2 << 20 }), code('body_length'));
      const failure = Object.assign(new Error('the file changed'), { code: 'file_changed' });
      await assert.rejects(t.request('/up', { method: 'PUT', body: chunks(2, failure), bodyLength: 3 << 20 }), (e: unknown) => e === failure);
      await assert.rejects(t.request('/refuse', { method: 'PUT', body: chunks(64), bodyLength: 64 << 20 }),
        (e: unknown) => e instanceof RemoteError && e.status === 413 && e.code === 'too_big');
      const small = await (await t.request('/up', { method: 'POST', body: Buffer.from('hello'), bodyLength: 5 })).json() as { bytes: number };
      assert.equal(small.bytes, 5);
    } finally {
      t.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
