import { IppError } from '../common/index.ts';

/**
 * An error of the DVO room: a catalogue that cannot be ingested (`dvo_bad_catalogue`,
 * `dvo_bad_coordinates`, `dvo_unknown_photcode`, `dvo_image_conflict`) or is not there
 * (`dvo_no_catalogue`), a database that is
 * missing or damaged (`dvo_no_database`, `dvo_damaged`), a lock that cannot be had
 * (`dvo_locked`), an image that is not there (`dvo_no_such_image`). The message names the
 * file, chip, row or region and says what to do.
 */
export class DvoError extends IppError {}
