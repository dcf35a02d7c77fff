/** Watch events that define a user's genre preference (the seed's window). */
export const HISTORY_WINDOW = 50;
/** Recent watch events a learned model reads (newest first): the request path fetches this many. */
export const MODEL_HISTORY = 200;
/** One cached list per user holds this many titles; any `limit` is a slice of it. */
export const CACHED_LIST_SIZE = 50;
/** Titles per user in a batch response (the seed's value). */
export const BATCH_ITEMS_PER_USER = 10;
export const LIMIT_DEFAULT = 10;
/** Cache-hit bodies kept per cached list (http/bodies.ts), and what L1 charges for them. */
export const HIT_BODIES_PER_LIST = 4;
/** Items of JSON those bodies hold at most in all: the default page and the whole list. */
export const HIT_BODY_ITEMS_PER_LIST = LIMIT_DEFAULT + CACHED_LIST_SIZE;
export const LIMIT_MAX = 50;
/** /content/popular and /content/latest: page size and how deep a page may start. */
export const CONTENT_LIMIT_MAX = 100;
export const CONTENT_OFFSET_MAX = 10_000;
/** /content/{id}/similar: titles per answer, and how many the background job keeps per title. */
export const SIMILAR_LIMIT_MAX = 50;
export const BATCH_PAGE_MAX = 10_000;
export const BATCH_LIMIT_DEFAULT = 20;
export const BATCH_LIMIT_MAX = 100;
/** Largest id the API accepts: ids are exact in a JS number up to here. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

/** The seed's scoring weights. */
export const WEIGHTS = {
  popularity: 0.4,
  genre: 0.35,
  recency: 0.15,
} as const;
/** Preference given to a genre the user has never watched (the seed's exploration floor). */
export const UNSEEN_GENRE_PREFERENCE = 0.1;

/** Subscription tiers, lowest first: a title of a tier is for users at or above it (migration 0005). */
export const SUBSCRIPTION_TIERS = ['free', 'basic', 'premium'] as const;
/** What the ingestion bodies accept at most (src/http/ingest-params.ts). */
export const TITLE_MAX_CHARS = 200;
export const TITLE_COUNTRIES_MAX = 250;
export const BULK_MAX_ITEMS = 1000;
export const AGE_MAX = 150;
/** POST /events: events one request may carry (one transaction). */
export const EVENTS_MAX_ITEMS = 10_000;
/**
 * POST /events: how far ahead of the server's clock an event's timestamp may be (client clock skew); such an
 * event is recorded at the server's now, and one further ahead is refused.
 */
export const EVENT_CLOCK_SKEW_MS = 60_000;
