/** Entry point: the primary prepares and supervises, each forked worker serves HTTP. */
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

if (cluster.isPrimary) {
  // Once, before any work: a worker that cannot load uWS would only crash and be restarted, again and again.
  await import('./http/uws.js').catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
  const { runPrimary } = await import('./cluster/primary.js');
  await runPrimary(config);
} else {
  const { runWorker } = await import('./cluster/worker.js');
  await runWorker(config, process.env.RECSVC_DATABASE_URL!, Number(process.env.WORKER_INDEX ?? 0));
}
