// `ipp demo`: the main job. Until the survey chain exists it runs the most complete thing that
// works, the table layer: write a multi-chip detection catalogue, tile-compress it, verify
// both files, read the compressed one back and compare every value, convert to CSV and VOTable.
import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { IppError, UsageError } from '../../common/index.ts';
import {
  FitsFile, Header, fitsTable, verifyFits, writeCompressedFits, writeFits,
} from '../../fits/index.ts';
import { collectTable, columnInfo, getCell, memoryTable, writeCsv, type ColumnBatch, type Table } from '../../table/index.ts';
import { writeVOTable } from '../../votable/index.ts';
import { EXIT, type Command } from '../command.ts';

const CHIPS = ['XY01', 'XY02', 'XY10', 'XY11', 'XY33', 'XY44', 'XY55', 'XY76'];

export const demo: Command = {
  name: 'demo',
  summary: 'run the main job on embedded defaults (for now: the table layer, end to end)',
  usage: '[--dir DIR] [--rows N]',
  description: [
    'The survey chain (simulator, DVO, ippToPsps, datastore, archive) is not built yet, so the',
    'demo runs the table layer: it writes a detection catalogue with one binary table per chip',
    '(synthetic values, HIERARCH keywords such as FPA.FILTER), tile-compresses it (RICE_1 for',
    'integers, GZIP_2 for floats), verifies both files (structure, checksums, every value),',
    'reads the compressed file back and compares every value, and converts one chip table to',
    'CSV and VOTable.',
  ].join('\n'),
  options: {
    dir: { type: 'string', value: 'DIR', help: 'where to write the files', default: 'ipp-demo' },
    rows: { type: 'string', value: 'N', help: 'detections per chip', default: '20000' },
  },
  async run(args, ctx) {
    const dir = resolve(String(args.values.dir));
    const rows = Number(args.values.rows);
    if (!Number.isInteger(rows) || rows < 1 || rows > 10_000_000) {
      throw new UsageError(`--rows "${args.values.rows}" must be a whole number from 1 to 10000000`);
    }
    await mkdir(dir, { recursive: true });
    const say = (s: string) => ctx.stdout.write(`${s}\n`);
    const plain = join(dir, 'catalogue.fits');
    const packed = join(dir, 'catalogue.fits.fz');
    const primary = new Header()
      .set('IMAGEID', 1234567, 'exposure image ID')
      .set('SOURCEID', 7, 'source of the image')
      .set('MJD-OBS', 56789.123456, 'start of exposure (MJD)')
      .set('EXPTIME', 45, 'exposure time (s)', { float: true })
      .set('AIRMASS', 1.134)
      .set('FPA.FILTER', 'r.00000', 'filter (HIERARCH keyword)');
    const tables = CHIPS.map((chip, i) => chipTable(chip, rows, i + 1));
    say(`ipp demo: the table layer (the survey chain comes in later issues); files in ${dir}`);

    await writeFits(plain, tables.map((table) => ({ table })), { primaryHeader: primary, signal: ctx.signal });
    say(`1. wrote ${plain}: ${CHIPS.length} chip tables x ${rows} detections, ${await mb(plain)}`);

    await writeCompressedFits(packed, tables.map((table) => ({ table, compress: { algorithm: 'auto' as const } })), { primaryHeader: primary, signal: ctx.signal });
    say(`2. tile-compressed it to ${packed}: ${await mb(packed)} (RICE_1 integers, GZIP_2 floats, GZIP_1 strings)`);

    for (const path of [plain, packed]) {
      const r = await verifyFits(path, { signal: ctx.signal });
      if (r.errors > 0) throw new IppError('demo_failed', `verification of ${path} failed: ${r.problems.map((p) => p.message).join('; ')}`);
      say(`3. verified ${path}: ${r.hdus} HDUs, ${r.checksumsChecked} checksums, ${r.rowsDecoded} rows decoded, 0 errors`);
    }

    {
      await using file = await FitsFile.open(packed);
      let compared = 0;
      for (let i = 0; i < CHIPS.length; i++) {
        const back = await collectTable(fitsTable(file, `${CHIPS[i]}.psf`));
        const orig = await collectTable(tables[i]);
        compared += compareBatches(tables[i], orig, back);
      }
      say(`4. read the compressed file back: ${compared} values identical to what was written`);
    }

    const csv = join(dir, 'XY01.psf.csv');
    const vot = join(dir, 'XY01.psf.vot');
    await writeCsv(tables[0], csv, { signal: ctx.signal });
    await writeVOTable(vot, [tables[0]], { signal: ctx.signal });
    say(`5. converted chip XY01 to ${csv} (${await mb(csv)}) and ${vot} (${await mb(vot)})`);
    say('');
    say('Look at the results with:');
    say(`  npx ipp fits info ${packed}`);
    say(`  npx ipp fits header '${packed}[XY01.psf]'`);
    say(`  npx ipp fits dump '${packed}[XY33.psf]' --columns IPP_IDET,RA_PSF,DEC_PSF,PSF_INST_MAG --rows 0:5`);
    return EXIT.ok;
  },
};

