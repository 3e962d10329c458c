import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTform, parseTform, tformByteWidth, heapElementBytes, type Tform } from './tform.ts';
import { FitsError } from './errors.ts';

test('every fixed type with its byte width', () => {
  const cases: [string, Partial<Tform>, number][] = [
    ['L', { repeat: 1, code: 'L' }, 1],
    ['1X', { repeat: 1, code: 'X' }, 1],
    ['9X', { repeat: 9, code: 'X' }, 2],
    ['16X', { repeat: 16, code: 'X' }, 2],
    ['B', { repeat: 1, code: 'B' }, 1],
    ['1I', { repeat: 1, code: 'I' }, 2],
    ['J', { repeat: 1, code: 'J' }, 4],
    ['2K', { repeat: 2, code: 'K' }, 16],
    ['20A', { repeat: 20, code: 'A' }, 20],
    ['E', { repeat: 1, code: 'E' }, 4],
    ['3D', { repeat: 3, code: 'D' }, 24],
    ['C', { repeat: 1, code: 'C' }, 8],
    ['2M', { repeat: 2, code: 'M' }, 32],
    ['0J', { repeat: 0, code: 'J' }, 0],
  ];
  for (const [text, want, width] of cases) {
    const t = parseTform(text);
    assert.deepEqual(t, want, text);
    assert.equal(tformByteWidth(t), width, text);
  }
});

test('P and Q descriptors, with and without a maximum length', () => {
  assert.deepEqual(parseTform('1PE(100)'), { repeat: 1, code: 'P', element: 'E', maxLength: 100 });
  assert.deepEqual(parseTform('QJ'), { repeat: 1, code: 'Q', element: 'J' });
  assert.deepEqual(parseTform('PA'), { repeat: 1, code: 'P', element: 'A' });
  assert.deepEqual(parseTform('0PB'), { repeat: 0, code: 'P', element: 'B' });
  assert.equal(tformByteWidth(parseTform('1PE(100)')), 8);
  assert.equal(tformByteWidth(parseTform('1QD')), 16);
  assert.equal(tformByteWidth(parseTform('0PB')), 0);
  assert.equal(heapElementBytes('D', 3), 24);
  assert.equal(heapElementBytes('X', 9), 2);
});

test('format is the inverse of parse', () => {
  for (const text of ['1J', '20A', '3D', '1PE(100)', '1QJ', '1PA', '0J', '11X', '12A4']) {
    assert.equal(formatTform(parseTform(text)), text);
  }
  assert.equal(formatTform(parseTform('PJ')), '1PJ');
  assert.equal(formatTform(parseTform('E')), '1E');
});

test('the rAw substring convention is accepted on A columns only', () => {
  assert.deepEqual(parseTform('12A4'), { repeat: 12, code: 'A', substring: 4 });
  assert.throws(() => parseTform('12J4'), { code: 'fits_bad_tform' });
});

test('invalid TFORMs are fits_bad_tform errors naming the column', () => {
  for (const bad of ['', 'Z', '1', 'J2', '2PE', 'PZ', 'PE(', 'PE(x)', '-1J', '1.5E', '99999999999999999J', 'PP', '13A20']) {
    assert.throws(() => parseTform(bad, { file: 'f.fits', hdu: 1, column: 'RA', keyword: 'TFORM3' }), (e: unknown) => {
      assert.ok(e instanceof FitsError, `${bad}: ${String(e)}`);
      assert.equal(e.code, 'fits_bad_tform');
      assert.match(e.message, /f\.fits: HDU 1: keyword TFORM3: column RA: TFORM/);
      return true;
    }, bad);
  }
});
