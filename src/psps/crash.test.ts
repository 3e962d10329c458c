// kill -9 at random (seeded) moments of the DXLayer and the ODM, each restarted after: the
// chain still completes, and the archive holds every row exactly once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { mulberry32, withTempDir } from '../common/index.ts';
import { DATASTORE_MIGRATIONS, DatastoreClient, startDatastoreServer } from '../datastore/index.ts';
import { openDatabase, testEngines } from '../db/index.ts';
import { obBatch, p2Batch, writeBatchFits, writeTestSchema } from './test-support.ts';

const ODM_FIXTURE = fileURLToPath(new URL('./odm.fixture.ts', import.meta.url));
const DX_FIXTURE = fileURLToPath(new URL('./dxlayer.fixture.ts', import.meta.url));
const PRODUCT = 'PSPS_test';

interface Child { proc: ChildProcess; out: string; err: string }

function start(file: string, args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = { proc, out: '', err: '' };
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { child.out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { child.err += s; });
  return new Promise((resolve, reject) => {
    const check = setInterval(() => {
      if (/URL |READY/.test(child.out)) { clearInterval(check); resolve(child); }
    }, 10);
    proc.once('exit', (code) => { clearInterval(check); reject(new Error(`${file} exited (${code}) before it was ready: ${child.err}`)); });
  });
}

async function kill(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const gone = new Promise((resolve) => child.proc.once('exit', resolve));
  child.proc.kill('SIGKILL');
  await gone;
}

for (const engine of testEngines()) {
  // 20 on the engine that always runs, 12 more when PostgreSQL does
  const TRIALS = engine.name === 'sqlite' ? 20 : 12;
  describe(`kill -9 of the DXLayer and the ODM on ${engine.name}`, { skip: engine.skip }, () => {
    it(`${TRIALS} seeded kills: the chain completes and every row is archived exactly once`, (t) => engine.withUrl((url) => withTempDir(async (dir) => {
      const random = mulberry32(engine.name === 'sqlite' ? 20261121 : 7);
      const schema = await writeTestSchema(join(dir, 'schema'));
      const archiveUrl = engine.name === 'sqlite' ? `sqlite:${join(dir, 'archive.db')}` : url;
      const pspsUrl = engine.name === 'sqlite' ? `sqlite:${join(dir, 'psps.db')}` : url;
      const dsDb = await openDatabase(`sqlite:${join(dir, 'ds.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
      const ds = await startDatastoreServer({ root: join(dir, 'ds'), db: dsDb, fsync: false, reserveBytes: 0 });
      const client = new DatastoreClient({ url: ds.url });
      await client.addProduct({ name: PRODUCT, type: 'IPP_PSPS', description: 'crash test' });
      let published = 0;
      let detections = 0;
      const publish = async () => {
        published++;
        const name = `B${String(published).padStart(8, '0')}`;
        const n = 1500 + (random() % 2500);
        const tables = published % 4 === 0 ? obBatch(published * 100_000, n) : p2Batch(published, n);
        if (published % 4 !== 0) detections += n;
        const { fits, manifest } = await writeBatchFits(join(dir, 'out', name), name, published % 4 === 0 ? 'OB' : 'P2', tables, PRODUCT);
        await client.publish(PRODUCT, name, [{ path: fits }, { path: manifest }]);
      };
      for (let i = 0; i < 4; i++) await publish();
      const odmArgs = (port: number) => [pspsUrl, archiveUrl, schema, String(port)];
      // the ODM's database first: both children migrate the psps database
      let odm = await start(ODM_FIXTURE, odmArgs(0));
      const odmUrl = /URL (\S+)/.exec(odm.out)![1];
      const port = Number(new URL(odmUrl).port);
      const dxArgs = [pspsUrl, ds.url, odmUrl, PRODUCT, join(dir, 'dx')];
      let dx = await start(DX_FIXTURE, dxArgs);
      const kills = { odm: 0, dxlayer: 0 };
      let odmLog = '';
      try {
        for (let trial = 0; trial < TRIALS; trial++) {
          if (trial % 2 === 1) await publish();
          await sleep(20 + (random() % 400));
          if (random() % 2 === 0) {
            await kill(odm);
            odmLog += odm.err;
            kills.odm++;
            odm = await start(ODM_FIXTURE, odmArgs(port));
          } else {
            await kill(dx);
            kills.dxlayer++;
            dx = await start(DX_FIXTURE, dxArgs);
          }
        }
        assert.ok(kills.odm > 0 && kills.dxlayer > 0, `both were killed: ${JSON.stringify(kills)}`);
        t.diagnostic(`kills ${JSON.stringify(kills)}; ODM restarts that found unfinished batches: ${(odmLog.match(/resuming/g) ?? []).length}`);
        // let the chain finish
        const psps = await openDatabase(pspsUrl, {});
        const archive = await openDatabase(archiveUrl, {});
        try {
          let states: { state: string; n: number }[] = [];
          for (let i = 0; i < 600; i++) {
            states = await psps.all<{ state: string; n: number }>('SELECT state, count(*) AS n FROM odm_batch GROUP BY state');
            if (states.length === 1 && states[0].state === 'merged' && Number(states[0].n) === published) break;
            await sleep(50);
          }
          assert.deepEqual(states.map((s) => [s.state, Number(s.n)]), [['merged', published]], `ODM stderr: ${odm.err}\nDXLayer stderr: ${dx.err}`);
          // every batch handed over once (same md5 again is a no-op), merged once
          const gens = await psps.all<{ generation: number }>('SELECT generation FROM odm_batch');
          assert.ok(gens.every((g) => Number(g.generation) === 1));
          const merged = await archive.get<{ n: number }>('SELECT count(*) AS n FROM archive_merge WHERE generation = 1');
          assert.equal(Number(merged?.n), published);
          const one = async (sql: string) => Number((await archive.get<{ n: number }>(sql))?.n);
          assert.equal(await one('SELECT count(*) AS n FROM Detection'), detections);
          assert.equal(await one('SELECT count(DISTINCT detectID) AS n FROM Detection'), detections);
          assert.equal(await one('SELECT count(*) AS n FROM FrameMeta'), published - Math.floor(published / 4));
          const staging = engine.name === 'postgres'
            ? await one("SELECT count(*) AS n FROM information_schema.tables WHERE table_name LIKE 'stg\\_%'")
            : await one("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name LIKE 'stg\\_%' ESCAPE '\\'");
          assert.equal(staging, 0, 'no staging table is left behind');
        } finally {
          await psps.close();
          await archive.close();
        }
      } finally {
        await kill(dx);
        await kill(odm);
        await ds.close();
        await dsDb.close();
      }
    }, 'ipp-psps-crash-')));
  });
}
