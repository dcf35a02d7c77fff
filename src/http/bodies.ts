/**
 * Response bodies of the recommendation route, built from JSON fragments computed once per cached list:
 * a cache hit concatenates strings, it never re-serializes the list.
 */
import { HIT_BODIES_PER_LIST, HIT_BODY_ITEMS_PER_LIST } from '../domain/constants.js';
import { explanationJson, fragmentsOf } from '../domain/recommendation-json.js';
import type { Explanation, RecommendationList } from '../domain/types.js';

/**
 * Whole cache-hit bodies per (list, limit), kept as long as the list is: at most 4 limits and at most
 * HIT_BODY_ITEMS_PER_LIST items in all, so a list's bodies hold at most that many items' JSON whatever
 * limits clients ask for. L1 charges each list for exactly this (estimateBytes in
 * src/data/recommendation-cache.ts); a body beyond the budget is built per request (a join, no serializing).
 */
const hitBodies = new WeakMap<RecommendationList, { bodies: Map<number, string>; items: number }>();

function build(userId: number, list: RecommendationList, limit: number, cacheHit: boolean, stale = false, offset = 0): string {
  const end = Math.min(offset + limit, list.items.length);
  const n = Math.max(0, end - offset);
  const parts = fragmentsOf(list, end);
  const items = offset === 0 && n === parts.length ? parts.join(',') : parts.slice(offset, end).join(',');
  return envelope(userId, list, items, n, cacheHit, stale);
}

function envelope(userId: number, list: RecommendationList, items: string, n: number, cacheHit: boolean, stale: boolean): string {
  return (
    `{"user_id":${userId},"recommendations":[${items}],"metadata":{"cache_hit":${cacheHit},` +
    `"generated_at":"${list.generatedAt}","total_count":${n},"source":"${list.source}"${stale ? ',"stale":true' : ''}}}`
  );
}

/**
 * `?explain=true`: the body of recommendationsBody with an `explanation` after each item's score, built per
 * request (the hot path's kept bodies never hold one). A list that carries no explanations (stored in Redis
 * before lists did, served as it is when it cannot be computed again) says what its source tells for sure:
 * every item of a fallback list is `fallback`; a model list's items read `popular`.
 */
export const explainedRecommendationsBody: BodyOf = (userId, list, limit, cacheHit, stale = false, offset = 0) => {
  const end = Math.min(offset + limit, list.items.length);
  const parts = fragmentsOf(list, end);
  const unknown: Explanation = { kind: list.source === 'popularity_fallback' ? 'fallback' : 'popular' };
  const items: string[] = [];
  for (let i = offset; i < end; i++) {
    // An item's fragment ends with its closing brace: the explanation goes just before it.
    items.push(`${parts[i]!.slice(0, -1)},"explanation":${explanationJson(list.explanations?.[i] ?? unknown)}}`);
  }
  return envelope(userId, list, items.join(','), items.length, cacheHit, stale);
};

/** A recommendations response body: `limit` items of `list` from `offset`, with the metadata. */
type BodyOf = (userId: number, list: RecommendationList, limit: number, cacheHit: boolean, stale?: boolean, offset?: number) => string;

export function recommendationsBody(
  userId: number,
  list: RecommendationList,
  limit: number,
  cacheHit: boolean,
  stale = false,
  offset = 0,
): string {
  // A page past the first is built per request: the kept bodies are for the pages nearly everyone asks for.
  if (!cacheHit || stale || offset > 0) return build(userId, list, limit, cacheHit, stale, offset);
  let kept = hitBodies.get(list);
  if (!kept) {
    kept = { bodies: new Map(), items: 0 };
    hitBodies.set(list, kept);
  }
  let body = kept.bodies.get(limit);
  if (body === undefined) {
    body = build(userId, list, limit, true);
    const n = Math.min(limit, list.items.length);
    if (kept.bodies.size < HIT_BODIES_PER_LIST && kept.items + n <= HIT_BODY_ITEMS_PER_LIST) {
      kept.bodies.set(limit, body);
      kept.items += n;
    }
  }
  return body;
}
