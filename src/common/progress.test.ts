import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress } from './progress.ts';

test('plain lines: at most one per interval, then the final line', () => {
  let t = 0;
  const lines: string[] = [];
  const p = createProgress({ label: 'copy', total: 100, unit: 'rows', stream: { write: (s: string) => lines.push(s) }, lineIntervalMs: 1000, now: () => t });
  p.update(10);
  t = 500; p.update(20);
  t = 1500; p.update(50);
  t = 1600; p.update(60);
  t = 2000; p.finish();
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^copy: {2}50\.0% 50\/100 rows/);
  assert.match(lines[1], /^copy: {2}60\.0% 60\/100 rows/);
});

test('a terminal gets a redrawn bar and a closing newline', () => {
  let t = 0;
  let out = '';
  const p = createProgress({ label: 'load', total: 4, stream: { write: (s: string) => { out += s; }, isTTY: true }, now: () => t });
  p.update(1);
  t = 200; p.update(4);
  p.finish();
  assert.ok(out.startsWith('\r\x1b[Kload ['));
  assert.ok(out.includes('100.0%'));
  assert.ok(out.endsWith('\n'));
});
