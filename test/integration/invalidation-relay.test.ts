/**
 * The NOTIFY relay's order against real PostgreSQL (the watch_history trigger) and Redis, with the workers
 * replaced by a recorder of what they are told (the WorkerBroadcast the Supervisor implements).
 *
 * With read replicas, the workers must know a write's WAL position before this instance bumps the user's
 * Redis generation: a worker that takes the bumped generation without knowing it can read a replica that
 * lacks the write and store the old list under that generation, where it outlives every invalidation of
 * the write (test/deploy/scale-out.test.ts saw that list served for 18 s after the 201). Without replicas
 * there is no position to learn: Redis first, then the workers (else L1 refills from the old Redis entry).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { InvalidationRelay, type WorkerBroadcast } from '../../src/cluster/invalidation-relay.js';
import type { UsersInvalidation } from '../../src/cluster/ipc.js';
import { loadConfig } from '../../src/config.js';
import { connect, type Sql } from '../../src/data/db.js';
import { connectRedis, type Redis } from '../../src/data/redis.js';
import { seedIfEmpty } from '../../src/data/seed.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase } from '../support/db.js';
import { emptyRedisDb } from '../support/redis.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: Sql;
let redis: Redis;
const log = createLogger('silent', 'test');

beforeAll(async () => {
  db = await createTestDatabase();
  await seedIfEmpty(db.sql);
  sql = connect(db.url, { max: 2 });
  redis = await connectRedis(await emptyRedisDb(14), { commandTimeoutMs: 1000, log, name: 'relay-test' });
});

afterAll(async () => {
  redis?.disconnect();
  await sql?.end();
  await db?.drop();
});

interface Told {
  opts: UsersInvalidation;
  /** The user's Redis generation when the workers were told. */
  generation: string | null;
}

/** A relay whose "workers" only hand each invalidation message to `told` (the Supervisor's broadcasts). */
function relayTo(withReplicas: boolean, told: (users: UsersInvalidation) => Promise<void>): InvalidationRelay {
  const workers: WorkerBroadcast = {
    async broadcastInvalidation() {},
    broadcastInvalidations: told,
    broadcastInvalidateAll() {},
    broadcastDataset() {},
    async broadcastContent() {},
  };
  return new InvalidationRelay(sql, db.url, workers, redis, loadConfig({ DATABASE_URL: db.url }), log, withReplicas);
}

/**
 * Writes a watch event for `userId` as any writer would (psql, an ETL: only the trigger's NOTIFY tells the
 * relay), with the user's Redis generation at 7 before it, and returns what a relay (with or without
 * replicas) told its "workers", each call with the Redis generation at that moment, once `calls` arrived
 * and nothing more followed.
 */
async function relayedWrite(userId: number, withReplicas: boolean, calls: number): Promise<Told[]> {
  const told: Told[] = [];
  const relay = relayTo(withReplicas, async (users) => {
    if (users.userIds.includes(userId)) told.push({ opts: users, generation: await redis.get(`rec:{${userId}}:gen`) });
  });
  await relay.start();
  try {
    await redis.set(`rec:{${userId}}:gen`, '7');
    await db.sql`
      INSERT INTO user_watch_history (user_id, content_id)
      SELECT ${userId}, c.id FROM content c
      WHERE NOT EXISTS (SELECT 1 FROM user_watch_history w WHERE w.user_id = ${userId} AND w.content_id = c.id)
      ORDER BY c.id LIMIT 1`;
    for (let i = 0; i < 200 && told.length < calls; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // and nothing more
    return told;
  } finally {
    await relay.stop();
  }
}

it('with replicas: every worker knows the write\'s WAL position before the Redis generation moves, and is told again after', async () => {
  const calls = await relayedWrite(3, true, 2);
  expect(calls).toHaveLength(2);
  const [first, second] = calls as [Told, Told];
  expect(first.opts.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  expect(first.generation).toBe('7'); // the workers knew the position while the old generation stood
  expect(first.opts).toEqual({ userIds: [3], sharedPending: [], lsn: first.opts.lsn });
  expect(second.opts).toEqual({ userIds: [3], sharedPending: [], lsn: first.opts.lsn });
  expect(second.generation).toBe('8'); // and were told again once the Redis entry was gone
});

it('without replicas: Redis first, then the workers, once', async () => {
  const calls = await relayedWrite(4, false, 1);
  expect(calls).toEqual([{ opts: { userIds: [4], sharedPending: [], lsn: undefined }, generation: '8' }]);
});

it('relays the users of one bulk write together: every Redis generation bumped, then one message to the workers', async () => {
  const users = Array.from({ length: 16 }, (_, i) => 5 + i);
  const told: { opts: UsersInvalidation; generations: (string | null)[] }[] = [];
  const relay = relayTo(false, async (opts) => {
    told.push({ opts, generations: await redis.mget(users.map((id) => `rec:{${id}}:gen`)) });
  });
  await relay.start();
  try {
    await redis.mset(Object.fromEntries(users.map((id) => [`rec:{${id}}:gen`, '7'])));
    await db.sql`INSERT INTO user_watch_history (user_id, content_id) SELECT u, 1 FROM unnest(${users}::int8[]) u`;
    for (let i = 0; i < 200 && told.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // and nothing more
  } finally {
    await relay.stop();
  }
  expect(told).toEqual([{ opts: { userIds: users, sharedPending: [], lsn: undefined }, generations: users.map(() => '8') }]);
});
