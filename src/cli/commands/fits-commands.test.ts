import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runIpp } from '../testing.ts';
import { rootGroup } from '../registry.ts';
import { FitsFile, Header, writeFits } from '../../fits/index.ts';
import { collectTable, columnInfo, getCell, memoryTable, writeCsv } from '../../table/index.ts';
import { withTempDir } from '../../common/index.ts';

const ipp = (...args: string[]) => runIpp(args);

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir(fn, 'ipp-cli-');

const detections = memoryTable(
  [
    columnInfo('IPP_IDET', 'uint32'),
    columnInfo('RA_PSF', 'float64', { unit: 'deg' }),
    columnInfo('PSF_INST_MAG', 'float32'),
    columnInfo('OBJ', 'int64'),
    columnInfo('NAME', 'string', { width: 5 }),
  ],
  [{
    rowCount: 4,
    columns: [
      { values: new Uint32Array([0, 1, 2, 4000000000]) },
      { values: new Float64Array([10.5, 10.25, 359.999999, 0]) },
      { values: new Float32Array([-12.5, Number.NaN, 0.1, 3]) },
      { values: new BigInt64Array([9007199254740993n, -1n, 0n, 123456789012345678n]) },
      { values: ['a', 'bb', "c'c", ''] },
    ],
  }],
  { name: 'XY01.psf' },
);

async function sample(dir: string): Promise<string> {
  const path = join(dir, 'smf.fits');
  await writeFits(path, [{ table: detections }, { table: { ...detections, name: 'XY02.psf' } }], {
    primaryHeader: new Header().set('IMAGEID', 42).set('FPA.FILTER', 'r.00000'),
  });
  return path;
}

test('info lists HDUs, as text and as JSON', async () => {
  await withDir(async (dir) => {
    const path = await sample(dir);
    const text = await ipp('fits', 'info', path);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^\s*1\s+XY01\.psf\s+bintable\s+4\s+5$/m);
    const json = JSON.parse((await ipp('fits', 'info', path, '--json')).stdout);
    assert.deepEqual(json.map((h: { extname: string | null; rows: number | null }) => [h.extname, h.rows]), [[null, null], ['XY01.psf', 4], ['XY02.psf', 4]]);
  });
});

test('header prints cards, one keyword, or JSON; HIERARCH names work', async () => {
  await withDir(async (dir) => {
    const path = await sample(dir);
    const all = await ipp('fits', 'header', path);
    assert.match(all.stdout, /^HIERARCH FPA.FILTER = 'r.00000'/m);
    assert.match(all.stdout, /^END$/m);
    assert.equal((await ipp('fits', 'header', path, '--keyword', 'FPA.FILTER')).stdout, 'r.00000\n');
    const ext = await ipp('fits', 'header', `${path}[XY02.psf]`, '--keyword', 'NAXIS2');
    assert.equal(ext.stdout, '4\n');
    const missing = await ipp('fits', 'header', path, '--keyword', 'NOPE');
    assert.equal(missing.code, 1);
  });
});

test('dump: CSV and JSON, chosen columns and rows, exact 64-bit integers, nulls', async () => {
  await withDir(async (dir) => {
    const path = await sample(dir);
    const csv = await ipp('fits', 'dump', `${path}[2]`, '--columns', 'OBJ,NAME', '--rows', '0:2');
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout, 'OBJ,NAME\n9007199254740993,a\n-1,bb\n');
    const json = await ipp('fits', 'dump', path, '--format', 'json', '--rows', '1:3');
    assert.equal(json.code, 0, json.stderr);
    assert.ok(json.stdout.includes('"OBJ":-1'));
    const rows = JSON.parse(json.stdout);
    assert.deepEqual(rows.map((r: { PSF_INST_MAG: number | null }) => r.PSF_INST_MAG), [null, 0.1]);
    assert.equal(rows[1].NAME, "c'c");
  });
});

test('convert: FITS -> CSV -> FITS, FITS -> VOTable -> FITS, and tile compression keep the values', async () => {
  await withDir(async (dir) => {
    const path = await sample(dir);
    const packed = join(dir, 'smf.fits.fz');
    let r = await ipp('fits', 'convert', path, packed, '--compress', 'auto', '-q');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await ipp('fits', 'verify', packed)).code, 0);
    const unpacked = join(dir, 'back.fits');
    r = await ipp('fits', 'convert', packed, unpacked, '--uncompress', '-q');
    assert.equal(r.code, 0, r.stderr);
    const vot = join(dir, 'x.vot');
    r = await ipp('fits', 'convert', `${path}[XY01.psf]`, vot, '-q');
    assert.equal(r.code, 0, r.stderr);
    const fromVot = join(dir, 'fromvot.fits');
    r = await ipp('fits', 'convert', vot, fromVot, '-q');
    assert.equal(r.code, 0, r.stderr);
    for (const file of [packed, unpacked, fromVot]) {
      await using f = await FitsFile.open(file);
      const { fitsTable } = await import('../../fits/index.ts');
      const got = await collectTable(fitsTable(f, 1));
      const want = await collectTable(detections);
      detections.columns.forEach((info, c) => {
        const gi = fitsTable(f, 1).columns.findIndex((x) => x.name === info.name);
        for (let row = 0; row < 4; row++) {
          const a = getCell(info, got.columns[gi], row);
          const b = getCell(info, want.columns[c], row);
          // VOTable has no unsigned 32-bit type: that column comes back as int64, same values.
          const same = file === fromVot && typeof a === 'bigint' ? a === BigInt(b as number) : false;
          if (!same) assert.deepEqual(a, b, `${file} ${info.name} row ${row}`);
        }
      });
    }
    const csv = join(dir, 'x.csv');
    r = await ipp('fits', 'convert', path, csv, '-q');
    assert.equal(r.code, 0, r.stderr);
    assert.match(await readFile(csv, 'utf8'), /^IPP_IDET,RA_PSF,PSF_INST_MAG,OBJ,NAME\n0,10.5,-12.5,9007199254740993,a\n/);
  });
});

