/**
 * Deadlines and load shedding: past REQUEST_TIMEOUT_MS a client gets 503 request_timeout; more cache
 * misses than MAX_PENDING_COMPUTATIONS are shed with 503 at once instead of queueing; a full scoring
 * queue costs personalization (popularity fallback), not errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, holdReads } from '../support/db.js';
import { tally } from '../support/faults.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** One counter's value in a /metrics scrape (0 when absent). */
const counter = (text: string, series: string) =>
  Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

describe('with computations held at their PostgreSQL read', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      DATABASE_URL: db.url,
      WORKERS: '1',
      MAX_PENDING_COMPUTATIONS: '4',
      // The test holds reads behind a lock for as long as it needs: not an outage, not a deadline.
      DB_TIMEOUT_MS: '60000',
      REQUEST_TIMEOUT_MS: '60000',
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('sheds misses beyond MAX_PENDING_COMPUTATIONS with 503 and serves the rest; joining a computation in flight is never shed', async () => {
    // Each computation reads its user in `users`: held there, the four stay in flight until released.
    const hold = await holdReads(db.sql, 'users');
    let replies: (Reply | undefined)[] = [];
    let joins: Promise<Reply[]> | undefined;
    try {
      // Twelve cold users while reads are held: four computations start and wait; the limit is then full,
      // so the other eight are shed at once, whenever they arrive.
      replies = Array.from({ length: 12 }, () => undefined);
      const all = Array.from({ length: 12 }, (_, i) => server.get(`/users/${i + 1}/recommendations`, true).then((r) => (replies[i] = r)));
      await until('eight answers', () => replies.filter(Boolean).length >= 8);
      expect(replies.filter(Boolean).map((r) => r!.status)).toEqual(Array(8).fill(503));
      for (const r of replies.filter(Boolean)) {
        expect(r!.json).toEqual({ error: 'service_unavailable', message: 'Recommendation capacity is temporarily unavailable' });
      }
      // Joining one of the four in flight (the limit still full) costs nothing extra: never shed.
      const inFlight = replies.findIndex((r) => r === undefined) + 1;
      const before = counter((await server.get('/metrics', true)).text, 'singleflight_coalesced_total');
      let joinsAnswered = 0;
      joins = Promise.all(
        Array.from({ length: 12 }, () => server.get(`/users/${inFlight}/recommendations`, true).finally(() => (joinsAnswered += 1))),
      );
      // Each either joined (counted) or was answered at once (shed: the assertion below names it).
      await until('twelve requests joined or answered', async () => {
        const joined = counter((await server.get('/metrics', true)).text, 'singleflight_coalesced_total') - before;
        return joined + joinsAnswered >= 12;
      });
      expect(replies.filter(Boolean)).toHaveLength(8); // nothing held has answered yet
      await hold.release();
      await Promise.all(all);
    } finally {
      await hold.release();
    }
    const counts = tally(replies.map((r, i) => ({ at: 0, path: String(i), status: r!.status, json: r!.json })));
    console.log('overload outcomes', JSON.stringify(counts));
    expect(counts).toEqual({ 200: 4, 503: 8 });
    expect((await joins!).map((r) => r.status)).toEqual(Array(12).fill(200));
  });
});

// A full scoring queue (SCORING_QUEUE_MAX) answers the overflow from the popularity fallback without
// opening the breaker: test/unit/scorer.test.ts ("a full scoring queue") and test/unit/breaker.test.ts.
// It is no longer reachable deterministically end to end: the model wait no longer holds a thread.
