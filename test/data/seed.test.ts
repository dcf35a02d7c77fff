import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { COUNTRIES, DEFAULT_SEED_SIZE, GENRES, SEED_EPOCH_MS, seed, seedIfEmpty, type SeedProgress } from '../../src/data/seed.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const DAY_MS = 86_400_000;

async function counts(sql: postgres.Sql): Promise<{ users: number; content: number; events: number }> {
  const [row] = await sql<{ users: number; content: number; events: number }[]>`
    SELECT (SELECT count(*) FROM users)::int AS users,
           (SELECT count(*) FROM content)::int AS content,
           (SELECT count(*) FROM user_watch_history)::int AS events`;
  return row!;
}

/** A fingerprint of every column of every row, in id order (timestamps rendered in UTC), dismissals included. */
async function fingerprint(sql: postgres.Sql): Promise<string> {
  return md5(sql, `
    (SELECT string_agg(u::text, E'\\n' ORDER BY u.id) FROM users u) || '|' ||
    (SELECT string_agg(c::text, E'\\n' ORDER BY c.id) FROM content c) || '|' ||
    (SELECT string_agg(h::text, E'\\n' ORDER BY h.id) FROM user_watch_history h) || '|' ||
    coalesce((SELECT string_agg(d::text, E'\\n' ORDER BY d.user_id, d.content_id) FROM user_dismissals d), '')`);
}

/**
 * The same over the columns that existed before migration 0005 only, rendered exactly as the whole rows
 * were then: new columns come from their own PRNG streams, so this stays what it was.
 */
async function fingerprintBefore0005(sql: postgres.Sql): Promise<string> {
  return md5(sql, `
    (SELECT string_agg(u::text, E'\\n' ORDER BY u.id) FROM users u) || '|' ||
    (SELECT string_agg(ROW(c.id, c.title, c.genre, c.release_year, c.duration_minutes, c.popularity_score, c.created_at)::text,
                       E'\\n' ORDER BY c.id) FROM content c) || '|' ||
    (SELECT string_agg(h::text, E'\\n' ORDER BY h.id) FROM user_watch_history h)`);
}

async function md5(sql: postgres.Sql, text: string): Promise<string> {
  return sql.begin(async (tx) => {
    await tx`SET LOCAL TimeZone = 'UTC'`;
    const [row] = await tx.unsafe<{ md5: string }[]>(`SELECT md5(${text}) AS md5`);
    return row!.md5;
  });
}

