/**
 * The one prom-client registry. Metric objects and their label children are created once at start-up
 * so the request path only calls inc()/observe() on prebuilt children.
 */
import client from 'prom-client';

export const ROUTES = ['recommendations', 'batch', 'watch_history', 'health', 'ready', 'metrics', 'unknown'] as const;
export type RouteName = (typeof ROUTES)[number];
const METHODS = ['GET', 'POST', 'OTHER'] as const;
const STATUSES = [200, 201, 400, 401, 404, 405, 413, 429, 500, 503] as const;

export const CACHE_TIERS = ['l1', 'redis'] as const;
export const CACHE_RESULTS = ['hit', 'miss', 'error'] as const;
export const MODEL_RESULTS = ['success', 'failure', 'timeout', 'rejected'] as const;



export interface Metrics {
  registry: client.Registry;
  request(route: RouteName, method: string, status: number, seconds: number): void;
  cache: Record<(typeof CACHE_TIERS)[number], Record<(typeof CACHE_RESULTS)[number], client.Counter.Internal>>;
  invalidations: client.Counter.Internal;
  coalesced: client.Counter.Internal;
  model: Record<(typeof MODEL_RESULTS)[number], client.Counter.Internal>;
  modelDuration: client.Histogram.Internal<string>;
  fallbacks: Record<'failure' | 'timeout' | 'rejected', client.Counter.Internal>;
  breakerState: client.Gauge.Internal<string>;
}

/** Worker-side metrics. `workerLabel` tells apart each worker's default (process) metrics. */
export function createMetrics(workerLabel: string): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, labels: { worker: workerLabel } });

  const requests = new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const requestChildren = new Map<string, client.Counter.Internal>();
  const durationChildren = new Map<string, client.Histogram.Internal<string>>();
  for (const route of ROUTES) {
    durationChildren.set(route, duration.labels(route));
    for (const method of METHODS) {
      for (const status of STATUSES) requestChildren.set(`${route} ${method} ${status}`, requests.labels(route, method, String(status)));
    }
  }

  const cacheLookups = new client.Counter({
    name: 'cache_lookups_total',
    help: 'Recommendation cache lookups by tier and result',
    labelNames: ['tier', 'result'],
    registers: [registry],
  });
  const cache = Object.fromEntries(
    CACHE_TIERS.map((tier) => [tier, Object.fromEntries(CACHE_RESULTS.map((r) => [r, cacheLookups.labels(tier, r)]))]),
  ) as Metrics['cache'];

  const invalidations = new client.Counter({
    name: 'cache_invalidations_total',
    help: 'Per-user cache invalidations applied by this worker',
    registers: [registry],
  }).labels();
  const coalesced = new client.Counter({
    name: 'singleflight_coalesced_total',
    help: 'Requests that joined an in-flight computation for the same user',
    registers: [registry],
  }).labels();

  const modelCalls = new client.Counter({
    name: 'model_calls_total',
    help: 'Scoring model calls by result',
    labelNames: ['result'],
    registers: [registry],
  });
  const model = Object.fromEntries(MODEL_RESULTS.map((r) => [r, modelCalls.labels(r)])) as Metrics['model'];
  const modelDuration = new client.Histogram({
    name: 'model_call_duration_seconds',
    help: 'Scoring model call duration (successful calls)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  }).labels();
  const fallbackCounter = new client.Counter({
    name: 'recommendation_fallbacks_total',
    help: 'Popularity-fallback lists served instead of model rankings, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
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

  const other = (route: RouteName, status: number) => requestChildren.get(`${route} OTHER ${status}`);
  return {
    registry,
    request(route, method, status, seconds) {
      const child = requestChildren.get(`${route} ${method} ${status}`) ?? other(route, status) ?? requests.labels(route, method, String(status));
      child.inc();
      durationChildren.get(route)!.observe(seconds);
    },
    cache,
    invalidations,
    coalesced,
    model,
    modelDuration,
    fallbacks,
    breakerState,
  };
}
