// The archive's tables as the schema files describe them (schema/psps/{IN,P2,ST,OB}.xml:
// VOTable, no data, one TABLE per archive table, PARAMs primaryKey / references / merge).
// Read with the votable room's XML tokenizer; only what loading and validating need is kept.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { XmlSyntaxError, XmlTokenizer } from '../votable/index.ts';
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

interface FieldDraft {
  name: string; datatype: string; arraysize?: string; unit?: string;
  nullText?: string; min?: RangeBound; max?: RangeBound;
}

interface TableDraft { name: string; fields: FieldDraft[]; params: Map<string, string> }

/** Parses the text of a schema file (exported for tests). */
export function parseSchemaText(bytes: Uint8Array, file: string): ArchiveTable[] {
  const drafts: TableDraft[] = [];
  let table: TableDraft | undefined;
  let field: FieldDraft | undefined;
  const bad = (what: string): PspsError => new PspsError('psps_bad_schema', `${file}${table ? `: TABLE ${table.name}` : ''}${field ? ` FIELD ${field.name}` : ''}: ${what}`);
  const bound = (attrs: Record<string, string>, kind: string): RangeBound => {
    const value = Number(attrs.value);
    if (attrs.value === undefined || attrs.value.trim() === '' || !Number.isFinite(value)) throw bad(`${kind} value "${attrs.value ?? ''}" is not a number`);
    return { value, inclusive: (attrs.inclusive ?? 'yes') !== 'no' };
  };
  const tokenizer = new XmlTokenizer({
    start(name, attrs, selfClosing) {
      if (name === 'TABLE') {
        table = { name: attrs.name ?? '', fields: [], params: new Map() };
        if (!NAME.test(table.name)) throw bad(`table name "${table.name}" must be letters, digits and _ (at most 63)`);
        drafts.push(table);
        if (selfClosing) table = undefined;
      } else if (name === 'FIELD' && table) {
        field = { name: attrs.name ?? '', datatype: attrs.datatype ?? '', arraysize: attrs.arraysize, unit: attrs.unit };
        if (!NAME.test(field.name)) throw bad(`column name "${field.name}" must be letters, digits and _ (at most 63)`);
        table.fields.push(field);
        if (selfClosing) field = undefined;
      } else if (name === 'VALUES' && field) {
        if (attrs.null !== undefined) field.nullText = attrs.null;
      } else if (name === 'MIN' && field) {
        field.min = bound(attrs, 'MIN');
      } else if (name === 'MAX' && field) {
        field.max = bound(attrs, 'MAX');
      } else if (name === 'PARAM' && table && !field) {
        if (attrs.name !== undefined) table.params.set(attrs.name, attrs.value ?? '');
      }
    },
    end(name) {
      if (name === 'FIELD') field = undefined;
      else if (name === 'TABLE') table = undefined;
    },
    text() { /* descriptions are not needed here */ },
  });
  tokenizer.skipText = true;
  try {
    tokenizer.feed(bytes);
    tokenizer.finish();
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw new PspsError('psps_bad_schema', `${file}: byte ${error.offset}: ${error.message}`, { cause: error });
    throw error;
  }
  if (drafts.length === 0) throw new PspsError('psps_bad_schema', `${file}: no TABLE`);
  return drafts.map((d) => finishTable(d, file));
}

function finishTable(d: TableDraft, file: string): ArchiveTable {
  const where = `${file}: TABLE ${d.name}`;
  const bad = (what: string) => new PspsError('psps_bad_schema', `${where}: ${what}`);
  if (d.fields.length === 0) throw bad('no FIELD');
  const columns = d.fields.map((f): ArchiveColumn => {
    if (!DATATYPES.includes(f.datatype as ArchiveDatatype)) {
      throw bad(`FIELD ${f.name}: datatype "${f.datatype}" is not one of ${DATATYPES.join(', ')}`);
    }
    const datatype = f.datatype as ArchiveDatatype;
    let width: number | undefined;
    if (datatype === 'char') {
      const m = /^(\d+)\*?$|^\*$/.exec(f.arraysize ?? '1');
      if (!m) throw bad(`FIELD ${f.name}: arraysize "${f.arraysize}" must be N, N* or *`);
      width = m[1] !== undefined && Number(m[1]) > 0 ? Number(m[1]) : undefined;
    } else if (f.arraysize !== undefined && f.arraysize !== '1') {
      throw bad(`FIELD ${f.name}: array columns (arraysize "${f.arraysize}") are not archive columns`);
    }
    if (f.nullText !== undefined && datatype !== 'char' && datatype !== 'boolean' && !Number.isFinite(Number(f.nullText))) {
      throw bad(`FIELD ${f.name}: VALUES null "${f.nullText}" is not a number`);
    }
    return {
      name: f.name, datatype,
      ...(width !== undefined ? { width } : {}),
      ...(f.unit !== undefined ? { unit: f.unit } : {}),
      ...(f.nullText !== undefined ? { defaultText: f.nullText } : {}),
      required: f.nullText === undefined,
      ...(f.min ? { min: f.min } : {}),
      ...(f.max ? { max: f.max } : {}),
    };
  });
  const names = new Set<string>();
  for (const c of columns) {
    if (names.has(c.name.toLowerCase())) throw bad(`column ${c.name} appears twice`);
    names.add(c.name.toLowerCase());
  }
  const has = (n: string) => columns.some((c) => c.name === n);
  const primaryKey = (d.params.get('primaryKey') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const k of primaryKey) if (!has(k)) throw bad(`primaryKey names ${k}, which is not a FIELD`);
  const references = (d.params.get('references') ?? '').split(';').map((s) => s.trim()).filter((s) => s !== '').map((text): ArchiveReference => {
    const m = /^([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\.([A-Za-z_]\w*)$/.exec(text);
    if (!m) throw bad(`references "${text}" must read "column Table.column"`);
    if (!has(m[1])) throw bad(`references names ${m[1]}, which is not a FIELD`);
    return { column: m[1], table: m[2], refColumn: m[3] };
  });
  const merge = (d.params.get('merge') ?? 'insert').trim();
  if (merge !== 'insert' && merge !== 'replace' && merge !== 'keep') throw bad(`merge "${merge}" must be insert, replace or keep`);
  if (merge !== 'insert' && primaryKey.length === 0) throw bad(`merge "${merge}" needs a primaryKey`);
  return { name: d.name, columns, primaryKey, references, merge };
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
