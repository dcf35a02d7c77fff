/**
 * One HTTP worker process: wires the layers (data → service → http), listens on PORT with SO_REUSEPORT,
 * applies invalidations the primary relays, and drains gracefully when the primary says so.
 */
import { AggregatorRegistry } from 'prom-client';
import { replicaUrls, type Config } from '../config.js';
import { connect } from '../data/db.js';
import { Catalog } from '../data/catalog.js';
import { RecommendationCache } from '../data/recommendation-cache.js';
import { ContentRepo } from '../data/content-repo.js';
import { EventsRepo } from '../data/events-repo.js';
import { RecommendationRepo } from '../data/recommendation-repo.js';
import { SimilarityRepo } from '../data/similarity-repo.js';
import { UserRepo } from '../data/user-repo.js';
import { primaryReads, ReplicaSet } from '../data/replicas.js';
import { connectRedisFrom } from '../data/redis.js';
import { createHttpApp, closeListenSocket, listen } from '../http/app.js';
import { createGuards } from '../http/guards.js';
import { openApiDocument } from '../http/openapi.js';
import { uwsBuild, type ListenSocket } from '../http/uws.js';
import type { WireContext } from '../http/exchange.js';
import { RequestIds } from '../http/request-id.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { scoringTask } from '../recommenders/heuristic.js';
import { calibrate, Placement, type Costs } from '../scoring-worker/placement.js';
import { createScoringPool } from '../scoring-worker/pool.js';
import { createScorer } from '../scoring-worker/scorer.js';
import { BatchService } from '../service/batch.js';
import { ServedModel } from '../service/served-model.js';
import { loadModel } from '../data/model-repo.js';
import { BatchJobs, CHUNK_QUEUE } from '../service/batch-jobs.js';
import { BatchJobRepo, type ChunkRef } from '../data/batch-job-repo.js';
import { JobQueue } from '../data/job-queue.js';
import { CHUNK_POLLING_S, maintenanceIntervalS } from './job-engine.js';
import { CatalogService } from '../service/catalog-service.js';
import { UserWrites } from '../service/user-writes.js';
import { WatchEvents } from '../service/watch-events.js';
import { createModelBreaker } from '../service/breaker.js';
import { shouldWarm, startCacheWarming } from '../service/cache-warmer.js';
import { checkReadiness } from '../service/readiness.js';
import { RecommendationService } from '../service/recommendation-service.js';
import { Visibility } from '../service/visibility.js';
import { PrimaryChannel, isOurs, send, type PrimaryToWorker } from './ipc.js';

const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;
/** Until measured (no catalog at start-up): a conservative guess that sends only large tasks to the pool. */
const UNMEASURED_COSTS: Costs = { nsPerCandidate: 20, handoffNs: 100_000, poolWaitNs: 0, poolWaitDevNs: 0 };
/** A draining worker closes its kept-alive connections once they have been idle this long. */
const DRAIN_QUIET_MS = 1000;

