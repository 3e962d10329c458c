import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Books, PAGE_STATES } from './book.ts';
import { PantasksError } from './errors.ts';
import { stageTasks } from './stage-tasks.ts';
import type { TaskContext } from './task.ts';

describe('stage tasks', () => {
  it('make load, run, revert and advance per stage, and the periodic programs', () => {
    const tasks = stageTasks({
      gpc1: 'sqlite:unused.db',
      stages: { stack: { command: ['ppStack', '{id}'], host: 'anyhost' }, addstar: { command: 'addstar {id}', revert: false } },
      programs: [{ name: 'ipptopsps.queue', command: ['ipptopsps', 'queue'], period: 30 }],
    }, { books: new Books(), onClose: () => {} });
    assert.deepEqual(tasks.map((t) => t.name), [
      'stack.load', 'stack.run', 'stack.revert', 'stack.advance', 'addstar.load', 'addstar.run', 'addstar.advance', 'ipptopsps.queue',
    ]);
    assert.equal(tasks[1]!.host, 'anyhost');
    assert.deepEqual([tasks[7]!.period, tasks[7]!.npending], [30, 1]);
  });

  it('refuse configurations that do not hold together', () => {
    const ctx = { books: new Books(), onClose: () => {} };
    for (const [config, why] of [
      [{ stages: {} }, /gpc1 must name/], [{ gpc1: 'sqlite:x', stages: { chips: { command: 'x' } } }, /unknown stage "chips"/],
      [{ gpc1: 'sqlite:x', stages: { chip: {} } }, /stage chip needs a command/], [{ gpc1: 'sqlite:x' }, /stages must map/],
    ] as const) {
      assert.throws(() => stageTasks(config as never, ctx), (e: unknown) => e instanceof PantasksError && e.code === 'pantasks_bad_config' && why.test(e.message));
    }
  });

  it('the run task gives the oldest INIT page a job, and waits while its book is stale', async () => {
    const books = new Books();
    const [, run] = stageTasks({ gpc1: 'sqlite:g.db', stages: { chip: { command: ['prog', '--db', '{gpc1}', '{id}', '{component}'] } } }, { books, onClose: () => {} });
    const book = books.book('chipPending');
    book.add('7/XY01', { stage: 'chip', id: 7, component: 'XY01' });
    book.add('7/XY02', { stage: 'chip', id: 7, component: 'XY02' });
    const ctx = {} as TaskContext;
    book.stale = true;
    assert.equal(await run!.exec!(ctx), null, 'a stale book waits for its load');
    book.stale = false;
    const job = await run!.exec!(ctx);
    assert.deepEqual(job?.command, ['prog', '--db', 'sqlite:g.db', '7', 'XY01']);
    assert.equal(job?.page, book.get('7/XY01'));
    book.setState(book.get('7/XY01')!, PAGE_STATES.run, { id: 1, host: 'local' });
    assert.equal((await run!.exec!(ctx))?.page?.key, '7/XY02');
  });
});
