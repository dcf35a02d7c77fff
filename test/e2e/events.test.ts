/**
 * POST /events against the real clustered server (2 workers), real PostgreSQL and real Redis, with an API key:
 * request in, exact status and body out, and what PostgreSQL holds after each answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;
const KEY = 'events-test-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
/** The default EVENTS_MAX_BODY_BYTES. */
const EVENTS_MAX_BODY_BYTES = 2 * 1024 * 1024;
/** Users created for the full-size request (the seed has 20). */
const MANY = 10_000;
const FIRST_MANY = 1001;

const postEvents = (body: unknown, headers: Record<string, string> = AUTH, fresh = false): Promise<Reply> =>
  server.request('POST', '/events', { body: typeof body === 'string' ? body : JSON.stringify(body), headers, fresh });

async function historyCount(): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM user_watch_history`;
  return row!.n;
}

/** The user's events newer than history id `after`, oldest id first. */
async function eventsSince(after: number, userIds: number[]) {
  // `us`: microseconds since the epoch, as stored (a Date keeps milliseconds only).
  return db.sql<{ user_id: number; content_id: number; watched_at: Date; us: string }[]>`
    SELECT user_id::int, content_id::int, watched_at, (extract(epoch FROM watched_at) * 1000000)::int8::text AS us
    FROM user_watch_history
    WHERE id > ${after} AND user_id = ANY(${userIds}::int8[]) ORDER BY id`;
}

async function lastHistoryId(): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`SELECT coalesce(max(id), 0)::int AS id FROM user_watch_history`;
  return row!.id;
}

const topTitle = async (userId: number): Promise<number> =>
  (await server.get(`/users/${userId}/recommendations?limit=1`, true)).json.recommendations[0].content_id as number;

beforeAll(async () => {
  db = await createTestDatabase();
  const redisUrl = await emptyRedisDb(5);
  server = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl, API_KEY: KEY });
  await db.sql`INSERT INTO users (id, age, country, subscription_type)
    SELECT id, 30, 'US', 'free' FROM generate_series(${FIRST_MANY}::int8, ${FIRST_MANY + MANY - 1}::int8) id`;
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('POST /events', () => {
  it('records every event in order, at its timestamp or now, answers 201 with the counts, and no worker recommends a watched title after', async () => {
    const [t3, t4] = [await topTitle(3), await topTitle(4)];
    // Cached on both workers (fresh connections land on either) before the write.
    for (let i = 0; i < 6; i++) await Promise.all([server.get('/users/3/recommendations?limit=50', true), server.get('/users/4/recommendations?limit=50', true)]);
    const after = await lastHistoryId();
    const sent = Date.now();
    const r = await postEvents([
      { user_id: 3, content_id: t3, timestamp: '2024-03-01T10:00:00+01:00' },
      { user_id: 4, content_id: t4 },
      { user_id: 3, content_id: t3 },
    ]);
    const answered = Date.now();
    expect(r.status).toBe(201);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json).toStrictEqual({ events: 3, users: 2 });

    const rows = await eventsSince(after, [3, 4]);
    expect(rows.map((e) => [e.user_id, e.content_id])).toEqual([[3, t3], [4, t4], [3, t3]]);
    expect(rows[0]!.watched_at.toISOString()).toBe('2024-03-01T09:00:00.000Z');
    // Without a timestamp: the database's now, distinct and increasing within the request.
    expect(rows[1]!.watched_at.getTime()).toBeGreaterThanOrEqual(sent - 1000);
    expect(BigInt(rows[2]!.us)).toBeGreaterThan(BigInt(rows[1]!.us));
    expect(rows[2]!.watched_at.getTime()).toBeLessThanOrEqual(answered);

    for (let i = 0; i < 20; i++) {
      const [a, b] = await Promise.all([server.get('/users/3/recommendations?limit=50', true), server.get('/users/4/recommendations?limit=50', true)]);
      expect(a.json.recommendations.map((x: { content_id: number }) => x.content_id)).not.toContain(t3);
      expect(b.json.recommendations.map((x: { content_id: number }) => x.content_id)).not.toContain(t4);
    }
  });

  it('records a timestamp up to 60 s ahead of the server clock (clock skew) as the server\'s now', async () => {
    const after = await lastHistoryId();
    const ahead = new Date(Date.now() + 30_000).toISOString();
    const r = await postEvents([{ user_id: 5, content_id: 1, timestamp: ahead }]);
    const answered = Date.now();
    expect(r.status).toBe(201);
    expect(r.json).toStrictEqual({ events: 1, users: 1 });
    const [row] = await eventsSince(after, [5]);
    expect(row!.watched_at.getTime()).toBeLessThanOrEqual(answered);
  });

  it('takes 10,000 events of 10,000 users in one request (over MAX_BODY_BYTES, within EVENTS_MAX_BODY_BYTES)', async () => {
    const before = await historyCount();
    const events = Array.from({ length: MANY }, (_, i) => ({ user_id: FIRST_MANY + i, content_id: 1 + (i % 50), timestamp: '2025-01-01T00:00:00Z' }));
    const text = JSON.stringify(events);
    expect(Buffer.byteLength(text)).toBeGreaterThan(4096);
    const r = await postEvents(text);
    expect(r.status).toBe(201);
    expect(r.json).toStrictEqual({ events: MANY, users: MANY });
    expect(await historyCount()).toBe(before + MANY);
    const [row] = await db.sql<{ n: number }[]>`
      SELECT count(DISTINCT user_id)::int AS n FROM user_watch_history WHERE user_id >= ${FIRST_MANY}`;
    expect(row!.n).toBe(MANY);
  });

  const valid = { user_id: 2, content_id: 1 };
  it.each([
    ['not JSON', '[{"user_id":2', 'Request body must be valid JSON'],
    ['an object', JSON.stringify(valid), 'Request body must be a JSON array of 1 to 10000 events'],
    ['an empty array', '[]', 'Request body must be a JSON array of 1 to 10000 events'],
    ['10,001 events', JSON.stringify(Array.from({ length: 10_001 }, () => valid)), 'Request body must be a JSON array of 1 to 10000 events'],
    ['a bad shape at index 1', JSON.stringify([valid, { user_id: 2 }]), 'events[1]: content_id is required'],
    ['an unknown property', JSON.stringify([valid, valid, { ...valid, watched: true }]), 'events[2]: unknown property "watched"'],
    ['a bad timestamp', JSON.stringify([{ ...valid, timestamp: 'yesterday' }]), 'events[0]: timestamp must be an RFC 3339 date-time (years 0001 to 9999 in UTC)'],
    ['a timestamp an hour ahead', JSON.stringify([valid, { ...valid, timestamp: new Date(Date.now() + 3_600_000).toISOString() }]), "events[1]: timestamp is in the future (more than 60 s ahead of the server's clock)"],
    ['an unknown user at index 2', JSON.stringify([valid, valid, { user_id: 424242, content_id: 1 }, { user_id: 2, content_id: 777777 }]), 'events[2]: user 424242 does not exist'],
    ['an unknown title at index 1', JSON.stringify([valid, { user_id: 2, content_id: 777777 }, { user_id: 424242, content_id: 1 }]), 'events[1]: content 777777 does not exist'],
  ])('refuses %s with 400 naming it, and writes none of the events', async (_what, body, message) => {
    const before = await historyCount();
    const r = await postEvents(body);
    expect(r.status).toBe(400);
    expect(r.json).toStrictEqual({ error: 'invalid_body', message });
    expect(await historyCount()).toBe(before);
  });

  it('answers 413 over EVENTS_MAX_BODY_BYTES and writes nothing', async () => {
    const before = await historyCount();
    const body = `[${JSON.stringify(valid)}${' '.repeat(EVENTS_MAX_BODY_BYTES)}]`;
    const r = await postEvents(body, AUTH, true);
    expect(r.status).toBe(413);
    expect(r.json).toStrictEqual({ error: 'payload_too_large', message: `Request body exceeds ${EVENTS_MAX_BODY_BYTES} bytes` });
    expect(await historyCount()).toBe(before);
  });

  it.each([
    ['no key', {}],
    ['a wrong key', { authorization: 'Bearer not-the-key-0123456789' }],
  ])('answers 401 with %s and writes nothing', async (_what, headers) => {
    const before = await historyCount();
    const r = await postEvents([valid], headers, true);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(r.json).toStrictEqual({ error: 'unauthorized', message: 'Missing or invalid API key' });
    expect(await historyCount()).toBe(before);
  });

  it('answers 405 for another method', async () => {
    const r = await server.request('GET', '/events');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
  });
});
