/**
 * The seed's scoring heuristic as pure functions (no I/O, no clock, no global randomness unless asked):
 *   score = 0.40·popularity + 0.35·(pref[genre] ?? 0.1) + 0.15·1/(1 + ageDays/365) + noise
 * rounded to 3 decimals, best first, ties broken by popularity DESC then content id ASC.
 */
import { UNSEEN_GENRE_PREFERENCE, WEIGHTS } from '../domain/constants.js';
import type { Candidate, Recommendation, UserSignals } from '../domain/types.js';

const DAY_MS = 86_400_000;

/** Share of each genre in the given watch events (already the user's most recent window). */
export function genrePreferences(recentGenres: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const genre of recentGenres) counts.set(genre, (counts.get(genre) ?? 0) + 1);
  const total = recentGenres.length;
  for (const [genre, count] of counts) counts.set(genre, count / total);
  return counts;
}

/** 1 for brand-new content, 0.5 at one year old; future dates count as new (clock skew). */
export function recencyFactor(createdAtMs: number, nowMs: number): number {
  const ageDays = Math.max(0, (nowMs - createdAtMs) / DAY_MS);
  return 1 / (1 + ageDays / 365);
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface ScoreOptions {
  /** How many of the best titles to return. */
  keep: number;
  nowMs: number;
  noise: boolean;
  /** Uniform [0,1) source for the exploration noise; Math.random by default. */
  random?: () => number;
}

/** A kept candidate with its rounded score (the heap element). */
export interface Scored {
  score: number;
  candidate: Candidate;
}

/** True when (scoreA, a) ranks strictly before (scoreB, b): a total order, so results are deterministic. */
function ranksBefore(scoreA: number, a: Candidate, scoreB: number, b: Candidate): boolean {
  if (scoreA !== scoreB) return scoreA > scoreB;
  if (a.popularity !== b.popularity) return a.popularity > b.popularity;
  return a.id < b.id;
}

/** Scores every candidate and returns the best `keep`, best first, in O(n log keep). */
export function scoreCandidates(signals: UserSignals, opts: ScoreOptions): Recommendation[] {
  return rankCandidates(signals, opts).map(({ score, candidate }) => toRecommendation(candidate, score));
}

/** scoreCandidates before the kept candidates become recommendations: the very candidate objects, scored. */
export function rankCandidates(signals: UserSignals, opts: ScoreOptions): Scored[] {
  const keep = Math.max(0, Math.floor(opts.keep));
  if (keep === 0) return [];
  const pref = genrePreferences(signals.recentGenres);
  const random = opts.random ?? Math.random;
  const { nowMs, noise } = opts;

  // Min-heap on rank: heap[0] is the worst of the kept, so a newcomer only has to beat the root.
  const heap: Scored[] = [];
  for (const candidate of signals.candidates) {
    const raw =
      WEIGHTS.popularity * candidate.popularity +
      WEIGHTS.genre * (pref.get(candidate.genre) ?? UNSEEN_GENRE_PREFERENCE) +
      WEIGHTS.recency * recencyFactor(candidate.createdAtMs, nowMs) +
      (noise ? (random() * 0.1 - 0.05) * 0.1 : 0);
    const score = round3(raw);
    if (heap.length < keep) {
      heap.push({ score, candidate });
      siftUp(heap, heap.length - 1);
    } else {
      const root = heap[0]!;
      if (ranksBefore(score, candidate, root.score, root.candidate)) {
        heap[0] = { score, candidate };
        siftDown(heap, 0);
      }
    }
  }

  heap.sort((x, y) => (ranksBefore(x.score, x.candidate, y.score, y.candidate) ? -1 : 1));
  return heap;
}

/** The degraded ranking: candidates arrive popularity DESC, so the top `keep` are the first ones. */
export function popularityFallback(candidates: Candidate[], keep: number): Recommendation[] {
  const n = Math.max(0, Math.floor(keep));
  return candidates.slice(0, n).map((c) => toRecommendation(c, round3(c.popularity)));
}

export function toRecommendation(c: Candidate, score: number): Recommendation {
  return { content_id: c.id, title: c.title, genre: c.genre, popularity_score: c.popularity, score };
}

/** heap[i] ranks after heap[j]: the worse element moves toward the root. */
function isWorse(heap: Scored[], i: number, j: number): boolean {
  const a = heap[i]!;
  const b = heap[j]!;
  return ranksBefore(b.score, b.candidate, a.score, a.candidate);
}

function swap(heap: Scored[], i: number, j: number): void {
  const t = heap[i]!;
  heap[i] = heap[j]!;
  heap[j] = t;
}

function siftUp(heap: Scored[], i: number): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!isWorse(heap, i, parent)) return;
    swap(heap, i, parent);
    i = parent;
  }
}

function siftDown(heap: Scored[], i: number): void {
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let worst = i;
    if (l < n && isWorse(heap, l, worst)) worst = l;
    if (r < n && isWorse(heap, r, worst)) worst = r;
    if (worst === i) return;
    swap(heap, i, worst);
    i = worst;
  }
}
