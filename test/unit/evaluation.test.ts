/**
 * The evaluation protocol (docs/quality.md): what is held out, that training never sees it, that the
 * metrics mean what they say, and that the evaluation tells a good model from a broken one.
 */
import { describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/domain/types.js';
import { evaluate } from '../../src/recommenders/evaluation.js';
import { buildInteractions, type Interactions, type UserEvents } from '../../src/recommenders/interactions.js';
import { MetricAccumulator } from '../../src/recommenders/metrics.js';
import { heldOutCount, temporalSplit } from '../../src/recommenders/split.js';
import { trainModel } from '../../src/recommenders/training.js';
import type { TrainedModel } from '../../src/recommenders/trained-model.js';

const DAY = 86_400_000;

function titles(n: number): Candidate[] {
  return Array.from({ length: n }, (_, i) => ({ id: i + 1, title: `t${i + 1}`, genre: 'drama', popularity: 0, createdAtMs: 0 }));
}

/** Users watching `ids` in this order, one a day. */
function user(userId: number, ids: number[]): UserEvents {
  return { userId, contentIds: ids, timesMs: ids.map((_, k) => k * DAY) };
}

describe('the temporal hold-out', () => {
  it('holds out the chronologically last 10 % of each user (at least one) and skips users with fewer than two', () => {
    expect([0, 1, 2, 9, 10, 15, 100].map((n) => heldOutCount(n, 0.1))).toEqual([0, 0, 1, 1, 1, 2, 10]);
    const data = buildInteractions([user(1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]), user(2, [5]), user(3, [3, 1])], [1, 2, 3]);
    const split = temporalSplit(data);
    const ids = (u: number) => Array.from(split.test[u]!, (i) => data.itemIds[i]);
    expect(ids(0)).toEqual([19, 20]);
    expect(ids(1)).toEqual([]);
    expect(ids(2)).toEqual([1]);
    expect(Array.from(split.evaluated)).toEqual([0, 2]);
    // Training keeps everything before the cut, and nothing after it.
    const trainOf = (u: number) => Array.from(split.train.items.subarray(split.train.userStart[u], split.train.userStart[u + 1]), (i) => data.itemIds[i]);
    expect(trainOf(0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
    expect(trainOf(1)).toEqual([5]);
    expect(trainOf(2)).toEqual([3]);
  });

  it('with a global time cut, holds out what happened at or after it', () => {
    const data = buildInteractions([user(1, [1, 2, 3, 4]), user(2, [5, 6])]);
    const split = temporalSplit(data, { cutMs: 2 * DAY });
    expect(Array.from(split.test[0]!, (i) => data.itemIds[i])).toEqual([3, 4]);
    expect(Array.from(split.test[1]!, (i) => data.itemIds[i])).toEqual([]);
  });
});

describe('metrics', () => {
  it('scores a list against held-out titles: HR, NDCG with the ideal over min(10, |test|), Recall, coverage, novelty', () => {
    const acc = new MetricAccumulator(100, (id) => id);
    acc.add([7, 3, 9], new Set([3, 50]));
    acc.add([1, 2], new Set([8]));
    const r = acc.result();
    expect(r.hr_at_10).toBe(0.5);
    // User 1: a hit at rank 2 of an ideal of two hits.
    expect(r.ndcg_at_10).toBeCloseTo((1 / Math.log2(3) / (1 + 1 / Math.log2(3))) / 2, 12);
    expect(r.recall_at_10).toBe(0.25);
    expect(r.coverage_at_10).toBe(0.05);
    expect(r.novelty).toBe((7 + 3 + 9 + 1 + 2) / 5);
  });
});

/**
 * Pairs of users (u, v) who share one early title X; each of them later watched a title T that nobody
 * watched in training. Only a model that saw u's held-out T together with X could recommend T to v.
 */
function pairsData(pairs: number): { data: Interactions; titles: Candidate[] } {
  const users: UserEvents[] = [];
  const common = Array.from({ length: 20 }, (_, i) => i + 1);
  let next = 100;
  for (let p = 0; p < pairs; p++) {
    const x = next++;
    const t = next++;
    // Nine training events each (the common titles vary), then T: the last 10 % of ten events.
    users.push(user(2 * p + 1, [x, ...common.slice(p % 10, (p % 10) + 8), t]));
    users.push(user(2 * p + 2, [x, ...common.slice((p + 3) % 10, ((p + 3) % 10) + 8), t]));
  }
  const all = titles(next - 1);
  return { data: buildInteractions(users, all.map((c) => c.id)), titles: all };
}

describe('training never sees a held-out event', () => {
  it('hands the models only training rows, and a title seen only in held-out events stays unpredictable', () => {
    const { data, titles: catalog } = pairsData(40);
    let seen: Interactions | undefined;
    const report = evaluate(
      { events: data, titles: catalog, users: new Map() },
      {
        candidatePool: 0,
        defaultModel: 'auto',
        train: (train) => {
          seen = train;
          return trainModel(train);
        },
      },
    );
    // Every held-out (user, title) pair is absent from what training received.
    const split = temporalSplit(data);
    for (const u of split.evaluated) {
      const rows = new Set(seen!.items.subarray(seen!.userStart[u], seen!.userStart[u + 1]));
      for (const i of split.test[u]!) expect(rows.has(i)).toBe(false);
    }
    // Each T was watched only in held-out events: with nothing leaked, no model can rank it.
    for (const row of report.models) expect(row.hr_at_10, row.model).toBe(0);
  });

  it('would show a leak: trained on every event, the neighbours model finds T for everyone', () => {
    const { data, titles: catalog } = pairsData(40);
    const report = evaluate({ events: data, titles: catalog, users: new Map() }, { candidatePool: 0, defaultModel: 'auto', train: () => trainModel(data) });
    expect(report.models.find((m) => m.model === 'item-cf')!.hr_at_10).toBeGreaterThan(0.9);
  });
});

/** Two audiences with disjoint tastes over 100 titles each; every user watches 20 of their side's titles. */
function tastesData(usersPerSide: number): { data: Interactions; titles: Candidate[] } {
  let s = 7;
  const random = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const users: UserEvents[] = [];
  for (let u = 0; u < 2 * usersPerSide; u++) {
    const side = u % 2;
    const picked = new Set<number>();
    while (picked.size < 20) picked.add(side * 100 + 1 + Math.floor(random() ** 2 * 100));
    users.push(user(u + 1, [...picked]));
  }
  const all = titles(200);
  return { data: buildInteractions(users, all.map((c) => c.id)), titles: all };
}

describe('the evaluation tells a good model from a broken one', () => {
  it('puts learned models far above chance and a model with shuffled scores at chance', () => {
    const { data, titles: catalog } = tastesData(150);
    const good = evaluate({ events: data, titles: catalog, users: new Map() }, { candidatePool: 0, defaultModel: 'auto' });
    const ndcg = (r: typeof good, model: string) => r.models.find((m) => m.model === model)!.ndcg_at_10;
    // Random scores: the latent factors replaced by noise (a broken model), the rest intact.
    const broken = evaluate(
      { events: data, titles: catalog, users: new Map() },
      {
        candidatePool: 0,
        defaultModel: 'auto',
        train: (train): TrainedModel => {
          const model = trainModel(train);
          let s = 11;
          for (let i = 0; i < model.als.itemFactors.length; i++) model.als.itemFactors[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
          return model;
        },
      },
    );
    // Chance: 2 held-out titles among ~180 unwatched ones → about 0.11 of users hit one in 10 guesses.
    expect(ndcg(broken, 'als')).toBeLessThan(0.08);
    expect(ndcg(good, 'als')).toBeGreaterThan(3 * ndcg(broken, 'als'));
    expect(ndcg(good, 'item-cf')).toBeGreaterThan(3 * ndcg(broken, 'als'));
    expect(good.default).toBe('auto');
    expect(good.models.map((m) => m.model)).toEqual(['heuristic', 'popularity', 'item-cf', 'als', 'auto']);
  });
});
