/**
 * WARM_CACHE_TOP_N: after start-up the most active users' lists are computed in the background, so their
 * first requests are cache hits although nobody asked for them. Without Redis every worker warms its
 * own L1; with Redis one worker warms Redis and the others answer from it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';
import { emptyRedisDb } from '../support/redis.js';

const TOP_N = 5;
const REDIS_DB = 13;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

async function until(check: () => boolean, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const finishedLines = (output: string) => output.split('\n').filter((l) => l.includes('"cache warming finished"'));

/** The most active users (watch events), from the same counts the warmer reads. */
async function mostActive(n: number): Promise<number[]> {
  const rows = await db.sql<{ id: string }[]>`SELECT user_id::text AS id FROM user_activity ORDER BY events DESC, user_id LIMIT ${n}`;
  return rows.map((r) => Number(r.id));
}

/** Several requests per user on fresh connections, so both workers answer some of them. */
async function firstAnswers(server: RunningServer, users: number[]): Promise<boolean[]> {
  const hits: boolean[] = [];
  for (const user of users) {
    for (let i = 0; i < 4; i++) {
      const r = await server.get(`/users/${user}/recommendations?limit=5`, true);
      expect(r.status).toBe(200);
      hits.push(r.json.metadata.cache_hit);
    }
  }
  return hits;
}

describe.each([
  ['without Redis: each worker warms its own L1', false, 2],
  ['with Redis: one worker warms Redis for all', true, 1],
] as const)('WARM_CACHE_TOP_N %s', (_name, withRedis, warmers) => {
  let server: RunningServer;
  beforeAll(async () => {
    const env: Record<string, string> = { DATABASE_URL: db.url, WARM_CACHE_TOP_N: String(TOP_N) };
    if (withRedis) {
      env.REDIS_URL = await emptyRedisDb(REDIS_DB);
    }
    server = await startServer(env);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves the most active users from the cache on their first requests', async () => {
    await until(() => finishedLines(server.output()).length >= warmers, 'cache warming', server.output);
    const lines = finishedLines(server.output()).map((l) => JSON.parse(l) as { warmed: number; failed: number });
    expect(lines).toHaveLength(warmers);
    for (const line of lines) expect(line).toMatchObject({ warmed: TOP_N, failed: 0 });

    expect(await firstAnswers(server, await mostActive(TOP_N))).toEqual(new Array(TOP_N * 4).fill(true));
    // A user outside the top is computed on demand, as without warming.
    const [outsider] = (await mostActive(20)).slice(-1);
    const first = await server.get(`/users/${outsider}/recommendations?limit=5`, true);
    expect(first.json.metadata.cache_hit).toBe(false);
  });
});
