/**
 * The batch endpoint at scale, in-process against real PostgreSQL: page P is exactly the P-th slice of
 * users in ascending id (also across id gaps, deletions and id blocks) with the exact total, and a page of
 * cold users is fetched in one statement, each stored under its own ticket like a single request.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connect, type Sql } from '../../src/data/db.js';
import { RecommendationCache } from '../../src/data/recommendation-cache.js';
import { RecommendationRepo } from '../../src/data/recommendation-repo.js';
import { seed } from '../../src/data/seed.js';
import type { ScoringTask } from '../../src/domain/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { popularityRanking } from '../../src/recommenders/heuristic.js';
import { BatchService } from '../../src/service/batch.js';
import { RecommendationService } from '../../src/service/recommendation-service.js';
import { Visibility } from '../../src/service/visibility.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db.sql, { users: 3_000, content: 200, events: 20_000 });
  sql = connect(db.url, { max: 4 });
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

function pipeline(opts: { maxPending?: number } = {}) {
  const metrics = createMetrics('test');
  const repo = new RecommendationRepo(sql);
  const cache = new RecommendationCache(null, { ttlSec: 600, fallbackTtlSec: 15, staleTtlSec: 3600, l1MaxEntries: 10_000, l1MaxBytes: 1 << 26, replicaWaitMs: 80 }, metrics);
  let hold: Promise<void> | undefined;
  const service = new RecommendationService({
    repo,
    cache,
    score: async (task: ScoringTask) => {
      await hold;
      return popularityRanking(task);
    },
    model: { candidatePool: 100, noise: false },
    metrics,
    log: createLogger('silent', 'test'),
    maxPendingComputations: opts.maxPending ?? 1000,
    visibility: new Visibility(),
    broadcastInvalidation: async () => {},
  });
  const batch = new BatchService(repo, service, 10, createLogger('silent', 'test'));
  return { repo, cache, service, batch, holdModel: (p: Promise<void> | undefined) => (hold = p) };
}

/** Resolves once a userSignalsMany statement has returned (the data is read; nothing stored yet). */
function afterSignalsRead(repo: RecommendationRepo): Promise<void> {
  return new Promise<void>((resolve) => {
    const original = repo.userSignalsMany.bind(repo);
    vi.spyOn(repo, 'userSignalsMany').mockImplementation(async (...args) => {
      const signals = await original(...args);
      resolve();
      return signals;
    });
  });
}

/** The reference: OFFSET over users in ascending id, and count(*). */
async function reference(page: number, limit: number): Promise<{ totalUsers: number; userIds: number[] }> {
  const ids = await sql<{ id: number }[]>`SELECT id FROM users ORDER BY id LIMIT ${limit} OFFSET ${(page - 1) * limit}`;
  const [{ n }] = await sql<{ n: number }[]>`SELECT count(*)::int8 AS n FROM users`;
  return { totalUsers: n, userIds: ids.map((r) => r.id) };
}

describe('batch pages', () => {
  it('are exactly the ascending-id slices, across id gaps and blocks of 1024 ids', async () => {
    const { repo } = pipeline();
    // Gaps inside and at the edges of id blocks, a user beyond the seeded range, an id changed.
    await sql`DELETE FROM users WHERE id IN (1, 2, 700, 1023, 1024, 1025) OR id BETWEEN 2000 AND 2100`;
    await sql`INSERT INTO users (id, age) VALUES (5000, 30), (70000, 40)`;
    await sql`DELETE FROM user_watch_history WHERE user_id = 1500`;
    await sql`DELETE FROM user_dismissals WHERE user_id = 1500`; // its feedback, too, blocks the id change
    await sql`UPDATE users SET id = 9000 WHERE id = 1500`;
    for (const limit of [7, 100]) {
      const { totalUsers } = await reference(1, limit);
      const pages = Math.ceil(totalUsers / limit) + 1; // and one past the end
      for (let page = 1; page <= pages; page++) {
        expect(await repo.userPage(page, limit), `page ${page} of ${limit}`).toEqual(await reference(page, limit));
      }
    }
  });
});

