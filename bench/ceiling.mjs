/**
 * The ceiling: what this machine's uWS can serve with the service's worker count and nothing else. Bare
 * uWebSockets.js loaded through src/http/uws.ts (the same binary), node:cluster, every request answered
 * with one fixed body (as large as a real response of the measured mix) and the same headers the service
 * writes. The bench divides each scenario's throughput by it.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';

const workers = Number(process.env.CEILING_WORKERS ?? 2);
const port = Number(process.env.CEILING_PORT ?? 8090);

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('message', (m) => {
      if (m === 'listening' && ++listening === workers) console.log('ceiling ready');
    });
  }
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const { App } = await import('../dist/http/uws.js');
  const body = readFileSync(process.env.CEILING_BODY_FILE);
  let n = 0;
  App()
    .any('/*', (res) => {
      // An x-request-id of the service's length, like every real response carries.
      const id = `c${process.pid.toString(36)}-${(n++).toString(36).padStart(8, '0')}`;
      res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').writeHeader('x-request-id', id).end(body));
    })
    .listen('127.0.0.1', port, (socket) => {
      if (!socket) {
        console.error(`ceiling: cannot listen on ${port}`);
        process.exit(1);
      }
      process.send('listening');
    });
}
