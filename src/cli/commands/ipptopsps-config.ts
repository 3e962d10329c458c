// `ipp config ...`: loading configs without prompts, for scripts and the demo (the programs'
// `edit` argument is the interactive way).
import { UsageError } from '../../common/index.ts';
import {
  CONFIG_FIELDS, configToJson, getConfig, listConfigs, openIppToPsps, saveConfig, setConfigActive, type LoadingConfig,
} from '../../ipptopsps/index.ts';
import { EXIT, type Command, type CommandContext, type CommandGroup, type ParsedArgs } from '../command.ts';
import { IPPTOPSPS_OPTIONS, ippToPspsSettings } from './ipptopsps-shared.ts';

const dbOptions = { db: IPPTOPSPS_OPTIONS.db, settings: IPPTOPSPS_OPTIONS.settings };

async function withTracking<T>(args: ParsedArgs, ctx: CommandContext, fn: (db: Awaited<ReturnType<typeof openIppToPsps>>) => Promise<T>): Promise<T> {
  const settings = await ippToPspsSettings(args, ctx.env);
  const db = await openIppToPsps(settings.trackingDb);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

function showConfig(config: LoadingConfig): string {
  const json = configToJson(config);
  const width = Math.max(...Object.keys(json).map((k) => k.length));
  return `${Object.entries(json).map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

const configSet: Command = {
  name: 'set',
  summary: 'create or change a loading config: ipp config set NAME field=value...',
  usage: 'NAME field=value... [--json]',
  description: `A new config needs every field without a default. Fields:\n${CONFIG_FIELDS.map((f) =>
    `  ${f.name} (${f.sqlType})${f.defaultText !== undefined ? ` default '${f.defaultText}'` : ''}: ${f.help}`).join('\n')}`,
  options: { ...dbOptions, json: { type: 'boolean', help: 'print the saved config as JSON' } },
  async run(args, ctx) {
    const [name, ...pairs] = args.positionals;
    if (!name) throw new UsageError('give the config name: ipp config set NAME field=value...');
    const texts: Record<string, string> = {};
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`"${pair}" is not field=value`);
      texts[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const saved = await withTracking(args, ctx, (db) => saveConfig(db, name, texts));
    ctx.stdout.write(args.values.json ? `${JSON.stringify(configToJson(saved))}\n` : showConfig(saved));
    return EXIT.ok;
  },
};

const configShow: Command = {
  name: 'show',
  summary: 'show one loading config',
  usage: 'NAME [--json]',
  options: { ...dbOptions, json: { type: 'boolean', help: 'print JSON' } },
  async run(args, ctx) {
    const name = args.positionals[0];
    if (!name || args.positionals.length > 1) throw new UsageError('give one config name: ipp config show NAME');
    const config = await withTracking(args, ctx, (db) => getConfig(db, name));
    ctx.stdout.write(args.values.json ? `${JSON.stringify(configToJson(config))}\n` : showConfig(config));
    return EXIT.ok;
  },
};

const configLs: Command = {
  name: 'ls',
  summary: 'list the loading configs',
  usage: '[--json] [--active]',
  options: { ...dbOptions, json: { type: 'boolean', help: 'print JSON' }, active: { type: 'boolean', help: 'only active configs' } },
  async run(args, ctx) {
    const configs = await withTracking(args, ctx, (db) => listConfigs(db, { activeOnly: Boolean(args.values.active) }));
    if (args.values.json) {
      ctx.stdout.write(`${JSON.stringify({ configs: configs.map(configToJson) })}\n`);
    } else {
      for (const c of configs) {
        ctx.stdout.write(`${c.name}\t${c.active ? 'active' : 'inactive'}\t${c.datastore_product}\t${c.dvo_label}\tra ${c.min_ra}..${c.max_ra} dec ${c.min_dec}..${c.max_dec}\t${c.batch_types.join(',')}\n`);
      }
    }
    return EXIT.ok;
  },
};

const activation = (active: boolean): Command => ({
  name: active ? 'activate' : 'deactivate',
  summary: active ? "mark a config active (programs run with 'all' take it)" : "mark a config inactive ('all' skips it)",
  usage: 'NAME',
  options: dbOptions,
  async run(args, ctx) {
    const name = args.positionals[0];
    if (!name || args.positionals.length > 1) throw new UsageError(`give one config name: ipp config ${active ? 'activate' : 'deactivate'} NAME`);
    const config = await withTracking(args, ctx, (db) => setConfigActive(db, name, active));
    ctx.stdout.write(`config ${config.name} is ${config.active ? 'active' : 'inactive'}\n`);
    return EXIT.ok;
  },
});

/** `ipp config ...`: the loading configs of ippToPsps. */
export const ippToPspsConfigGroup: CommandGroup = {
  name: 'config',
  summary: 'ippToPsps loading configs: set, show, ls, activate, deactivate',
  commands: [configSet, configShow, configLs, activation(true), activation(false)],
};
