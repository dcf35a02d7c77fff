/**
 * Read-your-write across workers: once a watch-history write (one event, or a bulk POST /events) is
 * acknowledged, no response from any worker contains the watched title — also while other requests are
 * computing lists concurrently.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../support/db.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  const redisUrl = await emptyRedisDb(2);
  // Model latency makes computations overlap writes: the slow-miss race is exercised for real.
  server = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl, MODEL_LATENCY_MS: '5-40', MODEL_NOISE: 'true' });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

interface Read {
  userId: number;
  started: number;
  ids: number[];
}
interface Write {
  userId: number;
  contentId: number;
  acked: number;
}

const users = Array.from({ length: 20 }, (_, i) => i + 1);
const pick = () => users[Math.floor(Math.random() * users.length)]!;
/** The title a user is recommended first now (fresh connection: either worker), if any. */
const topOf = async (userId: number): Promise<number | undefined> =>
  (await server.get(`/users/${userId}/recommendations?limit=1`, true)).json.recommendations[0]?.content_id;

/** One watch event at a time, by POST /users/{id}/watch-history. */
async function writeOneByOne(writes: Write[]): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const userId = pick();
    const contentId = await topOf(userId);
    if (contentId === undefined) continue;
    const w = await server.post(`/users/${userId}/watch-history`, { content_id: contentId }, true);
    expect(w.status).toBe(201);
    writes.push({ userId, contentId, acked: performance.now() });
  }
}

/** Several users' watch events at a time, by POST /events. */
async function writeInBulk(writes: Write[]): Promise<void> {
  for (let i = 0; i < 15; i++) {
    const events: { user_id: number; content_id: number }[] = [];
    for (const userId of new Set([pick(), pick(), pick(), pick()])) {
      const contentId = await topOf(userId);
      if (contentId !== undefined) events.push({ user_id: userId, content_id: contentId });
    }
    if (events.length === 0) continue;
    const w = await server.post('/events', events, true);
    expect(w.status).toBe(201);
    const acked = performance.now();
    for (const e of events) writes.push({ userId: e.user_id, contentId: e.content_id, acked });
  }
}

it.each([
  ['POST /users/{id}/watch-history', writeOneByOne],
  ['POST /events', writeInBulk],
])('never serves a title after its watch event (%s) was acknowledged, under concurrent reads and writes', async (_what, write) => {
  // Prove the API's own guarantee: with the NOTIFY trigger off, only the acknowledged broadcast
  // to every worker (and the Redis generation bump) stands between a write and a stale read.
  await db.sql`ALTER TABLE user_watch_history DISABLE TRIGGER watch_history_notify`;
  try {
    await readAndWriteConcurrently(write);
  } finally {
    await db.sql`ALTER TABLE user_watch_history ENABLE TRIGGER watch_history_notify`;
  }
});

async function readAndWriteConcurrently(write: (writes: Write[]) => Promise<void>): Promise<void> {
  const reads: Read[] = [];
  const writes: Write[] = [];
  let writing = true;

  const reader = async (fresh: boolean) => {
    while (writing) {
      const userId = pick();
      const started = performance.now();
      const r = await server.get(`/users/${userId}/recommendations?limit=50`, fresh);
      expect(r.status).toBe(200);
      reads.push({ userId, started, ids: r.json.recommendations.map((x: { content_id: number }) => x.content_id) });
    }
  };
  const writer = () => write(writes).finally(() => (writing = false));
  await Promise.all([writer(), reader(true), reader(true), reader(false), reader(false), reader(true), reader(false)]);

  expect(writes.length).toBeGreaterThan(30);
  expect(reads.length).toBeGreaterThan(100);
  const stale = reads.filter((r) =>
    writes.some((w) => w.userId === r.userId && w.acked < r.started && r.ids.includes(w.contentId)),
  );
  expect(stale).toEqual([]);
}

/** The worker that answered (its index is in the generated X-Request-Id: `tag-index-counter`). */
const workerOf = (r: Reply) => /^[0-9a-f]{8}-(\d+)-[0-9a-z]+$/.exec(String(r.headers['x-request-id']))?.[1];
const lacks = (r: Reply, contentId: number) => !r.json.recommendations.some((x: { content_id: number }) => x.content_id === contentId);

/** Fresh-connection GETs until every worker has answered `perWorker` times (bounded): the replies. */
async function fromEveryWorker(path: string, perWorker: number): Promise<Reply[]> {
  const replies: Reply[] = [];
  const count = (w: string) => replies.filter((r) => workerOf(r) === w).length;
  for (let i = 0; i < 400 && !(count('0') >= perWorker && count('1') >= perWorker); i++) {
    const r = await server.get(path, true);
    expect(r.status).toBe(200);
    replies.push(r);
  }
  expect([count('0'), count('1')].every((n) => n >= perWorker)).toBe(true);
  return replies;
}

it('drops cached lists when another writer inserts directly into PostgreSQL (NOTIFY), in every worker, for good', async () => {
  const userId = 9;
  const path = `/users/${userId}/recommendations?limit=50`;
  // Both workers hold the list in L1 (and Redis has it): the NOTIFY must reach each of them.
  const warm = await fromEveryWorker(path, 1);
  const top = warm[0]!.json.recommendations[0].content_id as number;
  expect(warm.every((r) => !lacks(r, top))).toBe(true);
  await db.sql`INSERT INTO user_watch_history (user_id, content_id) VALUES (${userId}, ${top})`;
  // NOTIFY is asynchronous: poll until a round of reads no longer has it (bounded)...
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    const checks = await Promise.all(Array.from({ length: 6 }, () => server.get(path, true)));
    gone = checks.every((c) => lacks(c, top));
    if (!gone) await new Promise((r) => setTimeout(r, 50));
  }
  expect(gone).toBe(true);
  // ...then it must stay dropped: every worker answers repeatedly, from L1 or Redis, and never has it back.
  // (A worker that missed the NOTIFY would still hold the old list, yet a round could land on the other one.)
  const after = await fromEveryWorker(path, 10);
  expect(after.filter((r) => !lacks(r, top)).map((r) => `worker ${workerOf(r)} served ${top} again`)).toEqual([]);
});
