import { IppError } from '../common/index.ts';

/**
 * An error of the database layer: a bad URL, an unreachable server, a failed statement or a
 * migration history that does not match the code. The message names the database (never its
 * password) and says what to do.
 */
export class DbError extends IppError {}
