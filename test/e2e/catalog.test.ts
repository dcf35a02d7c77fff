/**
 * The integration surface beyond the seed, against the clustered server: the application pushes users and
 * titles, pages and filters recommendations, reads popular / latest / one title, dismisses titles, and the
 * availability rules filter every personalized answer. Request in, exact status and body out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, eligibleTitles } from '../support/db.js';
import { emptyRedisDb } from '../support/redis.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startServer({ DATABASE_URL: db.url, REDIS_URL: await emptyRedisDb(5) });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const send = (method: string, path: string, body?: unknown): Promise<Reply> =>
  server.request(method, path, body === undefined ? {} : { body: JSON.stringify(body) });

const ids = (r: Reply, field = 'recommendations'): number[] => (r.json[field] as { content_id: number }[]).map((x) => x.content_id);

const NOW = new Date().toISOString();

/**
 * A new title reaches every worker's catalog within a second (NOTIFY → reload); a list computed before
 * that may lack it until its TTL. Waits until six fresh connections (both workers) list it among the top.
 */
async function untilEveryCatalogHas(contentId: number): Promise<void> {
  await expect.poll(async () => {
    const all = await Promise.all(Array.from({ length: 6 }, () => server.get('/content/popular?limit=10', true)));
    return all.every((r) => ids(r, 'items').includes(contentId));
  }, { timeout: 3000 }).toBe(true);
}

/** A title that tops every list it is eligible for: most popular and brand new. */
function top(title: string, extra: Record<string, unknown> = {}) {
  return { title, genre: 'mystery', popularity_score: 1, created_at: NOW, ...extra };
}

describe('PUT /users/{id}', () => {
  it('creates (201) then updates (200), keeping omitted fields; the new user is recommended at once', async () => {
    const created = await send('PUT', '/users/70001', { age: 30, country: 'DE' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ user_id: 70001, age: 30, country: 'DE', subscription_type: 'free' });

    const updated = await send('PUT', '/users/70001', { subscription_type: 'premium' });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ user_id: 70001, age: 30, country: 'DE', subscription_type: 'premium' });

    const recs = await server.get('/users/70001/recommendations?limit=5');
    expect(recs.status).toBe(200);
    expect(recs.json.recommendations).toHaveLength(5);
  });

  it('refuses bad input with a 400 and writes nothing', async () => {
    for (const body of [{ subscription_type: 'gold' }, { country: 'Germany' }, { age: -1 }, { extra: 1 }, []]) {
      const r = await send('PUT', '/users/70002', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toBe('invalid_body');
    }
    expect((await send('PUT', '/users/0', {})).status).toBe(400);
    const [row] = await db.sql`SELECT count(*)::int AS n FROM users WHERE id = 70002`;
    expect(row!.n).toBe(0);
  });
});

