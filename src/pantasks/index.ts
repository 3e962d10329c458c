// The scheduler room: pantasks (tasks, books and pages), pcontrol (hosts, slots, jobs),
// pclient, the ssh and Slurm back-ends, the server and its client, and the gpc1 stage tasks.
export { PantasksError } from './errors.ts';
export type { PantasksErrorCode } from './errors.ts';
export { Book, Books, PAGE_STATES, FINISHED_STATES, checkPageState } from './book.ts';
export type { Page, PageWord, PageWords } from './book.ts';
export { BookStore } from './book-store.ts';
export type { StoredPage } from './book-store.ts';
export { PANTASKS_MIGRATIONS } from './migrations.ts';
export { parseTimeRange, timeRangesAllow, countTimeRangeRun } from './time-range.ts';
export type { TimeRange, TimeRangeKind, TimeRangeSpec } from './time-range.ts';
export { commandText, DEFAULT_CAPTURE_LIMIT } from './job.ts';
export type {
  HostChoice, HostNeed, JobCommand, JobOutcome, JobResult, JobSpec, JobState, OutputDestination, RunEvents, RunRequest,
} from './job.ts';
export { checkTaskDefinition, resolveOptions } from './task.ts';
export type { FinishedJob, JobHandler, TaskContext, TaskDefinition, TaskOptions, TaskStatus } from './task.ts';
export { runProcess, killGroup } from './process-runner.ts';
export { runPclient, PCLIENT_VERSION } from './pclient.ts';
export type { PclientEvent, PclientIo, PclientRequest } from './pclient.ts';
export { PclientHost, sshArgv } from './pclient-host.ts';
export type { PclientHostOptions, SshTarget } from './pclient-host.ts';
export { SlurmHost } from './slurm-host.ts';
export type { SlurmHostOptions } from './slurm-host.ts';
export type { AdoptedJob, HostDriver, HostEvents } from './host-driver.ts';
export { Controller } from './controller.ts';
export type { ControlledJob, ControllerOptions, HostState, HostStatus } from './controller.ts';
export { checkHostConfig, createHostDriver } from './hosts.ts';
export type { HostConfig, PclientHostConfig, SlurmHostConfig, SshHostConfig } from './hosts.ts';
export { JOB_MARKER, LOCAL_MARKER, Scheduler, killMarkedProcesses } from './scheduler.ts';
export type { BookStatus, JobStatus, ModuleLoad, ModuleStatus, SchedulerOptions, SchedulerStatus } from './scheduler.ts';
export { fillCommand, refreshBook, stageTasks } from './stage-tasks.ts';
export type { PeriodicProgram, StageCommands, StageTasksConfig, StageTasksContext } from './stage-tasks.ts';
export { loadTaskModule, resolveModule } from './task-module.ts';
export type { TaskModuleContext, TaskModuleExport } from './task-module.ts';
export { startPantasksServer, pantasksStatusOf } from './server.ts';
export type { PantasksServer, PantasksServerOptions } from './server.ts';
export { PantasksClient } from './client.ts';
export type { BookListing } from './client.ts';
