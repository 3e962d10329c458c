import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Header, parseHeader, formatCard, findHeaderEnd, parseCard, CARD, BLOCK } from './header.ts';
import { FitsError } from './errors.ts';
import { mulberry32 } from '../common/index.ts';

const bytes = (s: string) => Buffer.from(s, 'latin1');

test('mandatory keywords are written in fixed format', () => {
  const h = new Header().set('SIMPLE', true).set('BITPIX', 8).set('NAXIS', 0).set('EXTEND', true);
  const text = h.toString();
  assert.equal(text.length, BLOCK);
  assert.equal(text.slice(0, CARD), 'SIMPLE  =                    T'.padEnd(CARD));
  assert.equal(text.slice(CARD, 2 * CARD), 'BITPIX  =                    8'.padEnd(CARD));
  assert.equal(text.slice(4 * CARD, 5 * CARD), 'END'.padEnd(CARD));
});

test('strings: quotes escaped, fixed format, trailing blanks ignored', () => {
  const card = formatCard({ keyword: 'OBJECT', value: "it's", comment: 'name' });
  assert.equal(card, "OBJECT  = 'it''s    '          / name".padEnd(CARD));
  assert.deepEqual(parseCard(card), { keyword: 'OBJECT', value: "it's", comment: 'name', raw: card });
  const xt = formatCard({ keyword: 'XTENSION', value: 'BINTABLE' });
  assert.equal(xt.slice(10, 20), "'BINTABLE'");
});

test('long strings round-trip through CONTINUE cards', () => {
  const long = "a'b".repeat(60) + 'end';
  const h = new Header().set('LONGSTR', long, 'a comment').set('NEXT', 1);
  const parsed = parseHeader(h.toBytes());
  assert.equal(parsed.get('LONGSTR'), long);
  assert.equal(parsed.comment('LONGSTR'), 'a comment');
  assert.equal(parsed.get('NEXT'), 1);
  assert.ok(h.toString().includes('CONTINUE  '));
});

test('HIERARCH keywords such as FPA.FILTER', () => {
  const h = new Header().set('FPA.FILTER', 'r.00000', 'filter').set('FPA.ZP', 24.5);
  const text = h.toString();
  assert.ok(text.startsWith("HIERARCH FPA.FILTER = 'r.00000' / filter"));
  const parsed = parseHeader(h.toBytes());
  assert.equal(parsed.get('fpa.filter'), 'r.00000');
  assert.equal(parsed.get('FPA.ZP'), 24.5);
});

test('numbers: integers, big integers, floats with D exponents, logicals, undefined', () => {
  const h = parseHeader(bytes([
    'A       =                   42',
    'B       = 9223372036854775807',
    'C       =              1.5D-03 / small',
    'D       =                    F',
    'E       =',
    'F       =                  2.0',
    'COMMENT this is a comment',
    'HISTORY made by a test',
    'END',
  ].map((l) => l.padEnd(CARD)).join('')));
  assert.equal(h.get('A'), 42);
  assert.equal(h.get('B'), 9223372036854775807n);
  assert.equal(h.get('C'), 0.0015);
  assert.equal(h.comment('C'), 'small');
  assert.equal(h.get('D'), false);
  assert.equal(h.get('E'), null);
  assert.deepEqual(h.commentary('COMMENT'), ['this is a comment']);
  assert.deepEqual(h.commentary('HISTORY'), ['made by a test']);
  // An integral float keeps its float form when rewritten.
  assert.ok(h.toString().includes('F       =                  2.0'));
  h.set('F', 3, undefined, { float: true });
  assert.ok(h.toString().includes('F       =                  3.0'));
});

test('update in place keeps order and comment', () => {
  const h = new Header().set('A', 1, 'first').set('B', 2);
  h.set('A', 5);
  assert.equal(h.cards[0].keyword, 'A');
  assert.equal(h.get('A'), 5);
  assert.equal(h.comment('A'), 'first');
  assert.equal(h.delete('B'), 1);
  assert.equal(h.has('B'), false);
});

test('bad headers: no END, non-ASCII, unparsable value', () => {
  const noEnd = bytes('A       =                    1'.padEnd(BLOCK));
  assert.throws(() => parseHeader(noEnd, { file: 'x.fits', hdu: 0 }), (e: unknown) =>
    e instanceof FitsError && e.code === 'fits_header_no_end' && e.message.startsWith('x.fits: HDU 0: '));
  const bin = bytes('A       =                    1'.padEnd(CARD) + 'END'.padEnd(CARD));
  bin[5] = 0xe9;
  assert.throws(() => parseHeader(bin), (e: unknown) => e instanceof FitsError && e.code === 'fits_bad_header');
  assert.throws(() => parseHeader(bytes('A       = 1.2.3'.padEnd(CARD) + 'END'.padEnd(CARD))),
    (e: unknown) => e instanceof FitsError && e.code === 'fits_bad_keyword' && /keyword A/.test(e.message));
  assert.throws(() => new Header().set('X', Number.NaN).toString(), FitsError);
  assert.throws(() => new Header().set('X', 'caf\u00e9').toString(), FitsError);
});

test('findHeaderEnd reports the end of the last header block', () => {
  const h = new Header().set('SIMPLE', true);
  const b = h.toBytes();
  assert.equal(findHeaderEnd(b), BLOCK);
  assert.equal(findHeaderEnd(b.subarray(0, CARD)), -1);
});

test('keyword look-up in long headers agrees with a scan of the cards after any mix of changes', () => {
  const next = mulberry32(7);
  const rand = () => next() / 2 ** 32;
  const h = new Header();
  const scan = (k: string) => h.cards.findIndex((c) => c.keyword.toUpperCase() === k.toUpperCase());
  const keys = Array.from({ length: 60 }, (_, i) => `KEY${i}`);
  for (let step = 0; step < 3000; step++) {
    const k = keys[Math.floor(rand() * keys.length)]!;
    const op = rand();
    if (op < 0.35) h.set(k, step);
    else if (op < 0.5) h.add({ keyword: k, value: step });
    else if (op < 0.6) h.insert(Math.floor(rand() * (h.cards.length + 1)), { keyword: k, value: step });
    else if (op < 0.68) h.delete(k);
    else if (op < 0.7) {
      // deleteAll removes what a delete of each keyword would, and says how many.
      const some = [k, keys[Math.floor(rand() * keys.length)]!.toLowerCase(), 'HISTORY'];
      const expected = h.cards.filter((c) => !some.some((x) => x.toUpperCase() === c.keyword.toUpperCase()));
      const before = h.cards.length;
      assert.equal(h.deleteAll(some), before - expected.length);
      assert.deepEqual(h.cards, expected);
    } else if (op < 0.75) h.addCommentary('HISTORY', `step ${step}`);
    const probe = rand() < 0.5 ? k : k.toLowerCase();
    assert.equal(h.indexOf(probe), scan(probe), `step ${step}: ${probe}`);
    assert.equal(h.get(probe), scan(probe) < 0 ? undefined : h.cards[scan(probe)]!.value);
  }
  assert.ok(h.cards.length > 32, 'the header grew past the indexed size');
});
