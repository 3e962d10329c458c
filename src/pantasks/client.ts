// The client of a pantasks server (the original's pantasks_client): every request of the API
// as one method.
import { createHttpClient, urlPath, type HttpClient } from '../common/index.ts';
import type { HostStatus } from './controller.ts';
import type { HostConfig } from './hosts.ts';
import type { PageWords } from './book.ts';
import type { JobStatus, ModuleStatus, SchedulerStatus } from './scheduler.ts';
import type { TaskOptions, TaskStatus } from './task.ts';

/** A book's pages, as the server lists them. */
export interface BookListing {
  readonly book: string;
  readonly pages: number;
  readonly states: Readonly<Record<string, number>>;
  readonly stale: boolean;
  readonly list: readonly { key: string; state: string; words: PageWords; job: number | null; host: string | null; handle: string | null }[];
}

/** Talks to one pantasks server. */
export class PantasksClient {
  readonly #http: HttpClient;

  constructor(url: string, token?: string) {
    this.#http = createHttpClient({ baseUrl: url, name: 'pantasks server', token });
  }

  status(): Promise<SchedulerStatus> {
    return this.#http.json('/status');
  }

  jobs(options: { finished?: boolean; limit?: number } = {}): Promise<JobStatus[]> {
    const q = new URLSearchParams();
    if (options.finished) q.set('finished', '1');
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    return this.#http.json(`/jobs${q.size > 0 ? `?${q}` : ''}`);
  }

  book(name: string, options: { state?: string; limit?: number } = {}): Promise<BookListing> {
    const q = new URLSearchParams();
    if (options.state) q.set('state', options.state);
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    return this.#http.json(`${urlPath('books', name)}${q.size > 0 ? `?${q}` : ''}`);
  }

  clearBook(name: string): Promise<unknown> {
    return this.#http.json(`${urlPath('books', name)}/clear`, { method: 'POST', json: {} });
  }

  run(): Promise<unknown> {
    return this.#http.json('/run', { method: 'POST', json: {} });
  }

  stop(): Promise<unknown> {
    return this.#http.json('/stop', { method: 'POST', json: {} });
  }

  /** Loads a module: an absolute path (resolve it on the client's side) or a built-in name. */
  load(module: string, config: unknown = {}): Promise<ModuleStatus> {
    return this.#http.json('/modules', { method: 'POST', json: { module, config } });
  }

  unload(module: string): Promise<unknown> {
    return this.#http.json('/modules/unload', { method: 'POST', json: { module } });
  }

  addHost(config: HostConfig): Promise<HostStatus[]> {
    return this.#http.json('/hosts', { method: 'POST', json: config });
  }

  removeHost(name: string): Promise<HostStatus[]> {
    return this.#http.json(urlPath('hosts', name), { method: 'DELETE' });
  }

  setHost(name: string, action: 'on' | 'off'): Promise<HostStatus[]> {
    return this.#http.json(`${urlPath('hosts', name)}/${action}`, { method: 'POST', json: {} });
  }

  setSlots(name: string, slots: number): Promise<HostStatus[]> {
    return this.#http.json(`${urlPath('hosts', name)}/slots`, { method: 'POST', json: { slots } });
  }

  setTask(name: string, options: TaskOptions): Promise<TaskStatus> {
    return this.#http.json(urlPath('tasks', name), { method: 'POST', json: options });
  }

  removeTask(name: string): Promise<unknown> {
    return this.#http.json(urlPath('tasks', name), { method: 'DELETE' });
  }

  labels(change: { add?: string[]; remove?: string[] }): Promise<{ labels: string[] }> {
    return this.#http.json('/labels', { method: 'POST', json: change });
  }

  shutdown(): Promise<unknown> {
    return this.#http.json('/shutdown', { method: 'POST', json: {} });
  }
}
