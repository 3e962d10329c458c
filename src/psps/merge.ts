// Merging a merge-worthy batch into the archive: one transaction per batch that moves every
// staged table into its archive table by the table's policy, records the batch (and the
// generation of it that was merged) in archive_merge, and drops the staging tables. A batch
// already recorded at this generation is not merged again, so a merge survives any crash.
import type { Queryable } from '../db/index.ts';
import { BATCH_COLUMN, type Archive } from './archive.ts';
import { partitionOfBatch } from './compact.ts';
import { PspsError } from './errors.ts';
import { eachHoldingPartition, keyTableName } from './key-probe.ts';
import { findTable, type ArchiveTable, type BatchSchema } from './schema.ts';
import { defaultLiteral, quoteText } from './sql.ts';
import { dropStaging, stagingName } from './stage.ts';
import { NO_NULLS, stagingMarks } from './validate.ts';

/** What a merge did. */
export interface MergeResult {
  /** False when the archive had this generation of the batch already (nothing done). */
  readonly merged: boolean;
  /** Rows written per table (inserted or replaced). */
  readonly rows: Readonly<Record<string, number>>;
}

/** The generation of a batch the archive holds, if any. */
export async function mergedGeneration(q: Queryable, batch: string): Promise<number | undefined> {
  const row = await q.get<{ generation: number }>('SELECT generation FROM archive_merge WHERE batch = ?', [batch]);
  return row === undefined ? undefined : Number(row.generation);
}

/** Merges a staged, validated batch (see the file comment). */
export async function mergeBatch(archive: Archive, batch: string, generation: number, schema: BatchSchema): Promise<MergeResult> {
  return archive.db.transaction(async (tx) => {
    // one merge at a time into an archive (ODMs on several hosts included): the keep policy's
    // anti-join relies on no other merge adding the same keys meanwhile
    if (tx.dialect.engine === 'postgres') {
      await tx.get("SELECT pg_advisory_xact_lock(hashtext('ipp_psps_merge'))");
      // JIT compiling the merge's statements cost more than it saved (picked by estimated cost alone)
      await tx.exec('SET LOCAL jit = off');
    }
    const before = await mergedGeneration(tx, batch);
    if (before === generation) return { merged: false, rows: {} };
    if (tx.dialect.engine === 'postgres') await tx.exec("SET LOCAL maintenance_work_mem = '256MB'");
    const rows: Record<string, number> = {};
    for (const table of schema.tables) {
      const target = findTable(archive.schema.tables, table.name)!;
      rows[table.name] = archive.partitioned.has(target.name.toLowerCase())
        ? await attachTable(tx, batch, table, target, archive.keyed.has(target.name.toLowerCase()))
        : await mergeTable(tx, batch, table, target, before !== undefined);
    }
    await tx.run(`INSERT INTO archive_merge (batch, generation, batch_type, merged_at, rows_json) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (batch) DO UPDATE SET generation = excluded.generation, batch_type = excluded.batch_type,
      merged_at = excluded.merged_at, rows_json = excluded.rows_json`,
    [batch, generation, schema.type, new Date().toISOString(), JSON.stringify(rows)]);
    await dropStaging(tx, batch, schema.tables);
    return { merged: true, rows };
  });
}

