/**
 * The seed's scoring heuristic as pure functions over the catalog columns (no I/O, no clock, no global
 * randomness unless asked):
 *   score = 0.40·popularity + 0.35·(pref[genre] ?? 0.1) + 0.15·1/(1 + ageDays/365) + noise
 * rounded to 3 decimals, best first, ties broken by popularity DESC then content id ASC — which is the
 * catalog's own order, so a tie is decided by position. Candidates are the first `pool` titles of that
 * order the user has not watched; nothing per candidate is allocated.
 */
import { availableTo, columnsOf, type CatalogSnapshot } from '../domain/catalog-columns.js';
import { HISTORY_WINDOW, UNSEEN_GENRE_PREFERENCE, WEIGHTS } from '../domain/constants.js';
import type { ModelTables } from '../domain/model-tables.js';
import type { Ranking, Recommendation, ScoringTask, UserSignals } from '../domain/types.js';
import { TopPositions } from './top-k.js';

const DAY_MS = 86_400_000;

/** 1 for brand-new content, 0.5 at one year old; future dates count as new (clock skew). */
export function recencyFactor(createdAtMs: number, nowMs: number): number {
  const ageDays = Math.max(0, (nowMs - createdAtMs) / DAY_MS);
  return 1 / (1 + ageDays / 365);
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface TaskOptions {
  /** Unwatched titles scored, in candidate order (0 = all). */
  pool: number;
  /** How many of the best titles to return. */
  keep: number;
  nowMs: number;
  noise: boolean;
  /** Only titles of this genre (a name the snapshot does not know: no candidates). */
  genre?: string;
  /** Content ids never to recommend on top of the user's own (titles hidden since the snapshot). */
  exclude?: ReadonlySet<number>;
  /** The model that ranks (absent: the seed's formula). */
  model?: ModelTables;
}

/**
 * The task for one user: genre preference per genre index (share of the user's recent events, the
 * unseen floor elsewhere), the catalog positions never to recommend (watched, dismissed, `exclude`) and
 * the availability of every title to the user's audience. Titles the snapshot does not know (added since
 * it loaded) are left out, as they were of the candidates.
 */
export function scoringTask(signals: UserSignals, opts: TaskOptions): ScoringTask {
  // Plain arrays, not typed ones: a small typed array costs ~1-2 µs to allocate in Node 20 (measured),
  // more than scoring a hundred candidates.
  const { catalog } = signals;
  const genres = catalog.genres.length;
  const counts = new Array<number>(genres).fill(0);
  let known = 0;
  const history: number[] = [];
  for (let r = 0; r < signals.recent.length; r++) {
    const at = catalog.positionOf.get(signals.recent[r]!);
    if (at === undefined) continue;
    history.push(at);
    // The seed's preference window: the HISTORY_WINDOW most recent events.
    if (r >= HISTORY_WINDOW) continue;
    counts[catalog.genre[at]!]! += 1;
    known += 1;
  }
  const preference = counts;
  for (let g = 0; g < genres; g++) preference[g] = counts[g]! > 0 ? counts[g]! / known : UNSEEN_GENRE_PREFERENCE;
  const watched: number[] = [];
  const skip = (id: number) => {
    const at = catalog.positionOf.get(id);
    if (at !== undefined) watched.push(at);
  };
  for (const id of signals.watched) skip(id);
  for (const id of signals.dismissed) skip(id);
  if (opts.exclude) for (const id of opts.exclude) skip(id);
  const genre = opts.genre === undefined ? -1 : (catalog.genreIndex.get(opts.genre) ?? genres);
  const available = availableTo(catalog, signals.audience);
  return {
    catalog: columnsOf(catalog),
    preference,
    watched,
    ...(available ? { available } : {}),
    ...(genre >= 0 ? { genre } : {}),
    pool: opts.pool,
    keep: opts.keep,
    nowMs: opts.nowMs,
    noise: opts.noise,
    history,
    ...(opts.model ? { model: opts.model } : {}),
  };
}

/** Candidates a task walks over: its cost in scoring work (watched titles are skipped on the way). */
export function taskSize(task: ScoringTask): number {
  const kind = task.model?.kind;
  // A learned model scores the whole catalog; the latent one k multiply-adds a title on top of the scan.
  if (kind === 'item-cf' || kind === 'als' || kind === 'blend') return task.catalog.size * (1 + (task.model!.als ? task.model!.als.k / 8 : 0));
  const unwatched = Math.max(0, task.catalog.size - task.watched.length);
  // One genre's candidates are spread over the catalog: about one title in (number of genres) is one.
  const spread = task.genre !== undefined && task.genre >= 0 ? Math.max(1, task.preference.length) : 1;
  return Math.min(task.catalog.size, (task.pool > 0 ? Math.min(task.pool * spread, unwatched) : unwatched) + task.watched.length);
}

/** Per-thread scratch, reused by every task (scoring is synchronous): marks of the current task's watched titles (cleared after). */
let marks = new Uint8Array(0);
const best = new TopPositions();

export function markWatched(size: number, watched: readonly number[]): Uint8Array {
  if (marks.length < size) marks = new Uint8Array(Math.max(size, marks.length * 2));
  for (let i = 0; i < watched.length; i++) marks[watched[i]!] = 1;
  return marks;
}

export function unmark(watched: readonly number[]): void {
  for (let i = 0; i < watched.length; i++) marks[watched[i]!] = 0;
}

/** Scores the task's candidates and returns the best `keep`, best first, in O(n log keep). */
export function rankCatalog(task: ScoringTask, random: () => number = Math.random): Ranking {
  const keep = Math.max(0, Math.floor(task.keep));
  const { catalog, preference, watched, nowMs, noise, available } = task;
  const only = task.genre ?? -1;
  const limit = task.pool > 0 ? task.pool : Infinity;
  const { popularity, createdAtMs, genre, size } = catalog;
  const top = best.reset(keep);
  if (keep > 0) {
    const seen = markWatched(size, watched);
    let scored = 0;
    try {
      for (let i = 0; i < size && scored < limit; i++) {
        if (seen[i] === 1) continue;
        if (available !== undefined && available[i] === 0) continue;
        if (only >= 0 && genre[i] !== only) continue;
        scored += 1;
        const score = round3(
          WEIGHTS.popularity * popularity[i]! +
            WEIGHTS.genre * preference[genre[i]!]! +
            WEIGHTS.recency * recencyFactor(createdAtMs[i]!, nowMs) +
            (noise ? (random() * 0.1 - 0.05) * 0.1 : 0),
        );
        // Equal scores never displace: the kept one has the lower position (the catalog order's tie-break).
        top.offer(i, score);
      }
    } finally {
      unmark(watched);
    }
  }
  return top.drain();
}

/** The degraded ranking: the `keep` most popular unwatched titles, scored by their popularity. */
export function popularityRanking(task: ScoringTask): Ranking {
  const keep = Math.max(0, Math.floor(task.keep));
  const { catalog, watched, available } = task;
  const only = task.genre ?? -1;
  const positions: number[] = [];
  const scores: number[] = [];
  const seen = markWatched(catalog.size, watched);
  try {
    for (let i = 0; i < catalog.size && positions.length < keep; i++) {
      if (seen[i] === 1) continue;
      if (available !== undefined && available[i] === 0) continue;
      if (only >= 0 && catalog.genre[i] !== only) continue;
      positions.push(i);
      scores.push(round3(catalog.popularity[i]!));
    }
  } finally {
    unmark(watched);
  }
  return { positions, scores };
}

/** Positions back to the API's objects (titles and genre names live on the loading thread). */
export function toRecommendations(ranking: Ranking, catalog: CatalogSnapshot): Recommendation[] {
  const out = new Array<Recommendation>(ranking.positions.length);
  for (let i = 0; i < out.length; i++) {
    const c = catalog.items[ranking.positions[i]!]!;
    out[i] = { content_id: c.id, title: c.title, genre: c.genre, popularity_score: c.popularity, score: ranking.scores[i]! };
  }
  return out;
}
