/**
 * Two instances of the service (each its own primary and workers, on its own port) share one PostgreSQL
 * database and one Redis db, as behind a load balancer. Once a watch-history write through one instance
 * is answered 201, the other never serves the watched title: not from its workers' L1 (its primary learns
 * of the write through NOTIFY, and the write waits for it), not from Redis (the generation bump).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

let db: TestDatabase;
let a: RunningServer;
let b: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  const redisUrl = await emptyRedisDb(12);
  a = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl });
  b = await startServer({ DATABASE_URL: db.url, REDIS_URL: redisUrl });
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

const ids = (r: { json: { recommendations: { content_id: number }[] } }) => r.json.recommendations.map((x) => x.content_id);

it('never serves a title from the other instance once its watch event was answered 201', async () => {
  const stale: string[] = [];
  let writes = 0;
  for (let round = 0; round < 30; round++) {
    const [writer, reader] = round % 2 === 0 ? [a, b] : [b, a];
    const userId = 1 + (round % 20);
    const list = `/users/${userId}/recommendations?limit=50`;
    // Fill the reader's L1 in both of its workers (fresh connections land on either).
    for (let i = 0; i < 6; i++) expect((await reader.get(list, true)).status).toBe(200);
    const top = ids(await reader.get(`/users/${userId}/recommendations?limit=1`, true))[0]!;

    const w = await writer.post(`/users/${userId}/watch-history`, { content_id: top }, true);
    expect(w.status).toBe(201);
    writes += 1;

    const reads = await Promise.all([
      ...Array.from({ length: 4 }, () => reader.get(list, true)),
      writer.get(list, true),
    ]);
    for (const r of reads) {
      expect(r.status).toBe(200);
      if (ids(r).includes(top)) stale.push(`round ${round}: user ${userId} still got title ${top}`);
    }
  }
  expect(writes).toBe(30);
  expect(stale).toEqual([]);
});
