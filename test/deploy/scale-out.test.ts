/**
 * Past one machine, on real engines, all on loopback: haproxy (deploy/haproxy.cfg) in front of three
 * instances, a PostgreSQL primary with a streaming replica that applies WAL 500 ms late, and a 6-node
 * Redis Cluster. A mixed load (reads, and watch events of titles the user was just recommended, users on
 * every instance) runs while one instance is SIGKILLed, the replica is stopped and a Redis master is
 * killed. Every request is recorded; afterwards:
 * - no request failed that had a correct answer (only writes in flight on the killed instance may fail);
 * - every acknowledged write is in PostgreSQL;
 * - no read that began after a write's 201 returned the written title;
 * - reads did go to the replica (its transaction counter moved) before it was stopped.
 */
import http from 'node:http';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../../src/data/migrate.js';
import { seed } from '../../src/data/seed.js';
import { startHaproxy, type RunningHaproxy } from '../support/haproxy.js';
import { startReplicatedPostgres, type ReplicatedPostgres } from '../support/pg-replica.js';
import { startRedisCluster, type RunningRedisCluster } from '../support/redis-cluster.js';
import { httpRequest, startServer, type RunningServer } from '../support/server.js';

const USERS = 3000;
const LOAD_MS = 24_000;
const CLIENTS = 16;
const WRITE_SHARE = 0.25;
/** When, from the start of the load, each fault happens. */
const KILL_INSTANCE_AT = 5000;
const STOP_REPLICA_AT = 10_000;
const KILL_REDIS_MASTER_AT = 15_000;

let pg: ReplicatedPostgres;
let db: { primary: string; replicas: string[] };
let rc: RunningRedisCluster;
let instances: RunningServer[] = [];
let lb: RunningHaproxy;

beforeAll(async () => {
  [pg, rc] = await Promise.all([startReplicatedPostgres({ replicas: 1, applyDelayMs: 500 }), startRedisCluster()]);
  db = await pg.createDatabase('recommendations');
  const sql = postgres(db.primary, { max: 2, onnotice: () => {} });
  try {
    await migrate(sql, 'up');
    await seed(sql, { users: USERS, content: 300, events: 30_000, reset: true });
  } finally {
    await sql.end();
  }
  await waitForReplay();
  const env = {
    WORKERS: '1',
    DATABASE_URL: db.primary,
    DATABASE_REPLICA_URLS: db.replicas[0]!,
    REPLICA_MAX_LAG_MS: '5000',
    REDIS_CLUSTER_NODES: rc.nodes,
    SEED_ON_START: 'false',
    CACHE_TTL: '600',
  };
  instances = await Promise.all([startServer(env), startServer(env), startServer(env)]);
  lb = await startHaproxy(instances.map((s) => s.port));
}, 180_000);

afterAll(async () => {
  await lb?.stop();
  await Promise.allSettled(instances.map((s) => s.stop()));
  await Promise.allSettled([rc?.stop(), pg?.stop()]);
});

interface Call {
  kind: 'read' | 'write';
  user: number;
  content?: number;
  start: number;
  end: number;
  status: number;
  error?: string;
  ids?: number[];
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });

const call = (method: 'GET' | 'POST', path: string, body?: unknown) =>
  httpRequest(lb.port, method, path, { body: body === undefined ? undefined : JSON.stringify(body), agent, timeoutMs: 15_000 });

