/**
 * PostgreSQL failing under load. Lists cached before the outage keep being served — also past their TTL
 * ("stale if error", flagged `metadata.stale`); anything else is 503 service_unavailable; /ready says so;
 * writes fail cleanly and are not half-applied; everything recovers without a restart.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ownPostgres, requestLoop, sleep, tally, type OwnPostgres } from '../support/faults.js';
import { startServer, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

let pg: OwnPostgres;
let server: RunningServer;

beforeAll(async () => {
  pg = await ownPostgres();
  const redisUrl = await emptyRedisDb(4);
  // CACHE_TTL 1 s: lists go stale during the outage, so stale-if-error is what keeps them served.
  server = await startServer({
    DATABASE_URL: pg.url,
    REDIS_URL: redisUrl,
    CACHE_TTL: '1',
    CACHE_STALE_TTL: '600',
    DB_TIMEOUT_MS: '500',
  });
});

afterAll(async () => {
  await server?.stop();
  await pg?.destroy();
});

const warmed = Array.from({ length: 12 }, (_, i) => i + 1); // users 13..20 are never cached

it('serves cached lists (stale past their TTL) while PostgreSQL is down, 503 for the rest, and recovers', async () => {
  // Cached in Redis (shared by both workers) and in the L1 of whichever worker answered.
  for (const u of warmed) expect((await server.get(`/users/${u}/recommendations?limit=5`, true)).status).toBe(200);
  await pg.stop();
  await sleep(1200); // past CACHE_TTL

  const loop = requestLoop(server, 6, (i) => `/users/${(i % 20) + 1}/recommendations?limit=5`);
  await sleep(2000);
  const outage = await loop.stop();
  console.log('postgres outage outcomes', JSON.stringify(tally(outage)));
  for (const o of outage) {
    const userId = Number(/\/users\/(\d+)\//.exec(o.path)![1]);
    if (o.status === 200) {
      expect(warmed).toContain(userId);
      expect(o.json.metadata.stale).toBe(true);
      expect(o.json.recommendations).toHaveLength(5);
    } else {
      expect(o.status).toBe(503);
      expect(o.json).toEqual({ error: 'service_unavailable', message: 'Database is temporarily unavailable' });
    }
  }
  const served = outage.filter((o) => o.status === 200).length;
  expect(served).toBeGreaterThan(0);
  expect(outage.filter((o) => o.status === 503).length).toBeGreaterThan(0);
  // Every warmed user that was asked for was answered: no 503 for a user with a cached list.
  const warmedFailures = outage.filter((o) => o.status !== 200 && warmed.includes(Number(/\/users\/(\d+)\//.exec(o.path)![1])));
  expect(warmedFailures).toEqual([]);

  const ready = await server.get('/ready');
  expect(ready.status).toBe(503);
  expect(ready.json.checks.postgres).toBe('down');

  const write = await server.post('/users/1/watch-history', { content_id: 7 });
  expect(write.status).toBe(503);
  expect(write.json.error).toBe('service_unavailable');
  expect(write.text).not.toMatch(/ECONNREFUSED|postgres|SELECT|INSERT/i);

  await pg.start();
  // Recovery without a restart: fresh lists again (no `stale`), readiness back, writes accepted.
  let fresh = false;
  for (let i = 0; i < 100 && !fresh; i++) {
    const r = await server.get('/users/15/recommendations?limit=5', true);
    fresh = r.status === 200 && r.json.metadata.stale === undefined;
    if (!fresh) await sleep(100);
  }
  expect(fresh).toBe(true);
  expect((await server.get('/ready')).status).toBe(200);
  const after = await server.get('/users/2/recommendations?limit=5', true);
  expect(after.status).toBe(200);
  expect(after.json.metadata.stale).toBeUndefined();

  // The write that answered 503 was not applied.
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  const [row] = await sql<{ n: string }[]>`
    SELECT count(*)::text AS n FROM user_watch_history
    WHERE user_id = 1 AND content_id = 7 AND watched_at > now() - interval '1 minute'`;
  await sql.end();
  expect(Number(row!.n)).toBe(0);
  const accepted = await server.post('/users/1/watch-history', { content_id: 7 });
  expect(accepted.status).toBe(201);

  // The primary's LISTEN connection came back too: a direct SQL write reaches every worker's cache.
  // (CACHE_TTL is 1 s here, so the invalidation counter, not the list, is the evidence.)
  const invalidations = async () =>
    Number(/^cache_invalidations_total (\d+)$/m.exec((await server.get('/metrics')).text)?.[1] ?? 0);
  // Notifications sent while it was down are lost: on re-LISTEN the primary has every worker drop its
  // L1 (logged); after that, each direct write is relayed again.
  for (let i = 0; i < 100 && !server.output().includes('LISTEN connection re-established'); i++) await sleep(100);
  expect(server.output()).toContain('LISTEN connection re-established');
  const invalidatedBefore = await invalidations();
  const writer = postgres(pg.url, { max: 1, onnotice: () => {} });
  await writer`INSERT INTO user_watch_history (user_id, content_id) VALUES (3, 1)`;
  await writer.end();
  let invalidatedAfter = invalidatedBefore;
  for (let i = 0; i < 50 && invalidatedAfter < invalidatedBefore + 2; i++) {
    await sleep(100);
    invalidatedAfter = await invalidations();
  }
  expect(invalidatedAfter).toBeGreaterThanOrEqual(invalidatedBefore + 2); // both workers
});
