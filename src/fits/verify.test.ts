import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { columnInfo, memoryTable } from '../table/index.ts';
import { FitsFile, verifyFits, writeFits } from './index.ts';
import { withTempDir } from '../common/index.ts';

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir(fn, 'ipp-verify-');

const table = memoryTable(
  [columnInfo('id', 'int32'), columnInfo('name', 'string', { width: 6 }), columnInfo('vals', 'float64', { variable: true })],
  [{
    rowCount: 3,
    columns: [
      { values: new Int32Array([1, 2, 3]) },
      { values: ['alpha', 'beta', 'gamma'] },
      { values: new Float64Array([1, 2, 3, 4]), offsets: new Int32Array([0, 1, 1, 4]) },
    ],
  }],
  { name: 'T' },
);

test('a file we write verifies clean: checksums checked, every row decoded', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'ok.fits');
    await writeFits(path, [{ table }]);
    const report = await verifyFits(path);
    assert.deepEqual(report.problems, []);
    assert.equal(report.hdus, 2);
    assert.equal(report.checksumsChecked, 2);
    assert.equal(report.rowsDecoded, 3);
  });
});

test('damage is found and named: data byte, string byte, heap pointer, truncation, not FITS', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'ok.fits');
    await writeFits(path, [{ table }]);
    const good = await readFile(path);
    const f = await FitsFile.open(path);
    const h = f.hdus[1];
    await f.close();
    const rowBytes = 4 + 6 + 8;

    // A flipped bit in the id column: only the checksum can tell.
    const flipped = Buffer.from(good);
    flipped[h.dataStart + 3] ^= 1;
    await writeFile(join(dir, 'flip.fits'), flipped);
    let r = await verifyFits(join(dir, 'flip.fits'));
    assert.ok(r.problems.some((p) => p.code === 'fits_bad_datasum' && p.hdu === 1 && p.message.includes('flip.fits')), JSON.stringify(r.problems));

    // A non-ASCII byte in a string.
    const nonAscii = Buffer.from(good);
    nonAscii[h.dataStart + rowBytes + 4] = 0xe9;
    await writeFile(join(dir, 'str.fits'), nonAscii);
    r = await verifyFits(join(dir, 'str.fits'));
    assert.ok(r.problems.some((p) => p.code === 'fits_bad_string' && /column name/.test(p.message)), JSON.stringify(r.problems));

    // A heap pointer far outside the heap (descriptor of row 3: count then offset).
    const heapBad = Buffer.from(good);
    heapBad.writeInt32BE(1_000_000, h.dataStart + 2 * rowBytes + 10 + 4);
    await writeFile(join(dir, 'heap.fits'), heapBad);
    r = await verifyFits(join(dir, 'heap.fits'));
    assert.ok(r.problems.some((p) => p.code === 'fits_bad_heap' && /column vals/.test(p.message)), JSON.stringify(r.problems));

    // A character in the header's fill after END.
    const fill = Buffer.from(good);
    fill[h.dataStart - 1] = 0x58;
    await writeFile(join(dir, 'fill.fits'), fill);
    r = await verifyFits(join(dir, 'fill.fits'));
    assert.ok(r.problems.some((p) => p.code === 'fits_bad_padding' && p.hdu === 1 && /fill after END/.test(p.message)), JSON.stringify(r.problems));

    // Cut short in the data.
    await writeFile(join(dir, 'cut.fits'), good.subarray(0, h.dataStart + 10));
    r = await verifyFits(join(dir, 'cut.fits'));
    assert.equal(r.errors, 1);
    assert.equal(r.problems[0].code, 'fits_truncated');

    await writeFile(join(dir, 'text.fits'), 'hello, not a FITS file at all\n');
    r = await verifyFits(join(dir, 'text.fits'));
    assert.equal(r.problems[0].code, 'fits_not_fits');
    assert.equal(r.errors, 1);
  });
});
