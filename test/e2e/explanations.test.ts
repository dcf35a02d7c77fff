/**
 * `GET /users/{id}/recommendations?explain=true` against the real clustered server (2 workers), real
 * PostgreSQL and Redis, per model: the exact shape, the 400, the unchanged body without it, and
 * explanations that survive a Redis round trip and a list shrunk by a hide. Learned models are asserted
 * only once every worker serves the model the service trained at start-up (`model_version` in /metrics).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { emptyRedisDb } from '../support/redis.js';
import { startServer, type RunningServer } from '../support/server.js';

const REDIS_DB = 10;
const KINDS = ['similar_to_watched', 'latent_taste', 'popular_in_genre', 'popular', 'fallback'];
const ITEM_KEYS = ['content_id', 'title', 'genre', 'popularity_score', 'score'];

interface Explanation {
  kind: string;
  because?: number[];
}
interface Item {
  content_id: number;
  title: string;
  genre: string;
  popularity_score: number;
  score: number;
  explanation?: Explanation;
}

/** The user's most recent watch events (newest first, the seed formula's window of 50), with genres. */
async function recentEvents(db: TestDatabase, userId: number): Promise<{ id: number; genre: string; hidden: boolean }[]> {
  const rows = await db.sql<{ id: string; genre: string; hidden: boolean }[]>`
    SELECT w.content_id::text AS id, c.genre, c.hidden FROM user_watch_history w JOIN content c ON c.id = w.content_id
    WHERE w.user_id = ${userId} ORDER BY w.watched_at DESC, w.id DESC LIMIT 50`;
  return rows.map((r) => ({ id: Number(r.id), genre: r.genre, hidden: r.hidden }));
}

/**
 * The seed formula's reasons for an item of `genre`: the newest three distinct titles of that genre in the
 * window, less the hidden ones (a hidden title is never shown, not even as a reason).
 */
function genreReasons(recent: { id: number; genre: string; hidden: boolean }[], genre: string): number[] {
  const newest = [...new Set(recent.filter((e) => e.genre === genre).map((e) => e.id))].slice(0, 3);
  return newest.filter((id) => !recent.find((e) => e.id === id)!.hidden);
}

async function watchedBy(db: TestDatabase, userId: number): Promise<Set<number>> {
  const rows = await db.sql<{ id: string }[]>`SELECT content_id::text AS id FROM user_watch_history WHERE user_id = ${userId}`;
  return new Set(rows.map((r) => Number(r.id)));
}

/** A user of typical activity (the most active one has watched most of the small seeded catalog). */
async function medianUser(db: TestDatabase): Promise<number> {
  const rows = await db.sql<{ id: string }[]>`
    SELECT user_id::text AS id FROM user_watch_history GROUP BY user_id ORDER BY count(*), user_id`;
  return Number(rows[Math.floor(rows.length / 2)]!.id);
}

/**
 * The user's list as Redis holds it, once it holds one that `accept`s (the service stores a list without
 * making the client wait for Redis).
 */
