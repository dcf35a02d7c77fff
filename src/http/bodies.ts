/**
 * Response bodies of the recommendation route, built from JSON fragments computed once per cached list:
 * a cache hit concatenates strings, it never re-serializes the list.
 */
import { fragmentsOf } from '../domain/recommendation-json.js';
import type { RecommendationList } from '../domain/types.js';

/** Whole cache-hit bodies per (list, limit): a few limits per list, so memory stays bounded. */
const hitBodies = new WeakMap<RecommendationList, Map<number, string>>();
const HIT_BODIES_PER_LIST = 4;

function build(userId: number, list: RecommendationList, limit: number, cacheHit: boolean, stale = false): string {
  const n = Math.min(limit, list.items.length);
  const parts = fragmentsOf(list, n);
  const items = n === parts.length ? parts.join(',') : parts.slice(0, n).join(',');
  return (
    `{"user_id":${userId},"recommendations":[${items}],"metadata":{"cache_hit":${cacheHit},` +
    `"generated_at":"${list.generatedAt}","total_count":${n},"source":"${list.source}"${stale ? ',"stale":true' : ''}}}`
  );
}

export function recommendationsBody(
  userId: number,
  list: RecommendationList,
  limit: number,
  cacheHit: boolean,
  stale = false,
): string {
  if (!cacheHit || stale) return build(userId, list, limit, cacheHit, stale);
  let bodies = hitBodies.get(list);
  if (!bodies) {
    bodies = new Map();
    hitBodies.set(list, bodies);
  }
  let body = bodies.get(limit);
  if (body === undefined) {
    body = build(userId, list, limit, true);
    if (bodies.size < HIT_BODIES_PER_LIST) bodies.set(limit, body);
  }
  return body;
}
