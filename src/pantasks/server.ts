// The pantasks server: the scheduler running in the background, and a small HTTP/JSON API on
// loopback through which clients load task modules, add hosts, look at tasks, jobs, hosts and
// books, start and stop the scheduling and change task options while it runs. Loading a
// module runs its code, so a server that listens beyond loopback must have a token.
import { HttpError, startHttpService, type HttpRoute, type HttpService, type Logger } from '../common/index.ts';
import { PantasksError } from './errors.ts';
import type { HostConfig } from './hosts.ts';
import { Scheduler, type SchedulerOptions } from './scheduler.ts';
import { loadTaskModule } from './task-module.ts';
import type { TaskOptions } from './task.ts';

/** Options of {@link startPantasksServer}. */
export interface PantasksServerOptions extends Omit<SchedulerOptions, 'loadModule'> {
  readonly host?: string;
  readonly port?: number;
  /** Required for every request when given (and required to listen beyond loopback). */
  readonly token?: string;
  /** Start trying tasks at once (otherwise as the database remembers, or on `run`). */
  readonly run?: boolean;
}

/** A running server. */
export interface PantasksServer {
  readonly url: string;
  readonly scheduler: Scheduler;
  /** Resolves when a client asked the server to shut down. */
  readonly shutdownRequested: Promise<void>;
  close(): Promise<void>;
}

