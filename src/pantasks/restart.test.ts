// pantasks killed (-9) in the middle of a stage and started again on the same database: it
// comes back with its labels, hosts and modules; local jobs left running by the dead server
// are killed and their pages reset; Slurm jobs that still run are taken back, not run again.
// Either way every component of gpc1 is recorded exactly once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { PantasksClient } from './client.ts';
import type { HostConfig } from './hosts.ts';
import {
  alive, chainRuns, nightConfig, readStandInLog, registerNight, sleep, startServerProcess, type ServerProcess,
} from './test-support.ts';

const CHIPS = ['XY01', 'XY02'];
const EXPOSURES = 2;
const env = { ...process.env, NODE_COMPILE_CACHE: '/tmp/ipp-pantasks-node-cache' };
const slurmSkip = process.env.IPP_TEST_SLURM === '1' ? false : 'IPP_TEST_SLURM is not set (scripts/test-slurm.sh starts a single-node Slurm and sets it)';


async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Kills the server mid-stage, starts it again, and checks the chip stage ends with each component done once. */
async function killAndRestart(dir: string, host: string, hostConfig: HostConfig | null): Promise<{ starts: number; pidsBefore: number[] }> {
  const gpc1 = `sqlite:${join(dir, 'gpc1.db')}`;
  const db = `sqlite:${join(dir, 'pantasks.db')}`;
  const logFile = join(dir, 'stand-in.log');
  await registerNight(gpc1, EXPOSURES, CHIPS);
  const full = nightConfig({ dir, gpc1, skycells: ['s1'], host, faultEvery: 0, extra: ['--sleep', '4000', '--slow-dir', join(dir, 'slow')] });
  const config = { ...full, stages: { chip: { ...full.stages.chip!, advance: true } } };
  let server: ServerProcess = await startServerProcess(db, ['--label', 'night'], env);
  try {
    let client = new PantasksClient(server.url);
    if (hostConfig) await client.addHost(hostConfig);
    await client.load('gpc1-stages', config);
    await client.run();
    await waitFor('two chip jobs started', 30_000, async () => (await readStandInLog(logFile)).filter((l) => l.what === 'start').length >= 2);
    const before = await client.status();
    assert.ok((before.books.find((b) => b.name === 'chipPending')?.states.RUN ?? 0) >= 2);
    await server.kill('SIGKILL');
    const pidsBefore = (await readFile(logFile)).filter((l) => l.includes(' start ')).map((l) => Number(l.split(' ').pop()));

    server = await startServerProcess(db, [], env);
    client = new PantasksClient(server.url);
    const after = await client.status();
    assert.deepEqual(after.labels, ['night'], 'labels kept');
    assert.equal(after.running, true, 'still running');
    assert.deepEqual(after.modules.map((m) => [m.module, m.error]), [['gpc1-stages', null]], 'the module is loaded again');
    if (hostConfig) assert.deepEqual(after.hosts.map((h) => h.name), [hostConfig.name], 'hosts kept');
    await waitFor('every chip run full', 60_000, async () => (await chainRuns(gpc1)).filter((r) => r.stage === 'chip' && r.state === 'full').length === EXPOSURES);
    const log = await readStandInLog(logFile);
    const ok = log.filter((l) => l.what === 'ok').map((l) => `${l.id} ${l.component}`);
    assert.equal(ok.length, EXPOSURES * CHIPS.length, `each chip done once: ${ok.join('; ')}`);
    assert.equal(new Set(ok).size, ok.length);
    assert.equal(log.filter((l) => /^stand-in:/.test(l.what)).length, 0);
    await waitFor('no page left in RUN', 20_000, async () => ((await client.status()).books.find((b) => b.name === 'chipPending')?.states.RUN ?? 0) === 0);
    const jobs = await client.jobs({ finished: true });
    assert.ok(jobs.filter((j) => j.state === 'done').every((j) => j.outcome === 'exit' && j.status === 0), 'every job after the restart succeeded');
    return { starts: log.filter((l) => l.what === 'start').length, pidsBefore };
  } finally {
    await server.kill('SIGKILL');
    if (process.env.PANTASKS_TEST_LOG) process.stderr.write(server.log());
  }
}

async function readFile(file: string): Promise<string[]> {
  const { readFile: read } = await import('node:fs/promises');
  return (await read(file, 'utf8')).split('\n').filter((l) => l !== '');
}

describe('pantasks killed with -9 and restarted', () => {
  it('local jobs: the orphans are killed, their pages reset and run again, each component recorded once', () => withTempDir(async (dir) => {
    const { starts, pidsBefore } = await killAndRestart(dir, 'local', null);
    assert.ok(pidsBefore.every((pid) => !alive(pid)), 'the jobs of the dead server are gone');
    assert.ok(starts > EXPOSURES * CHIPS.length, `the killed jobs ran again (${starts} starts)`);
  }, 'ipp-pantasks-restart-'));

  it('Slurm jobs: taken back after the restart and not run again', { skip: slurmSkip }, () => withTempDir(async (dir) => {
    const { starts } = await killAndRestart(dir, 'anyhost', {
      kind: 'slurm', name: 'slurm1', slots: 8, pollInterval: 200, partition: process.env.IPP_TEST_SLURM_PARTITION,
    });
    assert.equal(starts, EXPOSURES * CHIPS.length, 'no job ran twice');
  }, 'ipp-pantasks-restart-'));
});
