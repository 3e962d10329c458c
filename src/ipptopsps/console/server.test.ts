import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openDatabase, testEngines, type Database, type TestEngine } from '../../db/index.ts';
import { heartbeatClient, markClientExited, registerClient } from '../clients.ts';
import { CONFIG_FIELDS, configField, getConfig } from '../configs.ts';
import { collectMetrics, recordMetrics } from '../lifecycle/index.ts';
import { IPPTOPSPS_MIGRATIONS } from '../migrations.ts';
import {
  lifecyclePlotSource, startConsoleServer, type BatchView, type ClientView, type ConfigJson, type ConsoleErrorBody, type ConsoleOverview,
  type ConsoleServer, type ConsoleServerOptions, type FailedItemView, type StageRow,
} from './index.ts';
import { seedCampaign, type SeededCampaign } from './test-support.ts';

interface Fixture {
  readonly server: ConsoleServer;
  readonly db: Database;
  readonly seeded: SeededCampaign;
  call<T = object>(method: string, path: string, body?: unknown, token?: string): Promise<Reply<T>>;
}

/** An answer: the status, and the JSON body as the API promises it (or its error). */
interface Reply<T> {
  readonly status: number;
  readonly type: string;
  readonly bytes: Buffer;
  readonly json: T & Partial<ConsoleErrorBody>;
}

/** Status, code and field of a refusal. */
const refusal = (r: Reply<object>): [number, string | undefined, string | undefined] => [r.status, r.json.error?.code, r.json.error?.field];

type ClientReply = { client: ClientView };
type ConfigReply = { config: ConfigJson };

const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

async function withConsole(engine: TestEngine, options: Partial<ConsoleServerOptions>, fn: (f: Fixture) => Promise<void>): Promise<void> {
  await engine.withUrl(async (url) => {
    const db = await openDatabase(url, { migrations: [IPPTOPSPS_MIGRATIONS] });
    try {
      const seeded = await seedCampaign(db);
      const server = await startConsoleServer({ db, ...options });
      try {
        const call = async <T = object>(method: string, path: string, body?: unknown, token?: string): Promise<Reply<T>> => {
          const headers: Record<string, string> = {};
          if (token !== undefined) headers.authorization = `Bearer ${token}`;
          if (body !== undefined) headers['content-type'] = 'application/json';
          const res = await fetch(`${server.url}${path}`, {
            method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
          });
          const bytes = Buffer.from(await res.arrayBuffer());
          const type = res.headers.get('content-type') ?? '';
          return { status: res.status, type, bytes, json: (type.startsWith('application/json') ? JSON.parse(bytes.toString('utf8')) : {}) as Reply<T>['json'] };
        };
        await fn({ server, db, seeded, call });
      } finally {
        await server.close();
      }
    } finally {
      await db.close();
    }
  });
}

