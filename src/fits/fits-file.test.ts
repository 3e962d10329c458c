import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { collectTable, columnInfo, memoryTable, type ColumnBatch, type Table } from '../table/index.ts';
import { isIppError } from '../common/index.ts';
import { NotFitsError } from './errors.ts';
import { FitsFile, headerParams } from './fits-file.ts';
import { writeFits } from './fits-writer.ts';
import { BLOCK, Header } from './header.ts';
import { astropyColumns, astropyColumnsOf, astropyFiles, PYTHON } from './testing/external.ts';
import { fitsError } from './testing/assertions.ts';

const dir = await mkdtemp(join(tmpdir(), 'fits-file-'));
after(async () => { await rm(dir, { recursive: true, force: true }); });

function python(script: string, ...args: string[]): string {
  return execFileSync(PYTHON, ['-c', script, ...args]).toString();
}

async function compareWithAstropy(file: FitsFile, index: number, theirs: Record<string, unknown[]>): Promise<void> {
  const t = file.table(index);
  const ours = astropyColumnsOf(t.columns, await collectTable(t));
  assert.deepEqual(Object.keys(ours), Object.keys(theirs));
  for (const [c, info] of t.columns.entries()) {
    const mine = ours[info.name];
    const want = theirs[info.name];
    if (want.length === 0 && t.rowCount! > 0 && info.shape.includes(0)) {
      // astropy hands out a zero-width column (e.g. 0D) as an empty column; each of our cells is empty.
      assert.ok(mine.every((cell) => Array.isArray(cell) && cell.length === 0), `${info.name}`);
      continue;
    }
    assert.deepEqual(mine, want, `column ${c + 1} (${info.name})`);
  }
}

// astropy's own test files, plain and gzipped (unzipped here so that both readers see the same bytes).
const shipped = execFileSync('find', ['/usr/lib/python3/dist-packages/astropy', '-name', '*.fits', '-o', '-name', '*.fits.gz'])
  .toString().trim().split('\n').filter(Boolean).sort();
