// `ipp setup-scratch [URL]`: the original's setupScratchDb — prepare and register a scratch
// database for the loaders' DVO box pre-ingest.
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../../common/index.ts';
import { parseDbUrl } from '../../db/index.ts';
import { listScratch, openIppToPsps, setupScratch } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, ippToPspsSettings } from './ipptopsps-shared.ts';

/** `ipp setup-scratch`. */
export const setupScratchCommand: Command = {
  name: 'setup-scratch',
  summary: 'ippToPsps: prepare a scratch database (PostgreSQL or SQLite) for the loaders\' DVO box pre-ingest and register it',
  usage: '[URL] [--list] [--json]',
  description: [
    'Creates the DVO pre-ingest tables in the database URL names and registers it in the',
    'tracking database; a loader takes a free registered scratch database for as long as it',
    'runs (else it makes an embedded SQLite file under the data directory). Without URL: an',
    'SQLite file <data-dir>/scratch/<host>.db, registered for this host only. --list shows them.',
  ].join('\n'),
  options: {
    db: IPPTOPSPS_OPTIONS.db, settings: IPPTOPSPS_OPTIONS.settings, 'data-dir': IPPTOPSPS_OPTIONS['data-dir'],
    list: { type: 'boolean', help: 'list the registered scratch databases' },
    json: { type: 'boolean', help: 'print JSON' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 1) throw new UsageError('give at most one scratch database URL');
    const settings = await ippToPspsSettings(args, ctx.env);
    const db = await openIppToPsps(settings.trackingDb);
    try {
      if (args.values.list) {
        if (args.positionals.length) throw new UsageError('--list takes no URL');
        const all = await listScratch(db);
        if (args.values.json) ctx.stdout.write(`${JSON.stringify({ scratch: all })}\n`);
        else for (const s of all) ctx.stdout.write(`${s.scratch_id}\t${s.url}\t${s.host ?? 'any host'}\t${s.holder === null ? 'free' : `held by client ${s.holder}`}\n`);
        return EXIT.ok;
      }
      const host = hostname();
      let url = args.positionals[0];
      let onlyHere = true;
      if (url === undefined) {
        url = `sqlite:${join(resolve(settings.dataDir), 'scratch', `${host}.db`)}`;
      } else {
        const where = parseDbUrl(url);
        if (where.engine === 'sqlite') url = `sqlite:${resolve(where.path)}`;
        else onlyHere = false;
      }
      const record = await setupScratch(db, url, onlyHere ? host : null);
      if (args.values.json) ctx.stdout.write(`${JSON.stringify(record)}\n`);
      else ctx.stdout.write(`scratch database ${record.scratch_id} ready: ${url.replace(/\/\/[^@/]*@/, '//***@')} (${record.host ? `loaders on ${record.host}` : 'loaders on any host'})\n`);
      return EXIT.ok;
    } finally {
      await db.close();
    }
  },
};
