/**
 * The one prom-client registry of a worker. Metric objects and their label children are created once at
 * start-up; the request path only calls inc()/observe() on prebuilt children.
 *
 * Counters and histograms of the request path are our own collectors registered in the prom-client
 * registry: a child is plain numbers, so inc() is one addition. prom-client's own children hash their
 * label set into a new string and validate it on every call (about 0.2 µs and garbage per call; see
 * scripts/bench-metrics.mjs). Ours publish in prom-client's JSON shape when the registry is read. Gauges are prom-client's; those
 * whose numbers live elsewhere (scoring pool, PostgreSQL in-flight count, Redis connection) are read at
 * scrape time through `sources`, which the worker wires once.
 *
 * The primary sums every worker's registry (AggregatorRegistry): counters and histograms add up, which is
 * why every duration is a histogram (summaries do not aggregate). Per-worker gauges carry a `worker`
 * label so the sum keeps them apart.
 */
import client from 'prom-client';

export const ROUTES = [
  'recommendations', 'batch', 'watch_history', 'events', 'content_list', 'content_item', 'content_similar', 'content_write', 'user_write',
  'dismissals', 'jobs', 'health', 'ready', 'metrics', 'unknown',
] as const;
export type RouteName = (typeof ROUTES)[number];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OTHER'] as const;
const STATUSES = [200, 201, 202, 204, 400, 401, 404, 405, 413, 414, 415, 429, 500, 503] as const;

export const CACHE_TIERS = ['l1', 'redis'] as const;
export const CACHE_RESULTS = ['hit', 'miss', 'error'] as const;
export const MODEL_RESULTS = ['success', 'failure', 'timeout', 'rejected'] as const;
export const DB_QUERIES = [
  'user_signals', 'add_watch', 'add_events', 'user_page', 'ping',
  'content_upsert', 'content_bulk', 'content_hide', 'content_by_id', 'user_upsert', 'dismiss', 'undismiss',
] as const;
export type DbQuery = (typeof DB_QUERIES)[number];
export const BATCH_STATUSES = ['success', 'failed'] as const;
export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
/** committed: results written; skipped: done already (a retry after a crash), or its job cancelled or gone. */
export const JOB_CHUNK_OUTCOMES = ['committed', 'skipped'] as const;

/** Scoring-pool numbers read at scrape time (ScoringPool.stats() fits). */
export interface PoolGauges {
  queueSize: number;
  utilization: number;
  inFlight: number;
  capacity: number;
  nice: number;
}

/** The placement rule's measured costs (scoring-worker/placement.ts). */
export interface PlacementGauges {
  /** Tasks up to this many candidates are cheaper inline than the thread hand-off. */
  inlineUpTo: number;
  handoffNs: number;
  nsPerCandidate: number;
  poolWaitNs: number;
  poolWaitDevNs?: number;
  /** Measured, or the inline cost until measured. */
  threadNsPerCandidate: number;
  threadDevNsPerCandidate?: number;
  /** Requests per second the worker's event loop served at the last sample (what an inline task delays). */
  requestsPerSecond: number;
}

/** Where scrape-time gauges read from; unset sources report nothing. */
export interface GaugeSources {
  scoringPool?: () => PoolGauges;
  placement?: () => PlacementGauges;
  /** Statements sent to PostgreSQL and not yet answered (postgres.js has no public pool statistics). */
  dbInFlight?: () => number;
  dbPoolSize?: number;
  /** Whether the Redis client is connected and ready; unset when Redis is not configured. */
  redisReady?: () => boolean;
  /** Batch jobs by status, read from PostgreSQL at scrape time (every instance's jobs: they share it). */
  batchJobs?: () => Promise<Record<(typeof JOB_STATUSES)[number], number>>;
  /** Each PostgreSQL replica's last probe (DATABASE_REPLICA_URLS); unset without replicas. */
  replicas?: () => readonly { replica: string; state: string; lag_ms: number | null }[];
}