test('convert of a large FITS table to CSV (threads may read its rows from the file) writes what the inline writer writes', async () => {
  await withDir(async (dir) => {
    const n = 150_000;
    const cols = [columnInfo('id', 'uint32', { nullValue: 7 }), columnInfo('x', 'float32'), columnInfo('k', 'int16', { nullValue: -1 })];
    const batch = {
      rowCount: n,
      columns: [
        { values: Uint32Array.from({ length: n }, (_, i) => (i % 1000 === 0 ? 7 : i * 28657)) },
        { values: Float32Array.from({ length: n }, (_, i) => (i % 777 === 0 ? NaN : Math.sin(i) * 1e3)) },
        { values: Int16Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -1 : i % 30000)) },
      ],
    };
    const path = join(dir, 'big.fits');
    await writeFits(path, [{ table: memoryTable(cols, [batch]) }]);
    const r = await ipp('fits', 'convert', path, join(dir, 'cli.csv'), '-q');
    assert.equal(r.code, 0, r.stderr);
    {
      await using f = await FitsFile.open(path);
      await writeCsv(f.table(1), join(dir, 'inline.csv'), { threads: 0 });
    }
    const want = await readFile(join(dir, 'inline.csv'), 'latin1');
    assert.equal(want.split('\n').length, n + 2);
    assert.match(want.slice(0, 40), /^id,x,k\n,,\n28657,841.471,1\n/);
    assert.equal(await readFile(join(dir, 'cli.csv'), 'latin1'), want);
  });
});

test('bad input: usage errors exit 2; damaged files exit 1 and leave no output behind', async () => {
  await withDir(async (dir) => {
    const path = await sample(dir);
    assert.equal((await ipp('fits', 'convert', path)).code, 2);
    assert.equal((await ipp('fits', 'convert', path, join(dir, 'x.unknown'))).code, 2);
    assert.equal((await ipp('fits', 'convert', path, join(dir, 'x.fits'), '--compress', 'lzma')).code, 2);
    assert.equal((await ipp('fits', 'dump', path, '--rows', '5:1')).code, 2);

    // A string byte that is not ASCII in the last row: conversion fails part way.
    const bytes = await readFile(path);
    const f = await FitsFile.open(path);
    const h = f.hdus[1];
    await f.close();
    const damaged = Buffer.from(bytes);
    damaged[h.dataStart + 3 * (4 + 8 + 4 + 8 + 5) + 4 + 8 + 4 + 8] = 0xff;
    const bad = join(dir, 'bad.fits');
    await writeFile(bad, damaged);
    const before = await readdir(dir);
    for (const out of ['out.csv', 'out.fits', 'out.vot']) {
      const r = await ipp('fits', 'convert', `${bad}[1]`, join(dir, out), '-q');
      assert.equal(r.code, 1, `${out}: ${r.stderr}`);
      assert.match(r.stderr, /error \[fits_bad_string\]: .*bad\.fits: HDU 1 \(XY01\.psf\): column NAME: row 4/);
    }
    assert.deepEqual((await readdir(dir)).sort(), before.sort(), 'no partial or temporary file left');
    const v = await ipp('fits', 'verify', bad);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /FAILED/);
  });
});

test('every command answers --help with its usage, and groups list their commands', async () => {
  const { isGroup } = await import('../command.ts');
  const walk = async (entry: typeof rootGroup, path: string[]): Promise<void> => {
    for (const c of entry.commands) {
      const r = await ipp(...path, c.name, '--help');
      assert.equal(r.code, 0, `${[...path, c.name].join(' ')}: ${r.stderr}`);
      if (isGroup(c)) {
        assert.match(r.stdout, /Commands:/);
        await walk(c, [...path, c.name]);
      } else {
        assert.match(r.stdout, new RegExp(`Usage: ipp ${[...path, c.name].join(' ')} `));
      }
    }
  };
  await walk(rootGroup, []);
  const bare = await ipp('fits');
  assert.equal(bare.code, 2);
  assert.match(bare.stdout, /Commands:/);
});
