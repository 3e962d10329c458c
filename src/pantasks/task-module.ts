// Task modules: TypeScript (or JavaScript) files that define tasks. A module's default export
// is a list of task definitions, or a function of the module context that returns one (or a
// promise of one). Built-in modules are named without a path (`gpc1-stages`). A module is
// imported afresh on every load, so an edited file takes effect when loaded again; one that
// fails to import, throws, or returns something that is not a list of tasks is refused with
// a message naming the file, and the tasks it would have replaced stay.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../common/index.ts';
import type { Books } from './book.ts';
import { PantasksError } from './errors.ts';
import type { ModuleLoad, Scheduler } from './scheduler.ts';
import { stageTasks, type StageTasksConfig } from './stage-tasks.ts';
import type { TaskDefinition } from './task.ts';

/** What a task module's default function is given. */
export interface TaskModuleContext {
  /** The configuration the module was loaded with (`client load FILE --config JSON`). */
  readonly config: unknown;
  /** The scheduler's labels now (tasks should read `ctx.labels` at exec time, which follows changes). */
  readonly labels: readonly string[];
  readonly books: Books;
  readonly log: Logger;
  /** The directory of the module file. */
  readonly dir: string;
  /** Registers a clean-up (closing a database) run when the module is unloaded or replaced. */
  onClose(fn: () => Promise<void> | void): void;
  /** The gpc1 stage tasks (load, run, revert, advance per stage). */
  stageTasks(config: StageTasksConfig): TaskDefinition[];
}

/** The default export of a task module. */
export type TaskModuleExport = readonly TaskDefinition[] | ((ctx: TaskModuleContext) => readonly TaskDefinition[] | Promise<readonly TaskDefinition[]>);

const BUILT_IN_DIR = join(import.meta.dirname, 'modules');
let loads = 0;

/** The file a module name or path means: a path (relative to `cwd`), or a built-in module's name. */
export function resolveModule(module: string, cwd: string): string {
  if (typeof module !== 'string' || module === '') throw new PantasksError('pantasks_task_module_failed', 'give a task module: a .ts or .js file, or a built-in name such as gpc1-stages');
  if (/^[a-z0-9][a-z0-9-]*$/.test(module)) {
    const file = join(BUILT_IN_DIR, `${module}.ts`);
    if (!existsSync(file)) throw new PantasksError('pantasks_task_module_failed', `there is no built-in task module ${module}; give a file path (./tasks.ts)`);
    return file;
  }
  return isAbsolute(module) ? module : resolve(cwd, module);
}

/** Imports a task module and returns its tasks. */
export async function loadTaskModule(module: string, config: unknown, scheduler: Scheduler, log: Logger): Promise<ModuleLoad> {
  const file = resolveModule(module, process.cwd());
  if (!existsSync(file)) throw new PantasksError('pantasks_task_module_failed', `task module ${file} does not exist`);
  const closers: (() => Promise<void> | void)[] = [];
  const close = async (): Promise<void> => {
    for (const fn of closers.splice(0).reverse()) await fn();
  };
  try {
    let exported: unknown;
    try {
      const ns = await import(`${pathToFileURL(file).href}?load=${++loads}`) as { default?: unknown };
      exported = ns.default;
    } catch (cause) {
      throw new PantasksError('pantasks_task_module_failed', `task module ${file} failed to load: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    }
    const ctx: TaskModuleContext = {
      config, labels: scheduler.labels, books: scheduler.books, log: log.child(module), dir: dirname(file),
      onClose: (fn) => closers.push(fn),
      stageTasks: (c) => stageTasks(c, { books: scheduler.books, onClose: (fn) => closers.push(fn) }),
    };
    let tasks: unknown;
    try {
      tasks = typeof exported === 'function' ? await (exported as (c: TaskModuleContext) => unknown)(ctx) : exported;
    } catch (cause) {
      throw new PantasksError('pantasks_task_module_failed', `task module ${file} threw: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    }
    if (!Array.isArray(tasks)) {
      throw new PantasksError('pantasks_task_module_failed', `task module ${file}: its default export must be a list of tasks or a function returning one, not ${tasks === undefined ? 'nothing' : typeof tasks}`);
    }
    return { tasks: tasks as TaskDefinition[], close };
  } catch (error) {
    await close();
    throw error;
  }
}
