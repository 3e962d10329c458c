// The datastore's SQL: one function per statement (or per short transaction), shared by both
// engines. Nothing here touches the disk; the server pairs these with the root's layout.
import { insertRows, type Queryable, type Row, type SqlValue } from '../db/index.ts';
import { DatastoreError } from './errors.ts';
import type { FileInfo, FilesetInfo, ProductInfo } from './types.ts';

/** A product row as the server uses it (the read token's hash stays on the server). */
export interface ProductRecord extends Omit<ProductInfo, 'filesets'> {
  readonly id: number;
  readonly readTokenSha256: string | null;
}

/** A fileset row with where its files are, relative to the root. */
export interface FilesetRecord extends FilesetInfo {
  readonly productId: number;
  readonly dir: string;
}

/** A file to serve: its row and its fileset's directory. */
export interface FileRecord extends FileInfo {
  readonly dir: string;
  readonly hidden: boolean;
}

const PRODUCT_COLUMNS = 'p.prod_id, p.prod_name, p.type, p.description, p.read_token_sha256, p.created_at, p.last_fs, p.last_update';
const FILESET_COLUMNS = 'fileset_id, prod_id, fileset_name, reg_time, hide, type, dir, file_count, total_bytes';

function toProduct(r: Row): ProductRecord {
  return {
    id: Number(r.prod_id),
    name: String(r.prod_name),
    type: String(r.type),
    description: String(r.description),
    protected: r.read_token_sha256 !== null,
    readTokenSha256: r.read_token_sha256 === null ? null : String(r.read_token_sha256),
    created: String(r.created_at),
    lastFileset: r.last_fs === null ? null : String(r.last_fs),
    lastUpdate: String(r.last_update),
  };
}

function toFileset(r: Row): FilesetRecord {
  return {
    id: Number(r.fileset_id),
    productId: Number(r.prod_id),
    name: String(r.fileset_name),
    type: String(r.type),
    registered: String(r.reg_time),
    hidden: Number(r.hide) !== 0,
    fileCount: Number(r.file_count),
    bytes: Number(r.total_bytes),
    dir: String(r.dir),
  };
}

function toFile(r: Row): FileInfo {
  return { name: String(r.file_name), bytes: Number(r.bytes), md5: String(r.md5sum), type: String(r.type) };
}

/** The product of this name; a 404 `product_not_found` when there is none. */
export async function getProduct(q: Queryable, name: string): Promise<ProductRecord> {
  const row = await q.get(`SELECT ${PRODUCT_COLUMNS} FROM dsProduct p WHERE p.prod_name = ?`, [name]);
  if (row === undefined) {
    throw new DatastoreError('product_not_found', `no product "${name}" in this datastore; list them with "ipp datastore product ls"`);
  }
  return toProduct(row);
}

/** Every product with its count of visible filesets, ordered by type then name (the original root index's order). */
export async function listProducts(q: Queryable): Promise<(ProductRecord & { filesets: number })[]> {
  const rows = await q.all(`SELECT ${PRODUCT_COLUMNS}, COUNT(f.fileset_id) AS n_filesets
    FROM dsProduct p LEFT JOIN dsFileset f ON f.prod_id = p.prod_id AND f.hide = 0
    GROUP BY ${PRODUCT_COLUMNS} ORDER BY p.type, p.prod_name`);
  return rows.map((r) => ({ ...toProduct(r), filesets: Number(r.n_filesets) }));
}

/** How many visible filesets a product has. */
export async function countFilesets(q: Queryable, productId: number): Promise<number> {
  const row = await q.get('SELECT COUNT(*) AS n FROM dsFileset WHERE prod_id = ? AND hide = 0', [productId]);
  return Number(row?.n ?? 0);
}

/** Registers a product; a 409 `product_exists` when the name is taken. */
export async function insertProduct(
  q: Queryable, p: { name: string; type: string; description: string; readTokenSha256: string | null }, now: string,
): Promise<void> {
  const taken = await q.get('SELECT prod_id FROM dsProduct WHERE prod_name = ?', [p.name]);
  if (taken !== undefined) throw new DatastoreError('product_exists', `product "${p.name}" already exists`);
  await q.run(`INSERT INTO dsProduct (prod_name, type, description, read_token_sha256, created_at, last_fs, last_update)
    VALUES (?, ?, ?, ?, ?, NULL, ?)`, [p.name, p.type, p.description, p.readTokenSha256, now, now]);
}

