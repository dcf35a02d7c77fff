import { describe, expect, it } from 'vitest';
import { coWatchSimilarity, type SimilarityOptions, type WatchLists } from '../../src/recommenders/co-watch.js';

/** Histories by user id, each user's content ids newest first. */
function watchLists(histories: Record<number, number[]>, extraTitles: number[] = []): WatchLists {
  const titleIds: number[] = [];
  const index = new Map<number, number>();
  const titleIndex = (id: number): number => {
    let at = index.get(id);
    if (at === undefined) index.set(id, (at = titleIds.push(id) - 1));
    return at;
  };
  extraTitles.forEach(titleIndex);
  const users = Object.entries(histories);
  const userStart = [0];
  const userTitles: number[] = [];
  for (const [, titles] of users) {
    for (const id of titles) userTitles.push(titleIndex(id));
    userStart.push(userTitles.length);
  }
  return {
    titleIds: Float64Array.from(titleIds),
    userIds: Float64Array.from(users.map(([id]) => Number(id))),
    userStart: Int32Array.from(userStart),
    userTitles: Int32Array.from(userTitles),
  };
}

/** Content id → its similar titles as [content id, score] pairs, best first. */
function similarByTitle(histories: Record<number, number[]>, opts: SimilarityOptions = {}) {
  const lists = watchLists(histories);
  const result = coWatchSimilarity(lists, opts);
  const byTitle = new Map<number, [number, number][]>();
  result.titles.forEach((t, r) => {
    const pairs: [number, number][] = [];
    for (let p = result.start[r]!; p < result.start[r + 1]!; p++) {
      pairs.push([lists.titleIds[result.similar[p]!]!, result.milli[p]! / 1000]);
    }
    byTitle.set(lists.titleIds[t]!, pairs);
  });
  return { byTitle, work: result.work, events: result.events };
}

// n(101) = 3, n(102) = 4, n(103) = 3, n(104) = 2; co(101,102) = 3, co(102,103) = 2, every other pair 1.
const SMALL = {
  1: [101, 102, 103],
  2: [101, 102],
  3: [101, 102, 104],
  4: [103, 104],
  5: [102, 103],
};

describe('cosine over users', () => {
  it('scores co(i,j) / sqrt(n_i · n_j), rounded to 3 decimals, best first', () => {
    const { byTitle } = similarByTitle(SMALL, { minCoWatchers: 1 });
    expect(byTitle.get(101)).toEqual([[102, 0.866], [104, 0.408], [103, 0.333]]); // 3/√12, 1/√6, 1/√9
    expect(byTitle.get(102)).toEqual([[101, 0.866], [103, 0.577], [104, 0.354]]); // 3/√12, 2/√12, 1/√8
    expect(byTitle.get(104)).toEqual([[101, 0.408], [103, 0.408], [102, 0.354]]); // tie: lower id first
  });

  it('drops pairs fewer than two users watched (one shared user would score two obscure titles 1.0)', () => {
    const { byTitle } = similarByTitle(SMALL);
    expect(byTitle.get(101)).toEqual([[102, 0.866]]);
    expect(byTitle.get(102)).toEqual([[101, 0.866], [103, 0.577]]);
    expect(byTitle.get(103)).toEqual([[102, 0.577]]);
    expect(byTitle.has(104)).toBe(false); // nothing similar enough: no row at all
    expect(similarByTitle({ 1: [7, 8] }, { minCoWatchers: 1 }).byTitle.get(7)).toEqual([[8, 1]]);
  });

  it('breaks equal scores by content id ascending, whatever the input order', () => {
    // 200 is as similar to 300 as to 100: both pairs co-watched by the same two users.
    const { byTitle } = similarByTitle({ 1: [300, 200, 100], 2: [100, 200, 300] });
    expect(byTitle.get(200)).toEqual([[100, 1], [300, 1]]);
  });

  it('keeps the best k per title', () => {
    // 60 users all watched 1; user u also watched 2 … u+1. Title m then has 62 − m watchers, all of them
    // co-watchers of 1: sim(1, m) = sqrt((62 − m) / 60), falling with m; 61 has one co-watcher only.
    const histories: Record<number, number[]> = {};
    for (let u = 1; u <= 60; u++) histories[u] = [1, ...Array.from({ length: u }, (_, i) => i + 2)];
    const top = similarByTitle(histories, { k: 5, window: 100 }).byTitle.get(1)!;
    expect(top.map(([id]) => id)).toEqual([2, 3, 4, 5, 6]);
    expect(top.map(([, score]) => score)).toEqual([1, 0.992, 0.983, 0.975, 0.966]);
    const all = similarByTitle(histories, { window: 100 }).byTitle.get(1)!;
    expect(all).toHaveLength(50); // K = 50 of the 59 titles with two or more co-watchers
    expect(all.at(-1)).toEqual([51, 0.428]);
  });

  it('counts a re-watch once and only the window of most recent events', () => {
    // User 1 re-watched 10; its oldest event (30) is outside a window of 3.
    const histories = { 1: [10, 20, 10, 30], 2: [10, 20, 30], 3: [20, 30] };
    const { byTitle, events } = similarByTitle(histories, { window: 3, minCoWatchers: 1 });
    expect(events).toBe(2 + 3 + 2); // user 1: 10, 20 (10 again and 30 are dropped)
    // n(10) = 2, n(20) = 3, n(30) = 2 (users 2 and 3): co(10,30) = 1.
    expect(byTitle.get(10)).toEqual([[20, 0.816], [30, 0.5]]);
    expect(byTitle.get(30)).toEqual([[20, 0.816], [10, 0.5]]);
  });
});

