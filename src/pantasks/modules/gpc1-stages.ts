// Built-in task module: the gpc1 stage tasks, configured by the JSON given when it is loaded
// (`ipp pantasks client load gpc1-stages --config stages.json`); see stage-tasks.ts.
import type { StageTasksConfig } from '../stage-tasks.ts';
import type { TaskModuleContext } from '../task-module.ts';

export default (ctx: TaskModuleContext) => ctx.stageTasks(ctx.config as StageTasksConfig);
