/**
 * Deadlines and load shedding: past REQUEST_TIMEOUT_MS a client gets 503 request_timeout; more cache
 * misses than MAX_PENDING_COMPUTATIONS are shed with 503 at once instead of queueing; a full scoring
 * queue costs personalization (popularity fallback), not errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { tally } from '../support/faults.js';
import { startServer, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('with a slow model', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      DATABASE_URL: db.url,
      WORKERS: '1',
      MODEL_LATENCY_MS: '800',
      MODEL_TIMEOUT_MS: '5000',
      MAX_PENDING_COMPUTATIONS: '4',
      SCORING_QUEUE_MAX: '1000',
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('sheds misses beyond MAX_PENDING_COMPUTATIONS with 503 and serves the rest', async () => {
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => server.get(`/users/${i + 1}/recommendations`, true)),
    );
    const counts = tally(replies.map((r, i) => ({ at: 0, path: String(i), status: r.status, json: r.json })));
    console.log('overload outcomes', JSON.stringify(counts));
    expect(counts['200']).toBe(4);
    expect(counts['503']).toBe(8);
    for (const r of replies.filter((x) => x.status === 503)) {
      expect(r.json).toEqual({ error: 'service_unavailable', message: 'Recommendation capacity is temporarily unavailable' });
    }
    // Joining a computation already in flight is never shed: it costs nothing extra.
    const same = await Promise.all(Array.from({ length: 12 }, () => server.get('/users/15/recommendations', true)));
    expect(same.map((r) => r.status)).toEqual(Array(12).fill(200));
  });
});

// A full scoring queue (SCORING_QUEUE_MAX) answers the overflow from the popularity fallback without
// opening the breaker: test/unit/scorer.test.ts ("a full scoring queue") and test/unit/breaker.test.ts.
// It is no longer reachable deterministically end to end: the model wait no longer holds a thread.
