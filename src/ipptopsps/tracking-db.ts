import { openDatabase, type Database, type OpenOptions } from '../db/index.ts';
import { IPPTOPSPS_MIGRATIONS } from './migrations.ts';

/** The default tracking database: an embedded SQLite file under ./ipp-data. */
export const DEFAULT_TRACKING_DB = 'sqlite:ipp-data/ipptopsps.db';

/** Opens the ippToPsps tracking database (SQLite or PostgreSQL) with its schema brought up to date. */
export function openIppToPsps(url: string = DEFAULT_TRACKING_DB, options: Omit<OpenOptions, 'migrations'> = {}): Promise<Database> {
  return openDatabase(url, { ...options, migrations: [IPPTOPSPS_MIGRATIONS] });
}
