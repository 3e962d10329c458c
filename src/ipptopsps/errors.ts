import { IppError } from '../common/index.ts';

/**
 * An error of ippToPsps: a bad config or settings field, an unreadable catalogue, a batch
 * that fails validation, a claim lost. Its `code` is stable (snake_case); its message names
 * the file, config, item, table, column or row and says what to do.
 */
export class IppToPspsError extends IppError {}
