/**
 * The base of every error this system raises on purpose. A user-caused error carries a
 * stable snake_case `code` (so a server can send it and a client raise it again), a message
 * a person can act on, and the `cause` it came from.
 */
export class IppError extends Error {
  /** Stable machine-readable code, e.g. `fits_truncated`. */
  readonly code: string;
  /** True when the error is a bad argument or option value (a command exits with the usage code). */
  readonly usage: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; usage?: boolean }) {
    super(message, options);
    this.code = code;
    this.usage = options?.usage === true;
    this.name = new.target.name;
  }
}

/** Raised for a bad command line or a bad configuration value. */
export class UsageError extends IppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('usage', message, { ...options, usage: true });
  }
}

/** True for errors raised on purpose by this system (as opposed to bugs). */
export function isIppError(error: unknown): error is IppError {
  return error instanceof IppError;
}

/** The chain of causes of an error, outermost first, as one line each. */
export function causeChain(error: unknown): string[] {
  const lines: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    if (current instanceof IppError) lines.push(`[${current.code}] ${current.message}`);
    else if (current instanceof Error) lines.push(`${current.name}: ${current.message}`);
    else lines.push(String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines;
}
