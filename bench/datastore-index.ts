// Index requests per second on a product of 10,000 filesets: the poller's call (the original
// index.txt?NAME, answering the few filesets after NAME), the JSON equivalent (after_id), and
// whole listings. The load comes from separate client processes on keep-alive connections; the
// peer is a plain node:http server answering a body of the same size from memory, loaded the
// same way, so the ratio is what the datastore's lookup and formatting cost on top of HTTP.
//
//   node bench/datastore-index.ts [filesets=10000] [seconds=5] [processes=2] [connections=16]
//
// Target: at least 2,000 poller index requests/s with 10,000 filesets.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DatastoreClient } from '../src/datastore/index.ts';
import { startDatastore, startStaticServer, runLoad } from './datastore-lib.ts';
import { BENCH_DIR, check, target } from './lib.ts';

const filesets = Number(process.argv[2] ?? 10_000);
const seconds = Number(process.argv[3] ?? 5);
const processes = Number(process.argv[4] ?? 2);
const connections = Number(process.argv[5] ?? 16);
const root = join(BENCH_DIR, 'datastore-index');
await rm(root, { recursive: true, force: true });

const server = await startDatastore(root, ['--no-fsync']);
try {
  const ds = new DatastoreClient({ url: server.url });
  await ds.addProduct({ name: 'PSPS', type: 'IPP-PSPS', description: 'index benchmark' });
  // The setup publishes through the API (8 publishers), which also gives a publish rate.
  const names = Array.from({ length: filesets }, (_, i) => `B${String(i).padStart(8, '0')}`);
  const file = Buffer.alloc(100, 1);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < names.length) {
      const name = names[next++];
      await ds.publish('PSPS', name, [{ data: file, name: `${name}.fits` }]);
    }
  }));
  const publishSeconds = (performance.now() - t0) / 1000;
  console.log(`setup: published ${filesets} one-file filesets with 8 publishers in ${publishSeconds.toFixed(1)} s (${(filesets / publishSeconds).toFixed(0)}/s, no fsync)`);
  const listed = await ds.filesets('PSPS');
  check(listed.length === filesets, `${filesets} filesets listed`);

  const after = listed[filesets - 11];
  const pollText = `/ds/PSPS/index.txt?${after.name}`;
  const pollJson = `/products/PSPS/filesets?after_id=${after.id}`;
  const answer = await (await fetch(`${server.url}${pollText}`)).text();
  check(answer.split('\n').length === 12, 'the poller\'s call answers a header and 10 filesets');

  const peer = await startStaticServer(Buffer.byteLength(answer));
  let peerRate: number;
  try {
    peerRate = (await runLoad(peer.url, '/', seconds, processes, connections)).perSecond;
  } finally {
    await peer.stop();
  }
  const cases: [string, string][] = [
    ['poller call, text index.txt?NAME (10 new filesets)', pollText],
    ['poller call, JSON after_id (10 new filesets)', pollJson],
    [`whole text index (${filesets} lines)`, '/ds/PSPS/index.txt'],
    [`whole JSON listing (${filesets} filesets)`, '/products/PSPS/filesets'],
  ];
  let pollerRate = 0;
  for (const [what, path] of cases) {
    const r = await runLoad(server.url, path, seconds, processes, connections);
    check(r.errors === 0, `${what}: ${r.errors} errors`);
    console.log(`${what}: ${r.perSecond.toFixed(0)} requests/s (${r.requests} in ${r.seconds.toFixed(1)} s, ${processes}x${connections} connections)`);
    if (path === pollText) {
      pollerRate = r.perSecond;
      console.log(`index (poller call): ours ${r.perSecond.toFixed(0)} req/s, plain node:http same-size body ${peerRate.toFixed(0)} req/s, ratio ${(r.perSecond / peerRate).toFixed(2)}x`);
    }
  }
  target(`at least 2000 poller index requests/s with ${filesets} filesets`, pollerRate >= 2000);
} finally {
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
