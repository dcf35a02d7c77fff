/** Shapes shared by every layer. Field names of API objects follow the seed's JSON exactly. */
import type { CatalogColumns, CatalogSnapshot } from './catalog-columns.js';
import { SUBSCRIPTION_TIERS } from './constants.js';
import type { ExplanationKind, ModelTables } from './model-tables.js';

/** A catalog title as the scoring model sees it. */
export interface Candidate {
  id: number;
  title: string;
  genre: string;
  popularity: number;
  /** created_at as epoch milliseconds (recency is fractional days from it). */
  createdAtMs: number;
  /** Never served (DELETE /content/{id}, or `hidden` on a write). Absent: false. */
  hidden?: boolean;
  /** Lowest subscription tier it is for (SUBSCRIPTION_TIERS index: 0 free, 1 basic, 2 premium). Absent: 0. */
  tier?: number;
  /** Countries it may be shown in; null or absent: everywhere. */
  countries?: string[] | null;
}


/** Whom a list is for, as far as availability goes: the user's tier (SUBSCRIPTION_TIERS index) and country. */
export interface Audience {
  tier: number;
  country: string | null;
}

/** A user's tier index; no tier (or one we do not know) counts as the lowest. */
export function tierIndex(subscription: string | null | undefined): number {
  const at = SUBSCRIPTION_TIERS.indexOf(subscription as SubscriptionTier);
  return at < 0 ? 0 : at;
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
  /** Content ids of the user's most recent watch events (newest first, at most MODEL_HISTORY). */
  recent: number[];
  /** Content ids of every title the user watched (never recommended). */
  watched: number[];
  /** Content ids the user dismissed ("not interested": never recommended). */
  dismissed: number[];
  /** Tier and country: availability rules filter the candidates by them. */
  audience: Audience;
}

/**
 * One scoring job, as it crosses to a scoring thread: the shared catalog columns and the user's own
 * signals as small plain arrays. Candidates are the first `pool` unwatched titles in catalog order.
 */
export interface ScoringTask {
  catalog: CatalogColumns;
  /** Preference per genre index (the genre's share of recent events; the unseen floor elsewhere). */
  preference: number[];
  /** Catalog positions never to recommend: watched, dismissed, and titles hidden since the snapshot. */
  watched: number[];
  /**
   * Availability of each catalog position to this user (1 may be recommended): hidden titles and the tier
   * and country rules. Shared memory, one per audience and snapshot; absent when nothing is restricted.
   */
  available?: Uint8Array;
  /** Only titles of this genre index (-1 or absent: every genre). */
  genre?: number;
  /** Unwatched titles scored (0 = whole catalog). */
  pool: number;
  /** How many of the best-scored titles to return. */
  keep: number;
  /** Reference "now" for recency, epoch ms (passed in so results are reproducible). */
  nowMs: number;
  /** Exploration noise on/off (off makes rankings exact for tests). */
  noise: boolean;
  /** Catalog positions of the user's recent watch events, newest first (learned models read them). */
  history?: number[];
  /** The model that ranks; absent: the seed's formula. */
  model?: ModelTables;
}

/** A task's answer: catalog positions best first, with their rounded scores. */
export interface Ranking {
  positions: number[];
  scores: number[];
  /** Why each item is there (EXPLANATION_KINDS index), parallel to positions. */
  reasons?: number[];
  /** The history positions behind each item, best first, at most 3 (empty where none applies). */
  because?: number[][];
}

/** Why an item is recommended (`?explain=true`): `because` names the user's own titles behind it, best first. */
export interface Explanation {
  kind: ExplanationKind;
  because?: number[];
}

/** A computed top-N list for one user: what the caches hold. */
export interface RecommendationList {
  items: Recommendation[];
  /** Why each item is there, parallel to items (absent on lists stored before explanations existed). */
  explanations?: Explanation[];
  source: RecommendationSource;
  /** RFC 3339 time the list was computed. */
  generatedAt: string;
  /** Epoch ms until which the list is fresh; after it, it is served only while PostgreSQL is down. */
  freshUntil: number;
  /** Whom it was computed for: a title later restricted away from them is taken out when served. */
  audience: Audience;
  /**
   * The visibility version (service/visibility.ts) its items were last checked against: a list checked
   * at the current version holds no hidden or unavailable title. 0 = never checked.
   */
  checked: number;
}

export type SubscriptionTier = (typeof SUBSCRIPTION_TIERS)[number];

/**
 * PUT /users/{id}. An absent field is left as it is on update; on create age and country are null and
 * subscription_type is 'free'. null clears age or country (unknown); a tier is never null.
 */
export interface UserFields {
  age?: number | null;
  country?: string | null;
  subscription_type?: SubscriptionTier;
}

export interface UserRecord {
  user_id: number;
  age: number | null;
  country: string | null;
  /** null only for a user written without one outside the API. */
  subscription_type: SubscriptionTier | null;
  /** RFC 3339; null only for a user written without one outside the API. */
  created_at: string | null;
}

/**
 * PUT /content/{id}. title, genre and popularity_score are required; an absent optional field keeps its
 * value on update and takes its default on create (created_at now, hidden false, tier 'free', countries []).
 */
export interface ContentFields {
  title: string;
  genre: string;
  popularity_score: number;
  /** RFC 3339, normalised to UTC with millisecond precision by the parser. */
  created_at?: string;
  hidden?: boolean;
  subscription_tier?: SubscriptionTier;
  /** ISO 3166-1 alpha-2 codes, distinct; empty: available everywhere. */
  countries?: string[];
}

/** One item of POST /content/bulk. */
export interface ContentItem extends ContentFields {
  content_id: number;
}

export interface ContentRecord {
  content_id: number;
  title: string;
  genre: string;
  popularity_score: number;
  created_at: string;
  hidden: boolean;
  subscription_tier: SubscriptionTier;
  countries: string[];
}

export interface BulkResult {
  created: number;
  updated: number;
}

export interface DismissalRecord {
  user_id: number;
  content_id: number;
  /** RFC 3339: when the title was first dismissed (a repeat keeps it). */
  dismissed_at: string;
}

/** One item of POST /events: a watch event, at `timestamp` (UTC ISO, already checked not ahead) or now. */
export interface WatchEventInput {
  user_id: number;
  content_id: number;
  timestamp?: string;
}

/** POST /events' answer: events recorded, and the distinct users whose lists were invalidated. */
export interface EventsResult {
  events: number;
  users: number;
}
