import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger, withTempDir } from '../common/index.ts';
import { testEngines, type Database } from '../db/index.ts';
import {
  getConfig, heartbeatClient, listClients, markLostClients, openIppToPsps, readSettingsFile, registerClient, requestClient,
  requestClients, runProgram, saveConfig, setConfigActive, type IppToPspsSettings, type LoadingConfig,
} from './index.ts';

const quiet = createLogger({ level: 'info', sinks: [] });
const BASE = { datastore_product: 'PSPS_test', dvo_label: 'L1', dvo_location: '/tmp/dvo', epoch: '2026-01-01' };

function settingsFor(dir: string, url: string): IppToPspsSettings {
  return { trackingDb: url, gpc1Db: 'sqlite::memory:', dataDir: join(dir, 'data') };
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const engine of testEngines()) {
  describe(`ipptopsps configs, clients, program runner (${engine.name})`, { skip: engine.skip }, () => {
    const withDb = <T>(fn: (db: Database, dir: string, url: string) => Promise<T>): Promise<T> =>
      withTempDir((dir) => engine.withUrl(async (url) => {
        const db = await openIppToPsps(url);
        try { return await fn(db, dir, url); } finally { await db.close(); }
      }), 'ipp-q-');

    test('configs: defaults, checks, updates, activation', () => withDb(async (db) => {
      const c = await saveConfig(db, 'c1', BASE);
      assert.equal(c.datastore_type, 'IPP_PSPS');
      assert.equal(c.datastore_publish, false);
      assert.deepEqual(c.batch_types, ['P2', 'ST', 'OB']);
      assert.deepEqual(c.delete_local_on, ['merged']);
      assert.equal(c.max_attempts, 3);
      assert.equal(c.active, true);
      await assert.rejects(saveConfig(db, 'c2', { datastore_product: 'P', dvo_label: 'L', dvo_location: '/d' }), { code: 'config_field_missing' });
      await assert.rejects(saveConfig(db, 'c2', { datastore_product: 'x' }), /dvo_label/);
      await assert.rejects(saveConfig(db, 'c1', { min_ra: '400' }), (e: Error & { code?: string }) => e.code === 'config_value_invalid' && /min_ra/.test(e.message));
      await assert.rejects(saveConfig(db, 'c1', { min_ra: '20', max_ra: '10' }), /must be below/);
      await assert.rejects(saveConfig(db, 'c1', { batch_types: 'P2,XX' }), /XX/);
      await assert.rejects(saveConfig(db, 'c1', { epoch: '2026-02-30' }), /valid date/);
      await assert.rejects(saveConfig(db, 'c1', { nonsense: '1' }), { code: 'config_field_unknown' });
      await assert.rejects(saveConfig(db, 'all', BASE), { code: 'config_name_invalid' });
      const u = await saveConfig(db, 'c1', { box_size: '0.5', batch_types: 'OB P2', datastore_publish: 'yes' });
      assert.equal(u.box_size, 0.5);
      assert.deepEqual(u.batch_types, ['P2', 'OB']);
      assert.equal(u.datastore_publish, true);
      assert.equal(u.dvo_label, 'L1');
      assert.equal((await setConfigActive(db, 'c1', false)).active, false);
      await assert.rejects(getConfig(db, 'nope'), { code: 'config_unknown' });
    }));

    test('clients: requests applied by heartbeats, leases extended, lost clients freed', () => withDb(async (db) => {
      const a = await registerClient(db, { program: 'loader', config: 'c1', host: 'h', pid: 1 });
      assert.equal(a.state, 'running');
      await requestClient(db, a.client_id, 'pause');
      assert.equal((await heartbeatClient(db, a.client_id, { leaseMs: 1000 })).state, 'paused');
      await requestClient(db, a.client_id, 'resume');
      assert.equal((await heartbeatClient(db, a.client_id, { leaseMs: 1000 })).state, 'running');
      assert.equal(await requestClients(db, { program: 'loader' }, 'stop'), 1);
      assert.equal((await heartbeatClient(db, a.client_id, { leaseMs: 1000 })).state, 'stopped');
      const b = await registerClient(db, { program: 'queue', config: 'c1', host: 'h', pid: 2 }, new Date(Date.now() - 60_000));
      await db.run(`INSERT INTO stripe (config, ra_min, ra_max, holder) VALUES ('c1', 0, 1, ?)`, [b.client_id]);
      assert.deepEqual(await markLostClients(db, 30_000), [b.client_id]);
      assert.equal((await db.get<{ holder: unknown }>('SELECT holder FROM stripe'))!.holder, null);
      assert.equal((await listClients(db, { live: true })).length, 1);
      await assert.rejects(requestClient(db, b.client_id, 'stop'), { code: 'client_ended' });
    }));

    test('runner: edit session re-asks bad answers, then runs with the config; log file named', () => withDb(async (db, dir, url) => {
      const input = [
        'all', 'ed1',
        '', 'PSPS_test', // no default: asked again
        '', 'maybe', '1', // bad flag re-asked
        'LAB', '/data/dvo', '', 'abc', '10', '20', '', '', '0.5', '2026-13-01', '2026-03-01', '', '', '', '', '', '',
      ];
      let out = '';
      const seen: LoadingConfig[] = [];
      const result = await runProgram({
        program: 'queue', configArg: 'edit', db, settings: { ...settingsFor(dir, url), logDir: join(dir, 'logs') },
        log: quiet, signal: new AbortController().signal, stdin: Readable.from(input.map((l) => `${l}\n`)),
        stdout: { write: (s: string) => { out += s; } }, host: 'hostA', pid: 4242,
      }, async (config) => { seen.push(config); });
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.name, 'ed1');
      assert.equal(seen[0]!.datastore_publish, true);
      assert.equal(seen[0]!.min_ra, 10);
      assert.equal(seen[0]!.epoch, '2026-03-01');
      assert.match(out, / \* datastore_product \(varchar\(30\)\)\? /);
      assert.match(out, / \* datastore_type \(varchar\(30\)\) hit return to accept default of: 'IPP_PSPS'\? /);
      assert.match(out, / \* datastore_publish \(tinyint\(1\)\) hit return to accept default of: '0'\? /);
      assert.match(out, /config name "all" .*reserved/);
      assert.match(out, /datastore_publish \(tinyint\(1\)\) "maybe" is not 0 or 1; try again/);
      assert.match(out, /min_ra \(double\) "abc" is not a number; try again/);
      assert.match(out, /epoch \(date\) "2026-13-01" is not a valid date; try again/);
      assert.equal(result.logPath, join(dir, 'logs', 'queue_ed1_hostA_4242.log'));
      assert.match(await readFile(result.logPath!, 'utf8'), /started: client/);
      const clients = await listClients(db);
      assert.equal(clients[0]!.state, 'exited');
      assert.equal(clients[0]!.config, 'ed1');
      // Input ending early saves nothing.
      await assert.rejects(runProgram({
        program: 'queue', configArg: 'edit', db, settings: settingsFor(dir, url), log: quiet, signal: new AbortController().signal,
        stdin: Readable.from(['ed2\n', 'P\n']), stdout: { write: () => true },
      }, async () => undefined), { code: 'input_ended' });
      await assert.rejects(getConfig(db, 'ed2'), { code: 'config_unknown' });
    }));

    test('runner: all cycles active configs, re-reads them, repeats after hours, obeys pause and stop', () => withDb(async (db, dir, url) => {
      await saveConfig(db, 'a', BASE);
      await saveConfig(db, 'b', BASE);
      await saveConfig(db, 'z', BASE);
      await setConfigActive(db, 'z', false);
      const runs: string[] = [];
      let clientId = 0;
      const pass = { n: 0 };
      const done = runProgram({
        program: 'metrics', configArg: 'all', hours: 0.1 / 3600, db, settings: settingsFor(dir, url), log: quiet,
        signal: new AbortController().signal, stdout: { write: () => true }, heartbeatMs: 30,
      }, async (config, ctx) => {
        clientId = ctx.client.client_id;
        runs.push(`${config.name}:${config.box_size}`);
        if (config.name === 'b') pass.n++;
      });
      await until('two passes', () => pass.n >= 2);
      await saveConfig(db, 'a', { box_size: '7' });
      await until('the edit picked up', () => runs.includes('a:7'));
      assert.ok(!runs.some((r) => r.startsWith('z:')));
      await requestClient(db, clientId, 'pause');
      await until('paused', async () => (await listClients(db))[0]!.state === 'paused');
      const frozen = runs.length;
      await new Promise((r) => setTimeout(r, 400));
      assert.ok(runs.length <= frozen + 2, 'at most the pass under way finishes while paused');
      const during = runs.length;
      await requestClient(db, clientId, 'resume');
      await until('resumed work', () => runs.length > during);
      await requestClient(db, clientId, 'stop');
      const result = await done;
      assert.equal(result.endedBy, 'stop_request');
      assert.equal((await listClients(db))[0]!.state, 'exited');
    }));

    test('runner: Ctrl-C ends the body through its signal; the client exits and its claims are released', () => withDb(async (db, dir, url) => {
      await saveConfig(db, 'a', BASE);
      const ctrlC = new AbortController();
      const done = runProgram({
        program: 'loader', configArg: 'a', db, settings: settingsFor(dir, url), log: quiet, signal: ctrlC.signal,
        stdout: { write: () => true }, heartbeatMs: 30,
      }, async (_config, ctx) => {
        await db.run(`INSERT INTO queue_item (config, batch_type, source_id, state, claimed_by, claim_expires, queued_at, updated_at)
                      VALUES ('a', 'P2', 1, 'claimed', ?, '2000-01-01T00:00:00.000Z', '', '')`, [ctx.client.client_id]);
        await until('heartbeat extends the lease', async () =>
          (await db.get<{ e: string }>('SELECT claim_expires AS e FROM queue_item'))!.e > new Date().toISOString());
        ctrlC.abort();
        assert.equal(ctx.signal.aborted, true);
        assert.equal(await ctx.checkpoint(), false);
        throw ctx.signal.reason;
      });
      const result = await done;
      assert.equal(result.endedBy, 'interrupted');
      const item = await db.get<{ state: string; claimed_by: unknown }>('SELECT state, claimed_by FROM queue_item');
      assert.deepEqual({ ...item }, { state: 'pending', claimed_by: null });
    }));
  });
}