describe('a batch page of cold users', () => {
  it('reads PostgreSQL once for the whole page, not once per user', async () => {
    const { repo, batch } = pipeline();
    const single = vi.spyOn(repo, 'userSignals');
    const many = vi.spyOn(repo, 'userSignalsMany');
    const result = await batch.page(3, 100);

    expect(result.summary).toMatchObject({ success_count: 100, failed_count: 0 });
    expect(result.results.map((r) => r.user_id)).toEqual((await reference(3, 100)).userIds);
    expect(many).toHaveBeenCalledTimes(1);
    expect(many.mock.calls[0]![0]).toHaveLength(100);
    expect(single).not.toHaveBeenCalled();

    // Warm now: the same page reads no user signals at all.
    await batch.page(3, 100);
    expect(many).toHaveBeenCalledTimes(1);
  });

  it('gives each user its own outcome: an unknown user fails alone', async () => {
    const { service } = pipeline();
    const [known, unknown] = await service.recommendationsForMany([42, 987_654], 10);
    expect(known).toMatchObject({ status: 'fulfilled', value: { cacheHit: false } });
    expect(unknown).toMatchObject({ status: 'rejected', reason: { code: 'user_not_found' } });
  });

  it('sheds the users beyond MAX_PENDING_COMPUTATIONS like single requests', async () => {
    const { service } = pipeline({ maxPending: 2 });
    const outcomes = await service.recommendationsForMany([101, 102, 103, 104], 10);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as { code: string }).code))).toEqual([
      'ok',
      'ok',
      'service_unavailable',
      'service_unavailable',
    ]);
  });

  it('never caches a list whose data was read before an invalidation (ticket taken before the read)', async () => {
    const { service, cache, repo, holdModel } = pipeline();
    const read = afterSignalsRead(repo);
    let release!: () => void;
    holdModel(new Promise<void>((r) => (release = r)));
    const pending = service.recommendationsForMany([201, 202], 10);
    await read; // the page's data is read; the model has not answered yet
    service.invalidateLocal(201); // a watch-history write for user 201 lands now
    release();
    holdModel(undefined);
    const [a, b] = await pending;
    expect(a.status).toBe('fulfilled'); // the batch began before the write: it may still show the old list
    expect(b.status).toBe('fulfilled');
    expect(cache.peekLocal(201)).toBeUndefined(); // but that list is never cached for later requests
    expect(cache.peekLocal(202)).toBeDefined();
  });

  it('lets a single request for a user in the batch join its computation', async () => {
    const { service, repo, holdModel } = pipeline();
    const single = vi.spyOn(repo, 'userSignals');
    let release!: () => void;
    holdModel(new Promise<void>((r) => (release = r)));
    const batchDone = service.recommendationsForMany([301, 302], 10);
    const alone = service.recommendationsFor(301);
    release();
    holdModel(undefined);
    const [[first], lookup] = await Promise.all([batchDone, alone]);
    expect(single).not.toHaveBeenCalled();
    expect(first).toMatchObject({ status: 'fulfilled' });
    expect(lookup.list).toBe((first as PromiseFulfilledResult<typeof lookup>).value.list);
  });
});

describe('concurrent single misses of different users', () => {
  it('share one statement per event-loop turn; an unknown user gets its own 404 and fails nobody else', async () => {
    const { service, repo } = pipeline();
    const many = vi.spyOn(repo, 'userSignalsMany');
    const users = [401, 402, 888_888, 403, 404, 777_777, 405];
    const outcomes = await Promise.allSettled(users.map((u) => service.recommendationsFor(u)));
    expect(many).toHaveBeenCalledTimes(1);
    expect([...many.mock.calls[0]![0]].sort((a, b) => a - b)).toEqual([...users].sort((a, b) => a - b));
    const codes = outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as { code: string }).code));
    expect(codes).toEqual(['ok', 'ok', 'user_not_found', 'ok', 'ok', 'user_not_found', 'ok']);
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') expect(o.value.list.items.length).toBeGreaterThan(0), expect(users[i]).toBeLessThan(1000);
    }
  });

  it('give each user its own history, exactly as one statement per user would', async () => {
    const { repo } = pipeline();
    const users = Array.from({ length: 20 }, (_, i) => 500 + i * 7);
    const together = await Promise.all(users.map((u) => repo.userSignals(u)));
    for (const [i, u] of users.entries()) {
      const alone = (await repo.userSignalsMany([u])).get(u)!;
      expect(together[i]!.userId).toBe(u);
      expect({ recent: together[i]!.recent, watched: together[i]!.watched }).toEqual({ recent: alone.recent, watched: alone.watched });
    }
  });

  it('are bounded: more users than one statement takes go out as several statements', async () => {
    const { repo } = pipeline();
    const many = vi.spyOn(repo, 'userSignalsMany');
    const users = Array.from({ length: 150 }, (_, i) => 2200 + i);
    const found = await Promise.all(users.map((u) => repo.userSignals(u)));
    expect(found.every((s, i) => s?.userId === users[i])).toBe(true);
    expect(many.mock.calls.map((c) => c[0].length)).toEqual([64, 64, 22]);
  });

  it('never cache a list read before a write that lands while the shared statement is out', async () => {
    const { service, cache, repo, holdModel } = pipeline();
    const read = afterSignalsRead(repo);
    let release!: () => void;
    holdModel(new Promise<void>((r) => (release = r)));
    const a = service.recommendationsFor(601);
    const b = service.recommendationsFor(602);
    await read; // both users' data came back in one statement; the model has not answered yet
    service.invalidateLocal(601); // a watch-history write for user 601 is acknowledged now
    const after = service.recommendationsFor(601); // a request after the write never joins the old computation
    release();
    holdModel(undefined);
    await Promise.all([a, b, after]);
    expect(cache.peekLocal(602)).toBeDefined();
    // The list cached for 601 is the one computed after the write, not the one read before it.
    expect(cache.peekLocal(601)).toBe((await after).list);
    expect((await a).list).not.toBe((await after).list);
  });
});
