import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { testEngines } from '../db/index.ts';
import { openArchive, type Archive } from './archive.ts';
import { archivedKeys, keyTableName, partitionsInKeyRange } from './key-probe.ts';
import { mergeBatch, partitionName } from './merge.ts';
import { ProblemList } from './problems.ts';
import { batchSchemaOf } from './schema.ts';
import { stageBatch, stagingName } from './stage.ts';
import { referenceHeld, stagingMarks, validateBatch } from './validate.ts';
import { keyTableAgrees, p2Batch, writeBatchCsv, writeBatchFits, writeTestSchema, type TestTable } from './test-support.ts';

const batchName = (i: number) => `B${String(i).padStart(8, '0')}`;

// A P2 batch of frame `frame` whose detections and objects have the given IDs.
function batchOf(frame: number, detectIDs: readonly number[], objIDs: readonly number[]): TestTable[] {
  return p2Batch(frame, detectIDs.length).map((t) => ({
    name: t.name,
    columns: t.columns.map((c) => {
      if (c.name === 'detectID') return { ...c, values: detectIDs.map(BigInt) };
      if (c.name === 'objID') return { ...c, values: objIDs.map(BigInt) };
      return c;
    }),
  }));
}

const range = (from: number, n: number, step = 1) => Array.from({ length: n }, (_, i) => from + i * step);

