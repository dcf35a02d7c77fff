/**
 * The trained model's life in a running cluster (issue 25 "Done when"), in order on one database:
 * training runs in the background while requests are answered; a watch event changes the learned model's
 * next list at once (ALS fold-in, no retraining); a restart serves the stored model without retraining;
 * events grown by MODEL_RETRAIN_SHARE and a reseed each bring a new model, whose swap retires cached
 * lists; a training run that fails keeps the old model and says so in /metrics and the log.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Catalog } from '../../src/data/catalog.js';
import { connect, type Sql } from '../../src/data/db.js';
import { loadModel } from '../../src/data/model-repo.js';
import { RecommendationRepo } from '../../src/data/recommendation-repo.js';
import { seed } from '../../src/data/seed.js';
import { scoringTask } from '../../src/recommenders/heuristic.js';
import { rankTask } from '../../src/recommenders/ranking.js';
import { tablesFor } from '../../src/recommenders/tables.js';
import type { TrainedModel } from '../../src/recommenders/trained-model.js';
import { createTestDatabase, eligibleTitles, type TestDatabase } from '../support/db.js';
import { idsOf, modelVersions, perWorker, until, untilModelAfter } from '../support/models.js';
import { emptyRedisDb } from '../support/redis.js';
import { startServer, type RunningServer } from '../support/server.js';

const TRAINING_STARTED = '"training the recommendation models in the background"';
const TRAINED = '"model trained and announced"';
/** Big enough that a training run takes seconds on a shared 2-core machine. */
const LARGE = { users: 1_000, content: 600, events: 30_000 };
const SHARE = 0.05;

let db: TestDatabase;
let sql: Sql;
let redisUrl: string;
let server: RunningServer;
const env = () => ({ DATABASE_URL: db.url, REDIS_URL: redisUrl, MODEL: 'als', MODEL_RETRAIN_SHARE: String(SHARE), MODEL_CHECK_S: '1' });

beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db.sql, LARGE);
  sql = connect(db.url, { max: 2 });
  redisUrl = await emptyRedisDb(10);
});

afterAll(async () => {
  await server?.stop();
  await sql?.end();
  await db?.drop();
});

/** Lines of the server's log that are JSON, parsed. */
const logLines = (): Record<string, unknown>[] =>
  server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

let first = 0;

