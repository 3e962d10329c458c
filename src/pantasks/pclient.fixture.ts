// pclient without the CLI around it (quicker to start), for tests of hosts on this machine.
import { runPclient } from './pclient.ts';

process.exitCode = await runPclient({ input: process.stdin, output: process.stdout, env: process.env });
