/**
 * The API's response shapes as TypeBox (JSON Schema) values: the OpenAPI document is generated from
 * these and from the request schemas the handlers validate with, so the document cannot drift.
 */
import { Type } from 'typebox';
import { SUBSCRIPTION_TIERS } from './constants.js';
import { ERROR_STATUS } from './errors.js';
import { EXPLANATION_KINDS } from './model-tables.js';

const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339' });
const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const RecommendationSchema = Type.Object({
  content_id: Id,
  title: Type.String(),
  genre: Type.String(),
  popularity_score: Type.Number({ minimum: 0, maximum: 1 }),
  score: Type.Number(),
});

/** `?explain=true`: why an item is there; `because` names the user's own titles behind it, best first. */
export const ExplanationSchema = Type.Object({
  kind: Type.Union(EXPLANATION_KINDS.map((kind) => Type.Literal(kind))),
  because: Type.Optional(
    Type.Array(Id, { minItems: 1, maxItems: 3, description: "content ids from the user's watch history; absent where none applies" }),
  ),
});

/** An item of a user's recommendations: with `explanation` exactly when `explain=true` was asked. */
export const RankedRecommendationSchema = Type.Object({
  ...RecommendationSchema.properties,
  explanation: Type.Optional(ExplanationSchema),
});

export const RecommendationsResponseSchema = Type.Object({
  user_id: Id,
  recommendations: Type.Array(RankedRecommendationSchema, { maxItems: 50 }),
  metadata: Type.Object({
    cache_hit: Type.Boolean(),
    generated_at: Timestamp,
    total_count: Type.Integer({ minimum: 0 }),
    source: Type.Union([Type.Literal('model'), Type.Literal('popularity_fallback')]),
    stale: Type.Optional(
      Type.Literal(true, { description: 'present when served past CACHE_TTL because PostgreSQL is unavailable' }),
    ),
  }),
});

const ErrorCodeSchema = Type.Union(Object.keys(ERROR_STATUS).map((code) => Type.Literal(code)));

export const ErrorSchema = Type.Object({ error: ErrorCodeSchema, message: Type.String() });

export const BatchResponseSchema = Type.Object({
  page: Type.Integer({ minimum: 1 }),
  limit: Type.Integer({ minimum: 1 }),
  total_users: Type.Integer({ minimum: 0 }),
  results: Type.Array(
    Type.Union([
      Type.Object({
        user_id: Id,
        recommendations: Type.Array(RecommendationSchema, { maxItems: 10 }),
        status: Type.Literal('success'),
      }),
      Type.Object({ user_id: Id, status: Type.Literal('failed'), error: ErrorCodeSchema, message: Type.String() }),
    ]),
  ),
  summary: Type.Object({
    success_count: Type.Integer({ minimum: 0 }),
    failed_count: Type.Integer({ minimum: 0 }),
    processing_time_ms: Type.Number({ minimum: 0 }),
  }),
  metadata: Type.Object({ generated_at: Timestamp }),
});

const JobStatusSchema = Type.Union(['queued', 'running', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s)));
const JobId = Type.String({ format: 'uuid' });

export const JobAcceptedSchema = Type.Object({
  job_id: JobId,
  status: JobStatusSchema,
  total_users: Type.Integer({ minimum: 0, description: 'distinct users of the job (for "all": every user at submission)' }),
});

export const JobSchema = Type.Object({
  job_id: JobId,
  status: JobStatusSchema,
  total_users: Type.Integer({ minimum: 0 }),
  processed_users: Type.Integer({ minimum: 0, description: 'users with a result (failed ones included)' }),
  failed_users: Type.Integer({ minimum: 0 }),
  created_at: Timestamp,
  started_at: Type.Union([Timestamp, Type.Null()]),
  finished_at: Type.Union([Timestamp, Type.Null()]),
});

