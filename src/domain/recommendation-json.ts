/**
 * JSON of a list's items, built once per list and per item: the response bodies (http/bodies.ts) and the
 * Redis value (data/recommendation-cache.ts) are concatenations of these fragments; so are their items'
 * explanations (`?explain=true`), built when asked for. A title's fragment
 * up to its score is the same in every list that recommends it, so it is kept per title (bounded by the
 * catalog) and a miss never runs JSON.stringify over its items.
 */
import type { Explanation, Recommendation, RecommendationList } from './types.js';

/** `{"content_id":…,"title":…,"genre":…,"popularity_score":…,"score":` of a title, with what it was built from. */
interface Prefix {
  title: string;
  genre: string;
  popularity: number;
  text: string;
}

/** Titles in the prefix cache at most; past it the cache starts over (the catalog is usually far smaller). */
const MAX_PREFIXES = 200_000;
const prefixes = new Map<number, Prefix>();
const fragments = new WeakMap<RecommendationList, string[]>();

function prefixOf(item: Recommendation): string {
  const known = prefixes.get(item.content_id);
  // A title renamed or re-scored since: build it again from what the item says now.
  if (known && known.title === item.title && known.genre === item.genre && known.popularity === item.popularity_score) return known.text;
  const text =
    `{"content_id":${item.content_id},"title":${JSON.stringify(item.title)},"genre":${JSON.stringify(item.genre)},` +
    `"popularity_score":${JSON.stringify(item.popularity_score)},"score":`;
  if (prefixes.size >= MAX_PREFIXES) prefixes.clear();
  prefixes.set(item.content_id, { title: item.title, genre: item.genre, popularity: item.popularity_score, text });
  return text;
}

/** Exactly JSON.stringify(item), from the title's cached prefix. */
export function itemJson(item: Recommendation): string {
  return prefixOf(item) + JSON.stringify(item.score) + '}';
}

/** The first `n` items' JSON fragments of a list, made on first need and kept with the list. */
export function fragmentsOf(list: RecommendationList, n: number): string[] {
  let parts = fragments.get(list);
  if (!parts) {
    parts = [];
    fragments.set(list, parts);
  }
  const upTo = Math.min(n, list.items.length);
  for (let i = parts.length; i < upTo; i++) parts.push(itemJson(list.items[i]!));
  return parts;
}

/** `[…]` of every item of the list. */
export function itemsJson(list: RecommendationList): string {
  return `[${fragmentsOf(list, list.items.length).join(',')}]`;
}

/** `{"kind":…,"because":[…]}` of one explanation, `because` left out when empty: the API's shape and Redis's. */
export function explanationJson(e: Explanation): string {
  // Kinds are fixed words and ids integers (a Redis value is checked when read): nothing to escape.
  return e.because !== undefined && e.because.length > 0 ? `{"kind":"${e.kind}","because":[${e.because.join(',')}]}` : `{"kind":"${e.kind}"}`;
}

/** `[…]` of explanations, parallel to a list's items. */
export function explanationsJson(explanations: readonly Explanation[]): string {
  return `[${explanations.map(explanationJson).join(',')}]`;
}
