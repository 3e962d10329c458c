// The Slurm back-end against a single-node Slurm (scripts/test-slurm.sh): exit statuses and
// output come back, a missing command exits 127, a job killed by a signal is a crash, a hung
// job is cancelled at its timeout, and a partition that does not exist is a down host.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, withScheduler } from './test-support.ts';

const skip = process.env.IPP_TEST_SLURM === '1' ? false
  : `IPP_TEST_SLURM is not set (scripts/test-slurm.sh starts a single-node Slurm and sets it)${process.env.IPP_TEST_SLURM_SKIP ? `: ${process.env.IPP_TEST_SLURM_SKIP}` : ''}`;
const partition = process.env.IPP_TEST_SLURM_PARTITION;

describe('Slurm back-end (sbatch, squeue, scontrol)', { skip }, () => {
  it('runs jobs as batch jobs and reports status, output, missing commands, crashes and timeouts', () => withScheduler(async (s, dir) => {
    const done = collect(s);
    const spool = join(dir, 'spool');
    await s.addHost({ kind: 'slurm', name: 'cluster', slots: 10, partition, pollInterval: 150, spoolDir: spool });
    await s.addHost({ kind: 'slurm', name: 'nowhere', partition: 'no_such_partition', spoolDir: spool });
    await s.until(() => s.controller.hosts().every((h) => h.state === 'idle' || h.state === 'down'), 20_000, 'hosts checked');
    const hosts = new Map(s.controller.hosts().map((h) => [h.name, h]));
    assert.equal(hosts.get('cluster')!.state, 'idle');
    assert.equal(hosts.get('nowhere')!.state, 'down');
    assert.match(hosts.get('nowhere')!.detail, /no_such_partition/);

    s.addTask({ name: 'ok', command: ['sh', '-c', 'echo "out $IPP_PANTASKS_JOB"; echo err >&2; exit 5'], host: 'cluster', hostNeed: 'needed', nmax: 1 });
    s.addTask({ name: 'quoted', command: ['printf', '%s|', "it's", 'a b', '$HOME'], host: 'cluster', hostNeed: 'needed', nmax: 1 });
    s.addTask({ name: 'missing', command: ['/no/such/program'], host: 'cluster', hostNeed: 'needed', nmax: 1 });
    s.addTask({ name: 'crash', command: 'kill -KILL $$', host: 'cluster', hostNeed: 'needed', nmax: 1 });
    s.addTask({ name: 'hung', command: ['sleep', '60'], host: 'cluster', hostNeed: 'needed', nmax: 1, timeout: 2 });
    await s.run();
    await s.until(() => done.jobs.length === 5, 60_000, 'five Slurm jobs');
    const one = (name: string) => done.of(name)[0]!.result;
    assert.deepEqual([one('ok').outcome, one('ok').status, one('ok').host, one('ok').stderr], ['exit', 5, 'cluster', 'err\n']);
    assert.match(one('ok').stdout, new RegExp(`^out ${s.instance}:[0-9]+\\n$`));
    assert.equal(one('quoted').stdout, "it's|a b|$HOME|", 'arguments reach the program as they were given');
    assert.equal(one('missing').status, 127);
    assert.match(one('missing').stderr, /not found|No such file/);
    assert.deepEqual([one('crash').outcome, one('crash').signal], ['crash', 'SIGKILL']);
    assert.equal(one('hung').outcome, 'timeout');
    assert.equal(hosts.get('cluster')!.jobsDone + 5, s.controller.hosts().find((h) => h.name === 'cluster')!.jobsDone);
    const left = (await readdir(join(spool)).catch(() => [])).filter((f) => !f.startsWith('.'));
    assert.deepEqual(left, [], 'scripts, outputs and statuses are cleaned up');
  }));
});
