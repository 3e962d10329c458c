// `ipp loader`: claims queued items one at a time (one transaction each, with a lease the
// heartbeat extends), works stripe by stripe and box by box, builds each item's batch into a
// temporary directory, moves it to its place, publishes it to the datastore and records every
// stage. Any number of loaders, on any hosts, share one queue: a claim is taken once; a dead
// loader's lease runs out and its item is taken again; its temporary files are removed by the
// next loader on its host.
import { mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Database } from '../db/index.ts';
import { claimRows } from '../db/index.ts';
import { isIppError, RemoteError } from '../common/index.ts';
import { listRegions } from '../dvo/index.ts';
import { openScratch } from '../dvo/index.ts';
import { exportBox } from '../dvo/index.ts';
import { openGpc1 } from '../gpc1/index.ts';
import type { DatastoreClient } from '../datastore/index.ts';
import {
  buildInBatch, buildObBatch, buildP2Batch, buildStBatch, perImageLookup, scratchLookup,
  type BatchContext, type BuiltBatch, type DetectionLookup,
} from './batch/index.ts';
import { createBatch, setBatchStage } from './batches.ts';
import { markLostClients } from './clients.ts';
import type { AnyBatchType, BatchType, LoadingConfig } from './configs.ts';
import { IppToPspsError } from './errors.ts';
import { sleepUnlessStopped, type ProgramContext } from './program.ts';
import { dvoDirOf, isNebulousKey } from './queue.ts';
import { releaseScratch, takeScratch } from './scratch.ts';

/** How DVO IDs are looked up for P2/ST batches. */
export type LookupMode = 'auto' | 'per-image' | 'box';

/** Options of {@link runLoader}. */
export interface LoaderOptions {
  /** Where batches go: `<dataDir>/<config>/<type>/<batch>/`, temporaries under `<dataDir>/tmp/`. */
  readonly dataDir: string;
  /** The datastore; required when the config publishes. */
  readonly datastore?: DatastoreClient;
  /** A scratch database for box pre-ingests (default: a free registered one, else an embedded file). */
  readonly scratchUrl?: string;
  /** Only the first queued exposure, only OTA 33; tolerate the listed missing values. */
  readonly test?: boolean;
  /** Build and publish the IN batch, then stop. */
  readonly init?: boolean;
  readonly lookup?: LookupMode;
  /** With `auto`: pre-ingest a box when it has at least this many queued files per MB of DVO region files (default 0.25). */
  readonly preIngestFilesPerMb?: number;
  /** Stop after this many items. */
  readonly maxItems?: number;
  /** Progress lines (stderr). */
  readonly progress?: { write(s: string): unknown };
  /** Relative DVO locations are taken from here. */
  readonly cwd?: string;
  readonly schemaDir?: string;
  /** How often to look again while other loaders hold the only items left (default 1 s). */
  readonly pollMs?: number;
  /**
   * The local path of a catalogue the queue names by Nebulous key (`neb:...`), on this host;
   * without it such an item fails with a reason saying so.
   */
  readonly resolvePath?: (key: string) => Promise<string>;
}

/** One batch the loader made. */
export interface LoadedBatch {
  readonly name: string;
  readonly type: AnyBatchType;
  readonly sourceId: number;
  readonly itemId: number | null;
  readonly state: 'done' | 'failed' | 'abandoned';
  readonly rows?: number;
  readonly published?: boolean;
  readonly reason?: string;
  readonly lookup?: 'per-image' | 'box' | 'none';
}

/** What a loader pass did for one config. */
export interface LoaderSummary {
  readonly config: string;
  readonly clientId: number;
  done: number;
  failed: number;
  abandoned: number;
  readonly batches: LoadedBatch[];
  /** Boxes whose P2/ST look-ups went per image, and those pre-ingested into scratch. */
  readonly lookups: { perImage: number; box: number };
}

type ClaimedItem = {
  readonly item_id: number;
  readonly batch_type: BatchType;
  readonly source_id: number;
  readonly box_id: number | null;
  readonly path: string | null;
  readonly exp_id: number | null;
  readonly ra: number | null;
  readonly dec: number | null;
};

type BoxRow = { box_id: number; ra_min: number; ra_max: number; dec_min: number; dec_max: number };

// An exposure reaches ~1.6 deg from its boresight: a box's pre-ingest takes DVO this far around it.
const FOOTPRINT_MARGIN_DEG = 1.7;

