import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { FitsFile, fitsRawRows, fitsTable, Header, writeFits } from '../fits/index.ts';
import { columnInfo, memoryTable, type ColumnType, type ColumnValues } from '../table/index.ts';
import { encodeCopyTuples, encodeRawTuples, rawCopyPlan } from './pg-binary.ts';
import { ProblemList } from './problems.ts';
import type { ArchiveColumn, ArchiveDatatype } from './schema.ts';

const N = 1000;

// Values over each type's whole range, its ends included.
function valuesOf(type: ColumnType): ColumnValues {
  const span = (lo: number, hi: number) => Array.from({ length: N }, (_, i) => (i === 0 ? lo : i === 1 ? hi : Math.round(lo + ((hi - lo) * ((i * 7919) % N)) / N)));
  switch (type) {
    case 'int8': return Int8Array.from(span(-128, 127));
    case 'uint8': return Uint8Array.from(span(0, 255));
    case 'int16': return Int16Array.from(span(-32768, 32767));
    case 'uint16': return Uint16Array.from(span(0, 65535));
    case 'int32': return Int32Array.from(span(-2147483648, 2147483647));
    case 'uint32': return Uint32Array.from(span(0, 4294967295));
    case 'int64': return BigInt64Array.from(Array.from({ length: N }, (_, i) => (i === 0 ? -(2n ** 63n) : i === 1 ? 2n ** 63n - 1n : BigInt(i * 7919 - 3_000_000) * 1_000_003_001n)));
    case 'uint64': return BigUint64Array.from(Array.from({ length: N }, (_, i) => BigInt(i) * 1_000_003_001n));
    case 'float32': return Float32Array.from(Array.from({ length: N }, (_, i) => (i === 0 ? NaN : i === 1 ? -Infinity : (i - 500) * 1.37e5 + 0.25)));
    default: return Float64Array.from(Array.from({ length: N }, (_, i) => (i === 0 ? NaN : i === 1 ? 1e300 : (i - 500) * 3.1e-7)));
  }
}

const column = (name: string, datatype: ArchiveDatatype) => ({ name, datatype, required: false }) as ArchiveColumn;

// Writes one FITS table of (source type, archive datatype) columns; returns the raw rows'
// tuples and the decoded path's tuples, or undefined when no raw plan is made.
async function both(dir: string, pairs: readonly [ColumnType, ArchiveDatatype][], extra: Partial<Record<number, { nullValue: number }>> = {}): Promise<{ raw: Buffer; decoded: Buffer } | undefined> {
  const path = join(dir, `t${Math.random().toString(36).slice(2)}.fits`);
  const infos = pairs.map(([type], i) => columnInfo(`c${i}`, type, extra[i] ?? {}));
  const columns = pairs.map(([type]) => ({ values: valuesOf(type) }));
  await writeFits(path, [{ table: memoryTable(infos, [{ rowCount: N, columns }]), header: new Header().set('EXTNAME', 'T') }]);
  const archive = pairs.map(([, datatype], i) => column(`c${i}`, datatype));
  const file = await FitsFile.open(path);
  try {
    const raw = fitsRawRows(file, 1, path)!;
    const plan = rawCopyPlan(archive, raw);
    if (plan === undefined) return undefined;
    const bytes = await readFile(path);
    const rows = bytes.subarray(raw.start, raw.start + raw.rows * raw.rowBytes);
    // in two chunks, as the stager reads them
    const half = 400;
    const scratch = new Float64Array(N);
    const rawTuples = Buffer.concat([
      encodeRawTuples(plan, rows.subarray(0, half * raw.rowBytes), half, scratch),
      encodeRawTuples(plan, rows.subarray(half * raw.rowBytes), N - half, scratch),
    ]);
    const parts: Buffer[] = [];
    const problems = new ProblemList(10);
    const table = fitsTable(file, 1);
    let base = 0;
    for await (const b of table.batches({ batchRows: 300 })) {
      const t = encodeCopyTuples('T', archive, table.columns.map((c) => c.type), b, base, problems);
      assert.ok(t, problems.reasons().join('; '));
      parts.push(t);
      base += b.rowCount;
    }
    return { raw: rawTuples, decoded: Buffer.concat(parts) };
  } finally {
    await file.close();
  }
}

describe('binary COPY tuples from raw FITS rows', () => {
  it('are the bytes the decoded path writes, for every source and column type the raw path takes', () => withTempDir(async (dir) => {
    const pairs: [ColumnType, ArchiveDatatype][] = [
      ['int64', 'long'], ['int32', 'int'], ['int16', 'short'], ['float32', 'float'], ['float64', 'double'],
      ['uint8', 'unsignedByte'], ['uint8', 'short'], ['uint8', 'int'], ['uint8', 'long'], ['uint8', 'float'], ['uint8', 'double'],
      ['int8', 'unsignedByte'], ['int8', 'short'], ['int8', 'long'],
      ['int16', 'unsignedByte'], ['int16', 'int'], ['int16', 'long'], ['int16', 'double'],
      ['uint16', 'int'], ['uint16', 'long'], ['uint16', 'float'],
      ['int32', 'long'], ['int32', 'float'], ['int32', 'double'],
      ['uint32', 'long'], ['uint32', 'double'],
      ['int64', 'double'], ['float32', 'double'],
    ];
    const out = await both(dir, pairs);
    assert.ok(out, 'a raw plan for every pair');
    assert.equal(out.raw.length, out.decoded.length);
    assert.ok(out.raw.equals(out.decoded), `first difference at byte ${out.raw.findIndex((b, i) => b !== out.decoded[i])}`);
  }));

  it('leave to the decoded path the columns whose values could be refused or that hold nulls', () => withTempDir(async (dir) => {
    for (const pair of [['int64', 'int'], ['float64', 'float'], ['float32', 'long'], ['float64', 'int'], ['uint32', 'int'], ['uint16', 'short'], ['int32', 'short'], ['uint64', 'long'], ['uint8', 'boolean']] as [ColumnType, ArchiveDatatype][]) {
      assert.equal(await both(dir, [['int32', 'int'], pair]), undefined, pair.join(' -> '));
    }
    // a TNULL column
    assert.equal(await both(dir, [['int32', 'int']], { 0: { nullValue: -1 } }), undefined);
  }));
});