async function storedInRedis(redis: Redis, userId: number, genre?: string, accept = (_stored: any) => true): Promise<any> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = genre === undefined ? await redis.get(`rec:{${userId}}:list`) : await redis.hget(`rec:{${userId}}:genres`, genre);
    const stored = text === null ? undefined : JSON.parse(text);
    if (stored !== undefined && accept(stored)) return stored;
    if (Date.now() > deadline) throw new Error(`user ${userId}'s list ${genre ?? ''} never reached Redis: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves once every worker serves a trained model (the start-up training is in the background). */
async function modelTrained(server: RunningServer, workers = 2): Promise<number> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const text = (await server.get('/metrics')).text;
    const versions = [...text.matchAll(/^model_version\{worker="[^"]*"\} (\d+)$/gm)].map((m) => Number(m[1]));
    if (versions.length === workers && versions.every((v) => v > 0)) return versions[0]!;
    if (Date.now() > deadline) throw new Error(`no trained model served within 120 s:\n${server.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A fresh database and a server on it with `env`, for the tests of one describe block; `ready` awaited before them. */
function serverWith(env: Record<string, string>, ready?: (server: RunningServer) => Promise<unknown>): { db: TestDatabase; server: RunningServer } {
  const running = {} as { db: TestDatabase; server: RunningServer };
  beforeAll(async () => {
    running.db = await createTestDatabase();
    running.server = await startServer({ DATABASE_URL: running.db.url, ...env });
    if (ready) await ready(running.server);
  });
  afterAll(async () => {
    await running.server?.stop();
    await running.db?.drop();
  });
  return running;
}

/** Explanation shape rules every explained item obeys, whatever the model. */
function expectWellFormed(items: Item[]): void {
  for (const item of items) {
    expect(Object.keys(item)).toEqual([...ITEM_KEYS, 'explanation']);
    const e = item.explanation!;
    expect(KINDS).toContain(e.kind);
    if ('because' in e) {
      expect(Object.keys(e)).toEqual(['kind', 'because']);
      expect(e.because!.length).toBeGreaterThanOrEqual(1);
      expect(e.because!.length).toBeLessThanOrEqual(3);
      expect(new Set(e.because).size).toBe(e.because!.length);
    } else {
      expect(Object.keys(e)).toEqual(['kind']);
    }
  }
}

const withoutExplanations = (json: { recommendations: Item[] }) => ({
  ...json,
  recommendations: json.recommendations.map(({ explanation: _e, ...item }) => item),
});

describe('MODEL=heuristic, with Redis: one server with L1, one reading every list from Redis', () => {
  let db: TestDatabase;
  let server: RunningServer;
  /** L1 off, same database and Redis: every list it serves went through Redis. */
  let redisOnly: RunningServer;
  let redis: Redis;

  beforeAll(async () => {
    db = await createTestDatabase();
    const redisUrl = await emptyRedisDb(REDIS_DB);
    server = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl, MODEL: 'heuristic' });
    redisOnly = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl, MODEL: 'heuristic', L1_MAX_ENTRIES: '0' });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await redisOnly?.stop();
    await server?.stop();
    await db?.drop();
  });

  it.each(['yes', '1', 'TRUE', '', 'true&explain=true'])('refuses explain=%s with 400 invalid_parameter', async (value) => {
    const r = await server.get(`/users/1/recommendations?explain=${value}`);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_parameter', message: 'Invalid explain parameter' });
  });

  it('serves the very same bytes without explain and with explain=false', async () => {
    const first = await server.get('/users/2/recommendations?limit=7');
    expect(first.json.metadata.cache_hit).toBe(false);
    expect(first.text).not.toContain('explanation');
    const plain = await server.get('/users/2/recommendations?limit=7');
    const off = await server.get('/users/2/recommendations?limit=7&explain=false');
    expect(plain.json.metadata.cache_hit).toBe(true);
    expect(off.status).toBe(200);
    expect(off.text).toBe(plain.text);
  });

  it('adds an explanation after each score, and nothing else changes (miss, then cache hit)', async () => {
    const miss = await server.get('/users/3/recommendations?limit=10&explain=true');
    expect(miss.status).toBe(200);
    expect(miss.json.metadata).toMatchObject({ cache_hit: false, total_count: 10, source: 'model' });
    expectWellFormed(miss.json.recommendations);
    const hit = await server.get('/users/3/recommendations?limit=10&explain=true');
    expect(hit.json.metadata.cache_hit).toBe(true);
    expect(hit.json.recommendations).toEqual(miss.json.recommendations);
    // Without the explanations it is, to the byte, the body a plain request gets from the same list.
    const plain = await server.get('/users/3/recommendations?limit=10');
    expect(JSON.stringify(withoutExplanations(hit.json))).toBe(plain.text);
  });

  it('explains the seed formula: popular_in_genre because of the newest distinct titles of that genre the user watched', async () => {
    const userId = 5;
    const [newest] = await recentEvents(db, userId);
    // Watching a title again repeats it in the history; an explanation names it once.
    expect((await server.post(`/users/${userId}/watch-history`, { content_id: newest!.id })).status).toBe(201);
    const recent = await recentEvents(db, userId);
    const r = await server.get(`/users/${userId}/recommendations?limit=50&explain=true`);
    expect(r.status).toBe(200);
    expectWellFormed(r.json.recommendations);
    const kinds = new Set<string>();
    for (const item of r.json.recommendations as Item[]) {
      const newest = recent.filter((e) => e.genre === item.genre);
      const because = genreReasons(recent, item.genre);
      const expected = newest.length === 0 ? { kind: 'popular' } : because.length > 0 ? { kind: 'popular_in_genre', because } : { kind: 'popular_in_genre' };
      expect(item.explanation, `content ${item.content_id} (${item.genre})`).toEqual(expected);
      kinds.add(item.explanation!.kind);
    }
    // The planted data gives both kinds: titles of genres the user watches, and of genres they never do.
    expect([...kinds].sort()).toEqual(['popular', 'popular_in_genre']);
  });

  it('explains a page (offset, limit) and a genre list like the whole list it is cut from', async () => {
    const whole = await server.get('/users/6/recommendations?limit=12&explain=true');
    const page = await server.get('/users/6/recommendations?offset=4&limit=5&explain=true');
    expect(page.json.metadata.total_count).toBe(5);
    expect(page.json.recommendations).toEqual(whole.json.recommendations.slice(4, 9));
    const genre = (whole.json.recommendations as Item[]).find((i) => i.explanation!.kind === 'popular_in_genre')!.genre;
    const recent = await recentEvents(db, 6);
    const byGenre = await server.get(`/users/6/recommendations?genre=${genre}&limit=5&explain=true`);
    expect(byGenre.status).toBe(200);
    expect(byGenre.json.recommendations.length).toBeGreaterThan(0);
    const because = genreReasons(recent, genre);
    for (const item of byGenre.json.recommendations as Item[]) {
      expect(item.genre).toBe(genre);
      expect(item.explanation).toEqual(because.length > 0 ? { kind: 'popular_in_genre', because } : { kind: 'popular_in_genre' });
    }
  });

  it('keeps the explanations through Redis: a list read back from Redis explains itself', async () => {
    for (const genre of [undefined, 'drama']) {
      const q = genre === undefined ? '' : `&genre=${genre}`;
      const computed = await server.get(`/users/8/recommendations?limit=50&explain=true${q}`);
      expect(computed.json.metadata.cache_hit).toBe(false);
      await storedInRedis(redis, 8, genre);
      const fromRedis = await redisOnly.get(`/users/8/recommendations?limit=50&explain=true${q}`);
      expect(fromRedis.json.metadata.cache_hit).toBe(true);
      expect(fromRedis.json.metadata.generated_at).toBe(computed.json.metadata.generated_at);
      expect(fromRedis.json.recommendations).toEqual(computed.json.recommendations);
    }
  });

  it('serves a list stored without explanations as it is; asked to explain it, computes it again', async () => {
    const userId = 9;
    const first = await redisOnly.get(`/users/${userId}/recommendations?limit=5`);
    expect(first.json.metadata.cache_hit).toBe(false);
    const stored = await storedInRedis(redis, userId);
    // Make it a list as a version without explanations stored it.
    const key = `rec:{${userId}}:list`;
    expect(stored.x).toHaveLength(stored.i.length);
    const ttl = await redis.pttl(key);
    const { x: _x, ...old } = stored;
    await redis.set(key, JSON.stringify(old), 'PX', ttl);

    const plain = await redisOnly.get(`/users/${userId}/recommendations?limit=5`);
    expect(plain.json.metadata.cache_hit).toBe(true);
    expect(plain.text).toBe(first.text.replace('"cache_hit":false', '"cache_hit":true'));
    const explained = await redisOnly.get(`/users/${userId}/recommendations?limit=5&explain=true`);
    expect(explained.json.metadata.cache_hit).toBe(false);
    expectWellFormed(explained.json.recommendations);
    // Stored over the old one, with its explanations.
    const again = await storedInRedis(redis, userId, undefined, (s) => s.g === explained.json.metadata.generated_at);
    expect(again.x).toHaveLength(stored.i.length);

    // A fallback list says why for sure without explanations of its own: every item is `fallback`.
    await redis.set(key, JSON.stringify({ ...old, s: 'popularity_fallback' }), 'PX', ttl);
    const fallback = await redisOnly.get(`/users/${userId}/recommendations?limit=5&explain=true`);
    expect(fallback.json.metadata).toMatchObject({ cache_hit: true, source: 'popularity_fallback' });
    for (const item of fallback.json.recommendations as Item[]) expect(item.explanation).toEqual({ kind: 'fallback' });
  });

  it('has no explanations in batch pages, explain or not', async () => {
    const r = await server.get('/recommendations/batch?page=1&limit=3&explain=true');
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('explanation');
  });

  it('keeps each explanation with its item when a hide shrinks a cached list, and names no hidden title', async () => {
    const userId = 11;
    const before = await server.get(`/users/${userId}/recommendations?limit=50&explain=true`);
    const items = before.json.recommendations as Item[];
    // Hide an early title whose neighbours are explained differently, so a shift would show...
    const at = items.findIndex((item, i) => i > 0 && i < items.length - 1 && JSON.stringify(items[i + 1]!.explanation) !== JSON.stringify(item.explanation));
    expect(at).toBeGreaterThan(0);
    const hidden = items[at]!.content_id;
    // ...and a title the user watched that explains other items.
    const reason = items.find((i) => i.content_id !== hidden && i.explanation!.because)!.explanation!.because![0]!;
    expect((await server.request('DELETE', `/content/${hidden}`)).status).toBe(204);
    expect((await server.request('DELETE', `/content/${reason}`)).status).toBe(204);
    const expected = items
      .filter((i) => i.content_id !== hidden)
      .map(({ explanation, ...item }) => {
        const because = explanation!.because?.filter((id) => id !== reason) ?? [];
        return { ...item, explanation: because.length > 0 ? { kind: explanation!.kind, because } : { kind: explanation!.kind } };
      });
    const after = await server.get(`/users/${userId}/recommendations?limit=50&explain=true`);
    expect(after.json.metadata.cache_hit).toBe(true); // the cached list, checked again: not a new one
    expect(after.json.recommendations).toEqual(expected);
    // A list computed after the hide leaves it out of its reasons too.
    const genre = items.find((i) => i.explanation!.because?.includes(reason))!.genre;
    const fresh = await server.get(`/users/${userId}/recommendations?genre=${genre}&explain=true`);
    expect(fresh.json.metadata.cache_hit).toBe(false);
    expect(fresh.json.recommendations.length).toBeGreaterThan(0);
    for (const item of fresh.json.recommendations as Item[]) expect(item.explanation!.because ?? []).not.toContain(reason);
  });
});