/** Which filesets of a product a listing wants. */
export interface FilesetSelection {
  /** Only filesets registered after this one (by registration order). */
  readonly afterId?: number;
  /** Only filesets registered at or after this ISO-8601 UTC time. */
  readonly since?: string;
  readonly includeHidden?: boolean;
  readonly limit?: number;
}

/** A product's filesets in registration order. */
export async function listFilesets(q: Queryable, productId: number, query: FilesetSelection = {}): Promise<FilesetRecord[]> {
  const where = ['prod_id = ?'];
  const params: SqlValue[] = [productId];
  if (query.afterId !== undefined) {
    where.push('fileset_id > ?');
    params.push(query.afterId);
  }
  if (query.since !== undefined) {
    where.push('reg_time >= ?');
    params.push(query.since);
  }
  if (!query.includeHidden) where.push('hide = 0');
  const limit = query.limit !== undefined ? ` LIMIT ${Math.floor(query.limit)}` : '';
  const rows = await q.all(`SELECT ${FILESET_COLUMNS} FROM dsFileset WHERE ${where.join(' AND ')} ORDER BY fileset_id${limit}`, params);
  return rows.map(toFileset);
}

/** The fileset of this name in a product (hidden or not), or undefined. */
export async function findFileset(q: Queryable, productId: number, name: string): Promise<FilesetRecord | undefined> {
  const row = await q.get(`SELECT ${FILESET_COLUMNS} FROM dsFileset WHERE prod_id = ? AND fileset_name = ?`, [productId, name]);
  return row === undefined ? undefined : toFileset(row);
}

/** The files of a fileset, in the order they were published. */
export async function filesetFiles(q: Queryable, filesetId: number): Promise<FileInfo[]> {
  return (await q.all('SELECT file_name, bytes, md5sum, type FROM dsFile WHERE fileset_id = ? ORDER BY file_id', [filesetId])).map(toFile);
}

/** One file of a fileset, with the fileset's directory and hide flag, or undefined. */
export async function findFile(q: Queryable, productId: number, fileset: string, file: string): Promise<FileRecord | undefined> {
  const row = await q.get(`SELECT f.file_name, f.bytes, f.md5sum, f.type, s.dir, s.hide
    FROM dsFileset s JOIN dsFile f ON f.fileset_id = s.fileset_id
    WHERE s.prod_id = ? AND s.fileset_name = ? AND f.file_name = ?`, [productId, fileset, file]);
  return row === undefined ? undefined : { ...toFile(row), dir: String(row.dir), hidden: Number(row.hide) !== 0 };
}

/** Every fileset directory a product's rows own (hidden ones included): what the sweep keeps. */
export async function filesetDirs(q: Queryable, productId: number): Promise<string[]> {
  return (await q.all('SELECT dir FROM dsFileset WHERE prod_id = ?', [productId])).map((r) => String(r.dir));
}

/** A fileset to register, its files already in place under `dir`. */
export interface NewFileset {
  readonly productId: number;
  readonly name: string;
  readonly type: string;
  readonly dir: string;
  readonly files: readonly FileInfo[];
  readonly replace: boolean;
}

/**
 * Registers a fileset and its files in the transaction given, replacing the fileset of the same
 * name when asked (a 409 `fileset_exists` otherwise). The product row is updated first: on
 * PostgreSQL that locks it, so filesets of one product get their ids, and their registration
 * times, in commit order and a poller that resumes after an id never misses one committed later.
 * Returns the new row and the directory of the fileset it replaced, for the caller to delete
 * once the transaction has committed.
 */
export async function registerFileset(tx: Queryable, f: NewFileset, now: () => string): Promise<{ fileset: FilesetRecord; replacedDir: string | null }> {
  await tx.run('UPDATE dsProduct SET last_fs = last_fs WHERE prod_id = ?', [f.productId]);
  const registered = now();
  const old = await findFileset(tx, f.productId, f.name);
  if (old !== undefined && !f.replace) {
    throw new DatastoreError('fileset_exists',
      `fileset "${f.name}" already exists${old.hidden ? ' (hidden)' : ''}; remove it first or publish with --replace`);
  }
  if (old !== undefined) await deleteFilesetRows(tx, [old.id]);
  const totalBytes = f.files.reduce((s, file) => s + file.bytes, 0);
  const [row] = await insertRows<Row>(tx, 'dsFileset',
    ['prod_id', 'fileset_name', 'reg_time', 'hide', 'type', 'dir', 'file_count', 'total_bytes'],
    [[f.productId, f.name, registered, 0, f.type, f.dir, f.files.length, totalBytes]],
    { returning: ['fileset_id'] });
  const id = Number(row.fileset_id);
  await insertRows(tx, 'dsFile', ['fileset_id', 'file_name', 'bytes', 'md5sum', 'type'],
    f.files.map((file) => [id, file.name, file.bytes, file.md5, file.type]));
  await tx.run('UPDATE dsProduct SET last_fs = ?, last_update = ? WHERE prod_id = ?', [f.name, registered, f.productId]);
  return {
    fileset: {
      id, productId: f.productId, name: f.name, type: f.type, registered, hidden: false,
      fileCount: f.files.length, bytes: totalBytes, dir: f.dir,
    },
    replacedDir: old === undefined ? null : old.dir,
  };
}

