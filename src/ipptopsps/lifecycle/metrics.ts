// metrics: the loading summary of a config (the guide's czartool view): per batch type the
// publishing rate and totals, and for every stage how many batches are pending, succeeded and
// failed. Each run is also stored as a time series in the `metrics` table, from which the
// PNG plots are drawn.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { plotPng, renderLineChart, type ChartSeries } from '../../common/index.ts';
import type { Queryable } from '../../db/index.ts';
import type { LoadingConfig } from '../configs.ts';
import type { BatchStage } from '../migrations.ts';
import { STAGES } from './batch-stages.ts';

/** Pending, succeeded and failed batches at one stage. */
export interface StageCounts {
  readonly pending: number;
  readonly succeeded: number;
  readonly failed: number;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const STAGE_STATES = ['pending', 'succeeded', 'failed'] as const;

/** The counts of every stage from a row of {@link stageCounts}' sums (absent sums count 0). */
function countsOf(row: Readonly<Record<string, unknown>>): Record<BatchStage, StageCounts> {
  return Object.fromEntries(STAGES.map((s) => [s, {
    pending: num(row[`${s}_pending`]), succeeded: num(row[`${s}_succeeded`]), failed: num(row[`${s}_failed`]),
  }])) as Record<BatchStage, StageCounts>;
}

/** One config and batch type's batches, and every stage's Pend/Succ/Fail (the metrics table). */
export interface StageCountRow {
  readonly config: string;
  readonly batchType: string;
  readonly batches: number;
  readonly stages: Readonly<Record<BatchStage, StageCounts>>;
}

/** Pend/Succ/Fail of every stage per config and batch type, of one config or of all. */
export async function stageCounts(q: Queryable, config?: string): Promise<StageCountRow[]> {
  const sums = STAGES.flatMap((s) => STAGE_STATES.map((state) => `SUM(CASE WHEN ${s} = '${state}' THEN 1 ELSE 0 END) AS ${s}_${state}`)).join(', ');
  const where = config === undefined ? '' : 'WHERE config = ?';
  const rows = await q.all(`SELECT config, batch_type, COUNT(*) AS n, ${sums} FROM batch ${where} GROUP BY config, batch_type`,
    config === undefined ? [] : [config]);
  return rows.map((r) => ({ config: String(r.config), batchType: String(r.batch_type), batches: num(r.n), stages: countsOf(r) }));
}

/** The summary of one batch type. */
export interface TypeMetrics {
  readonly batchType: string;
  /** Batches published in the last hour. */
  readonly batchesLastHour: number;
  readonly batchesLast24Hours: number;
  /** Batches published in the last 7 days, divided by 7. */
  readonly perDayThisWeek: number;
  readonly publishedBatches: number;
  /** Rows of the main table (detections, stack detections, objects) of the published batches. */
  readonly totalDetections: number;
  /** The same for the merged batches only: what the archive should hold. */
  readonly mergedDetections: number;
  readonly lastPublished: string | null;
  /** Items of this type known for the config (the queue: what DVO and gpc1 offered). */
  readonly dvoItems: number;
  readonly stages: Readonly<Record<BatchStage, StageCounts>>;
}

/** The summary of one config at one time. */
export interface MetricsSummary {
  readonly config: string;
  /** When it was taken (ISO-8601 UTC). */
  readonly at: string;
  readonly epoch: string;
  readonly dvoLabel: string;
  readonly types: readonly TypeMetrics[];
}

const HOUR = 3_600_000;

/**
 * Collects the summary of a config from the tracking database. A batch counts as published
 * when it reached the datastore (at loaded_to_datastore_at); for a config that does not
 * publish to the datastore, when it was processed.
 */
export async function collectMetrics(q: Queryable, config: LoadingConfig, now: Date = new Date()): Promise<MetricsSummary> {
  const iso = (ms: number): string => new Date(now.getTime() - ms).toISOString();
  const published = await q.all(
    `SELECT batch_type,
       SUM(CASE WHEN pub_at >= ? THEN 1 ELSE 0 END) AS last_hour,
       SUM(CASE WHEN pub_at >= ? THEN 1 ELSE 0 END) AS last_day,
       SUM(CASE WHEN pub_at >= ? THEN 1 ELSE 0 END) AS last_week,
       COUNT(*) AS published, SUM(n_rows) AS detections,
       SUM(CASE WHEN merged = 'succeeded' THEN n_rows ELSE 0 END) AS merged_detections,
       MAX(pub_at) AS last_published
     FROM (SELECT batch_type, n_rows, merged,
             CASE WHEN loaded_to_datastore = 'succeeded' THEN loaded_to_datastore_at
                  WHEN ? = 0 AND processed = 'succeeded' THEN processed_at END AS pub_at
           FROM batch WHERE config = ?) b
     WHERE pub_at IS NOT NULL GROUP BY batch_type`,
    [iso(HOUR), iso(24 * HOUR), iso(7 * 24 * HOUR), config.datastore_publish ? 1 : 0, config.name],
  );
  const stageRows = await stageCounts(q, config.name);
  const items = await q.all('SELECT batch_type, COUNT(*) AS n FROM queue_item WHERE config = ? GROUP BY batch_type', [config.name]);

  const types: string[] = [...config.batch_types];
  for (const t of [...published.map((r) => String(r.batch_type)), ...stageRows.map((r) => r.batchType), ...items.map((r) => String(r.batch_type))]) {
    if (!types.includes(t)) types.push(t);
  }
  return {
    config: config.name,
    at: now.toISOString(),
    epoch: config.epoch,
    dvoLabel: config.dvo_label,
    types: types.map((batchType) => {
      const p = published.find((r) => r.batch_type === batchType) ?? {};
      const stages = stageRows.find((r) => r.batchType === batchType)?.stages ?? countsOf({});
      return {
        batchType,
        batchesLastHour: num(p.last_hour),
        batchesLast24Hours: num(p.last_day),
        perDayThisWeek: num(p.last_week) / 7,
        publishedBatches: num(p.published),
        totalDetections: num(p.detections),
        mergedDetections: num(p.merged_detections),
        lastPublished: (p.last_published as string | undefined) ?? null,
        dvoItems: num(items.find((r) => r.batch_type === batchType)?.n),
        stages,
      };
    }),
  };
}

const STAGE_HEADINGS: Readonly<Record<BatchStage, string>> = {
  processed: 'processed', loaded_to_datastore: 'loaded_to_datastore', loaded_to_odm: 'loaded_to_ODM',
  merge_worthy: 'merge_worthy', merged: 'merged', deleted_datastore: 'deleted_datastore',
  deleted_dxlayer: 'deleted_dxlayer', deleted_local: 'deleted_local',
};

/** "4.6 hours ago", or days past four days; "never" when nothing was published. */
export function ago(iso: string | null, now: string): string {
  if (!iso) return 'never';
  const hours = Math.max(0, (Date.parse(now) - Date.parse(iso)) / HOUR);
  if (!Number.isFinite(hours)) return 'unknown';
  return hours >= 96 ? `${(hours / 24).toFixed(1)} days ago` : `${hours.toFixed(1)} hours ago`;
}

/** The summary as the guide's metrics.py printed it (fixed-width text). */
export function formatMetricsSummary(summary: MetricsSummary): string {
  const lines: string[] = [];
  lines.push(`${' '.repeat(16)}ippToPsps loading summary`, '');
  lines.push(`${'Time now'.padEnd(40)}${summary.at.slice(0, 19).replace('T', ' ')}`);
  lines.push(`${'Loading epoch'.padEnd(40)}${summary.epoch}`);
  lines.push(`${'DVO label'.padEnd(40)}${summary.dvoLabel}`, '');
  lines.push('|Type| batches per hour | last 24 hours | per day this week | total detections | last published |');
  for (const t of summary.types) {
    lines.push(`|${cell(t.batchType, 4)}| ${t.batchesLastHour.toFixed(1).padStart(16)} | ${String(t.batchesLast24Hours).padStart(13)} | `
      + `${t.perDayThisWeek.toFixed(1).padStart(17)} | ${String(t.totalDetections).padStart(16)} | ${ago(t.lastPublished, summary.at).padStart(14)} |`);
  }
  lines.push('');
  lines.push(`|Type|  DVO  |${STAGES.map((s) => STAGE_HEADINGS[s].padStart(19)).join('|')}|`);
  lines.push(`|    |       |${STAGES.map(() => ' Pend  Succ  Fail  ').join('|')}|`);
  const count = (v: number): string => (v === 0 ? '' : String(v)).padStart(5);
  for (const t of summary.types) {
    const stageCells = STAGES.map((s) => {
      const c = t.stages[s];
      return `${count(c.pending)} ${count(c.succeeded)} ${count(c.failed)}  `;
    });
    lines.push(`|${cell(t.batchType, 4)}| ${String(t.dvoItems).padStart(5)} |${stageCells.join('|')}|`);
  }
  return `${lines.join('\n')}\n`;
}

function cell(text: string, width: number): string {
  const left = Math.floor((width - text.length) / 2);
  return `${' '.repeat(Math.max(0, left))}${text}`.padEnd(width);
}

/** One value of the metrics time series. */
export interface MetricValue {
  readonly batchType: string;
  readonly name: string;
  readonly value: number;
}

/** The summary as time-series values (the `metrics` table's rows of one run). */
export function metricValues(summary: MetricsSummary): MetricValue[] {
  const out: MetricValue[] = [];
  for (const t of summary.types) {
    const add = (name: string, value: number): void => { out.push({ batchType: t.batchType, name, value }); };
    add('batches_last_hour', t.batchesLastHour);
    add('batches_last_24_hours', t.batchesLast24Hours);
    add('batches_per_day_this_week', t.perDayThisWeek);
    add('published_batches', t.publishedBatches);
    add('total_detections', t.totalDetections);
    add('merged_detections', t.mergedDetections);
    add('dvo_items', t.dvoItems);
    if (t.lastPublished) add('hours_since_published', (Date.parse(summary.at) - Date.parse(t.lastPublished)) / HOUR);
    for (const s of STAGES) {
      add(`${s}_pending`, t.stages[s].pending);
      add(`${s}_succeeded`, t.stages[s].succeeded);
      add(`${s}_failed`, t.stages[s].failed);
    }
  }
  return out;
}

/** Stores a summary in the `metrics` table (one statement; a second run at the same instant replaces nothing and adds nothing). */
export async function recordMetrics(q: Queryable, summary: MetricsSummary): Promise<number> {
  const values = metricValues(summary);
  if (values.length === 0) return 0;
  const result = await q.run(
    `INSERT INTO metrics (config, at, batch_type, name, value) VALUES ${values.map(() => '(?, ?, ?, ?, ?)').join(', ')}
     ON CONFLICT (config, at, batch_type, name) DO NOTHING`,
    values.flatMap((v) => [summary.config, summary.at, v.batchType, v.name, v.value]),
  );
  return result.changes;
}

/** A stored series: times (ms since 1970) and values. */
export interface MetricSeries {
  readonly x: number[];
  readonly y: number[];
}

/** Reads stored series of a config since a time: `result.get(batchType)?.get(name)`. */
export async function readMetricSeries(
  q: Queryable, config: string, names: readonly string[], since: string,
): Promise<Map<string, Map<string, MetricSeries>>> {
  const rows = await q.all(
    `SELECT at, batch_type, name, value FROM metrics WHERE config = ? AND at >= ? AND name IN (${names.map(() => '?').join(', ')})
     ORDER BY at`,
    [config, since, ...names],
  );
  const out = new Map<string, Map<string, MetricSeries>>();
  for (const r of rows) {
    const byName = out.get(String(r.batch_type)) ?? new Map<string, MetricSeries>();
    out.set(String(r.batch_type), byName);
    const series = byName.get(String(r.name)) ?? { x: [], y: [] };
    byName.set(String(r.name), series);
    series.x.push(Date.parse(String(r.at)));
    series.y.push(r.value === null ? Number.NaN : Number(r.value));
  }
  return out;
}

/** Options of {@link writeMetricsPlots}. */
export interface MetricsPlotOptions {
  /** How far back the plots reach (default 14 days). */
  readonly days?: number;
  readonly now?: Date;
  readonly width?: number;
  readonly height?: number;
}

/**
 * Draws the time-series plots of a config from the `metrics` table into `dir`:
 * `<config>_batches.png` (published batches per type), `<config>_detections.png` (detections
 * per type) and `<config>_<type>_stages.png` (succeeded batches at each stage). Each file is
 * written beside its final name and renamed over it, so a reader never sees half a plot.
 */
export async function writeMetricsPlots(q: Queryable, config: LoadingConfig, dir: string, options: MetricsPlotOptions = {}): Promise<string[]> {
  const now = options.now ?? new Date();
  const since = new Date(now.getTime() - (options.days ?? 14) * 24 * HOUR).toISOString();
  const names = ['published_batches', 'total_detections', ...STAGES.map((s) => `${s}_succeeded`)];
  const data = await readMetricSeries(q, config.name, names, since);
  const types = [...new Set([...config.batch_types, ...data.keys()])];
  const size = { width: options.width ?? 800, height: options.height ?? 400 };
  const empty: MetricSeries = { x: [], y: [] };
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const save = async (file: string, title: string, series: ChartSeries[], yLabel: string): Promise<void> => {
    const canvas = renderLineChart({ title, subtitle: `config ${config.name}, ${since.slice(0, 10)} to ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC`, series, yLabel, xLabel: 'time (UTC)', ...size });
    const path = join(dir, file);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, plotPng(canvas, title));
    await rename(temp, path);
    written.push(path);
  };
  await save(`${config.name}_batches.png`, 'Published batches',
    types.map((t) => ({ name: t, ...(data.get(t)?.get('published_batches') ?? empty) })), 'batches');
  await save(`${config.name}_detections.png`, 'Published detections',
    types.map((t) => ({ name: t, ...(data.get(t)?.get('total_detections') ?? empty) })), 'rows');
  for (const t of types) {
    await save(`${config.name}_${t}_stages.png`, `${t} batches by stage (succeeded)`,
      STAGES.map((s) => ({ name: s, ...(data.get(t)?.get(`${s}_succeeded`) ?? empty) })), 'batches');
  }
  return written;
}
