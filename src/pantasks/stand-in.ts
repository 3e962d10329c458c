#!/usr/bin/env node
// A stand-in for the pixel programs of a stage, for simulated nights and tests: it records its
// component in the processing database, as the real programs' scripts do, and fails on
// purpose now and then. Usage:
//
//   node stand-in.ts --db URL --stage STAGE --id N [--component C] [--log FILE]
//                    [--fault-every K --fault-dir DIR] [--map SKYCELL,SKYCELL...] [--sleep MS [--slow-dir DIR]]
//
// With --fault-every K, about one component in K records a fault (code 2) and exits 3 the
// first time it is run (a marker in DIR remembers it), and succeeds once reverted and run
// again. With --map, it maps the skycells of a warp run instead (the warp overlap step).
// Its start and its outcome are appended as lines to --log: "STAGE ID COMPONENT start|ok|fault|map HOST PID".
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mapSkyCells, openGpc1, parseStage, recordComponent } from '../gpc1/index.ts';

const { values } = parseArgs({
  options: {
    db: { type: 'string' }, stage: { type: 'string' }, id: { type: 'string' }, component: { type: 'string' },
    log: { type: 'string' }, 'fault-every': { type: 'string' }, 'fault-dir': { type: 'string' }, map: { type: 'string' },
    sleep: { type: 'string' }, 'slow-dir': { type: 'string' },
  },
  strict: true,
});
if (!values.db || !values.stage || !values.id) {
  process.stderr.write('stand-in: give --db URL --stage STAGE --id N [--component C]\n');
  process.exit(2);
}
const stage = parseStage(values.stage);
const id = Number(values.id);
const component = values.component ?? null;
const line = (what: string): void => {
  if (values.log) appendFileSync(values.log, `${stage} ${id} ${component || '-'} ${what} ${hostname()} ${process.pid}\n`);
};
line('start');
if (values.sleep) {
  // With --slow-dir, only the first run of a component is slow (a marker remembers it).
  const marker = values['slow-dir'] ? join(values['slow-dir'], `${stage}.${id}.${component || '-'}`) : null;
  if (marker === null || !existsSync(marker)) {
    if (marker) {
      mkdirSync(values['slow-dir']!, { recursive: true });
      writeFileSync(marker, '');
    }
    await new Promise((r) => setTimeout(r, Number(values.sleep)));
  }
}
const db = await openGpc1(values.db);
try {
  if (values.map !== undefined) {
    await mapSkyCells(db, id, values.map.split(',').filter((s) => s !== '').map((skycell_id) => ({ skycell_id })));
    line('map');
  } else {
    const every = Number(values['fault-every'] ?? 0);
    let fault = 0;
    if (every > 0 && values['fault-dir']) {
      const key = `${stage}.${id}.${component ?? '-'}`;
      const h = createHash('md5').update(key).digest().readUInt32BE(0);
      const marker = join(values['fault-dir'], key);
      if (h % every === 0 && !existsSync(marker)) {
        mkdirSync(values['fault-dir'], { recursive: true });
        writeFileSync(marker, '');
        fault = 2;
      }
    }
    await recordComponent(db, stage, id, component, { fault, hostname: hostname(), path_base: `sim://${stage}/${id}/${component ?? ''}` });
    line(fault ? 'fault' : 'ok');
    if (fault) {
      process.stderr.write(`stand-in: ${stage} ${id} ${component ?? ''}: simulated fault ${fault}\n`);
      process.exitCode = 3;
    }
  }
} catch (error) {
  process.stderr.write(`stand-in: ${stage} ${id} ${component ?? ''}: ${(error as Error).message}\n`);
  process.exitCode = 4;
} finally {
  await db.close();
}
