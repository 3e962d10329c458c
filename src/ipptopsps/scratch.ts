// Scratch databases for the box pre-ingest of DVO (dvo exportBox): `ipp setup-scratch`
// prepares one (PostgreSQL or SQLite) and registers it here; a loader takes a free one for as
// long as it runs (holder = its client), or makes its own embedded SQLite file when none is
// free. A loader that dies gives its scratch back when it is marked lost.
import { claimRows, redact, type Database, type Queryable } from '../db/index.ts';
import { openScratch } from '../dvo/index.ts';

/** One registered scratch database. */
export interface ScratchRecord {
  readonly scratch_id: number;
  readonly url: string;
  readonly host: string | null;
  readonly holder: number | null;
  readonly held_at: string | null;
  readonly created_at: string;
}

/**
 * Prepares the scratch database at `url` (creates DVO's pre-ingest tables) and registers it;
 * `host` limits it to loaders on that host (an embedded SQLite file), null = any host.
 * Registering the same URL again changes nothing.
 */
export async function setupScratch(db: Queryable, url: string, host: string | null, now = new Date()): Promise<ScratchRecord> {
  const scratch = await openScratch(url);
  await scratch.close();
  await db.run('INSERT INTO scratch (url, host, created_at) VALUES (?, ?, ?) ON CONFLICT (url) DO NOTHING', [url, host, now.toISOString()]);
  const row = await db.get('SELECT * FROM scratch WHERE url = ?', [url]);
  return toScratch(row!);
}

/** Takes a free registered scratch database usable on `host` for a client; undefined when none is free. */
export async function takeScratch(db: Database, clientId: number, host: string, now = new Date()): Promise<string | undefined> {
  const [row] = await claimRows<{ url: string }>(db, {
    table: 'scratch', key: 'scratch_id', where: 'holder IS NULL AND (host IS NULL OR host = ?)', whereParams: [host],
    set: 'holder = ?, held_at = ?', setParams: [clientId, now.toISOString()], limit: 1, returning: 'url',
  });
  return row?.url;
}

/** Gives back the scratch databases a client holds. */
export async function releaseScratch(db: Queryable, clientId: number): Promise<void> {
  await db.run('UPDATE scratch SET holder = NULL, held_at = NULL WHERE holder = ?', [clientId]);
}

/** Every registered scratch database (URLs without passwords). */
export async function listScratch(db: Queryable): Promise<ScratchRecord[]> {
  return (await db.all('SELECT * FROM scratch ORDER BY scratch_id')).map((r) => ({ ...toScratch(r), url: redact(String(r.url)) }));
}

function toScratch(r: Record<string, unknown>): ScratchRecord {
  return {
    scratch_id: Number(r.scratch_id), url: String(r.url), host: (r.host ?? null) as string | null,
    holder: r.holder === null || r.holder === undefined ? null : Number(r.holder), held_at: (r.held_at ?? null) as string | null,
    created_at: String(r.created_at),
  };
}
