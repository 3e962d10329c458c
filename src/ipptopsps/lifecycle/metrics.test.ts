import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkPng, mulberry32 } from '../../common/index.ts';
import { testEngines } from '../../db/index.ts';
import type { BatchStage, StageState } from '../migrations.ts';
import { STAGES } from './batch-stages.ts';
import { collectMetrics, formatMetricsSummary, metricValues, readMetricSeries, recordMetrics, writeMetricsPlots, type MetricsSummary } from './metrics.ts';
import { addConfig, insertBatch, insertItem, withTracking } from './test-support.ts';

const NOW = new Date('2026-11-21T12:00:00.000Z');
const HOUR = 3_600_000;

test('the summary prints in the guide\'s layout', () => {
  const blank = { pending: 0, succeeded: 0, failed: 0 };
  const stages = (over: Partial<Record<BatchStage, [number, number, number]>>) => Object.fromEntries(STAGES.map((s) => {
    const v = over[s];
    return [s, v ? { pending: v[0], succeeded: v[1], failed: v[2] } : blank];
  })) as MetricsSummary['types'][number]['stages'];
  const summary: MetricsSummary = {
    config: 'lap', at: '2011-09-29T11:54:33.000Z', epoch: '2011-08-16', dvoLabel: 'LAP.ThreePi.20110809',
    types: [
      { batchType: 'P2', batchesLastHour: 0, batchesLast24Hours: 283, perDayThisWeek: 329.4, publishedBatches: 8099, totalDetections: 1855730051, mergedDetections: 0,
        lastPublished: '2011-09-29T07:18:33.000Z', dvoItems: 8140,
        stages: stages({ processed: [0, 8101, 39], loaded_to_datastore: [2, 8099, 0], loaded_to_odm: [2041, 6049, 9], merge_worthy: [0, 6049, 0], merged: [313, 5736, 0], deleted_datastore: [0, 5736, 0], deleted_dxlayer: [5736, 0, 0] }) },
      { batchType: 'ST', batchesLastHour: 0, batchesLast24Hours: 12936, perDayThisWeek: 4539, publishedBatches: 31679, totalDetections: 185807608, mergedDetections: 0,
        lastPublished: '2011-09-29T08:12:33.000Z', dvoItems: 32309,
        stages: stages({ processed: [0, 31684, 625], loaded_to_datastore: [5, 31679, 0], loaded_to_odm: [24617, 7062, 0], merge_worthy: [0, 7062, 0], merged: [7062, 0, 0] }) },
    ],
  };
  const expected = `                ippToPsps loading summary

Time now                                2011-09-29 11:54:33
Loading epoch                           2011-08-16
DVO label                               LAP.ThreePi.20110809

|Type| batches per hour | last 24 hours | per day this week | total detections | last published |
| P2 |              0.0 |           283 |             329.4 |       1855730051 |  4.6 hours ago |
| ST |              0.0 |         12936 |            4539.0 |        185807608 |  3.7 hours ago |

|Type|  DVO  |          processed|loaded_to_datastore|      loaded_to_ODM|       merge_worthy|             merged|  deleted_datastore|    deleted_dxlayer|      deleted_local|
|    |       | Pend  Succ  Fail  | Pend  Succ  Fail  | Pend  Succ  Fail  | Pend  Succ  Fail  | Pend  Succ  Fail  | Pend  Succ  Fail  | Pend  Succ  Fail  | Pend  Succ  Fail  |
| P2 |  8140 |       8101    39  |    2  8099        | 2041  6049     9  |       6049        |  313  5736        |       5736        | 5736              |                   |
| ST | 32309 |      31684   625  |    5 31679        |24617  7062        |       7062        | 7062              |                   |                   |                   |
`;
  assert.equal(formatMetricsSummary(summary), expected);
});

