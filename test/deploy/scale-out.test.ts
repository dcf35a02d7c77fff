/**
 * Past one machine, on real engines, all on loopback: haproxy (deploy/haproxy.cfg) in front of three
 * instances, a PostgreSQL primary with a streaming replica that applies WAL 500 ms late, and a 6-node
 * Redis Cluster. A mixed load (reads, and watch events of titles the user was just recommended, users on
 * every instance) runs while one instance is SIGKILLed, the replica is stopped and a Redis master is
 * killed. Every request is recorded; afterwards:
 * - no request failed that had a correct answer: only writes in flight on the killed instance may fail
 *   (sent before haproxy took it out, cut without an answer from any live instance);
 * - every acknowledged write is in PostgreSQL;
 * - no read that began after a write's 201 returned the written title, among them reads that began inside
 *   the replica's apply delay (a client reads the user it just wrote) and inside the Redis failover;
 * - reads did go to the replica (the instances' pg_reads_total{target="replica"}) before it was stopped.
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
    // The deadlines are not what this test checks: on a loaded 2-core machine the cold start's first
    // queries took over the default 1 s and answered 503 (PostgreSQL taken as down) before any fault.
    DB_TIMEOUT_MS: '10000',
    REQUEST_TIMEOUT_MS: '12000',
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
  /** The answer was the service's JSON error (from a live instance), not haproxy's own page. */
  serviceError?: boolean;
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

/**
 * Request-path reads the instance ran on the replica (pg_reads_total{target="replica"}, both workers): not
 * the replica's commit counter, which its health probes (every 250 ms per worker) move on their own.
 */
async function replicaReads(server: RunningServer): Promise<number> {
  const text = (await httpRequest(server.port, 'GET', '/metrics', { timeoutMs: 5000 })).text;
  return text
    .split('\n')
    .filter((l) => l.startsWith('pg_reads_total{') && l.includes('target="replica"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}


it('keeps every promise through an instance kill, a replica stop and a Redis master kill', async () => {
  const calls: Call[] = [];
  const t0 = Date.now();
  const faults: Record<string, number> = {};
  // Instance 2 is killed before the replica stops: the survivors' counts are the ones compared.
  const survivors = [instances[0]!, instances[2]!];
  const replicaReadsBefore = await Promise.all(survivors.map(replicaReads));
  let replicaReadsAtStop = replicaReadsBefore;
  const lastSeen = new Map<number, number[]>();

  const client = async (): Promise<void> => {
    // After a write, the same client reads that user at once: read-your-write inside the replica's 500 ms
    // apply delay, the case a replica read would get wrong.
    let readBack: number | undefined;
    while (Date.now() - t0 < LOAD_MS) {
      const user = readBack ?? 1 + Math.floor(Math.random() * USERS);
      const reading = readBack !== undefined;
      readBack = undefined;
      const seen = lastSeen.get(user);
      if (!reading && seen && seen.length > 0 && Math.random() < WRITE_SHARE) {
        const content = seen[0]!;
        lastSeen.delete(user);
        const c: Call = { kind: 'write', user, content, start: Date.now(), end: 0, status: 0 };
        try {
          const r = await call('POST', `/users/${user}/watch-history`, { content_id: content });
          c.status = r.status;
          c.serviceError = typeof r.json?.error === 'string';
        } catch (err) {
          c.error = (err as Error).message;
        }
        c.end = Date.now();
        calls.push(c);
        readBack = user;
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
    // Until haproxy takes it out of the rotation, a write may still be sent to the dying instance.
    while (!/DOWN/.test((await lb.serverStates().catch(() => ({}) as Record<string, string>))['instance-2'] ?? '')) {
      await new Promise((r) => setTimeout(r, 20));
    }
    faults.instanceOut = Date.now();
    await at(STOP_REPLICA_AT);
    replicaReadsAtStop = await Promise.all(survivors.map(replicaReads));
    faults.replicaStopped = Date.now();
    await pg.replicas[0]!.stop();
    await at(KILL_REDIS_MASTER_AT);
    faults.redisMasterKilled = Date.now();
    const failover = await rc.killMaster();
    faults.redisFailoverMs = failover.ms;
  })();

  await Promise.all([...Array.from({ length: CLIENTS }, () => client()), chaos]);

  // 1. Failures: only writes in flight on the killed instance (its workers drain when their primary dies):
  // a write (haproxy retries a GET elsewhere) still open at the kill or sent before haproxy took the
  // instance out, that got no answer from a live instance (the connection cut, or haproxy's own 502/503,
  // never a service's JSON error). Not, as before, any write failing within 3 s of the kill.
  const failed = calls.filter((c) => c.error !== undefined || !(c.status === 200 || c.status === 201));
  const killedAt = faults.instanceKilled!;
  const excused = failed.filter(
    (c) =>
      c.kind === 'write' &&
      c.end >= killedAt &&
      c.start <= faults.instanceOut! &&
      (c.status === 0 || ((c.status === 502 || c.status === 503) && !c.serviceError)),
  );
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
  let insideApplyDelay = 0; // began < 500 ms after the 201, the replica up: it may not have replayed the write
  let insideRedisFailover = 0; // began between the master's kill and its replica's promotion
  const failoverFrom = faults.redisMasterKilled!;
  const failoverTo = failoverFrom + faults.redisFailoverMs!;
  for (const r of calls) {
    if (r.kind !== 'read' || r.status !== 200) continue;
    for (const w of writesByUser.get(r.user) ?? []) {
      if (r.start <= w.end) continue;
      readsAfterWrites++;
      if (r.start - w.end < 500 && r.start < faults.replicaStopped!) insideApplyDelay++;
      if (r.start >= failoverFrom && r.start <= failoverTo) insideRedisFailover++;
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
    ofThemInsideTheApplyDelay: insideApplyDelay,
    ofThemInsideTheRedisFailover: insideRedisFailover,
    staleReads: violations.length,
    replicaReadsBeforeStop: replicaReadsAtStop.reduce((a, b) => a + b, 0) - replicaReadsBefore.reduce((a, b) => a + b, 0),
    redisFailoverMs: faults.redisFailoverMs,
    faultsAtMs: { instance: KILL_INSTANCE_AT, replica: STOP_REPLICA_AT, redisMaster: KILL_REDIS_MASTER_AT },
    instanceOutOfRotationMs: faults.instanceOut! - killedAt,
    haproxy: await lb.serverStates(),
  };
  console.log('scale-out', JSON.stringify(summary));

  expect(unexcused).toEqual([]);
  expect(missing).toBe(0);
  expect(violations).toEqual([]);
  expect(readsAfterWrites).toBeGreaterThan(100); // the check above was exercised...
  expect(insideApplyDelay).toBeGreaterThan(0); // ...where a replica read would be stale...
  expect(insideRedisFailover).toBeGreaterThan(0); // ...and while a Redis master had no successor yet
  expect(acked.length).toBeGreaterThan(100);
  expect(summary.replicaReadsBeforeStop).toBeGreaterThan(100); // reads went to the replica
  expect(summary.haproxy['instance-2']).toMatch(/DOWN/);
}, 120_000);