describe('PUT /content/{id}, POST /content/bulk, DELETE /content/{id}', () => {
  it('creates (201) and updates (200) a title; GET /content/{id} shows it on every worker', async () => {
    const created = await send('PUT', '/content/80001', top('Glass Harbor'));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ content_id: 80001, title: 'Glass Harbor', genre: 'mystery', popularity_score: 1, hidden: false, subscription_tier: 'free', countries: [] });
    const updated = await send('PUT', '/content/80001', { title: 'Glass Harbor II', genre: 'mystery', popularity_score: 0.5 });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ content_id: 80001, title: 'Glass Harbor II', popularity_score: 0.5 });
    // Within a second every worker's catalog has the change (NOTIFY → reload).
    await expect.poll(async () => {
      const all = await Promise.all(Array.from({ length: 6 }, () => server.request('GET', '/content/80001', { fresh: true })));
      return all.map((r) => r.json?.title);
    }, { timeout: 3000, interval: 100 }).toEqual(Array(6).fill('Glass Harbor II'));
    const one = await server.get('/content/80001');
    expect(one.json).toEqual({ content_id: 80001, title: 'Glass Harbor II', genre: 'mystery', popularity_score: 0.5, created_at: one.json.created_at });
    expect(Object.keys(one.json)).toEqual(['content_id', 'title', 'genre', 'popularity_score', 'created_at']);
  });

  it('writes a bulk all or nothing, and names the first bad item by its index', async () => {
    const good = [1, 2, 3].map((i) => ({ content_id: 80100 + i, ...top(`Bulk ${i}`, { popularity_score: 0.2 }) }));
    const bad = [...good.map((g) => ({ ...g, content_id: g.content_id + 10 })), { content_id: 80120, title: 'x', genre: 'mystery', popularity_score: 2 }];
    const refused = await send('POST', '/content/bulk', bad);
    expect(refused.status).toBe(400);
    expect(refused.json.error).toBe('invalid_body');
    expect(refused.json.message).toMatch(/items\[3\]/);
    const [none] = await db.sql`SELECT count(*)::int AS n FROM content WHERE id BETWEEN 80111 AND 80120`;
    expect(none!.n).toBe(0);

    const written = await send('POST', '/content/bulk', good);
    expect(written.status).toBe(200);
    expect(written.json).toEqual({ created: 3, updated: 0 });
    expect((await send('POST', '/content/bulk', good)).json).toEqual({ created: 0, updated: 3 });
  });

  it('hides a title with DELETE: 204, then 404 everywhere; an unknown title is 404', async () => {
    await send('PUT', '/content/80002', top('Soon Gone'));
    expect((await send('DELETE', '/content/80002')).status).toBe(204);
    for (let i = 0; i < 4; i++) {
      const r = await server.request('GET', '/content/80002', { fresh: true });
      expect(r.status).toBe(404);
      expect(r.json).toEqual({ error: 'content_not_found', message: 'Content with ID 80002 does not exist' });
    }
    expect((await send('DELETE', '/content/89999')).status).toBe(404);
    const [row] = await db.sql`SELECT hidden FROM content WHERE id = 80002`;
    expect(row!.hidden).toBe(true);
  });

  it('answers 405 with Allow for a method a path does not take, 413 for a body over its limit', async () => {
    const r = await send('PATCH', '/content/1', {});
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, PUT, DELETE');
    const big = await server.request('PUT', '/content/80003', { body: JSON.stringify({ ...top('x'), title: 'x'.repeat(200_000) }) });
    expect(big.status).toBe(413);
    // The bulk route's own limit (1,000 maximal items fit, docs/api.md): a body past it is refused unread.
    const huge = await server.request('POST', '/content/bulk', { body: JSON.stringify([{ ...top('x'), content_id: 1, title: 'x'.repeat(5_000_000) }]) });
    expect(huge.status).toBe(413);
    expect(huge.json.error).toBe('payload_too_large');
  });
});

