/**
 * One HTTP worker process: wires the layers (data → service → http), listens on PORT with SO_REUSEPORT,
 * applies invalidations the primary relays, and drains gracefully when the primary says so.
 */
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config.js';
import { connect } from '../data/db.js';
import { RecommendationCache } from '../data/recommendation-cache.js';
import { RecommendationRepo } from '../data/recommendation-repo.js';
import { connectRedis } from '../data/redis.js';
import { createHttpApp, closeListenSocket, listen } from '../http/app.js';
import type { ListenSocket } from '../http/uws.js';
import type { WireContext } from '../http/exchange.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { createScoringPool } from '../scoring-worker/pool.js';
import { BatchService } from '../service/batch.js';
import { createModelBreaker } from '../service/breaker.js';
import { checkReadiness } from '../service/readiness.js';
import { RecommendationService } from '../service/recommendation-service.js';
import { PrimaryChannel, isOurs, send, type PrimaryToWorker } from './ipc.js';

const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export async function runWorker(config: Config, databaseUrl: string, index: number): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, `worker-${index}`);
  const metrics = createMetrics(String(index));
  // Every worker needs the aggregator's listener, or the primary's scrape waits for it and times out.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics.registry]);

  const sql = connect(databaseUrl, { max: config.DB_POOL_SIZE, statementTimeoutMs: config.REQUEST_TIMEOUT_MS });
  const redis = config.REDIS_URL
    ? connectRedis(config.REDIS_URL, { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS, log, name: `rec-worker-${index}` })
    : null;
  const cache = new RecommendationCache(
    redis,
    {
      ttlSec: config.CACHE_TTL,
      fallbackTtlSec: config.FALLBACK_CACHE_TTL,
      l1MaxEntries: config.L1_MAX_ENTRIES,
      l1MaxBytes: config.L1_MAX_BYTES,
    },
    metrics,
  );
  const pool = createScoringPool({
    threads: config.SCORING_THREADS,
    maxQueue: config.SCORING_QUEUE_MAX,
    concurrentTasksPerThread: 64,
    onError: (err) => log.error({ err }, 'scoring pool error'),
  });
  const breaker = createModelBreaker((task: Parameters<typeof pool.run>[0]) => pool.run(task), {
    timeoutMs: config.MODEL_TIMEOUT_MS,
    errorThresholdPercentage: config.BREAKER_ERROR_PERCENT,
    volumeThreshold: config.BREAKER_VOLUME_THRESHOLD,
    resetTimeoutMs: config.BREAKER_RESET_MS,
    rollingCountTimeoutMs: config.BREAKER_WINDOW_MS,
    onStateChange: (state) => {
      metrics.breakerState.set(BREAKER_STATE_VALUE[state]);
      log.warn({ state }, 'model circuit breaker changed state');
    },
  });
  const repo = new RecommendationRepo(sql);
  const channel = new PrimaryChannel(2000);
  const service = new RecommendationService({
    repo,
    cache,
    score: (task) => breaker.fire(task),
    model: {
      candidatePool: config.CANDIDATE_POOL,
      noise: config.MODEL_NOISE,
      latencyMinMs: config.MODEL_LATENCY_MIN_MS,
      latencyMaxMs: config.MODEL_LATENCY_MAX_MS,
      failureRate: config.MODEL_FAILURE_RATE,
    },
    metrics,
    log,
    broadcastInvalidation: async (userId) => {
      try {
        await channel.request('invalidate', userId);
      } catch (err) {
        // The write is committed; answering 503 would invite a duplicate retry. Say it loudly instead.
        log.error({ userId, err: (err as Error).message }, 'invalidation broadcast incomplete');
      }
    },
  });
  const batch = new BatchService(repo, service, config.BATCH_CONCURRENCY, log);

  const ctx: WireContext = { metrics, log, draining: false, inFlight: 0, requestTimeoutMs: config.REQUEST_TIMEOUT_MS };
  const app = createHttpApp(ctx, {
    recommendations: service,
    batch,
    maxBodyBytes: config.MAX_BODY_BYTES,
    readiness: () => checkReadiness(repo, redis),
    metricsText: async () => {
      const reply = await channel.request('metrics');
      if (reply.kind !== 'rec:reply' || !reply.ok) throw new Error('metrics unavailable');
      return { contentType: reply.contentType ?? 'text/plain', body: reply.body ?? '' };
    },
  });

  let stopping = false;
  let socket: ListenSocket | undefined;
  const drainAndExit = async () => {
    if (stopping) return;
    stopping = true;
    ctx.draining = true;
    if (socket) closeListenSocket(socket);
    const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
    while (ctx.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (ctx.inFlight > 0) log.warn({ inFlight: ctx.inFlight }, 'shutdown timeout: closing with requests in flight');
    app.close();
    await Promise.allSettled([pool.close(), sql.end({ timeout: 2 }), redis?.quit()]);
    breaker.shutdown();
    process.exit(0);
  };

  process.on('message', (message: unknown) => {
    if (!isOurs(message)) return;
    const m = message as PrimaryToWorker;
    switch (m.kind) {
      case 'rec:reply':
        channel.settle(m);
        break;
      case 'rec:invalidate':
        service.invalidateLocal(m.userId);
        if (m.id !== undefined) send({ kind: 'rec:ack', id: m.id });
        break;
      case 'rec:shutdown':
        void drainAndExit();
        break;
    }
  });
  // Signals go to the primary, which drains workers in order; a worker whose primary is gone drains itself.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => void drainAndExit());

  socket = await listen(app, config.HOST, config.PORT);
  if (stopping) return closeListenSocket(socket); // told to stop while it was starting
  send({ kind: 'rec:listening' });
  log.info({ port: config.PORT }, 'worker listening');
}