/** Until the replica shows the seeded data (its apply delay is 500 ms). */
async function waitForReplay(): Promise<void> {
  const sql = postgres(db.replicas[0]!, { max: 1, onnotice: () => {} });
  try {
    for (let i = 0; i < 300; i++) {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`.catch(() => [{ n: 0 }]);
      if (row!.n === USERS) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the replica did not replay the seed');
  } finally {
    await sql.end();
  }
}

async function replicaCommits(): Promise<number> {
  const sql = postgres(db.replicas[0]!, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: string }[]>`SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()`;
    return Number(row!.n);
  } finally {
    await sql.end();
  }
}

it('keeps every promise through an instance kill, a replica stop and a Redis master kill', async () => {
  const calls: Call[] = [];
  const t0 = Date.now();
  const faults: Record<string, number> = {};
  const commitsBefore = await replicaCommits();
  let commitsAtStop = commitsBefore;
  const lastSeen = new Map<number, number[]>();

  const client = async (): Promise<void> => {
    while (Date.now() - t0 < LOAD_MS) {
      const user = 1 + Math.floor(Math.random() * USERS);
      const seen = lastSeen.get(user);
      if (seen && seen.length > 0 && Math.random() < WRITE_SHARE) {
        const content = seen[0]!;
        lastSeen.delete(user);
        const c: Call = { kind: 'write', user, content, start: Date.now(), end: 0, status: 0 };
        try {
          c.status = (await call('POST', `/users/${user}/watch-history`, { content_id: content })).status;
        } catch (err) {
          c.error = (err as Error).message;
        }
        c.end = Date.now();
        calls.push(c);
      } else {
        const c: Call = { kind: 'read', user, start: Date.now(), end: 0, status: 0 };
        try {
          const r = await call('GET', `/users/${user}/recommendations?limit=10`);
          c.status = r.status;
          if (r.status === 200) {
            c.ids = r.json.recommendations.map((x: { content_id: number }) => x.content_id);
            lastSeen.set(user, c.ids!);
          }
        } catch (err) {
          c.error = (err as Error).message;
        }
        c.end = Date.now();
        calls.push(c);
      }
    }
  };

  const chaos = (async () => {
    const at = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - Date.now())));
    await at(KILL_INSTANCE_AT);
    faults.instanceKilled = Date.now();
    instances[1]!.child.kill('SIGKILL');
    await at(STOP_REPLICA_AT);
    commitsAtStop = await replicaCommits();
    faults.replicaStopped = Date.now();
    await pg.replicas[0]!.stop();
    await at(KILL_REDIS_MASTER_AT);
    faults.redisMasterKilled = Date.now();
    const failover = await rc.killMaster();
    faults.redisFailoverMs = failover.ms;
  })();

  await Promise.all([...Array.from({ length: CLIENTS }, () => client()), chaos]);

  // 1. Failures: only writes in flight on the killed instance (its workers drain when their primary dies).
  const failed = calls.filter((c) => c.error !== undefined || !(c.status === 200 || c.status === 201));
  const killedAt = faults.instanceKilled!;
  const excused = failed.filter((c) => c.kind === 'write' && c.start <= killedAt + 3000 && c.end >= killedAt);
  const unexcused = failed.filter((c) => !excused.includes(c));

  // 2. Every acknowledged write is in PostgreSQL.
  const acked = calls.filter((c) => c.kind === 'write' && c.status === 201);
  const sql = postgres(db.primary, { max: 1, onnotice: () => {} });
  let missing = 0;
  try {
    const users = [...new Set(acked.map((c) => c.user))];
    const rows = await sql<{ user_id: number; content_id: number }[]>`
      SELECT DISTINCT user_id::int, content_id::int FROM user_watch_history WHERE user_id = ANY(${users}::bigint[])`;
    const stored = new Set(rows.map((r) => `${r.user_id}:${r.content_id}`));
    missing = acked.filter((c) => !stored.has(`${c.user}:${c.content}`)).length;
  } finally {
    await sql.end();
  }

  // 3. No read that began after a write's 201 returned the written title.
  const writesByUser = new Map<number, Call[]>();
  for (const w of acked) writesByUser.set(w.user, [...(writesByUser.get(w.user) ?? []), w]);
  let readsAfterWrites = 0;
  const violations: string[] = [];
  for (const r of calls) {
    if (r.kind !== 'read' || r.status !== 200) continue;
    for (const w of writesByUser.get(r.user) ?? []) {
      if (r.start <= w.end) continue;
      readsAfterWrites++;
      if (r.ids!.includes(w.content!)) violations.push(`user ${r.user} got ${w.content} ${r.start - w.end} ms after its 201 (write ${w.start - t0}-${w.end - t0} ms, read ${r.start - t0} ms into the load)`);
    }
  }

  const summary = {
    requests: calls.length,
    reads: calls.filter((c) => c.kind === 'read').length,
    writesAcknowledged: acked.length,
    failed: failed.length,
    excusedInFlightOnKilledInstance: excused.length,
    unexcused: unexcused.slice(0, 5),
    missingWrites: missing,
    readsAfterAWriteOfTheSameUser: readsAfterWrites,
    staleReads: violations.length,
    replicaCommitsBeforeStop: commitsAtStop - commitsBefore,
    redisFailoverMs: faults.redisFailoverMs,
    faultsAtMs: { instance: KILL_INSTANCE_AT, replica: STOP_REPLICA_AT, redisMaster: KILL_REDIS_MASTER_AT },
    haproxy: await lb.serverStates(),
  };
  console.log('scale-out', JSON.stringify(summary));

  expect(unexcused).toEqual([]);
  expect(missing).toBe(0);
  expect(violations).toEqual([]);
  expect(readsAfterWrites).toBeGreaterThan(100); // the check above was exercised
  expect(acked.length).toBeGreaterThan(100);
  expect(commitsAtStop - commitsBefore).toBeGreaterThan(100); // reads went to the replica
  expect(summary.haproxy['instance-2']).toMatch(/DOWN/);
}, 120_000);