describe('GET /content/popular and /content/latest', () => {
  it('orders by popularity (then id) and by created_at (then id), pages with offset, filters by genre', async () => {
    // The catalog may still be reloading after the writes above (up to a second): compare once it settled.
    const expected = async () => {
      const rows = await db.sql<{ id: number }[]>`SELECT id::int FROM content WHERE NOT hidden ORDER BY popularity_score DESC, id LIMIT 15`;
      return rows.slice(5, 15).map((r) => r.id);
    };
    await expect.poll(async () => ids(await server.get('/content/popular?limit=10&offset=5', true), 'items'), { timeout: 3000 }).toEqual(await expected());
    const popular = await server.get('/content/popular?limit=10&offset=5');
    expect(popular.status).toBe(200);
    expect(popular.json.metadata.total_count).toBe(10);
    expect(Object.keys(popular.json.items[0])).toEqual(['content_id', 'title', 'genre', 'popularity_score', 'created_at']);

    const latestRows = await db.sql<{ id: number }[]>`
      SELECT id::int FROM content WHERE NOT hidden AND genre = 'drama' ORDER BY created_at DESC, id LIMIT 4`;
    const latest = await server.get('/content/latest?limit=4&genre=drama');
    expect(ids(latest, 'items')).toEqual(latestRows.map((r) => r.id));
  });

  it('with user_id leaves out what the user watched or dismissed; an unknown user is 404', async () => {
    const [watched] = await db.sql<{ id: number }[]>`
      SELECT content_id::int AS id FROM user_watch_history WHERE user_id = 3 LIMIT 1`;
    const r = await server.get('/content/popular?limit=100&user_id=3');
    expect(r.status).toBe(200);
    expect(ids(r, 'items')).not.toContain(watched!.id);
    expect((await server.get('/content/popular?user_id=999999')).status).toBe(404);
  });

  it('refuses bad parameters with 400', async () => {
    for (const q of ['limit=0', 'limit=101', 'offset=10001', 'genre=Drama', 'genre=' + 'a'.repeat(33), 'user_id=x']) {
      const r = await server.get(`/content/popular?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error).toBe('invalid_parameter');
    }
  });
});

describe('GET /users/{id}/recommendations: offset and genre', () => {
  /** The seeded user with the most titles left to recommend. */
  async function lightestUser(): Promise<number> {
    const [row] = await db.sql<{ id: number }[]>`
      SELECT u.id::int FROM users u LEFT JOIN user_watch_history w ON w.user_id = u.id
      WHERE u.id <= 20 GROUP BY u.id ORDER BY count(w.id), u.id LIMIT 1`;
    return row!.id;
  }

  it('pages through the same list with offset', async () => {
    const userId = await lightestUser();
    const all = ids(await server.get(`/users/${userId}/recommendations?limit=50`));
    expect(all.length).toBeGreaterThanOrEqual(30);
    const page = await server.get(`/users/${userId}/recommendations?limit=10&offset=20`);
    expect(page.status).toBe(200);
    expect(ids(page)).toEqual(all.slice(20, 30));
    expect(page.json.metadata.total_count).toBe(10);
  });

  it('rejects offset + limit over 50, and a malformed genre', async () => {
    const r = await server.get('/users/4/recommendations?limit=10&offset=41');
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_parameter', message: 'Invalid offset parameter' });
    const g = await server.get('/users/4/recommendations?genre=Sci%20Fi');
    expect(g.json).toEqual({ error: 'invalid_parameter', message: 'Invalid genre parameter' });
  });

  it('ranks exactly the eligible titles of one genre with genre=, and answers [] for a genre without titles', async () => {
    const userId = await lightestUser();
    const eligible = await eligibleTitles(db.sql, userId, 'comedy');
    expect(eligible.length).toBeGreaterThan(0);
    const r = await server.get(`/users/${userId}/recommendations?limit=50&genre=comedy`);
    expect(r.status).toBe(200);
    expect(ids(r).sort((a, b) => a - b)).toEqual(eligible.map((e) => e.id).sort((a, b) => a - b));
    const scores = r.json.recommendations.map((x: { score: number }) => x.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const none = await server.get(`/users/${userId}/recommendations?genre=no-such-genre`);
    expect(none.status).toBe(200);
    expect(none.json.recommendations).toEqual([]);
  });
});

describe('dismissals', () => {
  it('removes the title from every list of the user before the 201; DELETE undoes it', async () => {
    await send('PUT', '/content/80010', top('Not For Me', { genre: 'comedy' }));
    await untilEveryCatalogHas(80010);
    await send('PUT', '/users/70010', {});
    expect(ids(await server.get('/users/70010/recommendations?limit=5', true))).toContain(80010);
    await server.get('/users/70010/recommendations?limit=5&genre=comedy'); // cache the genre list too

    const d = await send('POST', '/users/70010/dismissals', { content_id: 80010 });
    expect(d.status).toBe(201);
    expect(d.json).toMatchObject({ user_id: 70010, content_id: 80010 });
    for (let i = 0; i < 4; i++) {
      expect(ids(await server.get('/users/70010/recommendations?limit=50', true))).not.toContain(80010);
      expect(ids(await server.get('/users/70010/recommendations?limit=50&genre=comedy', true))).not.toContain(80010);
      expect(ids(await server.get('/content/popular?limit=100&user_id=70010', true), 'items')).not.toContain(80010);
    }
    expect((await send('DELETE', '/users/70010/dismissals/80010')).status).toBe(204);
    expect(ids(await server.get('/users/70010/recommendations?limit=5', true))).toContain(80010);
  });

  it('is 404 for an unknown user or title', async () => {
    expect((await send('POST', '/users/999999/dismissals', { content_id: 1 })).json.error).toBe('user_not_found');
    expect((await send('POST', '/users/1/dismissals', { content_id: 999999 })).json.error).toBe('content_not_found');
  });
});

describe('availability rules', () => {
  it('shows a tiered or country-restricted title only to users it is for, on every personalized route', async () => {
    await send('PUT', '/users/70020', { subscription_type: 'free', country: 'US' });
    await send('PUT', '/users/70021', { subscription_type: 'premium', country: 'DE' });
    await send('PUT', '/content/80020', top('Premium Only', { subscription_tier: 'premium' }));
    await send('PUT', '/content/80021', top('German Only', { countries: ['DE', 'AT'] }));
    await untilEveryCatalogHas(80020);
    await untilEveryCatalogHas(80021);

    const free = ids(await server.get('/users/70020/recommendations?limit=50', true));
    expect(free).not.toContain(80020);
    expect(free).not.toContain(80021);
    expect(ids(await server.get('/content/popular?limit=100&user_id=70020', true), 'items')).not.toContain(80020);
    const premium = ids(await server.get('/users/70021/recommendations?limit=50', true));
    expect(premium).toEqual(expect.arrayContaining([80020, 80021]));

    // An upgrade is the user's write: their lists are recomputed before the 200.
    await send('PUT', '/users/70020', { subscription_type: 'premium' });
    expect(ids(await server.get('/users/70020/recommendations?limit=50', true))).toContain(80020);
  });
});

describe('GET /content/{id}/similar', () => {
  /** Cosine over users of two titles, from each user's 50 most recent events (the job's window). */
  async function cosine(a: number, b: number): Promise<number> {
    const [row] = await db.sql<{ co: number; na: number; nb: number }[]>`
      WITH recent AS (
        SELECT DISTINCT user_id, content_id FROM (
          SELECT user_id, content_id, row_number() OVER (PARTITION BY user_id ORDER BY watched_at DESC, id DESC) AS k
          FROM user_watch_history
          -- The history the lists were computed from: the job may have run before or after earlier tests' writes.
          WHERE watched_at <= (SELECT computed_at FROM content_similarity WHERE content_id = ${a})) w WHERE k <= 50)
      SELECT (SELECT count(*) FROM recent x JOIN recent y USING (user_id) WHERE x.content_id = ${a} AND y.content_id = ${b})::int AS co,
             (SELECT count(*) FROM recent WHERE content_id = ${a})::int AS na,
             (SELECT count(*) FROM recent WHERE content_id = ${b})::int AS nb`;
    return Math.round((row!.co / Math.sqrt(row!.na * row!.nb)) * 1000) / 1000;
  }

  it('lists the titles most watched by the same users, best first, with their cosine similarity', async () => {
    // The primary computes the lists right after start-up, in the background.
    await expect.poll(async () => (await server.get('/content/1/similar?limit=5', true)).json.metadata.source, { timeout: 20_000 }).toBe('co_watch');
    const r = await server.get('/content/1/similar?limit=5');
    expect(r.status).toBe(200);
    expect(r.json.content_id).toBe(1);
    expect(r.json.similar.length).toBeGreaterThan(0);
    const scores = r.json.similar.map((x: { score: number }) => x.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const item of r.json.similar) {
      expect(Object.keys(item)).toEqual(['content_id', 'title', 'genre', 'popularity_score', 'created_at', 'score']);
      expect(item.score).toBe(await cosine(1, item.content_id));
    }
  });

  it('never lists a hidden title; a title without co-watchers gets its genre\'s most popular ones', async () => {
    await expect.poll(async () => (await server.get('/content/1/similar?limit=50', true)).json.metadata.source, { timeout: 20_000 }).toBe('co_watch');
    const before = await server.get('/content/1/similar?limit=50');
    const victim = before.json.similar[0].content_id as number;
    expect((await send('DELETE', `/content/${victim}`)).status).toBe(204);
    for (let i = 0; i < 4; i++) expect(ids(await server.get('/content/1/similar?limit=50', true), 'similar')).not.toContain(victim);

    await send('PUT', '/content/80030', { title: 'Nobody Saw It', genre: 'comedy', popularity_score: 0.01 });
    const lonely = await server.get('/content/80030/similar?limit=3');
    expect(lonely.status).toBe(200);
    expect(lonely.json.metadata.source).toBe('genre_popularity');
    expect(new Set(lonely.json.similar.map((x: { genre: string }) => x.genre))).toEqual(new Set(['comedy']));
    expect((await server.get('/content/999999/similar')).status).toBe(404);
  });
});
