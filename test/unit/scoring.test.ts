import { describe, expect, it } from 'vitest';
import { catalogSnapshot } from '../../src/domain/catalog-columns.js';
import type { Candidate, Recommendation, UserSignals } from '../../src/domain/types.js';
import {
  popularityRanking,
  rankCatalog,
  recencyFactor,
  round3,
  scoringTask,
  taskSize,
  toRecommendations,
} from '../../src/recommenders/heuristic.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 0, 1);

function candidate(id: number, popularity: number, genre: string, ageDays: number): Candidate {
  return { id, title: `Title ${id}`, genre, popularity, createdAtMs: NOW - ageDays * DAY };
}

/** 3 action + 2 drama events: action 0.6, drama 0.4. */
const HISTORY = ['action', 'drama', 'action', 'drama', 'action'];

/**
 * A user whose recent history is one watched title per genre in `recentGenres` (ids from 1,000,000 up,
 * in the catalog but watched, so never candidates) and whose candidates are `candidates`.
 */
function signals(candidates: Candidate[], recentGenres = HISTORY, extraWatched: number[] = []): UserSignals {
  const history = recentGenres.map((genre, i) => ({ id: 1_000_000 + i, title: 'watched', genre, popularity: 0, createdAtMs: NOW }));
  const catalog = catalogSnapshot([...candidates, ...history]);
  const watched = [...history.map((t) => t.id), ...extraWatched];
  return { userId: 1, catalog, recent: history.map((t) => t.id), watched, dismissed: [], audience: { tier: 0, country: null } };
}

interface Options {
  keep: number;
  nowMs: number;
  noise: boolean;
  random?: () => number;
  pool?: number;
}

/** The model end to end: task, ranking over the catalog columns, recommendations. */
function scoreCandidates(user: UserSignals, opts: Options): Recommendation[] {
  const task = scoringTask(user, { pool: opts.pool ?? 0, keep: opts.keep, nowMs: opts.nowMs, noise: opts.noise });
  return toRecommendations(rankCatalog(task, opts.random), user.catalog);
}

function popularityFallback(candidates: Candidate[], keep: number): Recommendation[] {
  const user = signals(candidates, []);
  return toRecommendations(popularityRanking(scoringTask(user, { pool: 0, keep, nowMs: NOW, noise: false })), user.catalog);
}

const exact = { nowMs: NOW, noise: false } as const;

describe('scoringTask', () => {
  it('gives each genre its share of the recent events and 0.1 to the others', () => {
    const user = signals([candidate(1, 0.5, 'comedy', 0)]);
    const task = scoringTask(user, { pool: 0, keep: 5, ...exact });
    const pref = (g: string) => task.preference[user.catalog.genreIndex.get(g)!];
    expect(pref('action')).toBe(3 / 5);
    expect(pref('drama')).toBe(2 / 5);
    expect(pref('comedy')).toBe(0.1);
  });

  it('ignores titles the catalog snapshot does not know', () => {
    const user = { ...signals([candidate(1, 0.5, 'comedy', 0)], ['action']), recent: [1_000_000, 42_424_242], watched: [1_000_000, 42_424_242] };
    const task = scoringTask(user, { pool: 0, keep: 5, ...exact });
    expect(task.preference[user.catalog.genreIndex.get('action')!]).toBe(1);
    expect([...task.watched]).toEqual([user.catalog.positionOf.get(1_000_000)]);
  });

  it('sizes the work as the candidates walked, watched ones included', () => {
    const cands = Array.from({ length: 10 }, (_, i) => candidate(i + 1, 1 - i / 10, 'x', 0));
    const user = signals(cands, ['x', 'x']);
    expect(taskSize(scoringTask(user, { pool: 3, keep: 5, ...exact }))).toBe(5);
    expect(taskSize(scoringTask(user, { pool: 0, keep: 5, ...exact }))).toBe(12);
  });
});

describe('candidates', () => {
  it('are the `pool` most popular unwatched titles', () => {
    const cands = Array.from({ length: 10 }, (_, i) => candidate(i + 1, 1 - i / 20, 'x', 0));
    const out = scoreCandidates(signals(cands, HISTORY, [1, 3]), { ...exact, keep: 10, pool: 4 });
    expect(out.map((r) => r.content_id).sort((a, b) => a - b)).toEqual([2, 4, 5, 6]);
  });

  it('never include a watched title, whatever its score', () => {
    const cands = [candidate(1, 1, 'action', 0), candidate(2, 0.1, 'x', 900)];
    expect(scoreCandidates(signals(cands, HISTORY, [1]), { ...exact, keep: 10 }).map((r) => r.content_id)).toEqual([2]);
  });
});

