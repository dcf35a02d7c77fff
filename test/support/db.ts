/** A private, migrated database per test file on the run's shared PostgreSQL server. */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { connect, type Sql } from '../../src/data/db.js';
import { migrate } from '../../src/data/migrate.js';

export interface TestDatabase {
  url: string;
  /** Note: postgres.js returns int8/count values as strings; cast in SQL (`::int`) where numbers are wanted. */
  sql: postgres.Sql;
  /** Ends `sql` and drops the database, also when other clients are still connected. */
  drop(): Promise<void>;
}

export function adminSql(): postgres.Sql {
  return postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
}

/** `migrate: false` gives an empty database (for migration tests). */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = adminSql();
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(inject('databaseUrl'));
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 10, onnotice: () => {} });
  const drop = async (): Promise<void> => {
    await sql.end({ timeout: 5 });
    const a = adminSql();
    try {
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await a.end();
    }
  };
  try {
    if (opts.migrate !== false) await migrate(sql, 'up');
  } catch (err) {
    await drop();
    throw err;
  }
  return { url: url.toString(), sql, drop };
}

export interface Heard {
  /** Payloads received so far, in order. */
  payloads: string[];
  /** Resolves once `n` payloads have arrived (fails after 5 s), then waits `settleMs` for unexpected extras. */
  count(n: number, settleMs?: number): Promise<string[]>;
  stop(): Promise<void>;
}

/** LISTENs on `channel` (a NOTIFY is delivered at its transaction's commit). */
export async function listenTo(sql: postgres.Sql, channel: string): Promise<Heard> {
  const payloads: string[] = [];
  const { unlisten } = await sql.listen(channel, (payload) => void payloads.push(payload));
  return {
    payloads,
    async count(n, settleMs = 100) {
      const deadline = Date.now() + 5000;
      while (payloads.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, settleMs));
      return [...payloads];
    },
    stop: unlisten,
  };
}

/** What a repository answers when PostgreSQL cannot be reached. */
export const UNAVAILABLE = { code: 'service_unavailable', status: 503, message: 'Database is temporarily unavailable' } as const;

/** Runs `use` with a production client (db.ts) of a server that is not there: every connection is refused. */
export async function withUnreachableDatabase(use: (sql: Sql) => Promise<void>): Promise<void> {
  const sql = connect('postgres://nobody@127.0.0.1:1/none', { max: 1 });
  try {
    await use(sql);
  } finally {
    await sql.end();
  }
}

/** A title a user may be recommended, in candidate order (popularity DESC, then id). */
export interface EligibleTitle {
  id: number;
  genre: string;
  p: number;
  created: Date;
}

/**
 * What `userId` may be recommended, computed in SQL from the rules the service applies in memory: not
 * watched, not dismissed, not hidden, tier at or below the user's (none = free), and no country list or
 * the user's country on it (docs/api.md "Availability rules"). `genre`: only that genre.
 */
export async function eligibleTitles(sql: postgres.Sql, userId: number, genre?: string): Promise<EligibleTitle[]> {
  const rows = await sql<{ id: string; genre: string; p: number; created: Date }[]>`
    SELECT c.id::text AS id, c.genre, c.popularity_score AS p, c.created_at AS created
    FROM content c, users u
    WHERE u.id = ${userId} AND NOT c.hidden
      AND (${genre ?? null}::text IS NULL OR c.genre = ${genre ?? null}::text)
      AND array_position('{free,basic,premium}'::text[], c.subscription_tier)
          <= coalesce(array_position('{free,basic,premium}'::text[], u.subscription_type), 1)
      AND (cardinality(c.countries) = 0 OR u.country = ANY (c.countries))
      AND NOT EXISTS (SELECT 1 FROM user_watch_history w WHERE w.user_id = u.id AND w.content_id = c.id)
      AND NOT EXISTS (SELECT 1 FROM user_dismissals d WHERE d.user_id = u.id AND d.content_id = c.id)
    ORDER BY c.popularity_score DESC, c.id`;
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/**
 * Holds every read of `table` behind an ACCESS EXCLUSIVE lock until `release()`: a computation that reads it
 * stays in flight for exactly as long as a test needs, whatever the scheduling (no latency to race).
 */
export async function holdReads(sql: postgres.Sql, table: 'users'): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const lockTaken = new Promise<void>((r) => (locked = r));
  const lock = sql.begin(async (tx) => {
    await tx`LOCK TABLE ${tx(table)} IN ACCESS EXCLUSIVE MODE`;
    locked();
    await held;
  });
  await lockTaken;
  return {
    release: async () => {
      release();
      await lock;
    },
  };
}
