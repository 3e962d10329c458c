// `--help` (or `-h`) for every benchmark script: prints the script's leading comment, which
// says what it measures, against which peer, and its arguments, then exits. Imported for that
// effect by lib.ts, which every benchmark imports, and by the child-process scripts.
import { readFileSync } from 'node:fs';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const script = process.argv[1] ?? '';
  const lines = readFileSync(script, 'utf8').split('\n');
  const head: string[] = [];
  for (const line of lines) {
    if (!line.startsWith('//')) break;
    head.push(line.replace(/^\/\/ ?/, ''));
  }
  process.stdout.write(`${head.join('\n')}\n`);
  process.exit(0);
}
