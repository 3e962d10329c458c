// Longer runs of the FITS fuzzer than the test makes (`npm run fuzz` = 20000 cases).
//
//   node scripts/fuzz.ts [--cases N] [--seed S] [--first I] [--workers W] [--timeout MS]
//                        [--verify-every N] [--save DIR]
//
// Prints what the cases ended with, the error codes raised, the slowest cases, and every
// failure with the command that reruns it alone. Exits 1 when any case failed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildCorpus, formatFailure, makeCase, runFuzz, saveCase } from '../src/fits/testing/fuzz-engine.ts';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    first: { type: 'string', default: '0' },
    workers: { type: 'string', default: '2' },
    timeout: { type: 'string', default: '30000' },
    'verify-every': { type: 'string', default: '8' },
    save: { type: 'string' },
  },
});

function int(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`--${name} must be a whole number >= ${min}, not "${text}"`);
    process.exit(2);
  }
  return n;
}

const seed = int('seed', values.seed, 0);
const cases = int('cases', values.cases, 1);
const first = int('first', values.first, 0);
const dir = await mkdtemp(join(tmpdir(), 'fits-fuzz-'));
try {
  const t0 = performance.now();
  let shown = 0;
  const report = await runFuzz({
    seed, cases, first, dir,
    workers: int('workers', values.workers, 1),
    timeoutMs: int('timeout', values.timeout, 100),
    verifyEvery: int('verify-every', values['verify-every'], 0),
    onProgress: (done, failed) => {
      if (process.stderr.isTTY && (done - shown >= 250 || done === cases)) {
        shown = done;
        process.stderr.write(`\r${done}/${cases} cases, ${failed} failed`);
      }
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - t0) / 1000;
  console.log(`seed ${seed}, cases ${first}..${first + cases - 1}: ${seconds.toFixed(1)} s (${(cases / seconds).toFixed(0)} cases/s)`);
  console.log(`results: ${Object.entries(report.results).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`damage applied: ${Object.entries(report.mutations).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`error codes: ${Object.entries(report.codes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log('slowest cases:');
  for (const s of report.slowest) console.log(`  case ${s.index}: ${s.ms.toFixed(0)} ms (${s.mutations.join(' + ')})`);
  if (report.failures.length === 0) {
    console.log('failures: none');
  } else {
    console.log(`failures: ${report.failures.length}`);
    for (const f of report.failures) console.log(formatFailure(f));
    if (values.save) {
      const corpus = await buildCorpus(join(dir, 'corpus-save'));
      for (const f of report.failures) console.log(`saved ${await saveCase(makeCase(corpus, seed, f.index), values.save)}`);
    }
    process.exitCode = 1;
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
