import { IppError } from '../common/index.ts';

/**
 * A survey that cannot be simulated as asked (bad arguments, an output directory that cannot
 * be written or is not a survey) or a manifest that cannot be read. The code is stable
 * (`sim_bad_box`, `sim_bad_filter`, ...); the message says what to do.
 */
export class SimError extends IppError {}

/** A bad option value: a SimError with its code that a command reports as a usage error. */
export function badArgument(code: string, message: string): SimError {
  return new SimError(code, message, { usage: true });
}
