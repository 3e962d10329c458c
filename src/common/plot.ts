// A small plotting kit for the lifecycle's PNG plots: time-series line charts and sky density
// maps drawn on an RGBA canvas with a built-in bitmap font (the original called gnuplot; here
// nothing outside Node is needed).
import { IppError } from './errors.ts';
import { encodePng, type RgbaImage } from './png.ts';

/** A colour: red, green, blue, each 0–255. */
export type Rgb = readonly [number, number, number];

// 5x7 glyphs on a 6x10 cell (rows 7-8 hold descenders); '#' is ink. Drawn for this kit.
const GLYPHS: Readonly<Record<string, string>> = {
  ' ': '',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..',
  '"': '.#.#. .#.#.',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  '$': '..#.. .#### #.#.. .###. ..#.# ####. ..#..',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '&': '.##.. #..#. #.#.. .#... #.#.# #..#. .##.#',
  "'": '..#.. ..#..',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#..',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#..',
  ',': '..... ..... ..... ..... ..... .##.. ..#.. .#...',
  '-': '..... ..... ..... #####',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  '/': '..... ....# ...#. ..#.. .#... #....',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  ':': '..... .##.. .##.. ..... .##.. .##..',
  ';': '..... .##.. .##.. ..... .##.. ..#.. .#...',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '=': '..... ..... ##### ..... #####',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '@': '.###. #...# ....# .##.# #.#.# #.#.# .###.',
  'A': '.###. #...# #...# ##### #...# #...# #...#',
  'B': '####. #...# #...# ####. #...# #...# ####.',
  'C': '.###. #...# #.... #.... #.... #...# .###.',
  'D': '###.. #..#. #...# #...# #...# #..#. ###..',
  'E': '##### #.... #.... ####. #.... #.... #####',
  'F': '##### #.... #.... ####. #.... #.... #....',
  'G': '.###. #...# #.... #.### #...# #...# .####',
  'H': '#...# #...# #...# ##### #...# #...# #...#',
  'I': '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  'J': '..### ...#. ...#. ...#. ...#. #..#. .##..',
  'K': '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  'L': '#.... #.... #.... #.... #.... #.... #####',
  'M': '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  'N': '#...# #...# ##..# #.#.# #..## #...# #...#',
  'O': '.###. #...# #...# #...# #...# #...# .###.',
  'P': '####. #...# #...# ####. #.... #.... #....',
  'Q': '.###. #...# #...# #...# #.#.# #..#. .##.#',
  'R': '####. #...# #...# ####. #.#.. #..#. #...#',
  'S': '.#### #.... #.... .###. ....# ....# ####.',
  'T': '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  'U': '#...# #...# #...# #...# #...# #...# .###.',
  'V': '#...# #...# #...# #...# #...# .#.#. ..#..',
  'W': '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  'X': '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  'Y': '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  'Z': '##### ....# ...#. ..#.. .#... #.... #####',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  '\\': '..... #.... .#... ..#.. ...#. ....#',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '^': '..#.. .#.#. #...#',
  '_': '..... ..... ..... ..... ..... ..... #####',
  '`': '.#... ..#..',
  'a': '..... ..... .###. ....# .#### #...# .####',
  'b': '#.... #.... #.##. ##..# #...# #...# ####.',
  'c': '..... ..... .###. #.... #.... #...# .###.',
  'd': '....# ....# .##.# #..## #...# #...# .####',
  'e': '..... ..... .###. #...# ##### #.... .###.',
  'f': '..##. .#..# .#... ###.. .#... .#... .#...',
  'g': '..... ..... .#### #...# #...# #...# .#### ....# .###.',
  'h': '#.... #.... #.##. ##..# #...# #...# #...#',
  'i': '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  'j': '...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..',
  'k': '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  'l': '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  'm': '..... ..... ##.#. #.#.# #.#.# #...# #...#',
  'n': '..... ..... #.##. ##..# #...# #...# #...#',
  'o': '..... ..... .###. #...# #...# #...# .###.',
  'p': '..... ..... ####. #...# #...# #...# ####. #.... #....',
  'q': '..... ..... .#### #...# #...# #...# .#### ....# ....#',
  'r': '..... ..... #.##. ##..# #.... #.... #....',
  's': '..... ..... .###. #.... .###. ....# ####.',
  't': '.#... .#... ###.. .#... .#... .#..# ..##.',
  'u': '..... ..... #...# #...# #...# #..## .##.#',
  'v': '..... ..... #...# #...# #...# .#.#. ..#..',
  'w': '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  'x': '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  'y': '..... ..... #...# #...# #...# #...# .#### ....# .###.',
  'z': '..... ..... ##### ...#. ..#.. .#... #####',
  '{': '...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.',
  '|': '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  '}': '.#... ..#.. ..#.. ...#. ..#.. ..#.. .#...',
  '~': '..... ..... .#... #.#.# ...#.',
  '°': '.##.. #..#. #..#. .##..',
};

