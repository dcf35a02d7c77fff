/**
 * The slow-miss race (DESIGN.md §7), in-process against real PostgreSQL and Redis: a computation that
 * read its data before a watch-history write finishes AFTER the write's invalidation. Its stale list may
 * answer the request that started it, but must never be cached in L1 or Redis for anyone after.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { connect, type Sql } from '../../src/data/db.js';
import { RecommendationCache } from '../../src/data/recommendation-cache.js';
import { RecommendationRepo } from '../../src/data/recommendation-repo.js';
import { seedIfEmpty } from '../../src/data/seed.js';
import type { ScoringTask } from '../../src/domain/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { popularityRanking } from '../../src/recommenders/heuristic.js';
import { RecommendationService } from '../../src/service/recommendation-service.js';
import { Visibility } from '../../src/service/visibility.js';
import { WatchEvents } from '../../src/service/watch-events.js';
import { EventsRepo } from '../../src/data/events-repo.js';
import { createTestDatabase, eligibleTitles } from '../support/db.js';
import { emptyRedisDb } from '../support/redis.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: Sql;
const redisClients: Redis[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await seedIfEmpty(db.sql);
  sql = connect(db.url, { max: 4 });
  await emptyRedisDb(3);
});

afterAll(async () => {
  for (const r of redisClients) r.disconnect();
  await sql?.end();
  await db?.drop();
});

/** One "worker": its own L1, the shared Redis, and a model whose answer we release by hand. */
function worker() {
  const redis = new Redis(`${inject('redisUrl')}/3`, { enableOfflineQueue: true });
  redisClients.push(redis);
  const metrics = createMetrics('test');
  const cache = new RecommendationCache(redis, { ttlSec: 600, fallbackTtlSec: 15, staleTtlSec: 3600, l1MaxEntries: 1000, l1MaxBytes: 1 << 24, replicaWaitMs: 80 }, metrics);
  const waiting: (() => void)[] = [];
  let hold = false;
  const service = new RecommendationService({
    repo: new RecommendationRepo(sql),
    cache,
    score: async (task: ScoringTask) => {
      if (hold) await new Promise<void>((r) => waiting.push(r));
      return popularityRanking(task);
    },
    model: { candidatePool: 100, noise: false },
    metrics,
    log: createLogger('silent', 'test'),
    maxPendingComputations: 100,
    visibility: new Visibility(),
    broadcastInvalidation: async () => {},
    broadcastInvalidations: async () => {},
  });
  return {
    service,
    /** Resolves once `n` computations wait in the held model (they have read PostgreSQL). */
    untilHeld: async (n: number) => {
      while (waiting.length < n) await new Promise((r) => setTimeout(r, 10));
    },
    hold: () => (hold = true),
    /** Resolves once a held computation has read PostgreSQL and waits in the "model": no sleep guesses it. */
    inModel: async () => {
      for (let i = 0; i < 500 && waiting.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(waiting.length).toBeGreaterThan(0);
    },
    release: () => {
      hold = false;
      for (const r of waiting.splice(0)) r();
    },
  };
}

const ids = (items: { content_id: number }[]) => items.map((i) => i.content_id);
/**
 * The title the held computation ranks first (the popularity ranking of what the user may see). Not merely
 * the most popular unwatched one: a title outside the user's tier or country is in no list, and a write
 * of it would leave the race unexercised (user 12's case).
 */
const topTitle = async (userId: number) => (await eligibleTitles(db.sql, userId))[0]!.id;

it('a computation that read data before a write is never cached after the write', async () => {
  const a = worker();
  const b = worker();
  const userId = 11;

  a.hold();
  const slow = a.service.recommendationsFor(userId); // reads PostgreSQL now, then waits in the "model"
  await a.inModel();
  const top = await topTitle(userId);

  await a.service.recordWatch(userId, top); // acknowledged write: invalidates L1 (a) and Redis
  b.service.invalidateLocal(userId); // what the primary's broadcast does in every other worker
  a.release();
  const stale = await slow;
  expect(ids(stale.list.items)).toContain(top); // computed from the old data, answered to its own caller only

  const afterA = await a.service.recommendationsFor(userId);
  expect(ids(afterA.list.items)).not.toContain(top);
  const afterB = await b.service.recommendationsFor(userId);
  expect(ids(afterB.list.items)).not.toContain(top);
  // A third process with an empty L1 reads Redis: the stale list was not stored there either.
  const c = worker();
  const afterC = await c.service.recommendationsFor(userId);
  expect(ids(afterC.list.items)).not.toContain(top);
});

it('a request arriving after the write does not join a computation that started before it', async () => {
  const a = worker();
  const userId = 12;
  a.hold();
  const slow = a.service.recommendationsFor(userId);
  await a.inModel();
  const top = await topTitle(userId);
  await a.service.recordWatch(userId, top);
  const late = a.service.recommendationsFor(userId); // must start its own computation
  a.release();
  // The race was really run: the computation in flight read the data from before the write.
  expect(ids((await slow).list.items)).toContain(top);
  expect(ids((await late).list.items)).not.toContain(top);
});

it('a computation that read data before a bulk write (POST /events) is never cached after it, for any of its users', async () => {
  const a = worker();
  const b = worker();
  const computing = [13, 14, 15];
  const cached = [16, 17]; // lists in Redis (and b's L1) before the write
  const userIds = [...computing, ...cached];
  for (const userId of cached) await b.service.recommendationsFor(userId);
  a.hold();
  const slow = computing.map((userId) => a.service.recommendationsFor(userId)); // read PostgreSQL, then wait in the "model"
  await a.untilHeld(computing.length);
  // Each user's first title: the most popular one they may be shown and have not watched.
  const tops = await Promise.all(userIds.map(async (userId) => (await eligibleTitles(db.sql, userId))[0]!.id));

  const events = new WatchEvents(new EventsRepo(sql), a.service);
  expect(await events.record(userIds.map((userId, i) => ({ user_id: userId, content_id: tops[i]! })))).toEqual({ events: 5, users: 5 });
  for (const userId of userIds) b.service.invalidateLocal(userId); // what the primary's broadcast does in every other worker
  a.release();
  const stale = await Promise.all(slow);
  stale.forEach((lookup, i) => expect(ids(lookup.list.items)).toContain(tops[i])); // old data, answered to its own caller only

  const c = worker(); // an empty L1: reads Redis
  for (const [i, userId] of userIds.entries()) {
    for (const w of [a, b, c]) expect(ids((await w.service.recommendationsFor(userId)).list.items)).not.toContain(tops[i]);
  }
});
