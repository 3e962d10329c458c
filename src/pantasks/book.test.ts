import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testEngines } from '../db/index.ts';
import { Books, PAGE_STATES } from './book.ts';
import { BookStore } from './book-store.ts';
import { PantasksError } from './errors.ts';
import { fillCommand, refreshBook } from './stage-tasks.ts';

describe('books and pages', () => {
  it('find the oldest page of a state and count states without scanning', () => {
    const books = new Books();
    const b = books.book('chipPending');
    for (let i = 0; i < 5; i++) b.add(`1/XY0${i}`, { id: 1, component: `XY0${i}` });
    assert.equal(b.add('1/XY00', {}), undefined, 'a key is added once');
    assert.equal(b.first(PAGE_STATES.init)?.key, '1/XY00');
    b.setState(b.get('1/XY00')!, PAGE_STATES.run, { id: 7, host: 'local' });
    assert.equal(b.first(PAGE_STATES.init)?.key, '1/XY01');
    assert.deepEqual(b.counts(), { INIT: 4, RUN: 1 });
    assert.equal(b.get('1/XY00')!.jobId, 7);
    b.setState(b.get('1/XY00')!, PAGE_STATES.done);
    assert.equal(b.get('1/XY00')!.jobId, null, 'leaving RUN drops the job');
    b.delete(b.get('1/XY01')!);
    assert.deepEqual(b.counts(), { INIT: 3, DONE: 1 });
    assert.deepEqual([...b.inState('INIT')].map((p) => p.key), ['1/XY02', '1/XY03', '1/XY04']);
    assert.throws(() => b.setState(b.get('1/XY02')!, 'not a state'), PantasksError);
    assert.throws(() => b.add('has space'), /without spaces/);
    assert.throws(() => books.book('9bad'), /start with a letter/);
    assert.throws(() => b.setState({ ...b.get('1/XY02')! }, 'DONE'), /has no page/);
  });

  it('refresh adds new rows, drops finished pages and rows no longer pending, keeps what changed meanwhile', () => {
    const b = new Books().book('camPending');
    for (const k of ['1/-', '2/-', '3/-', '4/-']) b.add(k, {});
    b.setState(b.get('1/-')!, PAGE_STATES.done);
    b.setState(b.get('2/-')!, PAGE_STATES.run, { id: 1, host: 'local' });
    const snapshot = b.changeCount;
    // A job ends after the pending rows were read: its page must stay so the row is not added back.
    b.setState(b.get('2/-')!, PAGE_STATES.done);
    const rows = ['2/-', '4/-', '5/-'].map((key) => ({ key, words: {} }));
    const r = refreshBook(b, rows, snapshot, true);
    assert.deepEqual(r, { added: 1, dropped: 2 });
    assert.deepEqual([...b.pages()].map((p) => `${p.key}:${p.state}`).sort(), ['2/-:DONE', '4/-:INIT', '5/-:INIT']);
    // An incomplete read (limit reached) drops no INIT page.
    const r2 = refreshBook(b, [], b.changeCount, false);
    assert.deepEqual(r2, { added: 0, dropped: 1 });
    assert.deepEqual([...b.pages()].map((p) => p.key).sort(), ['4/-', '5/-']);
  });

  it('fills command templates from page words', () => {
    const words = { stage: 'chip', id: 12, component: 'XY01', label: 'night', data_group: null };
    assert.deepEqual(fillCommand(['prog', '--id', '{id}', '{component}', '--db={gpc1}'], words, 'sqlite:g.db'), ['prog', '--id', '12', 'XY01', '--db=sqlite:g.db']);
    assert.deepEqual(fillCommand(['prog', '{id}', '{component}'], { ...words, component: null }, 'x'), ['prog', '12'], 'no component: the argument goes');
    assert.equal(fillCommand('prog {label} {component} {unknown}', { ...words, label: "it's" }, 'x'), "prog 'it'\\''s' XY01 {unknown}");
  });
});

for (const engine of testEngines()) {
  describe(`book store on ${engine.name}`, { skip: engine.skip }, () => {
    it('writes changes in one transaction and reads the books back in creation order', () => engine.withUrl(async (url) => {
      const store = await BookStore.open(url);
      const books = new Books();
      const b = books.book('warpPending');
      for (let i = 0; i < 5000; i++) b.add(`${i}/sky`, { id: i, component: 'sky', note: i % 2 === 0 ? null : "o'dd" });
      assert.equal(await store.flush(books, 41), 5000);
      b.setState(b.get('3/sky')!, PAGE_STATES.run, { id: 41, host: 'h1', handle: '999' });
      b.delete(b.get('4/sky')!);
      b.setWord(b.get('5/sky')!, 'tries', 2);
      assert.equal(await store.flush(books, 41), 3);
      assert.equal(await store.flush(books, 41), 0, 'nothing left to write');
      const instance = store.instance;
      await store.close();

      const again = await BookStore.open(url);
      try {
        assert.equal(again.instance, instance, 'the instance id is kept');
        assert.equal(await again.lastJobId(), 41);
        const pages = await again.load();
        assert.equal(pages.length, 4999);
        assert.deepEqual(pages.slice(0, 4).map((p) => p.key), ['0/sky', '1/sky', '2/sky', '3/sky']);
        const p3 = pages.find((p) => p.key === '3/sky')!;
        assert.deepEqual([p3.state, p3.jobId, p3.jobHost, p3.jobHandle], ['RUN', 41, 'h1', '999']);
        assert.deepEqual(pages.find((p) => p.key === '5/sky')!.words, { id: 5, component: 'sky', note: "o'dd", tries: 2 });
        assert.equal(pages.some((p) => p.key === '4/sky'), false);
      } finally {
        await again.close();
      }
    }));
  });
}
