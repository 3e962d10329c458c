import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { addstar } from './addstar.ts';
import { grabImage } from './grab.ts';
import { acquireLocks, lockDir } from './lock.ts';
import { makeStars, writeSmf } from './test-support.ts';
import { verifyDvo } from './verify.ts';
import { listRegions } from './stats.ts';

const NODE = process.execPath;
const WORKER = new URL('./addstar-worker.fixture.ts', import.meta.url).pathname;

function child(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(NODE, [WORKER, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('two addstar processes on different images of the same sky at once', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(1200, { ra: 200, dec: 10, size: 0.4 }, 21, 3);
    const files: string[] = [];
    for (let e = 1; e <= 4; e++) {
      files.push(join(dir, `e${e}.smf`));
      await writeSmf(files[e - 1], stars, { expId: e });
    }
    const db = join(dir, 'db');
    const [a, b] = await Promise.all([child(['addstar', db, files[0], files[2]]), child(['addstar', db, files[1], files[3]])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const report = await verifyDvo(db);
    assert.deepEqual(report.faults, []);
    assert.equal(report.objects, 1200);
    assert.equal(report.measures, 4800);
    assert.equal(report.images, 8);
    assert.deepEqual(await readdir(lockDir(db)), []);
  });
});

test('a process killed mid-update leaves every region readable; running addstar again completes it', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(900, { ra: 30, dec: -20, size: 0.4 }, 31, 3);
    const files = [join(dir, 'a.smf'), join(dir, 'b.smf'), join(dir, 'c.smf')];
    for (let e = 0; e < 3; e++) await writeSmf(files[e], stars, { expId: e + 1 });
    const db = join(dir, 'db');
    const first = await child(['addstar', db, files[0]]);
    assert.equal(first.code, 0, first.stderr);
    for (const when of ['before', 'after']) {
      const file = when === 'before' ? files[1] : files[2];
      const killed = await child(['addstar', db, file], { DVO_KILL: when, DVO_KILL_REGION: '2' });
      assert.equal(killed.signal, 'SIGKILL');
      // Readable and consistent now: the half-done update shows as faults, not damage.
      const report = await verifyDvo(db);
      const codes = new Set(report.faults.map((f) => f.code));
      assert.ok(codes.has('image_pending'), JSON.stringify(report.faults));
      assert.ok([...codes].every((c) => ['image_pending', 'interrupted_update', 'image_count_mismatch'].includes(c)), JSON.stringify(report.faults));
      const g = await grabImage(db, 133);
      assert.equal(g.rows.rowCount, g.rows.columns[0].values.length);
      // Again: finishes the ingest, with each detection stored once.
      const again = await child(['addstar', db, file]);
      assert.equal(again.code, 0, again.stderr);
      const done = await verifyDvo(db);
      assert.deepEqual(done.faults, []);
    }
    const final = await verifyDvo(db);
    assert.equal(final.measures, 2700);
    assert.equal(final.objects, 900);
  });
});

