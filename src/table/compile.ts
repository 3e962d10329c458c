// Code made from strings for the hot row loops (CSV formatting, DVO row encoding and
// conversion): a loop written out for one column layout runs several times faster than one
// that interprets the layout per value. Where code from strings is disallowed (node
// --disallow-code-generation-from-strings) the caller gets null and keeps its general loop.

/**
 * Runs `source` as the body of a function whose parameters are `names`' keys, called with
 * their values, and returns what it returns (a function made for one layout); null where
 * code may not be made from strings.
 */
export function compileFunction<T>(source: string, names: Readonly<Record<string, unknown>> = {}): T | null {
  let factory: (...values: unknown[]) => T;
  try {
    factory = new Function(...Object.keys(names), source) as typeof factory;
  } catch {
    return null;
  }
  return factory(...Object.values(names));
}

/** True where code may be made from strings. */
export function canCompile(): boolean {
  return compileFunction<number>('return 1') === 1;
}