describe('recencyFactor', () => {
  it('is 1 for new content, 0.5 at one year, 1/3 at two years', () => {
    expect(recencyFactor(NOW, NOW)).toBe(1);
    expect(recencyFactor(NOW - 365 * DAY, NOW)).toBe(0.5);
    expect(recencyFactor(NOW - 730 * DAY, NOW)).toBeCloseTo(1 / 3, 12);
  });

  it('uses fractional days', () => {
    expect(recencyFactor(NOW - 36.5 * DAY, NOW)).toBeCloseTo(1 / 1.1, 12);
  });

  it('treats future dates as new', () => {
    expect(recencyFactor(NOW + 10 * DAY, NOW)).toBe(1);
  });
});

describe('scoreCandidates (noise off)', () => {
  it('computes the seed formula exactly', () => {
    const out = scoreCandidates(
      signals([
        candidate(1, 0.9, 'action', 365), // 0.4·0.9 + 0.35·0.6 + 0.15·0.5 = 0.36 + 0.21 + 0.075 = 0.645
        candidate(2, 0.5, 'drama', 0), // 0.4·0.5 + 0.35·0.4 + 0.15·1 = 0.2 + 0.14 + 0.15 = 0.49
        candidate(3, 0.8, 'comedy', 730), // unseen genre: 0.32 + 0.35·0.1 + 0.15/3 = 0.32 + 0.035 + 0.05 = 0.405
      ]),
      { ...exact, keep: 10 },
    );
    expect(out).toEqual([
      { content_id: 1, title: 'Title 1', genre: 'action', popularity_score: 0.9, score: 0.645 },
      { content_id: 2, title: 'Title 2', genre: 'drama', popularity_score: 0.5, score: 0.49 },
      { content_id: 3, title: 'Title 3', genre: 'comedy', popularity_score: 0.8, score: 0.405 },
    ]);
  });

  it('gives every genre 0.1 when the user has no history', () => {
    const [rec] = scoreCandidates(signals([candidate(1, 0.5, 'action', 0)], []), { ...exact, keep: 1 });
    expect(rec?.score).toBe(0.385); // 0.2 + 0.035 + 0.15
  });

  it('rounds to 3 decimals', () => {
    // 0.4·0.1234 + 0.035 + 0.15 = 0.04936 + 0.185 = 0.23436 → 0.234
    const [low] = scoreCandidates(signals([candidate(1, 0.1234, 'horror', 0)]), { ...exact, keep: 1 });
    expect(low?.score).toBe(0.234);
    // 0.4·0.1249 + 0.185 = 0.23496 → 0.235
    const [high] = scoreCandidates(signals([candidate(1, 0.1249, 'horror', 0)]), { ...exact, keep: 1 });
    expect(high?.score).toBe(0.235);
  });

  it('breaks score ties by popularity DESC, then content id ASC', () => {
    const out = scoreCandidates(
      signals([
        candidate(10, 0.5, 'drama', 0), // 0.2 + 0.14 + 0.15 = 0.49
        candidate(4, 0.5, 'drama', 0), // same as 10: lower id first
        candidate(7, 0.7625, 'comedy', 0), // 0.305 + 0.035 + 0.15 = 0.49, more popular
        candidate(8, 0.50001, 'drama', 0), // 0.490004 → 0.49, slightly more popular than 4 and 10
        candidate(2, 0.9, 'action', 0), // 0.36 + 0.21 + 0.15 = 0.72
      ]),
      { ...exact, keep: 10 },
    );
    expect(out.map((r) => [r.content_id, r.score])).toEqual([
      [2, 0.72],
      [7, 0.49],
      [8, 0.49],
      [4, 0.49],
      [10, 0.49],
    ]);
  });

  it('keeps only the best `keep`', () => {
    const cands = [candidate(1, 0.1, 'x', 0), candidate(2, 0.9, 'x', 0), candidate(3, 0.5, 'x', 0)];
    expect(scoreCandidates(signals(cands), { ...exact, keep: 2 }).map((r) => r.content_id)).toEqual([2, 3]);
    expect(scoreCandidates(signals(cands), { ...exact, keep: 0 })).toEqual([]);
    expect(scoreCandidates(signals([]), { ...exact, keep: 5 })).toEqual([]);
  });

  it('returns the same as a full sort + slice on 10k random candidates (many ties)', () => {
    const rand = mulberry32(42);
    const genres = ['action', 'drama', 'comedy', 'horror', 'scifi', 'documentary'];
    const cands: Candidate[] = [];
    for (let id = 1; id <= 10_000; id++) {
      // Coarse values so that equal rounded scores (tie-breaks) are common.
      const popularity = Math.floor(rand() * 100) / 100;
      const genre = genres[Math.floor(rand() * genres.length)]!;
      cands.push(candidate(id, popularity, genre, Math.floor(rand() * 20) * 73));
    }
    // Shuffle so input order carries no ranking information.
    for (let i = cands.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [cands[i], cands[j]] = [cands[j]!, cands[i]!];
    }
    const history = Array.from({ length: 50 }, () => genres[Math.floor(rand() * 4)]!);
    const pref = new Map<string, number>();
    for (const g of history) pref.set(g, (pref.get(g) ?? 0) + 1);
    for (const [g, n] of pref) pref.set(g, n / history.length);
    const reference = cands
      .map((c) => ({
        c,
        score: round3(0.4 * c.popularity + 0.35 * (pref.get(c.genre) ?? 0.1) + 0.15 * recencyFactor(c.createdAtMs, NOW)),
      }))
      .sort((a, b) => b.score - a.score || b.c.popularity - a.c.popularity || a.c.id - b.c.id)
      .map(({ c, score }) => ({ content_id: c.id, title: c.title, genre: c.genre, popularity_score: c.popularity, score }));

    for (const keep of [1, 7, 50, 100, 10_000, 20_000]) {
      expect(scoreCandidates(signals(cands, history), { ...exact, keep })).toEqual(reference.slice(0, keep));
    }
  });
});

