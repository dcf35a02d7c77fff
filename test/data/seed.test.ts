import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SEED_SIZE, GENRES, SEED_EPOCH_MS, seed, seedIfEmpty, type SeedProgress } from '../../src/data/seed.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const DAY_MS = 86_400_000;

async function counts(sql: postgres.Sql): Promise<{ users: number; content: number; events: number }> {
  const [row] = await sql<{ users: number; content: number; events: number }[]>`
    SELECT (SELECT count(*) FROM users)::int AS users,
           (SELECT count(*) FROM content)::int AS content,
           (SELECT count(*) FROM user_watch_history)::int AS events`;
  return row!;
}

/** A fingerprint of every column of every row, in id order (timestamps rendered in UTC). */
async function fingerprint(sql: postgres.Sql): Promise<string> {
  return sql.begin(async (tx) => {
    await tx`SET LOCAL TimeZone = 'UTC'`;
    const [row] = await tx<{ md5: string }[]>`
      SELECT md5(
        (SELECT string_agg(u::text, E'\\n' ORDER BY u.id) FROM users u) || '|' ||
        (SELECT string_agg(c::text, E'\\n' ORDER BY c.id) FROM content c) || '|' ||
        (SELECT string_agg(h::text, E'\\n' ORDER BY h.id) FROM user_watch_history h)
      ) AS md5`;
    return row!.md5;
  });
}

async function nextIds(sql: postgres.Sql): Promise<number[]> {
  const [row] = await sql<{ u: number; c: number; h: number }[]>`
    SELECT nextval(pg_get_serial_sequence('users', 'id'))::int AS u,
           nextval(pg_get_serial_sequence('content', 'id'))::int AS c,
           nextval(pg_get_serial_sequence('user_watch_history', 'id'))::int AS h`;
  return [row!.u, row!.c, row!.h];
}

