// A simulated night through the stages on each back-end: exposures registered in gpc1, the
// stage tasks drive chip → camera → fake → warp with the stand-in (some components fault,
// are reverted and run again), and every exposure reaches the end stage exactly once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { testEngines } from '../db/index.ts';
import type { HostConfig } from './hosts.ts';
import type { Scheduler } from './scheduler.ts';
import { chainRuns, collect, readStandInLog, runNight, withScheduler } from './test-support.ts';

const CHIPS = ['XY01', 'XY02'];
const SKYCELLS = ['skycell.1001', 'skycell.1002'];
const EXPOSURES = 2;

const env = process.env;
const sshSkip = env.IPP_TEST_SSH_PORT && env.IPP_TEST_SSH_KEY ? false
  : 'IPP_TEST_SSH_HOST/PORT/KEY are not set (scripts/test-sshd.sh starts a test sshd and sets them)';
const slurmSkip = env.IPP_TEST_SLURM === '1' ? false
  : `IPP_TEST_SLURM is not set (scripts/test-slurm.sh starts a single-node Slurm and sets it)${env.IPP_TEST_SLURM_SKIP ? `: ${env.IPP_TEST_SLURM_SKIP}` : ''}`;
const pg = testEngines().find((e) => e.name === 'postgres')!;

/** The command that runs `ipp pclient` on the (loopback) ssh host. */
function remotePclient(dir: string): string {
  return `env NODE_COMPILE_CACHE=${join(dir, 'node-cache')} ${process.execPath} ${join(import.meta.dirname, '..', 'cli', 'main.ts')} pclient`;
}

async function night(s: Scheduler, dir: string, gpc1: string, host: string, hostConfig?: HostConfig): Promise<void> {
  const done = collect(s);
  if (hostConfig) {
    await s.addHost(hostConfig);
    await s.until(() => s.controller.hosts().some((h) => h.state === 'idle'), 30_000, `host ${hostConfig.name} up`);
  }
  await runNight({ scheduler: s, dir, gpc1, exposures: EXPOSURES, chips: CHIPS, skycells: SKYCELLS, host, faultEvery: 3, timeoutMs: Number(process.env.NIGHT_TIMEOUT ?? 90_000) });

  const runs = await chainRuns(gpc1);
  for (const stage of ['chip', 'camera', 'fake', 'warp']) {
    const of = runs.filter((r) => r.stage === stage);
    assert.equal(of.length, EXPOSURES, `one ${stage} run per exposure`);
    assert.deepEqual(new Set(of.map((r) => r.exp_id)).size, EXPOSURES);
    assert.ok(of.every((r) => r.state === 'full'), `${stage} runs full: ${JSON.stringify(of)}`);
  }
  const log = await readStandInLog(join(dir, 'stand-in.log'));
  const ok = log.filter((l) => l.what === 'ok').map((l) => `${l.stage} ${l.id} ${l.component}`);
  const expected = EXPOSURES * (CHIPS.length + 1 + CHIPS.length + SKYCELLS.length);
  assert.equal(ok.length, expected, 'every component done once');
  assert.equal(new Set(ok).size, expected, `no component done twice: ${ok.join('; ')}`);
  assert.ok(log.some((l) => l.what === 'fault'), 'some components faulted and were reverted');
  assert.equal(log.filter((l) => l.what === 'map').length, EXPOSURES, 'each warp run mapped once');
  const stageJobs = done.jobs.filter((j) => j.task.endsWith('.run'));
  assert.ok(stageJobs.length >= expected + EXPOSURES);
  assert.ok(stageJobs.every((j) => j.result.host === (host === 'local' ? 'local' : hostConfig!.name)), 'every job ran on the back-end under test');
  const failed = stageJobs.filter((j) => j.result.status !== 0);
  assert.ok(failed.length > 0 && failed.every((j) => j.result.status === 3 && /simulated fault/.test(j.result.stderr)), 'the only failures are the simulated faults');
  assert.equal(s.status().books.reduce((n, b) => n + (b.states.RUN ?? 0), 0), 0, 'no page left in RUN');
}

describe('a simulated night through chip → camera → fake → warp', () => {
  it('on local child processes', () => withScheduler((s, dir) => night(s, dir, `sqlite:${join(dir, 'gpc1.db')}`, 'local'),
    { env: { ...env, NODE_COMPILE_CACHE: '/tmp/ipp-pantasks-node-cache' } }));

  it('on a host reached by ssh, running ipp pclient', { skip: sshSkip }, () => withScheduler((s, dir) => night(s, dir, `sqlite:${join(dir, 'gpc1.db')}`, 'anyhost', {
    kind: 'ssh', name: 'ssh1', slots: 6, host: env.IPP_TEST_SSH_HOST ?? '127.0.0.1', port: Number(env.IPP_TEST_SSH_PORT), user: env.IPP_TEST_SSH_USER,
    key: env.IPP_TEST_SSH_KEY, pclient: remotePclient('/tmp/ipp-pantasks-node-cache'), options: ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null'],
  })));

  it(`on Slurm (gpc1 on ${pg.skip ? 'SQLite' : 'PostgreSQL'})`, { skip: slurmSkip }, () => withScheduler(async (s, dir) => {
    const host: HostConfig = { kind: 'slurm', name: 'slurm1', slots: 8, pollInterval: 200, partition: env.IPP_TEST_SLURM_PARTITION };
    if (pg.skip) await night(s, dir, `sqlite:${join(dir, 'gpc1.db')}`, 'anyhost', host);
    else await pg.withUrl((url) => night(s, dir, url, 'anyhost', host));
  }, { env: { ...env, NODE_COMPILE_CACHE: '/tmp/ipp-pantasks-node-cache' } }));
});
