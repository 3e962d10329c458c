import assert from 'node:assert/strict';
import { appendFile, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { columnInfo, memoryTable, type Table } from '../table/index.ts';
import { parseColumnDefs } from './column-defs.ts';
import { FitsFile } from './fits-file.ts';
import { writeFits } from './fits-writer.ts';
import { Header } from './header.ts';
import { scanHdus, scannedColumnDefs, type ScannedHdu } from './header-scan.ts';

function table(name: string, n: number): Table {
  const infos = [columnInfo('ID', 'int64'), columnInfo('FLUX', 'float32'), columnInfo('NAME', 'string', { width: 6 }), columnInfo('FLAGS', 'uint16')];
  return memoryTable(infos, [{
    rowCount: n,
    columns: [
      { values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 1_000_000_007n) },
      { values: Float32Array.from({ length: n }, (_, i) => i / 7) },
      { values: Array.from({ length: n }, (_, i) => `s${i}`) },
      { values: Uint16Array.from({ length: n }, (_, i) => (i * 977) % 65536) },
    ],
  }], { name });
}

// A file of a primary HDU and two tables, with keywords of every value type and a HIERARCH one
async function sample(path: string, extra: Header = new Header()): Promise<void> {
  const primary = new Header().set('OBSERVER', 'ps1 survey').set('EXPTIME', 30.5).set('NCHIPS', 60).set('DONE', true).set('FPA.FILTER', 'r.00000');
  for (const c of extra.cards) primary.add(c);
  await writeFits(path, [
    { table: table('CHIP_A', 25), header: new Header().set('EXTNAME', 'XY01.psf').set('ZPT_OBS', 24.75).set('IMAGEID', 1234567) },
    { table: table('CHIP_B', 3), header: new Header().set('EXTNAME', 'XY02.psf').set('ZPT_OBS', -1.5) },
  ], { primaryHeader: primary });
}

test('header scan: the same HDUs, keyword values and column definitions as FitsFile', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'a.fits');
    await sample(path);
    const scanned = await scanHdus(path);
    assert.ok(scanned, 'the scan takes a plain file');
    const file = await FitsFile.open(path);
    try {
      assert.equal(scanned.length, file.hdus.length);
      for (const [i, h] of file.hdus.entries()) {
        const s: ScannedHdu = scanned[i];
        assert.deepEqual([s.index, s.kind, s.extname, s.rows, s.dataStart], [h.index, h.kind, h.extname, h.rows, h.dataStart], `HDU ${i}`);
        for (const card of h.header.cards) {
          if (card.keyword === '' || card.keyword === 'COMMENT' || card.keyword === 'HISTORY') continue;
          assert.deepEqual(s.header.get(card.keyword), h.header.get(card.keyword), `HDU ${i} ${card.keyword}`);
        }
        assert.equal(s.header.get('NOSUCHKEY'), undefined);
        if (h.kind === 'bintable') assert.deepEqual(scannedColumnDefs(s), parseColumnDefs(h.header, { file: path, hdu: i }));
      }
      // lower case asked for is found as upper case, as Header.get finds it
      assert.equal(scanned[0].header.get('fpa.filter'), 'r.00000');
      assert.equal(scanned[1].header.get('imageid'), 1234567);
    } finally {
      await file.close();
    }
    // up to 79 stray bytes after the last HDU are ignored, as FitsFile ignores them
    await appendFile(path, 'x'.repeat(40));
    assert.equal((await scanHdus(path))?.length, 3);
  });
});

test('header scan: gives up (undefined) on what it does not read exactly as FitsFile, and on damage', async () => {
  await withTempDir(async (dir) => {
    // a long string (CONTINUE cards)
    const long = join(dir, 'long.fits');
    await sample(long, new Header().set('LONGSTR', 'x'.repeat(150)));
    assert.equal(await scanHdus(long), undefined);
    // a lower-case keyword (legal, but looked up otherwise), patched into the primary header
    const lower = join(dir, 'lower.fits');
    await sample(lower);
    const bytes = await readFile(lower);
    const at = bytes.indexOf('NCHIPS  = ');
    assert.ok(at > 0 && at % 80 === 0);
    bytes.write('nchips', at, 'latin1');
    await writeFile(lower, bytes);
    assert.equal(await scanHdus(lower), undefined);
    // a byte that is not printable in a header
    const control = join(dir, 'control.fits');
    bytes.write('NCHIPS', at, 'latin1');
    bytes[at + 40] = 0x07;
    await writeFile(control, bytes);
    assert.equal(await scanHdus(control), undefined);
    // an empty file (no primary HDU)
    const empty = join(dir, 'empty.fits');
    await writeFile(empty, '');
    assert.equal(await scanHdus(empty), undefined);
    // a table whose data the file does not hold
    const cut = join(dir, 'cut.fits');
    await sample(cut);
    const file = await FitsFile.open(cut);
    const last = file.hdus[2];
    await file.close();
    await truncate(cut, last.dataStart + 10);
    assert.equal(await scanHdus(cut), undefined);
    // not FITS, and no file at all
    const text = join(dir, 'text.fits');
    await writeFile(text, 'SIMPLE? no, just text\n'.repeat(200));
    assert.equal(await scanHdus(text), undefined);
    assert.equal(await scanHdus(join(dir, 'missing.fits')), undefined);
  });
});
