// `ipp console`: the web page for running a loading campaign (the original's console.py),
// served over the tracking database until Ctrl-C.
import { UsageError } from '../../common/index.ts';
import { openIppToPsps } from '../../ipptopsps/index.ts';
import { lifecyclePlotSource, startConsoleServer } from '../../ipptopsps/console/index.ts';
import { EXIT, portNumber, type Command } from '../command.ts';
import { serverToken } from '../settings.ts';
import { IPPTOPSPS_OPTIONS, ippToPspsSettings } from './ipptopsps-shared.ts';

/** The port `ipp console` listens on unless told otherwise. */
export const DEFAULT_CONSOLE_PORT = 8490;

/** `ipp console`: serves the campaign page until Ctrl-C. */
export const consoleCommand: Command = {
  name: 'console',
  summary: 'the web page of a loading campaign: configs, clients (pause/stop), batches by stage, metrics',
  usage: '[--db URL] [--settings FILE] [--host H] [--port P] [--token T] [--refresh SECONDS]',
  description: [
    'Serves a page over the tracking database: configs (view, edit, new, activate), the clients',
    '(pause, resume, stop: the programs obey at their next heartbeat), the Pend/Succ/Fail table',
    'of every stage, failed batches and queue items with their reasons, the latest batches, the',
    'newest metrics and plots; the page refreshes itself every few seconds.',
    'Changes need --token (or $IPP_CONSOLE_TOKEN) when one is set: type it on the page or open',
    'the address with #token=T. Without a token the console accepts changes only on loopback.',
  ].join('\n'),
  options: {
    db: IPPTOPSPS_OPTIONS.db!,
    settings: IPPTOPSPS_OPTIONS.settings!,
    host: { type: 'string', value: 'HOST', help: 'address to listen on', default: '127.0.0.1' },
    port: { type: 'string', value: 'PORT', help: 'port to listen on (0: any free port)', default: String(DEFAULT_CONSOLE_PORT) },
    token: { type: 'string', value: 'TOKEN', help: 'bearer token that changes need (default $IPP_CONSOLE_TOKEN)' },
    refresh: { type: 'string', value: 'SECONDS', help: 'how often the page refreshes itself (default 3)' },
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`ipp console takes no arguments, not "${args.positionals[0]}"`);
    const port = portNumber(args.values.port);
    const refresh = args.values.refresh === undefined ? 3 : Number(args.values.refresh);
    if (!Number.isFinite(refresh) || refresh < 0.5 || refresh > 3600) throw new UsageError(`--refresh "${args.values.refresh}" must be a number of seconds from 0.5 to 3600`);
    const host = String(args.values.host);
    if (host.trim() === '') throw new UsageError('--host is empty; give an address such as 127.0.0.1');
    const token = serverToken('console', args, ctx.env);
    const settings = await ippToPspsSettings(args, ctx.env);
    const log = ctx.log.child('console');
    const db = await openIppToPsps(settings.trackingDb);
    try {
      const server = await startConsoleServer({ db, host, port, token, log, refreshSeconds: refresh, plots: lifecyclePlotSource() });
      const writes = server.writes === 'token' ? 'need the token' : server.writes === 'open' ? 'open (loopback only, no token set)' : 'refused (no token set)';
      ctx.stdout.write(`console: ${server.url}/ (tracking database ${db.url}); changes ${writes}\n`);
      await new Promise<void>((done) => {
        if (ctx.signal.aborted) done();
        else ctx.signal.addEventListener('abort', () => done(), { once: true });
      });
      await server.close();
      ctx.stdout.write('console: stopped\n');
    } finally {
      await db.close();
    }
    return EXIT.ok;
  },
};
