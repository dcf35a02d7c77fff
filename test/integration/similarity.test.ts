/**
 * The co-watch similarity job against real PostgreSQL: what it writes to content_similarity and what
 * SimilarityRepo reads back.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connect, type Sql } from '../../src/data/db.js';
import { SIMILARITY_LOCK_KEY, runSimilarityJob } from '../../src/data/similarity-job.js';
import { SimilarityRepo } from '../../src/data/similarity-repo.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;
let repo: SimilarityRepo;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = connect(db.url, { max: 4 });
  repo = new SimilarityRepo(sql);
});

afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

const T0 = Date.UTC(2026, 0, 1);

/** Each user's events, newest first, one minute apart (ids and times both fall with age). */
async function watch(histories: Record<number, number[]>): Promise<void> {
  const rows = Object.entries(histories).flatMap(([user, titles]) =>
    titles.map((content, age) => ({ user_id: Number(user), content_id: content, watched_at: new Date(T0 - age * 60_000) })),
  );
  const users = [...new Set(rows.map((r) => r.user_id))].map((id) => ({ id }));
  await sql`INSERT INTO users ${sql(users)} ON CONFLICT DO NOTHING`;
  // Oldest first, so a user's newest event also has the highest id.
  await sql`INSERT INTO user_watch_history ${sql(rows.reverse(), 'user_id', 'content_id', 'watched_at')}`;
}

const similar = async (id: number) => {
  const found = await repo.similarTo(id);
  return found && found.similarIds.map((s, i) => [s, found.scores[i]]);
};

async function storedAges(): Promise<{ rows: number; times: number }> {
  const [row] = await sql<{ rows: number; times: number }[]>`
    SELECT count(*)::int AS rows, count(DISTINCT computed_at)::int AS times FROM content_similarity`;
  return row!;
}

async function storedRows(): Promise<unknown[]> {
  return [...(await sql`SELECT content_id, similar_ids, scores, computed_at FROM content_similarity ORDER BY 1`)];
}

async function resetHistory(): Promise<void> {
  await sql`TRUNCATE users, user_watch_history, content_similarity CASCADE`;
  // n(101) = 3, n(102) = 4, n(103) = 3, n(104) = 2, n(105) = 2 (hidden); user 6's 50 newest are 201..250,
  // so their older 103 and 104 are outside the window: counted, co(103, 104) would be 2.
  await watch({
    1: [101, 102, 103, 105],
    2: [101, 102, 105],
    3: [101, 102, 104],
    4: [103, 104],
    5: [102, 103],
    6: [...Array.from({ length: 50 }, (_, i) => 201 + i), 103, 104],
  });
}

beforeAll(async () => {
  const titles = [101, 102, 103, 104, 105, ...Array.from({ length: 50 }, (_, i) => 201 + i)];
  await sql`INSERT INTO content ${sql(titles.map((id) => ({ id, title: `Title ${id}`, genre: 'drama', hidden: id === 105 })))}`;
});

describe('the job', () => {
  beforeEach(resetHistory);

  it('stores the most co-watched titles of each title by cosine, best first, and nothing for a title without any', async () => {
    const outcome = await runSimilarityJob(sql);
    expect(outcome.ran).toBe(true);
    if (!outcome.ran) return;
    expect(outcome.stats).toMatchObject({ titles: 4, pairs: 8, events: 4 + 3 + 3 + 2 + 2 + 50, users: 6 });

    expect(await similar(101)).toEqual([[102, 0.866], [105, 0.816]]); // 3/√12, 2/√6: hidden titles are kept
    expect(await similar(102)).toEqual([[101, 0.866], [105, 0.707], [103, 0.577]]);
    expect(await similar(103)).toEqual([[102, 0.577]]); // co(103, 104) = 1: user 6's are too old
    expect(await similar(105)).toEqual([[101, 0.816], [102, 0.707]]);
    expect(await repo.similarTo(104)).toBeNull();
    expect(await repo.similarTo(999_999)).toBeNull();

    const found = await repo.similarTo(101);
    expect(found!.computedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(found!.computedAt).toBe(new Date(outcome.stats.computedAt).toISOString());
  });

  it('a second run replaces every row: new pairs appear, lists that lost their evidence go', async () => {
    await runSimilarityJob(sql);
    const first = (await repo.similarTo(101))!.computedAt;
    await sql`DELETE FROM user_watch_history WHERE content_id = 105`;
    await watch({ 8: [103, 104] });

    const outcome = await runSimilarityJob(sql);
    expect(outcome).toMatchObject({ ran: true, stats: { titles: 4 } });
    // n(103) = 4, n(104) = 3 now: co(103, 104) = 2 (users 4 and 8), co(102, 103) = 2.
    expect(await similar(101)).toEqual([[102, 0.866]]);
    expect(await similar(102)).toEqual([[101, 0.866], [103, 0.5]]);
    expect(await similar(103)).toEqual([[104, 0.577], [102, 0.5]]);
    expect(await similar(104)).toEqual([[103, 0.577]]);
    expect(await repo.similarTo(105)).toBeNull();
    expect(await storedAges()).toEqual({ rows: 4, times: 1 });
    expect(Date.parse((await repo.similarTo(101))!.computedAt)).toBeGreaterThan(Date.parse(first));
  });

  it('skips while another session holds the lock, and when the stored lists are fresh', async () => {
    const holder = await sql.reserve();
    try {
      await holder`SELECT pg_advisory_lock(${SIMILARITY_LOCK_KEY}::bigint)`;
      expect(await runSimilarityJob(sql)).toEqual({ ran: false, reason: 'locked' });
      expect(await storedAges()).toEqual({ rows: 0, times: 0 });
    } finally {
      await holder`SELECT pg_advisory_unlock(${SIMILARITY_LOCK_KEY}::bigint)`;
      holder.release();
    }
    expect(await runSimilarityJob(sql, { freshForS: 3600 })).toMatchObject({ ran: true });
    expect(await runSimilarityJob(sql, { freshForS: 3600 })).toEqual({ ran: false, reason: 'fresh' });
    await sql`UPDATE content_similarity SET computed_at = computed_at - interval '2 hours'`;
    expect(await runSimilarityJob(sql, { freshForS: 3600 })).toMatchObject({ ran: true });
  });
});

