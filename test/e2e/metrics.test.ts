/**
 * GET /metrics of the real clustered server (2 workers): one scrape holds every worker's traffic summed,
 * counters move exactly as the requests imply, and every metric the Grafana dashboard queries exists.
 * Counters are compared as differences between two scrapes; a scrape itself shows up (route "metrics")
 * only in the next one.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, holdReads } from '../support/db.js';
import { dashboardExpressions, familyOf, loadDashboard, metricNames, parseScrape, type Scrape } from '../support/prometheus.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

const REDIS_DB = 8;
const WORKERS = 2;
/** L1 lookups one cold GET /users/{id}/recommendations makes: the route's synchronous check only. */
const L1_LOOKUPS_PER_ROUTE_MISS = 1;

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  const redisUrl = await emptyRedisDb(REDIS_DB);
  server = await startServer({
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    WORKERS: String(WORKERS),
    // One computation at a time per worker: a batch of cold users then has exactly one success.
    MAX_PENDING_COMPUTATIONS: '1',
    // The coalescing test holds PostgreSQL reads behind a lock for a moment: not an outage.
    DB_TIMEOUT_MS: '30000',
    // Not the default, so the gauge below shows the setting reached the threads.
    SCORING_THREAD_NICE: '3',
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

async function scrape(): Promise<Scrape> {
  const r = await server.get('/metrics', true);
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain/);
  return parseScrape(r.text);
}

/** Counter differences between two scrapes. */
function diff(before: Scrape, after: Scrape) {
  return (name: string, match: Record<string, string> = {}) => after.sum(name, match) - before.sum(name, match);
}

/** GETs over one dedicated keep-alive connection: every request lands on the same worker. */
function oneConnection() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string, method = 'GET', body?: string) =>
    new Promise<Reply>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, path, method, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: text ? JSON.parse(text) : undefined });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  return { get, post: (path: string, body: unknown) => get(path, 'POST', JSON.stringify(body)), close: () => agent.destroy() };
}

/** Generated request ids are `<start-up tag>-<worker index>-<counter>`: which worker answered. */
const workerOf = (r: Reply) => /^[0-9a-f]{8}-(\d+)-[0-9a-z]+$/.exec(String(r.headers['x-request-id']))?.[1];