describe('scoreCandidates (noise on)', () => {
  it('adds (U·0.1 − 0.05)·0.1: U = 0 subtracts 0.005, U = 0.5 adds nothing', () => {
    const cands = [candidate(1, 0.9, 'action', 365)]; // 0.645 without noise
    const low = scoreCandidates(signals(cands), { keep: 1, nowMs: NOW, noise: true, random: () => 0 });
    expect(low[0]?.score).toBe(0.64);
    const mid = scoreCandidates(signals(cands), { keep: 1, nowMs: NOW, noise: true, random: () => 0.5 });
    expect(mid[0]?.score).toBe(0.645);
  });

  it('stays within ±0.005 of the noise-free score', () => {
    const rand = mulberry32(7);
    const cands = Array.from({ length: 500 }, (_, i) =>
      candidate(i + 1, rand(), ['action', 'drama', 'comedy'][i % 3]!, rand() * 1000),
    );
    const clean = new Map(
      scoreCandidates(signals(cands), { ...exact, keep: cands.length }).map((r) => [r.content_id, r.score]),
    );
    const noisy = scoreCandidates(signals(cands), { keep: cands.length, nowMs: NOW, noise: true });
    expect(noisy).toHaveLength(cands.length);
    for (const r of noisy) {
      expect(Math.abs(r.score - clean.get(r.content_id)!)).toBeLessThanOrEqual(0.005 + 1e-9);
    }
    for (let i = 1; i < noisy.length; i++) expect(noisy[i - 1]!.score).toBeGreaterThanOrEqual(noisy[i]!.score);
  });
});

describe('popularityFallback', () => {
  it('is the most popular unwatched titles, scores are popularity rounded to 3 decimals', () => {
    const cands = [candidate(5, 0.91234, 'drama', 0), candidate(2, 0.5, 'action', 900), candidate(9, 0.1, 'x', 0)];
    expect(popularityFallback(cands, 2)).toEqual([
      { content_id: 5, title: 'Title 5', genre: 'drama', popularity_score: 0.91234, score: 0.912 },
      { content_id: 2, title: 'Title 2', genre: 'action', popularity_score: 0.5, score: 0.5 },
    ]);
    expect(popularityFallback(cands, 10)).toHaveLength(3);
    expect(popularityFallback(cands, 0)).toEqual([]);
  });
});

/** Small seeded PRNG so the random inputs are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
