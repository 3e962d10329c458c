// The console's HTTP server: one page (HTML, CSS and a small script served from ./assets) and
// a JSON API over the tracking database. Reads are open; writes (client requests, config
// edits) need the token when one is set, and are refused off loopback when none is.
import { readFile } from 'node:fs/promises';
import {
  HttpError, silentLogger, startHttpService,
  type HttpReply, type HttpRequestContext, type HttpRoute, type Logger,
} from '../../common/index.ts';
import type { Database } from '../../db/index.ts';
import {
  CONFIG_FIELDS, configField, configToJson, findConfig, getConfig, listConfigs, parseConfigValue, saveConfig, setConfigActive,
  type LoadingConfig,
} from '../configs.ts';
import { requestClient, type ClientRequest } from '../clients.ts';
import { IppToPspsError } from '../errors.ts';
import { BATCH_STAGES } from '../migrations.ts';
import { consoleStatus } from './errors.ts';
import {
  clientViews, failedBatches, failedItems, latestBatches, latestMetrics, stageTable,
  type BatchView, type ClientView, type FailedItemView, type MetricsView, type StageRow,
} from './queries.ts';

/** A PNG plot the console can show. */
export interface ConsolePlot {
  readonly config: string;
  /** File-like name, unique within its config (e.g. `P2_batches.png`). */
  readonly name: string;
  readonly title: string;
  /** Changes when the plot would look different (the page fetches it again then). */
  readonly version?: string;
}

/** Where plots come from (the lifecycle room's plotters); absent: the page shows none. */
export interface ConsolePlotSource {
  /** The plots there are for these configs. */
  list(db: Database, configs: readonly string[]): Promise<ConsolePlot[]>;
  /** One plot as PNG bytes, or undefined when there is no such plot. */
  render(db: Database, config: string, name: string): Promise<Uint8Array | undefined>;
}

/** Options of {@link startConsoleServer}. */
export interface ConsoleServerOptions {
  /** The tracking database, migrations applied (openIppToPsps); the caller closes it. */
  readonly db: Database;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** The bearer token writes need; without one, writes are allowed on loopback only. */
  readonly token?: string;
  readonly log?: Logger;
  /** How often the page polls (default 3 s). */
  readonly refreshSeconds?: number;
  readonly plots?: ConsolePlotSource;
  /** Clock (heartbeat ages, config times). */
  readonly now?: () => Date;
}

/** How a console treats writes: token needed, open (loopback, no token), or refused. */
export type ConsoleWrites = 'token' | 'open' | 'refused';

/** A running console. */
export interface ConsoleServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly writes: ConsoleWrites;
  close(): Promise<void>;
}

/** A config as the API sends it: typed text of every field, as the editor shows it. */
export interface ConfigJson {
  readonly name: string;
  readonly active: boolean;
  readonly updatedAt: string;
  readonly values: Readonly<Record<string, string | number>>;
}

/** What `GET /api/overview` answers: everything the page shows, in one poll. */
export interface ConsoleOverview {
  readonly now: string;
  readonly writes: ConsoleWrites;
  readonly refreshSeconds: number;
  /** The config the view is narrowed to, if any. */
  readonly config: string | null;
  readonly stageNames: readonly string[];
  readonly configs: readonly ConfigJson[];
  readonly clients: readonly ClientView[];
  readonly stages: readonly StageRow[];
  readonly failedBatches: readonly BatchView[];
  readonly failedItems: readonly FailedItemView[];
  readonly latestBatches: readonly BatchView[];
  readonly metrics: readonly MetricsView[];
  readonly plots: readonly (ConsolePlot & { readonly url: string })[];
}

/** The body of every refused request. */
export interface ConsoleErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
const CLIENT_REQUESTS: readonly ClientRequest[] = ['pause', 'resume', 'stop'];
const ASSETS: Readonly<Record<string, string>> = {
  'console.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
};

/** Reads the page's files (HTML, CSS, script) that sit beside this module. */
async function loadAssets(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of Object.keys(ASSETS)) out.set(name, await readFile(new URL(`./assets/${name}`, import.meta.url), 'utf8'));
  return out;
}

function configJson(c: LoadingConfig): ConfigJson {
  const { name: _name, updated_at: _updated, ...values } = configToJson(c);
  return { name: c.name, active: c.active, updatedAt: c.updated_at, values };
}

/** The fields of a config as the page's form builds them. */
export function consoleFields(): { name: string; type: string; default: string | null; help: string }[] {
  return CONFIG_FIELDS.map((f) => ({ name: f.name, type: f.sqlType, default: f.defaultText ?? null, help: f.help }));
}

