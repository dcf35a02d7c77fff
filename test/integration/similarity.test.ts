/**
 * The co-watch similarity job against real PostgreSQL: what it writes to content_similarity, what
 * SimilarityRepo reads back, and how refreshers share and abandon the work. The refresher starts real
 * worker threads from compiled JS, so it is loaded from dist/ (npm test builds first).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SimilarityRefresher as Refresher } from '../../src/cluster/similarity-refresher.js';
import { Scheduler } from '../../src/cluster/scheduler.js';
import { JobQueue } from '../../src/data/job-queue.js';
import { connect, type Sql } from '../../src/data/db.js';
import { seed } from '../../src/data/seed.js';
import { runSimilarityJob } from '../../src/data/similarity-job.js';
import { SimilarityRepo } from '../../src/data/similarity-repo.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;
let repo: SimilarityRepo;
let SimilarityRefresher: typeof Refresher;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = connect(db.url, { max: 4 });
  repo = new SimilarityRepo(sql);
  const dist = '../../dist';
  ({ SimilarityRefresher } = (await import(`${dist}/cluster/similarity-refresher.js`)) as { SimilarityRefresher: typeof Refresher });
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

  it('skips when the stored lists are fresh, or were read after the instant a forced run was asked for', async () => {
    const asked = (await sql<{ now: Date }[]>`SELECT now() AS now`)[0]!.now;
    expect(await runSimilarityJob(sql, { freshForS: 3600 })).toMatchObject({ ran: true });
    expect(await runSimilarityJob(sql, { freshForS: 3600 })).toEqual({ ran: false, reason: 'fresh' });
    expect(await runSimilarityJob(sql, { freshSince: asked })).toEqual({ ran: false, reason: 'fresh' });
    await sql`UPDATE content_similarity SET computed_at = computed_at - interval '2 hours'`;
    // Lists read before the request do not count for it; old ones not for the period either.
    expect(await runSimilarityJob(sql, { freshSince: asked })).toMatchObject({ ran: true });
    await sql`UPDATE content_similarity SET computed_at = computed_at - interval '2 hours'`;
    expect(await runSimilarityJob(sql, { freshForS: 3600 })).toMatchObject({ ran: true });
  });

  it('reads every recent event of a history far larger than one network read (50 per user at most)', () =>
    withSeeded({ users: 3000, content: 400, events: 90_000 }, async (other) => {
      const [expected] = await other<{ events: number; users: number; titles: number }[]>`
        SELECT sum(least(n, 50))::int AS events, count(*)::int AS users,
               (SELECT count(DISTINCT content_id)::int FROM user_watch_history) AS titles
        FROM (SELECT count(*) AS n FROM user_watch_history GROUP BY user_id) per_user`;
      const outcome = await runSimilarityJob(other);
      expect(outcome).toMatchObject({ ran: true, stats: { events: expected!.events, users: expected!.users } });
      expect(expected!.events).toBeLessThan(90_000); // some users have more than 50 events
      const [stored] = await other<{ rows: number; longest: number }[]>`
        SELECT count(*)::int AS rows, max(cardinality(similar_ids))::int AS longest FROM content_similarity`;
      expect(stored).toEqual({ rows: expected!.titles, longest: 50 });
    }));

  it('a reseed clears the lists computed from the old history', () =>
    withSeeded({ users: 30, content: 10, events: 200 }, async (other) => {
      const stored = async () => (await other<{ n: number }[]>`SELECT count(*)::int AS n FROM content_similarity`)[0]!.n;
      expect(await runSimilarityJob(other)).toMatchObject({ ran: true });
      expect(await stored()).toBeGreaterThan(0);
      await seed(other, { users: 30, content: 10, events: 200, reset: true });
      expect(await stored()).toBe(0);
    }));
});

/** A private database seeded with `size` (the shared one keeps its hand-built history). */
async function withSeeded(size: { users: number; content: number; events: number }, run: (sql: Sql) => Promise<void>): Promise<void> {
  const scratch = await createTestDatabase();
  const other = connect(scratch.url, { max: 2 });
  try {
    await seed(other, size);
    await run(other);
  } finally {
    await other.end();
    await scratch.drop();
  }
}