for (const engine of testEngines().filter((e) => e.name === 'postgres')) {
  describe('key look-ups in an archive partitioned by batch', { skip: engine.skip }, () => {
    // (staged from the batch FITS file by binary COPY with `fits`, else from CSV files)
    type Stage = (name: string, tables: TestTable[], fits?: boolean) => Promise<ProblemList>;
    async function withArchive(fn: (archive: Archive, stage: Stage, reopen: () => Promise<Archive>) => Promise<void>): Promise<void> {
      await engine.withUrl((url) => withTempDir(async (dir) => {
        const schemaDir = await writeTestSchema(join(dir, 'schema'));
        const reopen = () => openArchive(url, { schemaDir, partitionByBatch: true });
        const archive = await reopen();
        const schema = batchSchemaOf(archive.schema, 'P2');
        // staged and validated; the problems validation found
        const stage = async (name: string, tables: TestTable[], fits = false) => {
          const problems = new ProblemList(10);
          const source = fits ? { fits: (await writeBatchFits(join(dir, name), name, 'P2', tables)).fits } : {};
          await stageBatch(archive, name, schema, fits ? [] : await writeBatchCsv(join(dir, name), tables), problems, undefined, source);
          assert.equal(problems.total, 0, problems.reasons().join('; '));
          return validateBatch(archive, name, schema);
        };
        try {
          await fn(archive, stage, reopen);
        } finally {
          await archive.close();
        }
      }, 'ipp-keyprobe-'));
    }

    it('lists exactly the partitions holding a key in the staged range, the default partition among them', () => withArchive(async (archive, stage) => {
      const schema = batchSchemaOf(archive.schema, 'P2');
      // three batches, keys apart: detections 100000.., 200000.., 300000.. (every 10th)
      for (const i of [1, 2, 3]) {
        assert.equal((await stage(batchName(i), batchOf(i, range(i * 100_000, 20, 10), range(i * 100_000, 20)))).total, 0);
        await mergeBatch(archive, batchName(i), 1, schema);
      }
      const holders = async (name: string) => (await partitionsInKeyRange(archive.db, 'Detection', stagingName(name, 'Detection'), 'detectID')).partitions;
      // apart from every batch: none
      assert.equal((await stage(batchName(4), batchOf(4, range(400_000, 20), range(400_000, 20)))).total, 0);
      assert.deepEqual(await holders(batchName(4)), []);
      // inside batch 2's range, between its keys: batch 2's partition alone, and no clash
      assert.equal((await stage(batchName(5), batchOf(5, range(200_001, 20, 10), range(500_000, 20)))).total, 0);
      assert.deepEqual(await holders(batchName(5)), [partitionName(batchName(2), 'Detection')]);
      // a range over batches 2 and 3 (and a key in neither partition's own range)
      assert.equal((await stage(batchName(6), batchOf(6, [150_000, 250_000, 399_999], range(600_000, 3)))).total, 0);
      assert.deepEqual(await holders(batchName(6)), [2, 3].map((i) => partitionName(batchName(i), 'Detection')));
      // a row written other than by a merge lies in the DEFAULT partition, and is found there
      await archive.db.run('INSERT INTO Detection (detectID, frameID, objID, ra, dec, filterID) VALUES (700005, 7, 700005, 10, -5, 2)');
      const found = await stage(batchName(7), batchOf(7, range(700_000, 10), range(700_000, 10)));
      assert.deepEqual(await holders(batchName(7)), ['detection_nobatch']);
      assert.equal(found.total, 1);
      assert.match(found.reasons()[0], /Detection.*row 6.*700005.*in the archive already/s);
      // an empty staged table: none
      await archive.db.exec(`DELETE FROM ${stagingName(batchName(4), 'Detection')}`);
      assert.deepEqual(await holders(batchName(4)), []);
    }));

    it('finds clashing keys deep in another batch\'s range, and keeps shared object stubs once', () => withArchive(async (archive, stage) => {
      const schema = batchSchemaOf(archive.schema, 'P2');
      for (const i of [1, 2]) {
        // objects interleave across batches (odd and even IDs), as those of overlapping fields do
        assert.equal((await stage(batchName(i), batchOf(i, range(i * 100_000, 50), range(1_000 + i, 50, 2)))).total, 0);
        await mergeBatch(archive, batchName(i), 1, schema);
      }
      // two detection keys of batch 1 among new ones in its range: both refused, named with their batch
      const clash = await stage(batchName(3), batchOf(3, [100_007, 100_020, ...range(100_100, 10)], range(5_000, 12)));
      assert.equal(clash.total, 2, clash.reasons().join('; '));
      assert.ok(clash.reasons().every((r) => r.includes(`from batch ${batchName(1)}`)), clash.reasons().join('; '));
      // object stubs: 10 of batch 1's, 10 of batch 2's and 10 new between them
      const objects = [...range(1_001, 10, 2), ...range(1_002, 10, 2), ...range(1_200, 10, 2)];
      assert.equal((await stage(batchName(4), batchOf(4, range(400_000, 30), objects))).total, 0);
      const merged = await mergeBatch(archive, batchName(4), 1, schema);
      assert.equal(merged.rows.ObjectThin, 10);
      const n = await archive.db.get<{ n: number; d: number }>('SELECT count(*) AS n, count(DISTINCT objID) AS d FROM ObjectThin');
      assert.deepEqual([Number(n?.n), Number(n?.d)], [110, 110]);
      await keyTableAgrees(archive, 'ObjectThin', 'objID');
      // the stubs keep the batch that brought them first
      const owners = await archive.db.all<{ b: string; n: number }>(`SELECT odm_batch AS b, count(*) AS n FROM ObjectThin WHERE objID IN (${objects.join(', ')}) GROUP BY odm_batch ORDER BY odm_batch`);
      assert.deepEqual(owners.map((o) => [o.b, Number(o.n)]), [[batchName(1), 10], [batchName(2), 10], [batchName(4), 10]]);
    }));

    it('looks stub keys and references up in the key table, rows written by hand too; an archive without one gets it', () => withArchive(async (archive, stage, reopen) => {
      const schema = batchSchemaOf(archive.schema, 'P2');
      assert.deepEqual([...archive.keyed].sort(), ['filter', 'meanobject', 'objectthin']);
      assert.equal((await stage(batchName(1), batchOf(1, range(100_000, 20), range(1_000, 20)))).total, 0);
      await mergeBatch(archive, batchName(1), 1, schema);
      // a stub written by hand (DEFAULT partition) and one merged: both kept once
      await archive.db.run('INSERT INTO ObjectThin (objID, ra, dec) VALUES (5000, 10, -5)');
      assert.equal((await stage(batchName(2), batchOf(2, range(200_000, 3), [1_005, 5_000, 6_000]))).total, 0);
      assert.equal((await mergeBatch(archive, batchName(2), 1, schema)).rows.ObjectThin, 1);
      assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM ObjectThin WHERE objID IN (1005, 5000, 6000)'))?.n), 3);
      await keyTableAgrees(archive, 'ObjectThin', 'objID');
      // detections whose objects are not in their batch: merged already, written by hand, or nowhere
      const refs = batchOf(3, range(300_000, 3), [1_001, 5_000, 7_777]).map((t) => t.name === 'ObjectThin'
        ? { ...t, columns: t.columns.map((c) => ({ ...c, values: c.values.slice(0, 0) })) } : t);
      const found = await stage(batchName(3), refs);
      assert.equal(found.total, 1, found.reasons().join('; '));
      assert.match(found.reasons()[0], /Detection\.objID row 3: "7777" breaks reference/);
      // an archive partitioned before key tables existed gets one, holding its batch partitions' keys
      await archive.db.exec(`DROP TABLE ${keyTableName('ObjectThin')}`);
      const again = await reopen();
      try {
        assert.ok(again.keyed.has('objectthin'));
        await keyTableAgrees(again, 'ObjectThin', 'objID');
      } finally {
        await again.close();
      }
    }));

    it('stages from the batch FITS file only the object stubs the archive lacks; a stub merged meanwhile is still kept once', () => withArchive(async (archive, stage) => {
      const schema = batchSchemaOf(archive.schema, 'P2');
      const staged = async (name: string) => Number((await archive.db.get<{ n: number }>(`SELECT count(*) AS n FROM ${stagingName(name, 'ObjectThin')}`))?.n);
      assert.equal((await stage(batchName(1), batchOf(1, range(100_000, 100), range(1_000, 100)), true)).total, 0);
      await mergeBatch(archive, batchName(1), 1, schema);
      // half of batch 2's objects are archived: their stubs are not staged, and the detections
      // pointing at them pass validation (found in the archive)
      assert.equal((await stage(batchName(2), batchOf(2, range(200_000, 100), range(1_050, 100)), true)).total, 0);
      assert.equal(await staged(batchName(2)), 50);
      assert.equal(Number((await archive.db.get<{ lo: number }>(`SELECT min(objID) AS lo FROM ${stagingName(batchName(2), 'ObjectThin')}`))?.lo), 1_100);
      // batch 3 shares 30 objects with batch 2, which merges after batch 3 was staged
      assert.equal((await stage(batchName(3), batchOf(3, range(300_000, 60), [...range(1_100, 30), ...range(5_000, 30)]), true)).total, 0);
      assert.equal(await staged(batchName(3)), 60);
      assert.equal((await mergeBatch(archive, batchName(2), 1, schema)).rows.ObjectThin, 50);
      assert.equal((await mergeBatch(archive, batchName(3), 1, schema)).rows.ObjectThin, 30);
      const n = await archive.db.get<{ n: number; d: number }>('SELECT count(*) AS n, count(DISTINCT objID) AS d FROM ObjectThin');
      assert.deepEqual([Number(n?.n), Number(n?.d)], [180, 180]);
      assert.equal(Number((await archive.db.get<{ n: number }>('SELECT count(*) AS n FROM Detection'))?.n), 260);
      await keyTableAgrees(archive, 'ObjectThin', 'objID');
      // a batch whose objects are all archived stages no stub, and merges its detections
      assert.equal((await stage(batchName(4), batchOf(4, range(400_000, 20), range(1_000, 20)), true)).total, 0);
      assert.equal(await staged(batchName(4)), 0);
      assert.equal((await mergeBatch(archive, batchName(4), 1, schema)).rows.Detection, 20);
      // the stage proved the detections' objIDs are the batch's own stubs (staged or left out),
      // so validation skipped their look-up; frameID, whose table left nothing out, it did not
      const held = referenceHeld('objID', 'ObjectThin');
      assert.equal((await stage(batchName(5), batchOf(5, range(500_000, 20), range(1_010, 20)), true)).total, 0);
      const marks = await stagingMarks(archive.db, stagingName(batchName(5), 'Detection'));
      assert.ok(marks.has(held), [...marks].join('; '));
      assert.ok(!marks.has(referenceHeld('frameID', 'FrameMeta')));
      // objIDs not among the batch's stubs: no proof; the look-up finds the archived one and
      // refuses the one that is nowhere
      const stray = batchOf(6, range(600_000, 20), range(1_020, 20)).map((t) => t.name === 'Detection'
        ? { ...t, columns: t.columns.map((c) => (c.name === 'objID' ? { ...c, values: [...c.values.slice(0, 18), 1_140n, 9_999n] } : c)) } : t);
      const found = await stage(batchName(6), stray, true);
      assert.ok(!(await stagingMarks(archive.db, stagingName(batchName(6), 'Detection'))).has(held));
      assert.equal(found.total, 1, found.reasons().join('; '));
      assert.match(found.reasons()[0], /Detection\.objID row 20: "9999" breaks reference/);
    }));

    it('tells which keys the key table holds, unless too few of a sample are', () => withArchive(async (archive, stage) => {
      const schema = batchSchemaOf(archive.schema, 'P2');
      // archived: the even keys 1,000..6,998
      assert.equal((await stage(batchName(1), batchOf(1, range(100_000, 3_000), range(1_000, 3_000, 2)))).total, 0);
      await mergeBatch(archive, batchName(1), 1, schema);
      const look = (keys: number[]) => archivedKeys(archive.db, 'ObjectThin', 'objID', BigInt64Array.from(keys.map(BigInt)));
      // 4,096 keys, half of them archived, the rows' order kept
      const keys = range(1_000, 4_096).reverse();
      const mask = await look(keys);
      assert.ok(mask !== undefined);
      assert.deepEqual([...mask], keys.map((k) => (k % 2 === 0 ? 1 : 0)));
      // 50 of 4,096 archived: under a quarter of the sample, not worth looking them all up
      assert.equal(await look([...range(1_000, 50, 2), ...range(2_000_000, 4_046)]), undefined);
      // keys apart from the archive's, and keys among them that it lacks
      assert.equal(await look(range(20_000, 100)), undefined);
      assert.equal(await look(range(1_001, 100, 2)), undefined);
      assert.equal(await look([]), undefined);
    }));
  });
}
