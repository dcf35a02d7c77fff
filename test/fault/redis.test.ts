/**
 * Redis failing under load: crashed, hung, restarted. Every recommendation request must still succeed
 * (from PostgreSQL), no request waits on a reconnect or a hung server (each is answered while the fault
 * still holds), and the service picks Redis up again by itself.
 * L1 is disabled so that every request really goes through Redis.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { ownRedis, requestLoop, sleep, tally, type OwnRedis, type Outcome } from '../support/faults.js';
import { startServer, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let redis: OwnRedis;
let server: RunningServer;

const redisHits = async () =>
  Number(/^cache_lookups_total\{tier="redis",result="hit"\} (\d+)$/m.exec((await server.get('/metrics')).text)?.[1] ?? 0);

beforeAll(async () => {
  db = await createTestDatabase();
  redis = await ownRedis();
  server = await startServer({ DATABASE_URL: db.url, REDIS_URL: redis.url, L1_MAX_ENTRIES: '0', MODEL_LATENCY_MS: '1-5' });
});

afterAll(async () => {
  await server?.stop();
  await redis?.destroy();
  await db?.drop();
});

const userPath = (i: number) => `/users/${(i % 20) + 1}/recommendations?limit=5`;

/**
 * Load sent while a fault holds: 8 clients until 40 answers, then the loop stops, which waits for every
 * request in flight. `answered` says whether they all came back before the test gave up (20 s): the test
 * undoes the fault only after this, so a request that waits on Redis (a reconnect, a hung server) never
 * comes back while the fault holds, under any scheduling. The durations are logged, not asserted.
 */
async function loadDuring(fault: string): Promise<{ answered: boolean; done: Promise<Outcome[]> }> {
  const loop = requestLoop(server, 8, userPath);
  for (let i = 0; i < 400 && loop.outcomes.length < 40; i++) await sleep(50);
  let answered = false;
  const done = loop.stop().then((outcomes) => {
    answered = true;
    const ms = outcomes.map((o) => o.end! - o.at).sort((a, b) => a - b);
    console.log(`redis ${fault}: ${outcomes.length} requests, ms p50 ${ms[ms.length >> 1]?.toFixed(0)} max ${ms.at(-1)?.toFixed(0)}`);
    return outcomes;
  });
  for (let i = 0; i < 400 && !answered; i++) await sleep(50);
  return { answered, done };
}

it('keeps answering every request while Redis crashes, restarts and hangs, none waiting for it, then uses Redis again', async () => {
  const warm = requestLoop(server, 8, userPath);
  await sleep(800);
  const outcomes = await warm.stop();

  await redis.kill(); // crash: a command fails at once (no offline queue), the request goes to PostgreSQL
  const crashed = await loadDuring('down');
  await redis.start(); // back, empty
  const during = [...(await crashed.done)];
  expect(crashed.answered, 'every request sent while Redis was down was answered before it came back').toBe(true);

  const back = requestLoop(server, 8, userPath);
  await sleep(1500);
  outcomes.push(...(await back.stop()));

  redis.pause(); // hung: accepts nothing, answers nothing; a command costs REDIS_COMMAND_TIMEOUT_MS at most
  const hung = await loadDuring('hung');
  redis.resume();
  during.push(...(await hung.done));
  expect(hung.answered, 'every request sent while Redis hung was answered before it resumed').toBe(true);

  outcomes.push(...during);
  const counts = tally(outcomes);
  console.log('redis fault outcomes', JSON.stringify(counts));
  expect(during.length).toBeGreaterThanOrEqual(80);
  expect(counts).toEqual({ 200: outcomes.length });
  for (const o of outcomes) expect(o.json.recommendations).toHaveLength(5);

  // Redis is used again without a restart of the service: every worker reconnects by itself (bounded wait).
  for (let i = 0; i < 100; i++) {
    const ready = await Promise.all(Array.from({ length: 4 }, () => server.get('/ready', true)));
    if (ready.every((r) => r.status === 200 && r.json.checks.redis === 'ok')) break;
    await sleep(100);
  }
  const before = await redisHits();
  for (let i = 0; i < 40; i++) await server.get(userPath(i));
  expect(await redisHits()).toBeGreaterThan(before);
  expect((await server.get('/ready')).json).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
});

type Watch = { user_id: number; content_id: number };
const ids = (r: { json: { recommendations: { content_id: number }[] } }) => r.json.recommendations.map((x) => x.content_id);

it.each([
  ['POST /users/{id}/watch-history', [4], (w: Watch[]) => server.post(`/users/${w[0]!.user_id}/watch-history`, { content_id: w[0]!.content_id })],
  ['POST /events', [7, 8], (w: Watch[]) => server.post('/events', w)],
])('reports Redis down in /ready while staying ready (a cache outage must not empty the load balancer), and a write during the outage (%s) is not undone when Redis returns', async (_route, userIds, write) => {
  const watches: Watch[] = [];
  for (const userId of userIds) {
    const warm = await server.get(`/users/${userId}/recommendations?limit=1`); // stored in Redis
    watches.push({ user_id: userId, content_id: warm.json.recommendations[0].content_id as number });
  }
  redis.pause();
  try {
    const ready = await server.get('/ready');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'down' } });
    expect((await write(watches)).status).toBe(201);
    for (const w of watches) {
      const during = await server.get(`/users/${w.user_id}/recommendations?limit=50`, true);
      expect(during.status).toBe(200);
      expect(ids(during)).not.toContain(w.content_id);
    }
  } finally {
    redis.resume();
  }
  // Redis still holds the pre-write lists; the deferred invalidations must land before anyone reads them.
  for (let i = 0; i < 30; i++) {
    for (const w of watches) {
      const after = await server.get(`/users/${w.user_id}/recommendations?limit=50`, true);
      expect(after.status).toBe(200);
      expect(ids(after)).not.toContain(w.content_id);
    }
    await sleep(50);
  }
});