/** HTTP status of each error code. */
export function pantasksStatusOf(code: string): number | undefined {
  if (code.startsWith('pantasks_unknown_')) return 404;
  if (code.startsWith('pantasks_duplicate_')) return 409;
  if (code === 'pantasks_task_module_failed') return 422;
  if (code === 'pantasks_stopped') return 503;
  return undefined;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

function names(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new HttpError(400, 'bad_request', `${what} must be a list of strings`);
  return value;
}

/** Opens the scheduler and starts the API; close it to shut everything down. */
export async function startPantasksServer(options: PantasksServerOptions): Promise<PantasksServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host) && !options.token) {
    throw new PantasksError('pantasks_bad_option', `a server listening on ${host} runs the code of any task module it is sent: give it a token (--token or IPP_PANTASKS_TOKEN), or listen on 127.0.0.1`);
  }
  const log: Logger = options.log;
  const scheduler = await Scheduler.open({
    ...options,
    loadModule: (module, config, s) => loadTaskModule(module, config, s, log),
  });
  let requestShutdown: () => void = () => {};
  const shutdownRequested = new Promise<void>((resolve) => {
    requestShutdown = resolve;
  });
  const routes: HttpRoute[] = [
    { method: 'GET', path: '/status', access: 'read', handler: async () => ({ json: scheduler.status() }) },
    {
      method: 'GET', path: '/jobs', access: 'read',
      handler: async (ctx) => {
        const limit = ctx.url.searchParams.get('limit');
        return { json: scheduler.jobs({ finished: ctx.url.searchParams.get('finished') === '1', limit: limit === null ? undefined : Math.max(0, Number(limit) || 0) }) };
      },
    },
    {
      method: 'GET', path: '/books/:book', access: 'read',
      handler: async (ctx) => {
        const book = scheduler.books.existing(ctx.params.book!);
        const state = ctx.url.searchParams.get('state');
        const limit = Number(ctx.url.searchParams.get('limit') ?? 1000) || 1000;
        const pages = [];
        for (const p of state ? book.inState(state) : book.pages()) {
          if (pages.length >= limit) break;
          pages.push({ key: p.key, state: p.state, words: p.words, job: p.jobId, host: p.jobHost, handle: p.jobHandle });
        }
        return { json: { book: book.name, pages: book.count(), states: book.counts(), stale: book.stale, list: pages } };
      },
    },
    {
      method: 'POST', path: '/books/:book/clear', access: 'write',
      handler: async (ctx) => {
        scheduler.books.existing(ctx.params.book!);
        scheduler.books.clear(ctx.params.book!);
        return { json: { book: ctx.params.book, cleared: true } };
      },
    },
    { method: 'POST', path: '/run', access: 'write', handler: async () => { await scheduler.run(); return { json: { running: true } }; } },
    { method: 'POST', path: '/stop', access: 'write', handler: async () => { await scheduler.stop(); return { json: { running: false } }; } },
    {
      method: 'POST', path: '/modules', access: 'write',
      handler: async (ctx) => {
        const body = await ctx.json<{ module?: unknown; config?: unknown }>();
        if (typeof body?.module !== 'string') throw new HttpError(400, 'bad_request', 'give { "module": FILE_OR_NAME, "config": {...} }');
        return { json: await scheduler.loadModule(body.module, body.config ?? {}) };
      },
    },
    {
      method: 'POST', path: '/modules/unload', access: 'write',
      handler: async (ctx) => {
        const body = await ctx.json<{ module?: unknown }>();
        if (typeof body?.module !== 'string') throw new HttpError(400, 'bad_request', 'give { "module": FILE_OR_NAME }');
        await scheduler.unloadModule(body.module);
        return { json: { module: body.module, unloaded: true } };
      },
    },
    {
      method: 'POST', path: '/hosts', access: 'write',
      handler: async (ctx) => {
        await scheduler.addHost(await ctx.json<HostConfig>());
        return { status: 201, json: scheduler.controller.hosts() };
      },
    },
    {
      method: 'DELETE', path: '/hosts/:name', access: 'write',
      handler: async (ctx) => {
        await scheduler.removeHost(ctx.params.name!);
        return { json: scheduler.controller.hosts() };
      },
    },
    {
      method: 'POST', path: '/hosts/:name/:action', access: 'write',
      handler: async (ctx) => {
        const action = ctx.params.action;
        if (action === 'on' || action === 'off') await scheduler.setHostOn(ctx.params.name!, action === 'on');
        else if (action === 'slots') {
          const body = await ctx.json<{ slots?: unknown }>();
          scheduler.controller.setSlots(ctx.params.name!, body?.slots as number);
        } else throw new HttpError(404, 'not_found', `no host action ${action}; use on, off or slots`);
        return { json: scheduler.controller.hosts() };
      },
    },
    {
      method: 'POST', path: '/tasks/:name', access: 'write',
      handler: async (ctx) => ({ json: scheduler.setTaskOptions(ctx.params.name!, await ctx.json<TaskOptions>()) }),
    },
    {
      method: 'DELETE', path: '/tasks/:name', access: 'write',
      handler: async (ctx) => {
        scheduler.removeTask(ctx.params.name!);
        return { json: { task: ctx.params.name, removed: true } };
      },
    },
    {
      method: 'POST', path: '/labels', access: 'write',
      handler: async (ctx) => {
        const body = await ctx.json<{ add?: unknown; remove?: unknown }>();
        if (body?.add !== undefined) await scheduler.addLabels(names(body.add, 'add'));
        if (body?.remove !== undefined) await scheduler.removeLabels(names(body.remove, 'remove'));
        return { json: { labels: scheduler.labels } };
      },
    },
    {
      method: 'POST', path: '/shutdown', access: 'write',
      handler: async () => {
        setImmediate(requestShutdown);
        return { json: { shutting_down: true } };
      },
    },
  ];
  let service: HttpService;
  try {
    service = await startHttpService({
      name: 'pantasks', routes, host, port: options.port ?? 0, log: log.child('http'), statusOf: pantasksStatusOf,
      tokens: options.token ? { read: options.token, write: options.token } : undefined,
    });
  } catch (error) {
    await scheduler.close();
    throw error;
  }
  if (options.run) await scheduler.run();
  let closing: Promise<void> | null = null;
  return {
    url: service.url, scheduler, shutdownRequested,
    close: () => {
      closing ??= (async () => {
        await service.close();
        await scheduler.close();
      })();
      return closing;
    },
  };
}
