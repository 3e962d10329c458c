import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitsFile, writeFits } from '../../fits/index.ts';
import { columnInfo, memoryTable, type ColumnType } from '../../table/index.ts';
import { readSourceColumns, type ColumnDefsCache } from './common.ts';

let root = '';
before(async () => { root = await mkdtemp(join(tmpdir(), 'batch-common-test-')); });
after(async () => { if (root) await rm(root, { recursive: true, force: true }); });

function chip(name: string, types: ColumnType[], rows: number, base: number) {
  const infos = ['IPP_IDET', 'X_PSF', 'FLAGS'].map((n, k) => columnInfo(n, types[k]));
  const values = infos.map((c, k) => {
    const a = c.type === 'float64' ? new Float64Array(rows) : c.type === 'float32' ? new Float32Array(rows) : c.type === 'uint32' ? new Uint32Array(rows) : new Int32Array(rows);
    for (let i = 0; i < rows; i++) a[i] = base + i * (k + 1) + (k === 1 ? 0.25 : 0);
    return { values: a };
  });
  return { table: memoryTable(infos, [{ rowCount: rows, columns: values }], { name }) };
}

test('readSourceColumns: chips with the same column cards share parsed definitions; a chip with other cards gets its own', async () => {
  const path = join(root, 'chips.fits');
  await writeFits(path, [
    chip('XY01.psf', ['uint32', 'float32', 'uint32'], 5, 10),
    chip('XY02.psf', ['uint32', 'float32', 'uint32'], 3, 20),
    // Same names, other types: the cached definitions of XY01 would decode it wrongly.
    chip('XY03.psf', ['uint32', 'float64', 'int32'], 4, 30),
  ]);
  const file = await FitsFile.open(path);
  try {
    const cache: ColumnDefsCache = new Map();
    const got = [];
    for (const h of file.hdus.slice(1)) got.push(await readSourceColumns(file, h, ['IPP_IDET', 'X_PSF', 'FLAGS', 'NOT_THERE'], ['IPP_IDET'], cache));
    assert.equal(cache.size, 2, 'XY01 and XY02 share one entry, XY03 has its own');
    assert.deepEqual(got.map((g) => g.rows), [5, 3, 4]);
    assert.deepEqual(Array.from(got[1].columns.X_PSF!), [20.25, 22.25, 24.25]);
    assert.ok(got[2].columns.X_PSF instanceof Float64Array);
    assert.deepEqual(Array.from(got[2].columns.FLAGS!), [30, 33, 36, 39]);
    assert.equal(got[0].columns.NOT_THERE, undefined);
    // The same answers as without the cache.
    for (const [k, h] of file.hdus.slice(1).entries()) {
      const plain = await readSourceColumns(file, h, ['IPP_IDET', 'X_PSF', 'FLAGS'], ['IPP_IDET']);
      for (const n of ['IPP_IDET', 'X_PSF', 'FLAGS']) assert.deepEqual(Array.from(plain.columns[n]!), Array.from(got[k].columns[n]!), `${h.extname} ${n}`);
    }
  } finally {
    await file.close();
  }
});
