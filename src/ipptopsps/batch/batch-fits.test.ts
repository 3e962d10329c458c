import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mulberry32 } from '../../common/index.ts';
import { Checksum, Header, findHeaderEnd, parseHeader, verifyChecksums } from '../../fits/index.ts';
import { columnInfo, type ColumnType } from '../../table/index.ts';
import type { SchemaColumn, TableSchema } from '../../votable/index.ts';
import { TablePart, type ArchiveTable } from './archive-table.ts';
import { writeBatchFits } from './batch-fits.ts';

const run = promisify(execFile);
let root = '';

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'batch-fits-test-'));
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function column(name: string, type: ColumnType, width?: number): SchemaColumn {
  return { ...columnInfo(name, type, width !== undefined ? { width } : {}), required: false, defaultValue: type === 'string' ? '' : 0 };
}

function schema(name: string, columns: SchemaColumn[]): TableSchema {
  return { name, columns, primaryKey: [columns[0].name], references: [], merge: 'insert' };
}

type Fill = (rnd: () => number) => number;

/** A table of `parts` parts with random values (`fill` per column type) in every column. */
function table(s: TableSchema, parts: number[], fill: Fill): ArchiveTable {
  const next = mulberry32(parts.length * 31 + s.columns.length);
  const rnd = (): number => next() / 2 ** 32;
  return {
    schema: s,
    parts: parts.map((rows) => {
      const p = new TablePart(s, rows, { file: 'test' });
      s.columns.forEach((c, k) => {
        const v = p.columns[k];
        for (let i = 0; i < rows; i++) {
          if (Array.isArray(v)) v[i] = String.fromCharCode(...Array.from({ length: Math.floor(rnd() * ((c.width ?? 1) + 1)) }, () => 32 + Math.floor(rnd() * 95)));
          else if (v instanceof BigInt64Array) v[i] = BigInt(Math.floor(fill(rnd) * 2 ** 21)) * 2n ** 32n + BigInt(Math.floor(fill(rnd) * 2 ** 32)) - 2n ** 52n;
          else if (v instanceof Float64Array || v instanceof Float32Array) v[i] = (fill(rnd) - 0.5) * 1e6;
          else if (v instanceof Int32Array) v[i] = Math.floor(fill(rnd) * 2 ** 32) - 2 ** 31;
          else if (v instanceof Int16Array) v[i] = Math.floor(fill(rnd) * 65536) - 32768;
          else v[i] = Math.floor(fill(rnd) * 256);
        }
      });
      return p;
    }),
  };
}

/** Each HDU's DATASUM and CHECKSUM against the bytes of the file (summed by the fits room). */
async function checkSums(path: string): Promise<number[]> {
  const bytes = await readFile(path);
  const sums: number[] = [];
  for (let at = 0; at < bytes.length;) {
    const end = findHeaderEnd(bytes, at);
    assert.ok(end > at);
    const h = parseHeader(bytes.subarray(at, end));
    const size = h.has('NAXIS2') ? Number(h.get('NAXIS1')) * Number(h.get('NAXIS2')) : 0;
    const padded = Math.ceil(size / 2880) * 2880;
    const sum = new Checksum().add(bytes.subarray(end, end + padded)).sum;
    assert.equal(Number(h.get('DATASUM')), sum, `HDU at ${at}: DATASUM`);
    assert.deepEqual(verifyChecksums(h, bytes.subarray(at, end), sum), [], `HDU at ${at}: CHECKSUM`);
    sums.push(sum);
    at = end + padded;
  }
  return sums;
}

test('writeBatchFits: DATASUM from the columns equals the sum of the written rows, at every row offset modulo 4', async () => {
  const odd = schema('Odd', [
    column('k', 'int64'), column('b', 'uint8'), column('i', 'int16'), column('e', 'float32'), column('d', 'float64'),
    column('a', 'string', 3), column('j', 'int32'), column('l', 'boolean'),
  ]);
  const even = schema('Even', [column('i', 'int16'), column('k', 'int64'), column('j', 'int32'), column('a', 'string', 2)]);
  const aligned = schema('Aligned', [column('k', 'int64'), column('e', 'float32')]);
  const uniform: Fill = (rnd) => rnd();
  const tables: ArchiveTable[] = [
    table(odd, [7, 1, 0, 13, 4], uniform),
    table(even, [5, 2, 9], uniform),
    table(aligned, [3, 6], uniform),
    table(schema('Zeros', [column('k', 'int64'), column('b', 'uint8')]), [4, 3], uniform),
    table(schema('Empty', [column('k', 'int64')]), [], uniform),
  ];
  // Constant columns (one value held for all rows: filled, or never written) next to
  // written ones, in rows of 19 bytes: the constants' sums are multiplied, not added up.
  const mixed = { ...odd, name: 'Mixed', columns: odd.columns.map((c) => (c.name === 'i' ? { ...c, defaultValue: -7 } : c)) };
  tables.push({
    schema: mixed,
    parts: [5, 0, 11, 2].map((rows, n) => {
      const p = new TablePart(mixed, rows, { file: 'test' });
      p.fill('k', -123456789012345n + BigInt(n));
      p.fill('e', 2.5);
      p.fillText('a', 'AB');
      p.fill('l', 1);
      p.put('d', Float64Array.from({ length: rows }, (_, i) => i / 3));
      p.put('j', Int32Array.from({ length: rows }, (_, i) => -i));
      return p;
    }),
  });
  const allOnes = schema('Ones', [column('j', 'int32'), column('b', 'uint8')]);
  const t = table(allOnes, [5, 3], uniform);
  // Every byte 0xFF: each word is 2^32 − 1, whose sum is "negative zero", not 0.
  for (const p of t.parts) for (const c of p.columns) new Uint8Array((c as Uint8Array).buffer).fill(255);
  tables.push(t);
  for (const p of tables[3].parts) for (const c of p.columns) new Uint8Array((c as Uint8Array).buffer).fill(0);
  const path = join(root, 'sums.fits');
  await writeBatchFits(path, new Header().set('TEST', 1), tables);
  const sums = await checkSums(path);
  assert.equal(sums.length, 1 + tables.length);
  assert.ok(tables[5].parts[0].isConstant(0) && tables[5].parts[0].isConstant(2) && !tables[5].parts[0].isConstant(4), 'constant columns stay constant until written');
  assert.equal(sums[4], 0, 'all-zero data sum to 0');
  assert.equal(sums[5], 0, 'no rows sum to 0');
  assert.equal(sums[7], 0xffffffff, 'all-ones data sum to negative zero');
  const { stdout } = await run('fitsverify', [path]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? String(e) }));
  assert.match(stdout, /Verification found 0 warning\(s\) and 0 error\(s\)/, stdout);
});
