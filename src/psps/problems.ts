// What validation found wrong with a batch: offending rows (table, column, row, value, rule),
// kept to the first few, with a count of everything found.

/** One offending value or row. */
export interface Problem {
  readonly table: string;
  /** The column (or the key's columns, joined by commas); empty for a whole-table problem. */
  readonly column: string;
  /** 1-based data row of the table's CSV (0 when the problem is not one row's). */
  readonly row: number;
  readonly value: string;
  /** Which rule: type, required, range, width, unique, reference, exists, columns, file. */
  readonly rule: string;
  /** What the rule wants, for a person. */
  readonly detail: string;
}

/** Problems gathered up to a limit, with the total found. */
export class ProblemList {
  readonly limit: number;
  readonly items: Problem[] = [];
  total = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Room left before the limit. */
  get room(): number {
    return Math.max(0, this.limit - this.items.length);
  }

  /** Records one problem (kept when under the limit; always counted). */
  add(p: Problem): void {
    this.total++;
    if (this.items.length < this.limit) this.items.push(p);
  }

  /** Counts problems found in bulk, of which `listed` were added one by one. */
  addUncounted(n: number): void {
    this.total += n;
  }

  /** The problems as reasons for the status service: one line each, then what was left out. */
  reasons(): string[] {
    const out = this.items.map(formatProblem);
    if (this.total > this.items.length) out.push(`... and ${this.total - this.items.length} more problems (the first ${this.items.length} are listed)`);
    return out;
  }
}

/** One problem as a line: `Detection.ra row 17: "400" breaks range (must lie in [0, 360])`. */
export function formatProblem(p: Problem): string {
  const where = `${p.table}${p.column ? `.${p.column}` : ''}${p.row > 0 ? ` row ${p.row}` : ''}`;
  const value = p.value.length > 60 ? `${p.value.slice(0, 57)}...` : p.value;
  return `${where}: ${p.row > 0 || value ? `"${value}" ` : ''}breaks ${p.rule} (${p.detail})`;
}
