import { FitsFile, formatCard } from '../../fits/index.ts';
import { UsageError } from '../../common/index.ts';
import { EXIT, type Command } from '../command.ts';
import { resolveFileRef } from '../file-ref.ts';
import { resolveHdu } from './fits-shared.ts';

export const fitsHeader: Command = {
  name: 'header',
  summary: 'print the header of one HDU (or of all with --all)',
  usage: 'FILE[EXT] [--keyword K] [--all] [--json]',
  description: 'EXT is an index (0 = primary) or an EXTNAME, optionally with EXTVER: file.fits[XY01.psf,1].\nWithout EXT, the primary header is shown.',
  options: {
    keyword: { type: 'string', value: 'K', help: 'print only this keyword\'s value (exit 1 if missing)' },
    all: { type: 'boolean', help: 'print the headers of every HDU' },
    json: { type: 'boolean', help: 'print cards as JSON: keyword, value, comment' },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('give one file: ipp fits header FILE[EXT]');
    const ref = await resolveFileRef(args.positionals[0], ctx.env);
    await using file = await FitsFile.open(ref.path);
    const hdus = args.values.all ? [...file.hdus] : [resolveHdu(file, ref, 0)];
    const keyword = args.values.keyword as string | undefined;
    if (keyword !== undefined) {
      const h = hdus[0].header;
      if (!h.has(keyword)) {
        ctx.stderr.write(`${ref.path}: HDU ${hdus[0].index}: no keyword ${keyword}\n`);
        return EXIT.failed;
      }
      const v = h.get(keyword);
      ctx.stdout.write(`${args.values.json ? JSON.stringify(typeof v === 'bigint' ? v.toString() : v) : String(v)}\n`);
      return EXIT.ok;
    }
    if (args.values.json) {
      const out = hdus.map((h) => ({
        hdu: h.index,
        cards: h.header.cards.map((c) => ({
          keyword: c.keyword,
          ...(c.value !== undefined ? { value: typeof c.value === 'bigint' ? c.value.toString() : c.value } : {}),
          ...(c.comment !== undefined ? { comment: c.comment } : {}),
        })),
      }));
      ctx.stdout.write(`${JSON.stringify(args.values.all ? out : out[0], null, 2)}\n`);
      return EXIT.ok;
    }
    for (const h of hdus) {
      if (args.values.all) ctx.stdout.write(`# HDU ${h.index}${h.extname ? ` ${h.extname}` : ''}\n`);
      let text = '';
      for (const card of h.header.cards) {
        const f = formatCard(card);
        for (let i = 0; i < f.length; i += 80) text += `${f.slice(i, i + 80).trimEnd()}\n`;
      }
      ctx.stdout.write(`${text}END\n`);
    }
    return EXIT.ok;
  },
};
