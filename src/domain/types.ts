/** Shapes shared by every layer. Field names of API objects follow the seed's JSON exactly. */
import type { CatalogColumns, CatalogSnapshot } from './catalog-columns.js';

/** A catalog title as the scoring model sees it. */
export interface Candidate {
  id: number;
  title: string;
  genre: string;
  popularity: number;
  /** created_at as epoch milliseconds (recency is fractional days from it). */
  createdAtMs: number;
}

/** One entry of `recommendations[]` in every response. */
export interface Recommendation {
  content_id: number;
  title: string;
  genre: string;
  popularity_score: number;
  score: number;
}

export type RecommendationSource = 'model' | 'popularity_fallback';

/** What PostgreSQL tells about one user, with the catalog snapshot its ids are looked up in. */
export interface UserSignals {
  userId: number;
  catalog: CatalogSnapshot;
  /** Content ids of the user's most recent watch events (newest first, at most HISTORY_WINDOW). */
  recent: number[];
  /** Content ids of every title the user watched (never recommended). */
  watched: number[];
}

/**
 * One scoring job, as it crosses to a scoring thread: the shared catalog columns and the user's own
 * signals as small plain arrays. Candidates are the first `pool` unwatched titles in catalog order.
 */
export interface ScoringTask {
  catalog: CatalogColumns;
  /** Preference per genre index (the genre's share of recent events; the unseen floor elsewhere). */
  preference: number[];
  /** Catalog positions of the titles the user watched. */
  watched: number[];
  /** Unwatched titles scored (0 = whole catalog). */
  pool: number;
  /** How many of the best-scored titles to return. */
  keep: number;
  /** Reference "now" for recency, epoch ms (passed in so results are reproducible). */
  nowMs: number;
  /** Exploration noise on/off (off makes rankings exact for tests). */
  noise: boolean;
}

/** A task's answer: catalog positions best first, with their rounded scores. */
export interface Ranking {
  positions: number[];
  scores: number[];
}

/** A computed top-N list for one user: what the caches hold. */
export interface RecommendationList {
  items: Recommendation[];
  source: RecommendationSource;
  /** RFC 3339 time the list was computed. */
  generatedAt: string;
  /** Epoch ms until which the list is fresh; after it, it is served only while PostgreSQL is down. */
  freshUntil: number;
}
