/**
 * The public API against the real clustered server (2 workers), real PostgreSQL and real Redis:
 * request in, exact status and body out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, eligibleTitles } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;
let db: Db;
let server: RunningServer;
const REDIS_DB = 1;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

async function watchedBy(userId: number): Promise<Set<number>> {
  const rows = await db.sql<{ id: string }[]>`SELECT content_id::text AS id FROM user_watch_history WHERE user_id = ${userId}`;
  return new Set(rows.map((r) => Number(r.id)));
}

async function historyCount(): Promise<number> {
  const [row] = await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM user_watch_history`;
  return Number(row!.n);
}

beforeAll(async () => {
  db = await createTestDatabase();
  const redisUrl = await emptyRedisDb(REDIS_DB);
  server = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('GET /health and /ready', () => {
  it('reports liveness', async () => {
    const r = await server.get('/health');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json).toEqual({ status: 'ok' });
  });

  it('reports readiness of PostgreSQL and Redis', async () => {
    const r = await server.get('/ready');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });
});

describe('GET /users/{id}/recommendations', () => {
  it('computes a personalized list of unwatched titles, then serves it from the cache', async () => {
    const first = await server.get('/users/3/recommendations?limit=5');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json');
    expect(Object.keys(first.json)).toEqual(['user_id', 'recommendations', 'metadata']);
    expect(first.json.user_id).toBe(3);
    expect(first.json.recommendations).toHaveLength(5);
    expect(first.json.metadata).toMatchObject({ cache_hit: false, total_count: 5, source: 'model' });
    expect(first.json.metadata.generated_at).toMatch(RFC3339);
    for (const item of first.json.recommendations) {
      expect(Object.keys(item)).toEqual(['content_id', 'title', 'genre', 'popularity_score', 'score']);
    }
    const watched = await watchedBy(3);
    expect(first.json.recommendations.some((r: { content_id: number }) => watched.has(r.content_id))).toBe(false);
    const scores = first.json.recommendations.map((r: { score: number }) => r.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);

    const again = await server.get('/users/3/recommendations?limit=5');
    expect(again.status).toBe(200);
    expect(again.json.metadata.cache_hit).toBe(true);
    expect(again.json.recommendations).toEqual(first.json.recommendations);
    expect(again.json.metadata.generated_at).toBe(first.json.metadata.generated_at);
  });

  it('serves every limit as a slice of one cached list', async () => {
    const ten = await server.get('/users/4/recommendations');
    expect(ten.status).toBe(200);
    expect(ten.json.recommendations).toHaveLength(10);
    expect(ten.json.metadata.total_count).toBe(10);
    const fifty = await server.get('/users/4/recommendations?limit=50');
    expect(fifty.json.metadata.cache_hit).toBe(true);
    expect(fifty.json.recommendations.slice(0, 10)).toEqual(ten.json.recommendations);
    // 50 titles in the default catalog: every one the user may be recommended, at most 50.
    expect(fifty.json.recommendations).toHaveLength(Math.min(50, (await eligibleTitles(db.sql, 4)).length));
    const two = await server.get('/users/4/recommendations?limit=2');
    expect(two.json.recommendations).toEqual(ten.json.recommendations.slice(0, 2));
  });

  it("ranks with the seed's formula (noise off): 0.40·popularity + 0.35·genre share + 0.15·recency", async () => {
    const userId = 5;
    const history = await db.sql<{ genre: string }[]>`
      SELECT c.genre FROM user_watch_history w JOIN content c ON c.id = w.content_id
      WHERE w.user_id = ${userId} ORDER BY w.watched_at DESC, w.id DESC LIMIT 50`;
    const share = new Map<string, number>();
    for (const h of history) share.set(h.genre, (share.get(h.genre) ?? 0) + 1 / history.length);
    const candidates = (await eligibleTitles(db.sql, userId)).slice(0, 100);
    const now = Date.now();
    const expected = candidates
      .map((c) => {
        const ageDays = (now - c.created.getTime()) / 86_400_000;
        const raw = 0.4 * c.p + 0.35 * (share.get(c.genre) ?? 0.1) + 0.15 * (1 / (1 + ageDays / 365));
        return { id: Number(c.id), score: Math.round(raw * 1000) / 1000 };
      })
      .sort((a, b) => b.score - a.score);
    const r = await server.get(`/users/${userId}/recommendations?limit=10`);
    expect(r.status).toBe(200);
    const got = r.json.recommendations.map((x: { content_id: number; score: number }) => x.score);
    expect(got).toEqual(expected.slice(0, 10).map((e) => e.score));
    // Personalization is visible: the top titles lean to the user's most watched genre.
    const favourite = [...share.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    expect(r.json.recommendations.filter((x: { genre: string }) => x.genre === favourite).length).toBeGreaterThan(0);
  });

  it.each([
    ['0'],
    ['-1'],
    ['abc'],
    ['1.5'],
    ['1e3'],
    ['%201'],
    ['9007199254740992'],
    ['99999999999999999999'],
    ["1'%20OR%20'1'='1"],
  ])('rejects user id %s with 400 invalid_parameter', async (id) => {
    const r = await server.get(`/users/${id}/recommendations`);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_parameter', message: 'Invalid user_id parameter' });
  });

  it.each([['0'], ['51'], ['-1'], ['abc'], ['1.5'], ['10abc'], ['%31%30%30']])(
    'rejects limit=%s with 400 invalid_parameter',
    async (limit) => {
      const r = await server.get(`/users/1/recommendations?limit=${limit}`);
      expect(r.status).toBe(400);
      expect(r.json).toEqual({ error: 'invalid_parameter', message: 'Invalid limit parameter' });
    },
  );

  it('accepts the largest id and reports an unknown user as 404', async () => {
    const big = await server.get('/users/9007199254740991/recommendations');
    expect(big.status).toBe(404);
    expect(big.json).toEqual({ error: 'user_not_found', message: 'User with ID 9007199254740991 does not exist' });
    const r = await server.get('/users/999/recommendations?limit=5');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: 'user_not_found', message: 'User with ID 999 does not exist' });
  });
});

describe('GET /recommendations/batch', () => {
  it('returns the first page of users in ascending id with 10 titles each', async () => {
    const r = await server.get('/recommendations/batch');
    expect(r.status).toBe(200);
    expect(Object.keys(r.json)).toEqual(['page', 'limit', 'total_users', 'results', 'summary', 'metadata']);
    expect(r.json).toMatchObject({ page: 1, limit: 20, total_users: 20 });
    expect(r.json.results.map((u: { user_id: number }) => u.user_id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const u of r.json.results) {
      expect(u.status).toBe('success');
      expect(u.recommendations).toHaveLength(10);
    }
    expect(r.json.summary.success_count).toBe(20);
    expect(r.json.summary.failed_count).toBe(0);
    expect(typeof r.json.summary.processing_time_ms).toBe('number');
    expect(r.json.metadata.generated_at).toMatch(RFC3339);
  });

  it('pages through users', async () => {
    const r = await server.get('/recommendations/batch?page=2&limit=5');
    expect(r.status).toBe(200);
    expect(r.json.results.map((u: { user_id: number }) => u.user_id)).toEqual([6, 7, 8, 9, 10]);
    const single = await server.get('/users/7/recommendations?limit=10');
    expect(r.json.results[1].recommendations).toEqual(single.json.recommendations);
  });

  it('answers a page past the end with empty results', async () => {
    const r = await server.get('/recommendations/batch?page=10000&limit=100');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ page: 10000, limit: 100, total_users: 20, results: [] });
    expect(r.json.summary).toMatchObject({ success_count: 0, failed_count: 0 });
  });

  it.each([
    ['page=0', 'page'],
    ['page=10001', 'page'],
    ['page=abc', 'page'],
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=-5', 'limit'],
  ])('rejects %s with 400', async (query, name) => {
    const r = await server.get(`/recommendations/batch?${query}`);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_parameter', message: `Invalid ${name} parameter` });
  });
});

describe('POST /users/{id}/watch-history', () => {
  it('records the event, answers 201, and the title is never recommended again from any worker', async () => {
    const before = await server.get('/users/6/recommendations?limit=5');
    const top = before.json.recommendations[0].content_id as number;
    const r = await server.post('/users/6/watch-history', { content_id: top });
    expect(r.status).toBe(201);
    expect(Object.keys(r.json)).toEqual(['user_id', 'content_id', 'watched_at']);
    expect(r.json).toMatchObject({ user_id: 6, content_id: top });
    expect(r.json.watched_at).toMatch(RFC3339);
    for (let i = 0; i < 20; i++) {
      const after = await server.get('/users/6/recommendations?limit=50', true);
      expect(after.status).toBe(200);
      expect(after.json.recommendations.map((x: { content_id: number }) => x.content_id)).not.toContain(top);
    }
    expect(await watchedBy(6)).toContain(top);
  });

  it.each([
    ['{not json', 'Request body must be valid JSON'],
    ['', 'Request body must be valid JSON'],
    ['[1,2]', 'Request body must be a JSON object'],
    ['null', 'Request body must be a JSON object'],
    ['{}', 'content_id is required'],
    ['{"content_id":"5"}', 'content_id must be a positive integer'],
    ['{"content_id":0}', 'content_id must be a positive integer'],
    ['{"content_id":-3}', 'content_id must be a positive integer'],
    ['{"content_id":1.5}', 'content_id must be a positive integer'],
    ['{"content_id":null}', 'content_id must be a positive integer'],
    ['{"content_id":9007199254740992}', 'content_id must be a positive integer'],
  ])('rejects body %s with 400 and writes nothing', async (body, message) => {
    const count = await historyCount();
    const r = await server.request('POST', '/users/2/watch-history', { body });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_body', message });
    expect(await historyCount()).toBe(count);
  });

  it('rejects a bad user id with 400 and writes nothing', async () => {
    const count = await historyCount();
    const r = await server.post('/users/abc/watch-history', { content_id: 1 });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_parameter', message: 'Invalid user_id parameter' });
    expect(await historyCount()).toBe(count);
  });

  it('answers 404 for an unknown user or title and writes nothing', async () => {
    const count = await historyCount();
    const user = await server.post('/users/424242/watch-history', { content_id: 1 });
    expect(user.status).toBe(404);
    expect(user.json).toEqual({ error: 'user_not_found', message: 'User with ID 424242 does not exist' });
    const title = await server.post('/users/2/watch-history', { content_id: 777777 });
    expect(title.status).toBe(404);
    expect(title.json).toEqual({ error: 'content_not_found', message: 'Content with ID 777777 does not exist' });
    expect(await historyCount()).toBe(count);
  });

  it('answers 413 for a body over the limit and writes nothing', async () => {
    const count = await historyCount();
    const body = JSON.stringify({ content_id: 1, padding: 'x'.repeat(10_000) });
    const r = await server.request('POST', '/users/2/watch-history', { body, fresh: true });
    expect(r.status).toBe(413);
    expect(r.json.error).toBe('payload_too_large');
    expect(await historyCount()).toBe(count);
  });
});

describe('everything else', () => {
  it('answers an unknown route with 404 JSON', async () => {
    const r = await server.get('/nope');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: 'not_found', message: 'Route not found' });
    const deeper = await server.get('/users/1/recommendations/extra');
    expect(deeper.status).toBe(404);
  });

  it('answers a known route with the wrong method with 405 JSON', async () => {
    const r = await server.request('DELETE', '/users/1/recommendations');
    expect(r.status).toBe(405);
    expect(r.json.error).toBe('method_not_allowed');
    const post = await server.request('POST', '/users/1/recommendations', { body: '{}' });
    expect(post.status).toBe(405);
  });

  it('serves Prometheus metrics summed over both workers', async () => {
    const before = await server.get('/metrics');
    const count = (text: string) =>
      Number(/^http_requests_total\{route="health",method="GET",status="200"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const n0 = count(before.text);
    for (let i = 0; i < 10; i++) await server.get('/health', true);
    const after = await server.get('/metrics');
    expect(after.status).toBe(200);
    expect(after.headers['content-type']).toContain('text/plain');
    expect(count(after.text)).toBe(n0 + 10);
    expect(after.text).toMatch(/process_resident_memory_bytes\{worker="0"\}/);
    expect(after.text).toMatch(/process_resident_memory_bytes\{worker="1"\}/);
  });

  it('never leaks stack traces or SQL in error bodies', async () => {
    for (const path of ['/users/1%00/recommendations', '/users/1/recommendations?limit=%ZZ', '/recommendations/batch?page=%']) {
      const r = await server.get(path);
      expect(r.status).toBeLessThan(500);
      expect(r.text).not.toMatch(/at .*\.js|SELECT|postgres/i);
    }
  });
});
