// Validation of a staged batch, set-based in SQL: required columns, declared ranges, string
// widths, primary keys unique within the batch, keys already in the archive (insert policy),
// and references to rows merged already or arriving in the same batch.
import { DbError, type Queryable, type Row, type SqlValue } from '../db/index.ts';
import { BATCH_COLUMN, type Archive } from './archive.ts';
import { defaultPartition, eachHoldingPartition, keyTableName, unionOf } from './key-probe.ts';
import { ProblemList } from './problems.ts';
import type { ColumnValues } from '../table/index.ts';
import { findTable, type ArchiveColumn, type ArchiveTable, type BatchSchema } from './schema.ts';
import { defaultLiteral, isNumeric, quoteText } from './sql.ts';
import { keyConstraintName, stagingName } from './stage.ts';

/** A check of one column's values, written against the value as `v`. */
interface ColumnRule {
  readonly column: ArchiveColumn;
  readonly rule: string;
  readonly detail: string;
  readonly condition: string;
}

function columnRules(table: ArchiveTable, archive: Archive): ColumnRule[] {
  const rules: ColumnRule[] = [];
  const d = archive.dialect;
  for (const c of table.columns) {
    if (c.required || table.primaryKey.includes(c.name)) {
      rules.push({ column: c, rule: 'required', detail: 'the column has no default; a value is required', condition: 'v IS NULL' });
    }
    const dflt = c.defaultText === undefined ? undefined : defaultLiteral(c, d);
    const notDefault = dflt === undefined ? '' : ` AND v <> ${dflt}`;
    if (isNumeric(c.datatype)) {
      const min = c.min ?? (c.datatype === 'unsignedByte' ? { value: 0, inclusive: true } : undefined);
      const max = c.max ?? (c.datatype === 'unsignedByte' ? { value: 255, inclusive: true } : undefined);
      if (min || max) {
        const outside: string[] = [];
        if (min) outside.push(`v ${min.inclusive ? '<' : '<='} ${min.value}`);
        if (max) outside.push(`v ${max.inclusive ? '>' : '>='} ${max.value}`);
        // NaN on PostgreSQL sorts above every number: caught by the MAX test, as it should be
        const range = `${min ? `${min.inclusive ? '[' : '('}${min.value}` : '(-inf'}, ${max ? `${max.value}${max.inclusive ? ']' : ')'}` : 'inf)'}`;
        rules.push({
          column: c, rule: 'range', detail: `must lie in ${range}${dflt !== undefined ? ` or be the default ${c.defaultText}` : ''}`,
          condition: `v IS NOT NULL${notDefault} AND (${outside.join(' OR ')})`,
        });
      }
    }
    if (c.datatype === 'char' && c.width !== undefined) {
      rules.push({ column: c, rule: 'width', detail: `at most ${c.width} characters`, condition: `length(v) > ${c.width}` });
    }
  }
  return rules;
}

/** The comment a staging table gets when its load found every value within its column's rules. */
export const RULES_HELD = 'ipp: every value kept its column rules at load';
/**
 * Added to a staging table's comment (after '; ') when its load saw the primary key (one
 * integer column) rise from row to row: the keys are unique, so validation skips its check.
 */
export const KEYS_ROSE = 'ipp: the key rose from row to row at load';

/** Added to a staging table's comment by loads that write no nulls (binary COPY): the merge then takes values as they are. */
export const NO_NULLS = 'ipp: no value is null';

/**
 * Added to a staging table's comment when the stage proved that every value of a reference
 * column is a key of a row of the same batch, staged or archived (stage.ts proveReferences):
 * validation skips that reference's look-up.
 */
export function referenceHeld(column: string, table: string): string {
  return `ipp: every ${column} is a key of ${table} in the batch, staged or archived`;
}

/** The marks a load left in a staging table's comment (see RULES_HELD, KEYS_ROSE, NO_NULLS). */
export async function stagingMarks(q: Queryable, stg: string): Promise<Set<string>> {
  if (q.dialect.engine !== 'postgres') return new Set();
  const c = (await q.get<{ c: string | null }>("SELECT obj_description(to_regclass(?), 'pg_class') AS c", [stg]))?.c;
  return new Set(c ? c.split(MARK_SEPARATOR) : []);
}

