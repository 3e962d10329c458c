// Storage object keys (the original's "external id"), the deterministic file name of an
// instance, and key patterns (globs and regular expressions) with the literal prefix that lets
// a search scan only a range of the key index.
import { createHash } from 'node:crypto';
import { NebError } from './errors.ts';

/**
 * A key as written, parsed: the canonical key (no scheme, no leading, trailing or repeated
 * slashes) and the volume it asks for, if any. `neb://VOL/path` asks for VOL if it can take
 * the file; `neb://~VOL/path` (or `~VOL` given as the volume) insists on it.
 */
export interface NebKey {
  readonly key: string;
  readonly volume?: string;
  readonly hardVolume: boolean;
}

/**
 * The longest key in UTF-8 bytes. An instance's file name is `<instance id>.<key with '/' as
 * ':'>`, and a file name may hold 255 bytes: 20 digits, the dot and this many bytes of key.
 */
export const MAX_KEY_BYTES = 234;

const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/** Parses a key (`neb://VOL/path`, `neb:///path`, `neb:/path` or a bare path); `volume`, when given, overrides the key's. */
export function parseNebKey(text: unknown, volume?: string): NebKey {
  if (typeof text !== 'string' || text === '') throw keyError(String(text ?? ''), 'is empty; give a path such as gpc1/raw/o5197g0123o.ota01.fits');
  if (CONTROL_RE.test(text)) throw keyError(text, 'contains a control character');
  if (/\s/.test(text)) throw keyError(text, 'contains white space');
  let path = text;
  let fromKey: string | undefined;
  const scheme = SCHEME_RE.exec(text)?.[1];
  if (scheme !== undefined) {
    if (scheme !== 'neb') throw keyError(text, `uses the scheme "${scheme}:"; a key is a bare path or a neb: URI (neb://VOLUME/path, neb:///path)`);
    path = text.slice(4);
    if (path.startsWith('//')) {
      const end = path.indexOf('/', 2);
      const authority = path.slice(2, end < 0 ? path.length : end);
      path = end < 0 ? '' : path.slice(end);
      if (authority !== '') fromKey = authority;
    } else if (!path.startsWith('/')) {
      throw keyError(text, 'is a neb: URI without a slash; write neb:///path or neb://VOLUME/path');
    }
  }
  const requested = parseVolumeRequest(volume ?? fromKey, text);
  return { key: canonicalPath(path, text), ...requested };
}

/** The volume a request names (`VOL`, `~VOL` for a hard request, `any` for none), validated. */
export function parseVolumeRequest(volume: string | undefined, context = volume ?? ''): { volume?: string; hardVolume: boolean } {
  if (volume === undefined || volume === '') return { hardVolume: false };
  const hard = volume.startsWith('~');
  const name = hard ? volume.slice(1) : volume;
  if (name === 'any') return { hardVolume: false };
  checkVolumeName(name, context);
  return { volume: name, hardVolume: hard };
}

/** Throws `neb_volume_invalid` unless `name` is a volume name (letters, digits, `.`, `_`, `-`; at most 64). */
export function checkVolumeName(name: string, context = name): void {
  if (!VOLUME_RE.test(name) || name === 'any') {
    throw new NebError('neb_volume_invalid', `"${name}" (in "${context}") is not a volume name: use letters, digits, '.', '_' and '-' (at most 64), e.g. ipp004.0; "any" is reserved`);
  }
}

function canonicalPath(path: string, original: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw keyError(original, 'contains ".."; keys name files inside Nebulous and may not climb out of a directory');
    parts.push(part);
  }
  const key = parts.join('/');
  if (key === '') throw keyError(original, 'has no path; give one after the volume, e.g. neb://ipp004.0/gpc1/file.fits');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw keyError(original, `is ${Buffer.byteLength(key)} bytes long; keys may have at most ${MAX_KEY_BYTES} (an instance's file name holds the key)`);
  return key;
}

