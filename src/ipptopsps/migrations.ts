import type { Dialect, RoomMigrations } from '../db/index.ts';

/** The stages a batch passes through, in order: one state column and one time column each in `batch`. */
export const BATCH_STAGES = [
  'processed', 'loaded_to_datastore', 'loaded_to_odm', 'merge_worthy', 'merged',
  'deleted_datastore', 'deleted_dxlayer', 'deleted_local',
] as const;

/** One of {@link BATCH_STAGES}. */
export type BatchStage = (typeof BATCH_STAGES)[number];

/** The state of a stage: NULL (not reached yet) or one of these. */
export type StageState = 'pending' | 'succeeded' | 'failed';

/**
 * The ippToPsps tracking database (the contract's tables): loading configs, the programs
 * running (clients), the sky grid (stripes, boxes), the queue of items, every batch with its
 * state at each stage and the events that changed it, the metrics time series, and the scratch
 * databases loaders may take. Times are ISO-8601 UTC text so that both engines compare them
 * as strings.
 */
export const IPPTOPSPS_MIGRATIONS: RoomMigrations = Object.freeze({
  room: 'ipptopsps',
  migrations: [
    {
      version: 1,
      name: 'config client stripe box queue_item batch batch_event metrics scratch',
      up: (d: Dialect) => `
        CREATE TABLE config (
          name TEXT NOT NULL PRIMARY KEY,
          datastore_product TEXT NOT NULL,
          datastore_type TEXT NOT NULL DEFAULT 'IPP_PSPS',
          datastore_publish INTEGER NOT NULL DEFAULT 0,
          dvo_label TEXT NOT NULL,
          dvo_location TEXT NOT NULL,
          gpc1_label TEXT NOT NULL DEFAULT '',
          min_ra ${d.double} NOT NULL DEFAULT 0,
          max_ra ${d.double} NOT NULL DEFAULT 360,
          min_dec ${d.double} NOT NULL DEFAULT -90,
          max_dec ${d.double} NOT NULL DEFAULT 90,
          box_size ${d.double} NOT NULL DEFAULT 2,
          epoch TEXT NOT NULL,
          batch_types TEXT NOT NULL DEFAULT 'P2,ST,OB',
          delete_datastore_on TEXT NOT NULL DEFAULT 'merge_worthy,failed',
          delete_dxlayer_on TEXT NOT NULL DEFAULT 'merge_worthy,failed',
          delete_local_on TEXT NOT NULL DEFAULT 'merged',
          max_attempts INTEGER NOT NULL DEFAULT 3,
          active INTEGER NOT NULL DEFAULT 1,
          updated_at TEXT NOT NULL
        );
        CREATE TABLE client (
          client_id ${d.idColumn},
          program TEXT NOT NULL,
          config TEXT NOT NULL,
          host TEXT NOT NULL,
          pid INTEGER NOT NULL,
          started_at TEXT NOT NULL,
          heartbeat_at TEXT NOT NULL,
          state TEXT NOT NULL DEFAULT 'running',
          request TEXT,
          log_path TEXT,
          current_item ${d.bigint},
          ended_at TEXT,
          detail TEXT
        );
        CREATE INDEX client_state ON client (state, heartbeat_at);
        CREATE TABLE stripe (
          stripe_id ${d.idColumn},
          config TEXT NOT NULL,
          ra_min ${d.double} NOT NULL,
          ra_max ${d.double} NOT NULL,
          holder ${d.bigint},
          held_at TEXT,
          UNIQUE (config, ra_min)
        );
        CREATE TABLE box (
          box_id ${d.idColumn},
          config TEXT NOT NULL,
          stripe_id ${d.bigint} NOT NULL REFERENCES stripe (stripe_id),
          ra_min ${d.double} NOT NULL,
          ra_max ${d.double} NOT NULL,
          dec_min ${d.double} NOT NULL,
          dec_max ${d.double} NOT NULL,
          UNIQUE (config, ra_min, dec_min)
        );
        CREATE INDEX box_stripe ON box (stripe_id, dec_min);
        CREATE TABLE queue_item (
          item_id ${d.idColumn},
          config TEXT NOT NULL,
          batch_type TEXT NOT NULL,
          source_id ${d.bigint} NOT NULL,
          box_id ${d.bigint} REFERENCES box (box_id),
          ra ${d.double},
          dec ${d.double},
          path TEXT,
          exp_id ${d.bigint},
          state TEXT NOT NULL DEFAULT 'pending',
          attempts INTEGER NOT NULL DEFAULT 0,
          claimed_by ${d.bigint},
          claim_expires TEXT,
          reason TEXT,
          batch_id ${d.bigint},
          queued_at TEXT NOT NULL,
          updated_at TEXT NOT NULL,
          UNIQUE (config, batch_type, source_id)
        );
        CREATE INDEX queue_item_box ON queue_item (box_id, state);
        CREATE INDEX queue_item_state ON queue_item (config, state, batch_type);
        CREATE TABLE batch (
          batch_id ${d.idColumn},
          name TEXT UNIQUE,
          config TEXT NOT NULL,
          batch_type TEXT NOT NULL,
          item_id ${d.bigint},
          source_id ${d.bigint},
          created_at TEXT NOT NULL,
          client_id ${d.bigint},
          local_path TEXT,
          fits_bytes ${d.bigint},
          fits_md5 TEXT,
          n_rows ${d.bigint},
          rows_json TEXT,
          purged INTEGER NOT NULL DEFAULT 0,
          reason TEXT,
          processed TEXT, processed_at TEXT,
          loaded_to_datastore TEXT, loaded_to_datastore_at TEXT,
          loaded_to_odm TEXT, loaded_to_odm_at TEXT,
          merge_worthy TEXT, merge_worthy_at TEXT,
          merged TEXT, merged_at TEXT,
          deleted_datastore TEXT, deleted_datastore_at TEXT,
          deleted_dxlayer TEXT, deleted_dxlayer_at TEXT,
          deleted_local TEXT, deleted_local_at TEXT
        );
        CREATE INDEX batch_config ON batch (config, batch_type, created_at);
        CREATE INDEX batch_source ON batch (config, batch_type, source_id);
        CREATE TABLE batch_event (
          event_id ${d.idColumn},
          batch_id ${d.bigint} NOT NULL REFERENCES batch (batch_id),
          stage TEXT NOT NULL,
          state TEXT,
          at TEXT NOT NULL,
          detail TEXT
        );
        CREATE INDEX batch_event_batch ON batch_event (batch_id, event_id);
        CREATE TABLE metrics (
          config TEXT NOT NULL,
          at TEXT NOT NULL,
          batch_type TEXT NOT NULL,
          name TEXT NOT NULL,
          value ${d.double},
          PRIMARY KEY (config, at, batch_type, name)
        );
        CREATE TABLE scratch (
          scratch_id ${d.idColumn},
          url TEXT NOT NULL UNIQUE,
          host TEXT,
          holder ${d.bigint},
          held_at TEXT,
          created_at TEXT NOT NULL
        );
      `,
    },
    {
      version: 2,
      name: 'queue_item bytes (size of a region item, for the loader\'s DVO look-up choice)',
      up: (d: Dialect) => `ALTER TABLE queue_item ADD COLUMN bytes ${d.bigint};`,
    },
    {
      version: 3,
      name: 'batch test flag (a --test batch holds one chip: it never counts as the item loaded)',
      up: () => 'ALTER TABLE batch ADD COLUMN test INTEGER NOT NULL DEFAULT 0;',
    },
  ],
});
