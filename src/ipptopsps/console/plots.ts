// The console's plots: the lifecycle room's metrics time series and pending-item density
// maps, drawn on request into a temporary directory and kept in memory until the data they
// show changes (a new metrics snapshot, a change in the pending queue).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Database, Queryable } from '../../db/index.ts';
import { findConfig, type LoadingConfig } from '../configs.ts';
import { writeDensityPlots, writeMetricsPlots } from '../lifecycle/index.ts';
import type { ConsolePlot, ConsolePlotSource } from './server.ts';

interface Rendered {
  readonly version: string;
  /** Shared by the requests that arrive while it is drawn (a page asks for every plot at once). */
  readonly files: Promise<Map<string, Uint8Array>>;
}

/** What a plot family's data looks like now, so that a drawing is reused until it changes. */
async function versions(q: Queryable, config: string): Promise<{ metrics: string; pending: string }> {
  const m = await q.get('SELECT MAX(at) AS at, COUNT(*) AS n FROM metrics WHERE config = ?', [config]);
  const p = await q.get(`SELECT COUNT(*) AS n, MAX(updated_at) AS at FROM queue_item WHERE config = ? AND state = 'pending'`, [config]);
  return { metrics: `${String(m?.at ?? '')}/${Number(m?.n ?? 0)}`, pending: `${Number(p?.n ?? 0)}/${String(p?.at ?? '')}` };
}

/** The plot names of a config: metrics charts (`<config>_batches.png`...) and one density map per type. */
function plotNames(config: LoadingConfig): { name: string; title: string; family: 'metrics' | 'pending' }[] {
  return [
    { name: `${config.name}_batches.png`, title: `${config.name}: published batches`, family: 'metrics' },
    { name: `${config.name}_detections.png`, title: `${config.name}: published detections`, family: 'metrics' },
    ...config.batch_types.map((t) => ({ name: `${config.name}_${t}_stages.png`, title: `${config.name} ${t}: batches by stage`, family: 'metrics' as const })),
    ...config.batch_types.map((t) => ({ name: `${config.name}_${t}_pending.png`, title: `${config.name} ${t}: pending items on the sky`, family: 'pending' as const })),
  ];
}

/** Options of {@link lifecyclePlotSource}. */
export interface LifecyclePlotOptions {
  /** How far back the metrics charts reach (default 14 days). */
  readonly days?: number;
  readonly width?: number;
  readonly height?: number;
}

/** The console's plot source over the lifecycle room's plotters (metrics charts, density maps). */
export function lifecyclePlotSource(options: LifecyclePlotOptions = {}): ConsolePlotSource {
  const cache = new Map<string, Rendered>();
  const size = { width: options.width ?? 720, height: options.height ?? 360 };

  const draw = (key: string, version: string, paint: (dir: string) => Promise<string[]>, rename: (path: string) => string): Promise<Map<string, Uint8Array>> => {
    const hit = cache.get(key);
    if (hit && hit.version === version) return hit.files;
    const files = (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ipp-console-plots-'));
      try {
        const out = new Map<string, Uint8Array>();
        for (const path of await paint(dir)) out.set(rename(path), await readFile(path));
        return out;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    })();
    cache.set(key, { version, files });
    // A drawing that failed is not kept: the next request tries again.
    files.catch(() => { if (cache.get(key)?.files === files) cache.delete(key); });
    return files;
  };

  return {
    async list(db: Database, configs: readonly string[]): Promise<ConsolePlot[]> {
      const out: ConsolePlot[] = [];
      for (const name of configs) {
        const config = await findConfig(db, name);
        if (!config) continue;
        const v = await versions(db, name);
        for (const p of plotNames(config)) out.push({ config: name, name: p.name, title: p.title, version: v[p.family] });
      }
      return out;
    },
    async render(db: Database, configName: string, name: string): Promise<Uint8Array | undefined> {
      const config = await findConfig(db, configName);
      if (!config) return undefined;
      const wanted = plotNames(config).find((p) => p.name === name);
      if (!wanted) return undefined;
      const v = await versions(db, configName);
      if (wanted.family === 'metrics') {
        const files = await draw(`${configName}\u0000metrics`, v.metrics,
          (dir) => writeMetricsPlots(db, config, dir, { days: options.days, ...size }), (path) => basename(path));
        return files.get(name);
      }
      const files = await draw(`${configName}\u0000pending`, v.pending,
        async (dir) => (await writeDensityPlots(db, config, { dir, ...size })).map((d) => d.path),
        // The plotter stamps its files with the time; the console names them by type only.
        (path) => basename(path).replace(/_\d{8}T\d{6}Z\.png$/, '_pending.png'));
      return files.get(name);
    },
  };
}