describe('seedIfEmpty', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('seeds the default size (20 users, 50 titles, 200 events) once, then is a no-op', async () => {
    const lines: string[] = [];
    expect(await seedIfEmpty(db.sql, (m) => lines.push(m))).toBe(true);
    expect(DEFAULT_SEED_SIZE).toEqual({ users: 20, content: 50, events: 200 });
    expect(await counts(db.sql)).toEqual({ users: 20, content: 50, events: 200 });
    expect(lines.join('\n')).toMatch(/seeded 20 users, 50 titles, 200 watch events/);
    const before = await fingerprint(db.sql);

    expect(await seedIfEmpty(db.sql)).toBe(false);
    expect(await fingerprint(db.sql)).toBe(before);
  });

  it('always produces the same default data set (pinned: update on purpose when the generator changes)', async () => {
    await seedIfEmpty(db.sql);
    expect(await fingerprint(db.sql)).toBe('9a6127e87f65e474642f8545da5085a8');
  });

  it('lets exactly one of several concurrent starters seed', async () => {
    const clients = [0, 1, 2, 3].map(() => postgres(db.url, { max: 1, onnotice: () => {} }));
    try {
      await Promise.all(clients.map((c) => c`SELECT 1`)); // connected up front, so the seeders truly overlap
      const results = await Promise.all(clients.map((c) => seedIfEmpty(c)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await counts(db.sql)).toEqual({ users: 20, content: 50, events: 200 });
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('seeds nothing when users is non-empty', async () => {
    await db.sql`INSERT INTO users (age) VALUES (33)`;
    expect(await seedIfEmpty(db.sql)).toBe(false);
    expect(await counts(db.sql)).toEqual({ users: 1, content: 0, events: 0 });
  });

  it('fails clearly before migrations ran', async () => {
    await db.sql`DROP TABLE user_watch_history`;
    await expect(seedIfEmpty(db.sql)).rejects.toThrow(/run migrations up first/);
  });
});

describe('seed', () => {
  let a: TestDatabase;
  let b: TestDatabase;
  beforeEach(async () => {
    [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });
  afterEach(async () => {
    await Promise.all([a.drop(), b.drop()]);
  });

  it('produces identical rows for identical options, and different rows for another seed', async () => {
    const opts = { users: 300, content: 120, events: 4000, seed: 7 };
    await seed(a.sql, opts);
    await seed(b.sql, opts);
    expect(await fingerprint(a.sql)).toBe(await fingerprint(b.sql));

    await seed(b.sql, { ...opts, seed: 8, reset: true });
    expect(await counts(b.sql)).toEqual({ users: 300, content: 120, events: 4000 });
    expect(await fingerprint(b.sql)).not.toBe(await fingerprint(a.sql));
  });

  it('refuses a non-empty database without reset and leaves it untouched', async () => {
    await seed(a.sql, { users: 10, content: 10, events: 30 });
    const before = await fingerprint(a.sql);
    await expect(seed(a.sql, { users: 10, content: 10, events: 30 })).rejects.toThrow(/not empty.*reset/);
    expect(await fingerprint(a.sql)).toBe(before);
  });

  it('with reset replaces the data, restarts ids at 1 and moves sequences past the new rows', async () => {
    await seed(a.sql, { ...DEFAULT_SEED_SIZE });
    await a.sql`INSERT INTO user_watch_history (user_id, content_id) VALUES (1, 1)`; // id 201
    await seed(a.sql, { users: 5, content: 8, events: 12, reset: true });

    expect(await counts(a.sql)).toEqual({ users: 5, content: 8, events: 12 });
    const [ids] = await a.sql<{ min: number; max: number }[]>`SELECT min(id)::int AS min, max(id)::int AS max FROM user_watch_history`;
    expect(ids).toEqual({ min: 1, max: 12 });
    expect(await nextIds(a.sql)).toEqual([6, 9, 13]);
  });

  it('marks each load with a new data set version and one notification, none per row', async () => {
    const heard: string[] = [];
    const listener = await a.sql.listen('recsvc_dataset', (v) => void heard.push(v));
    let perRow = 0;
    const rows = await a.sql.listen('watch_history', () => void perRow++);
    const version = async () => (await a.sql<{ v: string }[]>`SELECT version::text AS v FROM dataset`)[0]!.v;
    const before = await version();
    await seed(a.sql, { users: 20, content: 10, events: 100 });
    await seed(a.sql, { users: 5, content: 8, events: 12, reset: true });
    await new Promise((r) => setTimeout(r, 200));
    await listener.unlisten();
    await rows.unlisten();
    expect(await version()).toBe(String(Number(before) + 2));
    expect(heard).toEqual([String(Number(before) + 1), String(Number(before) + 2)]);
    expect(perRow).toBe(0);
  });

  it('rejects impossible sizes before touching the database', async () => {
    await expect(seed(a.sql, { users: 2, content: 3, events: 7 })).rejects.toThrow(/cannot fit 2 users × 3 titles/);
    await expect(seed(a.sql, { users: -1, content: 3, events: 0 })).rejects.toThrow(/non-negative integer/);
    expect(await counts(a.sql)).toEqual({ users: 0, content: 0, events: 0 });
  });

  it('fills every slot when events = users × content', async () => {
    await seed(a.sql, { users: 4, content: 6, events: 24 });
    const [row] = await a.sql<{ pairs: number }[]>`SELECT count(DISTINCT (user_id, content_id))::int AS pairs FROM user_watch_history`;
    expect(row!.pairs).toBe(24);
  });

  it('reports progress per table ending at the total', async () => {
    const seen: SeedProgress[] = [];
    await seed(a.sql, { users: 50_000, content: 100, events: 60_000, onProgress: (p) => seen.push(p) });
    const last = new Map(seen.map((p) => [p.table, p]));
    expect([...last.keys()]).toEqual(['users', 'content', 'user_watch_history', 'indexes']);
    expect(last.get('users')).toMatchObject({ done: 50_000, total: 50_000, etaSec: 0 });
    expect(last.get('user_watch_history')).toMatchObject({ done: 60_000, total: 60_000 });
    // Large tables report along the way, not only at the end.
    expect(seen.filter((p) => p.table === 'users').length).toBeGreaterThan(1);
    expect(seen.every((p) => p.rowsPerSec >= 0 && p.done <= p.total)).toBe(true);
  });
});

describe('a mid-size seed (2000 users, 500 titles, 20000 events)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seed(db.sql, { users: 2000, content: 500, events: 20_000 });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('has exactly the requested rows', async () => {
    expect(await counts(db.sql)).toEqual({ users: 2000, content: 500, events: 20_000 });
  });

  it('references only existing users and titles', async () => {
    const [row] = await db.sql<{ orphans: number }[]>`
      SELECT count(*)::int AS orphans FROM user_watch_history h
      LEFT JOIN users u ON u.id = h.user_id LEFT JOIN content c ON c.id = h.content_id
      WHERE u.id IS NULL OR c.id IS NULL`;
    expect(row!.orphans).toBe(0);
  });

  it('never has a user watch the same title twice', async () => {
    const [row] = await db.sql<{ dups: number }[]>`
      SELECT count(*)::int AS dups FROM (
        SELECT 1 FROM user_watch_history GROUP BY user_id, content_id HAVING count(*) > 1) d`;
    expect(row!.dups).toBe(0);
  });

  it('keeps values in their documented ranges', async () => {
    const [row] = await db.sql<Record<string, boolean>[]>`
      SELECT
        (SELECT bool_and(age BETWEEN 18 AND 70 AND country IS NOT NULL
                         AND subscription_type IN ('free', 'basic', 'premium')) FROM users) AS users_ok,
        (SELECT bool_and(popularity_score > 0 AND popularity_score <= 1 AND genre = ANY(${[...GENRES]})
                         AND title <> '' AND duration_minutes > 0 AND release_year <= 2026) FROM content) AS content_ok,
        (SELECT max(popularity_score) = 1 FROM content) AS has_top_title,
        (SELECT bool_and(h.watched_at >= ${new Date(SEED_EPOCH_MS - 180 * DAY_MS)}
                         AND h.watched_at <= ${new Date(SEED_EPOCH_MS)}
                         AND h.watched_at >= c.created_at AND h.watched_at >= u.created_at
                         AND h.watch_duration_minutes > 0 AND h.completed IS NOT NULL)
           FROM user_watch_history h JOIN content c ON c.id = h.content_id JOIN users u ON u.id = h.user_id) AS events_ok`;
    expect(row).toEqual({ users_ok: true, content_ok: true, has_top_title: true, events_ok: true });
  });

  it('gives users a visible favourite genre', async () => {
    // Share of each active user's events in their most-watched genre; uniform watching would give ~0.2.
    const [row] = await db.sql<{ share: number }[]>`
      SELECT avg(top)::float8 AS share FROM (
        SELECT max(n)::float8 / sum(n) AS top FROM (
          SELECT h.user_id, c.genre, count(*) AS n
          FROM user_watch_history h JOIN content c ON c.id = h.content_id
          GROUP BY 1, 2) per_genre
        GROUP BY user_id HAVING sum(n) >= 10) per_user`;
    expect(row!.share).toBeGreaterThan(0.4);
  });

  it('restores the schema after the bulk load: indexes, validated foreign keys, trigger', async () => {
    const [row] = await db.sql<{ indexes: number; fks: number; trigger: string }[]>`
      SELECT (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'idx\\_%')::int AS indexes,
             (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated
                AND conname IN ('user_watch_history_user_id_fkey', 'user_watch_history_content_id_fkey'))::int AS fks,
             (SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'watch_history_notify') AS trigger`;
    expect(row).toEqual({ indexes: 10, fks: 2, trigger: 'O' }); // 8 of 0001 + idx_user_activity_events, idx_user_id_blocks_before (0003)
    expect(await nextIds(db.sql)).toEqual([2001, 501, 20_001]);
    // The counts of 0003, whose triggers were paused for the load, are computed from the loaded rows.
    const [stats] = await db.sql<{ users: number; events: number; active: number; paused: number }[]>`
      SELECT (SELECT (before + n)::int FROM user_id_blocks ORDER BY block DESC LIMIT 1) AS users, (SELECT sum(events)::int FROM user_activity) AS events,
             (SELECT count(*)::int FROM user_activity) AS active,
             (SELECT count(*)::int FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'D') AS paused`;
    const [{ active }] = await db.sql<{ active: number }[]>`SELECT count(DISTINCT user_id)::int AS active FROM user_watch_history`;
    expect(stats).toEqual({ users: 2000, events: 20_000, active, paused: 0 });
    await expect(db.sql`INSERT INTO user_watch_history (user_id, content_id) VALUES (1, 501)`).rejects.toMatchObject({
      constraint_name: 'user_watch_history_content_id_fkey',
    });
  });
});