describe('GET /metrics', () => {
  it('sums every worker: N requests over fresh connections count exactly N, wherever they landed', async () => {
    const before = await scrape();
    const replies = await Promise.all(Array.from({ length: 40 }, () => server.get('/health', true)));
    const bad = await server.get('/users/abc/recommendations', true);
    const unknown = await server.get('/nope', true);
    const ready = await server.get('/ready', true);
    const after = await scrape();
    const d = diff(before, after);

    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(replies.map(workerOf))).toEqual(new Set(['0', '1'])); // both workers served some
    expect(d('http_requests_total', { route: 'health', method: 'GET', status: '200' })).toBe(40);
    expect(d('http_request_duration_seconds_count', { route: 'health' })).toBe(40);
    expect(bad.status).toBe(400);
    expect(d('http_requests_total', { route: 'recommendations', status: '400' })).toBe(1);
    expect(unknown.status).toBe(404);
    expect(d('http_requests_total', { route: 'unknown', method: 'GET', status: '404' })).toBe(1);
    expect(ready.status).toBe(200);
    expect(d('db_query_duration_seconds_count', { query: 'ping' })).toBe(1);
    expect(d('http_requests_total', { route: 'metrics', status: '200' })).toBe(1); // the first scrape
    expect(d('http_requests_total')).toBe(40 + 3 + 1);

    // Per-worker series are kept apart by their worker label.
    for (const worker of ['0', '1']) {
      expect(after.sum('process_cpu_seconds_total', { worker })).toBeGreaterThan(0);
      expect(after.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
      expect(after.samples.some((s) => s.name === 'model_breaker_state' && s.labels.worker === worker && s.value === 0)).toBe(true);
      expect(after.sum('scoring_pool_capacity', { worker })).toBe(1); // 1 thread, one CPU task at a time
      expect(after.sum('scoring_thread_nice', { worker })).toBe(3);
      expect(after.sum('scoring_inline_max_candidates', { worker })).toBeGreaterThan(0); // measured at start-up
      expect(after.sum('db_pool_connections', { worker })).toBe(20);
      expect(after.sum('redis_connected', { worker })).toBe(1);
    }
  });

  it('counts one computation, then exactly K L1 hits over one keep-alive connection', async () => {
    const K = 7;
    const conn = oneConnection();
    try {
      const before = await scrape();
      const first = await conn.get('/users/4/recommendations?limit=3');
      const hits: Reply[] = [];
      for (let i = 0; i < K; i++) hits.push(await conn.get('/users/4/recommendations?limit=3'));
      const after = await scrape();
      const d = diff(before, after);

      expect(first.json.metadata).toMatchObject({ cache_hit: false, source: 'model' });
      expect(hits.every((r) => r.status === 200 && r.json.metadata.cache_hit === true)).toBe(true);
      expect(new Set([first, ...hits].map(workerOf)).size).toBe(1);
      expect(d('http_requests_total', { route: 'recommendations', method: 'GET', status: '200' })).toBe(K + 1);
      expect(d('http_request_duration_seconds_count', { route: 'recommendations' })).toBe(K + 1);
      expect(d('cache_lookups_total', { tier: 'l1', result: 'hit' })).toBe(K);
      expect(d('cache_lookups_total', { tier: 'l1', result: 'miss' })).toBe(L1_LOOKUPS_PER_ROUTE_MISS);
      expect(d('cache_lookups_total', { tier: 'redis', result: 'miss' })).toBe(1);
      expect(d('cache_lookups_total', { tier: 'redis', result: 'hit' })).toBe(0);
      expect(d('cache_lookups_total', { tier: 'redis', result: 'error' })).toBe(0);
      expect(d('db_query_duration_seconds_count', { query: 'user_signals' })).toBe(1);
      expect(d('model_calls_total', { result: 'success' })).toBe(1);
      expect(d('model_calls_total')).toBe(1);
      expect(d('model_call_duration_seconds_count')).toBe(1);
      // 50 titles: cheaper to score on the event loop than to hand to a thread (placement rule 1).
      expect(d('scoring_tasks_total', { place: 'inline' })).toBe(1);
      expect(d('scoring_tasks_total', { place: 'pool' })).toBe(0);
      expect(d('scoring_task_wait_seconds_count')).toBe(0);
      expect(d('recommendation_fallbacks_total')).toBe(0);
      expect(d('singleflight_coalesced_total')).toBe(0);
      expect(d('db_query_errors_total')).toBe(0);
      expect(d('redis_command_errors_total')).toBe(0);
      // Histogram buckets are cumulative: the +Inf bucket holds every observation.
      expect(d('http_request_duration_seconds_bucket', { route: 'recommendations', le: '+Inf' })).toBe(K + 1);
    } finally {
      conn.close();
    }
  });

  it('counts a write: one insert, and invalidations applied by its worker, the relay and NOTIFY', async () => {
    const conn = oneConnection();
    try {
      const warm = await conn.get('/users/5/recommendations?limit=1');
      const contentId = warm.json.recommendations[0].content_id as number;
      const before = await scrape();
      const write = await conn.post('/users/5/watch-history', { content_id: contentId });
      expect(write.status).toBe(201);
      // 1 in the writing worker + 1 per worker from the acknowledged relay (the writer's included)
      // + 1 per worker from the trigger's NOTIFY, which the primary relays without waiting.
      const expected = 1 + WORKERS + WORKERS;
      let after = await scrape();
      for (let i = 0; i < 100 && diff(before, after)('cache_invalidations_total') < expected; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = await scrape();
      }
      const d = diff(before, after);
      expect(d('cache_invalidations_total')).toBe(expected);
      expect(d('db_query_duration_seconds_count', { query: 'add_watch' })).toBe(1);
      expect(d('db_query_errors_total', { query: 'add_watch' })).toBe(0);
      expect(d('http_requests_total', { route: 'watch_history', method: 'POST', status: '201' })).toBe(1);

      const reread = await conn.get('/users/5/recommendations?limit=50');
      expect(reread.json.metadata.cache_hit).toBe(false);
      expect(reread.json.recommendations.map((r: { content_id: number }) => r.content_id)).not.toContain(contentId);
      expect(diff(after, await scrape())('cache_lookups_total', { tier: 'l1', result: 'hit' })).toBe(0);
    } finally {
      conn.close();
    }
  });

  it('counts requests that joined an in-flight computation', async () => {
    const N = 6;
    const before = await scrape();
    // Hold every computation at its PostgreSQL read until all N requests have arrived: each worker that
    // received some computes once, the others join it.
    const hold = await holdReads(db.sql, 'users');
    const replies = Promise.all(Array.from({ length: N }, () => server.get('/users/6/recommendations?limit=2', true)));
    try {
      for (let i = 0; i < 200; i++) {
        const arrived = diff(before, await scrape())('cache_lookups_total', { tier: 'l1', result: 'miss' });
        if (arrived >= N * L1_LOOKUPS_PER_ROUTE_MISS) break;
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      await hold.release();
    }
    const answered = await replies;
    const after = await scrape();
    const d = diff(before, after);

    expect(answered.map((r) => r.status)).toEqual(Array(N).fill(200));
    expect(answered.every((r) => r.json.metadata.cache_hit === false)).toBe(true);
    const computations = new Set(answered.map(workerOf)).size; // one per worker that got a request
    expect(d('cache_lookups_total', { tier: 'l1', result: 'miss' })).toBe(N * L1_LOOKUPS_PER_ROUTE_MISS);
    expect(d('singleflight_coalesced_total')).toBe(N - computations);
    expect(d('model_calls_total', { result: 'success' })).toBe(computations);
    expect(d('db_query_duration_seconds_count', { query: 'user_signals' })).toBe(computations);
    expect(d('cache_lookups_total', { tier: 'redis', result: 'miss' }) + d('cache_lookups_total', { tier: 'redis', result: 'hit' })).toBe(
      computations,
    );
  });

  it('counts batch users by status and times the batch', async () => {
    const before = await scrape();
    // Users 16..20 are cold everywhere; with MAX_PENDING_COMPUTATIONS=1 the first one computes and the
    // other four are shed (service_unavailable) while it is in flight.
    const r = await server.get('/recommendations/batch?page=4&limit=5', true);
    const after = await scrape();
    const d = diff(before, after);

    expect(r.status).toBe(200);
    expect(r.json.summary).toMatchObject({ success_count: 1, failed_count: 4 });
    expect(d('batch_users_total', { status: 'success' })).toBe(1);
    expect(d('batch_users_total', { status: 'failed' })).toBe(4);
    expect(d('batch_duration_seconds_count')).toBe(1);
    expect(d('db_query_duration_seconds_count', { query: 'user_page' })).toBe(1);
    expect(d('http_requests_total', { route: 'batch', method: 'GET', status: '200' })).toBe(1);
  });

  it('exports every metric the Grafana dashboard queries', async () => {
    const s = await scrape();
    const exprs = dashboardExpressions(loadDashboard());
    expect(exprs.length).toBeGreaterThan(30);
    const missing: string[] = [];
    for (const { panel, expr } of exprs) {
      for (const name of metricNames(expr)) {
        const family = familyOf(name, s.types);
        if (!s.types.has(family) || !s.has(name)) missing.push(`${name} (panel "${panel}")`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('writes no access log lines at LOG_LEVEL=info', () => {
    expect(server.output()).not.toContain('"msg":"request"');
  });
});
