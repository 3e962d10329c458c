// Bad input and faults: a task whose exec throws, task modules that fail to load, a command
// that does not exist, a job that crashes, a job that hangs past its timeout, a host that
// cannot be reached, a host that dies under its jobs.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PantasksError } from './errors.ts';
import { loadTaskModule } from './task-module.ts';
import { alive, collect, sleep, testLogger, withScheduler } from './test-support.ts';


describe('faults', () => {
  it('a throwing exec or handler is counted and shown; other tasks go on', () => withScheduler(async (s) => {
    const done = collect(s);
    s.addTask({ name: 'broken', period: 0.01, exec: () => { throw new Error('no database today'); } });
    s.addTask({ name: 'bad-return', period: 0.01, exec: () => ({ command: 42 }) as never });
    s.addTask({ name: 'bad-handler', command: ['true'], nmax: 1, onExit: () => { throw new Error('handler broke'); } });
    s.addTask({ name: 'fine', command: ['true'], period: 0.01, nmax: 3 });
    await s.run();
    await s.until(() => done.of('fine').length === 3 && done.of('bad-handler').length === 1, 10_000, 'the good jobs');
    await s.until(() => s.status().tasks.find((t) => t.name === 'bad-handler')!.errors === 1, 5000, 'the handler error');
    const byName = new Map(s.status().tasks.map((t) => [t.name, t]));
    assert.ok(byName.get('broken')!.errors > 0);
    assert.match(byName.get('broken')!.lastError!, /exec failed: no database today/);
    assert.match(byName.get('bad-return')!.lastError!, /task bad-return: a command must be a non-empty string/);
    assert.match(byName.get('bad-handler')!.lastError!, /handler failed for job [0-9]+: handler broke/);
    assert.throws(() => s.addTask({ name: 'x y', command: 'true' }), /task name/);
    assert.throws(() => s.addTask({ name: 'nothing' } as never), /give an exec function or a command/);
    assert.throws(() => s.addTask({ name: 'np', command: 'true', npending: -1 }), /npending must be a whole number/);
    assert.throws(() => s.addTask({ name: 'tr', command: 'true', trange: ['soon later'] }), /task tr: trange "soon later"/);
    assert.throws(() => s.setTaskOptions('nope', { active: false }), (e: unknown) => e instanceof PantasksError && e.code === 'pantasks_unknown_task');
  }));

  it('task modules that fail to import, throw or return nonsense are refused and leave the old tasks', () => withScheduler(async (s, dir) => {
    const file = join(dir, 'tasks.ts');
    await writeFile(file, "export default [{ name: 'hello', command: ['true'], nmax: 1 }];\n");
    assert.deepEqual((await s.loadModule(file)).tasks, ['hello']);
    const cases: [string, RegExp][] = [
      ['export default (() => { throw new Error("config missing"); });\n', /threw: config missing/],
      ['throw new Error("top-level boom");\n', /failed to load: top-level boom/],
      ['export default 17;\n', /must be a list of tasks/],
      ['export default [{ name: "no command" }];\n', /task name|give an exec/],
      ['export default [{ name: "t", command: "true" }, { name: "t", command: "true" }];\n', /defines task t twice/],
      ['this is not typescript(\n', /failed to load/],
    ];
    for (const [text, why] of cases) {
      await writeFile(file, text);
      await assert.rejects(s.loadModule(file), (e: unknown) => e instanceof PantasksError && why.test(e.message), text);
      assert.deepEqual(s.status().tasks.map((t) => t.name), ['hello'], 'the old tasks stay');
    }
    assert.match(s.status().modules[0]!.error!, /failed to load/);
    await assert.rejects(s.loadModule(join(dir, 'missing.ts')), /does not exist/);
    await assert.rejects(s.loadModule('no-such-builtin'), /no built-in task module no-such-builtin/);
  }, { loadModule: (m, c, sch) => loadTaskModule(m, c, sch, testLogger()) }));

  it('a missing command exits 127, a crash is a crash, a hung job is killed at its timeout', () => withScheduler(async (s, dir) => {
    const done = collect(s);
    const pidFile = join(dir, 'hung.pid');
    s.addTask({ name: 'missing', command: ['/no/such/program', '--flag'], nmax: 1 });
    s.addTask({ name: 'missing-sh', command: 'no-such-program-either', nmax: 1 });
    s.addTask({ name: 'crash', command: 'kill -SEGV $$', nmax: 1 });
    s.addTask({ name: 'hung', command: `echo $$ > ${pidFile}; exec sleep 60`, nmax: 1, timeout: 0.5 });
    await s.run();
    await s.until(() => done.jobs.length === 4, 15_000, 'four jobs');
    const one = (name: string) => done.of(name)[0]!.result;
    assert.deepEqual([one('missing').outcome, one('missing').status], ['exit', 127]);
    assert.match(one('missing').reason!, /command not found: \/no\/such\/program/);
    assert.equal(one('missing-sh').status, 127, 'the shell says the same');
    assert.deepEqual([one('crash').outcome, one('crash').signal], ['crash', 'SIGSEGV']);
    assert.equal(one('hung').outcome, 'timeout');
    assert.match(one('hung').reason!, /timeout of 0.5 s/);
    const pid = Number(await readFile(pidFile, 'utf8'));
    await sleep(100);
    assert.equal(alive(pid), false, 'the hung process is gone');
    const t = new Map(s.status().tasks.map((x) => [x.name, x]));
    assert.deepEqual([t.get('missing')!.failed, t.get('crash')!.crashed, t.get('hung')!.timedOut], [1, 1, 1]);
  }));

  it('a host that cannot be reached is down with the reason; wanted jobs run elsewhere, needed ones wait', () => withScheduler(async (s) => {
    const done = collect(s);
    await s.addHost({ kind: 'pclient', name: 'broken', argv: ['/no/such/pclient'] });
    await s.addHost({ kind: 'pclient', name: 'good' });
    await s.until(() => s.controller.hosts().find((h) => h.name === 'broken')!.state === 'down', 10_000, 'broken down');
    assert.match(s.controller.hosts().find((h) => h.name === 'broken')!.detail, /command not found: \/no\/such\/pclient/);
    s.addTask({ name: 'wants', command: ['true'], host: 'broken', nmax: 2, period: 0.01 });
    s.addTask({ name: 'needs', command: ['true'], host: 'broken', hostNeed: 'needed', nmax: 1 });
    await s.run();
    await s.until(() => done.of('wants').length === 2, 15_000, 'wanted jobs');
    assert.deepEqual(done.of('wants').map((j) => j.result.host), ['good', 'good']);
    const waiting = s.jobs().find((j) => j.task === 'needs');
    assert.equal(waiting?.state, 'pending');
    assert.match(waiting!.waiting!, /needs host broken \((down|connecting)\)/);
  }));

  it('a host that dies under its jobs: they are run again elsewhere', () => withScheduler(async (s, dir) => {
    const done = collect(s);
    await s.addHost({ kind: 'pclient', name: 'doomed', slots: 2 });
    await s.until(() => s.controller.hosts()[0]!.state === 'idle', 15_000, 'doomed up');
    const pclientPid = Number(/pclient pid ([0-9]+)/.exec(s.controller.hosts()[0]!.detail)![1]);
    const marks = join(dir, 'starts');
    s.addTask({ name: 'long', command: `echo start >> ${marks}; sleep 1`, host: 'doomed', nmax: 2, npending: 2, burst: 2 });
    await s.run();
    await s.until(() => s.controller.hosts()[0]!.running === 2, 10_000, 'two jobs on doomed');
    await s.addHost({ kind: 'pclient', name: 'spare', slots: 2 });
    await s.until(() => s.controller.hosts().find((h) => h.name === 'spare')!.state === 'idle', 15_000, 'spare up');
    process.kill(pclientPid, 'SIGKILL');
    await s.until(() => done.of('long').length === 2, 20_000, 'the jobs, run again');
    assert.deepEqual(done.of('long').map((j) => [j.result.outcome, j.result.status, j.result.host]), [['exit', 0, 'spare'], ['exit', 0, 'spare']]);
    const doomed = s.controller.hosts().find((h) => h.name === 'doomed')!;
    assert.equal(doomed.jobsLost, 2);
    assert.equal((await readFile(marks, 'utf8')).split('\n').filter((l) => l === 'start').length, 4, 'each started twice');
  }, { reconnectDelay: 60_000 }));
});
