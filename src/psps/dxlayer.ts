// The DXLayer: polls a datastore product for filesets after the last one it took, downloads
// each (md5-checked, resuming a broken transfer), converts the batch FITS file's tables to
// CSV and hands them to the ODM. What it took is recorded in the psps database (the cursor
// moves only once the ODM has the batch), so a restart neither skips a batch nor hands one
// over twice (a repeated hand-over of the same md5 is a no-op at the ODM). A datastore or
// ODM that is down is waited for, with a growing pause.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RemoteError, silentLogger, type Logger } from '../common/index.ts';
import type { Database } from '../db/index.ts';
import type { DatastoreClient, FilesetInfo } from '../datastore/index.ts';
import { batchToCsv } from './batch-csv.ts';
import { PspsError } from './errors.ts';
import type { OdmClient } from './odm-client.ts';
import type { OdmSubmission } from './odm.ts';

/** Options of {@link runDxlayer} and {@link dxlayerPass}. */
export interface DxlayerOptions {
  /** The psps database (PSPS_MIGRATIONS applied). */
  readonly db: Database;
  readonly datastore: DatastoreClient;
  readonly odm: OdmClient;
  readonly product: string;
  /** Where batches are downloaded and converted: `DIR/<batch>/`. */
  readonly dir: string;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** Pause between polls when nothing is new (default 30 s). */
  readonly intervalMs?: number;
  /** First pause after a failure, doubled each time up to `maxBackoffMs` (default 500 ms / 60 s). */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** One pass, then stop (a failure is thrown, not waited out). */
  readonly once?: boolean;
  /** Called after each batch handed over (for tests and progress). */
  readonly onHanded?: (name: string) => void;
}

/** The fileset id the DXLayer has taken everything up to, for a product. */
export async function dxlayerCursor(db: Database, product: string): Promise<number> {
  const row = await db.get<{ after_id: number }>('SELECT after_id FROM dxlayer_cursor WHERE product = ?', [product]);
  return Number(row?.after_id ?? 0);
}

/** One poll: takes every fileset after the cursor, in order; returns the batches handed over. */
export async function dxlayerPass(options: DxlayerOptions): Promise<string[]> {
  const log = options.log ?? silentLogger;
  const handed: string[] = [];
  const after = await dxlayerCursor(options.db, options.product);
  const filesets = await options.datastore.filesets(options.product, { afterId: after });
  for (const fs of filesets) {
    options.signal?.throwIfAborted();
    const outcome = await takeFileset(options, fs, log);
    await options.db.transaction(async (tx) => {
      const now = new Date().toISOString();
      await tx.run(`UPDATE dxlayer_batch SET state = ?, handed_at = ? WHERE product = ? AND fileset_id = ?`,
        [outcome, now, options.product, fs.id]);
      await tx.run(`INSERT INTO dxlayer_cursor (product, after_id, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (product) DO UPDATE SET after_id = excluded.after_id, updated_at = excluded.updated_at`, [options.product, fs.id, now]);
    });
    if (outcome === 'handed') {
      handed.push(fs.name);
      options.onHanded?.(fs.name);
    }
  }
  return handed;
}

/** Polls until the signal aborts (or once), waiting out a datastore or ODM that is down. */
export async function runDxlayer(options: DxlayerOptions): Promise<string[]> {
  const log = options.log ?? silentLogger;
  const all: string[] = [];
  const base = options.backoffMs ?? 500;
  let pause = base;
  for (;;) {
    if (options.signal?.aborted) return all;
    try {
      const handed = await dxlayerPass(options);
      all.push(...handed);
      pause = base;
      if (options.once) return all;
      if (handed.length > 0) continue;
      await sleep(options.intervalMs ?? 30_000, undefined, { signal: options.signal }).catch(() => undefined);
    } catch (error) {
      if (options.signal?.aborted) return all;
      if (options.once || !isTransient(error)) throw error;
      log.warn(`dxlayer: ${(error as Error).message}; trying again in ${(pause / 1000).toFixed(1)} s`);
      await sleep(pause, undefined, { signal: options.signal }).catch(() => undefined);
      pause = Math.min(options.maxBackoffMs ?? 60_000, pause * 2);
    }
  }
}

