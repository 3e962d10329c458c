import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IppError } from './errors.ts';
import { HttpError, startHttpService, type HttpRoute } from './http-server.ts';
import { RemoteError, createHttpClient, urlPath } from './http-client.ts';

const routes: HttpRoute[] = [
  { method: 'GET', path: '/items/:name', access: 'read', handler: async ({ params }) => ({ json: { name: params.name } }) },
  { method: 'POST', path: '/items', access: 'write', handler: async ({ json }) => ({ status: 201, json: await json() }) },
  { method: 'GET', path: '/boom', access: 'open', handler: async () => { throw new Error('bug'); } },
  { method: 'GET', path: '/taken', access: 'open', handler: async () => { throw new IppError('item_exists', 'item x exists'); } },
  { method: 'GET', path: '/teapot', access: 'open', handler: async () => { throw new HttpError(418, 'teapot', 'short and stout'); } },
  { method: 'GET', path: '/index', access: 'open', handler: async () => ({ text: 'a\nb\n' }) },
];

async function withService<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const service = await startHttpService({
    name: 'test', routes, tokens: { read: 'r', write: 'w' },
    statusOf: (code) => (code === 'item_exists' ? 409 : undefined),
  });
  try {
    return await fn(service.url);
  } finally {
    await service.close();
  }
}

describe('HTTP service kit', () => {
  it('routes with decoded parameters; an encoded slash stays in its segment', () => withService(async (url) => {
    const client = createHttpClient({ baseUrl: url, name: 'test', token: 'r' });
    assert.deepEqual(await client.json(urlPath('items', 'a b/c')), { name: 'a b/c' });
    assert.equal(await (await client.request('/index')).text(), 'a\nb\n');
  }));

  it('needs the right token: 401 without, 403 when wrong, write token also reads', () => withService(async (url) => {
    const anonymous = createHttpClient({ baseUrl: url, name: 'test' });
    await assert.rejects(anonymous.json('/items/x'), (e: unknown) => e instanceof RemoteError && e.status === 401 && e.code === 'unauthorized');
    const wrong = createHttpClient({ baseUrl: url, name: 'test', token: 'nope' });
    await assert.rejects(wrong.json('/items/x'), (e: unknown) => e instanceof RemoteError && e.status === 403);
    const reader = createHttpClient({ baseUrl: url, name: 'test', token: 'r' });
    await assert.rejects(reader.json('/items', { json: { a: 1 } }), (e: unknown) => e instanceof RemoteError && e.status === 403);
    const writer = createHttpClient({ baseUrl: url, name: 'test', token: 'w' });
    assert.deepEqual(await writer.json('/items', { json: { a: 1 } }), { a: 1 });
    assert.deepEqual(await writer.json('/items/y'), { name: 'y' });
  }));

  it('maps errors to statuses in one place and hides bugs behind 500', () => withService(async (url) => {
    const client = createHttpClient({ baseUrl: url, name: 'test', token: 'w' });
    await assert.rejects(client.json('/taken'), (e: unknown) => e instanceof RemoteError && e.status === 409 && e.code === 'item_exists' && e.message.includes('item x exists'));
    await assert.rejects(client.json('/teapot'), (e: unknown) => e instanceof RemoteError && e.status === 418);
    await assert.rejects(client.json('/boom'), (e: unknown) => e instanceof RemoteError && e.status === 500 && !e.message.includes('bug'));
    await assert.rejects(client.json('/nothing'), (e: unknown) => e instanceof RemoteError && e.status === 404);
    await assert.rejects(client.json('/items/x', { method: 'DELETE' }), (e: unknown) => e instanceof RemoteError && e.status === 405);
    await assert.rejects(client.json('/items', { body: new TextEncoder().encode('{bad'), method: 'POST' }),
      (e: unknown) => e instanceof RemoteError && e.status === 400 && e.code === 'bad_json');
    await assert.rejects(client.json('/items/%E0%A4%A'), (e: unknown) => e instanceof RemoteError && e.status === 400 && e.code === 'bad_path');
  }));

  it('says which service cannot be reached', async () => {
    const service = await startHttpService({ name: 'gone', routes });
    const { url } = service;
    await service.close();
    const client = createHttpClient({ baseUrl: url, name: 'datastore' });
    await assert.rejects(client.json('/index'), (e: unknown) => e instanceof IppError && e.code === 'service_unreachable' && e.message.includes(url));
    assert.throws(() => createHttpClient({ baseUrl: 'ftp://x', name: 'datastore' }), (e: unknown) => e instanceof IppError && e.code === 'url_invalid');
  });
});
