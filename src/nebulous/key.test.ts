import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  MAX_KEY_BYTES, NebError, compileGlob, compileRegex, instanceRelPath, parseNebKey, prefixUpperBound,
} from './index.ts';

const code = (c: string) => (e: unknown) => e instanceof NebError && e.code === c;

describe('storage object keys', () => {
  it('canonicalises keys and URIs as the original did', () => {
    // The original's key forms (Nebulous::Key): bare paths, neb:/, neb:///, neb://VOLUME/.
    for (const text of ['foo/bar/baz', '/foo/bar/baz', '//foo/bar/baz', 'foo////bar/baz', 'foo/bar/baz/', 'foo/./bar/baz',
      'neb:/foo/bar/baz', 'neb:///foo/bar/baz', 'neb://///foo/bar/baz']) {
      assert.deepEqual(parseNebKey(text), { key: 'foo/bar/baz', hardVolume: false }, text);
    }
    assert.deepEqual(parseNebKey('neb://ipp004.0/gpc1/a.fits'), { key: 'gpc1/a.fits', volume: 'ipp004.0', hardVolume: false });
    assert.deepEqual(parseNebKey('neb://ipp004.0//gpc1/a.fits/'), { key: 'gpc1/a.fits', volume: 'ipp004.0', hardVolume: false });
    assert.deepEqual(parseNebKey('neb://~ipp004.0/a'), { key: 'a', volume: 'ipp004.0', hardVolume: true });
    assert.deepEqual(parseNebKey('neb://any/a'), { key: 'a', hardVolume: false });
    // A volume given beside the key overrides the key's.
    assert.deepEqual(parseNebKey('neb://ipp004.0/a', '~ipp005.0'), { key: 'a', volume: 'ipp005.0', hardVolume: true });
    assert.deepEqual(parseNebKey('neb://ipp004.0/a', 'any'), { key: 'a', hardVolume: false });
    assert.equal(parseNebKey('dir/a:b/é.fits').key, 'dir/a:b/é.fits');
    assert.throws(() => parseNebKey('a:b'), code('neb_key_invalid'));
  });

  it('refuses empty keys, control characters, "..", white space, other schemes and overlong keys', () => {
    for (const bad of ['', '/', '//', 'neb:///', 'neb://ipp004.0/', 'a/../b', '..', '../a', 'a/\u0000b', 'a\nb', 'a\u007f',
      'a b', ' a', 'a\t', 'neb:foo', 'file:/tmp/x', 'http://h/x', 'x'.repeat(MAX_KEY_BYTES + 1), 'é'.repeat(MAX_KEY_BYTES / 2 + 1)]) {
      assert.throws(() => parseNebKey(bad), code('neb_key_invalid'), JSON.stringify(bad));
    }
    assert.throws(() => parseNebKey(undefined), code('neb_key_invalid'));
    assert.throws(() => parseNebKey(42), code('neb_key_invalid'));
    assert.equal(parseNebKey('x'.repeat(MAX_KEY_BYTES)).key.length, MAX_KEY_BYTES);
    // Messages show control characters escaped.
    assert.throws(() => parseNebKey('a\u0001b'), (e: unknown) => e instanceof NebError && e.message.includes('a\\u0001b'));
  });

  it('refuses bad volume names', () => {
    for (const bad of ['neb://bad volume/a', 'neb://-x/a', 'neb://a$b/a']) {
      assert.throws(() => parseNebKey(bad), (e: unknown) => e instanceof NebError && /neb_(key|volume)_invalid/.test(e.code), bad);
    }
    assert.throws(() => parseNebKey('a', 'x/y'), code('neb_volume_invalid'));
    assert.throws(() => parseNebKey('a', '~'), code('neb_volume_invalid'));
  });

  it('names instance files <volume>/nebulous/<h1>/<h2>/<id>.<key with : for />', () => {
    const key = 'gpc1/20100101/o5197g0123o.ota01.fits';
    const sha = createHash('sha1').update(key).digest('hex');
    assert.equal(instanceRelPath(key, 42), `nebulous/${sha.slice(0, 2)}/${sha.slice(2, 4)}/42.gpc1:20100101:o5197g0123o.ota01.fits`);
    // The longest key still makes a legal file name with the largest id.
    assert.ok(Buffer.byteLength(instanceRelPath('x'.repeat(MAX_KEY_BYTES), 2 ** 53 - 1).split('/').pop()!) <= 255);
  });
});

