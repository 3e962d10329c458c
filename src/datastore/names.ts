// Names of products, filesets and files become directory and file names under the store's
// root and fields of the plain-text index, so they are checked in one place: a bad name is
// refused with its reason before anything touches the disk.
import { DatastoreError } from './errors.ts';

/** What a name names; products and filesets are limited to 64 characters, files to 200. */
export type NameKind = 'product' | 'fileset' | 'file';

const MAX_LENGTH: Readonly<Record<NameKind, number>> = { product: 64, fileset: 64, file: 200 };

// The original index fields allowed letters, digits and -+_.: (and space, which we leave out:
// it does not survive the index's whitespace trimming).
const ALLOWED = /^[A-Za-z0-9._+:-]+$/;

/** The name every index URL ends with; it cannot also name a product, fileset or file. */
export const INDEX_NAME = 'index.txt';

/** Why `value` is not a valid name of this kind, or undefined when it is. */
export function nameProblem(kind: NameKind, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return 'is empty';
  if (value.length > MAX_LENGTH[kind]) return `is longer than ${MAX_LENGTH[kind]} characters`;
  if (value === '.' || value === '..') return 'is a relative directory name';
  if (value.includes('/') || value.includes('\\')) return 'contains a slash (names are one path segment)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character';
  if (!ALLOWED.test(value)) return 'contains a character other than letters, digits and . _ + : -';
  if (!/^[A-Za-z0-9]/.test(value)) return 'must start with a letter or a digit';
  if (value === INDEX_NAME) return `is reserved for the plain-text index`;
  return undefined;
}

/** Returns `value` when it is a valid name of this kind; a 400 `name_invalid` error with the reason otherwise. */
export function checkName(kind: NameKind, value: unknown): string {
  const problem = nameProblem(kind, value);
  if (problem !== undefined) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value) : String(value);
    throw new DatastoreError('name_invalid', `${kind} name ${shown} ${problem}`);
  }
  return value as string;
}

/** Checks a type label (product, fileset and file types): index field characters, at most 64. */
export function checkType(what: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 64 || !ALLOWED.test(value)) {
    throw new DatastoreError('type_invalid',
      `${what} ${JSON.stringify(value)} must be 1 to 64 letters, digits or . _ + : - (e.g. IPP_PSPS)`);
  }
  return value;
}

/** Checks a product description: free text up to 255 characters without | # or control characters (the index's separators). */
export function checkDescription(value: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.trim() === '' || value.length > 255 || /[|#\u0000-\u001f\u007f]/.test(value)) {
    throw new DatastoreError('description_invalid',
      'a product description is 1 to 255 characters without |, # or control characters (they would break the plain-text index)');
  }
  return value;
}
