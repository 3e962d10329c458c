// The Nebulous schema, as numbered migrations of the room "nebulous". Table names follow the
// original (storage_object, instance, volume) with a neb_ prefix, since rooms may share one
// database.
import type { Dialect, Migration, RoomMigrations } from '../db/index.ts';

// Keys compare byte by byte on both engines, so a key prefix is one range of the index
// (PostgreSQL's default collation would order keys by language rules instead).
const keyType = (d: Dialect): string => (d.engine === 'postgres' ? 'TEXT COLLATE "C"' : 'TEXT');

const initial: Migration = {
  version: 1,
  name: 'volumes, storage objects, instances, locks, attributes',
  up: (d) => `
    CREATE TABLE neb_volume (
      vol_id ${d.idColumn},
      name TEXT NOT NULL UNIQUE,
      host TEXT NOT NULL,
      path TEXT NOT NULL,
      state TEXT NOT NULL,
      capacity ${d.bigint},
      free ${d.bigint},
      measured INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE TABLE neb_storage_object (
      so_id ${d.bigint} PRIMARY KEY,
      ext_id ${keyType(d)} NOT NULL,
      tomb ${d.bigint} NOT NULL,
      state TEXT NOT NULL,
      size ${d.bigint},
      checksum TEXT,
      copies INTEGER NOT NULL,
      read_locks INTEGER NOT NULL,
      write_holder TEXT,
      lock_time TEXT,
      created_at TEXT NOT NULL,
      modified_at TEXT NOT NULL,
      deleted_at TEXT
    );
    CREATE UNIQUE INDEX neb_storage_object_key ON neb_storage_object (ext_id, tomb);
    CREATE TABLE neb_instance (
      ins_id ${d.bigint} PRIMARY KEY,
      so_id ${d.bigint} NOT NULL REFERENCES neb_storage_object (so_id),
      vol_id ${d.bigint} NOT NULL REFERENCES neb_volume (vol_id),
      rel_path TEXT NOT NULL,
      pinned INTEGER NOT NULL,
      created_at TEXT NOT NULL
    );
    CREATE INDEX neb_instance_object ON neb_instance (so_id);
    CREATE INDEX neb_instance_volume ON neb_instance (vol_id);
    CREATE TABLE neb_lock (
      lock_id ${d.idColumn},
      so_id ${d.bigint} NOT NULL REFERENCES neb_storage_object (so_id),
      holder TEXT NOT NULL,
      mode TEXT NOT NULL,
      acquired_at TEXT NOT NULL
    );
    CREATE INDEX neb_lock_object ON neb_lock (so_id);
    CREATE INDEX neb_lock_holder ON neb_lock (holder);
    CREATE TABLE neb_holder (
      holder TEXT PRIMARY KEY,
      heartbeat_at TEXT NOT NULL
    );
    CREATE TABLE neb_attr (
      so_id ${d.bigint} NOT NULL REFERENCES neb_storage_object (so_id),
      name TEXT NOT NULL,
      value TEXT NOT NULL,
      PRIMARY KEY (so_id, name)
    );
    CREATE TABLE neb_id_block (
      name TEXT PRIMARY KEY,
      next_id ${d.bigint} NOT NULL
    );
    INSERT INTO neb_id_block (name, next_id) VALUES ('object', 1), ('instance', 1);
  `,
};

// Regular-expression and LIKE searches on PostgreSQL go through a trigram index (pg_trgm):
// an unanchored expression over a million keys reads the candidates the index names instead of
// every row (0.6 s instead of 1.4 s measured). It costs each create some 50 µs of database
// time. Where the extension cannot be created the searches still work, by scanning.
// The index is on `ext_id || ''`, which searches write out, rather than on ext_id: a trigram
// index also answers `=`, and the planner took it for the lookups of find (30 ms each with
// recent inserts in the index's pending list, instead of 0.1 ms through the key's b-tree).
const trigrams: Migration = {
  version: 2,
  name: 'trigram index of keys (PostgreSQL)',
  up: (d) => (d.engine !== 'postgres' ? 'SELECT 1;' : `
    DO $$
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_trgm;
      CREATE INDEX neb_storage_object_trigram ON neb_storage_object USING gin ((ext_id || '') gin_trgm_ops) WHERE tomb = 0;
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'nebulous: no trigram index (%); pattern searches will scan every key', SQLERRM;
    END
    $$;
  `),
};

/** The migrations of the Nebulous room, for `openDatabase(url, { migrations: [NEBULOUS_MIGRATIONS] })`. */
export const NEBULOUS_MIGRATIONS: RoomMigrations = Object.freeze({
  room: 'nebulous',
  migrations: [initial, trigrams],
});
