// The ODM status service as ippToPsps sees it (the contract's HTTP API): one batch's status,
// listings, and deleting the DXLayer's copy. Calls that fail because the service is down or
// broken are retried with a growing pause, so a poller rides out an ODM restart.
import { createHttpClient, isIppError, RemoteError, urlPath, type HttpClient, type Logger } from '../../common/index.ts';
import { IppToPspsError } from '../errors.ts';

/** A batch's state at the ODM. */
export type OdmState = 'received' | 'loaded' | 'merge_worthy' | 'failed' | 'merged';

/** What the ODM says about one batch (times are ISO-8601 UTC text or null). */
export interface OdmBatchStatus {
  readonly name: string;
  readonly product?: string;
  readonly type?: string;
  readonly state: OdmState;
  readonly receivedAt?: string | null;
  readonly loadedAt?: string | null;
  readonly mergeWorthyAt?: string | null;
  readonly failedAt?: string | null;
  readonly mergedAt?: string | null;
  readonly reasons?: readonly string[];
  readonly rows?: Readonly<Record<string, number>>;
}

/** A listing query of {@link OdmClient.list}. */
export interface OdmListQuery {
  readonly state?: OdmState;
  readonly type?: string;
  readonly product?: string;
  readonly since?: string;
}

/** How calls are retried while the ODM is down or answering 5xx. */
export interface RetryPolicy {
  /** First pause (default 1 s); each next one doubles up to `maxMs`. */
  readonly initialMs?: number;
  /** Longest pause (default 60 s). */
  readonly maxMs?: number;
  /** Give up (error `odm_unreachable`) after waiting this long in all (default 10 min). */
  readonly giveUpMs?: number;
}

/** Options of {@link OdmClient}. */
export interface OdmClientOptions {
  readonly url: string;
  readonly token?: string;
  readonly retry?: RetryPolicy;
  readonly log?: Logger;
  /** Per-call timeout (default 30 s). */
  readonly timeoutMs?: number;
}

const STATES: readonly string[] = ['received', 'loaded', 'merge_worthy', 'failed', 'merged'];

/** A client of the ODM status service. */
export class OdmClient {
  /** The service's base URL. */
  readonly url: string;
  readonly #http: HttpClient;
  readonly #retry: Required<RetryPolicy>;
  readonly #log: Logger | undefined;

  constructor(options: OdmClientOptions) {
    this.#http = createHttpClient({ baseUrl: options.url, name: 'ODM', token: options.token, timeoutMs: options.timeoutMs });
    this.url = this.#http.baseUrl;
    this.#retry = { initialMs: 1000, maxMs: 60_000, giveUpMs: 600_000, ...options.retry };
    this.#log = options.log;
  }

  /** The status of one batch; undefined when the ODM has never received it (404 `unknown_batch`). */
  async batch(name: string, signal?: AbortSignal): Promise<OdmBatchStatus | undefined> {
    return this.#withRetry(`status of ${name}`, signal, async () => {
      try {
        return checkStatus(await this.#http.json<unknown>(urlPath('batches', name), { signal }), name);
      } catch (error) {
        if (error instanceof RemoteError && (error.code === 'unknown_batch' || (error.status === 404 && error.code !== 'not_found'))) return undefined;
        throw error;
      }
    });
  }

  /** Batches matching a query, as the ODM lists them. */
  async list(query: OdmListQuery = {}, signal?: AbortSignal): Promise<OdmBatchStatus[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const path = `/batches${q.size ? `?${q}` : ''}`;
    return this.#withRetry('batch listing', signal, async () => {
      const answer = await this.#http.json<{ batches?: unknown }>(path, { signal });
      if (!answer || !Array.isArray(answer.batches)) throw new IppToPspsError('odm_bad_answer', `the ODM at ${this.url} answered ${path} without a "batches" list`);
      return answer.batches.map((b) => checkStatus(b, '(listing)'));
    });
  }

  /** Deletes the DXLayer's copy of a batch (idempotent); true when there was one to delete. */
  async deleteCopy(name: string, signal?: AbortSignal): Promise<boolean> {
    return this.#withRetry(`deleting the DXLayer copy of ${name}`, signal, async () => {
      try {
        const answer = await this.#http.json<{ deleted?: unknown }>(urlPath('batches', name, 'copy'), { method: 'DELETE', signal });
        return answer?.deleted === true;
      } catch (error) {
        // Neither the ODM nor the DXLayer ever had it: there is no copy to delete.
        if (error instanceof RemoteError && error.code === 'unknown_batch') return false;
        throw error;
      }
    });
  }

  /** True when the service answers its health check. */
  async healthy(signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#http.json('/health', { signal });
      return true;
    } catch {
      return false;
    }
  }

  async #withRetry<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    let pause = this.#retry.initialMs;
    let waited = 0;
    for (;;) {
      try {
        return await fn();
      } catch (error) {
        if (signal?.aborted || !transient(error)) throw error;
        if (waited >= this.#retry.giveUpMs) {
          throw new IppToPspsError('odm_unreachable',
            `the ODM at ${this.url} has not answered (${what}) for ${Math.round(waited / 1000)} s: ${(error as Error).message}`, { cause: error });
        }
        const wait = Math.min(pause, this.#retry.maxMs, this.#retry.giveUpMs - waited);
        this.#log?.warn(`ODM: ${what} failed (${(error as Error).message}); retrying in ${(wait / 1000).toFixed(1)} s`);
        await sleep(wait, signal);
        waited += wait;
        pause = Math.min(pause * 2, this.#retry.maxMs);
      }
    }
  }
}

/** Errors worth retrying: the service unreachable, timing out, or failing on its side. */
export function transient(error: unknown): boolean {
  if (error instanceof RemoteError) return error.status >= 500 || error.status === 429;
  if (isIppError(error)) return error.code === 'service_unreachable';
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = (): void => { signal?.removeEventListener('abort', abort); resolve(); };
    const timer = setTimeout(done, ms);
    const abort = (): void => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

function checkStatus(value: unknown, name: string): OdmBatchStatus {
  const v = value as Partial<OdmBatchStatus> | null;
  if (!v || typeof v !== 'object' || typeof v.name !== 'string' || typeof v.state !== 'string' || !STATES.includes(v.state)) {
    throw new IppToPspsError('odm_bad_answer', `the ODM's status of ${name} is not a batch status (name and a state of ${STATES.join('/')}): ${JSON.stringify(value)?.slice(0, 200)}`);
  }
  return v as OdmBatchStatus;
}
