/**
 * Hostile and unauthorized input: API key, rate limiting, size limits, injection strings. Every rejection
 * is a 4xx JSON error, nothing is written, and no response carries a stack trace or SQL text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { isAlive, startServer, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

const KEY = 'test-key-0123456789abcdef';
let db: Awaited<ReturnType<typeof createTestDatabase>>;

const historyCount = async () => Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM user_watch_history`)[0]!.n);
const LEAK = /at [\w.<>]+ \(|\.js:\d+|SELECT|INSERT|syntax error|postgres|node_modules/i;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('API key', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ DATABASE_URL: db.url, API_KEY: KEY });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('requires the key for writes, answering 401 with WWW-Authenticate, and writes nothing without it', async () => {
    const count = await historyCount();
    for (const authorization of [undefined, 'Bearer wrong-key-0123456789', `Basic ${KEY}`, `Bearer ${KEY}x`, 'Bearer']) {
      const r = await server.request('POST', '/users/1/watch-history', {
        body: '{"content_id":5}',
        headers: authorization ? { authorization } : {},
      });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer');
      expect(r.json).toEqual({ error: 'unauthorized', message: 'Missing or invalid API key' });
    }
    expect(await historyCount()).toBe(count);
    const ok = await server.request('POST', '/users/1/watch-history', {
      body: '{"content_id":5}',
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(ok.status).toBe(201);
    expect(await historyCount()).toBe(count + 1);
  });

  it('leaves reads open unless API_KEY_READS is set', async () => {
    expect((await server.get('/users/1/recommendations')).status).toBe(200);
    const strict = await startServer({ DATABASE_URL: db.url, API_KEY: KEY, API_KEY_READS: 'true' });
    try {
      expect((await strict.get('/users/1/recommendations')).status).toBe(401);
      expect((await strict.get('/recommendations/batch')).status).toBe(401);
      const ok = await strict.request('GET', '/users/1/recommendations', { headers: { authorization: `Bearer ${KEY}` } });
      expect(ok.status).toBe(200);
      expect((await strict.get('/health')).status).toBe(200);
    } finally {
      await strict.stop();
    }
  });
});

describe('rate limiting', () => {
  it.each([
    ['through Redis (cluster-wide)', true],
    ['through the primary (instance-wide, no Redis)', false],
  ])('%s: answers 429 with Retry-After once a client used its points, across both workers', async (_, withRedis) => {
    const env: Record<string, string> = { DATABASE_URL: db.url, RATE_LIMIT_POINTS: '10', RATE_LIMIT_DURATION_S: '30' };
    if (withRedis) {
      const url = await emptyRedisDb(5);
      env.REDIS_URL = url;
    }
    const server = await startServer(env);
    try {
      const statuses: number[] = [];
      let limited: Awaited<ReturnType<RunningServer['get']>> | undefined;
      for (let i = 0; i < 16; i++) {
        const r = await server.get('/users/1/recommendations', true); // fresh connections: both workers
        statuses.push(r.status);
        if (r.status === 429) limited ??= r;
      }
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
      expect(statuses.slice(10)).toEqual(Array(6).fill(429));
      expect(limited!.json).toEqual({ error: 'too_many_requests', message: 'Rate limit exceeded' });
      expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(limited!.headers['retry-after'])).toBeLessThanOrEqual(30);
      // Operational routes are not limited.
      expect((await server.get('/health', true)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('hostile input', () => {
  let server: RunningServer;
  /** Pids of the workers that started listening (a restarted worker adds its own). */
  const listening = () => [...server.output().matchAll(/"pid":(\d+),"role":"worker-\d+".*"msg":"worker listening"/g)].map((m) => Number(m[1]));
  beforeAll(async () => {
    server = await startServer({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const injections = [
    "1' OR '1'='1",
    '1; DROP TABLE users; --',
    '1 UNION SELECT * FROM users',
    '<script>alert(1)</script>',
    '${7*7}',
    '../../etc/passwd',
    '%00',
    '1\u0000',
    '{"$gt":0}',
  ];

  it('rejects injection strings in every parameter with 400, and the tables are intact', async () => {
    const users = Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM users`)[0]!.n);
    const count = await historyCount();
    for (const evil of injections) {
      const e = encodeURIComponent(evil);
      for (const path of [
        `/users/${e}/recommendations`,
        `/users/1/recommendations?limit=${e}`,
        `/recommendations/batch?page=${e}`,
        `/recommendations/batch?limit=${e}`,
      ]) {
        const r = await server.get(path);
        expect([400, 404]).toContain(r.status);
        expect(r.json.error).toMatch(/^(invalid_parameter|not_found)$/);
        expect(r.text).not.toMatch(LEAK);
      }
      for (const body of [JSON.stringify({ content_id: evil }), `{"content_id": ${evil}}`]) {
        const r = await server.request('POST', '/users/1/watch-history', { body });
        expect(r.status).toBe(400);
        expect(r.text).not.toMatch(LEAK);
      }
      const r = await server.request('POST', `/users/${e}/watch-history`, { body: '{"content_id":1}' });
      expect(r.status).toBe(400);
    }
    expect(Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM users`)[0]!.n)).toBe(users);
    expect(await historyCount()).toBe(count);
  });

  it('treats an injection string in an ignored field as data and stores nothing of it', async () => {
    const titles = Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM content`)[0]!.n);
    const count = await historyCount();
    const r = await server.post('/users/1/watch-history', { content_id: 3, note: "'); DROP TABLE content; --" });
    expect(r.status).toBe(201);
    expect((await server.get('/users/1/recommendations')).status).toBe(200);
    // One row, the event itself; the note is in no column of it; the content table is whole.
    expect(await historyCount()).toBe(count + 1);
    const rows = await db.sql<{ row: string }[]>`
      SELECT to_jsonb(w)::text AS row FROM user_watch_history w WHERE user_id = 1 AND content_id = 3`;
    expect(rows.length).toBeGreaterThan(0);
    for (const { row } of rows) expect(row).not.toMatch(/DROP|note/i);
    expect(Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM content`)[0]!.n)).toBe(titles);
  });

  it('refuses an over-long query string (414), a huge body (413) and oversized headers, without crashing', async () => {
    const long = await server.get(`/users/1/recommendations?limit=5&pad=${'x'.repeat(3000)}`);
    expect(long.status).toBe(414);
    expect(long.json.error).toBe('uri_too_long');
    const chunked = await server.request('POST', '/users/1/watch-history', {
      body: Buffer.alloc(1024 * 1024, 'a'),
      headers: { 'content-length': String(1024 * 1024) },
      fresh: true,
    });
    expect(chunked.status).toBe(413);
    // Headers over uWS's limit (64 KB, src/http/uws.ts; 128 KB is over it, and so are 200 headers) never
    // reach our code: uWS answers 431 itself (older builds cut the connection instead).
    const workers = listening();
    expect(workers).toHaveLength(2);
    const outcome = (headers: Record<string, string>) =>
      server.request('GET', '/health', { headers, fresh: true }).then(
        (reply) => `answered ${reply.status}`,
        (err: NodeJS.ErrnoException) => (['ECONNRESET', 'EPIPE'].includes(err.code ?? '') ? 'connection cut' : `error ${err.code ?? err.message}`),
      );
    // 16 KB passes uWS and reaches our code, which ignores a request id that long and uses its own.
    const longId = await server.request('GET', '/health', { headers: { 'x-request-id': 'y'.repeat(16 * 1024) }, fresh: true });
    expect(longId.status).toBe(200);
    expect(longId.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-\d+-[0-9a-z]+$/);
    expect(['answered 431', 'connection cut']).toContain(await outcome({ 'x-big': 'y'.repeat(128 * 1024) }));
    expect(['answered 431', 'connection cut']).toContain(await outcome(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, 'v']))));
    // Without crashing: both workers answer, and they are the same processes (a dead worker logs at 50,
    // not 60, and the supervisor restarts it; its replacement would answer /health just the same).
    const answeredBy = new Set<string>();
    for (let i = 0; i < 200 && answeredBy.size < 2; i++) {
      const r = await server.get('/health', true);
      expect(r.status).toBe(200);
      answeredBy.add(String(r.headers['x-request-id']).split('-')[1]);
    }
    expect(answeredBy.size).toBe(2);
    expect(server.output()).not.toContain('worker exited');
    expect(listening()).toEqual(workers);
    for (const pid of workers) expect(isAlive(pid)).toBe(true);
    expect(server.output()).not.toMatch(/"level":(50|60)/);
  });
});