describe.each([
  ['item-cf', 'similar_to_watched', "a co-watch neighbour of the user's recent titles, because of those behind it"],
  ['als', 'latent_taste', "what the user's folded-in taste scores above zero, because of their titles closest to it"],
])('MODEL=%s', (model, kind, meaning) => {
  const running = serverWith({ MODEL: model }, modelTrained);

  it(`explains an item as ${kind} (${meaning}); popular titles only fill the list`, async () => {
    const userId = await medianUser(running.db);
    const watched = await watchedBy(running.db, userId);
    const r = await running.server.get(`/users/${userId}/recommendations?limit=20&explain=true`);
    expect(r.status).toBe(200);
    expect(r.json.metadata.source).toBe('model');
    const items = r.json.recommendations as Item[];
    expectWellFormed(items);
    // Only the model's own score ranks: its items first, then the popular titles that fill the list.
    expect(items.map((i) => i.explanation!.kind).join(' ')).toMatch(new RegExp(`^(${kind} ?)+(popular ?)*$`));
    for (const item of items) {
      const e = item.explanation!;
      if (e.kind === kind) for (const id of e.because ?? []) expect(watched.has(id), `because ${id}`).toBe(true);
      else expect(e.because).toBeUndefined();
    }
    // The neighbour model always names its reasons.
    if (model === 'item-cf') expect(items.every((i) => i.explanation!.kind !== kind || i.explanation!.because)).toBe(true);
  });
});

describe('popularity fallback (every model call fails)', () => {
  const running = serverWith({ MODEL: 'heuristic', MODEL_FAILURE_RATE: '1' });

  it('explains every item of a fallback list as fallback, with no because', async () => {
    const r = await running.server.get('/users/4/recommendations?limit=10&explain=true');
    expect(r.status).toBe(200);
    expect(r.json.metadata.source).toBe('popularity_fallback');
    expect(r.json.recommendations).toHaveLength(10);
    for (const item of r.json.recommendations as Item[]) {
      expect(Object.keys(item)).toEqual([...ITEM_KEYS, 'explanation']);
      expect(item.explanation).toEqual({ kind: 'fallback' });
    }
  });
});
