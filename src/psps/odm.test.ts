import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RemoteError, withTempDir } from '../common/index.ts';
import { openDatabase, testEngines, type Database } from '../db/index.ts';
import { openArchive, type Archive } from './archive.ts';
import { PSPS_MIGRATIONS } from './migrations.ts';
import { Odm } from './odm.ts';
import { ProblemList } from './problems.ts';
import { batchSchemaOf, readArchiveSchema, type ArchiveColumn } from './schema.ts';
import { sqlType } from './sql.ts';
import { stageBatch, stagingName } from './stage.ts';
import { KEYS_ROSE, NO_NULLS, RULES_HELD, validateBatch, valuesKeepRules } from './validate.ts';
import { mergeBatch } from './merge.ts';
import { OdmClient } from './odm-client.ts';
import { startOdmServer } from './odm-server.ts';
import { p2Batch, obBatch, writeBatchCsv, writeBatchFits, writeTestSchema, type TestTable } from './test-support.ts';

interface Fixture { dir: string; archive: Archive; db: Database; odm: Odm; client: OdmClient }

type Engine = ReturnType<typeof testEngines>[number];

async function withOdm(engine: Engine & { partitionByBatch?: boolean }, fn: (f: Fixture) => Promise<void>): Promise<void> {
  await engine.withUrl((url) => withTempDir(async (dir) => {
    const schemaDir = await writeTestSchema(join(dir, 'schema'));
    const archiveUrl = engine.name === 'sqlite' ? `sqlite:${join(dir, 'archive.db')}` : url;
    const dbUrl = engine.name === 'sqlite' ? `sqlite:${join(dir, 'psps.db')}` : url;
    const archive = await openArchive(archiveUrl, { schemaDir, partitionByBatch: engine.partitionByBatch ?? false });
    const db = await openDatabase(dbUrl, { migrations: [PSPS_MIGRATIONS] });
    const odm = await Odm.start({ db, archive, maxReasons: 5, retryMs: 50 });
    const server = await startOdmServer({ odm, tokens: { write: 'w' } });
    const client = new OdmClient({ url: server.url, token: 'w' });
    try {
      await fn({ dir, archive, db, odm, client });
    } finally {
      await server.close();
      await odm.close();
      await db.close();
      await archive.close();
    }
  }, 'ipp-odm-'));
}

async function hand(f: Fixture, name: string, type: string, tables: TestTable[], md5: string) {
  const dir = join(f.dir, 'dx', name);
  const files = await writeBatchCsv(dir, tables);
  return f.client.submit({ name, product: 'PSPS_test', type, md5, dir, tables: files });
}

async function settled(f: Fixture, name: string) {
  await f.odm.idle();
  return f.client.batch(name);
}

async function count(f: Fixture, sql: string): Promise<number> {
  const row = await f.archive.db.get<{ n: number }>(sql);
  return Number(row?.n);
}

const MD5 = (i: number) => i.toString(16).padStart(32, '0');

async function until(what: string, test: () => Promise<boolean>, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !(await test());) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// PostgreSQL runs every case twice: plain tables (merged by copying) and tables partitioned by
// batch (merged by attaching the staging table).
const layouts = testEngines().flatMap((e) => (e.name === 'postgres' ? [e, { ...e, partitionByBatch: true }] : [e]));

