// Processing-database operations per second, on SQLite and on PostgreSQL: register exposures,
// define chip runs, record 60 components per run (5% faulted), revert the faults, advance the
// runs (queuing their camera runs). The peer is the original design's approach measured in the
// same run on the same engine: one statement per row, as the per-run tools did it (a SELECT
// then an UPDATE and an INSERT per run to advance, one INSERT per chip in its own
// transaction, ...).
//
//   node bench/gpc1-ops.ts [exposures=100] [--pg URL]
//
// PostgreSQL runs when --pg or IPP_TEST_PG_URL names a server (a throw-away database is made
// on it); otherwise it is skipped, and the script says so.
import type { Database, Queryable } from '../src/db/index.ts';
import { testEngines } from '../src/db/index.ts';
import {
  advance, defineRun, openGpc1, recordComponent, recordComponents, registerExposures, revertFaults, type ExposureSpec,
} from '../src/gpc1/index.ts';
import { check, reportRate, timeIt } from './lib.ts';

const argv = process.argv.slice(2);
const pgAt = argv.indexOf('--pg');
if (pgAt >= 0) {
  const url = argv[pgAt + 1];
  if (!url) throw new Error('--pg needs a postgres:// URL');
  process.env.IPP_TEST_PG_URL = url;
  argv.splice(pgAt, 2);
}
const exposures = Number(argv[0] ?? 100);
if (!Number.isInteger(exposures) || exposures < 1) throw new Error(`exposures must be a positive whole number, not ${argv[0]}`);

const CHIPS = Array.from({ length: 64 }, (_, i) => `XY${Math.floor(i / 8)}${i % 8}`).filter((c) => !['XY00', 'XY07', 'XY70', 'XY77'].includes(c));
/** Every 20th component faults, so that revert has work. */
const faulted = (run: number, chip: number) => (run * CHIPS.length + chip) % 20 === 7;
/** Runs recorded one call per component (the scheduler's real path), a sample to keep the script short. */
const SINGLE_RUNS = Math.min(exposures, 10);

function exposure(i: number): ExposureSpec {
  return {
    exp_name: `o5000g${String(i).padStart(4, '0')}o`, camera: 'GPC1', telescope: 'PS1', dateobs: new Date(Date.UTC(2010, 4, 1, 8, 0, i)).toISOString(),
    exp_type: 'object', filter: 'r.00000', exp_time: 45, airmass: 1.2, ra: 150 + i * 0.01, decl: 2, obs_mode: '3PI', tess_id: 'RINGS.V3',
    imfiles: CHIPS.map((class_id) => ({ class_id, uri: `neb://ipp/raw/${i}/${class_id}.fits` })),
  };
}

interface Rates {
  register: number;
  define: number;
  record: number;
  revert: number;
  advance: number;
}

/** Ours: the gpc1 room's set-based operations. */
async function ours(db: Database): Promise<Rates & { single: number }> {
  const specs = Array.from({ length: exposures }, (_, i) => exposure(i));
  const register = await timeIt(() => registerExposures(db, specs));
  let chips: number[] = [];
  const define = await timeIt(async () => {
    chips = await defineRun(db, 'chip', { exposures: { filter: 'r.00000' }, label: 'bench', end_stage: 'camera' });
  });
  check(chips.length === exposures, `ours defined ${chips.length} chip runs`);
  const record = await timeIt(async () => {
    for (const [r, id] of chips.entries()) {
      await recordComponents(db, 'chip', CHIPS.map((component, c) => ({ id, component, fault: faulted(r, c) ? 2 : 0, path_base: `neb://ipp/chip/${id}/${component}`, n_stars: 800 })));
    }
  });
  let reverted = 0;
  const revert = await timeIt(async () => {
    reverted = await revertFaults(db, { stage: 'chip', label: 'bench' });
  });
  check(reverted === countFaults(), `ours reverted ${reverted} of ${countFaults()} faults`);
  for (const [r, id] of chips.entries()) {
    const redo = CHIPS.flatMap((component, c) => (faulted(r, c) ? [{ id, component }] : []));
    if (redo.length) await recordComponents(db, 'chip', redo);
  }
  let advanced = 0;
  const adv = await timeIt(async () => {
    advanced = (await advance(db, { stage: 'chip' })).queued;
  });
  check(advanced === exposures, `ours advanced and queued ${advanced} runs`);
  // One call per component, as jobs report them, on a sample of runs of a second label.
  const sample = await defineRun(db, 'chip', { exp_ids: (await db.all<{ exp_id: number }>(`SELECT exp_id FROM rawExp ORDER BY exp_id LIMIT ${SINGLE_RUNS}`)).map((r) => r.exp_id), label: 'single', end_stage: 'chip' });
  const single = await timeIt(async () => {
    for (const id of sample) for (const component of CHIPS) await recordComponent(db, 'chip', id, component, { path_base: `neb://ipp/chip/${id}/${component}` });
  });
  const components = exposures * CHIPS.length;
  return {
    register: exposures / register, define: exposures / define, record: components / record, revert: reverted / revert,
    advance: exposures / adv, single: (SINGLE_RUNS * CHIPS.length) / single,
  };
}