/** Where reads went, and why one went to the primary although replicas are configured. */
export interface ReplicaReadCounters {
  reads: Record<'primary' | 'replica', CounterChild>;
  fallbacks: Record<'not_replayed' | 'unhealthy' | 'error', CounterChild>;
}

/** One counter series: a number the hot path adds to, published when the registry is read. */
export class CounterChild {
  value = 0;
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(by = 1): void {
    this.value += by;
  }
}

/** One histogram series: per-bucket counts (the last slot is above the top bound), sum and count. */
export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i] = this.counts[i]! + 1;
    this.sum += value;
    this.count += 1;
  }
}

type Labels = Record<string, string | number>;
interface ExportedValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** A family of precreated children, registered in prom-client's registry like any of its metrics. */
abstract class Family<C extends { labels: Readonly<Record<string, string>> }> {
  readonly aggregator = 'sum';
  protected readonly children = new Map<string, C>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
    registry: client.Registry,
  ) {
    registry.registerMetric(this as unknown as client.Metric);
  }

  /** The child for these label values, created on first request (start-up) and reused after. */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let child = this.children.get(key);
    if (!child) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected labels ${this.labelNames.join(', ')}`);
      child = this.create(Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])));
      this.children.set(key, child);
    }
    return child;
  }

  /** prom-client's metric JSON (what Registry.metrics() formats and AggregatorRegistry sums). */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    for (const child of this.children.values()) this.export(child, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Registry.resetMetrics() calls this: every child back to zero (children stay, so do references). */
  reset(): void {
    for (const child of this.children.values()) this.zero(child);
  }

  protected abstract create(labels: Record<string, string>): C;
  protected abstract export(child: C, into: ExportedValue[]): void;
  protected abstract zero(child: C): void;
}

class Counter extends Family<CounterChild> {
  constructor(opts: { name: string; help: string; labelNames?: string[] }, registry: client.Registry) {
    super(opts.name, opts.help, 'counter', opts.labelNames ?? [], registry);
  }

  protected create(labels: Record<string, string>): CounterChild {
    return new CounterChild(labels);
  }

  protected export(child: CounterChild, into: ExportedValue[]): void {
    into.push({ labels: { ...child.labels }, value: child.value });
  }

  protected zero(child: CounterChild): void {
    child.value = 0;
  }
}

class Histogram extends Family<HistogramChild> {
  private readonly bounds: readonly number[];

  constructor(opts: { name: string; help: string; labelNames?: string[]; buckets: number[] }, registry: client.Registry) {
    super(opts.name, opts.help, 'histogram', opts.labelNames ?? [], registry);
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(labels: Record<string, string>): HistogramChild {
    return new HistogramChild(labels, this.bounds);
  }

  protected export(child: HistogramChild, into: ExportedValue[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += child.counts[i]!;
      into.push({ labels: { ...child.labels, le: this.bounds[i]! }, value: cumulative, metricName: bucket });
    }
    into.push({ labels: { ...child.labels, le: '+Inf' }, value: child.count, metricName: bucket });
    into.push({ labels: { ...child.labels }, value: child.sum, metricName: `${this.name}_sum` });
    into.push({ labels: { ...child.labels }, value: child.count, metricName: `${this.name}_count` });
  }

  protected zero(child: HistogramChild): void {
    child.counts.fill(0);
    child.sum = 0;
    child.count = 0;
  }
}

export interface QueryMetrics {
  duration: HistogramChild;
  errors: CounterChild;
}

export interface Metrics {
  registry: client.Registry;
  request(route: RouteName, method: string, status: number, seconds: number): void;
  /** Requests this worker has answered so far (a plain running count, for the placement rule). */
  served(): number;
  cache: Record<(typeof CACHE_TIERS)[number], Record<(typeof CACHE_RESULTS)[number], CounterChild>>;
  invalidations: CounterChild;
  coalesced: CounterChild;
  model: Record<(typeof MODEL_RESULTS)[number], CounterChild>;
  modelDuration: HistogramChild;
  fallbacks: Record<'failure' | 'timeout' | 'rejected', CounterChild>;
  breakerState: client.Gauge.Internal<string>;
  /** Which model serves: model_served{model, serves} 1 for the current pair (the previous pair is removed). */
  modelServed(model: string, serves: string, version: number): void;
  /** 1 while the newest training run failed (the previous model serves), 0 after a model loads. */
  modelTrainingFailed: client.Gauge.Internal<string>;
  scoring: { wait: HistogramChild; run: HistogramChild; placed: Record<'inline' | 'pool', CounterChild> };
  db: Record<DbQuery, QueryMetrics>;
  redisCommandErrors: CounterChild;
  batch: { users: Record<(typeof BATCH_STATUSES)[number], CounterChild>; duration: HistogramChild };
  /** Asynchronous batch jobs: users whose results this worker committed, and chunks it committed or skipped. */
  jobs: { users: Record<(typeof BATCH_STATUSES)[number], CounterChild>; chunks: Record<(typeof JOB_CHUNK_OUTCOMES)[number], CounterChild> };
  sources: GaugeSources;
  /** Registers the replica metrics (first call; only with replicas configured, so without them /metrics is unchanged). */
  replicaReads(): ReplicaReadCounters;
}

const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Scoring tasks: wait and run times, from 0.1 ms (a hand-off) to 1 s. */
const TASK_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const MODEL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1];

/** Worker-side metrics. `workerLabel` tells apart each worker's process metrics and gauges. */
export function createMetrics(workerLabel: string): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, labels: { worker: workerLabel } });
  // GC series appear at the first collection of each kind; zeroed now, a dashboard never lacks them.
  const gc = registry.getSingleMetric('nodejs_gc_duration_seconds') as client.Histogram | undefined;
  for (const kind of ['minor', 'major', 'incremental', 'weakcb']) gc?.zero({ kind, worker: workerLabel });
  const sources: GaugeSources = {};

  const requests = new Counter(
    { name: 'http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] },
    registry,
  );
  const duration = new Histogram(
    {
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route (handler entry to response written)',
      labelNames: ['route'],
      buckets: FAST_BUCKETS,
    },
    registry,
  );
  // route → method → status → child: three property reads per request, no key string built.
  type ByStatus = Record<number, CounterChild>;
  const requestChildren = {} as Record<RouteName, Record<(typeof METHODS)[number], ByStatus>>;
  const durationChildren = {} as Record<RouteName, HistogramChild>;
  for (const route of ROUTES) {
    durationChildren[route] = duration.labels(route);
    requestChildren[route] = {} as Record<(typeof METHODS)[number], ByStatus>;
    for (const method of METHODS) {
      const byStatus: ByStatus = {};
      for (const status of STATUSES) byStatus[status] = requests.labels(route, method, String(status));
      requestChildren[route][method] = byStatus;
    }
  }

  const cacheLookups = new Counter(
    { name: 'cache_lookups_total', help: 'Recommendation cache lookups by tier and result', labelNames: ['tier', 'result'] },
    registry,
  );
  const cache = Object.fromEntries(
    CACHE_TIERS.map((tier) => [tier, Object.fromEntries(CACHE_RESULTS.map((r) => [r, cacheLookups.labels(tier, r)]))]),
  ) as Metrics['cache'];

  const invalidations = new Counter(
    {
      name: 'cache_invalidations_total',
      help: 'Per-user cache invalidations applied by this worker (own writes, relayed writes, NOTIFY)',
    },
    registry,
  ).labels();
  const coalesced = new Counter(
    { name: 'singleflight_coalesced_total', help: 'Requests that joined an in-flight computation for the same user' },
    registry,
  ).labels();

  const modelCalls = new Counter(
    { name: 'model_calls_total', help: 'Scoring model calls by result', labelNames: ['result'] },
    registry,
  );
  const model = Object.fromEntries(MODEL_RESULTS.map((r) => [r, modelCalls.labels(r)])) as Metrics['model'];
  const modelDuration = new Histogram(
    {
      name: 'model_call_duration_seconds',
      help: 'Scoring model call duration (successful calls, through the breaker)',
      buckets: MODEL_BUCKETS,
    },
    registry,
  ).labels();
  const fallbackCounter = new Counter(
    {
      name: 'recommendation_fallbacks_total',
      help: 'Popularity-fallback lists served instead of model rankings, by reason',
      labelNames: ['reason'],
    },
    registry,
  );
  const fallbacks = {
    failure: fallbackCounter.labels('failure'),
    timeout: fallbackCounter.labels('timeout'),
    rejected: fallbackCounter.labels('rejected'),
  };
  const breakerState = new client.Gauge({
    name: 'model_breaker_state',
    help: 'Circuit breaker state per worker: 0 closed, 1 half-open, 2 open',
    labelNames: ['worker'],
    registers: [registry],
  }).labels(workerLabel);
  breakerState.set(0);
  const modelServedGauge = new client.Gauge({
    name: 'model_served',
    help: 'The model that ranks (MODEL) and what it serves (auto: its validated choice; a learned model before training: heuristic); 1 for the pair in force',
    labelNames: ['worker', 'model', 'serves'],
    registers: [registry],
  });
  const modelVersionGauge = new client.Gauge({
    name: 'model_version',
    help: 'Id of the trained model in force (0: none trained yet)',
    labelNames: ['worker'],
    registers: [registry],
  }).labels(workerLabel);
  const modelTrainingFailed = new client.Gauge({
    name: 'model_training_failed',
    help: '1 while the newest training run failed and the previous model keeps serving',
    labelNames: ['worker'],
    registers: [registry],
  }).labels(workerLabel);
  modelTrainingFailed.set(0);
  const modelServed = (model: string, serves: string, version: number): void => {
    modelServedGauge.reset();
    modelServedGauge.labels(workerLabel, model, serves).set(1);
    modelVersionGauge.set(version);
  };

  const scoring = {
    wait: new Histogram(
      {
        name: 'scoring_task_wait_seconds',
        help: 'Scoring task time outside the thread: queue and hand-off (completed tasks)',
        buckets: TASK_BUCKETS,
      },
      registry,
    ).labels(),
    run: new Histogram(
      {
        name: 'scoring_task_run_seconds',
        help: 'Scoring task time on a thread (completed tasks)',
        buckets: TASK_BUCKETS,
      },
      registry,
    ).labels(),
    placed: (() => {
      const c = new Counter(
        { name: 'scoring_tasks_total', help: 'Scoring tasks by where they ran: inline (the HTTP event loop) or pool (a Piscina thread)', labelNames: ['place'] },
        registry,
      );
      return { inline: c.labels('inline'), pool: c.labels('pool') };
    })(),
  };
  const workerGauge = (name: string, help: string, read: () => number | undefined) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['worker'],
      registers: [registry],
      collect() {
        const value = read();
        if (value !== undefined) this.labels(workerLabel).set(value);
      },
    });
  workerGauge('scoring_pool_queue_size', 'Scoring tasks waiting for a thread slot', () => sources.scoringPool?.().queueSize);
  workerGauge(
    'scoring_pool_utilization_ratio',
    "Share of the pool threads' time spent running tasks since start (Piscina's estimate)",
    () => sources.scoringPool?.().utilization,
  );
  workerGauge(
    'scoring_pool_tasks_in_flight',
    'Scoring tasks submitted and not yet settled (queued or running)',
    () => sources.scoringPool?.().inFlight,
  );
  workerGauge('scoring_pool_capacity', 'Scoring tasks the pool runs at once (one per thread)', () => sources.scoringPool?.().capacity);
  workerGauge('scoring_thread_nice', 'OS niceness added to the scoring threads (SCORING_THREAD_NICE as resolved)', () => sources.scoringPool?.().nice);
  workerGauge(
    'scoring_inline_max_candidates',
    'Placement rule: tasks up to this many candidates cost less inline than the measured thread hand-off',
    () => sources.placement?.().inlineUpTo,
  );
  workerGauge('scoring_handoff_seconds', 'Measured event-loop cost of one scoring-thread round trip', () => {
    const p = sources.placement?.();
    return p && p.handoffNs / 1e9;
  });
  workerGauge('scoring_pool_wait_estimate_seconds', 'Placement rule: measured wall time a pool task spends outside its thread (hand-off, wake-ups, queue)', () => {
    const p = sources.placement?.();
    return p && p.poolWaitNs / 1e9;
  });
  workerGauge('scoring_pool_wait_deviation_seconds', 'Placement rule: mean deviation of that wait (the rule expects the estimate plus twice this)', () => {
    const p = sources.placement?.();
    return p && (p.poolWaitDevNs ?? 0) / 1e9;
  });
  workerGauge('scoring_inline_seconds_per_candidate', 'Measured event-loop cost of scoring one candidate inline', () => {
    const p = sources.placement?.();
    return p && p.nsPerCandidate / 1e9;
  });
  workerGauge('scoring_thread_seconds_per_candidate', 'Placement rule: measured wall time a scoring thread takes per candidate, preemptions included (the inline cost until measured)', () => {
    const p = sources.placement?.();
    return p && p.threadNsPerCandidate / 1e9;
  });
  workerGauge('scoring_loop_requests_per_second', 'Placement rule: requests per second this event loop served (scoring inline delays those arriving meanwhile)', () => sources.placement?.().requestsPerSecond);
  workerGauge('scoring_thread_deviation_seconds_per_candidate', 'Placement rule: mean deviation of that per-candidate time (the rule expects the mean plus twice this)', () => {
    const p = sources.placement?.();
    return p && (p.threadDevNsPerCandidate ?? 0) / 1e9;
  });

  const dbDuration = new Histogram(
    {
      name: 'db_query_duration_seconds',
      help: 'PostgreSQL statement duration by query (failed ones included)',
      labelNames: ['query'],
      buckets: FAST_BUCKETS,
    },
    registry,
  );
  const dbErrors = new Counter(
    {
      name: 'db_query_errors_total',
      help: 'PostgreSQL statements that failed (connection, timeout, server error; not constraint violations)',
      labelNames: ['query'],
    },
    registry,
  );
  const db = Object.fromEntries(
    DB_QUERIES.map((q) => [q, { duration: dbDuration.labels(q), errors: dbErrors.labels(q) }]),
  ) as Metrics['db'];
  workerGauge(
    'db_queries_in_flight',
    'PostgreSQL statements sent and not yet answered (postgres.js runs at most db_pool_connections at once)',
    () => sources.dbInFlight?.(),
  );
  workerGauge('db_pool_connections', 'PostgreSQL connections this worker may open (DB_POOL_SIZE)', () => sources.dbPoolSize);

  const redisCommandErrors = new Counter(
    { name: 'redis_command_errors_total', help: 'Redis commands that failed (timeout, connection down, server error)' },
    registry,
  ).labels();
  workerGauge('redis_connected', 'Redis client per worker: 1 ready, 0 not (absent when no Redis is configured)', () => {
    const ready = sources.redisReady;
    return ready ? (ready() ? 1 : 0) : undefined;
  });

  const batchUsers = new Counter(
    { name: 'batch_users_total', help: 'Users processed by batch requests, by status', labelNames: ['status'] },
    registry,
  );
  const batch = {
    users: Object.fromEntries(BATCH_STATUSES.map((s) => [s, batchUsers.labels(s)])) as Metrics['batch']['users'],
    duration: new Histogram(
      {
        name: 'batch_duration_seconds',
        help: 'Duration of one batch page (user list query and every user computation)',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      },
      registry,
    ).labels(),
  };

  const jobUsers = new Counter(
    { name: 'batch_job_users_total', help: 'Users whose batch-job results this worker committed, by status', labelNames: ['status'] },
    registry,
  );
  const jobChunks = new Counter(
    {
      name: 'batch_job_chunks_total',
      help: 'Batch-job chunks this worker finished: committed (results written) or skipped (done already after a retry, or its job cancelled or expired)',
      labelNames: ['outcome'],
    },
    registry,
  );
  const jobs = {
    users: Object.fromEntries(BATCH_STATUSES.map((s) => [s, jobUsers.labels(s)])) as Metrics['jobs']['users'],
    chunks: Object.fromEntries(JOB_CHUNK_OUTCOMES.map((o) => [o, jobChunks.labels(o)])) as Metrics['jobs']['chunks'],
  };
  // Every worker reads the same table: the primary keeps the largest, not the sum.
  new client.Gauge({
    name: 'batch_jobs',
    help: 'Batch jobs by status, across every instance (finished ones until JOB_RETENTION_S)',
    labelNames: ['status'],
    registers: [registry],
    aggregator: 'max',
    async collect() {
      const counts = await sources.batchJobs?.().catch(() => undefined);
      for (const status of JOB_STATUSES) {
        if (counts) this.labels(status).set(counts[status]);
        else if (!sources.batchJobs) this.labels(status).set(0);
      }
    },
  });

  let replicaReads: ReplicaReadCounters | undefined;
  const registerReplicaMetrics = (): ReplicaReadCounters => {
    const reads = new Counter(
      { name: 'pg_reads_total', help: 'Request-path PostgreSQL reads by where they ran: primary or replica', labelNames: ['target'] },
      registry,
    );
    const fallbacks = new Counter(
      {
        name: 'pg_replica_fallbacks_total',
        help: 'Reads sent to the primary although replicas are configured: not_replayed (no healthy replica had replayed the user\'s last write), unhealthy (none up within REPLICA_MAX_LAG_MS), error (the replica failed the read; retried on the primary)',
        labelNames: ['reason'],
      },
      registry,
    );
    const replicaGauge = (name: string, help: string, read: (r: { state: string; lag_ms: number | null }) => number | undefined) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['replica', 'worker'],
        registers: [registry],
        collect() {
          for (const r of sources.replicas?.() ?? []) {
            const value = read(r);
            if (value !== undefined) this.labels(r.replica, workerLabel).set(value);
          }
        },
      });
    replicaGauge('pg_replica_up', 'PostgreSQL replica (host:port) as this worker last probed it: 1 a reachable standby, 0 down', (r) =>
      r.state === 'down' ? 0 : 1,
    );
    replicaGauge('pg_replica_lag_seconds', 'How far the replica\'s replayed data is behind the primary (0 = caught up), at the last good probe', (r) =>
      r.lag_ms === null ? undefined : r.lag_ms / 1000,
    );
    return {
      reads: { primary: reads.labels('primary'), replica: reads.labels('replica') },
      fallbacks: {
        not_replayed: fallbacks.labels('not_replayed'),
        unhealthy: fallbacks.labels('unhealthy'),
        error: fallbacks.labels('error'),
      },
    };
  };

  let served = 0;
  return {
    replicaReads: () => (replicaReads ??= registerReplicaMetrics()),
    registry,
    served: () => served,
    request(route, method, status, seconds) {
      served += 1;
      const byMethod = requestChildren[route];
      const known = byMethod[method as (typeof METHODS)[number]];
      const byStatus = known ?? byMethod.OTHER;
      // A status outside STATUSES gets its child once, then reuses it.
      (byStatus[status] ??= requests.labels(route, known ? method : 'OTHER', String(status))).inc();
      durationChildren[route].observe(seconds);
    },
    cache,
    invalidations,
    coalesced,
    model,
    modelDuration,
    fallbacks,
    breakerState,
    modelServed,
    modelTrainingFailed,
    scoring,
    db,
    redisCommandErrors,
    batch,
    jobs,
    sources,
  };
}
