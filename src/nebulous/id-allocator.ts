import type { Database } from '../db/index.ts';

/**
 * Hands out storage object and instance ids from blocks reserved in the database (one
 * statement per block), so that a new instance's file name is known before any row is
 * written and many servers sharing one database never hand out the same id. Ids of a block
 * left unused when a server stops are skipped, never reused.
 */
export class IdAllocator {
  readonly #db: Database;
  readonly #blockSize: number;
  readonly #blocks = new Map<string, { next: number; end: number }>();
  readonly #pending = new Map<string, Promise<void>>();

  constructor(db: Database, blockSize = 1000) {
    this.#db = db;
    this.#blockSize = blockSize;
  }

  /** The next id of a sequence (`object` or `instance`). */
  async next(name: 'object' | 'instance'): Promise<number> {
    for (;;) {
      const block = this.#blocks.get(name);
      if (block && block.next < block.end) return block.next++;
      let pending = this.#pending.get(name);
      if (!pending) {
        pending = this.#reserve(name).finally(() => this.#pending.delete(name));
        this.#pending.set(name, pending);
      }
      await pending;
    }
  }

  async #reserve(name: string): Promise<void> {
    const size = this.#blockSize;
    const row = await this.#db.transaction((tx) => tx.get<{ next_id: number }>(
      'UPDATE neb_id_block SET next_id = next_id + ? WHERE name = ? RETURNING next_id', [size, name]));
    const end = Number(row!.next_id);
    this.#blocks.set(name, { next: end - size, end });
  }
}
