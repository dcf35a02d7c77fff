/** Shapes shared by every layer. Field names of API objects follow the seed's JSON exactly. */

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

/** Everything the model needs for one user, fetched in one PostgreSQL round trip. */
export interface UserSignals {
  userId: number;
  /** Genres of the user's most recent watch events (newest first, at most HISTORY_WINDOW). */
  recentGenres: string[];
  /** Unwatched titles by popularity_score DESC, at most CANDIDATE_POOL (0 = whole catalog). */
  candidates: Candidate[];
}

/** A scoring request sent to the Piscina pool. */
export interface ScoringTask {
  signals: UserSignals;
  /** How many of the best-scored titles to return. */
  keep: number;
  /** Reference "now" for recency, epoch ms (passed in so results are reproducible). */
  nowMs: number;
  /** Exploration noise on/off (off makes rankings exact for tests). */
  noise: boolean;
  /** Simulated remote-model latency, uniform in [min, max] ms; 0/0 turns it off. */
  latencyMinMs: number;
  latencyMaxMs: number;
  /** Simulated failure probability in [0, 1]. */
  failureRate: number;
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
