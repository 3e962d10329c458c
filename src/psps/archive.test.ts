import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mulberry32, PSPS_SCHEMA_DIR, withTempDir } from '../common/index.ts';
import { testEngines } from '../db/index.ts';
import { angularDistance, coneSearch, openArchive, positionColumns } from './archive.ts';
import { batchSchemaOf } from './schema.ts';

for (const engine of testEngines()) {
  describe(`archive on ${engine.name}`, { skip: engine.skip }, () => {
    it('creates every table of the schema files, idempotently; cone searches agree with the exact distance', () => engine.withUrl((pg) => withTempDir(async (dir) => {
      const url = engine.name === 'sqlite' ? `sqlite:${join(dir, 'archive.db')}` : pg;
      let archive = await openArchive(url, { schemaDir: PSPS_SCHEMA_DIR });
      await archive.close();
      archive = await openArchive(url, { schemaDir: PSPS_SCHEMA_DIR });
      try {
        const names = archive.schema.tables.map((t) => t.name);
        for (const t of ['Filter', 'Survey', 'PhotoCal', 'ObjectThin', 'MeanObject', 'FrameMeta', 'ImageMeta', 'Detection', 'StackMeta', 'StackObjectThin']) {
          assert.ok(names.includes(t), `${t} is an archive table`);
          await archive.db.get(`SELECT count(*) AS n FROM ${t}`);
        }
        // ObjectThin is one table whatever batch type brings it: OB's full columns and P2's stub columns
        const full = archive.table('ObjectThin').columns.map((c) => c.name);
        for (const b of ['P2', 'ST', 'OB']) {
          for (const c of batchSchemaOf(archive.schema, b).tables.find((t) => t.name === 'ObjectThin')!.columns) assert.ok(full.includes(c.name));
        }
        assert.deepEqual(positionColumns(archive.table('ObjectThin')), { ra: 'raMean', dec: 'decMean' });
        assert.deepEqual(positionColumns(archive.table('Detection')), { ra: 'ra', dec: 'dec' });
        assert.equal(archive.q3c, engine.name === 'postgres');
        // objects around RA 0 (wrapping) and near the pole
        const random = mulberry32(5);
        const u = () => random() / 4294967296;
        const objects: [number, number, number][] = [];
        for (let i = 0; i < 400; i++) {
          const near = i % 2 === 0;
          const ra = near ? (360 + (u() - 0.5) * 0.2) % 360 : u() * 360;
          const dec = near ? (u() - 0.5) * 0.2 : 85 + u() * 5;
          objects.push([1000 + i, ra, dec]);
        }
        for (const [id, ra, dec] of objects) {
          await archive.db.run('INSERT INTO ObjectThin (objID, raMean, decMean) VALUES (?, ?, ?)', [id, ra, dec]);
        }
        for (const [ra, dec, r] of [[0.01, 0, 0.05], [359.99, 0.02, 0.08], [10, 89.5, 3], [180, 88, 2.5]]) {
          const got = (await coneSearch(archive, ra, dec, r)).map((row) => Number(row.objID ?? row.objid)).sort((a, b) => a - b);
          const want = objects.filter(([, a, d]) => angularDistance(ra, dec, a, d) <= r).map(([id]) => id).sort((a, b) => a - b);
          assert.ok(want.length > 0, 'the cone holds objects');
          assert.deepEqual(got, want, `cone ${ra} ${dec} ${r}`);
        }
        await assert.rejects(coneSearch(archive, 0, 0, 1, { table: 'Filter' }), { code: 'psps_bad_cone' });
        await assert.rejects(coneSearch(archive, 0, 91, 1), { code: 'psps_bad_cone' });
      } finally {
        await archive.close();
      }
    }, 'ipp-archive-')));
  });
}
