/**
 * The service on a real 6-node Redis Cluster (REDIS_CLUSTER_NODES): lists are cached on every master,
 * a watch event invalidates them for every worker, and the rate limit is counted once for the cluster.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseNodes } from '../../src/data/redis.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster.js';
import { startServer, type RunningServer } from '../support/server.js';

let db: TestDatabase;
let rc: RunningRedisCluster;
let server: RunningServer;
let cluster: Cluster;

const RATE_LIMIT = 10;
let client = 0;
/** Every request but the rate-limit test's comes from a client of its own: only that test is limited. */
const get = (path: string) => server.request('GET', path, { fresh: true, headers: { 'x-forwarded-for': `10.0.0.${++client % 250}-${client}` } });
const ids = (reply: { json: any }) => (reply.json.recommendations as { content_id: number }[]).map((r) => r.content_id);

beforeAll(async () => {
  [db, rc] = await Promise.all([createTestDatabase(), startRedisCluster()]);
  server = await startServer({
    DATABASE_URL: db.url,
    REDIS_CLUSTER_NODES: rc.nodes,
    RATE_LIMIT_POINTS: String(RATE_LIMIT),
    RATE_LIMIT_DURATION_S: '60',
    RATE_LIMIT_TRUST_PROXY: 'true',
  });
  cluster = new Cluster(parseNodes(rc.nodes), { maxRedirections: 16 });
});

afterAll(async () => {
  cluster?.disconnect();
  await server?.stop();
  await rc?.stop();
  await db?.drop();
});

it('caches every user\'s list in Redis, spread over the masters, and reports Redis ok', async () => {
  for (let user = 1; user <= 20; user++) expect((await get(`/users/${user}/recommendations?limit=5`)).status).toBe(200);
  const perMaster = new Map<number, number>();
  for (let user = 1; user <= 20; user++) {
    expect(await cluster.exists(`rec:{${user}}:list`), `user ${user}'s list in Redis`).toBe(1);
    const { port } = await rc.masterOf(`rec:{${user}}:list`);
    perMaster.set(port, (perMaster.get(port) ?? 0) + 1);
  }
  expect(perMaster.size).toBe(3);
  expect((await get('/ready')).json).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  // The other worker's first read of a user is a Redis hit (its L1 is empty): the cluster is read, not only written.
  for (let round = 0; round < 2; round++) {
    for (let user = 1; user <= 20; user++) expect((await get(`/users/${user}/recommendations?limit=5`)).status).toBe(200);
  }
  const metrics = (await server.get('/metrics')).text;
  expect(Number(/^cache_lookups_total\{tier="redis",result="hit"\} (\d+)$/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
  expect(metrics).toMatch(/^redis_connected\{worker="0"\} 1$/m);
});

it('a watch event invalidates the user\'s list in every worker and in Redis (fresh connections land on both workers)', async () => {
  const user = 7;
  for (let i = 0; i < 6; i++) expect((await get(`/users/${user}/recommendations?limit=50`)).status).toBe(200); // both L1s warm
  const top = ids(await get(`/users/${user}/recommendations?limit=50`))[0]!;
  const genBefore = Number((await cluster.get(`rec:{${user}}:gen`)) ?? 0);
  const write = await server.request('POST', `/users/${user}/watch-history`, {
    body: JSON.stringify({ content_id: top }),
    headers: { 'x-forwarded-for': 'writer' },
  });
  expect(write.status).toBe(201);
  expect(Number(await cluster.get(`rec:{${user}}:gen`))).toBeGreaterThan(genBefore);
  for (let i = 0; i < 20; i++) {
    const read = await get(`/users/${user}/recommendations?limit=50`);
    expect(read.status).toBe(200);
    expect(ids(read)).not.toContain(top);
  }
  const stored = JSON.parse((await cluster.get(`rec:{${user}}:list`))!) as { i: { content_id: number }[] };
  expect(stored.i.map((item) => item.content_id)).not.toContain(top);
});

it('counts the rate limit once for the whole cluster, whichever worker answers', async () => {
  const limited = (n: number) =>
    server.request('GET', `/users/${(n % 20) + 1}/recommendations?limit=1`, { fresh: true, headers: { 'x-forwarded-for': '203.0.113.9' } });
  const statuses: number[] = [];
  for (let n = 0; n < RATE_LIMIT + 3; n++) statuses.push((await limited(n)).status);
  expect(statuses).toEqual([...Array(RATE_LIMIT).fill(200), 429, 429, 429]);
  expect(Number(await cluster.get('rl:203.0.113.9'))).toBe(RATE_LIMIT + 3);
});