/** The statement that leaves `marks` in a staging table's comment (PostgreSQL), read back by {@link stagingMarks}. */
export function markStaging(stg: string, marks: Iterable<string>): string {
  return `COMMENT ON TABLE ${stg} IS ${quoteText([...marks].join(MARK_SEPARATOR))}`;
}

const MARK_SEPARATOR = '; ';

/**
 * Follows the values of an integer key column through a load, chunk by chunk: `rose` stays
 * true while each value is above the one before it (so no two are equal).
 */
export class KeyRise {
  rose = true;
  #last: number | bigint | undefined;

  /** Takes the next `n` values of the column. */
  add(values: ColumnValues, n: number): void {
    let last = this.#last;
    for (let r = 0; this.rose && r < n; r++) {
      const v = values[r] as number | bigint;
      if (last !== undefined && !(v > last)) this.rose = false;
      last = v;
    }
    this.#last = last;
  }
}

/** True when valuesKeepRules can find a value of the column breaking a rule (a range, implied or declared, or a width). */
export function hasValueRules(column: ArchiveColumn): boolean {
  if (column.datatype === 'char') return column.width !== undefined;
  return isNumeric(column.datatype) && (column.min !== undefined || column.max !== undefined || column.datatype === 'unsignedByte');
}

/**
 * True when every value of a column of a batch keeps the column's rules as columnRules
 * writes them in SQL (range, with the default exempt and NaN above every bound; width). A
 * value is taken as the column stores it (a REAL rounded to 32 bits). Binary loads write no
 * nulls, so the required rule holds. False sends the table through the SQL checks, which
 * list the offending rows.
 */
export function valuesKeepRules(column: ArchiveColumn, values: ColumnValues, n: number): boolean {
  if (column.datatype === 'char') {
    if (column.width === undefined) return true;
    const strings = values as string[];
    for (let r = 0; r < n; r++) {
      const v = strings[r].trimEnd();
      if (v.length > column.width && [...v].length > column.width) return false;
    }
    return true;
  }
  if (!isNumeric(column.datatype)) return true;
  const min = column.min ?? (column.datatype === 'unsignedByte' ? { value: 0, inclusive: true } : undefined);
  const max = column.max ?? (column.datatype === 'unsignedByte' ? { value: 255, inclusive: true } : undefined);
  if (!min && !max) return true;
  const dflt = column.defaultText === undefined ? undefined : Number(column.defaultText);
  const round = column.datatype === 'float';
  const lo = min?.value ?? -Infinity;
  const hi = max?.value ?? Infinity;
  const loIn = min?.inclusive ?? true;
  const hiIn = max?.inclusive ?? true;
  const keeps = (v: number) => {
    if (v === dflt) return true;
    if (Number.isNaN(v)) return !max;
    return !((loIn ? v < lo : v <= lo) || (hiIn ? v > hi : v >= hi));
  };
  if (values instanceof Float64Array) {
    // (the raw FITS path's values) a value strictly inside the bounds needs no other test
    for (let r = 0; r < n; r++) {
      const v = round ? Math.fround(values[r]) : values[r];
      if ((v > lo && v < hi) || keeps(v)) continue;
      return false;
    }
    return true;
  }
  for (let r = 0; r < n; r++) {
    const raw = values[r] as number | bigint;
    // 64-bit integers beyond 2^53 only meet bounds far below them, so a double compares them rightly
    let v = typeof raw === 'bigint' ? Number(raw) : raw;
    if (round) v = Math.fround(v);
    if (!keeps(v)) return false;
  }
  return true;
}

/** The row-number expression of a staging table: file order (one COPY or one run of INSERTs). */
function rowNumber(q: Queryable): string {
  return q.dialect.engine === 'postgres' ? 'row_number() OVER (ORDER BY ctid)' : 'rowid';
}

