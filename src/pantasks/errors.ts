import { IppError } from '../common/index.ts';

/** The stable codes of {@link PantasksError}. */
export type PantasksErrorCode =
  | 'pantasks_bad_task'
  | 'pantasks_bad_trange'
  | 'pantasks_unknown_task'
  | 'pantasks_duplicate_task'
  | 'pantasks_task_module_failed'
  | 'pantasks_unknown_host'
  | 'pantasks_duplicate_host'
  | 'pantasks_bad_host'
  | 'pantasks_unknown_book'
  | 'pantasks_bad_page'
  | 'pantasks_bad_option'
  | 'pantasks_bad_config'
  | 'pantasks_protocol'
  | 'pantasks_slurm_failed'
  | 'pantasks_stopped';

/**
 * An error of the scheduler caused by its caller or its surroundings: a task definition that
 * does not hold together, a task module that throws, an unknown host or task, a pclient that
 * speaks nonsense, a Slurm command that fails. The message names the task, host or file.
 */
export class PantasksError extends IppError {
  declare readonly code: PantasksErrorCode;

  constructor(code: PantasksErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