/** Starts the console on loopback (by default) and resolves once it listens. */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const { db } = options;
  const log = options.log ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const host = options.host ?? '127.0.0.1';
  const writes: ConsoleWrites = options.token !== undefined ? 'token' : LOOPBACK.test(host) ? 'open' : 'refused';
  const refreshSeconds = options.refreshSeconds ?? 3;
  const assets = await loadAssets();

  const requireWritable = (): void => {
    if (writes === 'refused') {
      throw new HttpError(403, 'writes_disabled',
        `this console has no token and listens on ${host}, so it refuses changes; restart it with --token (or IPP_CONSOLE_TOKEN)`);
    }
  };

  const asset = (name: string): HttpRoute => ({
    method: 'GET', path: name === 'console.html' ? '/' : `/${name}`, access: 'open',
    handler: async () => ({ text: assets.get(name)!, headers: { 'content-type': ASSETS[name]!, 'cache-control': 'no-store' } }),
  });

  const configFilter = (ctx: HttpRequestContext): string | undefined => {
    const c = ctx.url.searchParams.get('config');
    return c === null || c === '' ? undefined : c;
  };

  const limitParam = (ctx: HttpRequestContext, fallback: number): number => {
    const text = ctx.url.searchParams.get('limit');
    if (text === null || text === '') return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new HttpError(400, 'bad_limit', `limit "${text}" must be a whole number from 1 to 1000`);
    return n;
  };

  const plotList = async (configs: readonly string[]) => {
    if (!options.plots || configs.length === 0) return [];
    try {
      const plots = await options.plots.list(db, configs);
      return plots.map((p) => ({
        ...p, url: `api/plots/${encodeURIComponent(p.config)}/${encodeURIComponent(p.name)}${p.version === undefined ? '' : `?v=${encodeURIComponent(p.version)}`}`,
      }));
    } catch (error) {
      // A plotter that fails must not take the rest of the page with it.
      log.warn(`console: listing plots failed: ${error instanceof Error ? error.message : String(error)}`);
      return [];
    }
  };

  /** The typed values of a write's body: `{ values: { field: text } }`, text for every field named. */
  const bodyValues = async (ctx: HttpRequestContext): Promise<{ name?: unknown; values: Record<string, string> }> => {
    const body = await ctx.json<unknown>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'bad_request', 'the body must be a JSON object such as {"values": {"box_size": "2"}}');
    }
    const raw = (body as Record<string, unknown>).values ?? {};
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new HttpError(400, 'bad_request', '"values" must be an object of field names to values');
    }
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v === 'string') values[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') values[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
      else throw new HttpError(400, 'config_value_invalid', `${k}: give the value as text or a number, not ${v === null ? 'null' : typeof v}`);
    }
    return { name: (body as Record<string, unknown>).name, values };
  };

  /**
   * Saves a config, answering a bad value with 400 and the field it concerns, so the page can
   * mark that input. Values are checked field by field with the room's own parser first, so
   * the first bad field is the one named.
   */
  const save = async (name: string, values: Record<string, string>): Promise<HttpReply> => {
    const refused = (error: unknown, field: string | undefined): HttpReply => {
      if (!(error instanceof IppToPspsError) || !error.code.startsWith('config_') || error.code === 'config_unknown') throw error;
      return { status: 400, json: { error: { code: error.code, message: error.message, ...(field ? { field } : {}) } } };
    };
    for (const [key, text] of Object.entries(values)) {
      try {
        parseConfigValue(name, configField(key), text);
      } catch (error) {
        return refused(error, key);
      }
    }
    try {
      return { json: { config: configJson(await saveConfig(db, name, values, now())) } };
    } catch (error) {
      return refused(error, error instanceof Error ? fieldNamedIn(error.message) : undefined);
    }
  };

  const routes: HttpRoute[] = [
    asset('console.html'), asset('console.css'), asset('console.js'),
    { method: 'GET', path: '/index.html', access: 'open', handler: async () => ({ status: 301, headers: { location: './' } }) },
    // Browsers ask for an icon; an empty answer keeps their consoles quiet.
    { method: 'GET', path: '/favicon.ico', access: 'open', handler: async () => ({ status: 204 }) },
    { method: 'GET', path: '/api/health', access: 'open', handler: async () => ({ json: { ok: true, writes } }) },
    {
      method: 'GET', path: '/api/overview', access: 'read',
      handler: async (ctx) => {
        const config = configFilter(ctx);
        const at = now();
        const configs = (await listConfigs(db)).map(configJson);
        // Plots of the chosen config, or of the active ones: an inactive campaign's charts are history.
        const shown = config === undefined ? configs.filter((c) => c.active).map((c) => c.name) : [config];
        const [clients, stages, failed, items, latest, metrics, plots] = await Promise.all([
          clientViews(db, at),
          stageTable(db, config),
          failedBatches(db, { config, limit: limitParam(ctx, 50) }),
          failedItems(db, { config, limit: limitParam(ctx, 50) }),
          latestBatches(db, { config, limit: 20 }),
          latestMetrics(db, config),
          plotList(shown),
        ]);
        const overview: ConsoleOverview = {
          now: at.toISOString(), writes, refreshSeconds, config: config ?? null, stageNames: BATCH_STAGES,
          configs, clients: config === undefined ? clients : clients.filter((c) => c.config === config || c.config === 'all'),
          stages, failedBatches: failed, failedItems: items, latestBatches: latest, metrics, plots,
        };
        return { json: overview };
      },
    },
    { method: 'GET', path: '/api/fields', access: 'read', handler: async () => ({ json: { fields: consoleFields() } }) },
    { method: 'GET', path: '/api/configs', access: 'read', handler: async () => ({ json: { configs: (await listConfigs(db)).map(configJson) } }) },
    {
      method: 'GET', path: '/api/configs/:name', access: 'read',
      handler: async (ctx) => ({ json: { config: configJson(await getConfig(db, ctx.params.name!)) } }),
    },
    {
      method: 'POST', path: '/api/configs', access: 'write',
      handler: async (ctx) => {
        requireWritable();
        const { name, values } = await bodyValues(ctx);
        if (typeof name !== 'string' || name.trim() === '') {
          return { status: 400, json: { error: { code: 'config_name_invalid', message: 'give the new config a name', field: 'name' } } };
        }
        if (await findConfig(db, name.trim())) {
          throw new HttpError(409, 'config_exists', `a config named "${name.trim()}" exists already; edit it instead`);
        }
        const reply = await save(name.trim(), values);
        return reply.status === undefined ? { ...reply, status: 201 } : reply;
      },
    },
    {
      method: 'PUT', path: '/api/configs/:name', access: 'write',
      handler: async (ctx) => {
        requireWritable();
        await getConfig(db, ctx.params.name!);
        const { values } = await bodyValues(ctx);
        return save(ctx.params.name!, values);
      },
    },
    ...(['activate', 'deactivate'] as const).map((what): HttpRoute => ({
      method: 'POST', path: `/api/configs/:name/${what}`, access: 'write',
      handler: async (ctx) => {
        requireWritable();
        const saved = await setConfigActive(db, ctx.params.name!, what === 'activate', now());
        log.info(`console: config ${saved.name} ${what}d`);
        return { json: { config: configJson(saved) } };
      },
    })),
    { method: 'GET', path: '/api/clients', access: 'read', handler: async () => ({ json: { clients: await clientViews(db, now()) } }) },
    {
      method: 'POST', path: '/api/clients/:id/:request', access: 'write',
      handler: async (ctx) => {
        requireWritable();
        const request = ctx.params.request as ClientRequest;
        if (!CLIENT_REQUESTS.includes(request)) {
          throw new HttpError(404, 'not_found', `no such client request "${ctx.params.request}"; use ${CLIENT_REQUESTS.join(', ')}`);
        }
        const id = Number(ctx.params.id);
        if (!Number.isSafeInteger(id) || id < 1) throw new HttpError(400, 'bad_client_id', `client id "${ctx.params.id}" is not a whole number`);
        await requestClient(db, id, request);
        log.info(`console: asked client ${id} to ${request}`);
        const client = (await clientViews(db, now())).find((c) => c.clientId === id);
        return { json: { client } };
      },
    },
    {
      method: 'GET', path: '/api/stages', access: 'read',
      handler: async (ctx) => ({ json: { stageNames: BATCH_STAGES, stages: await stageTable(db, configFilter(ctx)) } }),
    },
    {
      method: 'GET', path: '/api/batches', access: 'read',
      handler: async (ctx) => {
        const view = ctx.url.searchParams.get('view') ?? 'latest';
        const query = { config: configFilter(ctx), limit: limitParam(ctx, view === 'latest' ? 20 : 50) };
        if (view === 'latest') return { json: { batches: await latestBatches(db, query) } };
        if (view === 'failed') return { json: { batches: await failedBatches(db, query), items: await failedItems(db, query) } };
        throw new HttpError(400, 'bad_view', `view "${view}" is not latest or failed`);
      },
    },
    {
      method: 'GET', path: '/api/metrics', access: 'read',
      handler: async (ctx) => {
        const config = configFilter(ctx);
        const metrics = await latestMetrics(db, config);
        const names = config === undefined ? (await listConfigs(db, { activeOnly: true })).map((c) => c.name) : [config];
        return { json: { metrics, plots: await plotList(names) } };
      },
    },
    {
      method: 'GET', path: '/api/plots/:config/:name', access: 'read',
      handler: async (ctx) => {
        const png = options.plots ? await options.plots.render(db, ctx.params.config!, ctx.params.name!) : undefined;
        if (png === undefined) throw new HttpError(404, 'plot_not_found', `no plot "${ctx.params.name}" for config "${ctx.params.config}"`);
        ctx.res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.byteLength), 'cache-control': 'no-store' });
        ctx.res.end(png);
        return undefined;
      },
    },
  ];

  const service = await startHttpService({
    name: 'console', routes, host, port: options.port ?? 0, log,
    tokens: options.token === undefined ? {} : { write: options.token },
    statusOf: consoleStatus,
  });
  if (writes === 'refused') log.warn(`console: no token and not on loopback (${host}): the console is read only`);
  return { url: service.url, port: service.port, writes, close: () => service.close() };
}

/** The config field a room error's message names first ("config X: min_ra ..."), if any. */
function fieldNamedIn(message: string): string | undefined {
  const rest = message.replace(/^config [^:]*: /, '');
  return CONFIG_FIELDS.map((f) => f.name).find((name) => rest.startsWith(`${name} `) || rest.startsWith(`${name}:`));
}