const localCopy = new Map<string, string>();
for (const path of shipped) {
  if (!path.endsWith('.gz')) { localCopy.set(path, path); continue; }
  const local = join(dir, path.replace('/usr/lib/python3/dist-packages/', '').replace(/\//g, '_').replace(/\.gz$/, ''));
  await writeFile(local, gunzipSync(await readFile(path)));
  localCopy.set(path, local);
}
const astropySees = await astropyFiles([...localCopy.values()]);

describe('the FITS files shipped with astropy', () => {
  assert.ok(shipped.length > 20, 'astropy ships its test files');
  for (const path of shipped) {
    const short = path.replace('/usr/lib/python3/dist-packages/', '');
    const seen = astropySees[localCopy.get(path)!];
    if (seen.error !== undefined) {
      test(`${short}: skipped, astropy itself cannot read it (${seen.error.slice(0, 60)})`, { skip: true }, () => {});
      continue;
    }
    test(`${short}: same HDU layout as astropy; binary tables hold the same values`, async () => {
      await using file = await FitsFile.open(localCopy.get(path)!);
      const hdus = seen.hdus!;
      assert.deepEqual(
        file.hdus.map((h, i) => [h.headerStart, h.dataStart, hdus[i]?.nonstandard ? 'any' : Math.ceil(h.dataBytes / BLOCK) * BLOCK]),
        hdus.map((h) => [h.headerStart, h.dataStart, h.nonstandard ? 'any' : h.dataSpan]),
      );
      let tables = 0;
      for (const h of file.hdus) {
        assert.equal(h.kind === 'bintable', hdus[h.index].columns !== undefined, `HDU ${h.index} is ${h.kind}`);
        if (h.kind !== 'bintable') continue;
        await compareWithAstropy(file, h.index, hdus[h.index].columns!);
        tables++;
      }
      if (file.hdus.some((h) => h.kind === 'bintable')) assert.ok(tables > 0);
    });
  }
  test('the shipped files include binary tables of many kinds', () => {
    const tables = Object.values(astropySees).flatMap((f) => f.hdus ?? []).filter((h) => h.columns);
    assert.ok(tables.length >= 15, `${tables.length} binary tables`);
  });
});

describe('a file made by astropy with images before and between tables', () => {
  let path: string;
  before(() => {
    path = join(dir, 'mixed.fits');
    python(String.raw`
import sys, numpy as np
from astropy.io import fits
p = fits.PrimaryHDU(np.arange(100, dtype='>i2').reshape(10, 10))
t1 = fits.BinTableHDU.from_columns([
    fits.Column(name='ID', format='J', array=np.arange(5)),
    fits.Column(name='NAME', format='8A', array=['a', 'bb', 'ccc', 'dddd', 'e'])], name='FIRST')
img = fits.ImageHDU(np.ones((2, 3, 7), dtype='>f4'), name='IMG')
t2 = fits.BinTableHDU.from_columns([
    fits.Column(name='V', format='PJ()', array=np.array([np.arange(i, dtype='>i4') for i in range(4)], dtype=object)),
    fits.Column(name='U', format='I', bzero=32768, array=np.array([0, 1, 40000, 65535], dtype='u2'))], name='SECOND')
t2.header['EXTVER'] = 2
t2.header['OBSERVER'] = ('someone', 'who looked')
t2.header['EXPTIME'] = 30.5
t2.header['HISTORY'] = 'made for a test'
img64 = fits.ImageHDU(np.arange(5, dtype='>i8'), name='IMG64')
fits.HDUList([p, t1, img, t2, img64]).writeto(sys.argv[1])
`, path);
  });

  test('HDU kinds, names, sizes and values', async () => {
    await using file = await FitsFile.open(path);
    assert.deepEqual(file.hdus.map((h) => h.kind), ['primary', 'bintable', 'image', 'bintable', 'image']);
    assert.deepEqual(file.hdus.map((h) => h.extname), [undefined, 'FIRST', 'IMG', 'SECOND', 'IMG64']);
    assert.deepEqual(file.hdus.map((h) => h.dataBytes), [200, 60, 168, 4 * 10 + 6 * 4, 40]);
    assert.deepEqual(file.hdus.map((h) => h.rows), [undefined, 5, undefined, 4, undefined]);
    assert.equal(file.hdus.at(-1)!.dataStart + BLOCK, (await stat(path)).size);
    await compareWithAstropy(file, 1, await astropyColumns(path, 1));
    await compareWithAstropy(file, 3, await astropyColumns(path, 3));
    assert.deepEqual(file.hdu('second').columns?.map((c) => c.type), ['int32', 'uint16']);
    assert.equal(file.find('SECOND', 2).index, 3);
    assert.throws(() => file.find('SECOND', 1), fitsError('fits_no_such_hdu', /FIRST/, /SECOND,2/, /IMG64/));
    assert.throws(() => file.table('IMG'), fitsError('fits_not_a_table', /HDU 2 \(IMG\)/));
  });

  test('non-structural keywords become params; the table is named after EXTNAME', async () => {
    await using file = await FitsFile.open(path);
    const t = file.table('SECOND');
    assert.equal(t.name, 'SECOND');
    assert.equal(t.rowCount, 4);
    const params = t.params ?? [];
    assert.deepEqual(params.find((p) => p.name === 'OBSERVER'), { name: 'OBSERVER', value: 'someone', description: 'who looked' });
    assert.deepEqual(params.find((p) => p.name === 'EXPTIME')?.value, 30.5);
    assert.deepEqual(params.filter((p) => p.name === 'HISTORY').map((p) => p.value), ['made for a test']);
    assert.equal(params.find((p) => p.name === 'EXTVER')?.value, 2);
    for (const p of params) assert.doesNotMatch(p.name, /^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|T(TYPE|FORM|ZERO)\d+|EXTNAME)$/);
  });
});

/** A small table with a string and a variable-length column, written by our writer. */
function sampleTable(rows = 5): Table {
  const infos = [columnInfo('ID', 'int32'), columnInfo('NAME', 'string', { width: 8 }), columnInfo('ARR', 'float32', { variable: true })];
  const offsets = Int32Array.from({ length: rows + 1 }, (_, i) => i * (i - 1) / 2);
  const batch: ColumnBatch = {
    rowCount: rows,
    columns: [
      { values: Int32Array.from({ length: rows }, (_, i) => i + 1) },
      { values: Array.from({ length: rows }, (_, i) => `row${i + 1}`) },
      { values: Float32Array.from({ length: offsets[rows] }, (_, i) => i / 2), offsets },
    ],
  };
  return memoryTable(infos, [batch], { name: 'SAMPLE' });
}

async function sampleFile(name: string): Promise<{ path: string; bytes: Buffer; dataStart: number; headerStart: number }> {
  const path = join(dir, name);
  await writeFits(path, [{ table: sampleTable() }]);
  await using f = await FitsFile.open(path);
  return { path, bytes: await readFile(path), dataStart: f.hdus[1].dataStart, headerStart: f.hdus[1].headerStart };
}

describe('broken files give typed errors naming file, HDU and keyword or column', () => {
  test('not FITS at all', async () => {
    const path = join(dir, 'notfits.txt');
    await writeFile(path, 'hello, this is text and not FITS at all\n'.repeat(100));
    await assert.rejects(FitsFile.open(path), (e: unknown) => e instanceof NotFitsError && e.code === 'fits_not_fits' && e.message.includes(path));
    await assert.rejects(FitsFile.fromBytes(new Uint8Array(0), 'empty'), (e: unknown) => e instanceof NotFitsError);
    await assert.rejects(FitsFile.open(join(dir, 'missing.fits')), fitsError('fits_cannot_open', /missing\.fits/));
  });

  test('truncated data: the missing bytes are counted', async () => {
    const { bytes, path } = await sampleFile('trunc-src.fits');
    const cut = join(dir, 'trunc.fits');
    await writeFile(cut, bytes.subarray(0, bytes.length - BLOCK + 10));
    await assert.rejects(FitsFile.open(cut), fitsError('fits_truncated', /trunc\.fits: HDU 1 \(SAMPLE\)/, /bytes short/));
    assert.ok(path);
  });

  test('a header without END', async () => {
    const cards = ['SIMPLE  =                    T', 'BITPIX  =                    8', 'NAXIS   =                    0'];
    const text = cards.map((c) => c.padEnd(80)).join('').padEnd(BLOCK, ' ');
    await assert.rejects(FitsFile.fromBytes(Buffer.from(text, 'latin1'), 'noend.fits'), fitsError('fits_header_no_end', /noend\.fits: HDU 0/));
    const { bytes, dataStart } = await sampleFile('noend-src.fits');
    // The extension's header loses its END card: blank it out.
    const damaged = Buffer.from(bytes);
    const header = damaged.subarray(0, dataStart).toString('latin1');
    const end = header.lastIndexOf('END     ');
    damaged.write(' '.repeat(80), end, 'latin1');
    await assert.rejects(FitsFile.fromBytes(damaged.subarray(0, dataStart), 'noend2.fits'), fitsError('fits_header_no_end', /HDU 1/));
  });

  test('a header with bytes that are not ASCII', async () => {
    const { bytes, headerStart } = await sampleFile('nonascii-header.fits');
    const damaged = Buffer.from(bytes);
    damaged[headerStart + 80 * 10 + 20] = 0xe9;
    await assert.rejects(FitsFile.fromBytes(damaged, 'h.fits'), fitsError('fits_bad_header', /h\.fits: HDU 1/));
  });

  test('wrong NAXIS1, and a TFORM that does not fit NAXIS1', async () => {
    const { bytes } = await sampleFile('naxis1.fits');
    const edit = (from: string, to: string): Buffer => {
      const text = bytes.toString('latin1');
      const i = text.indexOf(from, BLOCK);
      assert.ok(i > 0, from);
      const out = Buffer.from(bytes);
      out.write(to.padEnd(from.length), i, 'latin1');
      return out;
    };
    const wrong = await FitsFile.fromBytes(edit('NAXIS1  =                   20', 'NAXIS1  =                   16'), 'n.fits');
    assert.throws(() => wrong.table(1), fitsError('fits_bad_naxis1', /n\.fits: HDU 1 \(SAMPLE\): keyword NAXIS1/, /NAXIS1 = 16/, /20 bytes/));
    const wide = await FitsFile.fromBytes(edit("TFORM1  = '1J      '", "TFORM1  = '2J      '"), 'w.fits');
    assert.throws(() => wide.table(1), fitsError('fits_bad_naxis1', /w\.fits: HDU 1 \(SAMPLE\)/, /NAXIS1 = 20/, /24 bytes/));
    const bad = await FitsFile.fromBytes(edit("TFORM1  = '1J      '", "TFORM1  = '1W      '"), 'b.fits');
    assert.throws(() => bad.table(1), fitsError('fits_bad_tform', /b\.fits: HDU 1 \(SAMPLE\): keyword TFORM1: column ID/));
  });

  test('non-ASCII bytes in a string column', async () => {
    const { bytes, dataStart } = await sampleFile('nonascii.fits');
    const damaged = Buffer.from(bytes);
    damaged[dataStart + 2 * 20 + 4 + 1] = 0xc3; // row 3, NAME, second character
    await using f = await FitsFile.fromBytes(damaged, 's.fits');
    await assert.rejects(collectTable(f.table(1)), fitsError('fits_bad_string', /s\.fits: HDU 1 \(SAMPLE\): column NAME: row 3/));
    // Columns that do not include it read fine.
    assert.equal((await collectTable(f.table(1), { columns: ['ID'] })).rowCount, 5);
  });

  test('a heap pointer outside the heap', async () => {
    const { bytes, dataStart } = await sampleFile('heap.fits');
    const damaged = Buffer.from(bytes);
    damaged.writeUInt32BE(1_000_000, dataStart + 4 * 20 + 12 + 4); // row 5, ARR descriptor offset
    await using f = await FitsFile.fromBytes(damaged, 'p.fits');
    await assert.rejects(collectTable(f.table(1)), fitsError('fits_bad_heap', /p\.fits: HDU 1 \(SAMPLE\): column ARR: row 5/, /outside the heap/));
  });

  test('bad CHECKSUM and DATASUM', async () => {
    const { bytes, dataStart } = await sampleFile('sums.fits');
    {
      await using f = await FitsFile.fromBytes(bytes, 'ok.fits');
      for (const h of f.hdus) assert.deepEqual(await f.verifyChecksums(h.index), []);
    }
    const damaged = Buffer.from(bytes);
    damaged[dataStart + 1] ^= 0x40;
    await using f = await FitsFile.fromBytes(damaged, 'bad.fits');
    const problems = await f.verifyChecksums(1);
    assert.deepEqual(problems.map((p) => p.code), ['fits_bad_datasum', 'fits_bad_checksum']);
    assert.match(problems[1].message, /bad\.fits: HDU 1 \(SAMPLE\): keyword CHECKSUM/);
    const astropyBad = '/usr/lib/python3/dist-packages/astropy/io/fits/tests/data/checksum_false.fits';
    await using g = await FitsFile.open(astropyBad);
    assert.ok((await g.verifyChecksums(1)).some((p) => p.code === 'fits_bad_checksum'));
    await using ok = await FitsFile.open('/usr/lib/python3/dist-packages/astropy/io/fits/tests/data/checksum.fits');
    for (const h of ok.hdus) assert.deepEqual(await ok.verifyChecksums(h.index), [], `astropy's checksum.fits HDU ${h.index}`);
  });

  test('a malformed value in a descriptive keyword is kept as text; in a structural one it is an error', async () => {
    const cards = (naxis: string) => ['SIMPLE  =                    T', 'BITPIX  =                    8', `NAXIS   = ${naxis}`,
      'SKEW    = -1.3869888376036E+00, -1.6912592180432E+00 / two numbers', 'END'];
    const file = (naxis: string) => Buffer.from(cards(naxis).map((c) => c.padEnd(80)).join('').padEnd(BLOCK, ' '), 'latin1');
    await using f = await FitsFile.fromBytes(file('                   0'), 'skew.fits');
    assert.equal(f.hdus[0].header.get('SKEW'), '-1.3869888376036E+00, -1.6912592180432E+00');
    await assert.rejects(FitsFile.fromBytes(file('                 0.x'), 'naxis.fits'), fitsError('fits_bad_keyword', /naxis\.fits: HDU 0: keyword NAXIS/));
  });

  test('billions of zero-width rows are refused instead of read for ever', async () => {
    const ext = new Header().set('XTENSION', 'BINTABLE').set('BITPIX', 8).set('NAXIS', 2).set('NAXIS1', 0).set('NAXIS2', 3_000_000_000)
      .set('PCOUNT', 0).set('GCOUNT', 1).set('TFIELDS', 1).set('TTYPE1', 'NONE').set('TFORM1', '0J');
    const primary = new Header().set('SIMPLE', true).set('BITPIX', 8).set('NAXIS', 0).set('EXTEND', true);
    await using f = await FitsFile.fromBytes(Buffer.concat([primary.toBytes(), ext.toBytes()]), 'z.fits');
    assert.equal(f.hdus[1].rows, 3_000_000_000);
    assert.throws(() => f.table(1), fitsError('fits_bad_keyword', /z\.fits: HDU 1: keyword NAXIS2/));
  });

  test('a binary table with a bad structural keyword', async () => {
    const { bytes } = await sampleFile('gcount.fits');
    const text = bytes.toString('latin1');
    const i = text.indexOf('GCOUNT  =                    1');
    const damaged = Buffer.from(bytes);
    damaged.write('GCOUNT  =                    2', i, 'latin1');
    await assert.rejects(FitsFile.fromBytes(damaged, 'g.fits'), fitsError('fits_bad_keyword', /g\.fits: HDU 1 \(SAMPLE\): keyword GCOUNT/));
  });

  test('a tile-compressed table is recognised but not read here', async () => {
    const path = join(dir, 'tocompress.fits');
    const n = 300;
    await writeFits(path, [{ table: memoryTable([columnInfo('a', 'int32'), columnInfo('b', 'float64')], [{ rowCount: n, columns: [{ values: Int32Array.from({ length: n }, (_, i) => i) }, { values: Float64Array.from({ length: n }, (_, i) => i / 3) }] }], { name: 'PACKED' }) }]);
    execFileSync('fpack', ['-table', path], { stdio: 'ignore' });
    await using f = await FitsFile.open(`${path}.fz`);
    assert.equal(f.hdus[1].kind, 'compressed-table');
    assert.equal(f.hdus[1].rows, n);
    assert.throws(() => f.table('PACKED'), fitsError('fits_compressed', /HDU 1 \(PACKED\)/));
    // Its own rows (the compressed tiles) can still be described, for the decompressor.
    assert.ok(f.columnDefs(1).defs.every((d) => d.code === 'P' || d.code === 'Q'));
  });
});

describe('mutated files (a small deterministic fuzz)', () => {
  test('every damaged copy of a file opens and reads, or fails with a typed error', async () => {
    const infos = [
      columnInfo('ID', 'int32', { nullValue: -1 }), columnInfo('NAME', 'string', { width: 8, shape: [2] }),
      columnInfo('ARR', 'float32', { variable: true }), columnInfo('B', 'bit', { shape: [5] }), columnInfo('L', 'boolean', { shape: [2] }),
      columnInfo('U', 'uint64'), columnInfo('S', 'float64', { storage: { type: 'int16', scale: 0.5, zero: 3 }, nullValue: -32768 }),
      columnInfo('VS', 'string', { variable: true }),
    ];
    const n = 7;
    const offsets = Int32Array.from({ length: n + 1 }, (_, i) => i * (i - 1) / 2);
    const path = join(dir, 'fuzz-base.fits');
    await writeFits(path, [{ table: memoryTable(infos, [{ rowCount: n, columns: [
      { values: Int32Array.from({ length: n }, (_, i) => i) }, { values: Array.from({ length: 2 * n }, (_, i) => `s${i}`) },
      { values: Float32Array.from({ length: offsets[n] }, (_, i) => i), offsets }, { values: new Uint8Array(5 * n).fill(1) },
      { values: new Uint8Array(2 * n).fill(1) }, { values: new BigUint64Array(n).fill(5n) }, { values: new Float64Array(n).fill(4) },
      { values: Array.from({ length: n }, (_, i) => 'v'.repeat(i)) },
    ] }], { name: 'T' }) }]);
    const base = await readFile(path);
    const text = base.toString('latin1');
    let x = 12345;
    const rnd = (k: number): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % k; };
    const keys = ['NAXIS1  =', 'NAXIS2  =', 'PCOUNT  =', 'TFIELDS =', 'TFORM3  =', 'TFORM2  =', 'TDIM2   =', 'TNULL1  =', 'TZERO6  =', 'GCOUNT  =', 'NAXIS   ='];
    const values = ['0', '-1', '2147483647', '4294967296', '99999999999999999999', "'1PE(5)'", "'QJ'", "'2147483647D'", "'(0)'", "'(9999999,9999999)'", "'PB'", '1.5', 'T', "'abc'"];
    let typed = 0;
    let fine = 0;
    for (let i = 0; i < 600; i++) {
      const b = Buffer.from(base);
      const mode = i % 4;
      if (mode === 0) for (let k = 0; k < 1 + rnd(6); k++) b[rnd(b.length)] = rnd(256);
      if (mode === 1) for (let k = 0; k < 1 + rnd(8); k++) b[2 * BLOCK + rnd(BLOCK)] = rnd(256);
      if (mode === 2) {
        const at = text.indexOf(keys[rnd(keys.length)]);
        if (at >= 0) b.write(values[rnd(values.length)].padStart(20).padEnd(70), at + 10, 'latin1');
      }
      const bytes = mode === 3 ? b.subarray(0, rnd(b.length)) : b;
      try {
        await using f = await FitsFile.fromBytes(bytes, 'fuzz.fits');
        for (const h of f.hdus) {
          if (h.kind === 'bintable') await collectTable(f.table(h.index));
          await f.verifyChecksums(h.index);
        }
        fine++;
      } catch (e) {
        assert.ok(isIppError(e), `case ${i} (mode ${mode}): ${(e as Error).stack}`);
        typed++;
      }
    }
    assert.ok(typed > 100 && fine > 50, `${typed} typed errors, ${fine} readable`);
  });
});

