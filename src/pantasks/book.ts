// Books and pages: a task that draws its work from a query keeps one page per row, with a
// state (INIT when new, RUN while its job runs, DONE or a failure state after), so that a row
// is never given two jobs. Pages are indexed by key and by state (each state keeps its pages
// in the order they came in), so finding the next INIT page, or counting a state, costs O(1)
// however many pages a book holds. Every change is remembered for the store to write
// (`book-store.ts`), which the scheduler does before it starts the jobs of a tick.
import { PantasksError } from './errors.ts';

/** A value on a page (the original stored every column of a row as a word of its page). */
export type PageWord = string | number | boolean | null;

/** A page's words, by name. */
export type PageWords = Readonly<Record<string, PageWord>>;

/** The states the scheduler itself sets; tasks may use others (upper-case words, e.g. SYS_ERR). */
export const PAGE_STATES = Object.freeze({
  init: 'INIT', run: 'RUN', done: 'DONE', fail: 'FAIL', crash: 'CRASH', timeout: 'TIMEOUT',
} as const);

/** States after which a page is finished with: a book refresh may drop it. */
export const FINISHED_STATES: ReadonlySet<string> = new Set(['DONE', 'FAIL', 'CRASH', 'TIMEOUT']);

const STATE_PATTERN = /^[A-Z][A-Z0-9_]{0,31}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what a key may not hold
const KEY_PATTERN = /^[^\s\u0000-\u001f]{1,200}$/;

/** One page of a book. Read it freely; change it only through its book. */
export interface Page {
  readonly book: string;
  readonly key: string;
  readonly state: string;
  readonly words: PageWords;
  /** The scheduler's job for this page while it is RUN (null otherwise). */
  readonly jobId: number | null;
  /** Where that job runs (`local`, a host name) and the back-end's handle for it (pid, Slurm job id). */
  readonly jobHost: string | null;
  readonly jobHandle: string | null;
  /** The book's change counter when the page last changed (see {@link Book.changeCount}). */
  readonly changed: number;
  /** Creation order, kept across restarts. */
  readonly ord: number;
}

/** The store's view of the changes to write. */
export interface PageSink {
  put(page: Page): void;
  remove(page: Page): void;
}

interface MutablePage {
  book: string;
  key: string;
  state: string;
  words: PageWords;
  jobId: number | null;
  jobHost: string | null;
  jobHandle: string | null;
  changed: number;
  ord: number;
}

/** Checks a page state name. */
export function checkPageState(state: string): string {
  if (typeof state !== 'string' || !STATE_PATTERN.test(state)) {
    throw new PantasksError('pantasks_bad_page', `page state ${JSON.stringify(state)} must be an upper-case word such as INIT, RUN, DONE, FAIL`);
  }
  return state;
}

/** One book: pages by key and by state. */
export class Book {
  readonly name: string;
  /**
   * True while the book may hold pages whose rows were finished meanwhile (after a restart
   * reset its RUN pages): a task that fills the book from a query clears it on its next
   * refresh, and a task that runs pages should wait until then.
   */
  stale = false;
  readonly #pages = new Map<string, MutablePage>();
  readonly #byState = new Map<string, Set<MutablePage>>();
  readonly #sink: PageSink;
  readonly #nextOrd: () => number;
  #changes = 0;

  /** Made by {@link Books}; not meant to be built on its own. */
  constructor(name: string, sink: PageSink, nextOrd: () => number) {
    this.name = name;
    this.#sink = sink;
    this.#nextOrd = nextOrd;
  }

  /** How many pages the book holds, in all states or in one. */
  count(state?: string): number {
    if (state === undefined) return this.#pages.size;
    return this.#byState.get(state)?.size ?? 0;
  }

  /** Counts by state. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [state, set] of this.#byState) if (set.size > 0) out[state] = set.size;
    return out;
  }

  /** A counter bumped by every change; a refresh compares it to tell old pages from new ones. */
  get changeCount(): number {
    return this.#changes;
  }

  get(key: string): Page | undefined {
    return this.#pages.get(key);
  }

  has(key: string): boolean {
    return this.#pages.has(key);
  }

  /** The oldest page in a state (O(1)). */
  first(state: string): Page | undefined {
    const set = this.#byState.get(state);
    if (!set || set.size === 0) return undefined;
    return set.values().next().value;
  }

  /** The pages in a state, oldest first. */
  *inState(state: string): IterableIterator<Page> {
    const set = this.#byState.get(state);
    if (set) yield* [...set];
  }

  /** Every page, in no particular order. */
  pages(): IterableIterator<Page> {
    return this.#pages.values();
  }

  /**
   * Adds a page in state INIT (or the one given); returns it, or undefined when the key is
   * there already (the original's `-uniq`: a row already in the book is never added twice).
   */
  add(key: string, words: PageWords = {}, state: string = PAGE_STATES.init): Page | undefined {
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
      throw new PantasksError('pantasks_bad_page', `book ${this.name}: page key ${JSON.stringify(key)} must be 1-200 characters without spaces or control characters`);
    }
    if (this.#pages.has(key)) return undefined;
    const page: MutablePage = {
      book: this.name, key, state: checkPageState(state), words: Object.freeze({ ...words }),
      jobId: null, jobHost: null, jobHandle: null, changed: ++this.#changes, ord: this.#nextOrd(),
    };
    this.#pages.set(key, page);
    this.#index(page);
    this.#sink.put(page);
    return page;
  }

