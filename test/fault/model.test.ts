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

/**
 * A service whose model calls go through a breaker with this reset timeout; `remote.failureRate` is the
 * simulated model's health. Counts the calls that reached the model and records the breaker's states.
 */
function serviceWith(remote: { latencyMinMs: number; latencyMaxMs: number; failureRate: number }, resetTimeoutMs: number) {
  const placement = new Placement('pool', pool, { nsPerCandidate: 1, handoffNs: 1, poolWaitNs: 0 });
  const scorer = createScorer(remote, pool, placement);
  const calls = { n: 0 };
  const states: string[] = [];
  const breaker = createModelBreaker(
    (task: unknown) => {
      calls.n += 1;
      return scorer(task);
    },
    {
      timeoutMs: 1000,
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      resetTimeoutMs,
      rollingCountTimeoutMs: 10_000,
      onStateChange: (s: string) => states.push(s),
    },
  );
  const metrics = createMetrics('test');
  const service = new RecommendationService({
    repo: new RecommendationRepo(sql),
    // A cache that keeps nothing: every request reaches the model (or the breaker).
    cache: new RecommendationCache(null, { ttlSec: 1, fallbackTtlSec: 1, staleTtlSec: 0, l1MaxEntries: 0, l1MaxBytes: 1024, replicaWaitMs: 80 }, metrics),
    score: (task: unknown) => breaker.fire(task),
    model: { candidatePool: 100, noise: false },
    metrics,
    log: createLogger('silent', 'test'),
    maxPendingComputations: 100,
    visibility: new Visibility(),
    broadcastInvalidation: async () => {},
  });
  const source = async (userId: number) => (await service.recommendationsFor(userId)).list.source;
  const close = () => {
    breaker.shutdown();
    placement.close();
  };
  return { breaker, calls, states, source, close };
}

it('opens on failures and, while open, answers with the fallback without calling the model', async () => {
  pool ??= createScoringPool({ threads: 1, maxQueue: 100 });
  // The reset timeout is far beyond the test: the breaker stays open however slowly this machine runs the
  // ten requests below (a 400 ms reset let a loaded machine's half-open probe through: not a fault).
  const m = serviceWith({ latencyMinMs: 0, latencyMaxMs: 0, failureRate: 1 }, 600_000);
  try {
    for (let u = 1; u <= 5; u++) expect(await m.source(u)).toBe('popularity_fallback');
    expect(m.breaker.state()).toBe('open');
    const callsWhenOpened = m.calls.n;
    for (let u = 6; u <= 15; u++) expect(await m.source(u)).toBe('popularity_fallback');
    expect(m.calls.n).toBe(callsWhenOpened); // open: not one call reached the model
    expect(m.states).toEqual(['open']);
  } finally {
    m.close();
  }
});

it('closes through a successful half-open probe once the model recovers, and opens again on new failures', async () => {
  pool ??= createScoringPool({ threads: 1, maxQueue: 100 });
  // The simulated remote model: its failure rate is changed below, as an outage and a recovery.
  const remote = { latencyMinMs: 0, latencyMaxMs: 0, failureRate: 1 };
  const m = serviceWith(remote, 400);
  try {
    for (let u = 1; u <= 5; u++) expect(await m.source(u)).toBe('popularity_fallback');
    expect(m.breaker.state()).toBe('open');
    const callsWhenOpened = m.calls.n;

    // The model recovers; once the reset timeout has turned the breaker half-open (its own event, not a
    // guessed sleep), one probe goes through, succeeds, and closes the breaker.
    remote.failureRate = 0;
    for (let i = 0; i < 200 && m.breaker.state() !== 'half_open'; i++) await new Promise((r) => setTimeout(r, 25));
    expect(m.breaker.state()).toBe('half_open');
    expect(await m.source(16)).toBe('model');
    expect(m.calls.n).toBe(callsWhenOpened + 1);
    expect(m.breaker.state()).toBe('closed');
    for (let u = 17; u <= 20; u++) expect(await m.source(u)).toBe('model');
    expect(m.states).toEqual(['open', 'half_open', 'closed']);

    // Failing again opens it again (the rolling window still counts the earlier calls, so it takes a few).
    remote.failureRate = 1;
    let calls = 0;
    while (m.breaker.state() !== 'open' && calls < 60) await m.source((calls++ % 20) + 1);
    expect(m.breaker.state()).toBe('open');
    expect(calls).toBeGreaterThan(0);
  } finally {
    m.close();
  }
});