for (const engine of layouts) {
  const partitioned = 'partitionByBatch' in engine;
  describe(`ODM on ${engine.name}${partitioned ? ', partitioned by batch' : ''}`, { skip: engine.skip }, () => {
    it('creates the archive from the schema files: tables united, keys, q3c on PostgreSQL', () => withOdm(engine, async (f) => {
      const cols = engine.name === 'postgres'
        ? (await f.archive.db.all<{ c: string }>("SELECT column_name AS c FROM information_schema.columns WHERE table_name = 'objectthin' ORDER BY ordinal_position")).map((r) => r.c)
        : (await f.archive.db.all<{ c: string }>("SELECT name AS c FROM pragma_table_info('ObjectThin')")).map((r) => r.c);
      assert.deepEqual(cols.map((c) => c.toLowerCase()), ['objid', 'ra', 'dec', 'ndetections', 'qualityflag', 'odm_batch']);
      assert.equal(f.archive.q3c, engine.name === 'postgres');
      await assert.rejects(f.archive.db.run('INSERT INTO Filter (filterID, filterType) VALUES (1, NULL), (1, NULL)'), { code: 'db_constraint' });
    }));

    it('loads, validates and merges a batch; the status API reports each state with times and rows', () => withOdm(engine, async (f) => {
      await assert.rejects(f.client.batch('B00000001'), (e: unknown) => e instanceof RemoteError && e.status === 404 && e.code === 'unknown_batch');
      const first = await hand(f, 'B00000001', 'P2', p2Batch(7, 300), MD5(1));
      assert.equal(first.state, 'received');
      const s = await settled(f, 'B00000001');
      assert.equal(s.state, 'merged', JSON.stringify(s.reasons));
      assert.deepEqual(s.rows, { FrameMeta: 1, Detection: 300, ObjectThin: 300 });
      for (const t of [s.receivedAt, s.loadedAt, s.mergeWorthyAt, s.mergedAt]) assert.match(String(t), /^\d{4}-\d\d-\d\dT/);
      assert.equal(s.failedAt, null);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 300);
      assert.equal(f.archive.partitioned.size > 0, partitioned);
      if (partitioned) {
        // the validated staging table became the batch's partition, keyed and indexed as the archive
        assert.deepEqual(await f.archive.db.all("SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'detection'::regclass ORDER BY 1"),
          [{ name: 'arc_b00000001_detection' }, { name: 'detection_nobatch' }]);
        assert.equal(await count(f, "SELECT count(*) AS n FROM pg_indexes WHERE tablename = 'arc_b00000001_detection'"),
          await count(f, "SELECT count(*) AS n FROM pg_indexes WHERE tablename = 'detection_nobatch'"));
        assert.equal(await count(f, "SELECT count(*) AS n FROM pg_class WHERE relname LIKE 'stg_b00000001_%'"), 0);
      }
      // defaults: psfFlux -999 stays -999 (the default is allowed), no NULLs
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection WHERE psfFlux IS NULL'), 0);
      // the same hand-over again (a DXLayer repeating itself after a crash) changes nothing
      const again = await hand(f, 'B00000001', 'P2', p2Batch(7, 300), MD5(1));
      assert.equal(again.state, 'merged');
      assert.equal(again.generation, 1);
      // the same bytes published again as a new fileset are a reload; the same fileset again is not
      const files = await writeBatchCsv(join(f.dir, 'dx', 'B00000001'), p2Batch(7, 300));
      const from = (filesetId: number) => f.client.submit({ name: 'B00000001', product: 'PSPS_test', type: 'P2', md5: MD5(1), filesetId, tables: files });
      assert.equal((await from(17)).generation, 2);
      assert.equal((await settled(f, 'B00000001')).state, 'merged');
      assert.equal((await from(17)).generation, 2);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 300);
      const listed = await f.client.batches({ state: 'merged', type: 'P2' });
      assert.deepEqual(listed.map((b) => b.name), ['B00000001']);
      assert.deepEqual(await f.client.batches({ state: 'failed' }), []);
      assert.equal((await f.client.health()).batches.merged, 1);
    }));

    it('fails a batch with impossible values, listing the offending rows; the fixed batch reloads and merges once', () => withOdm(engine, async (f) => {
      await hand(f, 'B00000002', 'P2', p2Batch(8, 200, { badRa: [3, 50, 51, 52, 53, 54, 55] }), MD5(2));
      let s = await settled(f, 'B00000002');
      assert.equal(s.state, 'failed');
      assert.match(String(s.failedAt), /^\d{4}-/);
      assert.equal(s.reasons[0], 'Detection.ra row 4: "403" breaks range (must lie in [0, 360])');
      assert.equal(s.reasons.length, 6);
      assert.match(s.reasons[5], /and 2 more problems/);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 0);
      // a type error: text where a number belongs, and an over-long string
      const bad = p2Batch(8, 20);
      (bad[1].columns[5].values as (number | string)[])[9] = 'bright';
      await hand(f, 'B00000002', 'P2', bad, MD5(3));
      s = await settled(f, 'B00000002');
      assert.equal(s.state, 'failed');
      assert.equal(s.generation, 2);
      assert.deepEqual(s.reasons, ['Detection.psfFlux row 10: "bright" breaks type (must be a number (float))']);
      // fixed and re-published: merged, each row once
      await hand(f, 'B00000002', 'P2', p2Batch(8, 200), MD5(4));
      s = await settled(f, 'B00000002');
      assert.equal(s.state, 'merged', JSON.stringify(s.reasons));
      assert.deepEqual(s.reasons, []);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 200);
      // reloading the merged batch with other rows replaces what it brought
      await hand(f, 'B00000002', 'P2', p2Batch(8, 150), MD5(5));
      s = await settled(f, 'B00000002');
      assert.equal(s.state, 'merged');
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 150);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM FrameMeta'), 1);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM ObjectThin'), 200);
    }));

    it('stages from the batch FITS file when it is handed over (binary COPY on PostgreSQL), refusing values the columns cannot hold', () => withOdm(engine, async (f) => {
      const submitBoth = async (name: string, tables: TestTable[], md5: string) => {
        const dir = join(f.dir, 'dx', name);
        const files = await writeBatchCsv(dir, tables);
        const { fits } = await writeBatchFits(dir, name, 'P2', tables);
        // PostgreSQL must not read the CSV files then
        if (engine.name === 'postgres') for (const file of files) await rm(file.path);
        return f.client.submit({ name, product: 'PSPS_test', type: 'P2', md5, dir, fits, tables: files });
      };
      await submitBoth('B00000040', p2Batch(40, 250), MD5(40));
      const s = await settled(f, 'B00000040');
      assert.equal(s.state, 'merged', JSON.stringify(s.reasons));
      assert.deepEqual(s.rows, { FrameMeta: 1, Detection: 250, ObjectThin: 250 });
      const row = await f.archive.db.get<Record<string, unknown>>('SELECT * FROM Detection WHERE detectID = ?', [4_000_007]);
      const lower = Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      assert.deepEqual([Number(lower.frameid), Number(lower.objid), Number(lower.ra), Number(lower.psfflux), Number(lower.infoflag), Number(lower.filterid)],
        [40, 4_000_007, 10.007, -999, 1, 2]);
      if (partitioned) {
        // the load checked the column rules (validation skipped its scan); the mark stays on the partition
        const c = await f.archive.db.get<{ c: string }>("SELECT obj_description('arc_b00000040_detection'::regclass, 'pg_class') AS c");
        assert.equal(c?.c, `${RULES_HELD}; ${KEYS_ROSE}; ${NO_NULLS}`);
      }
      // a value out of its range: the load leaves it to validation, which lists it as from the CSV
      await submitBoth('B00000042', p2Batch(42, 30, { badRa: [3, 7] }), MD5(42));
      assert.deepEqual((await settled(f, 'B00000042')).reasons, [
        'Detection.ra row 4: "403" breaks range (must lie in [0, 360])', 'Detection.ra row 8: "407" breaks range (must lie in [0, 360])',
      ]);
      // an int column given 64-bit values beyond its range, a float one beyond 32 bits
      const bad = p2Batch(41, 20);
      const det = bad[1].columns as { name: string; datatype: string; values: (number | bigint | string)[] }[];
      det[6] = { name: 'infoFlag', datatype: 'long', values: det[6].values.map((v, i) => (i === 4 ? 3_000_000_000n : BigInt(v))) };
      det[5] = { name: 'psfFlux', datatype: 'double', values: det[5].values.map((v, i) => (i === 9 ? 1e39 : Number(v))) };
      await submitBoth('B00000041', bad, MD5(41));
      const failed = await settled(f, 'B00000041');
      assert.equal(failed.state, 'failed');
      assert.deepEqual(failed.reasons, [
        'Detection.psfFlux row 10: "1e+39" breaks type (must fit a 32-bit float (float))',
        'Detection.infoFlag row 5: "3000000000" breaks type (must be an integer from -2147483648 to 2147483647 (int))',
      ]);
      assert.equal(await count(f, "SELECT count(*) AS n FROM Detection WHERE odm_batch = 'B00000041'"), 0);
      // keys that do not rise from row to row: validation finds a duplicate; unique ones in any order pass
      const dup = p2Batch(43, 20);
      (dup[1].columns[0].values as bigint[])[12] = 4_300_003n;
      await submitBoth('B00000043', dup, MD5(43));
      assert.deepEqual((await settled(f, 'B00000043')).reasons, ['Detection.detectID: "4300003" breaks unique (the primary key appears 2 times in the batch)']);
      const reversed = p2Batch(44, 20);
      (reversed[1].columns[0].values as bigint[]).reverse();
      await submitBoth('B00000044', reversed, MD5(44));
      assert.equal((await settled(f, 'B00000044')).state, 'merged');
      assert.equal(await count(f, "SELECT count(*) AS n FROM Detection WHERE odm_batch = 'B00000044'"), 20);
    }));

    it('a value a CSV file leaves empty gets its column default in the archive', () => withOdm(engine, async (f) => {
      const dir = join(f.dir, 'dx', 'B00000070');
      const files = await writeBatchCsv(dir, p2Batch(70, 5));
      const detection = files.find((x) => x.name === 'Detection')!.path;
      const lines = (await readFile(detection, 'utf8')).split('\n');
      // psfFlux (the 6th column, default -999) of the third detection left empty
      const cells = lines[3].split(',');
      cells[5] = '';
      lines[3] = cells.join(',');
      await writeFile(detection, lines.join('\n'));
      await f.client.submit({ name: 'B00000070', product: 'PSPS_test', type: 'P2', md5: MD5(70), dir, tables: files });
      assert.equal((await settled(f, 'B00000070')).state, 'merged');
      const row = await f.archive.db.get<Record<string, unknown>>('SELECT psfFlux AS v FROM Detection WHERE detectID = ?', [7_000_002]);
      assert.equal(Number(row?.v ?? row?.V), -999);
    }));

    it('a keep merge looks keys up by index when the archive table\'s statistics say it is empty', { skip: engine.name !== 'postgres' || partitioned }, () => withOdm(engine, async (f) => {
      await f.odm.close();
      const schema = batchSchemaOf(f.archive.schema, 'P2');
      const n = 2000;
      const problems = new ProblemList(5);
      await stageBatch(f.archive, 'B00000080', schema, await writeBatchCsv(join(f.dir, 'dx', 'B00000080'), p2Batch(80, n)), problems);
      assert.equal(problems.total + (await validateBatch(f.archive, 'B00000080', schema)).total, 0);
      // (what autovacuum leaves after a merge that rolled back)
      await f.archive.db.exec('VACUUM ObjectThin');
      const scans = async () => Number((await f.archive.db.get<{ n: number }>("SELECT idx_scan AS n FROM pg_stat_user_tables WHERE relname = 'objectthin'"))?.n ?? 0);
      const before = await scans();
      assert.deepEqual((await mergeBatch(f.archive, 'B00000080', 1, schema)).rows, { FrameMeta: 1, Detection: n, ObjectThin: n });
      // one probe of the key's index per stub (a sequential scan of the table being filled
      // instead grows with every row); the server reports its counts within a second or so
      let probes = 0;
      for (let i = 0; i < 100 && probes < n; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        probes = (await scans()) - before;
      }
      assert.ok(probes >= n, `${probes} index scans of ObjectThin for ${n} stubs`);
    }));

    it('a key another batch merged after validation stops the merge, which changes nothing', () => withOdm(engine, async (f) => {
      await f.odm.close();
      const schema = batchSchemaOf(f.archive.schema, 'P2');
      for (const [name, frame] of [['B00000050', 50], ['B00000051', 51]] as const) {
        // the same detection IDs from two frames, both validated before either is merged
        const files = await writeBatchCsv(join(f.dir, 'dx', name), p2Batch(frame, 30, { firstDetect: 5_000_000 }));
        const problems = new ProblemList(5);
        await stageBatch(f.archive, name, schema, files, problems);
        assert.equal(problems.total, 0, problems.reasons().join('; '));
        assert.equal((await validateBatch(f.archive, name, schema)).total, 0);
      }
      assert.deepEqual((await mergeBatch(f.archive, 'B00000050', 1, schema)).rows, { FrameMeta: 1, Detection: 30, ObjectThin: 30 });
      await assert.rejects(mergeBatch(f.archive, 'B00000051', 1, schema), { code: partitioned ? 'psps_merge_conflict' : 'db_constraint' });
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 30);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM FrameMeta'), 1);
      assert.equal(await count(f, "SELECT count(*) AS n FROM archive_merge WHERE batch = 'B00000051'"), 0);
    }));

    it('checks column rules on loaded values as validation does in SQL', { skip: engine.name !== 'sqlite' }, () => {
      const col = (datatype: string, extra: object = {}) => ({ name: 'x', datatype, required: false, ...extra }) as ArchiveColumn;
      const range = { min: { value: 0, inclusive: true }, max: { value: 360, inclusive: false } };
      assert.equal(valuesKeepRules(col('double', range), Float64Array.of(0, 359.9), 2), true);
      assert.equal(valuesKeepRules(col('double', range), Float64Array.of(0, 360), 2), false);
      assert.equal(valuesKeepRules(col('double', range), Float64Array.of(-0.1), 1), false);
      assert.equal(valuesKeepRules(col('double', { ...range, defaultText: '-999' }), Float64Array.of(-999), 1), true);
      // NaN sorts above every number in PostgreSQL: it breaks a maximum, not a minimum
      assert.equal(valuesKeepRules(col('double', range), Float64Array.of(NaN), 1), false);
      assert.equal(valuesKeepRules(col('double', { min: range.min }), Float64Array.of(NaN), 1), true);
      // unsignedByte is 0..255 without a declared range
      assert.equal(valuesKeepRules(col('unsignedByte'), Int16Array.of(255), 1), true);
      assert.equal(valuesKeepRules(col('unsignedByte'), Int16Array.of(256), 1), false);
      assert.equal(valuesKeepRules(col('long', { min: range.min }), BigInt64Array.of(-1n), 1), false);
      // a REAL is compared as stored: 360.00001 rounds to 360 in 32 bits
      assert.equal(valuesKeepRules(col('float', { max: { value: 360, inclusive: true } }), Float64Array.of(360.00001), 1), true);
      assert.equal(valuesKeepRules(col('char', { width: 3 }), ['abc  ', 'ab'], 2), true);
      assert.equal(valuesKeepRules(col('char', { width: 3 }), ['abcd'], 1), false);
    });

    it('an archive whose plain tables exist keeps them (partitionByBatch applies to new tables) and is merged by copying, from FITS too', { skip: engine.name !== 'postgres' || partitioned }, () => engine.withUrl((url) => withTempDir(async (dir) => {
      const schemaDir = await writeTestSchema(join(dir, 'schema'));
      const schema = await readArchiveSchema(schemaDir);
      // the tables as openArchive created them before: plain tables, the key alone
      const db = await openDatabase(url, {});
      try {
        for (const t of schema.tables) {
          const cols = t.columns.map((c) => `${c.name} ${sqlType(c.datatype, db.dialect)}`);
          await db.exec(`CREATE TABLE ${t.name} (${cols.join(', ')}, odm_batch TEXT${t.primaryKey.length > 0 ? `, PRIMARY KEY (${t.primaryKey.join(', ')})` : ''})`);
        }
      } finally {
        await db.close();
      }
      const archive = await openArchive(url, { schemaDir, partitionByBatch: true });
      try {
        assert.equal(archive.partitioned.size, 0);
        const p2 = batchSchemaOf(archive.schema, 'P2');
        for (const [generation, n] of [[1, 40], [2, 25]]) {
          const tables = p2Batch(60, n);
          const files = await writeBatchCsv(join(dir, `g${generation}`), tables);
          const { fits } = await writeBatchFits(join(dir, `g${generation}`), 'B00000060', 'P2', tables);
          const problems = new ProblemList(5);
          assert.deepEqual(await stageBatch(archive, 'B00000060', p2, files, problems, undefined, { fits }), { FrameMeta: 1, Detection: n, ObjectThin: n });
          assert.equal(problems.total, 0, problems.reasons().join('; '));
          assert.equal((await validateBatch(archive, 'B00000060', p2)).total, 0);
          assert.equal((await mergeBatch(archive, 'B00000060', generation, p2)).merged, true);
        }
        // the reload replaced the batch's detections; the stubs it brought first are kept
        assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 25);
        assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM ObjectThin'))?.n), 40);
        assert.equal((await archive.db.get<{ k: string }>("SELECT relkind AS k FROM pg_class WHERE relname = 'detection'"))?.k, 'r');
      } finally {
        await archive.close();
      }
    }, 'ipp-odm-legacy-')));

    it('checks references, keys and required values against the archive and the batch', () => withOdm(engine, async (f) => {
      await hand(f, 'B00000010', 'P2', p2Batch(9, 50), MD5(10));
      assert.equal((await settled(f, 'B00000010')).state, 'merged');
      // detections of objects that neither the archive nor the batch has
      const orphan = p2Batch(10, 30);
      orphan.pop(); // no ObjectThin stubs
      orphan.push({ name: 'ObjectThin', columns: [{ name: 'objID', datatype: 'long', values: [] }, { name: 'ra', datatype: 'double', values: [] }, { name: 'dec', datatype: 'double', values: [] }] });
      (orphan[1].columns[2].values as bigint[])[0] = 900_000n; // objID of B00000010's first object: fine
      await hand(f, 'B00000011', 'P2', orphan, MD5(11));
      let s = await settled(f, 'B00000011');
      assert.equal(s.state, 'failed');
      assert.equal(s.reasons[0], 'Detection.objID row 2: "1000001" breaks reference (must exist in ObjectThin.objID, merged already or in this batch)');
      assert.match(s.reasons.at(-1)!, /and 24 more problems/);
      // a detectID that another batch merged already (insert policy), a duplicate key, a missing frame
      const clash = p2Batch(11, 10, { firstDetect: 900_049 });
      (clash[1].columns[0].values as bigint[])[5] = 900_053n;
      (clash[0].columns[0].values as bigint[])[0] = 12n;
      await hand(f, 'B00000012', 'P2', clash, MD5(12));
      s = await settled(f, 'B00000012');
      assert.equal(s.state, 'failed');
      assert.deepEqual(s.reasons.slice(0, 3), [
        'Detection.detectID: "900053" breaks unique (the primary key appears 2 times in the batch)',
        'Detection.detectID row 1: "900049" breaks exists (the key is in the archive already (from batch B00000010); this table\'s rows are inserted, never replaced)',
        'Detection.frameID row 1: "11" breaks reference (must exist in FrameMeta.frameID, merged already or in this batch)',
      ]);
      assert.match(s.reasons.at(-1)!, /and 7 more problems/);
      // a missing table file and an empty required value
      const files = await writeBatchCsv(join(f.dir, 'dx', 'B00000013'), p2Batch(13, 5));
      await writeFile(files[0].path, 'frameID,expTime,filterID\n13,,\n');
      await f.client.submit({ name: 'B00000013', product: 'PSPS_test', type: 'P2', tables: files.slice(0, 2) });
      s = await settled(f, 'B00000013');
      assert.deepEqual(s.reasons, ['ObjectThin: breaks file (the batch has no CSV file for this table)']);
      await f.client.submit({ name: 'B00000013', product: 'PSPS_test', type: 'P2', tables: files });
      s = await settled(f, 'B00000013');
      assert.deepEqual(s.reasons, ['FrameMeta.filterID row 1: "" breaks required (the column has no default; a value is required)']);
    }));

    it('loads again a batch whose staging lost its rows (a PostgreSQL restart empties UNLOGGED tables), instead of merging it empty', { skip: engine.name !== 'postgres' }, () => withOdm(engine, async (f) => {
      await f.odm.close();
      const schema = batchSchemaOf(f.archive.schema, 'P2');
      const dir = join(f.dir, 'dx', 'B00000030');
      const files = await writeBatchCsv(dir, p2Batch(30, 300));
      const problems = new ProblemList(5);
      const rows = await stageBatch(f.archive, 'B00000030', schema, files, problems);
      assert.equal(problems.total, 0, problems.reasons().join('; '));
      // staging that becomes the batch's partitions is logged; UNLOGGED otherwise
      const kinds = await f.archive.db.all<{ p: string }>("SELECT relpersistence AS p FROM pg_class WHERE relname LIKE 'stg_b00000030_%' AND relkind = 'r'");
      assert.deepEqual(kinds.map((k) => k.p), f.archive.partitioned.size > 0 ? ['p', 'p', 'p'] : ['u', 'u', 'u']);
      // what crash recovery does to UNLOGGED tables
      for (const t of schema.tables) await f.archive.db.exec(`TRUNCATE ${stagingName('B00000030', t.name)}`);
      const now = new Date().toISOString();
      await f.db.run(`INSERT INTO odm_batch (name, product, batch_type, generation, state, md5, dir, tables_json, rows_json, received_at, loaded_at, updated_at)
        VALUES (?, 'PSPS_test', 'P2', 1, 'loaded', ?, ?, ?, ?, ?, ?, ?)`, ['B00000030', MD5(30), dir, JSON.stringify(files), JSON.stringify(rows), now, now, now]);
      const odm = await Odm.start({ db: f.db, archive: f.archive, retryMs: 50 });
      try {
        await odm.idle();
        const s = await odm.status('B00000030');
        assert.equal(s.state, 'merged', JSON.stringify(s.reasons));
        assert.deepEqual(s.rows, { FrameMeta: 1, Detection: 300, ObjectThin: 300 });
      } finally {
        await odm.close();
      }
      assert.equal(await count(f, "SELECT count(*) AS n FROM Detection WHERE odm_batch = 'B00000030'"), 300);
    }));

    it('merges OB batches over the stubs (replace) and deletes the DXLayer copy on request', () => withOdm(engine, async (f) => {
      await hand(f, 'B00000020', 'P2', p2Batch(20, 40), MD5(20));
      await hand(f, 'B00000021', 'OB', obBatch(2_000_000, 60), MD5(21));
      assert.equal((await settled(f, 'B00000020')).state, 'merged');
      assert.equal((await settled(f, 'B00000021')).state, 'merged');
      assert.equal(await count(f, 'SELECT count(*) AS n FROM ObjectThin'), 60);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM ObjectThin WHERE nDetections = 3'), 60);
      // a later P2 stub never overwrites a full row (keep)
      await hand(f, 'B00000022', 'P2', p2Batch(21, 10, { firstObj: 2_000_000 }), MD5(22));
      assert.equal((await settled(f, 'B00000022')).state, 'merged');
      assert.equal(await count(f, "SELECT count(*) AS n FROM ObjectThin WHERE odm_batch = 'B00000021'"), 60);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM MeanObject'), 60);
      const copy = join(f.dir, 'dx', 'B00000020');
      assert.ok((await stat(copy)).isDirectory());
      assert.deepEqual(await f.client.deleteCopy('B00000020'), { name: 'B00000020', deleted: true });
      await assert.rejects(stat(copy));
      assert.deepEqual(await f.client.deleteCopy('B00000020'), { name: 'B00000020', deleted: false });
      assert.ok((await f.client.batch('B00000020')).copyDeletedAt);
      await assert.rejects(f.client.deleteCopy('B09999999'), (e: unknown) => e instanceof RemoteError && e.status === 404);
      // writes need the token
      const anonymous = new OdmClient({ url: f.client.url });
      await assert.rejects(anonymous.deleteCopy('B00000021'), (e: unknown) => e instanceof RemoteError && e.status === 401);
      await mkdir(join(f.dir, 'x'));
      await assert.rejects(f.client.submit({ name: '../x', product: 'p', type: 'P2', tables: [] }), { code: 'psps_bad_batch' });
      await assert.rejects(f.client.submit({ name: 'B1', product: 'p', type: 'XX', tables: [] }), { code: 'psps_unknown_batch_type' });
    }));

    it('loads the next batch while the one before waits for its merge: one batch ahead, failures recorded, validated and merged in order', { skip: engine.name !== 'postgres' }, () => withOdm(engine, async (f) => {
      const state = async (n: number) => (await f.client.batch(`B000000${n}`)).state;
      // the merge lock held elsewhere (as by another ODM's merge or a fold): B31's merge waits
      const holder = await openDatabase(f.archive.connectionString!, { maxConnections: 1 });
      try {
        await holder.transaction(async (tx) => {
          await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_psps_merge'))");
          await hand(f, 'B00000031', 'P2', p2Batch(31, 20), MD5(31));
          await until('B31 to wait for its merge', async () => (await state(31)) === 'merge_worthy');
          // B32 brings a table P2 batches do not have: the ahead lane fails it with the reason
          const bogus: TestTable = { name: 'Bogus', columns: [{ name: 'x', datatype: 'int', values: [1] }] };
          await hand(f, 'B00000032', 'P2', [...p2Batch(32, 20), bogus], MD5(32));
          await hand(f, 'B00000033', 'P2', p2Batch(33, 20), MD5(33));
          await hand(f, 'B00000034', 'P2', p2Batch(34, 20), MD5(34));
          await until('B33 to be loaded ahead', async () => (await state(33)) === 'loaded');
          await sleep(300);
          assert.deepEqual([await state(31), await state(32), await state(33), await state(34)], ['merge_worthy', 'failed', 'loaded', 'received']);
          assert.match((await f.client.batch('B00000032')).reasons.join('; '), /no table Bogus/);
        });
      } finally {
        await holder.close();
      }
      for (const n of [31, 33, 34]) assert.equal((await settled(f, `B000000${n}`)).state, 'merged');
      const order = await f.db.all<{ name: string }>(`SELECT name FROM odm_batch WHERE state = 'merged' ORDER BY merged_at, name`);
      assert.deepEqual(order.map((r) => r.name), ['B00000031', 'B00000033', 'B00000034']);
      assert.equal(await count(f, 'SELECT count(*) AS n FROM Detection'), 60);
    }));

    it('with stageAhead off (SQLite\'s way), the next batch waits for the one before', { skip: engine.name !== 'postgres' || partitioned }, () => withOdm(engine, async (f) => {
      await f.odm.close();
      const odm = await Odm.start({ db: f.db, archive: f.archive, retryMs: 50, stageAhead: false });
      const holder = await openDatabase(f.archive.connectionString!, { maxConnections: 1 });
      try {
        await holder.transaction(async (tx) => {
          await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_psps_merge'))");
          for (const n of [41, 42]) {
            const dir = join(f.dir, 'dx', `B000000${n}`);
            await odm.submit({ name: `B000000${n}`, product: 'PSPS_test', type: 'P2', md5: MD5(n), dir, tables: await writeBatchCsv(dir, p2Batch(n, 10)) });
          }
          await until('B41 to wait for its merge', async () => (await odm.status('B00000041')).state === 'merge_worthy');
          await sleep(300);
          assert.equal((await odm.status('B00000042')).state, 'received');
        });
        await odm.idle();
        assert.equal((await odm.status('B00000042')).state, 'merged');
      } finally {
        await holder.close();
        await odm.close();
      }
    }));
  });
}
