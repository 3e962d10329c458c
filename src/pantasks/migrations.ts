import type { RoomMigrations } from '../db/index.ts';

/**
 * The scheduler's own tables: pantasksMeta (this instance's id, the server that holds it) and
 * pantasksPage, one row per page of every book with the job that runs it, so that a restarted
 * server knows which rows were being worked on and by which job.
 */
export const PANTASKS_MIGRATIONS: RoomMigrations = {
  room: 'pantasks',
  migrations: [
    {
      version: 1,
      name: 'books pages meta',
      up: (d) => `
        CREATE TABLE pantasksMeta (
          name TEXT NOT NULL PRIMARY KEY,
          value TEXT NOT NULL
        );
        CREATE TABLE pantasksPage (
          book TEXT NOT NULL,
          page_key TEXT NOT NULL,
          ord ${d.bigint} NOT NULL,
          state TEXT NOT NULL,
          words TEXT NOT NULL,
          job_id ${d.bigint},
          job_host TEXT,
          job_handle TEXT,
          PRIMARY KEY (book, page_key)
        );
        CREATE INDEX pantasksPageState ON pantasksPage (state);
      `,
    },
  ],
};
