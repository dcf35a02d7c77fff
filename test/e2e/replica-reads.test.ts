/**
 * Read replicas with read-your-writes (DATABASE_REPLICA_URLS), end to end: two clustered instances (two
 * workers each) on one primary and a streaming replica that applies every commit 500 ms late. The caches are
 * off (L1_MAX_ENTRIES=0, no Redis), so every answer is computed from a fresh PostgreSQL read: a read that
 * went to the lagging replica after a write would recommend the title just watched. Skipped where the Debian
 * PostgreSQL 15 binaries are missing (.ci/run installs them).
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationAvailable, replicationSuite, startReplicatedPostgres, type ReplicatedPostgres } from '../support/pg-replica.js';
import { startServer, type Reply, type RunningServer } from '../support/server.js';

const APPLY_DELAY_MS = 500;
let pg: ReplicatedPostgres;
let urls: { primary: string; replicas: string[] };
let a: RunningServer;
let b: RunningServer;

const ids = (r: Reply): number[] => r.json.recommendations.map((x: { content_id: number }) => x.content_id);

/** Sum of a metric's series (over workers) whose labels include `match`, from one instance's /metrics. */
async function metric(server: RunningServer, name: string, match = ''): Promise<number> {
  const text = (await server.get('/metrics')).text;
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && (l[name.length] === '{' || l[name.length] === ' ') && l.includes(match))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Every worker of the instance (fresh connections reach either) reports the replica in this state. */
async function untilReplica(server: RunningServer, state: string, ms = 20_000): Promise<Reply> {
  const deadline = Date.now() + ms;
  let agreeing = 0;
  for (;;) {
    const r = await server.get('/ready', true);
    agreeing = r.json?.replicas?.[0]?.state === state ? agreeing + 1 : 0;
    if (agreeing >= 6) return r;
    if (Date.now() > deadline) throw new Error(`replica not ${state}: ${r.text}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function replicaCommits(): Promise<number> {
  const sql = postgres(urls.replicas[0]!, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: number }[]>`
      SELECT xact_commit::int AS n FROM pg_stat_database WHERE datname = current_database()`;
    return row!.n;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe.skipIf(!replicationAvailable())(replicationSuite('read replicas'), () => {
  beforeAll(async () => {
    pg = await startReplicatedPostgres({ replicas: 1, applyDelayMs: APPLY_DELAY_MS });
    urls = await pg.createDatabase('recs');
    const env = {
      DATABASE_URL: urls.primary,
      DATABASE_REPLICA_URLS: urls.replicas[0]!,
      // The replica is 500 ms behind by design; under test load keep it in use.
      REPLICA_MAX_LAG_MS: '3000',
      L1_MAX_ENTRIES: '0',
    };
    a = await startServer(env);
    b = await startServer(env);
    await Promise.all([untilReplica(a, 'up'), untilReplica(b, 'up')]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await pg?.stop();
  });

  it('after a 201, no worker of either instance recommends the title just watched; other reads use the replica', async () => {
    const commitsBefore = await replicaCommits();
    const [replicaBefore, primaryBefore] = [await metric(a, 'pg_reads_total', 'target="replica"'), await metric(a, 'pg_reads_total', 'target="primary"')];
    const stale: string[] = [];
    let writes = 0;
    let writing = true;
    // Four writers on their own users (1-8), each write through one instance and the check through the other.
    const writer = async (w: number): Promise<void> => {
      for (let round = 0; round < 12; round++) {
        const userId = 1 + w * 2 + (round % 2);
        const [via, check] = (round + w) % 2 === 0 ? [a, b] : [b, a];
        const top = ids(await check.get(`/users/${userId}/recommendations?limit=1`, true))[0];
        if (top === undefined) continue;
        const posted = await via.post(`/users/${userId}/watch-history`, { content_id: top }, true);
        expect(posted.status).toBe(201);
        writes += 1;
        // At once, on fresh connections: any worker of either instance.
        for (const server of [check, via, check]) {
          const r = await server.get(`/users/${userId}/recommendations?limit=50`, true);
          expect(r.status).toBe(200);
          if (ids(r).includes(top)) stale.push(`user ${userId} title ${top} round ${round}`);
        }
      }
    };
    // Readers of users nobody writes (9-20) and of batch pages: nothing to wait for, the replica answers.
    let reads = 0;
    const reader = async (server: RunningServer): Promise<void> => {
      while (writing) {
        const userId = 9 + Math.floor(Math.random() * 12);
        const r = await server.get(reads % 5 === 0 ? '/recommendations/batch?page=2&limit=10' : `/users/${userId}/recommendations?limit=10`, true);
        expect(r.status).toBe(200);
        reads += 1;
      }
    };
    const readers = [reader(a), reader(b)];
    await Promise.all([0, 1, 2, 3].map(writer));
    writing = false;
    await Promise.all(readers);

    const replicaReads = (await metric(a, 'pg_reads_total', 'target="replica"')) - replicaBefore;
    const primaryReads = (await metric(a, 'pg_reads_total', 'target="primary"')) - primaryBefore;
    const notReplayed = await metric(a, 'pg_replica_fallbacks_total', 'reason="not_replayed"');
    const commits = (await replicaCommits()) - commitsBefore;
    console.log(
      `read-your-writes: ${writes} writes, ${writes * 3} reads right after them, ${stale.length} stale; ` +
        `instance a: ${replicaReads} reads on the replica, ${primaryReads} on the primary ` +
        `(${Math.round((100 * replicaReads) / Math.max(1, replicaReads + primaryReads))} % on the replica; ` +
        `${notReplayed} sent to the primary because the replica had not replayed the user's write); ` +
        `replica pg_stat_database xact_commit +${commits}`,
    );
    expect(writes).toBeGreaterThan(40);
    expect(stale).toEqual([]);
    expect(replicaReads).toBeGreaterThan(0);
    expect(notReplayed).toBeGreaterThan(0);
    expect(commits).toBeGreaterThan(0);
  });

  it('a stopped replica costs no request: reads go to the primary, /ready shows it down; restarted, it is used again', async () => {
    let failures = 0;
    let answered = 0;
    let running = true;
    /** What each failed request got, so a red run says what it was. */
    const seen: string[] = [];
    const load = async (server: RunningServer): Promise<void> => {
      while (running) {
        const r = await server
          .get(`/users/${1 + Math.floor(Math.random() * 20)}/recommendations?limit=10`, true)
          .catch((err: NodeJS.ErrnoException) => ({ status: 0, json: { error: err.code ?? err.message } }));
        if (r.status === 200) answered += 1;
        else {
          failures += 1;
          seen.push(`${r.status} ${JSON.stringify(r.json)}`);
        }
      }
    };
    const loops = [load(a), load(b), load(a)];
    try {
      await pg.replicas[0]!.stop();
      const down = await untilReplica(a, 'down');
      expect(down.status).toBe(200);
      expect(down.json.checks.postgres).toBe('ok');
      expect(await metric(a, 'pg_replica_up')).toBe(0);
      const answeredWhileDown = answered;
      await new Promise((r) => setTimeout(r, 500));
      expect(answered).toBeGreaterThan(answeredWhileDown); // from the primary

      await pg.replicas[0]!.start();
      await untilReplica(a, 'up');
      await untilReplica(b, 'up');
      const before = await metric(a, 'pg_reads_total', 'target="replica"');
      await new Promise((r) => setTimeout(r, 500));
      expect(await metric(a, 'pg_reads_total', 'target="replica"')).toBeGreaterThan(before);
      expect(await metric(a, 'pg_replica_up')).toBe(2); // one series per worker
    } finally {
      running = false;
      await Promise.all(loops);
    }
    console.log(`replica stopped and restarted under load: ${answered} × 200, ${failures} other`);
    expect(failures, seen.slice(0, 5).join('; ')).toBe(0);
  });
});