describe('the refresher (primary, worker thread), scheduled on the job engine', () => {
  beforeEach(resetHistory);

  /** An instance's primary: its engine client, scheduler and refresher, logging into `lines`. */
  async function instance(intervalS = 3600) {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const queue = await JobQueue.start({ databaseUrl: db.url, role: 'primary', maintenanceIntervalS: 1, poolSize: 3, onError: () => {} });
    const scheduler = new Scheduler(queue, log);
    const refresher = new SimilarityRefresher({ databaseUrl: db.url, intervalS, log });
    const stop = async () => {
      scheduler.stop();
      await refresher.stop();
      await queue.stop(1000);
    };
    return { refresher, scheduler, lines, stop, computed: () => lines.filter((l) => l.msg === 'similar titles computed').length };
  }

  /** The engine's record of the refresh: a clean slate per test. */
  const engineRuns = async () =>
    (await sql<{ state: string }[]>`SELECT state::text FROM pgboss.job WHERE name = 'similarity-refresh'`).map((r) => r.state);
  beforeEach(async () => {
    await sql`DELETE FROM pgboss.job WHERE name = 'similarity-refresh'`.catch(() => {}); // no engine schema yet
  });

  it('two instances starting together compute once: the engine holds one run for the period', async () => {
    const a = await instance();
    const b = await instance();
    try {
      await Promise.all([a.refresher.start(a.scheduler), b.refresher.start(b.scheduler)]);
      await until(async () => (await engineRuns()).join() === 'completed');
      expect(a.computed() + b.computed()).toBe(1);
      expect(await similar(101)).toEqual([[102, 0.866], [105, 0.816]]);
      const computed = [...a.lines, ...b.lines].find((l) => l.msg === 'similar titles computed');
      expect(computed).toMatchObject({ titles: 4, events: 64, users: 6, ms: expect.any(Number), cpuMs: expect.any(Number), forced: false });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('recomputes when the data set is replaced, although the stored lists are fresh: once for all instances', async () => {
    const a = await instance();
    const b = await instance();
    try {
      await Promise.all([a.refresher.start(a.scheduler), b.refresher.start(b.scheduler)]);
      await until(async () => a.computed() + b.computed() === 1);
      const before = await similar(103);
      await watch({ 8: [103, 104], 9: [103, 104] });
      // The dataset NOTIFY reaches every instance: each asks for a run.
      a.refresher.datasetReplaced(a.scheduler);
      b.refresher.datasetReplaced(b.scheduler);
      await until(async () => (await engineRuns()).filter((s) => s === 'completed').length === 3);
      expect(a.computed() + b.computed()).toBe(2);
      const skipped = [...a.lines, ...b.lines].filter((l) => l.msg === 'similar titles: round skipped, they were computed after the reseed');
      expect(skipped).toHaveLength(1);
      expect(await similar(103)).not.toEqual(before);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('computes at start and again every interval', async () => {
    const a = await instance(1);
    try {
      await a.refresher.start(a.scheduler);
      await until(async () => a.computed() >= 2);
    } finally {
      await a.stop();
    }
    expect(await similar(103)).toEqual([[102, 0.577]]);
  });

  it('stop() abandons a running computation: the stored lists stay whole', async () => {
    await runSimilarityJob(sql);
    await sql`UPDATE content_similarity SET computed_at = computed_at - interval '1 day'`;
    const before = await storedRows();
    await watch({ 8: [103, 104] });

    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const r = new SimilarityRefresher({ databaseUrl: db.url, intervalS: 3600, log });
    // SHARE lets the job read but holds its DELETE: stop() then finds it inside its write transaction.
    const blocker = await sql.reserve();
    await blocker`BEGIN`;
    await blocker`LOCK TABLE content_similarity IN SHARE MODE`;
    const round = r.refresh();
    try {
      await until(async () => (await jobSessions('Lock')) === 1);
      await r.stop();
      expect(await round).toBeUndefined();
      expect(lines.map((l) => l.msg)).toContain('similar titles: computation abandoned (shutting down)');
    } finally {
      await blocker`COMMIT`;
      blocker.release();
    }
    await until(async () => (await jobSessions()) === 0);
    expect(await storedRows()).toEqual(before);
    expect(await runSimilarityJob(sql)).toMatchObject({ ran: true });
    expect(await similar(104)).toEqual([[103, 0.577]]);
  });
});

/** The job threads' sessions on this database (optionally only those waiting on `waitEventType`). */
async function jobSessions(waitEventType?: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'recommendation-service-similarity'
      AND (${waitEventType ?? null}::text IS NULL OR wait_event_type = ${waitEventType ?? null}::text)`;
  return row!.n;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('condition not reached within 10 s');
}