function keyError(text: string, what: string): NebError {
  return new NebError('neb_key_invalid', `key "${printable(text)}" ${what}`);
}

/** The text with control characters shown as \uXXXX, for messages. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Where an instance's file lives under its volume: `nebulous/<h1>/<h2>/<id>.<key>` with h1, h2
 * the first two pairs of hex digits of the key's SHA-1 and '/' in the key replaced by ':'.
 */
export function instanceRelPath(key: string, instanceId: number): string {
  const sha = createHash('sha1').update(key).digest('hex');
  return `nebulous/${sha.slice(0, 2)}/${sha.slice(2, 4)}/${instanceId}.${key.replaceAll('/', ':')}`;
}

/** A compiled key pattern: the exact test, and what lets the database narrow the scan. */
export interface KeyPattern {
  readonly kind: 'glob' | 'regex';
  readonly source: string;
  /** The exact test of a key. */
  readonly regex: RegExp;
  /** Every matching key starts with this ('' when the pattern has no literal start). */
  readonly prefix: string;
  /** A SQLite GLOB pattern every matching key satisfies (globs only). */
  readonly sqliteGlob?: string;
  /** A SQL LIKE pattern (escape `\`) every matching key satisfies (globs only). */
  readonly like?: string;
  /** The same expression for PostgreSQL's `~`, when it certainly means the same there (regexes only). */
  readonly postgresRegex?: string;
}

const MAX_PATTERN = 1000;

/**
 * Compiles a glob over keys: `*` any run of characters but `/`, `**` any run including `/`,
 * `?` one character but `/`, `[abc]`, `[a-z]`, `[!abc]` (or `[^abc]`) a class, `\x` a literal x.
 * A leading `neb:` scheme, volume and slashes are dropped, as for keys.
 */
export function compileGlob(pattern: string): KeyPattern {
  const text = stripKeyPrefix(checkPattern(pattern));
  let regex = '^';
  let prefix = '';
  let literal = true;
  let sqliteGlob = '';
  let like = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '*') {
      const double = text[i + 1] === '*';
      if (double) i++;
      regex += double ? '.*' : '[^/]*';
      sqliteGlob += '*';
      like += '%';
      literal = false;
    } else if (c === '?') {
      regex += '[^/]';
      sqliteGlob += '?';
      like += '_';
      literal = false;
    } else if (c === '[') {
      const end = classEnd(text, i);
      if (end < 0) throw patternError(pattern, `has a "[" at ${i + 1} without its "]"`);
      let body = text.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      if (body === '') throw patternError(pattern, `has an empty class at ${i + 1}`);
      const escaped = body.replace(/\\(.)/g, '$1').replace(/[\\\]^]/g, '\\$&');
      regex += negate ? `[^/${escaped}]` : `[${escaped}]`;
      sqliteGlob += '?';
      like += '_';
      literal = false;
      i = end;
    } else {
      let ch = c;
      if (c === '\\') {
        if (i + 1 >= text.length) throw patternError(pattern, 'ends with a lone "\\"');
        ch = text[++i];
      }
      regex += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      sqliteGlob += /[*?[\]]/.test(ch) ? `[${ch}]` : ch;
      like += /[%_\\]/.test(ch) ? `\\${ch}` : ch;
      if (literal) prefix += ch;
    }
  }
  return { kind: 'glob', source: pattern, regex: compile(`${regex}$`, pattern), prefix, sqliteGlob, like };
}

/**
 * Compiles a regular expression over keys (JavaScript syntax, Unicode mode; unanchored unless
 * it says `^`/`$`). A pattern that opens with `^` and literal characters scans only keys with
 * that prefix.
 */
export function compileRegex(pattern: string): KeyPattern {
  const text = checkPattern(pattern);
  const regex = compile(text, pattern);
  return { kind: 'regex', source: pattern, regex, prefix: regexPrefix(text), postgresRegex: portableRegex(text) ? text : undefined };
}