it('trains in the background after start-up while every request is answered, then serves the new model', async () => {
  server = await startServer(env());
  await until(server, 'training to start', async () => server.output().includes(TRAINING_STARTED), Boolean, 60_000);
  const during: number[] = [];
  let userId = 1;
  // Requests (each user a cache miss, fresh connections over both workers) for as long as training runs.
  while (!server.output().includes(TRAINED)) {
    const r = await server.get(`/users/${userId++}/recommendations?limit=10`, true);
    expect(r.status).toBe(200);
    expect(r.json.recommendations).toHaveLength(10);
    if (!server.output().includes(TRAINED)) during.push(userId);
    if (userId > LARGE.users) userId = 1;
    // Paced, not flat out: on two cores a request loop would starve the training thread (nice 19) it waits for.
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(during.length).toBeGreaterThan(20);
  first = await untilModelAfter(server, 0);
  expect(first).toBeGreaterThan(0);
}, 300_000);

it('changes the ALS list at once after a watch event (fold-in from the current history, no retraining)', async () => {
  const userId = 42;
  const model = (await loadModel(sql, first))!.model;
  const before = idsOf(await server.get(`/users/${userId}/recommendations?limit=50`, true));
  expect(before).toEqual(await offlineList(model, userId));

  // A title the list does not show yet, with a strong latent profile: watching it should pull its kind in.
  const shown = new Set(before);
  const candidates = (await eligibleTitles(db.sql, userId)).filter((e) => !shown.has(e.id));
  const watched = candidates.map((e) => e.id).sort((a, b) => norm(model, b) - norm(model, a))[0]!;
  expect((await server.post(`/users/${userId}/watch-history`, { content_id: watched }, true)).status).toBe(201);
  const after = idsOf(await server.get(`/users/${userId}/recommendations?limit=50`, true));

  expect(await modelVersions(server)).toEqual([first, first]);
  expect(after).toEqual(await offlineList(model, userId));
  // More changed than the watched title's removal: the user's factor moved towards it …
  const entered = after.filter((id) => !shown.has(id));
  const left = before.filter((id) => !after.includes(id));
  expect(entered.length).toBeGreaterThan(2);
  // … so what entered the list is closer to the watched title in the latent space than what left it.
  const closeness = (ids: number[]) => ids.reduce((s, id) => s + dot(model, id, watched), 0) / ids.length;
  expect(closeness(entered)).toBeGreaterThan(closeness(left));
});

it('serves the stored model after a restart without retraining', async () => {
  await server.stop();
  server = await startServer(env());
  expect(await modelVersions(server)).toEqual([first, first]);
  const loaded = logLines().filter((l) => l.msg === 'trained model loaded: cached lists retired');
  expect(loaded.map((l) => l.id)).toEqual([first, first]);
  expect((await server.get('/users/7/recommendations', true)).json.metadata.source).toBe('model');
  // Nothing trains until the data grows (next test): its first training line names the growth.
});

it('retrains once the events grew by MODEL_RETRAIN_SHARE, and the swap retires the cached lists', async () => {
  const userId = 11;
  const cached = await server.get(`/users/${userId}/recommendations?limit=50`, true);
  await until(server, 'a cached list', () => server.get(`/users/${userId}/recommendations?limit=50`, true), (r) => r.json.metadata.cache_hit === true);
  // SHARE of the events the model saw, as bulk POST /events (re-watches count: events are events), none of `userId`'s.
  const visible = (await db.sql<{ id: number }[]>`SELECT id::int FROM content WHERE NOT hidden ORDER BY id`).map((c) => c.id);
  const pairs = Array.from({ length: Math.ceil(LARGE.events * SHARE) + 10 }, (_, n) => ({
    user_id: 1 + (n % (LARGE.users - 1)) + (1 + (n % (LARGE.users - 1)) >= userId ? 1 : 0),
    content_id: visible[(n * 7919) % visible.length]!,
  }));
  for (let at = 0; at < pairs.length; at += 2000) {
    expect((await server.post('/events', pairs.slice(at, at + 2000), true)).status).toBe(201);
  }
  await untilModelAfter(server, first);
  const started = logLines().filter((l) => l.msg === 'training the recommendation models in the background');
  expect(started.map((l) => l.reason)).toEqual([`watch events grew by ${SHARE * 100} % or more`]);
  const after = await server.get(`/users/${userId}/recommendations?limit=50`, true);
  expect(after.json.metadata.cache_hit).toBe(false);
  expect(Date.parse(after.json.metadata.generated_at)).toBeGreaterThan(Date.parse(cached.json.metadata.generated_at));
}, 300_000);

it('retrains at once after a reseed', async () => {
  const [served] = await modelVersions(server);
  await seed(db.sql, { users: 300, content: 300, events: 9_000, reset: true });
  const reseeded = await untilModelAfter(server, served!);
  const reasons = logLines().filter((l) => l.msg === 'training the recommendation models in the background').map((l) => l.reason);
  expect(reasons.at(-1)).toBe('data set replaced (reseed or import)');
  expect((await loadModel(sql, reseeded))!.model.stats.users).toBe(300);
}, 300_000);

it('keeps the old model and says so when a training run fails, and recovers with the next one', async () => {
  const [kept] = await modelVersions(server);
  // The database refuses the new model (as a full disk or a revoked grant would): saving it fails.
  await db.sql`ALTER TABLE trained_models ADD CONSTRAINT refuse_new_models CHECK (false) NOT VALID`;
  try {
    await seed(db.sql, { users: 300, content: 300, events: 9_000, seed: 43, reset: true });
    await until(server, 'model_training_failed 1 on every worker', async () => perWorker((await server.get('/metrics')).text, 'model_training_failed'),
      (v) => v.length === 2 && v.every((x) => x === 1));
    expect(await modelVersions(server)).toEqual([kept, kept]);
    await until(server, 'the primary to log the failure', async () => server.output(), (out) => out.includes('"model training failed: the previous model keeps serving"'));
    const r = await server.get('/users/5/recommendations?limit=10', true);
    expect(r.status).toBe(200);
    expect(r.json.metadata.source).toBe('model');
  } finally {
    await db.sql`ALTER TABLE trained_models DROP CONSTRAINT refuse_new_models`;
  }
  await untilModelAfter(server, kept!);
  expect(perWorker((await server.get('/metrics')).text, 'model_training_failed')).toEqual([0, 0]);
}, 300_000);

/** The list the service should serve `userId` now: their current signals ranked by `model` through the serving code. */
async function offlineList(model: TrainedModel, userId: number): Promise<number[]> {
  const repo = new RecommendationRepo(sql, undefined, 0, new Catalog(sql, 0));
  const signals = (await repo.userSignals(userId))!;
  const task = scoringTask(signals, { pool: 100, keep: 50, nowMs: Date.now(), noise: false, model: tablesFor('als', model, signals.catalog) });
  return rankTask(task).positions.map((p) => signals.catalog.ids[p]!);
}

function factor(model: TrainedModel, contentId: number): Float32Array {
  const i = model.itemIds.indexOf(contentId);
  const k = model.als.factors;
  return i < 0 ? new Float32Array(k) : model.als.itemFactors.subarray(i * k, (i + 1) * k);
}

function dot(model: TrainedModel, a: number, b: number): number {
  const x = factor(model, a);
  const y = factor(model, b);
  return x.reduce((s, v, i) => s + v * y[i]!, 0);
}

const norm = (model: TrainedModel, id: number): number => Math.sqrt(dot(model, id, id));