for (const engine of testEngines()) {
  describe(`metrics on ${engine.name}`, { skip: engine.skip }, () => {
    it('counts what an independent count of the inserted rows gives, stores the series, and plots it', () => withTracking(engine, async (db, dir) => {
      const config = await addConfig(db, 'c1', { batch_types: 'P2,ST,OB', epoch: '2026-11-01', dvo_label: 'LAP.x' });
      await addConfig(db, 'c2');
      const next = mulberry32(42);
      const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length];
      const inserted: { type: string; stages: Partial<Record<BatchStage, StageState | null>>; pubAt: string | null; rows: number }[] = [];
      const items: Record<string, number> = { P2: 0, ST: 0, OB: 0 };
      for (let i = 0; i < 60; i++) {
        const type = pick(['P2', 'ST', 'OB', 'IN']);
        const stages: Partial<Record<BatchStage, StageState | null>> = {};
        for (const s of STAGES) stages[s] = pick([null, 'pending', 'succeeded', 'failed'] as const);
        const ageMs = Math.floor((next() / 2 ** 32) * 10 * 24 * HOUR);
        const at = new Date(NOW.getTime() - ageMs).toISOString();
        const rows = next() % 5000;
        await insertBatch(db, { config: 'c1', batchType: type, stages, nRows: rows, times: { loaded_to_datastore: at, processed: at } });
        inserted.push({ type, stages, pubAt: stages.loaded_to_datastore === 'succeeded' ? at : null, rows });
        // Noise: another config's batches must not count.
        await insertBatch(db, { config: 'c2', batchType: type, stages, nRows: 7, times: { loaded_to_datastore: at } });
      }
      for (let i = 0; i < 40; i++) {
        const type = pick(['P2', 'ST', 'OB']);
        items[type]++;
        await insertItem(db, { config: 'c1', batchType: type, sourceId: i, state: pick(['pending', 'done', 'failed']) });
        await insertItem(db, { config: 'c2', batchType: type, sourceId: i });
      }
      const summary = await collectMetrics(db, config, NOW);
      assert.deepEqual(summary.types.map((t) => t.batchType).slice(0, 3), ['P2', 'ST', 'OB']);
      for (const t of summary.types) {
        const mine = inserted.filter((b) => b.type === t.batchType);
        const pub = mine.filter((b) => b.pubAt !== null);
        const within = (ms: number) => pub.filter((b) => NOW.getTime() - Date.parse(b.pubAt!) <= ms).length;
        assert.equal(t.batchesLastHour, within(HOUR), `${t.batchType} last hour`);
        assert.equal(t.batchesLast24Hours, within(24 * HOUR), `${t.batchType} last day`);
        assert.equal(t.perDayThisWeek, within(7 * 24 * HOUR) / 7);
        assert.equal(t.publishedBatches, pub.length);
        assert.equal(t.totalDetections, pub.reduce((a, b) => a + b.rows, 0));
        assert.equal(t.mergedDetections, pub.filter((b) => b.stages.merged === 'succeeded').reduce((a, b) => a + b.rows, 0));
        assert.equal(t.lastPublished, pub.map((b) => b.pubAt!).sort().at(-1) ?? null);
        assert.equal(t.dvoItems, items[t.batchType] ?? 0);
        for (const s of STAGES) {
          for (const state of ['pending', 'succeeded', 'failed'] as const) {
            assert.equal(t.stages[s][state], mine.filter((b) => b.stages[s] === state).length, `${t.batchType} ${s} ${state}`);
          }
        }
      }
      const text = formatMetricsSummary(summary);
      assert.match(text, /^Time now {32}2026-11-21 12:00:00$/m);
      assert.match(text, /^DVO label {31}LAP\.x$/m);

      // Three runs an hour apart make a series; the stored values read back equal.
      const written = await recordMetrics(db, summary);
      assert.equal(written, metricValues(summary).length);
      assert.equal(await recordMetrics(db, summary), 0, 'the same instant is stored once');
      for (let h = 1; h <= 2; h++) {
        await insertBatch(db, { config: 'c1', batchType: 'P2', stages: { loaded_to_datastore: 'succeeded' }, nRows: 1000 * h,
          times: { loaded_to_datastore: new Date(NOW.getTime() + h * HOUR).toISOString() } });
        await recordMetrics(db, await collectMetrics(db, config, new Date(NOW.getTime() + h * HOUR)));
      }
      const series = await readMetricSeries(db, 'c1', ['published_batches', 'total_detections'], '2026-11-01');
      const p2 = series.get('P2')!.get('published_batches')!;
      const base = summary.types.find((t) => t.batchType === 'P2')!.publishedBatches;
      assert.deepEqual(p2.y, [base, base + 1, base + 2]);
      assert.deepEqual(p2.x, [0, 1, 2].map((h) => NOW.getTime() + h * HOUR));

      const files = await writeMetricsPlots(db, config, join(dir, 'plots'), { now: new Date(NOW.getTime() + 3 * HOUR), width: 360, height: 220 });
      assert.deepEqual(files.map((f) => f.slice(dir.length + 7)), ['c1_batches.png', 'c1_detections.png', 'c1_P2_stages.png', 'c1_ST_stages.png', 'c1_OB_stages.png', 'c1_IN_stages.png']);
      const png = await checkPng(files[0]);
      assert.deepEqual([png.width, png.height, png.text.Title], [360, 220, 'Published batches']);
    }));
  });
}
