// The psps database: the ODM's batches (state, times, reasons) and the DXLayer's record of
// what it took. Shared by the ODM and the DXLayer (the ODM deletes the DXLayer's copies).
import type { RoomMigrations } from '../db/index.ts';

/** Migrations of the psps room. */
export const PSPS_MIGRATIONS: RoomMigrations = {
  room: 'psps',
  migrations: [
    {
      version: 1,
      name: 'odm batches and dxlayer takes',
      up: (d) => `
        CREATE TABLE odm_batch (
          name TEXT PRIMARY KEY,
          product TEXT NOT NULL,
          batch_type TEXT NOT NULL,
          generation INTEGER NOT NULL,
          state TEXT NOT NULL,
          md5 TEXT,
          dir TEXT,
          tables_json TEXT NOT NULL,
          rows_json TEXT,
          received_at TEXT NOT NULL,
          loaded_at TEXT,
          merge_worthy_at TEXT,
          failed_at TEXT,
          merged_at TEXT,
          copy_deleted_at TEXT,
          updated_at TEXT NOT NULL
        );
        CREATE INDEX odm_batch_state_idx ON odm_batch (state, received_at);
        CREATE INDEX odm_batch_updated_idx ON odm_batch (updated_at);
        CREATE TABLE odm_reason (
          name TEXT NOT NULL,
          seq INTEGER NOT NULL,
          reason TEXT NOT NULL,
          PRIMARY KEY (name, seq)
        );
        CREATE TABLE dxlayer_cursor (
          product TEXT PRIMARY KEY,
          after_id ${d.bigint} NOT NULL,
          updated_at TEXT NOT NULL
        );
        CREATE TABLE dxlayer_batch (
          product TEXT NOT NULL,
          fileset_id ${d.bigint} NOT NULL,
          name TEXT NOT NULL,
          dir TEXT NOT NULL,
          md5 TEXT,
          state TEXT NOT NULL,
          taken_at TEXT NOT NULL,
          handed_at TEXT,
          deleted_at TEXT,
          PRIMARY KEY (product, fileset_id)
        );
        CREATE INDEX dxlayer_batch_name_idx ON dxlayer_batch (name);
      `,
    },
    {
      version: 2,
      name: 'odm batch fileset id',
      // which datastore fileset a hand-over came from: the same md5 published again (a new
      // fileset) is a reload, the same fileset handed over again (a DXLayer restart) is not
      up: (d) => `ALTER TABLE odm_batch ADD COLUMN fileset_id ${d.bigint};`,
    },
    {
      version: 3,
      name: 'odm batch fits file',
      // the batch FITS file handed over with the CSV files: a PostgreSQL archive stages from it
      up: () => 'ALTER TABLE odm_batch ADD COLUMN fits_path TEXT;',
    },
  ],
};
