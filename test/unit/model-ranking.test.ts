/**
 * Each model's ranking on planted data: two groups of users with disjoint tastes, the larger group's titles
 * the most popular overall. A user of the smaller group has some of their group's titles left unwatched:
 * the learned models (item-cf, als, and auto's validated choice) must recommend exactly those, ranked
 * through the serving path (offline.ts), while popularity recommends the other group's titles.
 */
import { describe, expect, it } from 'vitest';
import type { CatalogSnapshot } from '../../src/domain/catalog-columns.js';
import { buildInteractions, type Interactions, type UserEvents } from '../../src/recommenders/interactions.js';
import { rankOffline, signalsFromRows } from '../../src/recommenders/offline.js';
import { tablesFor, type ModelName } from '../../src/recommenders/tables.js';
import { popularityCatalog, trainModel } from '../../src/recommenders/training.js';
import type { TrainedModel } from '../../src/recommenders/trained-model.js';

/** Titles 1–12 are group A's taste, 101–112 group B's; B has twice the users, so its titles are the most popular. */
const A_TITLES = Array.from({ length: 12 }, (_, i) => 1 + i);
const B_TITLES = Array.from({ length: 12 }, (_, i) => 101 + i);
const WATCHED_PER_USER = 8;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
}

/** Each user watches WATCHED_PER_USER titles of their group's, a different random subset per user, in time order. */
function plantedGroups(): { data: Interactions; groupOf: Map<number, 'A' | 'B'> } {
  const random = rng(7);
  const users: UserEvents[] = [];
  const groupOf = new Map<number, 'A' | 'B'>();
  const add = (userId: number, group: 'A' | 'B', titles: number[]) => {
    const shuffled = [...titles].sort(() => random() - 0.5).slice(0, WATCHED_PER_USER);
    users.push({ userId, contentIds: shuffled, timesMs: shuffled.map((_, e) => Date.UTC(2026, 0, 1) + (userId * 100 + e) * 60_000) });
    groupOf.set(userId, group);
  };
  for (let u = 1; u <= 40; u++) add(u, 'A', A_TITLES);
  for (let u = 41; u <= 120; u++) add(u, 'B', B_TITLES);
  return { data: buildInteractions(users), groupOf };
}

const { data, groupOf } = plantedGroups();
const model: TrainedModel = trainModel(data, { seed: 1 });
const catalog: CatalogSnapshot = popularityCatalog(data);

/** The model's top `keep` for user index `u`, as served (no noise, whole catalog). */
function topFor(name: ModelName, u: number, keep: number): number[] {
  return rankOffline(signalsFromRows(data, u, catalog), tablesFor(name, model, catalog), { keep, candidatePool: 0, nowMs: 0 });
}

/** A user's unwatched titles of their own group. */
function unseenOwn(u: number): Set<number> {
  const own = groupOf.get(data.userIds[u]!) === 'A' ? A_TITLES : B_TITLES;
  const watched = new Set(signalsFromRows(data, u, catalog).watched);
  return new Set(own.filter((id) => !watched.has(id)));
}

const groupAUsers = Array.from(data.userIds.keys()).filter((u) => groupOf.get(data.userIds[u]!) === 'A');
const groupBUsers = Array.from(data.userIds.keys()).filter((u) => groupOf.get(data.userIds[u]!) === 'B');

describe.each(['item-cf', 'als', 'auto'] as const)('MODEL=%s', (name) => {
  it('recommends the group\'s unseen titles first, to every user of both groups', () => {
    for (const u of [...groupAUsers, ...groupBUsers]) {
      const unseen = unseenOwn(u);
      expect(new Set(topFor(name, u, unseen.size))).toEqual(unseen);
    }
  });
});

it('auto serves a learned choice here, fitted on validation (popularity scores worst on it)', () => {
  expect(model.choice.kind).not.toBe('popularity');
  const popularity = model.validation.find((row) => row.model === 'popularity')!;
  expect(model.validation[0]!.ndcg_at_10).toBeGreaterThan(popularity.ndcg_at_10);
});

it('popularity recommends the larger group\'s titles to the smaller group instead', () => {
  for (const u of groupAUsers) {
    const top = topFor('popularity', u, unseenOwn(u).size);
    expect(top.length).toBe(unseenOwn(u).size);
    expect(top.every((id) => B_TITLES.includes(id))).toBe(true);
  }
});

it('the seed\'s formula (no genres here: popularity and recency alone) also misses the smaller group\'s taste', () => {
  const u = groupAUsers[0]!;
  const top = topFor('heuristic', u, unseenOwn(u).size);
  expect(top.some((id) => unseenOwn(u).has(id))).toBe(false);
});
