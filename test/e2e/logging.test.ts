/**
 * Request ids and logs of the real clustered server at LOG_LEVEL=debug: every response carries an id
 * (the caller's when it is a sane token), the id is on every log line about the request (one access
 * line each; a failure logged once with route, user and cause), and no secret or body reaches a log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadUws } from '../../src/http/uws.js';
import { createTestDatabase } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

const GENERATED = /^[0-9a-f]{8}-[01]-[0-9a-z]+$/;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startServer({
    DATABASE_URL: db.url,
    LOG_LEVEL: 'debug',
    // A cold recommendation outlives its deadline: a 503 to log. Everything else answers well within it.
    MODEL_LATENCY_MS: '2000',
    MODEL_TIMEOUT_MS: '10000',
    REQUEST_TIMEOUT_MS: '500',
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

type Line = Record<string, unknown> & { msg?: string; request_id?: string };

function lines(): Line[] {
  return server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

/** Log lines about one request, once `count` of them arrived (logs and responses race on two pipes). */
async function linesFor(id: string, count: number): Promise<Line[]> {
  for (let i = 0; i < 200 && lines().filter((l) => l.request_id === id).length < count; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return lines().filter((l) => l.request_id === id);
}

describe('request ids', () => {
  it('echoes a sane X-Request-Id and writes one access line with it', async () => {
    const r = await server.request('GET', '/health', { headers: { 'x-request-id': 'client-abc.1_2' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-request-id']).toBe('client-abc.1_2');
    const logged = await linesFor('client-abc.1_2', 1);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 20, msg: 'request', method: 'GET', route: 'health', status: 200 });
    expect(typeof logged[0]!.duration_ms).toBe('number');
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['a space', 'two words'],
    ['a quote', 'x"y'],
  ])('replaces an incoming id with %s by a generated one', async (_, incoming) => {
    const r = await server.request('GET', '/health', { headers: { 'x-request-id': incoming } });
    const id = String(r.headers['x-request-id']);
    expect(id).toMatch(GENERATED);
    expect(await linesFor(id, 1)).toHaveLength(1);
    expect(server.output()).not.toContain(incoming.slice(0, 128));
  });

  it('generates a distinct id for every request, on every worker', async () => {
    const replies = await Promise.all(Array.from({ length: 30 }, () => server.get('/health', true)));
    const ids = replies.map((r) => String(r.headers['x-request-id']));
    for (const id of ids) expect(id).toMatch(GENERATED);
    expect(new Set(ids).size).toBe(30);
    expect(new Set(ids.map((id) => id.split('-')[1]))).toEqual(new Set(['0', '1']));
  });

  it('carries the id on error responses too', async () => {
    const r = await server.request('GET', '/users/abc/recommendations', { headers: { 'x-request-id': 'bad-param-1' } });
    expect(r.status).toBe(400);
    expect(r.headers['x-request-id']).toBe('bad-param-1');
    // A client error is not a service failure: only the access line.
    expect((await linesFor('bad-param-1', 1)).map((l) => [l.msg, l.status])).toEqual([['request', 400]]);
  });
});

describe('error logs', () => {
  it('logs a failed request once, with its id, route, user and cause', async () => {
    const r = await server.request('GET', '/users/2/recommendations', { headers: { 'x-request-id': 'slow-probe-1' } });
    expect(r.status).toBe(503);
    expect(r.json.error).toBe('request_timeout');
    const logged = await linesFor('slow-probe-1', 2);
    expect(logged).toHaveLength(2);
    const failure = logged.find((l) => l.msg === 'request failed');
    expect(failure).toMatchObject({ level: 40, route: 'recommendations', user_id: 2, code: 'request_timeout' });
    expect(logged.find((l) => l.msg === 'request')).toMatchObject({ route: 'recommendations', status: 503 });
  });

  it('never logs the database URL or a request body', async () => {
    const r = await server.post('/users/3/watch-history', { content_id: 4, note: 'BODY-MARKER-7f3a' });
    expect(r.status).toBe(201);
    await linesFor(String(r.headers['x-request-id']), 1);
    const output = server.output();
    expect(output).not.toContain(db.url);
    expect(output).not.toContain(new URL(db.url).password || 'no-password-in-url');
    expect(output).not.toContain('BODY-MARKER-7f3a');
  });
});

describe('start-up', () => {
  it('each worker names the uWebSockets.js build serving it: the one this Node and glibc load first', () => {
    const { build } = loadUws();
    const serving = `${build.package}@${build.version}`;
    const listening = lines().filter((l) => l.msg === 'worker listening');
    expect(listening.map((l) => l.uws)).toEqual([serving, serving]); // WORKERS=2
  });
});
