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

it('never serves a hidden title from the other instance once DELETE /content/{id} was answered, nor a dismissed one', async () => {
  const served: string[] = [];
  /** What the reader serves right after a write through the writer: the user's list (both workers), popular, the title. */
  const readAll = (reader: RunningServer, userId: number, contentId: number) =>
    Promise.all([
      ...Array.from({ length: 4 }, () => reader.get(`/users/${userId}/recommendations?limit=50`, true)),
      ...Array.from({ length: 2 }, () => reader.get('/content/popular?limit=100', true)),
      reader.get(`/content/${contentId}`, true),
    ]);
  for (let round = 0; round < 12; round++) {
    const [writer, reader] = round % 2 === 0 ? [a, b] : [b, a];
    const userId = 1 + (round % 20);
    const list = `/users/${userId}/recommendations?limit=50`;
    for (let i = 0; i < 6; i++) expect((await reader.get(list, true)).status).toBe(200); // both workers' L1
    const [hide, dismiss] = ids(await reader.get(`/users/${userId}/recommendations?limit=2`, true));

    expect((await writer.request('DELETE', `/content/${hide}`, { fresh: true })).status).toBe(204);
    for (const r of await readAll(reader, userId, hide!)) {
      if (r.status === 200 && r.text.includes(`"content_id":${hide},`)) served.push(`round ${round}: hidden ${hide} served`);
    }
    const d = await writer.request('POST', `/users/${userId}/dismissals`, { body: JSON.stringify({ content_id: dismiss }), fresh: true });
    expect(d.status).toBe(201);
    for (const r of (await readAll(reader, userId, dismiss!)).slice(0, 4)) {
      if (ids(r).includes(dismiss!)) served.push(`round ${round}: dismissed ${dismiss} served to ${userId}`);
    }
  }
  expect(served).toEqual([]);
});
