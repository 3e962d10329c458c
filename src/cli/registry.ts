import type { CommandGroup } from './command.ts';

/** Every `ipp` subcommand. */
export const rootGroup: CommandGroup = {
  name: 'ipp',
  summary: 'the survey data system: pipeline catalogues to the science archive',
  commands: [],
};