async function mergeTable(tx: Queryable, batch: string, table: ArchiveTable, target: ArchiveTable, reload: boolean): Promise<number> {
  const stg = stagingName(batch, table.name);
  const staged = new Set(table.columns.map((c) => c.name.toLowerCase()));
  const cols = target.columns.map((c) => c.name);
  // a load that wrote no nulls needs no default put in their place (300,000 P2 detections: ~0.08 s of CPU)
  const nulls = !(await stagingMarks(tx, stg)).has(NO_NULLS);
  const select = target.columns.map((c) => {
    const dflt = defaultLiteral(c, tx.dialect);
    if (!staged.has(c.name.toLowerCase())) return dflt;
    return dflt === 'NULL' || !nulls ? c.name : `COALESCE(${c.name}, ${dflt})`;
  });
  const insert = `INSERT INTO ${target.name} (${[...cols, BATCH_COLUMN].join(', ')}) SELECT ${[...select, quoteText(batch)].join(', ')} FROM ${stg} WHERE true`;
  const key = target.primaryKey.join(', ');
  switch (table.merge) {
    case 'insert':
      // a reload of a merged batch replaces the rows it brought before
      if (reload) await tx.run(`DELETE FROM ${target.name} WHERE ${BATCH_COLUMN} = ?`, [batch]);
      return (await tx.run(insert)).changes;
    case 'keep': {
      // an anti-join rather than ON CONFLICT DO NOTHING: no speculative insertion per row
      // (300,000 P2 stubs on PostgreSQL: 2.03 -> 1.58 s new, 0.55 -> 0.27 s all present)
      // PostgreSQL looks each key up by index (a LATERAL with LIMIT stays a nested loop): its
      // own choice, a hash anti-join, scanned the whole archive table for every batch
      const match = target.primaryKey.map((k) => `a.${k} = s.${k}`).join(' AND ');
      const pg = tx.dialect.engine === 'postgres';
      const from = pg
        ? ` FROM ${stg} s LEFT JOIN LATERAL (SELECT 1 AS ipp_hit FROM ${target.name} a WHERE ${match} LIMIT 1) p ON true WHERE p.ipp_hit IS NULL`
        : ` FROM ${stg} s WHERE NOT EXISTS (SELECT 1 FROM ${target.name} a WHERE ${match})`;
      // by index even when the archive table's statistics say it is empty (a VACUUM after a
      // merge that rolled back): a sequential scan per row of the table this statement fills
      // grew with every row inserted (300,000 stubs: over a minute instead of 1.6 s)
      if (pg) await tx.exec('SET LOCAL enable_seqscan = off');
      const changes = (await tx.run(insert.replace(` FROM ${stg} WHERE true`, from))).changes;
      if (pg) await tx.exec('RESET enable_seqscan');
      return changes;
    }
    case 'replace': {
      const set = table.columns.filter((c) => !target.primaryKey.includes(c.name)).map((c) => `${c.name} = excluded.${c.name}`);
      set.push(`${BATCH_COLUMN} = excluded.${BATCH_COLUMN}`);
      return (await tx.run(`${insert} ON CONFLICT (${key}) DO UPDATE SET ${set.join(', ')}`)).changes;
    }
  }
}

/** The partition of an archive table that holds a batch's rows (PostgreSQL, see attachTable). */
export function partitionName(batch: string, table: string): string {
  return `arc_${stagingName(batch, table).slice('stg_'.length)}`;
}

