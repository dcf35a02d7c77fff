/**
 * Response bodies of the recommendation route, built from JSON fragments computed once per cached list:
 * a cache hit concatenates strings, it never re-serializes the list.
 */
import { HIT_BODIES_PER_LIST, HIT_BODY_ITEMS_PER_LIST } from '../domain/constants.js';
import { fragmentsOf } from '../domain/recommendation-json.js';
import type { RecommendationList } from '../domain/types.js';

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
