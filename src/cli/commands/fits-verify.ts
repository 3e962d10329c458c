import { verifyFits } from '../../fits/index.ts';
import { UsageError } from '../../common/index.ts';
import { EXIT, type Command } from '../command.ts';
import { resolveInputPath } from '../file-ref.ts';

export const fitsVerify: Command = {
  name: 'verify',
  summary: 'check a FITS file: structure, keywords, padding, checksums, every table value',
  usage: 'FILE... [--no-decode] [--json]',
  description: 'Exit status: 0 when every file has no errors (warnings allowed), 1 otherwise.',
  options: {
    'no-decode': { type: 'boolean', help: 'check headers and checksums only; do not decode table rows' },
    json: { type: 'boolean', help: 'print one JSON report per file' },
  },
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError('give at least one FITS file: ipp fits verify FILE...');
    let failed = false;
    const reports = [];
    for (const path of args.positionals) {
      const report = await verifyFits(await resolveInputPath(path, ctx.env), {
        decode: !args.values['no-decode'], signal: ctx.signal,
      });
      if (report.errors > 0) failed = true;
      reports.push(report);
      if (!args.values.json) {
        for (const p of report.problems) ctx.stdout.write(`${p.severity.toUpperCase()} [${p.code}] ${p.message}\n`);
        ctx.stdout.write(`${path}: ${report.errors === 0 ? 'OK' : 'FAILED'}: ${report.hdus} HDUs, ${report.checksumsChecked} checksummed, ${report.rowsDecoded} rows decoded, ${report.errors} errors, ${report.warnings} warnings\n`);
      }
    }
    if (args.values.json) ctx.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
    return failed ? EXIT.failed : EXIT.ok;
  },
};
