// The archive's tables as the schema files describe them (schema/psps/{IN,P2,ST,OB}.xml:
// VOTable, no data, one TABLE per archive table, PARAMs primaryKey / references / merge).
// Read with the votable room's schema reader; only what loading and validating need is kept.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseTableSchemas, VOTableError, type TableSchema } from '../votable/index.ts';
import { PspsError } from './errors.ts';

/** The FIELD datatypes an archive column may have. */
export type ArchiveDatatype = 'long' | 'int' | 'short' | 'unsignedByte' | 'float' | 'double' | 'char' | 'boolean';

const DATATYPES: readonly ArchiveDatatype[] = ['long', 'int', 'short', 'unsignedByte', 'float', 'double', 'char', 'boolean'];

/** How a batch's rows of a table join the archive (the table's `merge` PARAM). */
export type MergePolicy = 'insert' | 'replace' | 'keep';

/** One bound of a declared range (`<MIN value=.. inclusive=..>`). */
export interface RangeBound {
  readonly value: number;
  readonly inclusive: boolean;
}

/** One column of an archive table. */
export interface ArchiveColumn {
  readonly name: string;
  readonly datatype: ArchiveDatatype;
  /** For `char`: the most characters a value may have (undefined: no bound). */
  readonly width?: number;
  readonly unit?: string;
  /** The missing-value default (VALUES null), as written; absent for a required column. */
  readonly defaultText?: string;
  /** No default: a missing value fails validation. */
  readonly required: boolean;
  readonly min?: RangeBound;
  readonly max?: RangeBound;
}

/** `column Table.column`: every value must exist in the other table. */
export interface ArchiveReference {
  readonly column: string;
  readonly table: string;
  readonly refColumn: string;
}

/** One archive table as one schema file describes it. */
export interface ArchiveTable {
  readonly name: string;
  readonly columns: readonly ArchiveColumn[];
  readonly primaryKey: readonly string[];
  readonly references: readonly ArchiveReference[];
  readonly merge: MergePolicy;
}

/** One schema file: the tables one batch type carries, in file order. */
export interface BatchSchema {
  /** The batch type: the file name without `.xml` (IN, P2, ST, OB). */
  readonly type: string;
  readonly file: string;
  readonly md5: string;
  readonly tables: readonly ArchiveTable[];
}

/** Every schema file, and the archive tables they make together. */
export interface ArchiveSchema {
  readonly dir: string;
  readonly batches: readonly BatchSchema[];
  /** The archive's tables: the union of the columns every file gives each table. */
  readonly tables: readonly ArchiveTable[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Reads every `*.xml` schema file of a directory (sorted by name) into one archive schema. */
export async function readArchiveSchema(dir: string): Promise<ArchiveSchema> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.xml')).sort();
  } catch (cause) {
    throw new PspsError('psps_bad_schema', `schema directory ${dir}: ${(cause as Error).message}; give the directory of the archive's VOTable schema files`, { cause });
  }
  if (names.length === 0) throw new PspsError('psps_bad_schema', `schema directory ${dir} holds no .xml schema files`);
  const batches: BatchSchema[] = [];
  for (const n of names) batches.push(await readBatchSchema(join(dir, n)));
  return { dir, batches, tables: unionTables(batches) };
}

/** The schema of one batch type; `psps_unknown_batch_type` when there is none. */
export function batchSchemaOf(schema: ArchiveSchema, type: string): BatchSchema {
  const hit = schema.batches.find((b) => b.type === type);
  if (!hit) {
    throw new PspsError('psps_unknown_batch_type', `no schema file for batch type "${type}"; the schema directory ${schema.dir} has ${schema.batches.map((b) => b.type).join(', ')}`);
  }
  return hit;
}

/** Reads one schema file. */
export async function readBatchSchema(path: string): Promise<BatchSchema> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new PspsError('psps_bad_schema', `${path}: cannot read: ${(cause as Error).message}`, { cause });
  }
  const tables = parseSchemaText(bytes, path);
  return {
    type: basename(path).replace(/\.xml$/, ''), file: basename(path),
    md5: createHash('md5').update(bytes).digest('hex'), tables,
  };
}

/** Parses the text of a schema file with the votable room's reader, then checks what the archive needs. */
export function parseSchemaText(bytes: Uint8Array, file: string): ArchiveTable[] {
  let tables: TableSchema[];
  try {
    tables = parseTableSchemas(bytes, file);
  } catch (error) {
    if (error instanceof VOTableError) throw new PspsError('psps_bad_schema', error.message, { cause: error });
    throw error;
  }
  return tables.map((t) => toArchiveTable(t, file));
}

