/**
 * The catalog as columns in candidate order (popularity DESC, then id): what scoring reads. The numbers
 * live in SharedArrayBuffers, so a scoring thread reads the very memory the HTTP worker loaded — a task
 * carries only the user's own signals (genre preferences, watched positions), never the candidates.
 */
import type { Audience, Candidate } from './types.js';

export interface CatalogColumns {
  /** Titles in this snapshot; position i of every column is the same title. */
  size: number;
  ids: Float64Array;
  popularity: Float64Array;
  createdAtMs: Float64Array;
  /** Index into `genres` (kept on the loading thread: scoring needs only the index). */
  genre: Uint16Array;
}

/** Columns plus what only the loading thread needs: the title objects and the genre names. */
export interface CatalogSnapshot extends CatalogColumns {
  /** Titles by position (the same order as the columns). */
  items: Candidate[];
  genres: string[];
  /** Position of each content id. */
  positionOf: Map<number, number>;
  /** Index of each genre name in `genres`. */
  genreIndex: Map<string, number>;
  /** 1 where the title is hidden. */
  hidden: Uint8Array;
  /** Lowest tier (index) each title is for. */
  tier: Uint8Array;
  /** Allowed countries of each country-restricted title, by position (unrestricted titles are absent). */
  countries: Map<number, ReadonlySet<string>>;
  /** Some title is hidden, tiered or country-restricted: candidates need an availability filter. */
  restricted: boolean;
  /** Digest of every title's hidden flag, tier and countries: two snapshots with equal rules filter alike. */
  rules: string;
  /** Availability per audience, built on first need (availableTo). */
  availability: Map<string, Uint8Array>;
  /** Positions newest first (created_at DESC, id), built on first need (latestOrder). */
  latest: Int32Array | undefined;
}

/** Builds the snapshot in candidate order: popularity DESC, then id (already sorted input costs O(n)). */
export function catalogSnapshot(titles: readonly Candidate[]): CatalogSnapshot {
  const items = [...titles].sort((a, b) => b.popularity - a.popularity || a.id - b.id);
  const n = items.length;
  const ids = new Float64Array(new SharedArrayBuffer(8 * n));
  const popularity = new Float64Array(new SharedArrayBuffer(8 * n));
  const createdAtMs = new Float64Array(new SharedArrayBuffer(8 * n));
  const genre = new Uint16Array(new SharedArrayBuffer(2 * n));
  const genres: string[] = [];
  const genreIndex = new Map<string, number>();
  const positionOf = new Map<number, number>();
  const hidden = new Uint8Array(n);
  const tier = new Uint8Array(n);
  const countries = new Map<number, ReadonlySet<string>>();
  // FNV-1a over (hidden, tier, countries) per title: equal digests, equal availability (collisions aside).
  let digest = 0x811c9dc5;
  const mix = (x: number) => (digest = Math.imul(digest ^ x, 0x01000193) >>> 0);
  for (let i = 0; i < n; i++) {
    const c = items[i]!;
    hidden[i] = c.hidden ? 1 : 0;
    tier[i] = c.tier ?? 0;
    mix(c.id % 0x100000000);
    mix(hidden[i]! * 4 + tier[i]!);
    if (c.countries && c.countries.length > 0) {
      countries.set(i, new Set(c.countries));
      for (const country of c.countries) for (let k = 0; k < country.length; k++) mix(country.charCodeAt(k));
    }
    ids[i] = c.id;
    popularity[i] = c.popularity;
    createdAtMs[i] = c.createdAtMs;
    let g = genreIndex.get(c.genre);
    if (g === undefined) {
      g = genres.length;
      if (g > 0xffff) throw new Error('more than 65,536 genres');
      genreIndex.set(c.genre, g);
      genres.push(c.genre);
    }
    c.genre = genres[g]!; // one string per genre, not one per title (the driver makes a string per row)
    genre[i] = g;
    positionOf.set(c.id, i);
  }
  const restricted = countries.size > 0 || hidden.includes(1) || tier.some((t) => t > 0);
  return {
    size: n, ids, popularity, createdAtMs, genre, items, genres, positionOf, genreIndex,
    hidden, tier, countries, restricted, rules: `${n}:${digest.toString(16)}`, availability: new Map(), latest: undefined,
  };
}

/**
 * Which positions `audience` may be recommended (1) in this snapshot: not hidden, tier at or below the
 * user's, and no country list or the user's country on it. Undefined when no title is restricted (every
 * position may be). Built once per audience and snapshot, in shared memory: a scoring task carries a view.
 */
export function availableTo(s: CatalogSnapshot, audience: Audience): Uint8Array | undefined {
  if (!s.restricted) return undefined;
  const key = `${audience.tier}:${audience.country ?? ''}`;
  let available = s.availability.get(key);
  if (available) return available;
  // One pass over two typed arrays, then only the country-restricted titles: a build costs ~0.1 ms at 100k
  // titles (a Map lookup per title cost ~1.5 ms, once per audience after every catalog reload).
  available = new Uint8Array(new SharedArrayBuffer(s.size));
  const { hidden, tier } = s;
  const at = audience.tier;
  for (let i = 0; i < s.size; i++) available[i] = hidden[i] === 0 && tier[i]! <= at ? 1 : 0;
  for (const [i, allowed] of s.countries) {
    if (audience.country === null || !allowed.has(audience.country)) available[i] = 0;
  }
  s.availability.set(key, available);
  return available;
}

/** Whether `audience` may be shown the title at `position` (see availableTo). */
export function availableAt(s: CatalogSnapshot, position: number, audience: Audience | undefined): boolean {
  if (s.hidden[position] === 1) return false;
  if (!audience) return true;
  const allowed = s.countries.get(position);
  return s.tier[position]! <= audience.tier && (!allowed || (audience.country !== null && allowed.has(audience.country)));
}

/** Positions newest first: created_at DESC, then id (built once per snapshot). */
export function latestOrder(s: CatalogSnapshot): Int32Array {
  if (s.latest) return s.latest;
  const order = Int32Array.from({ length: s.size }, (_, i) => i);
  order.sort((a, b) => s.createdAtMs[b]! - s.createdAtMs[a]! || s.ids[a]! - s.ids[b]!);
  s.latest = order;
  return order;
}

/** The columns alone: what crosses to a scoring thread (shared buffers, no copy). */
export function columnsOf(s: CatalogColumns): CatalogColumns {
  return { size: s.size, ids: s.ids, popularity: s.popularity, createdAtMs: s.createdAtMs, genre: s.genre };
}
