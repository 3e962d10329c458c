import { existsSync } from 'node:fs';
import { UsageError } from '../common/index.ts';
import { NebulousClient } from '../nebulous/index.ts';
import type { ParsedArgs } from './command.ts';
import { serviceEndpoint } from './settings.ts';

/** A file named on the command line with an optional HDU: `file.fits[2]`, `file.fits[XY01.psf]`, `file.fits[EVENTS,2]` or `file.fits#2`. */
export interface FileRef {
  readonly path: string;
  /** HDU index (0 = primary) or EXTNAME. */
  readonly hdu?: number | string;
  readonly extver?: number;
}

/** Splits `FILE[EXT]` (cfitsio's syntax) or `FILE#EXT` (STILTS's) into the path and the HDU. */
export function parseFileRef(text: string): FileRef {
  if (existsSync(text)) return { path: text };
  let m = /^(.+)\[([^\]]*)\]$/.exec(text);
  if (!m) m = /^(.+)#([^#/]+)$/.exec(text);
  if (!m) return { path: text };
  const [, path, inside] = m;
  const parts = inside.split(',').map((s) => s.trim());
  if (parts.length > 2 || parts[0] === '') {
    throw new UsageError(`"${text}": the HDU in brackets must be an index or EXTNAME, optionally with EXTVER: FILE[2], FILE[XY01.psf], FILE[EVENTS,2]`);
  }
  const hdu = /^\d+$/.test(parts[0]) ? Number(parts[0]) : parts[0];
  if (parts.length === 2) {
    if (!/^\d+$/.test(parts[1])) throw new UsageError(`"${text}": EXTVER "${parts[1]}" must be a whole number`);
    return { path, hdu, extver: Number(parts[1]) };
  }
  return { path, hdu };
}

/** True for a Nebulous key written as a URI: `neb://VOLUME/path`, `neb:///path` or `neb:/path`. */
export function isNebKey(text: string): boolean {
  return text.startsWith('neb:');
}

const NO_ARGS: ParsedArgs = { values: {}, positionals: [] };

/**
 * As {@link parseFileRef}, and a `neb:` key (with an optional HDU: `neb:///gpc1/x.smf[XY01.psf]`)
 * becomes the path of a live instance, asked of the Nebulous server the settings name
 * (`--url`/`--token` when the command has them, else $IPP_NEB_URL and $IPP_NEB_TOKEN).
 */
export async function resolveFileRef(
  text: string, env: Readonly<Record<string, string | undefined>>, args: ParsedArgs = NO_ARGS,
): Promise<FileRef> {
  if (!isNebKey(text)) return parseFileRef(text);
  const ref = parseFileRef(text);
  return { ...ref, path: await resolveNebKey(ref.path, env, args) };
}

/** A file argument without an HDU: a `neb:` key becomes a live instance's path; other text is returned as it is. */
export async function resolveInputPath(
  text: string, env: Readonly<Record<string, string | undefined>>, args: ParsedArgs = NO_ARGS,
): Promise<string> {
  return isNebKey(text) ? resolveNebKey(text, env, args) : text;
}

function nebClient(key: string, env: Readonly<Record<string, string | undefined>>, args: ParsedArgs): NebulousClient {
  const given = typeof args.values.url === 'string' ? '--url' : env.IPP_NEB_URL ? 'IPP_NEB_URL' : undefined;
  if (!given) throw new UsageError(`"${key}" is a Nebulous key, and no Nebulous server is given to find its file: set IPP_NEB_URL to the server, e.g. http://host:8380`);
  try {
    return new NebulousClient(serviceEndpoint('neb', args, env));
  } catch (cause) {
    throw new UsageError(`"${key}" is a Nebulous key, and the Nebulous server ${given} names cannot be used (${(cause as Error).message}); give its URL, e.g. http://host:8380`, { cause });
  }
}

async function resolveNebKey(key: string, env: Readonly<Record<string, string | undefined>>, args: ParsedArgs): Promise<string> {
  const client = nebClient(key, env, args);
  try {
    const [path] = await client.find(key);
    return path;
  } finally {
    client.close();
  }
}

/**
 * Many file arguments at once: each `neb:` key becomes its best instance's path (one call to
 * the Nebulous server for all of them), or the reason it has none (`neb_not_found`...); other
 * text is its own path. A server that cannot be reached throws.
 */
export async function resolveInputPaths(
  texts: readonly string[], env: Readonly<Record<string, string | undefined>>, args: ParsedArgs = NO_ARGS,
): Promise<({ path: string } | { error: { code: string; message: string } })[]> {
  const keys = [...new Set(texts.filter(isNebKey))];
  const found = new Map<string, { path: string } | { error: { code: string; message: string } }>();
  if (keys.length > 0) {
    const client = nebClient(keys[0], env, args);
    try {
      for (let at = 0; at < keys.length; at += FIND_MANY) {
        for (const r of await client.findMany(keys.slice(at, at + FIND_MANY))) {
          found.set(r.key, 'paths' in r ? { path: r.paths[0] } : { error: r.error });
        }
      }
    } finally {
      client.close();
    }
  }
  return texts.map((t) => (isNebKey(t) ? found.get(t)! : { path: t }));
}

// Keys per find-many call (the server takes at most 10,000).
const FIND_MANY = 10_000;

/** Parses `--rows A:B` (half-open, either end may be left out) into a row range. */
export function parseRowRange(text: string): { start: number; end: number } {
  const m = /^(\d*)(?::(\d*))?$/.exec(text.trim());
  if (!m) throw new UsageError(`--rows "${text}": expected START:END (e.g. 0:100, 50:, :10) or one row number`);
  const start = m[1] === '' ? 0 : Number(m[1]);
  const end = m[2] === undefined ? (m[1] === '' ? Infinity : start + 1) : m[2] === '' ? Infinity : Number(m[2]);
  if (end < start) throw new UsageError(`--rows "${text}": END must not be before START`);
  return { start, end };
}

/** Splits a comma-separated `--columns` list. */
export function parseColumnList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--columns needs at least one column name');
  return names;
}
