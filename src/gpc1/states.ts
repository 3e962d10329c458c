// The life of a run (the primary row of a stage). Processing: new → full (set only by advance),
// with wait as a pause and drop as giving up. Cleanup: full → goto_cleaned → cleaned (or
// error_cleaned, retried by going back to goto_cleaned); likewise scrubbed and purged. A
// cleaned run can be regenerated: update → full again when its components are redone.
import { Gpc1Error } from './errors.ts';

/** Every state a run can be in (the original's list, without the registration-only states). */
export const RUN_STATES = [
  'new', 'wait', 'full', 'keep', 'drop', 'update',
  'goto_cleaned', 'cleaned', 'error_cleaned',
  'goto_scrubbed', 'scrubbed', 'error_scrubbed',
  'goto_purged', 'purged', 'error_purged',
] as const;

/** A run's state. */
export type RunState = typeof RUN_STATES[number];

/** States whose runs still take components (the scheduler's work). */
export const PROCESSING_STATES: readonly RunState[] = ['new', 'update'];

/**
 * The state changes an operator (or a cleanup job) may make. `full` is absent on purpose as a
 * target of new/update runs: only {@link advance} sets it, after checking every component.
 */
export const TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = Object.freeze({
  new: ['wait', 'drop'],
  wait: ['new', 'drop'],
  full: ['keep', 'drop', 'update', 'goto_cleaned', 'goto_scrubbed', 'goto_purged'],
  keep: ['full'],
  drop: ['goto_cleaned', 'goto_scrubbed', 'goto_purged'],
  update: ['drop'],
  goto_cleaned: ['cleaned', 'error_cleaned'],
  error_cleaned: ['goto_cleaned'],
  cleaned: ['update', 'goto_scrubbed', 'goto_purged'],
  goto_scrubbed: ['scrubbed', 'error_scrubbed'],
  error_scrubbed: ['goto_scrubbed'],
  scrubbed: ['update', 'goto_purged'],
  goto_purged: ['purged', 'error_purged'],
  error_purged: ['goto_purged'],
  purged: [],
});

/** The states from which a run may be set to `to`. */
export function sourcesOf(to: RunState): RunState[] {
  return RUN_STATES.filter((from) => TRANSITIONS[from].includes(to));
}

/** Checks a state name; a clear error listing the valid ones otherwise. */
export function parseRunState(name: string): RunState {
  if ((RUN_STATES as readonly string[]).includes(name)) return name as RunState;
  throw new Gpc1Error('gpc1_unknown_state', `unknown run state "${name}"; the states are ${RUN_STATES.join(', ')}`);
}