test('a lock held by a process that died is broken with a warning', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(200, { ra: 100, dec: 40, size: 0.2 }, 41, 3);
    const file = join(dir, 'a.smf');
    await writeSmf(file, stars, { expId: 1 });
    const db = join(dir, 'db');
    const dead = await child(['lock', db, 'Images', 'create']);
    assert.equal(dead.signal, 'SIGKILL');
    assert.match(dead.stdout, /locked/);
    const warnings: string[] = [];
    const r = await addstar(db, [file], { create: { floorDensity: 1 }, log: { warn: (m) => warnings.push(m), info: () => {} }, lockTimeoutMs: 5000 });
    assert.equal(r.files[0].status, 'ingested');
    assert.ok(warnings.some((w) => /broke lock .*Images.*no longer running/.test(w)), warnings.join('\n'));
    // An empty lock file (a holder that died before writing itself into it) is broken once it is old.
    const rows = (await grabImage(db, 133)).rows.rowCount;
    const empty = join(db, 'locks', 'Images.xlock');
    await writeFile(empty, '');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(empty, hourAgo, hourAgo);
    assert.equal((await grabImage(db, 133, { lockTimeoutMs: 3000 })).rows.rowCount, rows);
    // A live holder is waited for, then reported with what to do: on this host it is running.
    const held = await acquireLocks(db, ['Images'], 'exclusive');
    try {
      await assert.rejects(addstar(db, [file], { lockTimeoutMs: 300 }), (e: Error & { code?: string }) => e.code === 'dvo_locked'
        && new RegExp(`Images\\.xlock is held by process ${process.pid} on .* since .*; waited 0 s\\. It is running: wait for it to finish, or give a longer --lock-timeout`).test(e.message));
    } finally {
      await held.release();
    }
    // A writer kept waiting by a reader names the reader, not a pattern of file names.
    const reader = await acquireLocks(db, ['Images'], 'soft');
    try {
      await assert.rejects(acquireLocks(db, ['Images'], 'exclusive', { timeoutMs: 300 }), (e: Error & { code?: string }) => e.code === 'dvo_locked'
        && new RegExp(`Images\\.${process.pid}\\.\\w+\\.slock is held by process ${process.pid} on `).test(e.message));
    } finally {
      await reader.release();
    }
  });
});

test('an ingest resumed after a kill stores every detection, also of two 0.5" apart on either side of a region edge', async () => {
  await withTempDir(async (dir) => {
    const stars = makeStars(900, { ra: 60, dec: 10, size: 0.4 }, 61, 3);
    const first = join(dir, 'a.smf');
    await writeSmf(first, stars, { expId: 1 });
    const db = join(dir, 'db');
    assert.equal((await child(['addstar', db, first])).code, 0);
    // Two leaf regions side by side in RA; one detection just inside each, 0.5" apart: the
    // second cannot take the first's object (one detection per object and image), so it makes
    // its own in the other region.
    const leaves = (await listRegions(db)).filter((r) => r.objects > 0);
    const pair = leaves.flatMap((a) => leaves.filter((b) => b.raMin === a.raMax && b.decMin < (a.decMin + a.decMax) / 2 && b.decMax > (a.decMin + a.decMax) / 2).map((b) => [a, b] as const))[0];
    assert.ok(pair, 'two regions meet in RA');
    const [west, east] = pair;
    const dec = (west.decMin + west.decMax) / 2;
    const step = 0.25 / 3600 / Math.cos((dec * Math.PI) / 180);
    // The region updated first (the lower index) gets the first detection of the catalogue.
    const [one, two] = west.index < east.index ? [west.raMax - step, east.raMin + step] : [east.raMin + step, west.raMax - step];
    const edge = join(dir, 'edge.smf');
    await writeSmf(edge, { ra: Float64Array.of(one, two), dec: Float64Array.of(dec, dec), mag: Float64Array.of(18, 18.2) }, { expId: 7, chips: ['XY44'], noise: 0 });
    const reference = join(dir, 'reference');
    await cp(db, reference, { recursive: true });
    assert.equal((await child(['addstar', reference, edge])).code, 0);
    // Killed once the first region is committed, then run again.
    const killed = await child(['addstar', db, edge], { DVO_KILL: 'after', DVO_KILL_REGION: '1' });
    assert.equal(killed.signal, 'SIGKILL');
    const again = await child(['addstar', db, edge]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await verifyDvo(db)).faults, []);
    assert.equal((await verifyDvo(db)).measures, (await verifyDvo(reference)).measures);
    assert.deepEqual(await regionBytes(db, [west.name, east.name]), await regionBytes(reference, [west.name, east.name]));
  });
});

/** The bytes of some regions' files (to compare two databases). */
async function regionBytes(db: string, regions: readonly string[]): Promise<Buffer[]> {
  return Promise.all(regions.flatMap((name) => ['cpt', 'cps', 'cpm'].map((ext) => readFile(join(db, `${name}.${ext}`)))));
}