function countFaults(): number {
  let n = 0;
  for (let r = 0; r < exposures; r++) for (let c = 0; c < CHIPS.length; c++) if (faulted(r, c)) n++;
  return n;
}

/** The peer: one statement per row, each unit of work in its own transaction, on the same schema. */
async function perRow(db: Database): Promise<Rates> {
  const time = new Date().toISOString();
  const register = await timeIt(async () => {
    for (let i = 0; i < exposures; i++) {
      const e = exposure(i);
      await db.transaction(async (tx) => {
        const made = await tx.get<{ exp_id: number }>(
          "INSERT INTO newExp (tmp_exp_name, tmp_camera, tmp_telescope, state, tess_id, registered) VALUES (?, ?, ?, 'full', ?, ?) RETURNING exp_id",
          [e.exp_name, e.camera, e.telescope, e.tess_id ?? null, time]);
        const id = made!.exp_id;
        await tx.run(`INSERT INTO rawExp (exp_id, exp_name, camera, telescope, state, dateobs, exp_type, filter, exp_time, airmass, ra, decl, obs_mode, tess_id, fault, registered)
          VALUES (?, ?, ?, ?, 'full', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
        [id, e.exp_name, e.camera, e.telescope, e.dateobs ?? null, e.exp_type ?? null, e.filter ?? null, e.exp_time ?? null, e.airmass ?? null, e.ra ?? null, e.decl ?? null, e.obs_mode ?? null, e.tess_id ?? null, time]);
        for (const f of e.imfiles) {
          await tx.run('INSERT INTO newImfile (exp_id, tmp_class_id, uri, registered) VALUES (?, ?, ?, ?)', [id, f.class_id, f.uri ?? null, time]);
          await tx.run("INSERT INTO rawImfile (exp_id, class_id, uri, data_state, ignored, quality, fault, registered) VALUES (?, ?, ?, 'full', 0, 0, 0, ?)", [id, f.class_id, f.uri ?? null, time]);
        }
      });
    }
  });
  const chips: number[] = [];
  const define = await timeIt(async () => {
    const found = await db.all<{ exp_id: number; tess_id: string }>("SELECT exp_id, tess_id FROM rawExp WHERE filter = 'r.00000' ORDER BY exp_id");
    for (const e of found) {
      const row = await db.transaction((tx) => tx.get<{ chip_id: number }>(
        "INSERT INTO chipRun (exp_id, state, label, data_group, end_stage, tess_id, registered) VALUES (?, 'new', 'bench', 'bench', 'camera', ?, ?) RETURNING chip_id",
        [e.exp_id, e.tess_id, time]));
      chips.push(row!.chip_id);
    }
  });
  const expOf = new Map((await db.all<{ chip_id: number; exp_id: number }>('SELECT chip_id, exp_id FROM chipRun')).map((r) => [r.chip_id, r.exp_id]));
  const insertChip = (tx: Queryable, id: number, component: string, fault: number) => tx.run(
    "INSERT INTO chipProcessedImfile (chip_id, class_id, exp_id, path_base, n_stars, data_state, quality, fault, registered) VALUES (?, ?, ?, ?, 800, 'full', 0, ?, ?)",
    [id, component, expOf.get(id)!, `neb://ipp/chip/${id}/${component}`, fault, time]);
  const record = await timeIt(async () => {
    for (const [r, id] of chips.entries()) {
      for (const [c, component] of CHIPS.entries()) await db.transaction((tx) => insertChip(tx, id, component, faulted(r, c) ? 2 : 0));
    }
  });
  let reverted = 0;
  const revert = await timeIt(async () => {
    const faults = await db.all<{ chip_id: number; class_id: string }>(
      "SELECT p.chip_id, p.class_id FROM chipProcessedImfile p JOIN chipRun r ON r.chip_id = p.chip_id WHERE r.state = 'new' AND r.label = 'bench' AND p.fault <> 0");
    for (const f of faults) reverted += (await db.run('DELETE FROM chipProcessedImfile WHERE chip_id = ? AND class_id = ?', [f.chip_id, f.class_id])).changes;
  });
  check(reverted === countFaults(), `peer reverted ${reverted} faults`);
  for (const [r, id] of chips.entries()) {
    for (const [c, component] of CHIPS.entries()) if (faulted(r, c)) await db.transaction((tx) => insertChip(tx, id, component, 0));
  }
  let queued = 0;
  const adv = await timeIt(async () => {
    // The original's advance: find the finished runs with one grouped query, then one transaction per run.
    const finished = await db.all<{ chip_id: number }>(`SELECT r.chip_id FROM chipRun r
      JOIN rawImfile i ON i.exp_id = r.exp_id AND i.ignored = 0
      LEFT JOIN chipProcessedImfile p ON p.chip_id = r.chip_id AND p.class_id = i.class_id
      WHERE r.state = 'new' GROUP BY r.chip_id
      HAVING COUNT(i.class_id) = COUNT(p.class_id) AND SUM(p.fault) = 0 ORDER BY r.chip_id`);
    for (const f of finished) {
      await db.transaction(async (tx) => {
        const run = await tx.get<{ label: string; data_group: string; end_stage: string; tess_id: string }>('SELECT label, data_group, end_stage, tess_id FROM chipRun WHERE chip_id = ?', [f.chip_id]);
        await tx.run("UPDATE chipRun SET state = 'full' WHERE chip_id = ?", [f.chip_id]);
        await tx.run("INSERT INTO camRun (chip_id, state, label, data_group, end_stage, tess_id, registered) VALUES (?, 'new', ?, ?, ?, ?, ?)",
          [f.chip_id, run!.label, run!.data_group, run!.end_stage, run!.tess_id, time]);
        queued++;
      });
    }
  });
  check(queued === exposures, `peer advanced ${queued} runs`);
  const components = exposures * CHIPS.length;
  return { register: exposures / register, define: exposures / define, record: components / record, revert: reverted / revert, advance: exposures / adv };
}

console.log(`gpc1 operations: ${exposures} exposures x ${CHIPS.length} chips (${exposures * CHIPS.length} components, ${countFaults()} faulted and reverted)`);
for (const engine of testEngines()) {
  if (engine.skip) {
    console.log(`\n${engine.name}: skipped (${engine.skip}; or give --pg URL)`);
    continue;
  }
  const rates = await engine.withUrl(async (url) => {
    const db = await openGpc1(url);
    try {
      return await ours(db);
    } finally {
      await db.close();
    }
  });
  const peer = await engine.withUrl(async (url) => {
    const db = await openGpc1(url);
    try {
      return await perRow(db);
    } finally {
      await db.close();
    }
  });
  console.log(`\n${engine.name}:`);
  reportRate(`${engine.name} register exposures`, rates.register, 'per-row', peer.register, 'exposures/s');
  reportRate(`${engine.name} define chip runs`, rates.define, 'per-row', peer.define, 'runs/s');
  reportRate(`${engine.name} record components (a run's 60 per call)`, rates.record, 'per-row', peer.record, 'components/s');
  reportRate(`${engine.name} record components (one per call, ${SINGLE_RUNS} runs)`, rates.single, 'per-row', peer.record, 'components/s');
  reportRate(`${engine.name} revert faults`, rates.revert, 'per-row', peer.revert, 'components/s');
  reportRate(`${engine.name} advance (full + queue camera)`, rates.advance, 'per-row', peer.advance, 'runs/s');
}
