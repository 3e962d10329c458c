import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runApp } from './app.ts';
import { IppError } from '../common/index.ts';
import type { CommandGroup } from './command.ts';

function capture() {
  let text = '';
  return { stream: { write: (s: string) => { text += s; } }, text: () => text };
}

const group: CommandGroup = {
  name: 'ipp',
  summary: 'test root',
  commands: [{
    name: 'demo-group',
    summary: 'a group',
    commands: [{
      name: 'fail',
      summary: 'fails on purpose',
      usage: 'WHAT',
      options: { deep: { type: 'boolean', help: 'wrap the error' }, dec: { type: 'string', help: 'a value' } },
      async run(args) {
        const inner = new IppError('inner_code', 'the inner reason');
        if (args.values.deep) throw new IppError('outer_code', `could not do ${args.positionals[0]}`, { cause: inner });
        throw inner;
      },
    }],
  }],
};

test('errors print one line with the code; --verbose adds the causes', async () => {
  const out = capture();
  const err = capture();
  assert.equal(await runApp(group, ['demo-group', 'fail', 'x', '--deep'], { stdout: out.stream, stderr: err.stream }), 1);
  assert.equal(err.text(), 'ipp demo-group fail: error [outer_code]: could not do x\n');
  const err2 = capture();
  await runApp(group, ['demo-group', 'fail', 'x', '--deep', '--verbose'], { stdout: out.stream, stderr: err2.stream });
  assert.match(err2.text(), /caused by: \[inner_code\] the inner reason/);
});

test('unknown commands and options are usage errors (exit 2)', async () => {
  const err = capture();
  const io = { stdout: capture().stream, stderr: err.stream };
  assert.equal(await runApp(group, ['nope'], io), 2);
  assert.match(err.text(), /unknown command "nope"/);
  assert.equal(await runApp(group, ['demo-group', 'fail', '--bogus'], io), 2);
  assert.match(err.text(), /\[usage\]: Unknown option '--bogus'; run "ipp demo-group fail --help" for usage\n$/);
  // A negative value: the message says how to write it.
  assert.equal(await runApp(group, ['demo-group', 'fail', '--dec', '-10'], io), 2);
  assert.match(err.text(), /--dec needs a value; a value that starts with "-" is written --dec=-VALUE \(e\.g\. --dec=-10\)/);
  assert.equal(await runApp(group, ['demo-group', 'fail', '--dec'], io), 2);
  assert.match(err.text(), /Option '--dec <value>' argument missing; run/);
});

test('help for groups and commands', async () => {
  const out = capture();
  assert.equal(await runApp(group, ['--help'], { stdout: out.stream, stderr: capture().stream }), 0);
  assert.match(out.text(), /demo-group\s+a group/);
  const out2 = capture();
  assert.equal(await runApp(group, ['demo-group', 'fail', '--help'], { stdout: out2.stream, stderr: capture().stream }), 0);
  assert.match(out2.text(), /Usage: ipp demo-group fail WHAT/);
  assert.match(out2.text(), /--deep\s+wrap the error/);
});

test('the real ipp binary answers --help on Node 24', () => {
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const r = spawnSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ipp: /);
});