async function deleteFilesetRows(tx: Queryable, ids: readonly number[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const marks = chunk.map(() => '?').join(', ');
    await tx.run(`DELETE FROM dsFile WHERE fileset_id IN (${marks})`, chunk);
    await tx.run(`DELETE FROM dsFileset WHERE fileset_id IN (${marks})`, chunk);
  }
}

/**
 * Removes (or hides) one fileset, or every fileset whose name sorts between `from` and `to`
 * inclusive (byte order on both engines), like the original datastoreRemover. The product's
 * most recent fileset is recomputed. Returns the filesets affected; the caller deletes the
 * directories of removed ones after the commit.
 */
export async function removeFilesets(
  tx: Queryable, productId: number, from: string, to: string | undefined, hide: boolean,
): Promise<FilesetRecord[]> {
  await tx.run('UPDATE dsProduct SET last_fs = last_fs WHERE prod_id = ?', [productId]);
  let targets: FilesetRecord[];
  if (to === undefined) {
    const one = await findFileset(tx, productId, from);
    targets = one === undefined ? [] : [one];
  } else {
    const collate = tx.dialect.engine === 'postgres' ? ' COLLATE "C"' : '';
    targets = (await tx.all(`SELECT ${FILESET_COLUMNS} FROM dsFileset
      WHERE prod_id = ? AND fileset_name${collate} >= ? AND fileset_name${collate} <= ? ORDER BY fileset_id`,
    [productId, from, to])).map(toFileset);
  }
  if (hide) targets = targets.filter((t) => !t.hidden);
  if (targets.length === 0) return targets;
  const ids = targets.map((t) => t.id);
  if (hide) {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      await tx.run(`UPDATE dsFileset SET hide = 1 WHERE fileset_id IN (${chunk.map(() => '?').join(', ')})`, chunk);
    }
  } else {
    await deleteFilesetRows(tx, ids);
  }
  const last = await tx.get(`SELECT fileset_name FROM dsFileset WHERE prod_id = ? AND hide = 0 ORDER BY fileset_id DESC LIMIT 1`, [productId]);
  await tx.run('UPDATE dsProduct SET last_fs = ? WHERE prod_id = ?', [last === undefined ? null : String(last.fileset_name), productId]);
  return targets;
}

/** Totals of the whole store, for the health endpoint. */
export async function storeCounts(q: Queryable): Promise<{ products: number; filesets: number; hiddenFilesets: number; files: number; bytes: number }> {
  const big = q.dialect.bigint;
  const row = await q.get(`SELECT
    (SELECT COUNT(*) FROM dsProduct) AS products,
    (SELECT COUNT(*) FROM dsFileset WHERE hide = 0) AS filesets,
    (SELECT COUNT(*) FROM dsFileset WHERE hide = 1) AS hidden,
    (SELECT CAST(COALESCE(SUM(file_count), 0) AS ${big}) FROM dsFileset) AS files,
    (SELECT CAST(COALESCE(SUM(total_bytes), 0) AS ${big}) FROM dsFileset) AS bytes`);
  return {
    products: Number(row?.products ?? 0),
    filesets: Number(row?.filesets ?? 0),
    hiddenFilesets: Number(row?.hidden ?? 0),
    files: Number(row?.files ?? 0),
    bytes: Number(row?.bytes ?? 0),
  };
}

/** The store id this database belongs to, or undefined for a fresh database. */
export async function getStoreId(q: Queryable): Promise<string | undefined> {
  const row = await q.get('SELECT store_id FROM dsStore');
  return row === undefined ? undefined : String(row.store_id);
}

/** Records the store id of a fresh database. */
export async function setStoreId(q: Queryable, id: string, now: string): Promise<void> {
  await q.run('INSERT INTO dsStore (store_id, created_at) VALUES (?, ?)', [id, now]);
}