export async function runWorker(config: Config, databaseUrl: string, index: number): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, `worker-${index}`, config.LOG_FORMAT);
  const metrics = createMetrics(String(index));
  // Every worker needs the aggregator's listener, or the primary's scrape waits for it and times out.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics.registry]);

  const sql = connect(databaseUrl, { max: config.DB_POOL_SIZE, statementTimeoutMs: config.REQUEST_TIMEOUT_MS });
  const replicaList = replicaUrls(config);
  const replicas = replicaList.length
    ? new ReplicaSet(sql, databaseUrl, replicaList, {
        poolSize: config.DB_POOL_SIZE,
        statementTimeoutMs: config.REQUEST_TIMEOUT_MS,
        maxLagMs: config.REPLICA_MAX_LAG_MS,
        // Half the read deadline on a replica, so the retry on the primary still fits in DB_TIMEOUT_MS.
        attemptTimeoutMs: Math.max(5, Math.floor(config.DB_TIMEOUT_MS / 2)),
        counters: metrics.replicaReads(),
        log: (fields, message) => (fields.state === 'up' ? log.info(fields, message) : log.warn(fields, message)),
      })
    : undefined;
  if (replicas) {
    metrics.sources.replicas = () => replicas.status();
    await replicas.start();
  }
  const reads = replicas ?? primaryReads(sql);
  const redis = await connectRedisFrom(config, {
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    log,
    name: `rec-worker-${index}`,
    metrics,
  });
  const cache = new RecommendationCache(
    redis,
    {
      ttlSec: config.CACHE_TTL,
      fallbackTtlSec: config.FALLBACK_CACHE_TTL,
      staleTtlSec: config.CACHE_STALE_TTL,
      l1MaxEntries: config.L1_MAX_ENTRIES,
      l1MaxBytes: config.L1_MAX_BYTES,
      // Inside the command timeout, so a lagging replica is a reply (0 acknowledgements), not a timeout.
      replicaWaitMs: Math.max(1, Math.floor(config.REDIS_COMMAND_TIMEOUT_MS * 0.8)),
    },
    metrics,
  );
  const pool = createScoringPool({
    threads: config.SCORING_THREADS,
    maxQueue: config.SCORING_QUEUE_MAX,
    niceIncrement: config.SCORING_THREAD_NICE,
    onError: (err) => log.error({ err }, 'scoring pool error'),
    onTimings: (wait, run) => {
      metrics.scoring.wait.observe(wait);
      metrics.scoring.run.observe(run);
    },
  });
  metrics.sources.scoringPool = () => pool.stats();
  const repo = new RecommendationRepo(
    sql,
    metrics.db,
    config.DB_TIMEOUT_MS,
    new Catalog(sql, config.CATALOG_REFRESH_S * 1000, reads),
    reads,
  );
  const visibility = new Visibility();
  repo.catalog.onSnapshot = (snapshot) => visibility.useSnapshot(snapshot);
  const servedModel = new ServedModel(config.MODEL);
  let datasetVersion: string | undefined;
  // Lists are cached under the data set and the trained model they were computed from: either changing
  // retires every list in both tiers (a Redis entry of another generation is a miss).
  const useGeneration = (): void => {
    if (datasetVersion !== undefined) cache.useDataset(`${datasetVersion}.m${servedModel.version}`);
  };
  repo.catalog.onDataset = (version, replaced) => {
    datasetVersion = version;
    useGeneration();
    if (replaced) log.info({ version }, 'new data set: catalog reloaded, cached lists dropped');
  };
  const placement = new Placement(config.SCORING_MODE, pool, { ...UNMEASURED_COSTS }, metrics.scoring.placed, metrics.served);
  metrics.sources.placement = () => ({
    ...placement.costs,
    inlineUpTo: placement.inlineUpTo,
    threadNsPerCandidate: placement.threadNsPerCandidate,
    requestsPerSecond: placement.requestsPerSecond,
  });
  const scoreTask = createScorer(
    { latencyMinMs: config.MODEL_LATENCY_MIN_MS, latencyMaxMs: config.MODEL_LATENCY_MAX_MS, failureRate: config.MODEL_FAILURE_RATE },
    pool,
    placement,
  );
  const breaker = createModelBreaker(scoreTask, {
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
  const contentRepo = new ContentRepo(sql, metrics.db, config.DB_TIMEOUT_MS, reads);
  const userRepo = new UserRepo(sql, metrics.db, config.DB_TIMEOUT_MS, reads);
  // No client-side deadline (0): see events-repo.ts; the connection's statement_timeout bounds it.
  const eventsRepo = new EventsRepo(sql, metrics.db, 0, reads);
  metrics.sources.dbInFlight = () => repo.inFlight + contentRepo.inFlight + userRepo.inFlight + eventsRepo.inFlight;
  metrics.sources.dbPoolSize = config.DB_POOL_SIZE;
  const channel = new PrimaryChannel(2000);
  const service: RecommendationService = new RecommendationService({
    servedModel,
    repo,
    cache,
    score: (task) => breaker.fire(task),
    model: { candidatePool: config.CANDIDATE_POOL, noise: config.MODEL_NOISE },
    metrics,
    log,
    maxPendingComputations: config.MAX_PENDING_COMPUTATIONS,
    visibility,
    broadcastInvalidation: async (userId, sharedPending, lsn) => {
      try {
        await channel.request('invalidate', userId, { sharedPending, lsn });
      } catch (err) {
        // The write is committed; answering 503 would invite a duplicate retry. Say it loudly instead.
        log.error({ userId, err: (err as Error).message }, 'invalidation broadcast incomplete');
      }
    },
    broadcastInvalidations: async (userIds, sharedPending, lsn) => {
      try {
        await channel.request('invalidate-many', { userIds: [...userIds], sharedPending: [...sharedPending], lsn });
      } catch (err) {
        log.error({ users: userIds.length, err: (err as Error).message }, 'invalidation broadcast incomplete');
      }
    },
  });
  const batch = new BatchService(repo, service, config.BATCH_CONCURRENCY, log, metrics);
  const catalog = new CatalogService({
    catalog: repo.catalog,
    visibility,
    signals: repo,
    content: contentRepo,
    similarity: new SimilarityRepo(sql),
    // The relay tells this worker's siblings and waits for every other instance (barrier).
    broadcastContent: async (hidden, visible) => {
      try {
        await channel.request('content', { hidden, visible });
      } catch (err) {
        log.error({ hidden: hidden.length, err: (err as Error).message }, 'content change broadcast incomplete');
      }
    },
    similarCacheMs: 60_000,
  });
  const users = new UserWrites(userRepo, service);
  const events = new WatchEvents(eventsRepo, service);
  const { queue: jobQueue, ready: jobEngineReady } = JobQueue.connecting(
    {
      databaseUrl,
      role: 'worker',
      maintenanceIntervalS: maintenanceIntervalS(config),
      poolSize: config.JOB_WORKER_CHUNKS + 1,
      onError: (err) => log.warn({ err: err.message }, 'job engine error'),
    },
    2000,
  );
  const jobRepo = new BatchJobRepo(sql, config.JOB_RETENTION_S);
  const jobs = new BatchJobs(jobRepo, jobQueue, service, { chunkUsers: config.JOB_CHUNK_USERS, concurrency: config.JOB_CONCURRENCY }, log, metrics);
  metrics.sources.batchJobs = () => jobRepo.countByStatus();

  const ctx: WireContext = {
    metrics,
    log,
    draining: false,
    inFlight: 0,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    requestIds: RequestIds.forWorker(index),
    accessLog: log.isLevelEnabled('debug'),
  };
  const app = createHttpApp(ctx, {
    recommendations: service,
    batch,
    jobs,
    catalog,
    users,
    events,
    maxBodyBytes: config.MAX_BODY_BYTES,
    eventsMaxBodyBytes: config.EVENTS_MAX_BODY_BYTES,
    guards: createGuards({
      apiKey: config.API_KEY,
      apiKeyForReads: config.API_KEY_READS,
      rateLimitPoints: config.RATE_LIMIT_POINTS,
      rateLimitDurationSec: config.RATE_LIMIT_DURATION_S,
      trustProxy: config.RATE_LIMIT_TRUST_PROXY,
      workers: config.WORKERS,
      redis,
    }),
    openApi: openApiDocument({ authEnabled: config.API_KEY !== undefined, authRequiredForReads: config.API_KEY_READS }),
    readiness: () => checkReadiness(repo, redis, config.DB_TIMEOUT_MS, replicas && (() => replicas.status())),
    metricsText: async () => {
      const reply = await channel.request('metrics');
      if (reply.kind !== 'rec:reply' || !reply.ok) throw new Error('metrics unavailable');
      return { contentType: reply.contentType ?? 'text/plain', body: reply.body ?? '' };
    },
  });

  /** Installs the newest trained model (or `id`) if it is newer than the one in force; never throws. */
  async function loadServedModel(id?: number): Promise<void> {
    if (servedModel.name === 'heuristic' || servedModel.name === 'popularity') {
      metrics.modelServed(servedModel.name, servedModel.serves, 0);
      return;
    }
    try {
      const loaded = await loadModel(sql, id);
      if (loaded && loaded.id > Number(servedModel.version)) {
        servedModel.use(loaded.model, String(loaded.id));
        useGeneration();
        service.invalidateAll();
        metrics.modelTrainingFailed.set(0);
        log.info({ model: servedModel.name, serves: servedModel.serves, id: loaded.id }, 'trained model loaded: cached lists retired');
      } else if (!loaded && id === undefined) {
        log.info({ model: servedModel.name, serves: servedModel.serves }, 'no trained model yet: serving the seed\'s formula until training finishes');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'trained model not loaded: the current one keeps serving');
    }
    metrics.modelServed(servedModel.name, servedModel.serves, Number(servedModel.version));
  }

  let stopping = false;
  let socket: ListenSocket | undefined;
  // Draining: no new connections; a request on a kept-alive connection is still served, with
  // `Connection: close` (ctx.draining), so its client reconnects to a listening worker. The remaining
  // connections close only after no request has run for DRAIN_QUIET_MS: a client that keeps using its
  // connection is moved, never reset, and a request that meets the final close was never read (safe to retry).
  const drainAndExit = async () => {
    if (stopping) return;
    stopping = true;
    ctx.draining = true;
    if (socket) closeListenSocket(socket);
    const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
    let inFlight = ctx.inFlight;
    let lastActive = Date.now();
    // Every request start and end passes through ctx.inFlight: note when the last one did.
    Object.defineProperty(ctx, 'inFlight', {
      get: () => inFlight,
      set: (n: number) => {
        inFlight = n;
        lastActive = Date.now();
      },
    });
    while ((inFlight > 0 || Date.now() - lastActive < DRAIN_QUIET_MS) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (inFlight > 0) log.warn({ inFlight }, 'shutdown timeout: closing with requests in flight');
    app.close();
    // A chunk in progress gets what is left of the timeout; past it the engine hands it to another worker.
    await jobQueue.stop(Math.max(0, deadline - Date.now())).catch(() => {});
    await Promise.allSettled([pool.close(), sql.end({ timeout: 2 }), redis?.quit(), replicas?.close()]);
    breaker.shutdown();
    placement.close();
    repo.catalog.close();
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
        // The sender's Redis invalidation did not land (or not on the replicas): ours must, before we read it.
        if (m.sharedPending) cache.markSharedPending(m.userId);
        service.invalidateLocal(m.userId, m.lsn);
        if (m.id !== undefined) send({ kind: 'rec:ack', id: m.id });
        break;
      case 'rec:invalidate-many':
        for (const userId of m.sharedPending ?? []) cache.markSharedPending(userId);
        for (const userId of m.userIds) service.invalidateLocal(userId, m.lsn);
        if (m.id !== undefined) send({ kind: 'rec:ack', id: m.id });
        break;
      case 'rec:content':
        // Hidden titles leave every response before the acknowledgement; the reload brings the rest.
        visibility.hide(m.hidden);
        visibility.show(m.visible);
        repo.catalog.changed();
        if (m.id !== undefined) send({ kind: 'rec:ack', id: m.id });
        break;
      case 'rec:invalidate-all':
        service.invalidateAll(m.lsn);
        break;
      case 'rec:model':
        if (m.failed) {
          metrics.modelTrainingFailed.set(1);
          log.warn({ serves: servedModel.serves }, 'model training failed: the current model keeps serving');
        } else {
          void loadServedModel(m.id);
        }
        break;
      case 'rec:dataset':
        // Until the new catalog is in, lists are computed from old titles: served, never stored (useDataset).
        service.invalidateAll(m.lsn);
        repo.catalog.reload().catch((err: Error) => log.warn({ err: err.message }, 'catalog reload after reseed failed; retried'));
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

  // The catalog snapshot before the first request needs it (a failure here is retried on first use), and
  // the placement rule's costs measured on it before this worker takes traffic.
  const snapshot = await repo.catalog.current().catch((err: Error) => void log.warn({ err: err.message }, 'catalog not loaded yet'));
  if (snapshot && config.SCORING_MODE === 'adaptive' && !stopping) {
    const sample = scoringTask({ userId: 0, catalog: snapshot, recent: [], watched: [], dismissed: [], audience: { tier: 2, country: null } }, { pool: 0, keep: 50, nowMs: Date.now(), noise: config.MODEL_NOISE });
    await calibrate(pool, sample).then(
      (measured) => Object.assign(placement.costs, measured),
      (err: Error) => log.warn({ err: err.message }, 'scoring costs not measured: using defaults'),
    );
    log.info({ handoffUs: Math.round(placement.costs.handoffNs / 100) / 10, poolWaitUs: Math.round(placement.costs.poolWaitNs / 100) / 10, poolWaitDevUs: Math.round((placement.costs.poolWaitDevNs ?? 0) / 100) / 10, nsPerCandidate: Math.round(placement.costs.nsPerCandidate * 10) / 10, inlineUpTo: placement.inlineUpTo }, 'scoring costs measured');
  }
  await loadServedModel();
  socket = await listen(app, config.HOST, config.PORT);
  if (stopping) return closeListenSocket(socket); // told to stop while it was starting
  // Logged first: once the primary hears of the last worker it says "service ready", and readers of the log
  // (tests among them) then expect every worker's line, with the uWS build it loaded.
  log.info({ port: config.PORT, uws: uwsBuild }, 'worker listening');
  send({ kind: 'rec:listening' });
  if (config.JOB_WORKER_CHUNKS > 0) {
    void jobEngineReady
      .then(() => (stopping ? undefined : jobQueue.work<ChunkRef>(CHUNK_QUEUE, config.JOB_WORKER_CHUNKS, CHUNK_POLLING_S, (job) => jobs.processChunk(job))))
      .catch((err: Error) => log.error({ err: err.message }, 'batch-job chunks not taken by this worker'));
  }
  if (shouldWarm(config.WARM_CACHE_TOP_N, index, redis !== null)) {
    void startCacheWarming(config.WARM_CACHE_TOP_N, {
      topActiveUsers: (n) => repo.topActiveUsers(n),
      recommendations: service,
      log,
      concurrency: config.BATCH_CONCURRENCY,
    });
  }
}
