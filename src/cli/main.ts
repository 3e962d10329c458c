#!/usr/bin/env node
// The `ipp` command: parses the command line, runs one subcommand, exits with its code.
import { enableCompileCache } from 'node:module';

// Node's compile cache keeps the type-stripped, compiled modules between runs (in the
// system's temp directory, checked by content): starting `ipp` takes ~0.15 s of CPU instead
// of ~0.5 s, which counts where programs run as short periodic jobs. The modules are loaded
// after it is on.
enableCompileCache();
const { runApp } = await import('./app.ts');
const { rootGroup } = await import('./registry.ts');

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
