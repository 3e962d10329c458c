// The task options, with real child processes, after the original's test scripts (local.sh,
// trange.sh, nice.sh, hosttargets.sh): npending, nmax, trange, active, nice, output
// destinations, and hosts wanted or needed.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { clockIn, collect, maxOverlap, sleep, withScheduler } from './test-support.ts';

describe('task options with real child processes', () => {
  it('npending: at most N jobs of a task at once', () => withScheduler(async (s) => {
    const done = collect(s);
    s.addTask({ name: 'sleepy', command: ['sleep', '0.3'], period: 0.01, burst: 10, npending: 2, nmax: 6 });
    await s.run();
    await s.until(() => done.jobs.length === 6, 20_000, 'six jobs');
    assert.equal(maxOverlap(done.jobs.map((j) => j.result)), 2, 'two at a time, never three');
    assert.ok(done.jobs.every((j) => j.result.outcome === 'exit' && j.result.status === 0));
  }));

  it('nmax: a task makes at most N jobs ever', () => withScheduler(async (s) => {
    const done = collect(s);
    s.addTask({ name: 'three', command: 'echo $IPP_PANTASKS_JOB', period: 0.01, nmax: 3 });
    await s.run();
    await s.until(() => done.jobs.length === 3, 10_000, 'three jobs');
    await sleep(300);
    assert.equal(done.jobs.length, 3);
    assert.equal(s.status().tasks[0]!.jobs, 3);
    assert.match(done.jobs[0]!.result.stdout, new RegExp(`^${s.instance}:[0-9]+\\n$`), 'each job carries its scheduler and id');
  }));

  it('trange: no jobs outside the windows, at most -nmax inside a capped one, none inside an excluding one', () => withScheduler(async (s) => {
    const done = collect(s);
    s.addTask({ name: 'windowed', command: ['true'], period: 0.01, trange: [`${clockIn(7200)} ${clockIn(10_800)}`] });
    await s.run();
    await sleep(300);
    assert.equal(done.jobs.length, 0, 'outside its window');
    assert.equal(s.status().tasks[0]!.inWindow, false);
    s.setTaskOptions('windowed', { trange: [`${clockIn(-3600)} ${clockIn(3600)} -nmax 2`] });
    await s.until(() => done.jobs.length === 2, 10_000, 'two jobs in the window');
    await sleep(300);
    assert.equal(done.jobs.length, 2, 'the window allows two');
    s.setTaskOptions('windowed', { trange: [`${clockIn(-3600)} ${clockIn(3600)}`, `${clockIn(-60)} ${clockIn(60)} -exclude`] });
    await sleep(300);
    assert.equal(done.jobs.length, 2, 'an excluding window wins');
    s.setTaskOptions('windowed', { trange: [] });
    await s.until(() => done.jobs.length > 2, 10_000, 'jobs once the windows are gone');
  }));

  it('active: an inactive task is not tried; turned on, it runs', () => withScheduler(async (s) => {
    const done = collect(s);
    let tries = 0;
    s.addTask({ name: 'off', active: false, period: 0.01, nmax: 2, exec: () => (tries++, { command: ['true'] }) });
    await s.run();
    await sleep(300);
    assert.equal(tries, 0);
    assert.equal(done.jobs.length, 0);
    s.setTaskOptions('off', { active: true });
    await s.until(() => done.jobs.length === 2, 10_000, 'two jobs');
    assert.equal(tries, 2);
  }));

  it('exec may decline (the original break); nice, and stdout/stderr to files, dropped or kept', () => withScheduler(async (s, dir) => {
    const done = collect(s);
    let n = 0;
    s.addTask({ name: 'sometimes', period: 0.01, nmax: 2, exec: () => (++n % 3 === 0 ? { command: ['true'] } : null) });
    s.addTask({ name: 'nice', command: ['nice'], nice: 7, nmax: 1 });
    const out = join(dir, 'out.log');
    const err = join(dir, 'err.log');
    s.addTask({ name: 'files', command: 'echo to-out; echo to-err >&2', nmax: 2, period: 0.01, stdout: out, stderr: err });
    s.addTask({ name: 'dropped', command: 'echo gone; echo also-gone >&2', nmax: 1, stdout: null, stderr: null });
    // A word with a newline cannot go through the line-based launchers: started directly instead.
    s.addTask({ name: 'newline', command: ['printf', '%s', 'two\nlines'], nmax: 1 });
    await s.run();
    await s.until(() => done.jobs.length === 7, 10_000, 'seven jobs');
    assert.equal(done.of('newline')[0]!.result.stdout, 'two\nlines');
    assert.ok(s.status().tasks.find((t) => t.name === 'sometimes')!.declined >= 2);
    assert.equal(done.of('nice')[0]!.result.stdout, '7\n', 'the job ran at nice 7');
    assert.equal(await readFile(out, 'utf8'), 'to-out\nto-out\n');
    assert.equal(await readFile(err, 'utf8'), 'to-err\nto-err\n');
    assert.equal(done.of('files')[0]!.result.stdout, 'to-out\n', 'kept for the handler too');
    assert.deepEqual([done.of('dropped')[0]!.result.stdout, done.of('dropped')[0]!.result.stderr], ['', '']);
  }));

  it('host needed: jobs wait for their host; wanted: they go elsewhere when it is busy; unknown needed hosts wait', () => withScheduler(async (s) => {
    const done = collect(s);
    await s.addHost({ kind: 'pclient', name: 'a', slots: 1 });
    await s.addHost({ kind: 'pclient', name: 'b', slots: 1 });
    await s.until(() => s.controller.hosts().every((h) => h.state === 'idle'), 20_000, 'hosts up');
    s.addTask({ name: 'needs-b', command: ['sleep', '0.2'], host: 'b', hostNeed: 'needed', nmax: 3, npending: 3, burst: 3 });
    await s.run();
    await s.until(() => done.of('needs-b').length === 3, 20_000, 'needs-b jobs');
    assert.deepEqual(done.of('needs-b').map((j) => j.result.host), ['b', 'b', 'b'], 'only on b, though a was idle');
    assert.equal(maxOverlap(done.of('needs-b').map((j) => j.result)), 1, 'one slot on b');

    s.addTask({ name: 'wants-b', command: ['sleep', '0.4'], host: 'b', nmax: 3, npending: 3, burst: 3 });
    await s.until(() => done.of('wants-b').length === 3, 20_000, 'wants-b jobs');
    const hosts = done.of('wants-b').map((j) => j.result.host);
    assert.ok(hosts.includes('b') && hosts.includes('a'), `b took one, a the others while b was busy: ${hosts}`);

    s.addTask({ name: 'needs-c', command: ['true'], host: 'c', hostNeed: 'needed', nmax: 1 });
    await s.until(() => s.jobs().some((j) => j.task === 'needs-c'), 10_000, 'the needs-c job');
    await sleep(200);
    const waiting = s.jobs().find((j) => j.task === 'needs-c')!;
    assert.equal(waiting.state, 'pending');
    assert.match(waiting.waiting ?? '', /needs host c, which is not known/);
    await s.addHost({ kind: 'pclient', name: 'c', slots: 1 });
    await s.until(() => done.of('needs-c').length === 1, 20_000, 'needs-c once c is there');
    assert.equal(done.of('needs-c')[0]!.result.host, 'c');
    assert.ok(s.status().hosts.find((h) => h.name === 'b')!.jobsDone >= 4);
  }));
});
