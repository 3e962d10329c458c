import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PantasksError } from './errors.ts';
import { countTimeRangeRun, parseTimeRange, timeRangesAllow } from './time-range.ts';

const at = (iso: string) => Date.parse(iso);

describe('trange', () => {
  it('reads daily, weekly and absolute windows, with -exclude and -nmax', () => {
    const d = parseTimeRange('22:00 06:00:30');
    assert.deepEqual([d.kind, d.start, d.end, d.include, d.nmax], ['daily', 22 * 3600, 6 * 3600 + 30, true, 0]);
    const w = parseTimeRange('Mon@08:00 Friday@18:00:00 -exclude');
    assert.deepEqual([w.kind, w.start, w.end, w.include], ['weekly', 86_400 + 8 * 3600, 5 * 86_400 + 18 * 3600, false]);
    const a = parseTimeRange('2026/11/21 2026-11-22T12:00Z -nmax 5');
    assert.deepEqual([a.kind, a.start, a.end, a.nmax], ['absolute', at('2026-11-21T00:00:00Z') / 1000, at('2026-11-22T12:00:00Z') / 1000, 5]);
    const o = parseTimeRange({ start: '01:00', end: '02:00', nmax: 2 });
    assert.deepEqual([o.kind, o.nmax, o.text], ['daily', 2, '01:00 02:00']);
  });

  it('refuses what does not read, saying what and how to write it', () => {
    for (const [spec, why] of [
      ['25:00 26:00', /is not a time/], ['10:00', /start and an end/], ['10:00 tomorrow', /does not/],
      ['2026-11-22 2026-11-21', /before the start/], ['10:00 11:00 -nmax x', /whole number/],
      ['10:00 11:00 -exclude -nmax 2', /including windows only/], ['Xyz@10:00 Mon@11:00', /is not a time/],
    ] as const) {
      assert.throws(() => parseTimeRange(spec), (e: unknown) => e instanceof PantasksError && e.code === 'pantasks_bad_trange' && why.test(e.message) && e.message.includes('HH:MM'), spec);
    }
    assert.throws(() => parseTimeRange(42 as never), /give "START END"/);
  });

  it('allows inside an including window, never inside an excluding one; a night wraps round midnight', () => {
    const night = [parseTimeRange('22:00 06:00')];
    assert.equal(timeRangesAllow(night, at('2026-11-21T23:30:00Z')), true);
    assert.equal(timeRangesAllow(night, at('2026-11-21T03:00:00Z')), true);
    assert.equal(timeRangesAllow(night, at('2026-11-21T12:00:00Z')), false);
    const both = [parseTimeRange('08:00 18:00'), parseTimeRange('12:00 13:00 -exclude')];
    assert.equal(timeRangesAllow(both, at('2026-11-21T09:00:00Z')), true);
    assert.equal(timeRangesAllow(both, at('2026-11-21T12:30:00Z')), false);
    assert.equal(timeRangesAllow(both, at('2026-11-21T19:00:00Z')), false);
    assert.equal(timeRangesAllow([parseTimeRange('12:00 13:00 -exclude')], at('2026-11-21T09:00:00Z')), true, 'only excluding windows: open elsewhere');
    assert.equal(timeRangesAllow([], at('2026-11-21T09:00:00Z')), true);
    // 2026-11-21 is a Saturday.
    const weekdays = [parseTimeRange('Mon@00:00 Fri@23:59:59')];
    assert.equal(timeRangesAllow(weekdays, at('2026-11-21T10:00:00Z')), false);
    assert.equal(timeRangesAllow(weekdays, at('2026-11-23T10:00:00Z')), true);
    const abs = [parseTimeRange('2026-11-21T10:00Z 2026-11-21T11:00Z')];
    assert.equal(timeRangesAllow(abs, at('2026-11-21T10:30:00Z')), true);
    assert.equal(timeRangesAllow(abs, at('2026-11-22T10:30:00Z')), false);
  });

  it('caps the jobs of a window with nmax, afresh each time the window comes round', () => {
    const ranges = [parseTimeRange('10:00 11:00 -nmax 2')];
    const inside = at('2026-11-21T10:10:00Z');
    assert.equal(timeRangesAllow(ranges, inside), true);
    countTimeRangeRun(ranges, inside);
    countTimeRangeRun(ranges, inside);
    assert.equal(timeRangesAllow(ranges, inside), false, 'two runs used up the window');
    assert.equal(timeRangesAllow(ranges, at('2026-11-21T12:00:00Z')), false, 'outside the window');
    assert.equal(timeRangesAllow(ranges, at('2026-11-22T10:10:00Z')), true, 'the next day the count starts again');
  });
});
