// Child process of convert-rss.ts: FITS -> CSV as `ipp fits convert` does it, but with the
// number of formatting threads fixed, so both of writeCsv's modes can be measured whatever
// the machine's load.
//
//   node bench/csv-child.ts IN OUT THREADS
import './usage.ts';
import { FitsFile } from '../src/fits/index.ts';
import { fitsRawRows } from '../src/fits/csv-rows.ts';
import { writeCsv } from '../src/table/csv-writer.ts';

const [input, output, threads] = process.argv.slice(2);
const file = await FitsFile.open(input);
try {
  // as the CLI does: threads read the rows from the file when the table allows it
  const rawRows = fitsRawRows(file, 1, input);
  await writeCsv(file.table(1), output, { threads: Number(threads), ...(rawRows ? { rawRows } : {}) });
} finally {
  await file.close();
}
