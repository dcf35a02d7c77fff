import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  COUNTRIES, DEFAULT_SEED_SIZE, GENRES, plantedTastes, SEED_EPOCH_MS, seed, seedIfEmpty, type SeedProgress,
} from '../../src/data/seed.js';
import { TASTES, TASTES_PER_TITLE, type TitleTastes } from '../../src/data/seed-tastes.js';
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

/** The same over users and content only: the taste model planted in the events comes from streams of its own. */
async function fingerprintCatalog(sql: postgres.Sql): Promise<string> {
  return md5(sql, `
    (SELECT string_agg(u::text, E'\\n' ORDER BY u.id) FROM users u) || '|' ||
    (SELECT string_agg(ROW(c.id, c.title, c.genre, c.release_year, c.duration_minutes, c.popularity_score, c.created_at,
                           c.hidden, c.subscription_tier, c.countries)::text, E'\\n' ORDER BY c.id) FROM content c)`);
}

/** The tastes of a title, primary first. */
function tastesOf(tastes: TitleTastes, id: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < TASTES_PER_TITLE; j++) {
    if (tastes.weight[id * TASTES_PER_TITLE + j]! > 0) out.push(tastes.taste[id * TASTES_PER_TITLE + j]!);
  }
  return out;
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

  // Dismissals: about one per 20 events, each user's count rounded by a draw of their own (8 here, 10 expected).
  it('seeds the default size (20 users, 50 titles, 200 events, 8 dismissals) once, then is a no-op', async () => {
    const lines: string[] = [];
    expect(await seedIfEmpty(db.sql, (m) => lines.push(m))).toBe(true);
    expect(DEFAULT_SEED_SIZE).toEqual({ users: 20, content: 50, events: 200 });
    expect(await counts(db.sql)).toEqual({ users: 20, content: 50, events: 200 });
    expect(await dismissals(db.sql)).toBe(8);
    expect(lines.join('\n')).toMatch(/seeded 20 users, 50 titles, 200 watch events, 8 dismissals in \d+ ms/);
    const before = await fingerprint(db.sql);

    expect(await seedIfEmpty(db.sql)).toBe(false);
    expect(await fingerprint(db.sql)).toBe(before);
  });

  it('always produces the same default data set (pinned: update on purpose when the generator changes)', async () => {
    await seedIfEmpty(db.sql);
    expect(await fingerprint(db.sql)).toBe('b83dc824c191b9f377173e781d96a665');
    // Users and titles (without migration 0006's genres) hold exactly what they held before the taste model
    // was planted in the events.
    expect(await fingerprintCatalog(db.sql)).toBe('962a919e38da3d36f862a8de1d456bd2');
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
    // Share of each active user's events in their most-watched genre, against the same with every title's
    // genre replaced by a hash of its id (no link to the user's tastes): what chance gives.
    const topShare = async (genre: string): Promise<number> => {
      const [row] = await db.sql.unsafe<{ share: number }[]>(`
        SELECT avg(top)::float8 AS share FROM (
          SELECT max(n)::float8 / sum(n) AS top FROM (
            SELECT h.user_id, ${genre} AS genre, count(*) AS n
            FROM user_watch_history h JOIN content c ON c.id = h.content_id
            GROUP BY 1, 2) per_genre
          GROUP BY user_id HAVING sum(n) >= 10) per_user`);
      return row!.share;
    };
    const chance = await topShare('(hashint8(c.id) & 2147483647) % 10');
    expect(await topShare('c.genre')).toBeGreaterThan(chance + 0.05);
  });

  /** Each active user's titles in the order watched. */
  async function histories(): Promise<number[][]> {
    const rows = await db.sql<{ user_id: number; content_id: number }[]>`
      SELECT user_id::int, content_id::int FROM user_watch_history ORDER BY user_id, watched_at, id`;
    const byUser = new Map<number, number[]>();
    for (const r of rows) {
      if (!byUser.has(r.user_id)) byUser.set(r.user_id, []);
      byUser.get(r.user_id)!.push(r.content_id);
    }
    return [...byUser.values()];
  }

  it('plants audiences across genres: titles of different genres sharing a taste are co-watched far above chance', async () => {
    const tastes = plantedTastes(500);
    const genre = new Map((await db.sql<{ id: number; genre: string }[]>`SELECT id::int, genre FROM content`)
      .map((r) => [r.id, r.genre]));
    const users = await histories();
    const watchers = new Float64Array(501);
    const together = new Float64Array(501 * 501);
    for (const titles of users) {
      for (const a of titles) {
        watchers[a]! += 1;
        for (const b of titles) if (a < b) together[a * 501 + b]! += 1;
      }
    }
    // Co-watches over what independent watching would give, for cross-genre pairs with the same primary
    // taste and for those with no taste in common (heavy watchers lift every pair a little: compare the two).
    const sums = { shared: [0, 0], unrelated: [0, 0] };
    for (let a = 1; a <= 500; a++) {
      for (let b = a + 1; b <= 500; b++) {
        if (genre.get(a) === genre.get(b)) continue;
        const group = tastesOf(tastes, a)[0] === tastesOf(tastes, b)[0] ? sums.shared
          : tastesOf(tastes, a).some((t) => tastesOf(tastes, b).includes(t)) ? undefined : sums.unrelated;
        if (!group) continue;
        group[0]! += together[a * 501 + b]!;
        group[1]! += (watchers[a]! * watchers[b]!) / users.length;
      }
    }
    const lift = (g: number[]): number => g[0]! / g[1]!;
    expect(lift(sums.shared)).toBeGreaterThan(3 * lift(sums.unrelated));
  });

  it("drifts: a user's last events are closer in taste to their recent ones than to their first ones", async () => {
    const tastes = plantedTastes(500);
    const profile = (titles: number[]): Float64Array => {
      const v = new Float64Array(TASTES);
      for (const id of titles) {
        for (let j = 0; j < TASTES_PER_TITLE; j++) v[tastes.taste[id * TASTES_PER_TITLE + j]!]! += tastes.weight[id * TASTES_PER_TITLE + j]!;
      }
      return v;
    };
    const cosine = (a: Float64Array, b: Float64Array): number => {
      let ab = 0, aa = 0, bb = 0;
      for (let i = 0; i < a.length; i++) [ab, aa, bb] = [ab + a[i]! * b[i]!, aa + a[i]! ** 2, bb + b[i]! ** 2];
      return ab / Math.sqrt(aa * bb);
    };
    // The evaluation's split: the last 10 % held out, against the fifth before it and the first fifth.
    let recent = 0;
    let first = 0;
    let users = 0;
    for (const titles of await histories()) {
      if (titles.length < 10) continue;
      const held = Math.max(1, Math.round(titles.length / 10));
      const fifth = Math.round(titles.length / 5);
      const last = profile(titles.slice(-held));
      recent += cosine(last, profile(titles.slice(-held - fifth, -held)));
      first += cosine(last, profile(titles.slice(0, fifth)));
      users += 1;
    }
    expect(users).toBeGreaterThan(500);
    expect(recent / users).toBeGreaterThan(first / users + 0.05);
  });

  it("numbers each user's events in time order", async () => {
    const [row] = await db.sql<{ backwards: number }[]>`
      SELECT count(*) FILTER (WHERE watched_at < previous)::int AS backwards FROM (
        SELECT watched_at, lag(watched_at) OVER (PARTITION BY user_id ORDER BY id) AS previous
        FROM user_watch_history) h`;
    expect(row!.backwards).toBe(0);
  });

  it('has long-tailed watch counts that rank titles as popularity_score does', async () => {
    const [row] = await db.sql<{ spearman: number; top_share: number }[]>`
      WITH counts AS (
        SELECT c.popularity_score, count(h.id) AS n
        FROM content c LEFT JOIN user_watch_history h ON h.content_id = c.id GROUP BY c.id),
      ranked AS (
        SELECT n, rank() OVER (ORDER BY popularity_score) AS by_score, rank() OVER (ORDER BY n) AS by_count,
               row_number() OVER (ORDER BY n DESC) AS place
        FROM counts)
      SELECT corr(by_score, by_count)::float8 AS spearman,
             (sum(n) FILTER (WHERE place <= 50) / sum(n))::float8 AS top_share
      FROM ranked`;
    expect(row!.spearman).toBeGreaterThan(0.8);
    // The most watched tenth of the titles takes a large share of the events (a tenth under uniform watching).
    expect(row!.top_share).toBeGreaterThan(0.35);
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

describe('plantedTastes', () => {
  it("gives each title a sparse profile: weights summing to 1, the primary the largest, mostly but not always its genre's", () => {
    const tastes = plantedTastes(5000);
    let ownGenre = 0;
    for (let id = 1; id <= 5000; id++) {
      const weights = tastesOf(tastes, id).map((_, j) => tastes.weight[id * TASTES_PER_TITLE + j]!);
      expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(Math.max(...weights)).toBe(weights[0]);
      expect(new Set(tastesOf(tastes, id)).size).toBe(weights.length);
      // Taste k's home genre is k mod the genre count; titles are stocked round robin by genre.
      if (tastesOf(tastes, id)[0]! % GENRES.length === (id - 1) % GENRES.length) ownGenre += 1;
    }
    expect(ownGenre / 5000).toBeGreaterThan(0.6);
    expect(ownGenre / 5000).toBeLessThan(0.9);
  });

  it("is drawn in id order from the seed alone: a larger catalog keeps a smaller one's profiles", () => {
    const small = plantedTastes(40);
    const large = plantedTastes(90);
    expect(large.taste.subarray(0, small.taste.length)).toEqual(small.taste);
    expect(large.weight.subarray(0, small.weight.length)).toEqual(small.weight);
    expect(plantedTastes(90, 7).taste).not.toEqual(large.taste);
  });
});