/** Width and height of a character cell of the built-in font at scale 1. */
export const FONT_CELL = Object.freeze({ width: 6, height: 10 });

const FONT: ReadonlyMap<string, Uint8Array> = new Map(Object.entries(GLYPHS).map(([ch, art]) => {
  const bits = new Uint8Array(5 * 9);
  art.split(' ').filter((r) => r !== '').forEach((row, y) => {
    for (let x = 0; x < 5; x++) if (row[x] === '#') bits[y * 5 + x] = 1;
  });
  return [ch, bits];
}));

/** Pixel width of `text` in the built-in font at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return [...text].length * FONT_CELL.width * scale;
}

/** Options of {@link Canvas.text}. */
export interface TextOptions {
  readonly scale?: number;
  /** Where `x` sits: the left edge (default), the middle or the right edge of the text. */
  readonly align?: 'left' | 'center' | 'right';
  /** Reads bottom to top (for a vertical axis label); `x`, `y` is then the text's middle left. */
  readonly vertical?: boolean;
}

/** An RGBA raster to draw on; pixels outside it are clipped. */
export class Canvas implements RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;

  constructor(width: number, height: number, background: Rgb = [255, 255, 255]) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 8192 || height > 8192) {
      throw new IppError('plot_bad_size', `a plot must be 1 to 8192 pixels on each side; got ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 4);
    this.fillRect(0, 0, width, height, background);
  }

  /** Sets one pixel; `alpha` (0–1) blends it over what is there. */
  plot(x: number, y: number, colour: Rgb, alpha = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    const d = this.data;
    if (alpha >= 1) {
      d[i] = colour[0];
      d[i + 1] = colour[1];
      d[i + 2] = colour[2];
    } else {
      d[i] = Math.round(d[i] * (1 - alpha) + colour[0] * alpha);
      d[i + 1] = Math.round(d[i + 1] * (1 - alpha) + colour[1] * alpha);
      d[i + 2] = Math.round(d[i + 2] * (1 - alpha) + colour[2] * alpha);
    }
    d[i + 3] = 255;
  }

  /** Fills a rectangle (clipped). */
  fillRect(x: number, y: number, w: number, h: number, colour: Rgb, alpha = 1): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.plot(xx, yy, colour, alpha);
  }

  /** Outlines a rectangle one pixel wide. */
  strokeRect(x: number, y: number, w: number, h: number, colour: Rgb): void {
    this.line(x, y, x + w - 1, y, colour);
    this.line(x, y + h - 1, x + w - 1, y + h - 1, colour);
    this.line(x, y, x, y + h - 1, colour);
    this.line(x + w - 1, y, x + w - 1, y + h - 1, colour);
  }

  /** Draws a straight line `thickness` pixels wide (Bresenham steps, a square pen). */
  line(x0: number, y0: number, x1: number, y1: number, colour: Rgb, thickness = 1, alpha = 1): void {
    if (![x0, y0, x1, y1].every(Number.isFinite)) return;
    // Clip grossly off-canvas lines before stepping, so a wild value cannot loop for long.
    const limit = 4 * (this.width + this.height);
    if (Math.abs(x0) > limit || Math.abs(x1) > limit || Math.abs(y0) > limit || Math.abs(y1) > limit) return;
    let x = Math.round(x0);
    let y = Math.round(y0);
    const xe = Math.round(x1);
    const ye = Math.round(y1);
    const dx = Math.abs(xe - x);
    const dy = -Math.abs(ye - y);
    const sx = x < xe ? 1 : -1;
    const sy = y < ye ? 1 : -1;
    let err = dx + dy;
    const lo = -Math.floor((thickness - 1) / 2);
    const hi = lo + thickness;
    while (true) {
      for (let a = lo; a < hi; a++) for (let b = lo; b < hi; b++) this.plot(x + a, y + b, colour, alpha);
      if (x === xe && y === ye) break;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x += sx; }
      if (e2 <= dx) { err += dx; y += sy; }
    }
  }

  /** Writes `text` in the built-in font; `y` is the top of the cell. Unknown characters show as `?`. */
  text(x: number, y: number, text: string, colour: Rgb, options: TextOptions = {}): void {
    const scale = Math.max(1, Math.round(options.scale ?? 1));
    const width = textWidth(text, scale);
    const shift = options.align === 'center' ? width / 2 : options.align === 'right' ? width : 0;
    let pen = 0;
    for (const ch of text) {
      const bits = FONT.get(ch) ?? FONT.get('?')!;
      for (let gy = 0; gy < 9; gy++) {
        for (let gx = 0; gx < 5; gx++) {
          if (bits[gy * 5 + gx] === 0) continue;
          for (let a = 0; a < scale; a++) {
            for (let b = 0; b < scale; b++) {
              const u = pen + gx * scale + a; // along the text
              const v = gy * scale + b; // across it, top to bottom
              if (options.vertical) this.plot(Math.round(x) + v, Math.round(y + shift) - u, colour);
              else this.plot(Math.round(x - shift) + u, Math.round(y) + v, colour);
            }
          }
        }
      }
      pen += FONT_CELL.width * scale;
    }
  }

  /** The canvas as PNG bytes. */
  toPng(text?: Readonly<Record<string, string>>): Uint8Array {
    return encodePng(this, { text });
  }
}

/** Tick values between `min` and `max`: multiples of 1, 2 or 5 × 10^k, at most about `count`. */
export function niceTicks(min: number, max: number, count = 6): { step: number; values: number[] } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { step: 1, values: [] };
  if (max < min) [min, max] = [max, min];
  const span = max - min || Math.abs(max) || 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const values: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { step, values };
}

/** A tick value as short text: `1.5k`, `2.25M`, `0.25`, with no more decimals than the step needs. */
export function formatTick(value: number, step: number): string {
  const abs = Math.abs(value);
  // Thousands get a suffix only from 10k: "5000" reads better than "5k" on a small axis.
  for (const [from, div, suffix] of [[1e9, 1e9, 'G'], [1e6, 1e6, 'M'], [1e4, 1e3, 'k']] as const) {
    if (abs >= from && step >= div / 1000) {
      const decimals = Math.max(0, Math.min(3, -Math.floor(Math.log10(step / div) + 1e-9)));
      return `${(value / div).toFixed(decimals).replace(/\.?0+$/, '')}${suffix}`;
    }
  }
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return value.toFixed(decimals);
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [
  1000, 2000, 5000, 10_000, 15_000, 30_000, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 364 * DAY,
];

/** Ticks on a time axis (milliseconds since 1970, UTC) at round steps, labelled for the step. */
export function timeTicks(min: number, max: number, count = 6): { step: number; values: number[]; labels: string[] } {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return { step: HOUR, values: [], labels: [] };
  const span = Math.max(max - min, 1000);
  const step = TIME_STEPS.find((s) => span / s <= count) ?? Math.ceil(span / count / DAY) * DAY;
  const values: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max; v += step) values.push(v);
  const labels = values.map((v, i) => {
    const iso = new Date(v).toISOString(); // 2026-11-21T03:41:45.000Z
    if (step >= DAY) return iso.slice(0, 10);
    const clock = step < MINUTE ? iso.slice(11, 19) : iso.slice(11, 16);
    const newDay = i === 0 || iso.slice(0, 10) !== new Date(values[i - 1]).toISOString().slice(0, 10);
    return newDay ? `${iso.slice(5, 10)} ${clock}` : clock;
  });
  return { step, values, labels };
}

/** One series of a line chart: x (ms since 1970 on a time axis) and y; a non-finite y breaks the line. */
export interface ChartSeries {
  readonly name: string;
  readonly x: ArrayLike<number>;
  readonly y: ArrayLike<number>;
  readonly colour?: Rgb;
}

/** Options of {@link renderLineChart}. */
export interface LineChartOptions {
  readonly title: string;
  /** A smaller line under the title. */
  readonly subtitle?: string;
  readonly series: readonly ChartSeries[];
  readonly xLabel?: string;
  readonly yLabel?: string;
  /** `time` (default): x is milliseconds since 1970, labelled as UTC dates and times. */
  readonly xAxis?: 'time' | 'number';
  /** Start the y axis at zero (default true; counts are never negative). */
  readonly yFromZero?: boolean;
  readonly width?: number;
  readonly height?: number;
}

/** Series colours, distinct on white and for common colour blindness. */
export const SERIES_COLOURS: readonly Rgb[] = [
  [0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [230, 159, 0], [86, 180, 233], [120, 120, 120], [0, 0, 0],
];

const INK: Rgb = [20, 20, 20];
const GRID: Rgb = [225, 225, 225];
const SUBTLE: Rgb = [90, 90, 90];

/** Draws a time-series (or x/y) line chart with axes, ticks, labels and a legend. */
export function renderLineChart(options: LineChartOptions): Canvas {
  const width = options.width ?? 800;
  const height = options.height ?? 400;
  const canvas = new Canvas(width, height);
  for (const s of options.series) {
    if (s.x.length !== s.y.length) {
      throw new IppError('plot_bad_series', `series "${s.name}" has ${s.x.length} x values but ${s.y.length} y values`);
    }
  }
  let xMin = Infinity;
  let xMax = -Infinity;
  let yMin = options.yFromZero === false ? Infinity : 0;
  let yMax = -Infinity;
  for (const s of options.series) {
    for (let i = 0; i < s.x.length; i++) {
      if (!Number.isFinite(s.x[i]) || !Number.isFinite(s.y[i])) continue;
      xMin = Math.min(xMin, s.x[i]);
      xMax = Math.max(xMax, s.x[i]);
      yMin = Math.min(yMin, s.y[i]);
      yMax = Math.max(yMax, s.y[i]);
    }
  }
  const empty = xMin > xMax;
  if (empty) {
    xMin = options.xAxis === 'number' ? 0 : Date.now() - HOUR;
    xMax = options.xAxis === 'number' ? 1 : Date.now();
    yMin = 0;
    yMax = 1;
  }
  if (xMax === xMin) {
    const pad = options.xAxis === 'number' ? 1 : HOUR;
    xMin -= pad;
    xMax += pad;
  }
  if (yMax === yMin) yMax = yMin + (Math.abs(yMin) || 1);
  const yTicks = niceTicks(yMin, yMax, Math.max(2, Math.floor(height / 60)));
  yMin = Math.min(yMin, yTicks.values[0] ?? yMin);
  yMax = Math.max(yMax, yTicks.values.at(-1) ?? yMax);
  const yLabels = yTicks.values.map((v) => formatTick(v, yTicks.step));

  const left = 12 + (options.yLabel ? FONT_CELL.height + 4 : 0) + Math.max(...yLabels.map((l) => textWidth(l)), 0) + 6;
  const top = 10 + 2 * FONT_CELL.height + 6 + FONT_CELL.height + 4;
  const bottom = 10 + FONT_CELL.height + 6 + (options.xLabel ? FONT_CELL.height + 4 : 0);
  const right = 16;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  if (plotW < 20 || plotH < 20) throw new IppError('plot_bad_size', `a ${width}x${height} chart leaves no room to plot; make it larger`);
  const px = (x: number): number => left + ((x - xMin) / (xMax - xMin)) * (plotW - 1);
  const py = (y: number): number => top + plotH - 1 - ((y - yMin) / (yMax - yMin)) * (plotH - 1);

  canvas.text(width / 2, 8, options.title, INK, { scale: 2, align: 'center' });
  if (options.subtitle) canvas.text(width / 2, 8 + 2 * FONT_CELL.height + 2, options.subtitle, SUBTLE, { align: 'center' });
  const xTicks = options.xAxis === 'number'
    ? (() => { const t = niceTicks(xMin, xMax, Math.max(2, Math.floor(plotW / 90))); return { values: t.values, labels: t.values.map((v) => formatTick(v, t.step)) }; })()
    : timeTicks(xMin, xMax, Math.max(2, Math.floor(plotW / 110)));
  xTicks.values.forEach((v, i) => {
    const x = px(v);
    canvas.line(x, top, x, top + plotH - 1, GRID);
    canvas.line(x, top + plotH, x, top + plotH + 4, INK);
    canvas.text(x, top + plotH + 7, xTicks.labels[i], INK, { align: 'center' });
  });
  yTicks.values.forEach((v, i) => {
    const y = py(v);
    canvas.line(left, y, left + plotW - 1, y, GRID);
    canvas.line(left - 5, y, left - 1, y, INK);
    canvas.text(left - 8, y - 4, yLabels[i], INK, { align: 'right' });
  });
  canvas.strokeRect(left - 1, top - 1, plotW + 2, plotH + 2, INK);
  if (options.xLabel) canvas.text(left + plotW / 2, height - FONT_CELL.height - 4, options.xLabel, INK, { align: 'center' });
  if (options.yLabel) canvas.text(6, top + plotH / 2, options.yLabel, INK, { vertical: true, align: 'center' });
  if (empty) canvas.text(left + plotW / 2, top + plotH / 2 - 4, 'no data yet', [150, 150, 150], { align: 'center' });

  options.series.forEach((s, k) => {
    const colour = s.colour ?? SERIES_COLOURS[k % SERIES_COLOURS.length];
    let prev: [number, number] | undefined;
    const markers = s.x.length <= 60;
    for (let i = 0; i < s.x.length; i++) {
      if (!Number.isFinite(s.x[i]) || !Number.isFinite(s.y[i])) {
        prev = undefined;
        continue;
      }
      const p: [number, number] = [px(s.x[i]), py(s.y[i])];
      if (prev) canvas.line(prev[0], prev[1], p[0], p[1], colour, 2);
      if (markers) canvas.fillRect(p[0] - 2, p[1] - 2, 5, 5, colour);
      prev = p;
    }
  });

  if (options.series.length > 0) {
    const rowH = FONT_CELL.height + 4;
    const boxW = 30 + Math.max(...options.series.map((s) => textWidth(s.name)));
    const boxH = rowH * options.series.length + 6;
    const bx = left + 8;
    const by = top + 8;
    canvas.fillRect(bx, by, boxW, boxH, [255, 255, 255], 0.85);
    canvas.strokeRect(bx, by, boxW, boxH, [180, 180, 180]);
    options.series.forEach((s, k) => {
      const colour = s.colour ?? SERIES_COLOURS[k % SERIES_COLOURS.length];
      const y = by + 4 + k * rowH;
      canvas.fillRect(bx + 5, y + 3, 16, 4, colour);
      canvas.text(bx + 25, y, s.name, INK);
    });
  }
  return canvas;
}

/** Counts on an RA/Dec grid: `counts[j * nRa + i]` for RA cell i (from raMin) and Dec cell j (from decMin). */
export interface SkyGrid {
  readonly raMin: number;
  readonly raMax: number;
  readonly decMin: number;
  readonly decMax: number;
  readonly nRa: number;
  readonly nDec: number;
  readonly counts: Float64Array;
}

/** The cells of a sky grid: bounds in degrees and a cell size (or counts of cells). */
export interface SkyGridSpec {
  readonly raMin: number;
  readonly raMax: number;
  readonly decMin: number;
  readonly decMax: number;
  /** Cell size in degrees (default: about 60 cells along the longer side). */
  readonly cellSize?: number;
}

/** Bins positions (degrees) onto an RA/Dec grid; positions outside it or not finite are left out. */
export function binSky(ra: ArrayLike<number>, dec: ArrayLike<number>, spec: SkyGridSpec, weights?: ArrayLike<number>): SkyGrid {
  const { raMin, raMax, decMin, decMax } = spec;
  if (![raMin, raMax, decMin, decMax].every(Number.isFinite) || raMax <= raMin || decMax <= decMin) {
    throw new IppError('plot_bad_grid', `sky grid RA ${raMin}..${raMax}, Dec ${decMin}..${decMax} is empty or not finite`);
  }
  if (ra.length !== dec.length || (weights !== undefined && weights.length !== ra.length)) {
    throw new IppError('plot_bad_series', `${ra.length} RA values, ${dec.length} Dec values${weights ? `, ${weights.length} weights` : ''}: lengths differ`);
  }
  const cell = spec.cellSize ?? Math.max(raMax - raMin, decMax - decMin) / 60;
  if (!(cell > 0)) throw new IppError('plot_bad_grid', `cell size ${cell} must be positive`);
  const nRa = Math.max(1, Math.min(2000, Math.ceil((raMax - raMin) / cell - 1e-9)));
  const nDec = Math.max(1, Math.min(2000, Math.ceil((decMax - decMin) / cell - 1e-9)));
  const counts = new Float64Array(nRa * nDec);
  const fr = nRa / (raMax - raMin);
  const fd = nDec / (decMax - decMin);
  for (let k = 0; k < ra.length; k++) {
    const r = ra[k];
    const d = dec[k];
    if (!(r >= raMin && r <= raMax && d >= decMin && d <= decMax)) continue;
    const i = Math.min(nRa - 1, Math.floor((r - raMin) * fr));
    const j = Math.min(nDec - 1, Math.floor((d - decMin) * fd));
    counts[j * nRa + i] += weights ? weights[k] : 1;
  }
  return { raMin, raMax, decMin, decMax, nRa, nDec, counts };
}

// Colour ramp anchors (dark blue → teal → green → yellow), chosen to rise steadily in lightness.
const RAMP: readonly Rgb[] = [[40, 30, 110], [35, 95, 150], [30, 150, 140], [110, 195, 90], [250, 230, 40]];

/** The ramp's colour at `t` in 0..1. */
export function rampColour(t: number): Rgb {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(u));
  const f = u - i;
  const a = RAMP[i];
  const b = RAMP[i + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** Options of {@link renderDensityMap}. */
export interface DensityMapOptions {
  readonly title: string;
  /** A smaller line under the title (default: the total and the largest cell). */
  readonly subtitle?: string;
  readonly grid: SkyGrid;
  /** Shown beside the colour bar, e.g. `pending items per cell`. */
  readonly unit?: string;
  readonly width?: number;
  readonly height?: number;
}

/** The colour of an empty cell: lighter than any colour of the ramp, so "nothing" stands out. */
export const EMPTY_CELL: Rgb = [238, 238, 238];

/** Draws a sky density map: RA increasing to the left (as on the sky), Dec up, a colour bar. */
export function renderDensityMap(options: DensityMapOptions): Canvas {
  const { grid } = options;
  const width = options.width ?? 800;
  const height = options.height ?? 500;
  if (grid.counts.length !== grid.nRa * grid.nDec) {
    throw new IppError('plot_bad_grid', `a ${grid.nRa}x${grid.nDec} grid needs ${grid.nRa * grid.nDec} counts; got ${grid.counts.length}`);
  }
  const canvas = new Canvas(width, height);
  let max = 0;
  for (const c of grid.counts) if (c > max) max = c;
  const cTicks = niceTicks(0, max || 1, 5);
  const cLabels = cTicks.values.map((v) => formatTick(v, cTicks.step));
  const raTicks = niceTicks(grid.raMin, grid.raMax, 6);
  const decTicks = niceTicks(grid.decMin, grid.decMax, 6);
  const decLabels = decTicks.values.map((v) => formatTick(v, decTicks.step));

  const left = 12 + FONT_CELL.height + 4 + Math.max(...decLabels.map((l) => textWidth(l)), 0) + 6;
  const top = 10 + 2 * FONT_CELL.height + 6 + FONT_CELL.height + 4;
  const bottom = 10 + 2 * FONT_CELL.height + 14;
  const barW = 16;
  const right = 14 + barW + 8 + Math.max(...cLabels.map((l) => textWidth(l)), 0) + (options.unit ? FONT_CELL.height + 8 : 0);
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  if (plotW < 20 || plotH < 20) throw new IppError('plot_bad_size', `a ${width}x${height} map leaves no room to plot; make it larger`);
  // RA increases to the left: the east-left convention of sky charts.
  const px = (ra: number): number => left + ((grid.raMax - ra) / (grid.raMax - grid.raMin)) * plotW;
  const py = (dec: number): number => top + ((grid.decMax - dec) / (grid.decMax - grid.decMin)) * plotH;

  canvas.text(width / 2, 8, options.title, INK, { scale: 2, align: 'center' });
  let total = 0;
  for (const c of grid.counts) total += c;
  const subtitle = options.subtitle ?? `total ${total}, at most ${max} per ${cellText(grid)} cell`;
  canvas.text(width / 2, 8 + 2 * FONT_CELL.height + 2, subtitle, SUBTLE, { align: 'center' });
  for (let j = 0; j < grid.nDec; j++) {
    const d0 = grid.decMin + ((grid.decMax - grid.decMin) * j) / grid.nDec;
    const d1 = grid.decMin + ((grid.decMax - grid.decMin) * (j + 1)) / grid.nDec;
    for (let i = 0; i < grid.nRa; i++) {
      const r0 = grid.raMin + ((grid.raMax - grid.raMin) * i) / grid.nRa;
      const r1 = grid.raMin + ((grid.raMax - grid.raMin) * (i + 1)) / grid.nRa;
      const c = grid.counts[j * grid.nRa + i];
      const x0 = Math.round(px(r1));
      const x1 = Math.round(px(r0));
      const y0 = Math.round(py(d1));
      const y1 = Math.round(py(d0));
      canvas.fillRect(x0, y0, x1 - x0, y1 - y0, c > 0 ? rampColour(c / (max || 1)) : EMPTY_CELL);
    }
  }
  raTicks.values.forEach((v) => {
    const x = px(v);
    canvas.line(x, top, x, top + plotH - 1, [255, 255, 255], 1, 0.35);
    canvas.line(x, top + plotH, x, top + plotH + 4, INK);
    canvas.text(x, top + plotH + 7, formatTick(v, raTicks.step), INK, { align: 'center' });
  });
  decTicks.values.forEach((v, i) => {
    const y = py(v);
    canvas.line(left, y, left + plotW - 1, y, [255, 255, 255], 1, 0.35);
    canvas.line(left - 5, y, left - 1, y, INK);
    canvas.text(left - 8, y - 4, decLabels[i], INK, { align: 'right' });
  });
  canvas.strokeRect(left - 1, top - 1, plotW + 2, plotH + 2, INK);
  canvas.text(left + plotW / 2, height - FONT_CELL.height - 6, 'RA (°)', INK, { align: 'center' });
  canvas.text(6, top + plotH / 2, 'Dec (°)', INK, { vertical: true, align: 'center' });

  const barX = left + plotW + 14;
  for (let y = 0; y < plotH; y++) canvas.fillRect(barX, top + y, barW, 1, rampColour(1 - y / Math.max(1, plotH - 1)));
  canvas.strokeRect(barX - 1, top - 1, barW + 2, plotH + 2, INK);
  cTicks.values.forEach((v, i) => {
    const y = top + plotH - 1 - (v / (max || 1)) * (plotH - 1);
    if (y < top - 1) return;
    canvas.line(barX + barW, y, barX + barW + 3, y, INK);
    canvas.text(barX + barW + 6, y - 4, cLabels[i], INK);
  });
  if (options.unit) {
    canvas.text(width - FONT_CELL.height - 2, top + plotH / 2, options.unit, INK, { vertical: true, align: 'center' });
  }
  return canvas;
}

function cellText(grid: SkyGrid): string {
  const w = (grid.raMax - grid.raMin) / grid.nRa;
  const h = (grid.decMax - grid.decMin) / grid.nDec;
  const f = (v: number): string => String(Number(v.toPrecision(3)));
  return w === h ? `${f(w)}°` : `${f(w)}°x${f(h)}°`;
}

/** A chart or map as PNG bytes, titled in its tEXt chunk. */
export function plotPng(canvas: Canvas, title: string): Uint8Array {
  return encodePng(canvas, { text: { Title: title, Software: 'ipp' } });
}