// PostgreSQL, an archive table partitioned by batch: the validated staging table (the archive
// table's shape, its primary key built by validation) becomes the batch's partition, so the
// rows are written once. Keys stay unique across batches as the copying merge keeps them:
// validation refused keys of other batches (insert), and here, under the merge lock, keys in
// the archive are taken out of the staged rows (keep) or out of the archive (replace). ATTACH
// builds the partition's other indexes (references, Q3C) from the parent's, each in one pass.
// A partition the batch has already (a reload) is dropped (insert: the reload replaces the
// rows it brought) or receives the rows by INSERT (keep, replace: other batches' rows may
// point at the rows it holds). A batch whose partition a compaction folded into one of
// several batches (compact.ts) gets its rows there by INSERT, after its old rows are deleted
// (insert).
async function attachTable(tx: Queryable, batch: string, table: ArchiveTable, target: ArchiveTable, keyed: boolean): Promise<number> {
  const stg = stagingName(batch, table.name);
  const part = partitionName(batch, table.name);
  const had = (await tx.get<{ r: string | null }>('SELECT to_regclass(?) AS r', [part]))?.r != null;
  // a reload of a batch whose rows a compaction moved into a partition of several batches:
  // the rows go in there (the batch value routes them), as into a partition of its own
  const compacted = !had && await partitionOfBatch(tx, target.name, batch) !== undefined;
  const key = target.primaryKey;
  const match = key.map((k) => `a.${k} = x.${k}`).join(' AND ');
  const keys = keyTableName(target.name);
  const keyMatch = key.map((k) => `k.${k} = a.${k}`).join(' AND ');
  if (table.merge === 'insert') {
    // (the key table loses the keys of the rows the reload replaces)
    if (had && keyed) await tx.run(`DELETE FROM ${keys} k USING ${part} a WHERE ${keyMatch}`);
    if (had) await tx.exec(`DROP TABLE ${part}`);
    if (compacted && keyed) await tx.run(`DELETE FROM ${keys} k USING ${target.name} a WHERE ${keyMatch} AND a.${BATCH_COLUMN} = ?`, [batch]);
    if (compacted) await tx.run(`DELETE FROM ${target.name} WHERE ${BATCH_COLUMN} = ?`, [batch]);
    // validation refused keys other batches had merged; one merged since (another ODM) is
    // caught here, under the merge lock, as the copying merge's unique index caught it
    // (only partitions holding keys in the batch's range can hold one, key-probe.ts)
    const clashes = await eachHoldingPartition(tx, target.name, stg, key, (p, inRange) =>
      tx.get<Record<string, unknown>>(`SELECT ${key.map((k) => `x.${k} AS ${k}`).join(', ')}, a.${BATCH_COLUMN} AS owner
        FROM ${stg} x JOIN ${p} a ON ${match} AND ${inRange} LIMIT 1`));
    const clash = clashes.find((c) => c !== undefined);
    if (clash) {
      throw new PspsError('psps_merge_conflict', `${table.name}: key ${key.map((k) => String(clash[k] ?? clash[k.toLowerCase()])).join(',')} was merged from batch ${String(clash.owner)} after this batch was validated; load the batch again`);
    }
  } else if (table.merge === 'keep') {
    // staged keys the archive holds already are taken out, looked up in its key table or the
    // partitions that can hold them (as the copying merge's anti-join)
    await eachHoldingPartition(tx, target.name, stg, key, (p, inRange) => tx.run(`DELETE FROM ${stg} x USING ${p} a WHERE ${match} AND ${inRange}`), keyed);
  } else if (table.merge === 'replace') {
    const staged = new Set(table.columns.map((c) => c.name.toLowerCase()));
    const kept = target.columns.filter((c) => !staged.has(c.name.toLowerCase()));
    await eachHoldingPartition(tx, target.name, stg, key, async (p, inRange) => {
      // the columns the batch does not bring keep the values the replaced rows had
      if (kept.length > 0) await tx.run(`UPDATE ${stg} x SET ${kept.map((c) => `${c.name} = a.${c.name}`).join(', ')} FROM ${p} a WHERE ${match} AND ${inRange}`);
      await tx.run(`DELETE FROM ${p} a USING ${stg} x WHERE ${match} AND ${inRange}`);
    });
  }
  let rows: number;
  if (keyed && table.merge === 'keep') {
    // the keys the batch's rows bring, all new: as many as its rows
    const cols = key.join(', ');
    rows = (await tx.run(`INSERT INTO ${keys} (${cols}) SELECT ${cols} FROM ${stg}`)).changes;
  } else {
    if (keyed) await tx.run(`INSERT INTO ${keys} (${key.join(', ')}) SELECT ${key.join(', ')} FROM ${stg} ON CONFLICT DO NOTHING`);
    rows = Number((await tx.get<{ n: number }>(`SELECT count(*) AS n FROM ${stg}`))?.n ?? 0);
  }
  if ((had && table.merge !== 'insert') || compacted) {
    const cols = [...target.columns.map((c) => c.name), BATCH_COLUMN].join(', ');
    await tx.run(`INSERT INTO ${target.name} (${cols}) SELECT ${cols} FROM ${stg}`);
    await tx.exec(`DROP TABLE ${stg}`);
    return rows;
  }
  await tx.exec(`ALTER TABLE ${stg} RENAME TO ${part}`);
  // the indexes' names (the key's too) move with the table, so the batch's next staging table can have them
  const indexes = await tx.all<{ name: string }>('SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(?)', [part]);
  for (const { name } of indexes) {
    if (name.startsWith(stg)) await tx.exec(`ALTER INDEX ${name} RENAME TO ${part}${name.slice(stg.length)}`);
  }
  await tx.exec(`ALTER TABLE ${target.name} ATTACH PARTITION ${part} FOR VALUES IN (${quoteText(batch)})`);
  await tx.exec(`ALTER TABLE ${part} RESET (autovacuum_enabled)`);
  return rows;
}