for (const engine of testEngines()) {
  describe(`console API on ${engine.name}`, { skip: engine.skip }, () => {
    it('serves the page, its script and style', () => withConsole(engine, {}, async ({ call }) => {
      const page = await call('GET', '/');
      assert.equal(page.status, 200);
      assert.match(page.type, /^text\/html/);
      assert.match(page.bytes.toString(), /<title>ippToPsps console<\/title>/);
      const script = await call('GET', '/console.js');
      assert.match(script.type, /^text\/javascript/);
      assert.match(script.bytes.toString(), /api\/overview/);
      assert.match((await call('GET', '/console.css')).type, /^text\/css/);
      assert.deepEqual(refusal(await call('GET', '/nope')), [404, 'not_found', undefined]);
    }));

    it('shows clients, the stage table, failed batches and items with reasons, latest batches and the newest metrics', () => withConsole(engine, {}, async ({ call, seeded }) => {
      const { status, json } = await call<ConsoleOverview>('GET', '/api/overview');
      assert.equal(status, 200);
      assert.equal(json.writes, 'open');
      assert.deepEqual(json.configs.map((c) => [c.name, c.active, c.values.datastore_product]), [['alpha', true, 'PSPS_test'], ['beta', false, 'PSPS_beta']]);
      assert.equal(json.configs[0].values.batch_types, 'P2,ST');

      const loader = json.clients.find((c) => c.clientId === seeded.loaderId)!;
      assert.deepEqual([loader.program, loader.config, loader.host, loader.pid, loader.state, loader.request], ['loader', 'alpha', 'ipp005', 4242, 'running', null]);
      assert.ok(loader.heartbeatAgeSeconds !== null && loader.heartbeatAgeSeconds >= 6 && loader.heartbeatAgeSeconds < 600, `heartbeat age ${loader.heartbeatAgeSeconds}`);

      const p2 = json.stages.find((r) => r.config === 'alpha' && r.batchType === 'P2')!;
      assert.equal(p2.batches, 3);
      assert.deepEqual(p2.queue, { total: 4, pending: 1, claimed: 0, done: 2, failed: 1 });
      assert.deepEqual(p2.stages.processed, { pending: 0, succeeded: 2, failed: 1 });
      assert.deepEqual(p2.stages.loaded_to_odm, { pending: 0, succeeded: 1, failed: 1 });
      assert.deepEqual(p2.stages.merged, { pending: 0, succeeded: 1, failed: 0 });
      assert.deepEqual(p2.stages.deleted_local, { pending: 0, succeeded: 0, failed: 0 });
      const st = json.stages.find((r) => r.batchType === 'ST')!;
      assert.deepEqual([st.batches, st.queue.total, st.stages.loaded_to_odm.pending], [1, 1, 1]);
      assert.deepEqual(json.stages.map((r) => r.batchType), ['P2', 'ST']);

      assert.deepEqual(json.failedBatches.map((b) => [b.name, b.failedStages, b.reason]),
        [['B00000003', ['processed'], seeded.processReason], ['B00000002', ['loaded_to_odm'], seeded.odmReason]]);
      assert.deepEqual(json.failedItems.map((i) => [i.sourceId, i.attempts, i.reason]), [['103', 3, 'smf has no chip tables']]);
      assert.deepEqual(json.latestBatches.map((b) => b.name), ['B00000004', 'B00000003', 'B00000002', 'B00000001']);
      assert.equal(json.latestBatches[3].stages.merged, 'succeeded');
      assert.equal(json.latestBatches[3].stages.deleted_local, null);
      assert.equal(json.latestBatches[3].nRows, 1000);

      assert.equal(json.metrics.length, 1);
      assert.equal(json.metrics[0].at, '2026-03-01T11:30:00.000Z');
      assert.deepEqual(json.metrics[0].values, { batches_last_24h: { P2: 20, ST: 2 } });
      assert.deepEqual(json.plots, []);

      // Narrowed to a config: beta has no batches; only the 'all' client concerns it.
      const beta = (await call<ConsoleOverview>('GET', '/api/overview?config=beta')).json;
      assert.deepEqual(beta.stages, []);
      assert.deepEqual(beta.failedBatches, []);
      assert.deepEqual(beta.metrics, []);
      assert.deepEqual(beta.clients.map((c) => c.program), ['pollodm']);

      // The single views agree with the overview.
      assert.deepEqual((await call<{ batches: BatchView[]; items: FailedItemView[] }>('GET', '/api/batches?view=failed&config=alpha&limit=1')).json.batches.map((b) => b.name), ['B00000003']);
      assert.deepEqual((await call<{ stages: StageRow[] }>('GET', '/api/stages?config=alpha')).json.stages, json.stages);
      assert.deepEqual((await call<ConsoleOverview>('GET', '/api/metrics')).json.metrics, json.metrics);
      assert.deepEqual(refusal(await call('GET', '/api/batches?limit=0')), [400, 'bad_limit', undefined]);
      assert.equal((await call('GET', '/api/batches?view=sideways')).status, 400);
    }));

    it('pauses, resumes and stops a client through client.request, which the program obeys at its heartbeat', () => withConsole(engine, {}, async ({ call, db, seeded }) => {
      const id = seeded.loaderId;
      const paused = await call<ClientReply>('POST', `/api/clients/${id}/pause`);
      assert.equal(paused.status, 200);
      assert.equal(paused.json.client.request, 'pause');
      assert.equal((await heartbeatClient(db, id, { leaseMs: 60_000 })).state, 'paused');
      assert.equal((await call<{ clients: ClientView[] }>('GET', '/api/clients')).json.clients.find((c) => c.clientId === id)?.state, 'paused');
      await call('POST', `/api/clients/${id}/resume`);
      assert.equal((await heartbeatClient(db, id, { leaseMs: 60_000 })).state, 'running');
      const stopped = await call<ClientReply>('POST', `/api/clients/${id}/stop`);
      assert.equal(stopped.json.client.request, 'stop');
      assert.equal((await heartbeatClient(db, id, { leaseMs: 60_000 })).state, 'stopped');

      assert.deepEqual(refusal(await call('POST', '/api/clients/999/pause')), [404, 'client_unknown', undefined]);
      assert.equal((await call('POST', `/api/clients/${id}/explode`)).status, 404);
      assert.deepEqual(refusal(await call('POST', '/api/clients/x1/stop')), [400, 'bad_client_id', undefined]);
      // Ended clients are listed, the most recent 20 of them.
      for (let i = 0; i < 25; i++) {
        const c = await registerClient(db, { program: 'queue', config: 'alpha', host: 'ipp001', pid: 100 + i });
        await markClientExited(db, c.client_id);
      }
      await markClientExited(db, seeded.pollerId);
      const listed = (await call<{ clients: ClientView[] }>('GET', '/api/clients')).json.clients;
      assert.equal(listed.length, 21);
      assert.deepEqual([listed[0].program, listed[0].state, listed.at(-1)!.clientId], ['queue', 'exited', id]);
      assert.ok(!listed.some((c) => c.clientId === seeded.pollerId));
      assert.deepEqual(refusal(await call('POST', `/api/clients/${seeded.pollerId}/stop`)), [409, 'client_ended', undefined]);
      assert.equal((await call('GET', `/api/clients/${id}/pause`)).status, 405);
    }));

    it('edits a config with the room\'s checks, naming the bad field; creates, activates and deactivates configs', () => withConsole(engine, {}, async ({ call, db }) => {
      const bad = await call('PUT', '/api/configs/alpha', { values: { dvo_label: 'LAP.new', box_size: '-1' } });
      assert.deepEqual(refusal(bad), [400, 'config_value_invalid', 'box_size']);
      assert.match(bad.json.error!.message, /box_size \(double\) "-1" is/);
      assert.equal((await getConfig(db, 'alpha')).dvo_label, 'LAP.ThreePi');
      assert.deepEqual(refusal(await call('PUT', '/api/configs/alpha', { values: { min_ra: '200', max_ra: '100' } })), [400, 'config_value_invalid', 'min_ra']);
      assert.deepEqual(refusal(await call('PUT', '/api/configs/alpha', { values: { colour: 'blue' } })), [400, 'config_field_unknown', 'colour']);
      assert.equal((await call('PUT', '/api/configs/alpha', { values: { box_size: null } })).status, 400);
      assert.deepEqual(refusal(await call('PUT', '/api/configs/alpha', '{"values": ')), [400, 'bad_json', undefined]);
      assert.equal((await call('PUT', '/api/configs/alpha', [1])).status, 400);
      assert.equal((await call('PUT', '/api/configs/nosuch', { values: {} })).status, 404);

      const good = await call<ConfigReply>('PUT', '/api/configs/alpha', { values: { box_size: '4', datastore_publish: false } });
      assert.equal(good.status, 200);
      assert.equal(good.json.config.values.box_size, 4);
      const stored = await getConfig(db, 'alpha');
      assert.deepEqual([stored.box_size, stored.datastore_publish, stored.dvo_label], [4, false, 'LAP.ThreePi']);

      const missing = await call('POST', '/api/configs', { name: 'gamma', values: { dvo_label: 'x', dvo_location: '/d', epoch: '2026-01-01' } });
      assert.deepEqual(refusal(missing), [400, 'config_field_missing', 'datastore_product']);
      assert.deepEqual(refusal(await call('POST', '/api/configs', { values: {} })), [400, 'config_name_invalid', 'name']);
      assert.deepEqual(refusal(await call('POST', '/api/configs', { name: 'all', values: {} })), [400, 'config_name_invalid', undefined]);
      const made = await call('POST', '/api/configs', { name: 'gamma', values: { datastore_product: 'P', dvo_label: 'x', dvo_location: '/d', epoch: '2026-01-01', active: '0' } });
      assert.equal(made.status, 201);
      assert.equal((await getConfig(db, 'gamma')).box_size, 2);
      assert.deepEqual(refusal(await call('POST', '/api/configs', { name: 'gamma', values: {} })), [409, 'config_exists', undefined]);

      const on = await call<ConfigReply>('POST', '/api/configs/gamma/activate');
      assert.equal(on.json.config.active, true);
      assert.equal((await getConfig(db, 'gamma')).active, true);
      await call('POST', '/api/configs/alpha/deactivate');
      assert.equal((await getConfig(db, 'alpha')).active, false);
      assert.equal((await call('POST', '/api/configs/nosuch/activate')).status, 404);
      assert.equal((await call<ConfigReply>('GET', '/api/configs/gamma')).json.config.values.dvo_location, '/d');
      const fields = (await call<{ fields: { name: string; type: string; default: string | null; help: string }[] }>('GET', '/api/fields')).json.fields;
      assert.deepEqual(fields.map((f) => f.name), CONFIG_FIELDS.map((f) => f.name));
      assert.deepEqual(fields.find((f) => f.name === 'box_size'), { name: 'box_size', type: 'double', default: '2', help: configField('box_size').help });
      assert.equal(fields.find((f) => f.name === 'epoch')?.default, null);
    }));

    it('needs the token for writes when one is set; reads stay open', () => withConsole(engine, { token: 'sekrit' }, async ({ call, db, server }) => {
      assert.equal(server.writes, 'token');
      assert.equal((await call<ConsoleOverview>('GET', '/api/overview')).json.writes, 'token');
      assert.deepEqual(refusal(await call('POST', '/api/configs/beta/activate')), [401, 'unauthorized', undefined]);
      assert.equal((await call('PUT', '/api/configs/beta', { values: { box_size: '3' } }, 'wrong')).status, 403);
      assert.equal((await getConfig(db, 'beta')).active, false);
      assert.equal((await call('POST', '/api/configs/beta/activate', undefined, 'sekrit')).status, 200);
      assert.equal((await getConfig(db, 'beta')).active, true);
    }));

    it('is read only off loopback without a token', () => withConsole(engine, { host: '0.0.0.0' }, async ({ call, db, server }) => {
      assert.equal(server.writes, 'refused');
      assert.equal((await call<ConsoleOverview>('GET', '/api/overview')).json.writes, 'refused');
      const refused = await call('POST', '/api/configs/beta/activate');
      assert.deepEqual(refusal(refused), [403, 'writes_disabled', undefined]);
      assert.match(refused.json.error!.message, /--token/);
      assert.equal((await getConfig(db, 'beta')).active, false);
    }));

    it('lists and serves the lifecycle plots (metrics charts, pending density maps), drawn again when the data change', () => withConsole(engine, { plots: lifecyclePlotSource({ width: 400, height: 200 }) }, async ({ call, db }) => {
      const alpha = await getConfig(db, 'alpha');
      await recordMetrics(db, await collectMetrics(db, alpha, new Date('2026-03-01T12:00:00Z')));
      const listed = (await call<ConsoleOverview>('GET', '/api/overview?config=alpha')).json.plots;
      assert.deepEqual(listed.map((p) => p.name), [
        'alpha_batches.png', 'alpha_detections.png', 'alpha_P2_stages.png', 'alpha_ST_stages.png', 'alpha_P2_pending.png', 'alpha_ST_pending.png',
      ]);
      const titles: Record<string, string> = {
        alpha_batches: 'Published batches', alpha_detections: 'Published detections', alpha_P2_stages: 'P2 batches by stage',
        alpha_P2_pending: 'alpha P2: pending items',
      };
      for (const p of listed) {
        assert.match(p.url, /^api\/plots\/alpha\/alpha_\w+\.png\?v=/);
        const got = await call('GET', `/${p.url}`);
        assert.equal(got.status, 200, p.url);
        assert.equal(got.type, 'image/png');
        assert.ok(got.bytes.subarray(0, 8).equals(PNG_SIGNATURE), `${p.name} is a PNG`);
        assert.deepEqual([got.bytes.readUInt32BE(16), got.bytes.readUInt32BE(20)], [400, 200], `${p.name} size`);
        const title = titles[p.name.replace('.png', '')];
        if (title) assert.ok(got.bytes.includes(Buffer.from(title)), `${p.name} is titled ${title}`);
      }
      // A new snapshot changes the metrics charts' version; the density maps follow the queue.
      await recordMetrics(db, await collectMetrics(db, alpha, new Date('2026-03-01T13:00:00Z')));
      const again = (await call<ConsoleOverview>('GET', '/api/overview?config=alpha')).json.plots;
      assert.notEqual(again[0].url, listed[0].url);
      assert.equal(again[4].url, listed[4].url);
      await db.run(`UPDATE queue_item SET state = 'pending', updated_at = '2026-03-01T13:00:00Z' WHERE source_id = 101`);
      assert.notEqual((await call<ConsoleOverview>('GET', '/api/overview?config=alpha')).json.plots[4].url, listed[4].url);
      assert.equal((await call('GET', `/${again[0].url}`)).status, 200);
      assert.deepEqual(refusal(await call('GET', '/api/plots/alpha/alpha_OB_stages.png')), [404, 'plot_not_found', undefined]);
      assert.deepEqual(refusal(await call('GET', '/api/plots/nosuch/nosuch_batches.png')), [404, 'plot_not_found', undefined]);
    }));
  });
}
