import { parseArgs } from 'node:util';
import { causeChain, createLogger, isIppError, LOG_LEVELS, UsageError, type LogLevel } from '../common/index.ts';
import { EXIT, isGroup, type Command, type CommandContext, type CommandGroup, type OptionSpec } from './command.ts';

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', help: 'show help for this command' },
  verbose: { type: 'boolean', short: 'v', help: 'on error, print the chain of causes; log at debug level' },
  'log-level': { type: 'string', value: 'LEVEL', help: `log level: ${LOG_LEVELS.join(', ')} (default info)` },
};

/** Streams and signal the app runs with (injectable for tests). */
export interface AppIo {
  stdout: CommandContext['stdout'];
  stderr: CommandContext['stderr'];
  signal?: AbortSignal;
  /** The environment settings are read from (default: none). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Interactive input (default: none). */
  stdin?: CommandContext['stdin'];
}

/** Runs `ipp` with the given arguments; resolves to the exit code. Never throws. */
export async function runApp(root: CommandGroup, argv: readonly string[], io: AppIo): Promise<number> {
  const path: string[] = [root.name];
  let entry: Command | CommandGroup = root;
  let rest = [...argv];
  const verboseWanted = rest.includes('--verbose') || rest.includes('-v');
  try {
    while (isGroup(entry)) {
      const word: string | undefined = rest[0];
      if (word === undefined || word === '--help' || word === '-h' || word === 'help') {
        io.stdout.write(groupHelp(entry, path));
        return word === undefined && entry !== root ? EXIT.usage : EXIT.ok;
      }
      if (word === '--version') {
        io.stdout.write(`${root.name} 0.1.0 (node ${process.versions.node})\n`);
        return EXIT.ok;
      }
      const next: Command | CommandGroup | undefined = entry.commands.find((c) => c.name === word);
      if (!next) {
        throw new UsageError(`unknown command "${[...path.slice(1), word].join(' ')}"; run "${path.join(' ')} --help" to list the commands`);
      }
      entry = next;
      path.push(word);
      rest = rest.slice(1);
    }
    const command: Command = entry;
    const options = { ...GLOBAL_OPTIONS, ...command.options };
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, {
          type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}),
          ...(o.default !== undefined ? { default: o.default } : {}),
        }])) as never,
        allowPositionals: true,
        strict: true,
      });
    } catch (cause) {
      throw new UsageError(`${parseProblem(cause as Error)}; run "${path.join(' ')} --help" for usage`, { cause });
    }
    const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
    if (values.help) {
      io.stdout.write(commandHelp(command, path));
      return EXIT.ok;
    }
    const level = (values['log-level'] as string | undefined) ?? (values.verbose ? 'debug' : 'info');
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new UsageError(`--log-level "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
    }
    const log = createLogger({ level: level as LogLevel, sinks: [io.stderr] });
    const context: CommandContext = {
      log, stdout: io.stdout, stderr: io.stderr,
      signal: io.signal ?? new AbortController().signal,
      verbose: Boolean(values.verbose),
      env: io.env ?? {},
      stdin: io.stdin,
    };
    return await command.run({ values, positionals: parsed.positionals }, context);
  } catch (error) {
    return reportError(error, io, verboseWanted, path);
  }
}

/** The option parser's complaint in one line, with the way out where it gave one. */
function parseProblem(error: Error): string {
  const lines = error.message.split('\n');
  const ambiguous = /^Option '(--?[\w-]+)' argument is ambiguous/.exec(lines[0]);
  // A value starting with a dash (a negative number, a southern declination) is read as an option.
  if (ambiguous) return `${ambiguous[1]} needs a value; a value that starts with "-" is written ${ambiguous[1]}=-VALUE (e.g. ${ambiguous[1]}=-10)`;
  const unknown = /^(Unknown option '[^']+')/.exec(lines[0]);
  if (unknown) return unknown[1];
  return lines[0].replace(/\.$/, '');
}

function reportError(error: unknown, io: AppIo, verbose: boolean, path: string[]): number {
  if (error instanceof Error && error.name === 'AbortError') {
    io.stderr.write(`${path.join(' ')}: interrupted\n`);
    return EXIT.interrupted;
  }
  if (isIppError(error)) {
    io.stderr.write(`${path.join(' ')}: error [${error.code}]: ${error.message}\n`);
    if (verbose) for (const line of causeChain(error).slice(1)) io.stderr.write(`  caused by: ${line}\n`);
    return error.usage ? EXIT.usage : EXIT.failed;
  }
  // A bug, not bad input: say so, with the stack, so it can be reported.
  io.stderr.write(`${path.join(' ')}: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
  return EXIT.failed;
}

/** Help text of a group: its commands with their summaries. */
export function groupHelp(group: CommandGroup, path: string[]): string {
  const width = Math.max(...group.commands.map((c) => c.name.length), 8);
  const lines = [
    `${path.join(' ')}: ${group.summary}`,
    '',
    `Usage: ${path.join(' ')} <command> [options]`,
    '',
    'Commands:',
    ...group.commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run "${path.join(' ')} <command> --help" for a command's options.`,
    '',
  ];
  return lines.join('\n');
}

/** Help text of a command: usage, description, options. */
export function commandHelp(command: Command, path: string[]): string {
  const all = { ...command.options, ...GLOBAL_OPTIONS };
  const flag = (name: string, o: OptionSpec): string =>
    `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  const width = Math.max(...Object.entries(all).map(([n, o]) => flag(n, o).length));
  const lines = [
    `${path.join(' ')}: ${command.summary}`,
    '',
    `Usage: ${path.join(' ')} ${command.usage}`,
    '',
    ...(command.description ? [command.description.trim(), ''] : []),
    'Options:',
    ...Object.entries(all).map(([n, o]) => `  ${flag(n, o).padEnd(width)}  ${o.help}${o.default !== undefined && o.default !== false ? ` (default ${o.default})` : ''}`),
    '',
  ];
  return lines.join('\n');
}
