// Defects injected into a survey for failure tests downstream: each damages chosen
// exposures' smf files in one known way, and the manifest records exactly what was damaged.
import { badArgument } from './errors.ts';

/** The kinds of damage the simulator can inject. */
export const DEFECT_KINDS = ['truncated-smf', 'missing-chip', 'corrupt-keyword', 'nan-coords', 'duplicate-idet'] as const;
/** One of {@link DEFECT_KINDS}. */
export type DefectKind = (typeof DEFECT_KINDS)[number];

/** A defect asked for: its kind and on how many exposures. */
export interface DefectRequest {
  readonly kind: DefectKind;
  readonly count: number;
}

/** Parses `truncated-smf,missing-chip:2,...` (a kind, optionally `:count`, default 1). */
export function parseDefects(text: string): DefectRequest[] {
  const out: DefectRequest[] = [];
  const seen = new Set<string>();
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const [name, countText, ...rest] = item.split(':');
    if (!(DEFECT_KINDS as readonly string[]).includes(name)) {
      throw badArgument('sim_bad_defect', `unknown defect "${name}"; use a comma-separated list of ${DEFECT_KINDS.join(', ')}, each optionally with :count`);
    }
    const count = countText === undefined ? 1 : /^\d+$/.test(countText) ? Number(countText) : NaN;
    if (rest.length > 0 || !Number.isInteger(count) || count < 1 || count > 1000) {
      throw badArgument('sim_bad_defect', `defect "${item}": the count after ":" must be a whole number from 1 to 1000`);
    }
    if (seen.has(name)) throw badArgument('sim_bad_defect', `defect "${name}" is listed twice; give it once with :count`);
    seen.add(name);
    out.push({ kind: name as DefectKind, count });
  }
  return out;
}

/** What was damaged, as the manifest records it (paths relative to the survey directory). */
export interface DefectRecord {
  readonly kind: DefectKind;
  readonly exp_id: number;
  readonly exp_name: string;
  /** The damaged smf file. */
  readonly file: string;
  /** The chip whose HDUs were damaged or left out. */
  readonly chip?: string;
  /** Index of the damaged HDU in the file as written (0 = primary). */
  readonly hdu?: number;
  /** Rows (0-based) damaged in the chip's table. */
  readonly rows?: readonly number[];
  /** corrupt-keyword: the keyword and the text written in place of its value. */
  readonly keyword?: string;
  readonly value?: string;
  /** duplicate-idet: the IPP_IDET value that two rows now hold. */
  readonly idet?: number;
  /** truncated-smf: the file's full size and the size it was cut to, bytes. */
  readonly full_bytes?: number;
  readonly truncated_bytes?: number;
}