// A datastore or ODM that cannot answer now (down, restarting, busy) is waited for.
function isTransient(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  if (error instanceof RemoteError) return error.status >= 500 || error.status === 409 || error.status === 429;
  return ['service_unreachable', 'download_md5_mismatch', 'bad_response', 'db_unreachable', 'db_busy', 'file_changed'].includes(code)
    || /^E[A-Z]+$/.test(code) || (error as Error).name === 'TimeoutError';
}

async function takeFileset(options: DxlayerOptions, fs: FilesetInfo, log: Logger): Promise<'handed' | 'gone'> {
  const dir = resolve(join(options.dir, fs.name));
  await options.db.run(`INSERT INTO dxlayer_batch (product, fileset_id, name, dir, state, taken_at) VALUES (?, ?, ?, ?, 'taken', ?)
    ON CONFLICT (product, fileset_id) DO NOTHING`, [options.product, fs.id, fs.name, dir, new Date().toISOString()]);
  try {
    await options.datastore.get(options.product, fs.name, dir, options.signal ? { signal: options.signal } : {});
  } catch (error) {
    if (error instanceof RemoteError && error.status === 404) {
      log.warn(`dxlayer: ${options.product}/${fs.name} was removed from the datastore before it could be taken; skipped`);
      return 'gone';
    }
    throw error;
  }
  const submission = { ...await convert(options.product, fs.name, dir, options.signal), filesetId: fs.id };
  await options.db.run('UPDATE dxlayer_batch SET md5 = ? WHERE product = ? AND fileset_id = ?', [submission.md5 ?? null, options.product, fs.id]);
  const status = await options.odm.submit(submission);
  log.info(`dxlayer: handed ${fs.name} (${submission.type}, ${submission.tables.map((t) => `${t.name} ${t.rows}`).join(', ')}) to the ODM: ${status.state}`);
  return 'handed';
}

interface Manifest {
  batch?: unknown; type?: unknown; files?: { name?: unknown; md5?: unknown }[];
}

// The hand-over of one downloaded batch; a batch that cannot be converted is handed over with
// the reason, so the ODM reports it failed instead of the DXLayer stalling on it.
async function convert(product: string, name: string, dir: string, signal?: AbortSignal): Promise<OdmSubmission> {
  let type = '';
  let md5: string | undefined;
  try {
    let manifest: Manifest = {};
    try {
      manifest = JSON.parse(await readFile(join(dir, `${name}.manifest.json`), 'utf8')) as Manifest;
    } catch (cause) {
      if ((cause as { code?: string }).code !== 'ENOENT') throw new PspsError('psps_bad_batch', `${name}.manifest.json: ${(cause as Error).message}`, { cause });
    }
    const fitsName = `${name}.fits`;
    const entry = manifest.files?.find((f) => f.name === fitsName);
    if (typeof entry?.md5 === 'string') md5 = entry.md5.toLowerCase();
    const { header, tables } = await batchToCsv(join(dir, fitsName), dir, signal);
    type = (typeof manifest.type === 'string' ? manifest.type : header.type) ?? '';
    if (type === '') throw new PspsError('psps_bad_batch', `${fitsName}: neither the manifest nor BATCHTYP gives the batch type`);
    if (header.batch !== undefined && header.batch !== name) throw new PspsError('psps_bad_batch', `${fitsName}: BATCH = '${header.batch}' but the fileset is ${name}`);
    return {
      name, product, type, dir, ...(md5 ? { md5 } : {}), fits: join(dir, fitsName),
      tables: tables.map((t) => ({ name: t.name, path: t.path, rows: t.rows })),
    };
  } catch (error) {
    if (signal?.aborted || isTransient(error)) throw error;
    return { name, product, type: type || 'unknown', dir, ...(md5 ? { md5 } : {}), tables: [], error: (error as Error).message };
  }
}
