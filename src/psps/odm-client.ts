// A client of the ODM's HTTP service: the DXLayer hands batches over with it, and
// `ipp odm status` asks with it.
import { createHttpClient, urlPath, type HttpClient } from '../common/index.ts';
import type { OdmBatchQuery, OdmBatchStatus, OdmSubmission } from './odm.ts';

/** The answer of `GET /health`. */
export interface OdmHealth {
  readonly status: 'ok';
  readonly batches: Record<string, number>;
  readonly archive: string;
  readonly q3c: boolean;
  readonly uptimeSeconds: number;
}

/** A client of one ODM. */
export class OdmClient {
  readonly url: string;
  readonly #http: HttpClient;

  constructor(options: { url: string; token?: string; timeoutMs?: number }) {
    this.#http = createHttpClient({ baseUrl: options.url, name: 'ODM', token: options.token, timeoutMs: options.timeoutMs });
    this.url = this.#http.baseUrl;
  }

  /** The service's counts. */
  health(): Promise<OdmHealth> {
    return this.#http.json<OdmHealth>('/health');
  }

  /** One batch; a RemoteError with code `unknown_batch` (404) when the ODM never got it. */
  batch(name: string): Promise<OdmBatchStatus> {
    return this.#http.json<OdmBatchStatus>(urlPath('batches', name));
  }

  /** Batches by state, type, product, changed since a time. */
  async batches(query: OdmBatchQuery = {}): Promise<OdmBatchStatus[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    return (await this.#http.json<{ batches: OdmBatchStatus[] }>(`/batches${q.size ? `?${q}` : ''}`)).batches;
  }

  /** Hands a batch over (the DXLayer's step). */
  submit(submission: OdmSubmission): Promise<OdmBatchStatus> {
    return this.#http.json<OdmBatchStatus>('/batches', { method: 'POST', json: submission });
  }

  /** Deletes the DXLayer's copy of a batch. */
  deleteCopy(name: string): Promise<{ name: string; deleted: boolean }> {
    return this.#http.json(urlPath('batches', name, 'copy'), { method: 'DELETE' });
  }
}