async function dismissals(sql: postgres.Sql): Promise<number> {
  return (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM user_dismissals`)[0]!.n;
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

  it('seeds the default size (20 users, 50 titles, 200 events, 10 dismissals) once, then is a no-op', async () => {
    const lines: string[] = [];
    expect(await seedIfEmpty(db.sql, (m) => lines.push(m))).toBe(true);
    expect(DEFAULT_SEED_SIZE).toEqual({ users: 20, content: 50, events: 200 });
    expect(await counts(db.sql)).toEqual({ users: 20, content: 50, events: 200 });
    expect(await dismissals(db.sql)).toBe(10);
    expect(lines.join('\n')).toMatch(/seeded 20 users, 50 titles, 200 watch events, 10 dismissals in \d+ ms/);
    const before = await fingerprint(db.sql);

    expect(await seedIfEmpty(db.sql)).toBe(false);
    expect(await fingerprint(db.sql)).toBe(before);
  });

  it('always produces the same default data set (pinned: update on purpose when the generator changes)', async () => {
    await seedIfEmpty(db.sql);
    // Whole rows: changed by migration 0006's content.genres column ({genre}); the columns before it did not.
    expect(await fingerprint(db.sql)).toBe('7ca6ef1b0b2dfdfb6878170e569b749c');
    // Every column older than migration 0005 holds exactly what it held before the new columns were seeded.
    expect(await fingerprintBefore0005(db.sql)).toBe('9a6127e87f65e474642f8545da5085a8');
  });

  it('keeps the default data set usable: one hidden title, most titles free and unrestricted', async () => {
    await seedIfEmpty(db.sql);
    const [row] = await db.sql<{ hidden: number[]; free: number; basic: number; premium: number; restricted: number }[]>`
      SELECT array_agg(id::int ORDER BY id) FILTER (WHERE hidden) AS hidden,
             count(*) FILTER (WHERE subscription_tier = 'free')::int AS free,
             count(*) FILTER (WHERE subscription_tier = 'basic')::int AS basic,
             count(*) FILTER (WHERE subscription_tier = 'premium')::int AS premium,
             count(*) FILTER (WHERE countries <> '{}')::int AS restricted
      FROM content`;
    expect(row).toEqual({ hidden: [7], free: 35, basic: 10, premium: 5, restricted: 3 });
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
    expect(await dismissals(a.sql)).toBeGreaterThan(0);

    await seed(b.sql, { ...opts, seed: 8, reset: true });
    expect(await counts(b.sql)).toEqual({ users: 300, content: 120, events: 4000 });
    expect(await fingerprint(b.sql)).not.toBe(await fingerprint(a.sql));
  });

  it("draws each title's availability from its own stream: a larger catalog keeps the smaller one's", async () => {
    await seed(a.sql, { users: 10, content: 40, events: 50 });
    await seed(b.sql, { users: 30, content: 90, events: 400 });
    const availability = (sql: postgres.Sql) =>
      sql`SELECT id::int, hidden, subscription_tier, countries FROM content WHERE id <= 40 ORDER BY id`;
    expect(await availability(b.sql)).toEqual(await availability(a.sql));
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
    await a.sql`INSERT INTO content_similarity (content_id, similar_ids, scores) VALUES (1, '{2}', '{0.5}')`;
    await seed(a.sql, { users: 5, content: 8, events: 12, reset: true });

    expect(await counts(a.sql)).toEqual({ users: 5, content: 8, events: 12 });
    const [ids] = await a.sql<{ min: number; max: number }[]>`SELECT min(id)::int AS min, max(id)::int AS max FROM user_watch_history`;
    expect(ids).toEqual({ min: 1, max: 12 });
    expect(await nextIds(a.sql)).toEqual([6, 9, 13]);
    // Derived from the replaced history: gone with it.
    const [similar] = await a.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM content_similarity`;
    expect(similar!.n).toBe(0);
  });

  it('marks each load with a new data set version and one notification, none per row', async () => {
    const heard: string[] = [];
    const listener = await a.sql.listen('recsvc_dataset', (v) => void heard.push(v));
    let perRow = 0;
    const rows = await a.sql.listen('watch_history', () => void perRow++);
    const titles = await a.sql.listen('content_changes', () => void perRow++);
    const version = async () => (await a.sql<{ v: string }[]>`SELECT version::text AS v FROM dataset`)[0]!.v;
    const before = await version();
    await seed(a.sql, { users: 20, content: 10, events: 100 });
    await seed(a.sql, { users: 5, content: 8, events: 12, reset: true });
    await new Promise((r) => setTimeout(r, 200));
    await listener.unlisten();
    await rows.unlisten();
    await titles.unlisten();
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
    expect(await dismissals(a.sql)).toBe(0); // nothing left unwatched to dismiss
  });

  it('reports progress per table ending at the total', async () => {
    const seen: SeedProgress[] = [];
    await seed(a.sql, { users: 50_000, content: 100, events: 60_000, onProgress: (p) => seen.push(p) });
    const last = new Map(seen.map((p) => [p.table, p]));
    expect([...last.keys()]).toEqual(['users', 'content', 'user_watch_history', 'user_dismissals', 'indexes']);
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

  it('restores the schema after the bulk load: indexes, validated foreign keys, triggers', async () => {
    const [row] = await db.sql<{ indexes: number; fks: number; triggers: string[] }[]>`
      SELECT (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'idx\\_%')::int AS indexes,
             (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated
                AND conname IN ('user_watch_history_user_id_fkey', 'user_watch_history_content_id_fkey',
                                'user_dismissals_user_id_fkey', 'user_dismissals_content_id_fkey'))::int AS fks,
             (SELECT array_agg(tgname || ':' || tgenabled::text ORDER BY tgname) FROM pg_trigger
              WHERE tgname IN ('watch_history_notify', 'user_dismissals_notify', 'content_notify', 'users_audience_notify')) AS triggers`;
    // 8 of 0001 + idx_user_activity_events, idx_user_id_blocks_before (0003) + idx_dismissals_content (0005)
    expect(row).toEqual({
      indexes: 11,
      fks: 4,
      triggers: ['content_notify:O', 'user_dismissals_notify:O', 'users_audience_notify:O', 'watch_history_notify:O'],
    });
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
    await expect(db.sql`INSERT INTO user_dismissals (user_id, content_id) VALUES (2001, 1)`).rejects.toMatchObject({
      constraint_name: 'user_dismissals_user_id_fkey',
    });
  });

  it('hides about 2 % of titles and gives ~75 % free / 17 % basic / 8 % premium, ~10 % restricted to 1-3 seed countries', async () => {
    const [row] = await db.sql<{ hidden: number; basic: number; premium: number; restricted: number; sizes_ok: boolean; codes_ok: boolean }[]>`
      SELECT count(*) FILTER (WHERE hidden)::int AS hidden,
             count(*) FILTER (WHERE subscription_tier = 'basic')::int AS basic,
             count(*) FILTER (WHERE subscription_tier = 'premium')::int AS premium,
             count(*) FILTER (WHERE countries <> '{}')::int AS restricted,
             bool_and(cardinality(countries) <= 3) AS sizes_ok,
             bool_and(countries <@ ${[...COUNTRIES]}::text[]
                      AND cardinality(countries) = (SELECT count(DISTINCT c) FROM unnest(countries) c)) AS codes_ok
      FROM content`;
    // 500 titles: within about three standard deviations of each share.
    expect(row!.hidden).toBeGreaterThanOrEqual(2);
    expect(row!.hidden).toBeLessThanOrEqual(20);
    expect(row!.basic).toBeGreaterThanOrEqual(60);
    expect(row!.basic).toBeLessThanOrEqual(110);
    expect(row!.premium).toBeGreaterThanOrEqual(22);
    expect(row!.premium).toBeLessThanOrEqual(60);
    expect(row!.restricted).toBeGreaterThanOrEqual(30);
    expect(row!.restricted).toBeLessThanOrEqual(70);
    expect({ sizes_ok: row!.sizes_ok, codes_ok: row!.codes_ok }).toEqual({ sizes_ok: true, codes_ok: true });
  });

  it('has about one dismissal per 20 watch events, never of a watched title, after the user and the title existed', async () => {
    const [row] = await db.sql<{ n: number; watched: number; early: number; late: number; users: number }[]>`
      SELECT count(*)::int AS n,
             count(*) FILTER (WHERE EXISTS (SELECT 1 FROM user_watch_history h
                                            WHERE h.user_id = d.user_id AND h.content_id = d.content_id))::int AS watched,
             count(*) FILTER (WHERE d.dismissed_at < c.created_at OR d.dismissed_at < u.created_at)::int AS early,
             count(*) FILTER (WHERE d.dismissed_at > ${new Date(SEED_EPOCH_MS)}
                               OR d.dismissed_at < ${new Date(SEED_EPOCH_MS - 180 * DAY_MS)})::int AS late,
             count(DISTINCT d.user_id)::int AS users
      FROM user_dismissals d JOIN content c ON c.id = d.content_id JOIN users u ON u.id = d.user_id`;
    expect(row!.n).toBeGreaterThanOrEqual(900);
    expect(row!.n).toBeLessThanOrEqual(1100);
    expect({ watched: row!.watched, early: row!.early, late: row!.late }).toEqual({ watched: 0, early: 0, late: 0 });
    expect(row!.users).toBeGreaterThan(300);
  });
});