function text(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

/**
 * Validates a staged batch of a schema; returns what is wrong (empty when the batch is
 * merge-worthy), the first `limit` offending rows listed.
 */
export async function validateBatch(archive: Archive, batch: string, schema: BatchSchema, limit = 20): Promise<ProblemList> {
  if (archive.db.dialect.engine === 'sqlite') return validateOn(archive.db, archive, batch, schema, limit);
  return archive.db.transaction(async (tx) => {
    // every check sees one snapshot; JIT compiling these one-off scans cost more than it saved
    // (0.1-0.5 s a query, chosen by estimated cost alone)
    await tx.exec('SET LOCAL jit = off');
    // the primary key of a staging table that becomes a partition is built here
    await tx.exec("SET LOCAL maintenance_work_mem = '256MB'");
    return validateOn(tx, archive, batch, schema, limit);
  });
}

// PostgreSQL probes the archive by index, one staged row at a time (a LATERAL subquery with
// LIMIT cannot become a hash join): left to itself the planner hashed the staging rows and
// scanned the whole archive table for every batch, a cost growing with the archive. `rows`
// is a subquery (aliased x); `hit` is non-null when an archive row matched, `owner` its batch.
function probeArchive(q: Queryable, rows: string, target: string, match: string, inner: boolean): { from: string; hit: string; owner: string } {
  const join = inner ? 'JOIN' : 'LEFT JOIN';
  if (q.dialect.engine === 'sqlite') return { from: `${rows} x ${join} ${target} a ON ${match}`, hit: 'a.rowid', owner: `a.${BATCH_COLUMN}` };
  return {
    from: `(SELECT * FROM ${rows} x0 OFFSET 0) x ${join} LATERAL (SELECT a.${BATCH_COLUMN} AS owner, 1 AS hit FROM ${target} a WHERE ${match} LIMIT 1) p ON true`,
    hit: 'p.hit', owner: 'p.owner',
  };
}

async function validateOn(q: Queryable, archive: Archive, batch: string, schema: BatchSchema, limit: number): Promise<ProblemList> {
  const problems = new ProblemList(limit);
  const inBatch = new Set(schema.tables.map((t) => t.name.toLowerCase()));
  if (q.dialect.engine === 'sqlite') {
    // SQLite answers NOT EXISTS on an unindexed staging table by scanning it for every row
    for (const table of schema.tables) {
      for (const ref of table.references) {
        if (!inBatch.has(ref.table.toLowerCase())) continue;
        const target = stagingName(batch, ref.table);
        await q.exec(`CREATE INDEX IF NOT EXISTS ${target}_${ref.refColumn.toLowerCase()}_idx ON ${target} (${ref.refColumn})`);
      }
    }
  }
  for (const table of schema.tables) {
    const stg = stagingName(batch, table.name);
    const rn = rowNumber(q);
    // one pass for every column rule, details only for the rules something broke
    const rules = columnRules(table, archive);
    const byBatch = archive.partitioned.has(table.name.toLowerCase());
    // values missing from columns that have a default (an attached partition is taken as staged)
    const defaulted = byBatch ? table.columns.filter((c) => c.defaultText !== undefined && !table.primaryKey.includes(c.name)) : [];
    const missing = defaulted.map((c) => `${c.name} IS NULL`).join(' OR ');
    let fill = false;
    const marks = await stagingMarks(q, stg);
    const held = marks.has(RULES_HELD);
    if (!held && (rules.length > 0 || defaulted.length > 0)) {
      const sums = rules.map((r, i) => `SUM(CASE WHEN ${r.condition.replaceAll(/\bv\b/g, r.column.name)} THEN 1 ELSE 0 END) AS n${i}`);
      if (defaulted.length > 0) sums.push(`SUM(CASE WHEN ${missing} THEN 1 ELSE 0 END) AS nmissing`);
      const counts = (await q.get<Row>(`SELECT ${sums.join(', ')} FROM ${stg}`)) ?? {};
      fill = Number(counts.nmissing ?? 0) > 0;
      for (let i = 0; i < rules.length; i++) {
        const n = Number(counts[`n${i}`] ?? 0);
        if (n === 0) continue;
        const r = rules[i];
        const rows = await q.all<{ rn: number; v: unknown }>(
          `SELECT rn, v FROM (SELECT ${rn} AS rn, ${r.column.name} AS v FROM ${stg}) x WHERE ${r.condition} ORDER BY rn LIMIT ?`, [problems.room]);
        for (const row of rows) problems.add({ table: table.name, column: r.column.name, row: Number(row.rn), value: text(row.v), rule: r.rule, detail: r.detail });
        problems.addUncounted(n - rows.length);
      }
    }
    if (table.primaryKey.length > 0) {
      // the staging table's primary key, built once here, serves as the partition's after the
      // merge; a build that fails on a duplicate (or a missing key) leaves the listing to checkUnique
      if (byBatch ? !(await stagingKey(q, table, stg)) : !marks.has(KEYS_ROSE)) await checkUnique(q, table, stg, problems);
    }
    const archived = findTable(archive.schema.tables, table.name)!;
    // (an empty archive table holds no key: PostgreSQL would still probe for each row)
    if (table.merge === 'insert' && table.primaryKey.length > 0 && (await q.get(`SELECT 1 AS x FROM ${archived.name} LIMIT 1`)) !== undefined) {
      await checkNotArchived(q, batch, archived, table, stg, problems, byBatch);
    }
    for (const ref of table.references) {
      if (marks.has(referenceHeld(ref.column, ref.table))) continue;
      const col = table.columns.find((c) => c.name === ref.column)!;
      const target = findTable(archive.schema.tables, ref.table)!;
      const skip = col.defaultText !== undefined ? ` AND y.v <> ${defaultLiteral(col, q.dialect)}` : '';
      // values the batch itself brings are ruled out first; only the rest are looked up in the archive
      const alsoStaged = inBatch.has(target.name.toLowerCase())
        ? ` AND NOT EXISTS (SELECT 1 FROM ${stagingName(batch, target.name)} b WHERE b.${ref.refColumn} = y.v)` : '';
      const candidates = (cols: string) => `(SELECT * FROM (SELECT ${cols} FROM ${stg}) y WHERE y.v IS NOT NULL${skip}${alsoStaged})`;
      const source = await referenceSource(q, archive, target, ref.refColumn);
      const missing = (cols: string) => {
        const p = probeArchive(q, candidates(cols), source, `a.${ref.refColumn} = x.v`, false);
        return `${p.from} WHERE ${p.hit} IS NULL`;
      };
      // staging tables of a partitioned archive have the archive's indexes: walking the two
      // sorted indexes side by side cost a third of what PostgreSQL's choice, hashing the
      // batch's referenced rows, did (300,000 P2 detections' objIDs: 0.15 -> 0.05 s of CPU;
      // probing them by index 0.08 s); the archive probe stays a nested loop (LATERAL)
      const indexed = byBatch && archive.partitioned.has(target.name.toLowerCase()) && alsoStaged !== '';
      if (indexed) await q.exec('SET LOCAL enable_hashjoin = off; SET LOCAL enable_nestloop = off');
      const count = await q.get<{ n: number }>(`SELECT count(*) AS n FROM ${missing(`${ref.column} AS v`)}`);
      if (indexed) await q.exec('RESET enable_hashjoin; RESET enable_nestloop');
      const n = Number(count?.n ?? 0);
      if (n === 0) continue;
      const rows = await q.all<{ rn: number; v: unknown }>(
        `SELECT x.rn AS rn, x.v AS v FROM ${missing(`${rn} AS rn, ${ref.column} AS v`)} ORDER BY x.rn LIMIT ?`, [problems.room]);
      for (const row of rows) {
        problems.add({
          table: table.name, column: ref.column, row: Number(row.rn), value: text(row.v), rule: 'reference',
          detail: `must exist in ${target.name}.${ref.refColumn}, merged already or in this batch`,
        });
      }
      problems.addUncounted(n - rows.length);
    }
    // after the checks, which list rows in staging order
    if (fill && problems.total === 0) {
      await q.run(`UPDATE ${stg} SET ${defaulted.map((c) => `${c.name} = COALESCE(${c.name}, ${defaultLiteral(c, archive.dialect)})`).join(', ')} WHERE ${missing}`);
    }
  }
  return problems;
}

// Where a reference's values are looked up: the archive table, or for the key of a table with
// a key table (archive.keyed), that table and the rows written by hand (its DEFAULT
// partition), one probe each instead of one per partition.
async function referenceSource(q: Queryable, archive: Archive, target: ArchiveTable, column: string): Promise<string> {
  if (!archive.keyed.has(target.name.toLowerCase()) || target.primaryKey.length !== 1 || target.primaryKey[0] !== column) return target.name;
  const dflt = await defaultPartition(q, target.name);
  const byHand = dflt !== undefined && (await q.get(`SELECT 1 AS x FROM ${dflt} LIMIT 1`)) !== undefined;
  return unionOf([keyTableName(target.name), ...(byHand ? [dflt] : [])], [column, `NULL::text AS ${BATCH_COLUMN}`]);
}

// Builds the staging table's primary key (the archive's: the key and the batch column); true
// when it is there, false when the rows break it (nothing changed then).
async function stagingKey(q: Queryable, table: ArchiveTable, stg: string): Promise<boolean> {
  const there = await q.get<{ n: number }>(`SELECT count(*) AS n FROM pg_index WHERE indrelid = to_regclass(?) AND indisprimary`, [stg]);
  if (Number(there?.n ?? 0) > 0) return true;
  await q.exec('SAVEPOINT ipp_stg_key');
  try {
    await q.exec(`ALTER TABLE ${stg} ADD CONSTRAINT ${keyConstraintName(stg)} PRIMARY KEY (${[...table.primaryKey, BATCH_COLUMN].join(', ')})`);
    await q.exec('RELEASE SAVEPOINT ipp_stg_key');
    return true;
  } catch (error) {
    if (!(error instanceof DbError && error.code === 'db_constraint')) throw error;
    await q.exec('ROLLBACK TO SAVEPOINT ipp_stg_key');
    return false;
  }
}

async function checkUnique(q: Queryable, table: ArchiveTable, stg: string, problems: ProblemList): Promise<void> {
  const key = table.primaryKey.join(', ');
  const dups = await q.all<Row>(
    `SELECT ${table.primaryKey.map((k, i) => `${k} AS k${i}`).join(', ')}, count(*) AS n FROM ${stg} GROUP BY ${key} HAVING count(*) > 1 LIMIT ?`,
    [Math.max(1, problems.room)]);
  if (dups.length === 0) return;
  const total = await q.get<{ n: number }>(`SELECT count(*) AS n FROM (SELECT 1 FROM ${stg} GROUP BY ${key} HAVING count(*) > 1) d`);
  for (const d of dups) {
    const value = table.primaryKey.map((_, i) => text(d[`k${i}`])).join(',');
    problems.add({ table: table.name, column: table.primaryKey.join(','), row: 0, value, rule: 'unique', detail: `the primary key appears ${Number(d.n)} times in the batch` });
  }
  problems.addUncounted(Number(total?.n ?? 0) - dups.length);
}

// Insert policy: a key already merged from another batch is an error (a reload of the same
// batch replaces its own rows, so those do not count).
// (partitioned by batch: counted in the partitions holding keys in the batch's key range alone,
// one statement each, key-probe.ts; the few rows found are listed from those partitions)
async function checkNotArchived(
  q: Queryable, batch: string, archived: ArchiveTable, table: ArchiveTable, stg: string, problems: ProblemList, byBatch: boolean,
): Promise<void> {
  const on = table.primaryKey.map((k) => `a.${k} = x.${k}`).join(' AND ');
  const other = `(a.${BATCH_COLUMN} IS NULL OR a.${BATCH_COLUMN} <> ${quoteText(batch)})`;
  let source = archived.name;
  const found = (rows: string) => probeArchive(q, rows, source, `${on} AND ${other}`, true);
  let n: number;
  if (byBatch) {
    const parts: string[] = [];
    const counts = await eachHoldingPartition(q, archived.name, stg, table.primaryKey, async (p, inRange) => {
      const c = Number((await q.get<{ n: number }>(`SELECT count(*) AS n FROM ${stg} x JOIN ${p} a ON ${on} AND ${other} AND ${inRange}`))?.n ?? 0);
      if (c > 0) parts.push(p);
      return c;
    });
    n = counts.reduce((a, b) => a + b, 0);
    if (n > 0) source = unionOf(parts, [...table.primaryKey, BATCH_COLUMN]);
  } else {
    n = Number((await q.get<{ n: number }>(`SELECT count(*) AS n FROM ${found(`(SELECT ${table.primaryKey.join(', ')} FROM ${stg})`).from}`))?.n ?? 0);
  }
  if (n === 0) return;
  const rn = rowNumber(q);
  const cols = table.primaryKey.map((k, i) => `x.${k} AS k${i}`).join(', ');
  const listed = found(`(SELECT ${rn} AS rn, * FROM ${stg})`);
  const rows = await q.all<Row>(
    `SELECT x.rn AS rn, ${cols}, ${listed.owner} AS owner FROM ${listed.from} ORDER BY x.rn LIMIT ?`,
    [problems.room] as SqlValue[]);
  for (const r of rows) {
    problems.add({
      table: table.name, column: table.primaryKey.join(','), row: Number(r.rn), value: table.primaryKey.map((_, i) => text(r[`k${i}`])).join(','),
      rule: 'exists', detail: `the key is in the archive already (from batch ${text(r.owner) || 'unknown'}); this table's rows are inserted, never replaced`,
    });
  }
  problems.addUncounted(n - rows.length);
}
