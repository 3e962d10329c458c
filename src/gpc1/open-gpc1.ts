import { openDatabase, type Database, type OpenOptions } from '../db/index.ts';
import { GPC1_MIGRATIONS } from './migrations.ts';

/** Opens the processing database a URL names and brings its schema up to date (creating it when new). */
export function openGpc1(url: string, options: Omit<OpenOptions, 'migrations'> = {}): Promise<Database> {
  return openDatabase(url, { ...options, migrations: [GPC1_MIGRATIONS] });
}
