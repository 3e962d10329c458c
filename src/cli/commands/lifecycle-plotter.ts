// `ipp plotter <config> density [--out DIR]`: the guide's plotter.py.
import { UsageError } from '../../common/index.ts';
import { writeDensityPlots, type DensityPlot } from '../../ipptopsps/index.ts';
import { EXIT, type Command } from '../command.ts';
import { IPPTOPSPS_OPTIONS, ippToPspsSettings, runProgramCommand } from './ipptopsps-shared.ts';

const PLOT_KINDS = ['density'];

/** `ipp plotter`: sky density maps of the items still pending. */
export const plotterCommand: Command = {
  name: 'plotter',
  summary: 'ippToPsps: sky density maps of the queue items still pending, one PNG per batch type',
  usage: '<config|all|edit> density [--out DIR] [--cell DEG] [--type P2,ST,OB] [--json]',
  description: [
    "Bins the pending items of each batch type over the config's RA/Dec region (cells of the",
    "config's box size, halved or doubled to give 20-400 cells across, or --cell) and saves",
    '<config>_<batchType>_<timestamp>.png in --out (default: the current directory).',
    'Example: ipp plotter newsa3 density',
  ].join('\n'),
  options: {
    db: IPPTOPSPS_OPTIONS.db, settings: IPPTOPSPS_OPTIONS.settings,
    out: { type: 'string', value: 'DIR', help: 'where the PNG files go (default: the current directory)' },
    cell: { type: 'string', value: 'DEG', help: 'cell size in degrees' },
    type: { type: 'string', value: 'TYPES', help: 'batch types to plot, comma-separated (default: the config\'s)' },
    json: { type: 'boolean', help: 'print the files written as JSON' },
  },
  async run(args, ctx) {
    const [configArg, kind, ...extra] = args.positionals;
    if (!configArg || !kind) throw new UsageError('usage: ipp plotter <config> density [--out DIR]');
    if (!PLOT_KINDS.includes(kind)) throw new UsageError(`plot "${kind}" is not known; plots: ${PLOT_KINDS.join(', ')}`);
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    let cellSize: number | undefined;
    if (typeof args.values.cell === 'string') {
      cellSize = Number(args.values.cell);
      if (!(cellSize > 0) || !Number.isFinite(cellSize)) throw new UsageError(`--cell must be a positive number of degrees, not "${args.values.cell}"`);
    }
    const types = typeof args.values.type === 'string' ? args.values.type.split(',').map((t) => t.trim()).filter(Boolean) : undefined;
    for (const t of types ?? []) if (!['P2', 'ST', 'OB', 'IN'].includes(t)) throw new UsageError(`batch type "${t}" is not one of P2, ST, OB, IN`);
    const dir = typeof args.values.out === 'string' ? args.values.out : '.';
    const written: DensityPlot[] = [];
    const settings = await ippToPspsSettings(args, ctx.env);
    await runProgramCommand(args, ctx, { program: 'plotter', configArg, logToStderr: true }, async (config, p) => {
      const plots = await writeDensityPlots(p.db, config, { dir, cellSize, ...(types ? { batchTypes: types } : {}) });
      written.push(...plots);
    }, settings);
    if (args.values.json) {
      ctx.stdout.write(`${JSON.stringify(written.map((w) => ({ batchType: w.batchType, path: w.path, pending: w.pending })))}\n`);
    } else {
      for (const w of written) ctx.stdout.write(`${w.path}  (${w.batchType}: ${w.pending} pending)\n`);
    }
    return EXIT.ok;
  },
};