/**
 * True when a JavaScript regular expression uses only what PostgreSQL's advanced regular
 * expressions read the same way (literals, `.`, classes without escapes, groups, alternation,
 * quantifiers, anchors, \d \w \s and escaped punctuation), so the database can filter with it.
 * Anything else (\b, lookaround, named groups, back references, \u escapes) is tested here only.
 */
function portableRegex(source: string): boolean {
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const next = source[++i];
      if (next === undefined || !/[.\\/\-+*?()[\]{}^$|dDwWsS]/.test(next)) return false;
    } else if (c === '[') {
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') return false;
      for (; j < source.length && source[j] !== ']'; j++) {
        if (source[j] === '\\' || source[j] === '[') return false;
      }
      if (j >= source.length) return false;
      i = j;
    } else if (c === '(') {
      if (source[i + 1] === '?') {
        if (source[i + 2] !== ':') return false;
        i += 2;
      }
    } else if (c === '{') {
      const m = /^\{\d+(,\d*)?\}/.exec(source.slice(i));
      if (!m) return false;
      i += m[0].length - 1;
    }
  }
  return true;
}

function checkPattern(pattern: unknown): string {
  if (typeof pattern !== 'string' || pattern === '') throw new NebError('neb_pattern_invalid', 'the pattern is empty; give a glob such as gpc1/raw/*.fits');
  if (pattern.length > MAX_PATTERN) throw patternError(pattern, `is longer than ${MAX_PATTERN} characters`);
  if (CONTROL_RE.test(pattern)) throw patternError(pattern, 'contains a control character');
  return pattern;
}

function stripKeyPrefix(text: string): string {
  let rest = text;
  if (rest.startsWith('neb://')) {
    const end = rest.indexOf('/', 6);
    rest = end < 0 ? '' : rest.slice(end);
  } else if (rest.startsWith('neb:/')) {
    rest = rest.slice(4);
  }
  return rest.replace(/^\/+/, '');
}

function classEnd(text: string, open: number): number {
  let i = open + 1;
  if (text[i] === '!' || text[i] === '^') i++;
  if (text[i] === ']') i++;
  for (; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === ']') return i;
  }
  return -1;
}

function compile(source: string, pattern: string): RegExp {
  try {
    return new RegExp(source, 'u');
  } catch (cause) {
    throw new NebError('neb_pattern_invalid', `pattern "${printable(pattern)}" is not a valid regular expression: ${(cause as Error).message}`, { cause });
  }
}

function patternError(pattern: string, what: string): NebError {
  return new NebError('neb_pattern_invalid', `pattern "${printable(pattern.slice(0, 200))}" ${what}`);
}

/** The literal text every match of a `^`-anchored regular expression starts with (conservative: '' when unsure). */
function regexPrefix(source: string): string {
  if (!source.startsWith('^') || source.includes('|')) return '';
  let prefix = '';
  let i = 1;
  while (i < source.length) {
    const c = source[i];
    let ch: string;
    let width = 1;
    if (/[A-Za-z0-9/_:,=@%~ -]/.test(c) || c.charCodeAt(0) > 0x7f) {
      ch = c;
    } else if (c === '\\' && i + 1 < source.length && /[.\-/\\+*?()[\]{}^$|]/.test(source[i + 1])) {
      ch = source[i + 1];
      width = 2;
    } else {
      break;
    }
    const next = source[i + width];
    if (next === '*' || next === '?' || next === '{') break;
    prefix += ch;
    i += width;
    if (next === '+') break;
  }
  return prefix;
}

/**
 * The smallest string greater than every string that starts with `prefix` (under UTF-8 byte
 * order, which SQLite's BINARY and PostgreSQL's "C" collations use), or undefined for none.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last >= 0x10ffff) continue;
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    return points.join('') + String.fromCodePoint(next);
  }
  return undefined;
}
