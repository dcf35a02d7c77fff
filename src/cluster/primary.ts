/**
 * The node:cluster primary: never serves HTTP. It prepares the database (embedded PostgreSQL when no
 * DATABASE_URL, migrations under an advisory lock, default seed), then wires the parts together: the
 * Supervisor (forks, restarts and rolling-restarts the HTTP workers on SIGUSR2), the InvalidationRelay
 * (PostgreSQL NOTIFY and write barriers with other instances), metrics aggregation, and the ordered
 * shutdown on SIGTERM/SIGINT.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import { replicaUrls, type Config } from '../config.js';
import { connect } from '../data/db.js';
import { embeddedLocation, startEmbeddedPostgres } from '../data/embedded-postgres.js';
import { migrate } from '../data/migrate.js';
import { connectRedisFrom, redisConfigured } from '../data/redis.js';
import { seedIfEmpty } from '../data/seed.js';
import { createLogger } from '../observability/logger.js';
import { InvalidationRelay } from './invalidation-relay.js';
import type { PrimaryToWorker } from './ipc.js';
import { startJobEngine, startJobUpkeep } from './job-engine.js';
import { ModelTrainer } from './model-trainer.js';
import { Scheduler } from './scheduler.js';
import { SimilarityRefresher } from './similarity-refresher.js';
import { Supervisor } from './supervisor.js';

export async function runPrimary(config: Config): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, 'primary', config.LOG_FORMAT);
  // SIGUSR2 would otherwise terminate the process: until the workers listen, a restart request is ignored.
  let rollingRestart = (): void => log.warn('rolling restart requested before the service was ready: ignored');
  process.on('SIGUSR2', () => rollingRestart());
  let stopEmbedded: (() => Promise<void>) | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    const { dataDir, port } = embeddedLocation(config);
    const pg = await startEmbeddedPostgres({ dataDir, port, log: (m) => log.info(m), lastOneOut: true });
    databaseUrl = pg.url;
    stopEmbedded = pg.stop;
    log.info({ dataDir, port }, 'DATABASE_URL unset: using embedded PostgreSQL');
  }
  if (!redisConfigured(config)) log.info('REDIS_URL and REDIS_CLUSTER_NODES unset: in-process (L1) cache only');

  const sql = connect(databaseUrl, { max: 2, application: 'recommendation-service-primary' });
  try {
    const { ran } = await migrate(sql, 'up', { log: (m) => log.info(m) });
    if (ran.length) log.info({ ran }, 'migrations applied');
    if (config.SEED_ON_START && (await seedIfEmpty(sql, (m) => log.info(m)))) log.info('seeded default data set');
  } catch (err) {
    log.fatal({ err }, 'database preparation failed');
    await sql.end({ timeout: 1 });
    await stopEmbedded?.();
    process.exit(1);
  }

  // The engine's schema and queues exist before any worker fetches from them.
  const jobQueue = await startJobEngine(config, databaseUrl, log);
  const redis = await connectRedisFrom(config, { commandTimeoutMs: 1000, log, name: 'rec-primary' });
  const aggregator = new AggregatorRegistry();
  // Instance-wide rate-limit counts when there is no Redis to share them (workers use RateLimiterCluster).
  if (config.RATE_LIMIT_POINTS > 0 && !redisConfigured(config)) new RateLimiterClusterMaster();
  const supervisor = new Supervisor(config, databaseUrl, log);

  // Every writer (API, psql, ETL, other instances) invalidates through the trigger's NOTIFY.
  const relay = new InvalidationRelay(sql, databaseUrl, supervisor, redis, config, log, replicaUrls(config).length > 0);
  await relay.start();

  supervisor.onRequest = async (worker, message) => {
    if (message.op === 'metrics') {
      try {
        const body = await aggregator.clusterMetrics();
        reply(worker, { kind: 'rec:reply', id: message.id, ok: true, contentType: aggregator.contentType, body });
      } catch (err) {
        reply(worker, { kind: 'rec:reply', id: message.id, ok: false, error: (err as Error).message });
      }
    } else if (message.op === 'content') {
      await Promise.all([supervisor.broadcastContent({ hidden: message.hidden, visible: message.visible }), relay.afterWrite()]);
      reply(worker, { kind: 'rec:reply', id: message.id, ok: true });
    } else if (message.op === 'invalidate-many') {
      const users = { userIds: message.userIds, sharedPending: message.sharedPending ?? [], lsn: message.lsn };
      await Promise.all([supervisor.broadcastInvalidations(users), relay.afterWrite()]);
      reply(worker, { kind: 'rec:reply', id: message.id, ok: true });
    } else {
      await Promise.all([supervisor.broadcastInvalidation(message.userId, { lsn: message.lsn, sharedPending: message.sharedPending }), relay.afterWrite()]);
      reply(worker, { kind: 'rec:reply', id: message.id, ok: true });
    }
  };

  supervisor.start();
  await supervisor.allListening();
  log.info({ port: config.PORT, workers: config.WORKERS }, 'service ready');
  process.send?.('ready'); // pm2 wait_ready
  rollingRestart = () => void supervisor.rollingRestart();
  // After readiness, on its own thread: the lists are background data, never a reason to wait.
  const scheduler = new Scheduler(jobQueue, log);
  const similarity = new SimilarityRefresher({ databaseUrl, intervalS: config.SIMILAR_REFRESH_S, log });
  const trainer = new ModelTrainer({
    sql,
    databaseUrl,
    share: config.MODEL_RETRAIN_SHARE,
    checkMs: config.MODEL_CHECK_S * 1000,
    log,
    enabled: config.MODEL !== 'heuristic' && config.MODEL !== 'popularity',
  });
  relay.onDatasetReplaced = () => {
    similarity.datasetReplaced(scheduler);
    trainer.datasetReplaced(scheduler);
  };
  await Promise.all([similarity.start(scheduler), trainer.start(scheduler), startJobUpkeep(jobQueue, scheduler, sql, config, log)]).catch((err: Error) =>
    log.error({ err: err.message }, 'scheduled background work not started'),
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining workers');
    scheduler.stop();
    await Promise.all([similarity.stop(), trainer.stop(), supervisor.stop(config.SHUTDOWN_TIMEOUT_MS + 2000)]);
    await jobQueue.stop(2000).catch((err: Error) => log.warn({ err: err.message }, 'job engine stop failed'));
    await relay.stop();
    await Promise.allSettled([sql.end({ timeout: 2 }), redis?.quit()]);
    await stopEmbedded?.();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function reply(worker: Worker, message: PrimaryToWorker): void {
  if (worker.isConnected()) worker.send(message);
}