describe('streaming reads', () => {
  test('batches: bounded size, selected columns, re-iterable, abortable; closed files refuse', async () => {
    const rows = 3000;
    const width = 1500; // 12000-byte rows: at most ~700 per 8 MiB chunk
    const path = join(dir, 'wide.fits');
    const infos = [columnInfo('I', 'int32'), columnInfo('W', 'float64', { shape: [width] })];
    const table = memoryTable(infos, [{
      rowCount: rows,
      columns: [{ values: Int32Array.from({ length: rows }, (_, i) => i) }, { values: new Float64Array(rows * width).fill(1.25) }],
    }]);
    await writeFits(path, [{ table }]);
    const f = await FitsFile.open(path);
    const t = f.table(1);
    let seen = 0;
    let batches = 0;
    for await (const b of t.batches({ columns: ['I'] })) {
      assert.equal(b.columns.length, 1);
      assert.ok(b.rowCount * 12004 <= 8 * 1024 * 1024, `a batch of ${b.rowCount} rows is too big`);
      const ids = b.columns[0].values as Int32Array;
      assert.equal(ids[0], seen);
      seen += b.rowCount;
      batches++;
    }
    assert.equal(seen, rows);
    assert.ok(batches >= 5);
    const sizes: number[] = [];
    for await (const b of t.batches({ batchRows: 1000, columns: ['W', 'I'] })) {
      sizes.push(b.rowCount);
      assert.equal((b.columns[0].values as Float64Array).length, b.rowCount * width);
    }
    assert.equal(sizes.reduce((a, b) => a + b, 0), rows);
    assert.ok(sizes.every((n) => n <= 1000 && n * 12004 <= 8 * 1024 * 1024), sizes.join(','));
    const tiny: number[] = [];
    for await (const b of t.batches({ batchRows: 7, columns: [] })) tiny.push(b.rowCount);
    assert.equal(tiny.length, Math.ceil(rows / 7));
    const controller = new AbortController();
    const it = t.batches({ signal: controller.signal, batchRows: 100 })[Symbol.asyncIterator]();
    await it.next();
    controller.abort();
    await assert.rejects(it.next(), { name: 'AbortError' });
    await f.close();
    await assert.rejects(collectTable(t), fitsError('fits_closed', /wide\.fits/));
  });

  test('fromBytes reads the same values as open', async () => {
    const path = join(dir, 'same.fits');
    await writeFits(path, [{ table: sampleTable(50) }]);
    await using a = await FitsFile.open(path);
    await using b = await FitsFile.fromBytes(await readFile(path), 'same.fits');
    assert.deepEqual(await collectTable(b.table(1)), await collectTable(a.table(1)));
    assert.deepEqual(await a.read(0, 9), Buffer.from('SIMPLE  ='));
    await assert.rejects(a.read((await stat(path)).size - 4, 8), fitsError('fits_truncated'));
  });

  test('a file of 132 HDUs: lookup by EXTNAME and EXTVER', async () => {
    const path = join(dir, 'many.fits');
    const hdus = [];
    for (let chip = 1; chip <= 65; chip++) {
      const name = `XY${String(chip).padStart(2, '0')}`;
      hdus.push({ table: memoryTable([columnInfo('N', 'int16')], [{ rowCount: 1, columns: [{ values: new Int16Array([chip]) }] }], { name: `${name}.hdr` }) });
      hdus.push({ table: memoryTable([columnInfo('N', 'int16')], [{ rowCount: 2, columns: [{ values: new Int16Array([chip, -chip]) }] }], { name: `${name}.psf` }) });
    }
    hdus.push({ table: memoryTable([columnInfo('N', 'int16')], [], { name: 'XY01.psf' }), header: new Header().set('EXTVER', 2) });
    await writeFits(path, hdus);
    await using f = await FitsFile.open(path);
    assert.equal(f.hdus.length, 132);
    assert.equal(f.find('XY33.psf').index, 66);
    assert.equal(f.find('xy33.PSF').index, 66, 'EXTNAME is matched without regard to case');
    assert.equal(f.find('XY01.psf', 2).index, 131);
    assert.equal(f.find('XY01.psf', 1).index, 2);
    assert.equal(f.hdu(131).rows, 0);
    assert.deepEqual((await collectTable(f.table('XY65.psf'))).columns[0].values, new Int16Array([65, -65]));
    assert.throws(() => f.find('XY99.psf'), fitsError('fits_no_such_hdu', /many\.fits/, /XY65\.psf/));
    assert.throws(() => f.hdu(500), fitsError('fits_no_such_hdu', /0\.\.131/));
  });

  test('header params skip structure and keep commentary', () => {
    const h = new Header().set('XTENSION', 'BINTABLE').set('NAXIS1', 4).set('TFIELDS', 1).set('TTYPE1', 'A').set('TFORM1', 'J')
      .set('EXTNAME', 'X').set('CHECKSUM', 'x').set('TELESCOP', 'PS1').set('FPA.FILTER', 'r.00000').addCommentary('COMMENT', 'hi')
      .set('ZTABLE', true).set('ZFORM1', '1J').set('ZNAXIS2', 3).set('ZONE', 'kept');
    assert.deepEqual(headerParams(h), [
      { name: 'TELESCOP', value: 'PS1' }, { name: 'FPA.FILTER', value: 'r.00000' }, { name: 'COMMENT', value: 'hi' },
      { name: 'ZONE', value: 'kept' },
    ]);
  });
});
