// The ODM's HTTP service: the status API of the contract (GET /batches, GET /batches/:name,
// DELETE /batches/:name/copy) and the DXLayer's hand-over (POST /batches).
import { HttpError, startHttpService, type HttpRoute, type HttpService, type Logger } from '../common/index.ts';
import { pspsStatus } from './errors.ts';
import { ODM_STATES, type Odm, type OdmBatchQuery, type OdmState, type OdmSubmission } from './odm.ts';

/** Options of {@link startOdmServer}. */
export interface OdmServerOptions {
  readonly odm: Odm;
  readonly host?: string;
  readonly port?: number;
  /** Bearer tokens: reads (status) and writes (hand-over, copy deletion). */
  readonly tokens?: { readonly read?: string; readonly write?: string };
  readonly log?: Logger;
}

/** Starts the ODM's HTTP service (the worker runs in `odm`). */
export async function startOdmServer(options: OdmServerOptions): Promise<HttpService> {
  const { odm } = options;
  const started = Date.now();
  const routes: HttpRoute[] = [
    {
      method: 'GET', path: '/health', access: 'open',
      handler: async () => ({
        json: {
          status: 'ok', batches: await odm.counts(), archive: odm.archive.url, q3c: odm.archive.q3c,
          uptimeSeconds: Math.round((Date.now() - started) / 1000),
        },
      }),
    },
    {
      method: 'GET', path: '/batches', access: 'read',
      handler: async ({ url }) => ({ json: { batches: await odm.list(queryOf(url.searchParams)) } }),
    },
    {
      method: 'POST', path: '/batches', access: 'write',
      handler: async (ctx) => {
        const { status, accepted } = await odm.submit(await ctx.json<OdmSubmission>());
        return { status: accepted ? 202 : 200, json: status };
      },
    },
    {
      method: 'GET', path: '/batches/:name', access: 'read',
      handler: async ({ params }) => ({ json: await odm.status(params.name) }),
    },
    {
      method: 'DELETE', path: '/batches/:name/copy', access: 'write',
      handler: async ({ params }) => ({ json: await odm.deleteCopy(params.name) }),
    },
  ];
  return startHttpService({
    name: 'ODM', routes, statusOf: pspsStatus,
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.tokens ? { tokens: options.tokens } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

function queryOf(q: URLSearchParams): OdmBatchQuery {
  const state = q.get('state') ?? undefined;
  if (state !== undefined && state !== '' && state !== 'all' && !ODM_STATES.includes(state as OdmState)) {
    throw new HttpError(400, 'bad_query', `state "${state}" must be one of ${ODM_STATES.join(', ')}`);
  }
  const since = q.get('since') ?? undefined;
  if (since !== undefined && Number.isNaN(Date.parse(since))) throw new HttpError(400, 'bad_query', `since "${since}" must be an ISO-8601 time`);
  const limit = q.get('limit') ?? undefined;
  if (limit !== undefined && !/^\d{1,7}$/.test(limit)) throw new HttpError(400, 'bad_query', `limit "${limit}" must be a whole number`);
  const type = q.get('type') ?? undefined;
  const product = q.get('product') ?? undefined;
  return {
    ...(state && state !== 'all' ? { state: state as OdmState } : {}),
    ...(type && type !== 'all' ? { type } : {}),
    ...(product ? { product } : {}),
    ...(since ? { since: new Date(since).toISOString() } : {}),
    ...(limit ? { limit: Number(limit) } : {}),
  };
}