const now = (): string => new Date().toISOString();
const inList = (types: readonly string[]): string => types.map((t) => `'${t}'`).join(', ');

/**
 * The loader's work for one config: an IN batch (init), one test batch (test), or every
 * claimable item, stripe by stripe, until none is left or the program is stopped.
 */
export async function runLoader(config: LoadingConfig, ctx: ProgramContext, options: LoaderOptions): Promise<LoaderSummary> {
  const loader = new Loader(config, ctx, options);
  try {
    return await loader.run();
  } finally {
    await loader.close();
  }
}

class Loader {
  readonly summary: LoaderSummary;
  #config: LoadingConfig;
  readonly #ctx: ProgramContext;
  readonly #options: LoaderOptions;
  readonly #db: Database;
  #stripe: number | undefined;
  #scratch: { url: string; db: Database; embedded: boolean; registered: boolean } | undefined;
  // gpc1 (the settings' gpc1Db), opened at the first ST item: StackToImage comes from it.
  #gpc1: Database | undefined;

  constructor(config: LoadingConfig, ctx: ProgramContext, options: LoaderOptions) {
    this.#config = config;
    this.#ctx = ctx;
    this.#options = options;
    this.#db = ctx.db;
    this.summary = { config: config.name, clientId: ctx.client.client_id, done: 0, failed: 0, abandoned: 0, batches: [], lookups: { perImage: 0, box: 0 } };
  }

  get #dvoDir(): string { return dvoDirOf(this.#config, this.#options.cwd); }
  get #tmpRoot(): string { return join(this.#options.dataDir, 'tmp'); }

