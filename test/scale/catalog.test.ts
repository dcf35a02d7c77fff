/**
 * The in-memory catalog behind a cache miss: candidates and genres as the old all-SQL statement gave them
 * (unwatched titles by popularity, genres of the 50 most recent events), and titles added later are
 * picked up: at once when a user's history names one, else at the next reload.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Catalog } from '../../src/data/catalog.js';
import { connect, type Sql } from '../../src/data/db.js';
import { RecommendationRepo } from '../../src/data/recommendation-repo.js';
import { seed } from '../../src/data/seed.js';
import type { UserSignals } from '../../src/domain/types.js';
import { popularityRanking, scoringTask, toRecommendations } from '../../src/recommenders/heuristic.js';
import { createTestDatabase, eligibleTitles, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db.sql, { users: 200, content: 300, events: 6_000 });
  sql = connect(db.url, { max: 2 });
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

/** What the statement before the catalog computed in SQL, for one user. */
async function inSql(userId: number, pool: number) {
  const genres = await sql<{ genre: string }[]>`
    SELECT c.genre FROM user_watch_history w JOIN content c ON c.id = w.content_id
    WHERE w.user_id = ${userId} ORDER BY w.watched_at DESC, w.id DESC LIMIT 50`;
  // Unwatched titles then; now also not dismissed, not hidden, and available to the user (migration 0005).
  const candidates = (await eligibleTitles(sql, userId)).slice(0, pool);
  return { recentGenres: genres.map((g) => g.genre), candidates: candidates.map((c) => c.id) };
}

/** The genres of the recent events the snapshot knows, newest first. */
const recentGenres = (s: UserSignals) =>
  s.recent.filter((id) => s.catalog.positionOf.has(id)).map((id) => s.catalog.items[s.catalog.positionOf.get(id)!]!.genre);
/** The candidates scoring walks: the first `pool` unwatched titles of the catalog order. */
const candidates = (s: UserSignals, pool: number) =>
  toRecommendations(popularityRanking(scoringTask(s, { pool, keep: pool, nowMs: 0, noise: false })), s.catalog).map((r) => r.content_id);

it('gives every user the genres and candidates the single SQL statement gave', async () => {
  const repo = new RecommendationRepo(sql, undefined, 0, new Catalog(sql, 0));
  for (const userId of [1, 7, 50, 123, 200]) {
    const signals = (await repo.userSignals(userId))!;
    expect({ recentGenres: recentGenres(signals), candidates: candidates(signals, 100) }).toEqual(await inSql(userId, 100));
  }
  expect(await repo.userSignals(999_999)).toBeNull();
});

it('picks up a title added after the catalog was loaded', async () => {
  const catalog = new Catalog(sql, 0);
  const repo = new RecommendationRepo(sql, undefined, 0, catalog);
  await repo.userSignals(1); // loaded now
  const [{ id }] = await sql<{ id: number }[]>`
    INSERT INTO content (title, genre, popularity_score, created_at) VALUES ('Brand New', 'western', 1, now()) RETURNING id`;
  await sql`INSERT INTO users (id, age) VALUES (5000, 30)`;
  await sql`INSERT INTO user_watch_history (user_id, content_id) VALUES (5000, ${id})`;
  await new Promise((r) => setTimeout(r, 1100)); // an early reload happens at most once a second

  // The history names a title the snapshot lacks: this miss skips its genre and asks for a reload…
  expect(recentGenres((await repo.userSignals(5000))!)).toEqual([]);
  await catalog.reload(); // (the reload it asked for, awaited here instead of racing it)
  const after = (await repo.userSignals(5000))!;
  expect(recentGenres(after)).toEqual(['western']);
  // …and the new, most popular title is a candidate for everyone who has not watched it.
  expect(candidates((await repo.userSignals(2))!, 10)).toContain(id);
  expect(candidates(after, 10)).not.toContain(id);
});

it('turns a stream of announced changes into at most two loads a second, the last change included', async () => {
  const catalog = new Catalog(sql, 0);
  await catalog.current();
  let loads = 0;
  catalog.onSnapshot = () => (loads += 1);
  const added: number[] = [];
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    const [{ id }] = await sql<{ id: number }[]>`
      INSERT INTO content (title, genre, popularity_score) VALUES (${`Stream ${i}`}, 'drama', 0.5) RETURNING id`;
    added.push(Number(id));
    catalog.changed(); // what each content NOTIFY does
    await new Promise((r) => setTimeout(r, 50));
  }
  const last = added.at(-1)!;
  await expect.poll(async () => (await catalog.current()).positionOf.has(last), { timeout: 2000, interval: 20 }).toBe(true);
  const seconds = (Date.now() - started) / 1000;
  expect(loads).toBeLessThanOrEqual(Math.ceil(seconds * 2) + 1);
  expect(loads).toBeGreaterThanOrEqual(2);
  catalog.close();
});