test('settings file: fields checked, paths relative to the file, bad field named', () => withTempDir(async (dir) => {
  const file = join(dir, 'settings.json');
  await writeFile(file, JSON.stringify({ trackingDb: 'sqlite:t.db', dataDir: 'data', datastoreUrl: 'http://h:1/' }));
  const s = await readSettingsFile(file);
  assert.equal(s.trackingDb, `sqlite:${join(dir, 't.db')}`);
  assert.equal(s.dataDir, join(dir, 'data'));
  assert.equal(s.datastoreUrl, 'http://h:1');
  await writeFile(file, JSON.stringify({ trackingDb: 'mysql://x', dataDir: 'd' }));
  await assert.rejects(readSettingsFile(file), (e: Error & { code?: string }) =>
    e.code === 'settings_invalid' && e.message.includes(file) && e.message.includes('"trackingDb"'));
  await writeFile(file, JSON.stringify({ logdir: 'x' }));
  await assert.rejects(readSettingsFile(file), /field "logdir" is not a settings field/);
  await writeFile(file, JSON.stringify({ dataDir: 3 }));
  await assert.rejects(readSettingsFile(file), /field "dataDir" must be a string/);
  await writeFile(file, '{ bad json');
  await assert.rejects(readSettingsFile(file), /is not valid JSON/);
  assert.equal((await readdir(dir)).length, 1);
}, 'ipp-q-'));
