// A load generator for the datastore benchmarks, run as a child process:
//   node bench/datastore-load.ts URL PATH SECONDS CONNECTIONS   → GETs PATH on keep-alive
//     connections for SECONDS; prints {"requests", "errors", "seconds"} (non-200 answers are errors)
//   node bench/datastore-load.ts --static BYTES                 → serves a fixed body (the peer)
import './usage.ts';
import { Agent, createServer, request } from 'node:http';

if (process.argv[2] === '--static') {
  const body = Buffer.alloc(Number(process.argv[3]), 'x');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    process.stdout.write(`URL http://127.0.0.1:${address.port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else {
  const [url, path, secondsArg, connectionsArg] = process.argv.slice(2);
  const { hostname, port } = new URL(url);
  const connections = Number(connectionsArg);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const end = performance.now() + Number(secondsArg) * 1000;
  let requests = 0;
  let errors = 0;
  const one = () => new Promise<void>((resolve) => {
    const req = request({ host: hostname, port, path, agent }, (res) => {
      if (res.statusCode !== 200) errors++;
      res.on('data', () => undefined);
      res.on('end', () => { requests++; resolve(); });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end();
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) await one();
  }));
  process.stdout.write(`${JSON.stringify({ requests, errors, seconds: (performance.now() - t0) / 1000 })}\n`);
  agent.destroy();
}
