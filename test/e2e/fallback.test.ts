/** Model failure: every request still gets a list, ranked by popularity, and says so. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, eligibleTitles } from '../support/db.js';
import { startServer, type RunningServer } from '../support/server.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  // No REDIS_URL: the in-process cache only, the configuration `npm start` uses by default.
  server = await startServer({
    DATABASE_URL: db.url,
    MODEL_FAILURE_RATE: '1',
    BREAKER_VOLUME_THRESHOLD: '5',
    // Once open, a breaker stays open for the whole file (no half-open probe, however slow this machine is):
    // "skips the model" can then be asserted exactly.
    BREAKER_RESET_MS: '600000',
    FALLBACK_CACHE_TTL: '1',
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

it('answers 200 with the popularity fallback when the model always fails', async () => {
  for (let userId = 1; userId <= 20; userId++) {
    const r = await server.get(`/users/${userId}/recommendations?limit=10`, true);
    expect(r.status).toBe(200);
    expect(r.json.metadata.source).toBe('popularity_fallback');
    // The same rules as the model's list: unwatched, not dismissed, visible, available to the user.
    const expected = (await eligibleTitles(db.sql, userId)).slice(0, 10);
    expect(r.json.recommendations.map((x: { content_id: number }) => x.content_id)).toEqual(expected.map((e) => e.id));
    expect(r.json.recommendations.map((x: { score: number }) => x.score)).toEqual(
      expected.map((e) => Math.round(e.p * 1000) / 1000),
    );
  }
});

const counter = (text: string, result: string) =>
  Number(new RegExp(`^model_calls_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

/** Calls that reached the model, whatever their result (a rejection by the breaker is no call). */
const modelCalls = (text: string) => counter(text, 'success') + counter(text, 'failure') + counter(text, 'timeout');
const breakersOpen = (text: string) => [...text.matchAll(/^model_breaker_state\{worker="\d"\} 2$/gm)].length;

it('opens the breaker after repeated failures: later requests skip the model and still get the fallback', async () => {
  // 20 users over 2 workers: one worker may have seen fewer than the volume threshold of 5. Genre lists
  // (not cached yet) go on failing until both workers' breakers are open, as /metrics reports them.
  let opened = await server.get('/metrics');
  const genres = ['drama', 'comedy', 'action', 'thriller', 'documentary'];
  for (let i = 0; i < 200 && breakersOpen(opened.text) < 2; i++) {
    expect((await server.get(`/users/${(i % 20) + 1}/recommendations?genre=${genres[Math.floor(i / 20) % 5]}`, true)).status).toBe(200);
    opened = await server.get('/metrics');
  }
  expect(breakersOpen(opened.text)).toBe(2);
  expect(counter(opened.text, 'failure')).toBeGreaterThanOrEqual(10);
  const rejectedBefore = counter(opened.text, 'rejected');
  await new Promise((r) => setTimeout(r, 1200)); // FALLBACK_CACHE_TTL=1 s: the fallback lists expire
  for (let userId = 1; userId <= 20; userId++) {
    const r = await server.get(`/users/${userId}/recommendations`, true);
    expect(r.status).toBe(200);
    expect(r.json.metadata.source).toBe('popularity_fallback');
    expect(r.json.metadata.cache_hit).toBe(false);
  }
  const after = await server.get('/metrics');
  expect(modelCalls(after.text)).toBe(modelCalls(opened.text)); // not one call reached the model
  expect(counter(after.text, 'rejected') - rejectedBefore).toBe(20); // each of the 20 misses was refused
  expect(breakersOpen(after.text)).toBe(2);
});

it('caches a fallback list only for FALLBACK_CACHE_TTL, not the full CACHE_TTL', async () => {
  const first = await server.get('/users/1/recommendations');
  const second = await server.get('/users/1/recommendations'); // same keep-alive connection: same worker
  expect(second.json.metadata.cache_hit).toBe(true);
  expect(second.json.metadata.generated_at).toBe(first.json.metadata.generated_at);
  await new Promise((r) => setTimeout(r, 1200));
  const third = await server.get('/users/1/recommendations');
  expect(third.json.metadata.cache_hit).toBe(false);
  expect(third.json.metadata.generated_at).not.toBe(first.json.metadata.generated_at);
});
