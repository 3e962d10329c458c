// Time windows in which a task may run (the original's `trange`): absolute (two instants),
// daily (two times of day, UTC) or weekly (Mon@HH:MM:SS). A window either includes (the task
// runs only inside one of the including windows) or excludes (never inside it), and an
// including window may cap the jobs started inside it (`nmax`), counted afresh each time the
// window comes round. Unlike the original, a daily or weekly window whose end comes before its
// start wraps round midnight (or the week's end), so a night is one window, not two.
import { PantasksError } from './errors.ts';

/** How a window's ends are read. */
export type TimeRangeKind = 'absolute' | 'daily' | 'weekly';

/** A window as written in a task: `'22:00 06:00'`, `'Mon@08:00 Fri@18:00 -exclude'`, `'2026-11-21T00:00Z 2026-11-22T00:00Z -nmax 5'`, or an object. */
export type TimeRangeSpec = string | {
  readonly start: string;
  readonly end: string;
  readonly exclude?: boolean;
  readonly nmax?: number;
};

/** A parsed window; `runs` counts the jobs started in the current pass of an `nmax` window. */
export interface TimeRange {
  readonly kind: TimeRangeKind;
  /** Seconds: since the epoch (absolute), since midnight UTC (daily), since Sunday 00:00 UTC (weekly). */
  readonly start: number;
  readonly end: number;
  readonly include: boolean;
  readonly nmax: number;
  readonly text: string;
  runs: number;
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DAY = 86_400;
const WEEK = 7 * DAY;

function timeOfDay(text: string): number | null {
  const m = /^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}(?:\.[0-9]+)?))?$/.exec(text);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  const s = m[3] === undefined ? 0 : Number(m[3]);
  if (h > 24 || min > 59 || s >= 60 || (h === 24 && (min > 0 || s > 0))) return null;
  return h * 3600 + min * 60 + s;
}

function weekTime(text: string): number | null {
  const m = /^([A-Za-z]{3})[A-Za-z]*@(.+)$/.exec(text);
  if (!m) return null;
  const day = DAYS.indexOf(m[1]!.toLowerCase());
  const t = timeOfDay(m[2]!);
  if (day < 0 || t === null) return null;
  return day * DAY + t;
}

function instant(text: string): number | null {
  // The original wrote dates with slashes; ISO-8601 is what everything else here speaks. A
  // date or time without a zone is UTC, like the daily windows.
  let iso = text.replace(/^([0-9]{4})\/([0-9]{2})\/([0-9]{2})/, '$1-$2-$3');
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$/.test(iso)) return null;
  iso = iso.replace(' ', 'T');
  if (!/T/.test(iso)) iso += 'T00:00:00';
  if (!/(Z|[+-][0-9]{2}:?[0-9]{2})$/.test(iso)) iso += 'Z';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms / 1000;
}

function bad(text: string, why: string): PantasksError {
  return new PantasksError('pantasks_bad_trange',
    `trange "${text}": ${why}; write START END as HH:MM[:SS] (daily, UTC), Day@HH:MM[:SS] (weekly), or ISO-8601 instants, optionally with -exclude and -nmax N`);
}

/** Parses one window; a clear error naming the text when it does not read. */
export function parseTimeRange(spec: TimeRangeSpec): TimeRange {
  let start: string;
  let end: string;
  let exclude = false;
  let nmax = 0;
  let text: string;
  if (typeof spec === 'string') {
    text = spec;
    const words = spec.trim().split(/\s+/).filter((w) => w !== '');
    const rest: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (w === '-exclude' || w === 'exclude') exclude = true;
      else if (w === '-nmax' || w === 'nmax') {
        const n = words[++i];
        if (n === undefined || !/^[0-9]+$/.test(n)) throw bad(spec, '-nmax needs a whole number');
        nmax = Number(n);
      } else rest.push(w);
    }
    if (rest.length !== 2) throw bad(spec, `expected a start and an end, found ${rest.length} word${rest.length === 1 ? '' : 's'}`);
    [start, end] = rest as [string, string];
  } else if (spec !== null && typeof spec === 'object' && typeof spec.start === 'string' && typeof spec.end === 'string') {
    ({ start, end } = spec);
    text = `${start} ${end}`;
    exclude = spec.exclude === true;
    if (spec.nmax !== undefined) {
      if (!Number.isInteger(spec.nmax) || spec.nmax < 0) throw bad(text, 'nmax must be a whole number');
      nmax = spec.nmax;
    }
  } else {
    throw new PantasksError('pantasks_bad_trange', `trange ${JSON.stringify(spec)}: give "START END" or { start, end }`);
  }
  if (exclude && nmax > 0) throw bad(text, '-nmax applies to including windows only');
  const kinds: [TimeRangeKind, (t: string) => number | null][] = [['weekly', weekTime], ['daily', timeOfDay], ['absolute', instant]];
  for (const [kind, read] of kinds) {
    const a = read(start);
    if (a === null) continue;
    const b = read(end);
    if (b === null) throw bad(text, `the start reads as a ${kind} time but the end "${end}" does not`);
    if (kind === 'absolute' && b < a) throw bad(text, 'the end comes before the start');
    return { kind, start: a, end: b, include: !exclude, nmax, text, runs: 0 };
  }
  throw bad(text, `"${start}" is not a time`);
}

/** The instant `t` (ms since the epoch) in a window's own clock. */
function clock(kind: TimeRangeKind, t: number): number {
  const s = t / 1000;
  if (kind === 'absolute') return s;
  const day = ((s % DAY) + DAY) % DAY;
  if (kind === 'daily') return day;
  const weekday = new Date(t).getUTCDay();
  return weekday * DAY + day;
}

function inside(r: TimeRange, t: number): boolean {
  const c = clock(r.kind, t);
  if (r.start <= r.end) return c >= r.start && c <= r.end;
  // A daily or weekly window that wraps round.
  return c >= r.start || c <= r.end;
}

/**
 * Whether a task may start a job at `now` (ms): inside an including window (or there are
 * none), outside every excluding one, and under the cap of the including windows it is in.
 * Leaving an including window with a cap resets its count, as in the original.
 */
export function timeRangesAllow(ranges: readonly TimeRange[], now: number): boolean {
  let includes = 0;
  let included = false;
  for (const r of ranges) {
    const isIn = inside(r, now);
    if (r.include) {
      includes++;
      if (r.nmax > 0) {
        if (!isIn) r.runs = 0;
        else if (r.runs >= r.nmax) return false;
      }
      if (isIn) included = true;
    } else if (isIn) {
      return false;
    }
  }
  return includes === 0 || included;
}

/** Counts a started job against the capped including windows it started in. */
export function countTimeRangeRun(ranges: readonly TimeRange[], now: number): void {
  for (const r of ranges) if (r.include && r.nmax > 0 && inside(r, now)) r.runs++;
}

/** The period of a window's clock in seconds (for wrap-round arithmetic in tests and status). */
export function clockPeriod(kind: TimeRangeKind): number {
  return kind === 'daily' ? DAY : kind === 'weekly' ? WEEK : Infinity;
}