export const JobResultsSchema = Type.Object({
  results: Type.Array(
    Type.Union([
      Type.Object({ user_id: Id, status: Type.Literal('success'), recommendations: Type.Array(RecommendationSchema, { maxItems: 50 }) }),
      Type.Object({
        user_id: Id,
        status: Type.Literal('failed'),
        recommendations: Type.Array(RecommendationSchema, { maxItems: 0 }),
        error: ErrorCodeSchema,
        message: Type.String(),
      }),
    ]),
  ),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'null once the job is finished and every result was returned' }),
});

export const WatchEventSchema = Type.Object({ user_id: Id, content_id: Id, watched_at: Timestamp });

export const HealthSchema = Type.Object({ status: Type.Literal('ok') });

const Checks = Type.Object({
  postgres: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
  redis: Type.Union([Type.Literal('ok'), Type.Literal('down'), Type.Literal('disabled')]),
});
/** With DATABASE_REPLICA_URLS: each replica (host:port) as last probed; lag_ms null before the first probe. */
const Replicas = Type.Array(
  Type.Object({
    replica: Type.String(),
    state: Type.Union([Type.Literal('up'), Type.Literal('lagging'), Type.Literal('down')]),
    lag_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  }),
);
export const ReadySchema = Type.Object({ status: Type.Literal('ready'), checks: Checks, replicas: Type.Optional(Replicas) });
export const NotReadySchema = Type.Object({
  error: Type.Literal('service_unavailable'),
  message: Type.String(),
  checks: Checks,
  replicas: Type.Optional(Replicas),
});

export const SubscriptionTierSchema = Type.Union(SUBSCRIPTION_TIERS.map((tier) => Type.Literal(tier)), {
  description: 'free < basic < premium',
});
export const CountryCodeSchema = Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2 (two capital letters)' });

export const UserSchema = Type.Object({
  user_id: Id,
  age: Type.Union([Type.Integer(), Type.Null()]),
  country: Type.Union([Type.String(), Type.Null()]),
  subscription_type: Type.Union([SubscriptionTierSchema, Type.Null()], {
    description: 'null only for a user written without one outside the API',
  }),
  created_at: Type.Union([Timestamp, Type.Null()]),
});

/** What the catalog routes show of a title; a write's answer (ContentRecordSchema) adds its rules. */
const contentItemProperties = {
  content_id: Id,
  title: Type.String(),
  genre: Type.String(),
  popularity_score: Type.Number({ minimum: 0, maximum: 1 }),
  created_at: Timestamp,
};

export const ContentRecordSchema = Type.Object({
  ...contentItemProperties,
  hidden: Type.Boolean(),
  subscription_tier: SubscriptionTierSchema,
  countries: Type.Array(Type.String(), { description: 'empty: available in every country' }),
});

export const BulkResultSchema = Type.Object({
  created: Type.Integer({ minimum: 0 }),
  updated: Type.Integer({ minimum: 0 }),
});

/** POST /events' 201. */
export const EventsResultSchema = Type.Object({
  events: Type.Integer({ minimum: 1, description: 'watch events recorded' }),
  users: Type.Integer({ minimum: 1, description: 'distinct users among them (each one\'s cached lists invalidated)' }),
});

export const DismissalSchema = Type.Object({
  user_id: Id,
  content_id: Id,
  dismissed_at: Type.String({ format: 'date-time', description: 'RFC 3339: the first dismissal (a repeat keeps it)' }),
});

/** A title in the catalog routes (popular, latest, one title, similar). */
export const ContentItemSchema = Type.Object(contentItemProperties);

export const ContentListResponseSchema = Type.Object({
  items: Type.Array(ContentItemSchema, { maxItems: 100 }),
  metadata: Type.Object({
    total_count: Type.Integer({ minimum: 0, description: 'items in this response' }),
    generated_at: Timestamp,
  }),
});

export const SimilarResponseSchema = Type.Object({
  content_id: Id,
  similar: Type.Array(Type.Intersect([ContentItemSchema, Type.Object({ score: Type.Number({ minimum: 0 }) })]), { maxItems: 50 }),
  metadata: Type.Object({
    source: Type.Union([Type.Literal('co_watch'), Type.Literal('genre_popularity')]),
    generated_at: Timestamp,
  }),
});
