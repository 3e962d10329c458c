import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Canvas, EMPTY_CELL, SERIES_COLOURS, binSky, formatTick, niceTicks, plotPng, rampColour, renderDensityMap, renderLineChart,
  timeTicks, type Rgb,
} from './plot.ts';
import { checkPng, type CheckedPng } from './png-check.ts';
import { IppError } from './errors.ts';
import { mulberry32, withTempDir } from './testing.ts';

function pixelsOf(png: CheckedPng, colour: Rgb): { x: number; y: number }[] {
  const found: { x: number; y: number }[] = [];
  for (let i = 0; i < png.width * png.height; i++) {
    const p = png.rgba.subarray(i * 4, i * 4 + 3);
    if (p[0] === colour[0] && p[1] === colour[1] && p[2] === colour[2]) found.push({ x: i % png.width, y: Math.floor(i / png.width) });
  }
  return found;
}

test('nice ticks are round, cover the range and are labelled compactly', () => {
  assert.deepEqual(niceTicks(0, 10, 5), { step: 2, values: [0, 2, 4, 6, 8, 10] });
  assert.deepEqual(niceTicks(0, 1, 4).values, [0, 0.5, 1]);
  assert.deepEqual(niceTicks(-3, 7, 5).values, [-2, 0, 2, 4, 6]);
  assert.deepEqual(niceTicks(5, 5, 5).values, [5]);
  assert.deepEqual(niceTicks(Number.NaN, 1).values, []);
  assert.equal(formatTick(1_500_000, 500_000), '1.5M');
  assert.equal(formatTick(2_000_000_000, 1_000_000_000), '2G');
  assert.equal(formatTick(25_000, 5000), '25k');
  assert.equal(formatTick(0.25, 0.05), '0.25');
  assert.equal(formatTick(300, 100), '300');
  const t = timeTicks(Date.parse('2026-11-20T22:10:00Z'), Date.parse('2026-11-21T04:00:00Z'), 3);
  assert.equal(t.step, 2 * 3600_000);
  assert.deepEqual(t.labels, ['11-21 00:00', '02:00', '04:00']);
  const days = timeTicks(Date.parse('2026-11-01T00:00:00Z'), Date.parse('2026-11-05T12:00:00Z'), 6);
  assert.deepEqual(days.labels, ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05']);
});

test('every printable ASCII character has its own glyph', () => {
  const draw = (ch: string): string => {
    const c = new Canvas(6, 10);
    c.text(0, 0, ch, [0, 0, 0]);
    return Buffer.from(c.data).toString('base64');
  };
  const unknown = draw('?');
  const seen = new Map<string, string>();
  for (let code = 33; code < 127; code++) {
    const ch = String.fromCharCode(code);
    const bits = draw(ch);
    if (ch !== '?') assert.notEqual(bits, unknown, `"${ch}" falls back to "?"`);
    assert.equal(seen.get(bits), undefined, `"${ch}" looks the same as "${seen.get(bits)}"`);
    seen.set(bits, ch);
  }
  assert.equal(draw('\u2603'), unknown);
});

test('a line chart decodes independently and shows each series in its colour, and an empty one says so', async () => {
  await withTempDir(async (dir) => {
    const t0 = Date.parse('2026-11-20T00:00:00Z');
    const x = Array.from({ length: 30 }, (_, i) => t0 + i * 3600_000);
    const chart = renderLineChart({
      title: 'batches', subtitle: 'config test', yLabel: 'batches', xLabel: 'time (UTC)', width: 400, height: 240,
      series: [
        { name: 'P2', x, y: x.map((_, i) => i * 2) },
        { name: 'ST', x, y: x.map((_, i) => (i % 7 === 0 ? Number.NaN : 40 - i)) },
      ],
    });
    const path = join(dir, 'chart.png');
    await writeFile(path, plotPng(chart, 'batches'));
    const png = await checkPng(path);
    assert.equal(png.width, 400);
    assert.equal(png.height, 240);
    assert.equal(png.text.Title, 'batches');
    const p2 = pixelsOf(png, SERIES_COLOURS[0]);
    const st = pixelsOf(png, SERIES_COLOURS[1]);
    assert.ok(p2.length > 100 && st.length > 100, `series drawn: ${p2.length}, ${st.length} pixels`);
    assert.equal(pixelsOf(png, SERIES_COLOURS[2]).length, 0);
    // P2 rises: its rightmost pixels sit higher (smaller y) than its leftmost ones (legend aside).
    const plotted = p2.filter((p) => p.y > 80);
    const leftmost = plotted.reduce((a, b) => (b.x < a.x ? b : a));
    const rightmost = plotted.reduce((a, b) => (b.x > a.x ? b : a));
    assert.ok(rightmost.y < leftmost.y - 50, `P2 rises from y=${leftmost.y} to y=${rightmost.y}`);

    const empty = renderLineChart({ title: 'nothing', series: [{ name: 'P2', x: [], y: [] }], width: 300, height: 200 });
    const emptyPath = join(dir, 'empty.png');
    await writeFile(emptyPath, plotPng(empty, 'nothing'));
    const emptyPng = await checkPng(emptyPath);
    const inLegend = pixelsOf(emptyPng, SERIES_COLOURS[0]);
    assert.ok(inLegend.length > 0 && inLegend.length <= 64, 'only the legend swatch carries the colour');
    assert.ok(pixelsOf(emptyPng, [150, 150, 150]).length > 20, '"no data yet" written');
  });
});

test('a density map puts low RA on the right, colours the densest cell at the top of the ramp and empty cells apart', async () => {
  await withTempDir(async (dir) => {
    const grid = binSky([10.5, 10.6, 10.7, 11.2], [0.5, 0.5, 0.5, 0.5], { raMin: 10, raMax: 14, decMin: 0, decMax: 1, cellSize: 1 });
    assert.equal(grid.nRa, 4);
    assert.equal(grid.nDec, 1);
    assert.deepEqual([...grid.counts], [3, 1, 0, 0]);
    const path = join(dir, 'map.png');
    await writeFile(path, plotPng(renderDensityMap({ title: 'pending', grid, unit: 'items', width: 400, height: 260 }), 'pending'));
    const png = await checkPng(path);
    const hot = pixelsOf(png, rampColour(1)).filter((p) => p.x < 340); // the colour bar shares the colour
    const warm = pixelsOf(png, rampColour(1 / 3));
    const empty = pixelsOf(png, EMPTY_CELL);
    assert.ok(hot.length > 100 && warm.length > 100 && empty.length > 200);
    const meanX = (ps: { x: number }[]): number => ps.reduce((a, p) => a + p.x, 0) / ps.length;
    assert.ok(meanX(hot) > meanX(warm) && meanX(warm) > meanX(empty), `RA rises to the left: ${meanX(hot)}, ${meanX(warm)}, ${meanX(empty)}`);
  });
});

test('binning matches a direct count and leaves out positions outside the grid', () => {
  const next = mulberry32(7);
  const n = 5000;
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ra[i] = -1 + (next() / 2 ** 32) * 12;
    dec[i] = -6 + (next() / 2 ** 32) * 12;
  }
  ra[0] = 10; // exactly raMax: in the last cell
  dec[0] = 5;
  dec[1] = Number.NaN;
  const grid = binSky(ra, dec, { raMin: 0, raMax: 10, decMin: -5, decMax: 5, cellSize: 2.5 });
  assert.equal(grid.nRa, 4);
  assert.equal(grid.nDec, 4);
  let inside = 0;
  for (let j = 0; j < 4; j++) {
    for (let i = 0; i < 4; i++) {
      let count = 0;
      for (let k = 0; k < n; k++) {
        const ri = ra[k] === 10 ? 3 : Math.floor(ra[k] / 2.5);
        const dj = dec[k] === 5 ? 3 : Math.floor((dec[k] + 5) / 2.5);
        if (ra[k] >= 0 && ra[k] <= 10 && dec[k] >= -5 && dec[k] <= 5 && ri === i && dj === j) count++;
      }
      assert.equal(grid.counts[j * 4 + i], count, `cell ${i},${j}`);
      inside += count;
    }
  }
  assert.ok(inside > 1000 && inside < n);
  assert.equal(grid.counts.reduce((a, b) => a + b, 0), inside);
});

test('bad sizes, series and grids raise typed errors', () => {
  const cases: [() => unknown, string][] = [
    [() => new Canvas(0, 10), 'plot_bad_size'],
    [() => renderLineChart({ title: 't', series: [], width: 40, height: 40 }), 'plot_bad_size'],
    [() => renderLineChart({ title: 't', series: [{ name: 'a', x: [1, 2], y: [1] }] }), 'plot_bad_series'],
    [() => binSky([1], [1], { raMin: 5, raMax: 5, decMin: 0, decMax: 1 }), 'plot_bad_grid'],
    [() => binSky([1], [1], { raMin: 0, raMax: 5, decMin: 0, decMax: 1, cellSize: -1 }), 'plot_bad_grid'],
    [() => binSky([1, 2], [1], { raMin: 0, raMax: 5, decMin: 0, decMax: 1 }), 'plot_bad_series'],
    [() => renderDensityMap({ title: 't', grid: { raMin: 0, raMax: 1, decMin: 0, decMax: 1, nRa: 2, nDec: 2, counts: new Float64Array(3) } }), 'plot_bad_grid'],
  ];
  for (const [fn, code] of cases) {
    assert.throws(fn, (error: unknown) => error instanceof IppError && error.code === code, code);
  }
});
