import { IppError } from '../common/index.ts';

/** The stable codes of {@link Gpc1Error}: what went wrong, for scripts and servers to tell apart. */
export type Gpc1ErrorCode =
  | 'gpc1_unknown_stage'
  | 'gpc1_unknown_state'
  | 'gpc1_unknown_run'
  | 'gpc1_unknown_exposure'
  | 'gpc1_duplicate_exposure'
  | 'gpc1_bad_transition'
  | 'gpc1_run_not_processing'
  | 'gpc1_input_not_ready'
  | 'gpc1_component_not_in_run'
  | 'gpc1_duplicate_component'
  | 'gpc1_unknown_column'
  | 'gpc1_bad_input';

/**
 * An error of the processing database caused by its caller: an unknown stage, state or run,
 * a state change the run's life does not allow, a component that is not part of a run or is
 * already recorded. The message names the stage, the id and the component, and what to do.
 */
export class Gpc1Error extends IppError {
  declare readonly code: Gpc1ErrorCode;

  constructor(code: Gpc1ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
