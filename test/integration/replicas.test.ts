/**
 * The replica set (src/data/replicas.ts) against a real primary and a streaming replica that applies commits
 * 500 ms late (recovery_min_apply_delay): probe results, the LSN rule, the lag limit, a replica stopped and
 * restarted. Skipped where the Debian PostgreSQL 15 binaries are missing (.ci/run installs them).
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicaSet, type ReplicaCounters } from '../../src/data/replicas.js';
import { parseLsn } from '../../src/data/write-lsns.js';
import { replicationAvailable, replicationSuite, startReplicatedPostgres, type ReplicatedPostgres } from '../support/pg-replica.js';

const APPLY_DELAY_MS = 500;
let pg: ReplicatedPostgres;
let primary: postgres.Sql;
let urls: { primary: string; replicas: string[] };

function counters() {
  const c = () => ({ n: 0, inc() { this.n++; } });
  return { reads: { primary: c(), replica: c() }, fallbacks: { not_replayed: c(), unhealthy: c(), error: c() } } satisfies ReplicaCounters;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!replicationAvailable())(replicationSuite('ReplicaSet'), () => {
  beforeAll(async () => {
    pg = await startReplicatedPostgres({ replicas: 1, applyDelayMs: APPLY_DELAY_MS });
    urls = await pg.createDatabase('replica_set');
    primary = postgres(urls.primary, { max: 4, onnotice: () => {} });
    await primary`CREATE TABLE t (id int PRIMARY KEY)`;
  });

  afterAll(async () => {
    await primary?.end({ timeout: 1 });
    await pg?.stop();
  });

  it('reads from the replica only once it has replayed the write it is asked for', async () => {
    const c = counters();
    const set = new ReplicaSet(primary, urls.primary, urls.replicas, { poolSize: 2, maxLagMs: 5000, counters: c });
    try {
      await set.start();
      // Start-up: the replica is used once it has replayed what the primary had written (the table).
      await until('the replica to be usable', () => set.pick() !== undefined);

      await primary`INSERT INTO t VALUES (1)`;
      const [{ lsn }] = await primary<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
      set.noteWrite(42, lsn);
      // The commit is 500 ms from being applied on the replica: user 42 reads from the primary and sees the row.
      expect(set.pick(parseLsn(lsn))).toBeUndefined();
      const seen = await set.read((sql) => sql<{ n: number }[]>`SELECT count(*)::int AS n FROM t`, [42]);
      expect(seen[0]!.n).toBe(1);
      const fallbacksBefore = c.fallbacks.not_replayed.n;
      expect(fallbacksBefore).toBeGreaterThanOrEqual(1);
      // Another user has no write to wait for: the replica answers, without the row yet.
      const other = await set.read((sql) => sql<{ n: number }[]>`SELECT count(*)::int AS n FROM t`, [43]);
      expect(other[0]!.n).toBe(0);
      expect(c.reads.replica.n).toBe(1);
      expect(c.fallbacks.not_replayed.n).toBe(fallbacksBefore);
      // Once the probe sees the replay position past the write, user 42 is read on the replica, and sees it.
      await until('the replica to replay the write', () => set.pick(parseLsn(lsn)) !== undefined);
      const replica = postgres(urls.replicas[0]!, { max: 1, onnotice: () => {} });
      const [{ n }] = await replica<{ n: number }[]>`SELECT count(*)::int AS n FROM t`;
      await replica.end({ timeout: 1 });
      expect(n).toBe(1);
      const later = await set.read((sql) => sql<{ n: number }[]>`SELECT count(*)::int AS n FROM t`, [42]);
      expect(later[0]!.n).toBe(1);
      expect(c.reads.replica.n).toBe(2);
    } finally {
      await set.close();
    }
  });

  it('dates the replica by the primary position, not the replay timestamp: an idle primary means lag 0', async () => {
    const set = new ReplicaSet(primary, urls.primary, urls.replicas, { poolSize: 1, maxLagMs: 5000 });
    try {
      await set.start();
      await until('the replica to catch up', () => set.status()[0]!.lag_ms === 0);
      // Writes every 50 ms: the replica's data is about APPLY_DELAY_MS old.
      let lagSeen = 0;
      for (let i = 0; i < 30; i++) {
        await primary`INSERT INTO t VALUES (${1000 + i})`;
        lagSeen = Math.max(lagSeen, set.status()[0]!.lag_ms ?? 0);
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(`replica lag seen while writing every 50 ms with a ${APPLY_DELAY_MS} ms apply delay: ${lagSeen} ms`);
      expect(lagSeen).toBeGreaterThanOrEqual(APPLY_DELAY_MS);
      // Idle again: once the last commit is applied it is caught up, however long ago that commit was.
      await until('lag 0 on an idle primary', () => set.status()[0]!.lag_ms === 0);
      const [{ ts }] = await postgres(urls.replicas[0]!, { max: 1 })<{ ts: number }[]>`
        SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 * 1000 AS ts`;
      expect(ts).toBeGreaterThan(0); // what the timestamp method would have called lag
    } finally {
      await set.close();
    }
  });

  it('skips a replica lagging more than the limit, and one that is down; with none left reads go to the primary', async () => {
    const c = counters();
    const set = new ReplicaSet(primary, urls.primary, urls.replicas, { poolSize: 2, maxLagMs: 100, counters: c });
    try {
      await set.start();
      await until('the replica to be up', () => set.status()[0]!.state === 'up');
      const writing = (async () => {
        for (let i = 0; i < 20; i++) {
          await primary`INSERT INTO t VALUES (${2000 + i})`;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await until('the replica to count as lagging', () => set.status()[0]!.state === 'lagging');
      expect(set.pick()).toBeUndefined();
      await writing;
      await until('the replica to catch up', () => set.status()[0]!.state === 'up');

      await pg.replicas[0]!.stop();
      await until('the replica to be down', () => set.status()[0]!.state === 'down', 5000);
      expect(set.pick()).toBeUndefined();
      const rows = await set.read((sql) => sql<{ n: number }[]>`SELECT count(*)::int AS n FROM t`);
      expect(rows[0]!.n).toBeGreaterThan(0); // answered by the primary
      await pg.replicas[0]!.start();
      await until('the replica to be up again', () => set.status()[0]!.state === 'up');
      const before = c.reads.replica.n;
      await set.read((sql) => sql`SELECT 1`);
      expect(c.reads.replica.n).toBe(before + 1);
    } finally {
      await set.close();
    }
  });

  it('a read that fails on the replica is answered by the primary and takes the replica out', async () => {
    const c = counters();
    const changes: string[] = [];
    const set = new ReplicaSet(primary, urls.primary, urls.replicas, {
      poolSize: 2,
      maxLagMs: 5000,
      counters: c,
      log: (fields) => changes.push(String(fields.state)),
    });
    try {
      await set.start();
      await until('the replica to be up', () => set.status()[0]!.state === 'up');
      // A standby refuses writes: the statement fails there and is retried on the primary.
      const rows = await set.read((sql) => sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid, txid_current()`);
      expect(rows).toHaveLength(1);
      expect(c.fallbacks.error.n).toBe(1);
      // Connection loss: the replica's backends are terminated mid-read (pg_terminate_backend on the replica).
      const admin = postgres(urls.replicas[0]!, { max: 1, onnotice: () => {} });
      const read = set.read((sql) => sql<{ one: number }[]>`SELECT 1 AS one FROM pg_sleep(1)`);
      await new Promise((r) => setTimeout(r, 200));
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1)%' AND pid <> pg_backend_pid()`;
      await admin.end({ timeout: 1 });
      expect((await read)[0]!.one).toBe(1);
      expect(c.fallbacks.error.n).toBe(2);
      expect(changes).toEqual(['up', 'down', 'up']); // out at the failed read, back at the next good probe
      await until('the replica to be up again', () => set.status()[0]!.state === 'up');
    } finally {
      await set.close();
    }
  });
});
