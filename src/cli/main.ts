#!/usr/bin/env node
// The `ipp` command: parses the command line, runs one subcommand, exits with its code.
import { runApp } from './app.ts';
import { rootGroup } from './registry.ts';

const controller = new AbortController();
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort();
  });
}
// A closed pipe (ipp ... | head) is a normal end, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const code = await runApp(rootGroup, process.argv.slice(2), {
  stdout: process.stdout, stderr: process.stderr, signal: controller.signal, env: process.env, stdin: process.stdin,
});
process.exitCode = code;