  async run(): Promise<LoaderSummary> {
    if (this.#config.datastore_publish && !this.#options.datastore) {
      throw new IppToPspsError('datastore_not_set', `config ${this.#config.name} publishes to the datastore (datastore_publish = 1) but no datastore is given: pass --datastore-url, set datastoreUrl in the settings file or IPP_DATASTORE_URL, or set datastore_publish=0`);
    }
    await this.#tidy();
    if (this.#options.init) {
      await this.#buildOne({ type: 'IN', sourceId: 0, item: null });
      return this.summary;
    }
    if (this.#options.test) {
      await this.#testBatch();
      return this.summary;
    }
    for (;;) {
      if (!(await this.#ctx.checkpoint())) break;
      if (this.#limitReached()) break;
      this.#config = await this.#ctx.refreshConfig(this.#config.name);
      const stripe = await this.#reserveStripe();
      if (stripe === undefined) {
        // Nothing claimable: wait while other loaders hold items (their leases may run out).
        const held = await this.#db.get<{ n: number; next: string | null }>(
          `SELECT COUNT(*) AS n, MIN(claim_expires) AS next FROM queue_item WHERE config = ? AND state = 'claimed' AND batch_type IN (${inList(this.#types())})`,
          [this.#config.name]);
        if (!held || Number(held.n) === 0) break;
        await this.#tidy();
        const until = held.next ? Date.parse(held.next) - Date.now() + 50 : 0;
        await sleepUnlessStopped(Math.max(50, Math.min(this.#options.pollMs ?? 1000, until)), this.#ctx.signal);
        continue;
      }
      await this.#workStripe(stripe);
    }
    await this.#tidy();
    return this.summary;
  }

  async close(): Promise<void> {
    const id = this.#ctx.client.client_id;
    if (this.#gpc1) {
      await this.#gpc1.close().catch(() => undefined);
      this.#gpc1 = undefined;
    }
    await this.#db.run('UPDATE stripe SET holder = NULL, held_at = NULL WHERE holder = ?', [id]).catch(() => undefined);
    if (this.#scratch) {
      await this.#scratch.db.close().catch(() => undefined);
      if (this.#scratch.registered) await releaseScratch(this.#db, id).catch(() => undefined);
      if (this.#scratch.embedded) {
        const file = this.#scratch.url.slice('sqlite:'.length);
        for (const f of [file, `${file}-wal`, `${file}-shm`]) await unlink(f).catch(() => undefined);
      }
      this.#scratch = undefined;
    }
  }

  async #gpc1Db(): Promise<Database> {
    this.#gpc1 ??= await openGpc1(this.#ctx.settings.gpc1Db, { existing: true });
    return this.#gpc1;
  }

  // A queued catalogue's file on this host: a Nebulous key through the resolver, anything else as it is.
  async #catalogueFile(path: string): Promise<string> {
    if (!isNebulousKey(path)) return path;
    const resolve = this.#options.resolvePath;
    if (!resolve) throw new IppToPspsError('item_needs_nebulous', `the catalogue is the Nebulous key ${path}, and this loader was given no Nebulous server to find its file (set IPP_NEB_URL)`);
    try {
      return await resolve(path);
    } catch (error) {
      if (unreachable(error)) {
        throw new IppToPspsError('nebulous_unreachable', `the Nebulous server that finds ${path} is unreachable: ${describe(error)}; the loader stops, the item stays queued (start it, or check IPP_NEB_URL)`, { cause: error });
      }
      throw error;
    }
  }

  #types(): BatchType[] {
    return this.#config.batch_types.length ? [...this.#config.batch_types] : ['P2', 'ST', 'OB'];
  }

  #limitReached(): boolean {
    const max = this.#options.maxItems;
    return max !== undefined && this.summary.done + this.summary.failed >= max;
  }

  #say(line: string): void {
    this.#options.progress?.write(`loader ${this.#config.name}: ${line}\n`);
  }

  /**
   * Reserves a stripe for this loader: one no live loader holds, with the most claimable
   * items; else the stripe with the most claimable items, shared. Undefined when nothing is
   * claimable.
   */
  async #reserveStripe(): Promise<number | undefined> {
    const me = this.#ctx.client.client_id;
    await markLostClients(this.#db, this.#ctx.leaseMs);
    for (let attempt = 0; attempt < 5; attempt++) {
      const rows = await this.#db.all<{ stripe_id: number; holder: number | null; live: number; n: number }>(
        `SELECT s.stripe_id, s.holder,
                CASE WHEN c.state IN ('running', 'paused', 'stopped') THEN 1 ELSE 0 END AS live, COUNT(*) AS n
         FROM queue_item q JOIN box b ON b.box_id = q.box_id JOIN stripe s ON s.stripe_id = b.stripe_id
         LEFT JOIN client c ON c.client_id = s.holder
         WHERE q.config = ? AND q.batch_type IN (${inList(this.#types())})
           AND (q.state = 'pending' OR (q.state = 'claimed' AND q.claim_expires < ?))
         GROUP BY s.stripe_id, s.holder, c.state
         ORDER BY n DESC, s.stripe_id`,
        [this.#config.name, now()]);
      if (rows.length === 0) {
        await this.#releaseStripe();
        return undefined;
      }
      const mine = rows.find((r) => Number(r.holder) === me);
      if (mine) return Number(mine.stripe_id);
      const free = rows.find((r) => r.holder === null || Number(r.live) === 0);
      if (!free) {
        await this.#releaseStripe();
        return Number(rows[0]!.stripe_id);
      }
      await this.#releaseStripe();
      const { changes } = await this.#db.run(
        `UPDATE stripe SET holder = ?, held_at = ? WHERE stripe_id = ? AND (holder IS NULL OR holder = ?)`,
        [me, now(), free.stripe_id, free.holder]);
      if (changes === 1) {
        this.#stripe = Number(free.stripe_id);
        this.#ctx.log.info(`stripe ${free.stripe_id} reserved (${free.n} items)`);
        return this.#stripe;
      }
    }
    return undefined;
  }

  async #releaseStripe(): Promise<void> {
    if (this.#stripe === undefined) return;
    await this.#db.run('UPDATE stripe SET holder = NULL, held_at = NULL WHERE stripe_id = ? AND holder = ?', [this.#stripe, this.#ctx.client.client_id]);
    this.#stripe = undefined;
  }

  async #workStripe(stripeId: number): Promise<void> {
    const boxes = await this.#db.all<BoxRow>('SELECT box_id, ra_min, ra_max, dec_min, dec_max FROM box WHERE stripe_id = ? ORDER BY dec_min', [stripeId]);
    for (const box of boxes) {
      let lookup: { fn: DetectionLookup; kind: 'per-image' | 'box' } | undefined;
      for (;;) {
        if (!(await this.#ctx.checkpoint()) || this.#limitReached()) return;
        const item = await this.#claim(Number(box.box_id));
        if (!item) break;
        if ((item.batch_type === 'P2' || item.batch_type === 'ST') && !lookup) {
          try {
            lookup = await this.#lookupFor(box);
          } catch (error) {
            await this.#release(item);
            throw error;
          }
        }
        await this.#buildOne({ type: item.batch_type, sourceId: Number(item.source_id), item, ...(item.batch_type === 'OB' ? {} : { lookup }) });
      }
    }
  }

  async #claim(boxId: number): Promise<ClaimedItem | undefined> {
    const at = now();
    const [row] = await claimRows<ClaimedItem>(this.#db, {
      table: 'queue_item', key: 'item_id',
      where: `config = ? AND box_id = ? AND batch_type IN (${inList(this.#types())}) AND (state = 'pending' OR (state = 'claimed' AND claim_expires < ?))`,
      whereParams: [this.#config.name, boxId, at],
      set: `state = 'claimed', claimed_by = ?, claim_expires = ?, updated_at = ?`,
      setParams: [this.#ctx.client.client_id, new Date(Date.now() + this.#ctx.leaseMs).toISOString(), at],
      orderBy: 'item_id', limit: 1,
      returning: 'item_id, batch_type, source_id, box_id, path, exp_id, ra, dec',
    });
    return row;
  }

  /** Chooses the box's DVO look-up by the guide's ratio of queued files to DVO file size. */
  async #lookupFor(box: BoxRow): Promise<{ fn: DetectionLookup; kind: 'per-image' | 'box' }> {
    const mode = this.#options.lookup ?? 'auto';
    const margin = { dec: FOOTPRINT_MARGIN_DEG, ra: FOOTPRINT_MARGIN_DEG / Math.max(0.05, Math.cos(Math.min(89, Math.max(Math.abs(Number(box.dec_min)), Math.abs(Number(box.dec_max)))) * Math.PI / 180)) };
    const wide = {
      raMin: Math.max(0, Number(box.ra_min) - margin.ra), raMax: Math.min(360, Number(box.ra_max) + margin.ra),
      decMin: Math.max(-90, Number(box.dec_min) - margin.dec), decMax: Math.min(90, Number(box.dec_max) + margin.dec),
    };
    let kind: 'per-image' | 'box' = mode === 'box' ? 'box' : 'per-image';
    if (mode === 'auto') {
      const files = await this.#db.get<{ n: number }>(
        `SELECT COUNT(*) AS n FROM queue_item WHERE box_id = ? AND batch_type IN ('P2', 'ST') AND state IN ('pending', 'claimed')`, [box.box_id]);
      const bytes = (await listRegions(this.#dvoDir, wide)).reduce((s, r) => s + r.bytes, 0);
      const ratio = Number(files?.n ?? 0) / Math.max(1e-6, bytes / 1e6);
      kind = ratio >= (this.#options.preIngestFilesPerMb ?? 0.25) ? 'box' : 'per-image';
      this.#ctx.log.info(`box ${box.box_id}: ${files?.n ?? 0} files, ${(bytes / 1e6).toFixed(1)} MB of DVO regions (${ratio.toFixed(3)} files/MB): ${kind === 'box' ? 'pre-ingest into scratch' : 'per-image look-ups'}`);
    }
    if (kind === 'per-image') {
      this.summary.lookups.perImage++;
      return { fn: perImageLookup(this.#dvoDir), kind };
    }
    const scratch = await this.#scratchDb();
    const t0 = performance.now();
    const result = await exportBox(this.#dvoDir, wide, scratch.url, { log: this.#ctx.log, signal: this.#ctx.signal });
    this.#ctx.log.info(`box ${box.box_id}: DVO pre-ingested into scratch (${result.imported} regions imported, ${result.kept} kept, ${result.dropped} dropped) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    this.summary.lookups.box++;
    return { fn: scratchLookup(scratch.db), kind };
  }

  async #scratchDb(): Promise<{ url: string; db: Database }> {
    if (this.#scratch) return this.#scratch;
    let url = this.#options.scratchUrl;
    let registered = false;
    let embedded = false;
    if (!url) {
      url = await takeScratch(this.#db, this.#ctx.client.client_id, this.#ctx.host);
      registered = url !== undefined;
    }
    if (!url) {
      const dir = join(this.#options.dataDir, 'scratch');
      await mkdir(dir, { recursive: true });
      url = `sqlite:${join(dir, `${this.#ctx.host}.${this.#ctx.client.client_id}.db`)}`;
      embedded = true;
    }
    const db = await openScratch(url);
    this.#scratch = { url, db, embedded, registered };
    return this.#scratch;
  }

  async #testBatch(): Promise<void> {
    const [item] = await claimRows<ClaimedItem>(this.#db, {
      table: 'queue_item', key: 'item_id',
      where: `config = ? AND batch_type = 'P2' AND (state = 'pending' OR (state = 'claimed' AND claim_expires < ?))`,
      whereParams: [this.#config.name, now()],
      set: `state = 'claimed', claimed_by = ?, claim_expires = ?`,
      setParams: [this.#ctx.client.client_id, new Date(Date.now() + this.#ctx.leaseMs).toISOString()],
      orderBy: 'item_id', limit: 1, returning: 'item_id, batch_type, source_id, box_id, path, exp_id, ra, dec',
    });
    if (!item) {
      this.#ctx.log.warn(`config ${this.#config.name}: no queued exposure to test with (run ipp queue first)`);
      return;
    }
    await this.#buildOne({ type: 'P2', sourceId: Number(item.source_id), item, lookup: { fn: perImageLookup(this.#dvoDir), kind: 'per-image' }, test: true });
  }

  /** Gives an item back to the queue untouched (not an attempt). */
  async #release(item: ClaimedItem): Promise<void> {
    await this.#db.run(`UPDATE queue_item SET state = 'pending', claimed_by = NULL, claim_expires = NULL, updated_at = ? WHERE item_id = ? AND claimed_by = ?`,
      [now(), item.item_id, this.#ctx.client.client_id]);
  }

  /** Builds, moves, publishes and records one batch; failures are recorded, not thrown (except the tracking database's). */
  async #buildOne(job: { type: AnyBatchType; sourceId: number; item: ClaimedItem | null; lookup?: { fn: DetectionLookup; kind: 'per-image' | 'box' }; test?: boolean }): Promise<void> {
    const { type, item } = job;
    const config = this.#config;
    const me = this.#ctx.client.client_id;
    await this.#ctx.setCurrentItem(item?.item_id ?? null);
    const { batchId, name } = await createBatch(this.#db, { config: config.name, type, itemId: item?.item_id ?? null, sourceId: job.sourceId, clientId: me, test: job.test });
    const tmp = join(this.#tmpRoot, `${name}.${this.#ctx.pid}`);
    const final = join(this.#options.dataDir, config.name, type, name);
    const t0 = performance.now();
    const record: { state: LoadedBatch['state']; rows?: number; published?: boolean; reason?: string } = { state: 'failed' };
    let built: BuiltBatch | undefined;
    let placed = false;
    let claimLost = false;
    try {
      await mkdir(tmp, { recursive: true });
      const bctx: BatchContext = {
        name, config: config.name, product: config.datastore_product, outDir: tmp, log: this.#ctx.log.child(name), signal: this.#ctx.signal,
        ...(job.test ? { test: true } : {}), ...(this.#options.schemaDir ? { schemaDir: this.#options.schemaDir } : {}),
      };
      const dvoDir = this.#dvoDir;
      if (type === 'IN') built = await buildInBatch(bctx, { dvoDir });
      else if (type === 'OB') built = await buildObBatch(bctx, { dvoDir, regionIndex: job.sourceId });
      else {
        if (!item?.path) throw new IppToPspsError('item_incomplete', `item ${item?.item_id} (${type} ${job.sourceId}) has no catalogue path; run ipp queue again`);
        const path = await this.#catalogueFile(item.path);
        built = type === 'P2'
          ? await buildP2Batch(bctx, { smfPath: path, camId: job.sourceId, expId: Number(item.exp_id), dvoDir, lookup: job.lookup!.fn })
          : await buildStBatch(bctx, { cmfPath: path, stackId: job.sourceId, dvoDir, lookup: job.lookup!.fn, gpc1: await this.#gpc1Db() });
      }
      this.#ctx.signal.throwIfAborted();
      await mkdir(join(this.#options.dataDir, config.name, type), { recursive: true });
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      placed = true;
      // A claim lost meanwhile (this loader stalled past its lease) means another loader has
      // the item: this batch is withdrawn rather than published twice.
      if (item && !job.test && !(await this.#holdsClaim(item))) {
        claimLost = true;
        throw new IppToPspsError('claim_lost', `the claim on item ${item.item_id} expired and another loader took it`);
      }
      const rowsJson = JSON.stringify(Object.fromEntries(built.tables.map((t) => [t.name, t.rows])));
      for (const w of built.warnings) this.#ctx.log.warn(`${name}: ${w}`);
      await setBatchStage(this.#db, batchId, 'processed', 'succeeded', {
        detail: built.warnings.length ? `${built.warnings.length} warnings: ${built.warnings.slice(0, 3).join('; ')}`.slice(0, 1000) : undefined,
        fields: { local_path: final, fits_bytes: built.bytes, fits_md5: built.md5, n_rows: built.mainRows, rows_json: rowsJson },
      });
      record.rows = built.mainRows;
    } catch (error) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if (placed) await rm(final, { recursive: true, force: true }).catch(() => undefined);
      // Nebulous down, like the datastore down below: not the item's fault; it goes back and the loader stops.
      const noNebulous = isIppError(error) && error.code === 'nebulous_unreachable';
      const stopped = this.#ctx.signal.aborted || claimLost || noNebulous;
      const reason = claimLost || noNebulous ? `abandoned: ${(error as Error).message}` : stopped ? 'abandoned: the loader was stopped' : describe(error);
      await setBatchStage(this.#db, batchId, 'processed', 'failed', { detail: reason.slice(0, 1000), fields: { reason: reason.slice(0, 2000) } });
      if (stopped) {
        if (item && !claimLost) await this.#release(item);
        this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'abandoned', reason }, job.lookup?.kind);
        if (noNebulous) throw error;
        this.#ctx.log.info(`${name}: abandoned (stopped); temporary files removed, item ${item?.item_id ?? '-'} released`);
        return;
      }
      if (item) await this.#finishItem(item, batchId, 'failed', reason);
      this.#ctx.log.error(`${name} ${type} ${job.sourceId}: failed: ${reason}`);
      this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'failed', reason }, job.lookup?.kind);
      return;
    }

    if (config.datastore_publish) {
      try {
        await setBatchStage(this.#db, batchId, 'loaded_to_datastore', 'pending');
        await this.#publish(name, built, final);
        await this.#db.transaction(async (tx) => {
          await setBatchStage(tx, batchId, 'loaded_to_datastore', 'succeeded', { detail: `${config.datastore_product}/${name}` });
          await setBatchStage(tx, batchId, 'loaded_to_odm', 'pending');
          if (item && !job.test) await this.#finishItem(item, batchId, 'done', null, tx);
        });
        record.published = true;
      } catch (error) {
        if (isIppError(error) && error.code === 'claim_lost') {
          await this.#withdraw(batchId, name, `abandoned: ${error.message}`, true);
          this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'abandoned', reason: error.message }, job.lookup?.kind);
          return;
        }
        if (this.#ctx.signal.aborted) {
          // Stopped during the upload: the fileset is not there (uploads are all or nothing).
          await setBatchStage(this.#db, batchId, 'loaded_to_datastore', 'failed', { detail: 'abandoned: the loader was stopped', fields: { reason: 'abandoned: the loader was stopped' } });
          await rm(final, { recursive: true, force: true });
          await setBatchStage(this.#db, batchId, 'deleted_local', 'succeeded', { detail: 'abandoned batch' });
          if (item) await this.#release(item);
          this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'abandoned', reason: 'stopped while publishing' }, job.lookup?.kind);
          return;
        }
        if (unreachable(error)) {
          // The datastore is down, not the batch bad: the item goes back untouched and the
          // loader stops rather than failing every item in turn.
          const reason = `the datastore is unreachable: ${describe(error)}`;
          await setBatchStage(this.#db, batchId, 'loaded_to_datastore', 'failed', { detail: reason.slice(0, 1000), fields: { reason: reason.slice(0, 2000) } });
          await rm(final, { recursive: true, force: true });
          await setBatchStage(this.#db, batchId, 'deleted_local', 'succeeded', { detail: 'not published' });
          if (item) await this.#release(item);
          this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'abandoned', reason }, job.lookup?.kind);
          throw new IppToPspsError('datastore_unreachable', `config ${config.name}: ${reason}; the loader stops, the item stays queued (start the datastore, or check datastoreUrl)`, { cause: error });
        }
        const reason = `publishing to the datastore failed: ${describe(error)}`;
        await setBatchStage(this.#db, batchId, 'loaded_to_datastore', 'failed', { detail: reason.slice(0, 1000), fields: { reason: reason.slice(0, 2000) } });
        await rm(final, { recursive: true, force: true });
        await setBatchStage(this.#db, batchId, 'deleted_local', 'succeeded', { detail: 'not published' });
        if (item && !job.test) await this.#finishItem(item, batchId, 'failed', reason);
        else if (item) await this.#release(item);
        this.#ctx.log.error(`${name}: ${reason}`);
        this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'failed', reason }, job.lookup?.kind);
        return;
      }
    } else if (item && !job.test) {
      try {
        await this.#finishItem(item, batchId, 'done', null);
      } catch (error) {
        if (!(isIppError(error) && error.code === 'claim_lost')) throw error;
        await this.#withdraw(batchId, name, `abandoned: ${error.message}`, false);
        this.#note({ name, type, sourceId: job.sourceId, itemId: item.item_id, state: 'abandoned', reason: error.message }, job.lookup?.kind);
        return;
      }
    }
    if (item && job.test) await this.#release(item);
    record.state = 'done';
    const seconds = (performance.now() - t0) / 1000;
    this.#ctx.log.info(`${name} ${type} ${job.sourceId}: ${record.rows} rows, ${(built.bytes / 1e6).toFixed(2)} MB${record.published ? `, published to ${config.datastore_product}` : ''}${job.lookup ? ` (${job.lookup.kind} look-ups)` : ''} in ${seconds.toFixed(2)} s`);
    this.#note({ name, type, sourceId: job.sourceId, itemId: item?.item_id ?? null, state: 'done', rows: record.rows, published: Boolean(record.published) }, job.lookup?.kind);
    await this.#ctx.setCurrentItem(null);
  }

  #note(batch: LoadedBatch, lookup: 'per-image' | 'box' | undefined): void {
    const b: LoadedBatch = { ...batch, lookup: lookup ?? 'none' };
    this.summary.batches.push(b);
    if (b.state === 'done') this.summary.done++;
    else if (b.state === 'failed') this.summary.failed++;
    else this.summary.abandoned++;
    this.#say(`${b.name} ${b.type} ${b.sourceId} ${b.state}${b.reason ? `: ${b.reason}` : ''} (${this.summary.done} done, ${this.summary.failed} failed)`);
  }

  /** Takes back a finished batch whose item another loader now holds: off the datastore, off the disk, marked failed. */
  async #withdraw(batchId: number, name: string, reason: string, published: boolean): Promise<void> {
    const config = this.#config;
    if (published) {
      try {
        await this.#options.datastore!.remove(config.datastore_product, name);
        await setBatchStage(this.#db, batchId, 'deleted_datastore', 'succeeded', { detail: reason });
      } catch (error) {
        await setBatchStage(this.#db, batchId, 'deleted_datastore', 'failed', { detail: `${reason}; removal failed: ${describe(error)}`.slice(0, 1000) });
      }
    }
    await rm(join(this.#options.dataDir, config.name, (await this.#db.get<{ t: string }>('SELECT batch_type AS t FROM batch WHERE batch_id = ?', [batchId]))!.t, name), { recursive: true, force: true });
    await setBatchStage(this.#db, batchId, 'processed', 'failed', { detail: reason, fields: { reason } });
    await setBatchStage(this.#db, batchId, 'deleted_local', 'succeeded', { detail: reason });
    this.#ctx.log.warn(`${name}: ${reason}`);
  }

  async #holdsClaim(item: ClaimedItem): Promise<boolean> {
    const { changes } = await this.#db.run(
      `UPDATE queue_item SET claim_expires = ? WHERE item_id = ? AND claimed_by = ? AND state = 'claimed'`,
      [new Date(Date.now() + this.#ctx.leaseMs).toISOString(), item.item_id, this.#ctx.client.client_id]);
    return changes === 1;
  }

  async #finishItem(item: ClaimedItem, batchId: number, state: 'done' | 'failed', reason: string | null, q: Pick<Database, 'run'> = this.#db): Promise<void> {
    const { changes } = await q.run(
      `UPDATE queue_item SET state = ?, attempts = attempts + ?, reason = ?, batch_id = ?, claimed_by = NULL, claim_expires = NULL, updated_at = ?
       WHERE item_id = ? AND claimed_by = ? AND state = 'claimed'`,
      [state, state === 'failed' ? 1 : 0, reason === null ? null : reason.slice(0, 2000), batchId, now(), item.item_id, this.#ctx.client.client_id]);
    if (changes !== 1 && state === 'done') {
      throw new IppToPspsError('claim_lost', `item ${item.item_id}: the claim was lost before batch ${batchId} could be recorded`);
    }
  }

  async #publish(name: string, built: BuiltBatch, dir: string): Promise<void> {
    const ds = this.#options.datastore!;
    const config = this.#config;
    const sources = [{ path: join(dir, basename(built.fitsPath)), md5: built.md5 }, { path: join(dir, basename(built.manifestPath)) }];
    const publish = (): Promise<unknown> => ds.publish(config.datastore_product, name, sources, { type: config.datastore_type, signal: this.#ctx.signal });
    try {
      await publish();
    } catch (error) {
      if (!(isIppError(error) && error.code === 'product_not_found')) throw error;
      // As `dsprodtool --add` would: a product of the config's type.
      this.#ctx.log.info(`datastore product ${config.datastore_product} does not exist: adding it (type ${config.datastore_type})`);
      try {
        await ds.addProduct({ name: config.datastore_product, type: config.datastore_type, description: `ippToPsps batches of config ${config.name}` });
      } catch (addError) {
        if (!(isIppError(addError) && /exists/.test(addError.code))) throw addError;
      }
      await publish();
    }
  }

  /**
   * Removes what loaders that are gone left behind: temporary directories on this host whose
   * process is dead (or is no longer a live loader), and batches they had started (marked
   * failed, abandoned).
   */
  async #tidy(): Promise<void> {
    await markLostClients(this.#db, this.#ctx.leaseMs);
    // Batches a gone loader was building or publishing: their files go, and their fileset
    // too if the upload may have completed; the item itself comes back by its lease.
    const gone = await this.#db.all<{ batch_id: number; client_id: number; name: string; config: string; batch_type: string; processed: string; product: string | null }>(
      `SELECT b.batch_id, b.client_id, b.name, b.config, b.batch_type, b.processed, f.datastore_product AS product
       FROM batch b JOIN client c ON c.client_id = b.client_id LEFT JOIN config f ON f.name = b.config
       WHERE (b.processed = 'pending' OR b.loaded_to_datastore = 'pending') AND c.state IN ('exited', 'lost')`);
    for (const b of gone) {
      const id = Number(b.batch_id);
      const reason = `abandoned: loader client ${b.client_id} ended while ${b.processed === 'pending' ? 'building' : 'publishing'} it`;
      await rm(join(this.#options.dataDir, b.config, b.batch_type, b.name), { recursive: true, force: true });
      if (b.processed === 'pending') {
        await setBatchStage(this.#db, id, 'processed', 'failed', { detail: reason, fields: { reason } });
        continue;
      }
      if (this.#options.datastore && b.product) {
        try {
          await this.#options.datastore.remove(b.product, b.name);
          await setBatchStage(this.#db, id, 'deleted_datastore', 'succeeded', { detail: reason });
        } catch (error) {
          if (!(isIppError(error) && (error.code === 'fileset_not_found' || error.code === 'product_not_found'))) {
            this.#ctx.log.warn(`${b.name}: ${reason}; could not remove it from the datastore: ${describe(error)}`);
            continue;
          }
        }
      } else if (b.product) {
        continue;
      }
      await setBatchStage(this.#db, id, 'loaded_to_datastore', 'failed', { detail: reason, fields: { reason } });
      await setBatchStage(this.#db, id, 'deleted_local', 'succeeded', { detail: reason });
    }
    const entries = await readdir(this.#tmpRoot).catch(() => [] as string[]);
    if (entries.length === 0) return;
    const live = new Set((await this.#db.all<{ pid: number }>(
      `SELECT pid FROM client WHERE host = ? AND state IN ('running', 'paused', 'stopped')`, [this.#ctx.host])).map((r) => Number(r.pid)));
    for (const entry of entries) {
      const m = /\.(\d+)$/.exec(entry);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === this.#ctx.pid) continue;
      if (live.has(pid) && processAlive(pid)) continue;
      await rm(join(this.#tmpRoot, entry), { recursive: true, force: true });
      this.#ctx.log.info(`removed ${join(this.#tmpRoot, entry)}: left by loader pid ${pid}, which is gone`);
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describe(error: unknown): string {
  if (isIppError(error)) return `[${error.code}] ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A service that is down (no answer, or a server error), as opposed to a refusal of the request. */
function unreachable(error: unknown): boolean {
  return isIppError(error) && (error.code === 'service_unreachable' || (error instanceof RemoteError && error.status >= 500));
}
