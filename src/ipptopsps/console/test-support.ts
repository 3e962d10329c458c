// Test support of the console: a tracking database holding a small campaign (two configs, a
// loader client, queue items, batches at several stages with failures, two metrics snapshots).
import type { Database } from '../../db/index.ts';
import { registerClient } from '../clients.ts';
import { saveConfig } from '../configs.ts';

/** What {@link seedCampaign} put in, for assertions. */
export interface SeededCampaign {
  readonly loaderId: number;
  readonly pollerId: number;
  /** The reason the ODM gave for the failed P2 batch. */
  readonly odmReason: string;
  /** The reason the loader gave for the batch it could not process. */
  readonly processReason: string;
}

const T0 = Date.parse('2026-03-01T10:00:00Z');
const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();

/** Fills an empty tracking database (migrations applied) with a small campaign. */
export async function seedCampaign(db: Database, now: Date = new Date()): Promise<SeededCampaign> {
  await saveConfig(db, 'alpha', {
    datastore_product: 'PSPS_test', datastore_publish: '1', dvo_label: 'LAP.ThreePi', dvo_location: '/data/dvo/alpha',
    gpc1_label: 'sim.alpha', epoch: '2026-01-01', batch_types: 'P2,ST',
  }, new Date(T0));
  await saveConfig(db, 'beta', {
    datastore_product: 'PSPS_beta', dvo_label: 'MD04', dvo_location: '/data/dvo/beta', epoch: '2026-02-01', active: '0',
  }, new Date(T0));
  const loader = await registerClient(db, { program: 'loader', config: 'alpha', host: 'ipp005', pid: 4242 }, new Date(now.getTime() - 7000));
  const poller = await registerClient(db, { program: 'pollodm', config: 'all', host: 'ipp009', pid: 5151 }, new Date(now.getTime() - 30_000));

  for (const [i, state, reason] of [[1, 'done', null], [2, 'done', null], [3, 'failed', 'smf has no chip tables'], [4, 'pending', null], [5, 'done', null]] as const) {
    await db.run(`INSERT INTO queue_item (config, batch_type, source_id, ra, dec, state, attempts, reason, queued_at, updated_at)
      VALUES ('alpha', ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [i === 5 ? 'ST' : 'P2', 100 + i, 10 * i, 5 - i, state, state === 'failed' ? 3 : 1, reason, at(0), at(i)]);
  }
  const odmReason = 'ODM: Detection row 17: ra 999.5 is outside 0..360';
  const processReason = 'smf 103: chip XY33 table is truncated';
  const batches: [number, string, number, Record<string, string>, string | null][] = [
    [1, 'P2', 101, { processed: 'succeeded', loaded_to_datastore: 'succeeded', loaded_to_odm: 'succeeded', merge_worthy: 'succeeded', merged: 'succeeded' }, null],
    [2, 'P2', 102, { processed: 'succeeded', loaded_to_datastore: 'succeeded', loaded_to_odm: 'failed' }, odmReason],
    [3, 'P2', 103, { processed: 'failed' }, processReason],
    [4, 'ST', 105, { processed: 'succeeded', loaded_to_datastore: 'succeeded', loaded_to_odm: 'pending' }, null],
  ];
  for (const [id, type, source, stages, reason] of batches) {
    const cols = Object.keys(stages);
    await db.run(`INSERT INTO batch (name, config, batch_type, source_id, created_at, n_rows, reason${cols.map((c) => `, ${c}, ${c}_at`).join('')})
      VALUES (?, 'alpha', ?, ?, ?, ?, ?${cols.map(() => ', ?, ?').join('')})`,
    [`B${String(id).padStart(8, '0')}`, type, source, at(10 + id), 1000 * id, reason, ...cols.flatMap((c) => [stages[c]!, at(20 + id)])]);
  }
  for (const [when, value] of [[at(30), 1], [at(90), 2]] as const) {
    await db.run(`INSERT INTO metrics (config, at, batch_type, name, value) VALUES ('alpha', ?, 'P2', 'batches_last_24h', ?),
      ('alpha', ?, 'ST', 'batches_last_24h', ?)`, [when, value * 10, when, value]);
  }
  return { loaderId: loader.client_id, pollerId: poller.client_id, odmReason, processReason };
}