async function mb(path: string): Promise<string> {
  return `${((await stat(path)).size / 1e6).toFixed(2)} MB`;
}

/** A chip's detections: a few of the smf columns (CMF_PS1_V5 names), synthetic values. */
function chipTable(chip: string, rows: number, seed: number): Table {
  const columns = [
    columnInfo('IPP_IDET', 'uint32', { description: 'detection index on the chip' }),
    columnInfo('X_PSF', 'float32', { unit: 'pix' }),
    columnInfo('Y_PSF', 'float32', { unit: 'pix' }),
    columnInfo('RA_PSF', 'float64', { unit: 'deg' }),
    columnInfo('DEC_PSF', 'float64', { unit: 'deg' }),
    columnInfo('PSF_INST_MAG', 'float32', { unit: 'mag' }),
    columnInfo('PSF_INST_MAG_SIG', 'float32', { unit: 'mag' }),
    columnInfo('AP_NPIX', 'int32', { nullValue: -1 }),
    columnInfo('FLAGS', 'uint32'),
    columnInfo('N_FRAMES', 'uint16'),
  ];
  let s = seed * 2654435761;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const ra0 = 30 + seed * 0.2;
  const batch: ColumnBatch = {
    rowCount: rows,
    columns: [
      { values: Uint32Array.from({ length: rows }, (_, i) => i) },
      { values: Float32Array.from({ length: rows }, () => next() * 4846) },
      { values: Float32Array.from({ length: rows }, () => next() * 4868) },
      { values: Float64Array.from({ length: rows }, () => ra0 + next() * 0.2) },
      { values: Float64Array.from({ length: rows }, () => 10 + next() * 0.2) },
      { values: Float32Array.from({ length: rows }, () => (next() < 0.01 ? Number.NaN : -16 + next() * 8)) },
      { values: Float32Array.from({ length: rows }, () => next() * 0.3) },
      { values: Int32Array.from({ length: rows }, () => (next() < 0.02 ? -1 : Math.floor(next() * 400))) },
      { values: Uint32Array.from({ length: rows }, () => (next() < 0.1 ? 0x1000 : 0)) },
      { values: Uint16Array.from({ length: rows }, () => 1) },
    ],
  };
  return memoryTable(columns, [batch], { name: `${chip}.psf`, params: [{ name: 'EXTTYPE', value: 'PS1_V5', description: 'detection format' }] });
}

function compareBatches(table: Table, a: ColumnBatch, b: ColumnBatch): number {
  let n = 0;
  table.columns.forEach((info, c) => {
    for (let r = 0; r < a.rowCount; r++) {
      const x = getCell(info, a.columns[c], r);
      const y = getCell(info, b.columns[c], r);
      // A null reads back as null whether it was written as NaN or as the column's null value.
      const isNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isNaN(v)) || (info.nullValue !== undefined && v === info.nullValue);
      const same = x === y || (isNull(x) && isNull(y));
      if (!same) throw new IppError('demo_failed', `${table.name} column ${info.name} row ${r}: wrote ${String(x)}, read back ${String(y)}`);
      n++;
    }
  });
  return n;
}
