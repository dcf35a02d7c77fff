/**
 * The model failing and recovering, in-process with the real Piscina pool, the real opossum breaker and
 * real PostgreSQL: the breaker opens, requests get the popularity fallback without calling the model,
 * and once the model works again the half-open probe closes the breaker and personalized lists return.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';

// Compiled modules: the pool's worker thread runs dist/, and its errors must be dist's classes.
const dist = '../../dist';
const { connect } = await import(`${dist}/data/db.js`);
const { RecommendationCache } = await import(`${dist}/data/recommendation-cache.js`);
const { RecommendationRepo } = await import(`${dist}/data/recommendation-repo.js`);
const { seedIfEmpty } = await import(`${dist}/data/seed.js`);
const { createLogger } = await import(`${dist}/observability/logger.js`);
const { createMetrics } = await import(`${dist}/observability/metrics.js`);
const { createScoringPool } = await import(`${dist}/scoring-worker/pool.js`);
const { Placement } = await import(`${dist}/scoring-worker/placement.js`);
const { createScorer } = await import(`${dist}/scoring-worker/scorer.js`);
const { createModelBreaker } = await import(`${dist}/service/breaker.js`);
const { RecommendationService } = await import(`${dist}/service/recommendation-service.js`);
const { Visibility } = await import(`${dist}/service/visibility.js`);

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: any;
let pool: any;

beforeAll(async () => {
  db = await createTestDatabase();
  await seedIfEmpty(db.sql);
  sql = connect(db.url, { max: 4 });
});
afterAll(async () => {
  await pool?.close();
  await sql?.end();
  await db?.drop();
});

it('opens on failures, skips the model while open, and closes through a successful half-open probe', async () => {
  pool = createScoringPool({ threads: 1, maxQueue: 100 });
  // The simulated remote model: its failure rate is changed below, as an outage and a recovery.
  const remote = { latencyMinMs: 0, latencyMaxMs: 0, failureRate: 1 };
  const placement = new Placement('pool', pool, { nsPerCandidate: 1, handoffNs: 1, poolWaitNs: 0 });
  const scorer = createScorer(remote, pool, placement);
  let modelCalls = 0;
  const states: string[] = [];
  const breaker = createModelBreaker(
    (task: unknown) => {
      modelCalls += 1;
      return scorer(task);
    },
    {
      timeoutMs: 1000,
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      resetTimeoutMs: 400,
      rollingCountTimeoutMs: 10_000,
      onStateChange: (s: string) => states.push(s),
    },
  );
  const model = { candidatePool: 100, noise: false };
  const metrics = createMetrics('test');
  const service = new RecommendationService({
    repo: new RecommendationRepo(sql),
    // A cache that keeps nothing: every request reaches the model (or the breaker).
    cache: new RecommendationCache(null, { ttlSec: 1, fallbackTtlSec: 1, staleTtlSec: 0, l1MaxEntries: 0, l1MaxBytes: 1024, replicaWaitMs: 80 }, metrics),
    score: (task: unknown) => breaker.fire(task),
    model,
    metrics,
    log: createLogger('silent', 'test'),
    maxPendingComputations: 100,
    visibility: new Visibility(),
    broadcastInvalidation: async () => {},
  });
  const source = async (userId: number) => (await service.recommendationsFor(userId)).list.source;

  // The model fails every call: fallback answers, and after the volume threshold the breaker opens.
  for (let u = 1; u <= 5; u++) expect(await source(u)).toBe('popularity_fallback');
  expect(breaker.state()).toBe('open');
  const callsWhenOpened = modelCalls;
  for (let u = 6; u <= 15; u++) expect(await source(u)).toBe('popularity_fallback');
  expect(modelCalls).toBe(callsWhenOpened); // open: not one call reached the model

  // The model recovers; after the reset timeout one probe goes through, succeeds, and closes the breaker.
  remote.failureRate = 0;
  await new Promise((r) => setTimeout(r, 500));
  expect(await source(16)).toBe('model');
  expect(modelCalls).toBe(callsWhenOpened + 1);
  expect(breaker.state()).toBe('closed');
  for (let u = 17; u <= 20; u++) expect(await source(u)).toBe('model');
  expect(states).toEqual(['open', 'half_open', 'closed']);

  // Failing again opens it again (the rolling window still counts the earlier calls, so it takes a few).
  remote.failureRate = 1;
  let calls = 0;
  while (breaker.state() !== 'open' && calls < 60) await source((calls++ % 20) + 1);
  expect(breaker.state()).toBe('open');
  expect(calls).toBeGreaterThan(0);
  breaker.shutdown();
  placement.close();
});
