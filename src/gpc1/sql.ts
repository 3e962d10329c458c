// Small pieces of SQL shared by the operations.
/** Ids per `IN (...)` list: far under both engines' parameter limits, few statements for big sets. */
export const IN_CHUNK = 1000;

/** `?, ?, ?` for `n` parameters. */
export function marks(n: number): string {
  return Array(n).fill('?').join(', ');
}

/** The array in slices of at most `size`. */
export function chunks<T>(items: readonly T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The current time as the schema stores it: ISO-8601 UTC text. */
export function now(): string {
  return new Date().toISOString();
}
