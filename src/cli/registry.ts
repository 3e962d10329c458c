import type { CommandGroup } from './command.ts';
import { fitsConvert } from './commands/fits-convert.ts';
import { fitsDump } from './commands/fits-dump.ts';
import { fitsHeader } from './commands/fits-header.ts';
import { fitsInfo } from './commands/fits-info.ts';
import { fitsVerify } from './commands/fits-verify.ts';
import { demo } from './commands/demo.ts';
import { simSurvey } from './commands/sim-survey.ts';
import { gpc1Group } from './commands/gpc1.ts';
import { datastoreGroup } from './commands/datastore.ts';
import { nebGroup } from './commands/neb.ts';
import { dvoGroup } from './commands/dvo.ts';
import { pantasksGroup, pclientCommand } from './commands/pantasks.ts';
import { ippToPspsConfigGroup } from './commands/ipptopsps-config.ts';
import { queueCommand } from './commands/ipptopsps-queue.ts';
import { loaderCommand } from './commands/ipptopsps-loader.ts';
import { setupScratchCommand } from './commands/ipptopsps-scratch.ts';
import { datastoreRemoveCommand } from './commands/ipptopsps-datastore-remove.ts';
import { archiveGroup } from './commands/psps-archive.ts';
import { odmGroup } from './commands/psps-odm.ts';
import { dxlayerCommand } from './commands/psps-dxlayer.ts';
import { consoleCommand } from './commands/console.ts';
import { pollodmCommand } from './commands/lifecycle-pollodm.ts';
import { cleanupCommand } from './commands/lifecycle-cleanup.ts';
import { metricsCommand } from './commands/lifecycle-metrics.ts';
import { plotterCommand } from './commands/lifecycle-plotter.ts';

/** `ipp fits ...`: the table tools. */
const fitsGroup: CommandGroup = {
  name: 'fits',
  summary: 'FITS tables: list, show headers, dump, convert (CSV, VOTable, tile compression), verify',
  commands: [fitsInfo, fitsHeader, fitsDump, fitsConvert, fitsVerify],
};

/** Every `ipp` subcommand. */
export const rootGroup: CommandGroup = {
  name: 'ipp',
  summary: 'the survey data system: pipeline catalogues to the science archive',
  commands: [
    demo, fitsGroup, gpc1Group, datastoreGroup, nebGroup, dvoGroup, pantasksGroup, pclientCommand,
    ippToPspsConfigGroup, queueCommand, loaderCommand, setupScratchCommand, datastoreRemoveCommand,
    consoleCommand,
    dxlayerCommand, odmGroup, archiveGroup,
    pollodmCommand, cleanupCommand, metricsCommand, plotterCommand,
    { name: 'sim', summary: 'the survey simulator: smf and cmf catalogues with ground truth', commands: [simSurvey] },
  ],
};