describe('key patterns', () => {
  const keys = ['object1', 'object2', 'objfoobar', 'topdir/object1', 'topdir/object2', 'topdir/objfoobar',
    'topdir/subdir/object1', 'topdir/subdir/object2', 'topdir/subdir/objfoobar', 'a*b', 'a[1]'];
  const match = (p: ReturnType<typeof compileGlob>) => keys.filter((k) => p.regex.test(k));

  it('globs: * stays in a segment, ** crosses them, ? and classes, escapes', () => {
    assert.deepEqual(match(compileGlob('topdir/*')), ['topdir/object1', 'topdir/object2', 'topdir/objfoobar']);
    assert.deepEqual(match(compileGlob('topdir/obj*')), ['topdir/object1', 'topdir/object2', 'topdir/objfoobar']);
    assert.deepEqual(match(compileGlob('topdir/object*')), ['topdir/object1', 'topdir/object2']);
    assert.deepEqual(match(compileGlob('obj*')), ['object1', 'object2', 'objfoobar']);
    assert.equal(match(compileGlob('topdir/**')).length, 6);
    assert.deepEqual(match(compileGlob('**/object1')), ['topdir/object1', 'topdir/subdir/object1']);
    assert.deepEqual(match(compileGlob('neb:///topdir/object?')), ['topdir/object1', 'topdir/object2']);
    assert.deepEqual(match(compileGlob('/topdir/object[!1]')), ['topdir/object2']);
    assert.deepEqual(match(compileGlob('object[12]')), ['object1', 'object2']);
    assert.deepEqual(match(compileGlob('a\\*b')), ['a*b']);
    assert.deepEqual(match(compileGlob('a\\[1]')), ['a[1]']);
  });

  it('gives the literal prefix and the database prefilters of a glob', () => {
    const p = compileGlob('gpc1/raw/o5*g?[ab].fits');
    assert.equal(p.prefix, 'gpc1/raw/o5');
    assert.equal(p.sqliteGlob, 'gpc1/raw/o5*g??.fits');
    assert.equal(p.like, 'gpc1/raw/o5%g__.fits');
    assert.equal(compileGlob('a_%b*').like, 'a\\_\\%b%');
    assert.equal(compileGlob('*x').prefix, '');
  });

  it('regular expressions: JavaScript syntax, a literal prefix only when anchored and certain', () => {
    assert.deepEqual(keys.filter((k) => compileRegex('obj(ect)?[12]$').regex.test(k)).length, 6);
    assert.equal(compileRegex('^topdir/sub').prefix, 'topdir/sub');
    assert.equal(compileRegex('^topdir/obj.*').prefix, 'topdir/obj');
    assert.equal(compileRegex('^topdir/objx*').prefix, 'topdir/obj');
    assert.equal(compileRegex('^topdir/objx+').prefix, 'topdir/objx');
    assert.equal(compileRegex('^a\\.fits').prefix, 'a.fits');
    assert.equal(compileRegex('^a|b').prefix, '');
    assert.equal(compileRegex('topdir').prefix, '');
  });

  it('hands PostgreSQL only the expressions it reads the same way', () => {
    for (const same of ['ota(11|22|33)\\.fits$', '^gpc1/raw/2010011[0-4]/', 'a{2,3}b{4}c{1,}', '(?:x|y)+?\\d\\w\\s', '[^/]*\\/x']) {
      assert.equal(compileRegex(same).postgresRegex, same, same);
    }
    for (const differs of ['\\bobj', '(?<=a)b', '(?=a)', '(?<n>a)\\k<n>', '[\\d]', '(a)\\1', '\\u0041', '\\p{L}', '[a\\]]']) {
      assert.equal(compileRegex(differs).postgresRegex, undefined, differs);
    }
  });

  it('refuses bad patterns with neb_pattern_invalid', () => {
    for (const bad of ['', 'a[', 'a[]', 'a\\', 'x'.repeat(1001), 'a\u0000']) {
      assert.throws(() => compileGlob(bad), code('neb_pattern_invalid'), JSON.stringify(bad));
    }
    for (const bad of ['(', '[a-', 'a{2,1}']) assert.throws(() => compileRegex(bad), code('neb_pattern_invalid'), bad);
  });

  it('bounds a prefix range in byte order', () => {
    assert.equal(prefixUpperBound('abc'), 'abd');
    assert.equal(prefixUpperBound('a\u{10ffff}'), 'b');
    assert.equal(prefixUpperBound('\u{10ffff}'), undefined);
    assert.equal(prefixUpperBound('a\ud7ff'), 'a\ue000');
    // Every key with the prefix sorts (as UTF-8 bytes) below the bound.
    const prefix = 'gpc1/é';
    const upper = Buffer.from(prefixUpperBound(prefix)!);
    for (const k of [`${prefix}`, `${prefix}zzz`, `${prefix}\u{10fff0}`]) assert.ok(Buffer.compare(Buffer.from(k), upper) < 0, k);
  });
});