function toArchiveTable(t: TableSchema, file: string): ArchiveTable {
  const where = `${file}: TABLE ${t.name}`;
  const bad = (what: string) => new PspsError('psps_bad_schema', `${where}: ${what}`);
  // names become unquoted SQL identifiers
  if (!NAME.test(t.name)) throw bad('the table name must be letters, digits and _ (at most 63)');
  const columns = t.columns.map((c): ArchiveColumn => {
    if (!NAME.test(c.name)) throw bad(`column name "${c.name}" must be letters, digits and _ (at most 63)`);
    const datatype = (c.votable?.datatype ?? '') as ArchiveDatatype;
    if (!DATATYPES.includes(datatype)) throw bad(`FIELD ${c.name}: datatype "${datatype}" is not one of ${DATATYPES.join(', ')}`);
    if (datatype !== 'char' && (c.shape.length > 0 || c.variable)) throw bad(`FIELD ${c.name}: array columns are not archive columns`);
    const dflt = c.defaultValue;
    return {
      name: c.name, datatype,
      ...(datatype === 'char' && c.width !== undefined && c.width > 0 ? { width: c.width } : {}),
      ...(c.unit !== undefined ? { unit: c.unit } : {}),
      ...(dflt !== undefined ? { defaultText: String(dflt) } : {}),
      required: c.required,
      ...(c.min !== undefined ? { min: { value: c.min, inclusive: c.minInclusive ?? true } } : {}),
      ...(c.max !== undefined ? { max: { value: c.max, inclusive: c.maxInclusive ?? true } } : {}),
    };
  });
  const names = new Set<string>();
  for (const c of columns) {
    if (names.has(c.name.toLowerCase())) throw bad(`column ${c.name} appears twice (names are compared without case)`);
    names.add(c.name.toLowerCase());
  }
  if (t.merge !== 'insert' && t.primaryKey.length === 0) throw bad(`merge "${t.merge}" needs a primaryKey`);
  return {
    name: t.name, columns, primaryKey: [...t.primaryKey], merge: t.merge,
    references: t.references.map((r) => ({ column: r.column, table: r.table, refColumn: r.targetColumn })),
  };
}

// A table in several files (ObjectThin: stubs in P2/ST, full in OB) is one archive table
// with every column any file gives it; the first file that defines a column defines it.
function unionTables(batches: readonly BatchSchema[]): ArchiveTable[] {
  const byName = new Map<string, { table: ArchiveTable; columns: ArchiveColumn[]; from: string }>();
  for (const b of batches) {
    for (const t of b.tables) {
      const key = t.name.toLowerCase();
      const seen = byName.get(key);
      if (!seen) {
        byName.set(key, { table: t, columns: [...t.columns], from: b.file });
        continue;
      }
      if (seen.table.primaryKey.join(',') !== t.primaryKey.join(',')) {
        throw new PspsError('psps_bad_schema', `TABLE ${t.name}: primaryKey ${t.primaryKey.join(',') || '(none)'} in ${b.file} but ${seen.table.primaryKey.join(',') || '(none)'} in ${seen.from}`);
      }
      for (const c of t.columns) {
        const prior = seen.columns.find((p) => p.name.toLowerCase() === c.name.toLowerCase());
        if (!prior) seen.columns.push(c);
        else if (prior.datatype !== c.datatype) {
          throw new PspsError('psps_bad_schema', `TABLE ${t.name} column ${c.name}: ${c.datatype} in ${b.file} but ${prior.datatype} in ${seen.from}`);
        }
      }
    }
  }
  const out: ArchiveTable[] = [];
  for (const { table, columns } of byName.values()) {
    const refs = new Map<string, ArchiveReference>();
    for (const b of batches) {
      for (const t of b.tables) {
        if (t.name.toLowerCase() !== table.name.toLowerCase()) continue;
        for (const r of t.references) refs.set(`${r.column} ${r.table}.${r.refColumn}`, r);
      }
    }
    out.push({ ...table, columns, references: [...refs.values()] });
  }
  return out;
}

/** The archive table of a name (case ignored), or undefined. */
export function findTable(tables: readonly ArchiveTable[], name: string): ArchiveTable | undefined {
  const want = name.toLowerCase();
  return tables.find((t) => t.name.toLowerCase() === want);
}
