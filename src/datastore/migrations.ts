import type { RoomMigrations } from '../db/index.ts';

/**
 * The datastore's schema: the original's dsProduct → dsFileset → dsFile, plus what a server
 * that commits filesets atomically needs (each fileset's directory, its file count and size,
 * a per-product read token hash) and dsStore, which ties the database to one root directory.
 */
export const DATASTORE_MIGRATIONS: RoomMigrations = {
  room: 'datastore',
  migrations: [
    {
      version: 1,
      name: 'products filesets files',
      up: (d) => `
        CREATE TABLE dsStore (
          store_id TEXT NOT NULL PRIMARY KEY,
          created_at TEXT NOT NULL
        );
        CREATE TABLE dsProduct (
          prod_id ${d.idColumn},
          prod_name TEXT NOT NULL UNIQUE,
          type TEXT NOT NULL,
          description TEXT NOT NULL,
          read_token_sha256 TEXT,
          created_at TEXT NOT NULL,
          last_fs TEXT,
          last_update TEXT NOT NULL
        );
        CREATE TABLE dsFileset (
          fileset_id ${d.idColumn},
          prod_id ${d.bigint} NOT NULL REFERENCES dsProduct (prod_id),
          fileset_name TEXT NOT NULL,
          reg_time TEXT NOT NULL,
          hide INTEGER NOT NULL DEFAULT 0,
          type TEXT NOT NULL,
          dir TEXT NOT NULL,
          file_count INTEGER NOT NULL,
          total_bytes ${d.bigint} NOT NULL,
          UNIQUE (prod_id, fileset_name)
        );
        CREATE INDEX dsFileset_prod_order ON dsFileset (prod_id, fileset_id);
        CREATE INDEX dsFileset_prod_time ON dsFileset (prod_id, reg_time);
        CREATE TABLE dsFile (
          file_id ${d.idColumn},
          fileset_id ${d.bigint} NOT NULL REFERENCES dsFileset (fileset_id),
          file_name TEXT NOT NULL,
          bytes ${d.bigint} NOT NULL,
          md5sum TEXT NOT NULL,
          type TEXT NOT NULL,
          UNIQUE (fileset_id, file_name)
        );
      `,
    },
  ],
};
