// Where the package's own data files live, whatever the working directory of the process.
import { fileURLToPath } from 'node:url';

/** The package's root directory (the one holding package.json). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The VOTable files describing the archive's tables, one per batch type (IN, P2, ST, OB). */
export const PSPS_SCHEMA_DIR = fileURLToPath(new URL('../../schema/psps/', import.meta.url));
