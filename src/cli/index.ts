// The `ipp` command and its subcommands. Nothing depends on this room.
export { runApp, groupHelp, commandHelp, GLOBAL_OPTIONS } from './app.ts';
export type { AppIo } from './app.ts';
export { rootGroup } from './registry.ts';
export { EXIT } from './command.ts';
export type { Command, CommandGroup, CommandContext, ParsedArgs, OptionSpec } from './command.ts';