describe('bounds', () => {
  it('a hub user who watched everything adds at most the window of titles', () => {
    const everything = Array.from({ length: 1000 }, (_, i) => i + 1); // newest first: 1 … 1000
    const histories: Record<number, number[]> = { 1: everything };
    for (let u = 2; u <= 11; u++) histories[u] = [1, 2, 999, 1000];
    const { byTitle, work, events } = similarByTitle(histories, { window: 50 });
    expect(events).toBe(50 + 10 * 4);
    // 999 and 1000 are outside the hub's window: their audience is the 10 light users only.
    expect(byTitle.get(1000)).toEqual([[999, 1], [1, 0.953], [2, 0.953]]);
    expect(byTitle.has(500)).toBe(false); // only the hub watched it: no pair reaches two users
    // Titles 1 and 2: the hub's 50 + 10 × 4; titles 3..50: the hub's 50; 999 and 1000: 10 × 4.
    // Without the window the hub alone would cost 1000 × 1000.
    expect(work).toBe(2 * (50 + 40) + 48 * 50 + 2 * 40);
  });

  it('a title watched by everyone costs at most usersPerTitle × window, and its sample is unbiased', () => {
    // 4000 users all watched 1; the LOWER half of the ids also watched 2. Exact sim(1, 2) = 2000/√(4000·2000).
    const histories: Record<number, number[]> = {};
    for (let u = 1; u <= 4000; u++) histories[u] = u <= 2000 ? [1, 2] : [1];
    const opts = { usersPerTitle: 200 };
    const { byTitle, work } = similarByTitle(histories, opts);
    // Title 1's co-counts come from 200 watchers of 2 titles at most; title 2's from 200 watchers too.
    expect(work).toBeLessThanOrEqual(2 * 200 * 2);
    const [[id, score]] = byTitle.get(1)! as [[number, number]];
    expect(id).toBe(2);
    // A lowest-ids-first sample would be all watchers of 2 and claim sim 1 (the estimate clamps at 1).
    expect(Math.abs(score - Math.SQRT1_2)).toBeLessThan(0.08);
    // Title 2 has 2000 watchers, all of whom watched 1: co = its whole sample, exact.
    expect(byTitle.get(2)).toEqual([[1, 0.707]]);
    expect(similarByTitle(histories, opts).byTitle).toEqual(byTitle); // deterministic
  });

  it('total work stays under titles × usersPerTitle × window on a dense history', () => {
    const histories: Record<number, number[]> = {};
    for (let u = 1; u <= 3000; u++) histories[u] = Array.from({ length: 80 }, (_, i) => ((u * 7 + i * 13) % 120) + 1);
    const { work } = similarByTitle(histories, { usersPerTitle: 100, window: 50 });
    expect(work).toBeGreaterThan(0);
    expect(work).toBeLessThanOrEqual(120 * 100 * 50);
  });
});

describe('input checks', () => {
  it('rejects a title index outside the titles', () => {
    const lists = watchLists({ 1: [1, 2] });
    lists.userTitles[1] = 5;
    expect(() => coWatchSimilarity(lists)).toThrow(RangeError);
  });
});