  /** Sets a page's state (and drops its job unless it goes to RUN with one). */
  setState(page: Page, state: string, job?: { id: number; host: string | null; handle?: string | null }): void {
    const p = this.#own(page);
    checkPageState(state);
    if (p.state !== state) {
      this.#byState.get(p.state)!.delete(p);
      p.state = state;
      this.#index(p);
    }
    p.jobId = job ? job.id : null;
    p.jobHost = job ? job.host : null;
    p.jobHandle = job?.handle ?? null;
    p.changed = ++this.#changes;
    this.#sink.put(p);
  }

  /** Records the back-end's handle of a page's job once it is known (a pid, a Slurm job id). */
  setJobHandle(page: Page, handle: string | null): void {
    const p = this.#own(page);
    p.jobHandle = handle;
    this.#sink.put(p);
  }

  /** Sets one word of a page. */
  setWord(page: Page, name: string, value: PageWord): void {
    const p = this.#own(page);
    p.words = Object.freeze({ ...p.words, [name]: value });
    p.changed = ++this.#changes;
    this.#sink.put(p);
  }

  /** Removes a page. */
  delete(page: Page): void {
    const p = this.#own(page);
    this.#pages.delete(p.key);
    this.#byState.get(p.state)!.delete(p);
    this.#changes++;
    this.#sink.remove(p);
  }

  /** Removes every page in a state; returns how many. */
  deleteState(state: string): number {
    const set = this.#byState.get(state);
    if (!set) return 0;
    const all = [...set];
    for (const p of all) this.delete(p);
    return all.length;
  }

  /** Puts a page read back from the store (no change is recorded). */
  restore(page: Omit<Page, 'book' | 'changed'>): void {
    const p: MutablePage = { ...page, book: this.name, words: Object.freeze({ ...page.words }), changed: this.#changes };
    this.#pages.set(p.key, p);
    this.#index(p);
  }

  #index(p: MutablePage): void {
    let set = this.#byState.get(p.state);
    if (!set) this.#byState.set(p.state, (set = new Set()));
    set.add(p);
  }

  #own(page: Page): MutablePage {
    const p = this.#pages.get(page?.key);
    if (p === undefined || p !== page) {
      throw new PantasksError('pantasks_bad_page', `book ${this.name} has no page ${JSON.stringify(page?.key)} (was it deleted?)`);
    }
    return p;
  }
}

/** Every book of a scheduler, with the changes not yet written. */
export class Books implements PageSink {
  readonly #books = new Map<string, Book>();
  /** Pages to write (put) or delete (remove), by book and key, last change wins. */
  readonly #dirty = new Map<string, { page: Page; removed: boolean }>();
  #ord = 0;

  /** The book of that name, created empty when new (the original's `book init` on first use). */
  book(name: string): Book {
    let b = this.#books.get(name);
    if (!b) {
      if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(name)) {
        throw new PantasksError('pantasks_bad_page', `book name ${JSON.stringify(name)} must start with a letter and hold letters, digits, . _ - (at most 64)`);
      }
      b = new Book(name, this, () => ++this.#ord);
      this.#books.set(name, b);
    }
    return b;
  }

  /** A book, if it exists. */
  find(name: string): Book | undefined {
    return this.#books.get(name);
  }

  /** A book that must exist. */
  existing(name: string): Book {
    const b = this.#books.get(name);
    if (!b) throw new PantasksError('pantasks_unknown_book', `no book named ${name}; the books are ${[...this.#books.keys()].join(', ') || '(none)'}`);
    return b;
  }

  /** The books, by name. */
  all(): Book[] {
    return [...this.#books.values()];
  }

  /** Empties a book (every page removed). */
  clear(name: string): void {
    const b = this.#books.get(name);
    if (!b) return;
    for (const p of [...b.pages()]) b.delete(p);
  }

  put(page: Page): void {
    this.#dirty.set(`${page.book}\u0000${page.key}`, { page, removed: false });
  }

  remove(page: Page): void {
    this.#dirty.set(`${page.book}\u0000${page.key}`, { page, removed: true });
  }

  /** Takes the changes to write, leaving none behind. */
  takeChanges(): { put: Page[]; removed: Page[] } {
    const put: Page[] = [];
    const removed: Page[] = [];
    for (const { page, removed: r } of this.#dirty.values()) (r ? removed : put).push(page);
    this.#dirty.clear();
    return { put, removed };
  }

  /** Changes not written yet. */
  get pendingChanges(): number {
    return this.#dirty.size;
  }

  /** Continues creation order after pages read back from the store. */
  restoreOrd(ord: number): void {
    this.#ord = Math.max(this.#ord, ord);
  }
}
