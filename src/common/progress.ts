/** Something that reports progress of long work. */
export interface Progress {
  /** Sets the amount done so far (same unit as `total`). */
  update(done: number): void;
  /** Ends the report (prints the final state). */
  finish(): void;
}

/** Options for {@link createProgress}. */
export interface ProgressOptions {
  label: string;
  /** Total amount of work, if known. */
  total?: number;
  /** Unit shown after the numbers, e.g. `rows` or `bytes`. */
  unit?: string;
  /** Output stream; a TTY gets a redrawn bar, anything else plain lines. */
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  /** Least milliseconds between two plain lines (TTY redraws are limited to 10 per second). */
  lineIntervalMs?: number;
  now?: () => number;
}

/**
 * A progress reporter: a redrawn bar on a terminal, plain lines (at most one per
 * `lineIntervalMs`) otherwise, so logs stay readable when output is redirected.
 */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = Boolean((stream as { isTTY?: boolean }).isTTY);
  const now = options.now ?? Date.now;
  const interval = tty ? 100 : (options.lineIntervalMs ?? 5000);
  const unit = options.unit ? ` ${options.unit}` : '';
  const started = now();
  // Plain lines start after one interval, so short work prints only its final line.
  let last = tty ? -Infinity : started;
  let done = 0;
  const text = (): string => {
    const secs = Math.max((now() - started) / 1000, 1e-9);
    const rate = done / secs;
    if (options.total !== undefined && options.total > 0) {
      const frac = Math.min(done / options.total, 1);
      const pct = (frac * 100).toFixed(1).padStart(5);
      if (tty) {
        const width = 30;
        const fill = Math.round(frac * width);
        return `${options.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${pct}% ${done}/${options.total}${unit} ${formatRate(rate)}${unit}/s`;
      }
      return `${options.label}: ${pct}% ${done}/${options.total}${unit} (${formatRate(rate)}${unit}/s)`;
    }
    return `${options.label}: ${done}${unit} (${formatRate(rate)}${unit}/s)`;
  };
  const draw = (force: boolean): void => {
    const t = now();
    if (!force && t - last < interval) return;
    last = t;
    if (tty) stream.write(`\r\x1b[K${text()}`);
    else stream.write(`${text()}\n`);
  };
  return {
    update(value: number) {
      done = value;
      draw(false);
    },
    finish() {
      draw(true);
      if (tty) stream.write('\n');
    },
  };
}

function formatRate(rate: number): string {
  if (rate >= 1e9) return `${(rate / 1e9).toFixed(2)}G`;
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)}M`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)}k`;
  return rate.toFixed(0);
}

/** A progress reporter that reports nothing. */
export const noProgress: Progress = { update() {}, finish() {} };
