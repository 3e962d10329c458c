import { UsageError, type Logger } from '../common/index.ts';

/** One option of a command, as `node:util` parseArgs takes it, plus its help text. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** Shown in help, e.g. `FILE`. */
  value?: string;
  help: string;
}

/** What a command gets when it runs. */
export interface CommandContext {
  readonly log: Logger;
  readonly stdout: { write(s: string): unknown; isTTY?: boolean };
  readonly stderr: { write(s: string): unknown; isTTY?: boolean };
  readonly signal: AbortSignal;
  readonly verbose: boolean;
  /** The environment, read only through settings.ts. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where interactive answers come from (prompts such as `ipp queue edit`); absent when none. */
  readonly stdin?: AsyncIterable<string | Uint8Array> & { isTTY?: boolean };
}

/** Parsed arguments: option values by name and the positionals in order. */
export interface ParsedArgs {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
}

/** A leaf command of `ipp` (e.g. `ipp fits info`). */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage line after the command path, e.g. `FILE [--json]`. */
  readonly usage: string;
  /** Longer help: what it does, examples. */
  readonly description?: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Runs the command; the returned number is the exit code. */
  run(args: ParsedArgs, context: CommandContext): Promise<number>;
}

/** A group of commands (e.g. `ipp fits`). */
export interface CommandGroup {
  readonly name: string;
  readonly summary: string;
  readonly commands: readonly (Command | CommandGroup)[];
}

/** Exit codes used by every command. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2, interrupted: 130 });

/** True when a registry entry is a group of commands. */
export function isGroup(entry: Command | CommandGroup): entry is CommandGroup {
  return 'commands' in entry;
}

/** A whole-number argument (`what` names it in the message, e.g. `--keep-recent`) of at least `min` (and at most `max`); a usage error otherwise. */
export function wholeNumber(value: string, what: string, min = 0, max?: number): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < min || !Number.isSafeInteger(n) || (max !== undefined && n > max)) {
    throw new UsageError(`${what} "${value}" must be a whole number${max !== undefined ? ` from ${min} to ${max}` : min > 0 ? ` of at least ${min}` : ''}`);
  }
  return n;
}

/** {@link wholeNumber} of an option that may be absent (undefined then). */
export function optionalWholeNumber(value: unknown, what: string, min = 0, max?: number): number | undefined {
  return value === undefined ? undefined : wholeNumber(String(value), what, min, max);
}

/** A --port option's value: a whole number from 0 (any free port) to 65535. */
export function portNumber(value: unknown): number {
  return wholeNumber(String(value), '--port', 0, 65535);
}
