// The ssh back-end against a real sshd on loopback (scripts/test-sshd.sh): pclient reached by
// ssh runs jobs and reports them; a host that refuses the connection is down with ssh's own
// words; a host whose pclient dies gives its jobs back to run elsewhere; a hung job is killed
// on the host; closing the scheduler ends the remote pclient.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SshHostConfig } from './hosts.ts';
import { alive, collect, sleep, withScheduler } from './test-support.ts';

const env = process.env;
const skip = env.IPP_TEST_SSH_PORT && env.IPP_TEST_SSH_KEY ? false
  : 'IPP_TEST_SSH_HOST/PORT/KEY are not set (scripts/test-sshd.sh starts a test sshd and sets them)';
const PCLIENT = `${process.execPath} ${join(import.meta.dirname, '..', 'cli', 'main.ts')} pclient`;

function sshHost(name: string, extra: Partial<SshHostConfig> = {}): SshHostConfig {
  return {
    kind: 'ssh', name, slots: 2, host: env.IPP_TEST_SSH_HOST ?? '127.0.0.1', port: Number(env.IPP_TEST_SSH_PORT), user: env.IPP_TEST_SSH_USER,
    key: env.IPP_TEST_SSH_KEY, pclient: PCLIENT, options: ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null'], ...extra,
  };
}


/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('ssh back-end (pclient over ssh)', { skip }, () => {
  it('refused connections and refused keys make the host down with ssh\'s reason', () => withScheduler(async (s, dir) => {
    await s.addHost(sshHost('refused', { port: await closedPort() }));
    await s.addHost(sshHost('badkey', { key: join(dir, 'no-such-key') }));
    await s.until(() => s.controller.hosts().every((h) => h.state === 'down'), 30_000, 'both down');
    const byName = new Map(s.controller.hosts().map((h) => [h.name, h.detail]));
    assert.match(byName.get('refused')!, /Connection refused/);
    assert.match(byName.get('badkey')!, /Permission denied|no such identity|No such file/i);
  }, { reconnectDelay: 60_000 }));

  it('runs jobs through ssh; a pclient that dies gives its jobs to another host; a hung job is killed there', () => withScheduler(async (s, dir) => {
    const done = collect(s);
    await s.addHost(sshHost('s1'));
    await s.until(() => s.controller.hosts()[0]!.state === 'idle', 30_000, 's1 up');
    s.addTask({ name: 'hello', command: 'echo "on $(hostname) as $IPP_PANTASKS_JOB"; echo warn >&2; exit 3', host: 's1', nmax: 1 });
    const pidFile = join(dir, 'hung.pid');
    s.addTask({ name: 'hung', command: `echo $$ > ${pidFile}; exec sleep 60`, host: 's1', nmax: 1, timeout: 1 });
    await s.run();
    await s.until(() => done.jobs.length === 2, 30_000, 'two jobs');
    const hello = done.of('hello')[0]!.result;
    assert.deepEqual([hello.outcome, hello.status, hello.host, hello.stderr], ['exit', 3, 's1', 'warn\n']);
    assert.match(hello.stdout, new RegExp(`^on \\S+ as ${s.instance}:[0-9]+\\n$`));
    assert.equal(done.of('hung')[0]!.result.outcome, 'timeout');
    await sleep(200);
    assert.equal(alive(Number(await readFile(pidFile, 'utf8'))), false, 'the hung job was killed on the host');

    // s1's pclient dies under two long jobs: they run again on s2.
    const pclientPid = Number(/pclient pid ([0-9]+)/.exec(s.controller.hosts()[0]!.detail)![1]);
    await s.addHost(sshHost('s2'));
    await s.until(() => s.controller.hosts().find((h) => h.name === 's2')?.state === 'idle', 30_000, 's2 up');
    s.addTask({ name: 'long', command: 'sleep 1', host: 's1', nmax: 2, npending: 2, burst: 2 });
    await s.until(() => s.controller.hosts()[0]!.running === 2, 20_000, 'two long jobs on s1');
    process.kill(pclientPid, 'SIGKILL');
    await s.until(() => done.of('long').length === 2, 30_000, 'the long jobs, run again');
    assert.deepEqual(done.of('long').map((j) => [j.result.status, j.result.host]), [[0, 's2'], [0, 's2']]);
    assert.equal(s.controller.hosts().find((h) => h.name === 's1')!.jobsLost, 2);
    const s2Pid = Number(/pclient pid ([0-9]+)/.exec(s.controller.hosts().find((h) => h.name === 's2')!.detail)![1]);
    await s.close();
    await sleep(500);
    assert.equal(alive(s2Pid), false, 'closing the scheduler ends the remote pclient');
  }, { reconnectDelay: 60_000 }));
});
