/**
 * The latent structure the seed plants in its watch events (docs/demo-data.md): TASTES audiences that cut
 * across genres, each title a sparse profile over them, each user a mixture of one to three tastes plus a
 * drift taste that grows over their timeline. A watch draws a taste from the user's mixture, then a title of
 * that taste in proportion to its appeal (popularity_score^POPULARITY_EXPONENT) × its weight in the taste.
 * Users pick tastes in proportion to each taste's appeal mass, so a title's expected watch count stays
 * proportional to its appeal: the watch counts rank titles as popularity_score does.
 */

/** Audiences: a few per genre (taste k's home genre is k mod the genre count), each reaching into every genre. */
export const TASTES = 24;
/** A primary taste and up to two secondary ones per title. */
export const TASTES_PER_TITLE = 3;
/** Chance a title's primary taste is one of its own genre's: genre stays a signal, not the whole story. */
const GENRE_AFFINITY = 0.7;
const SECOND_TASTE = 0.4;
/** Given a second taste, the chance of a third. */
const THIRD_TASTE = 0.3;
/**
 * Watches go in proportion to popularity_score to this power: the planted scores fall as rank^-0.8, the watch
 * counts then as about rank^-1, which puts ~60 % of events on the top 10 % of titles, as on MovieLens.
 */
export const POPULARITY_EXPONENT = 1.2;
/** Share of watches outside the user's tastes: the whole catalog by popularity, and uniformly (the long tail). */
export const MAINSTREAM_SHARE = 0.1;
export const UNIFORM_SHARE = 0.05;
/** The drift taste's share of a user's taste-driven watches grows linearly from 0 to this over their events. */
export const DRIFT_MAX = 0.6;

export interface TitleTastes {
  /** Slot j of title `id` is `taste[id * TASTES_PER_TITLE + j]` with `weight[…]`; weight 0 = empty slot. */
  readonly taste: Uint8Array;
  /** A title's weights sum to 1, the primary's the largest. */
  readonly weight: Float32Array;
}

/**
 * The profiles of titles 1..n, drawn in id order from `rng` (their own stream), so a larger catalog keeps a
 * smaller one's profiles. `genreOf(id)` is the title's genre index among `genres`.
 */
export function titleTastes(n: number, genreOf: (id: number) => number, genres: number, rng: () => number): TitleTastes {
  const taste = new Uint8Array((n + 1) * TASTES_PER_TITLE);
  const weight = new Float32Array((n + 1) * TASTES_PER_TITLE);
  for (let id = 1; id <= n; id++) {
    const at = id * TASTES_PER_TITLE;
    const g = genreOf(id);
    const ofGenre = Math.floor((TASTES - 1 - g) / genres) + 1;
    taste[at] = rng() < GENRE_AFFINITY ? g + genres * Math.floor(rng() * ofGenre) : Math.floor(rng() * TASTES);
    let primary = 1;
    for (let j = 1; j < TASTES_PER_TITLE && rng() < (j === 1 ? SECOND_TASTE : THIRD_TASTE); j++) {
      taste[at + j] = distinctTaste(taste, at, j, rng);
      weight[at + j] = 0.1 + 0.2 * rng();
      primary -= weight[at + j]!;
    }
    weight[at] = primary;
  }
  return { taste, weight };
}

/** A taste not among the first `j` slots at `at`. */
function distinctTaste(taste: Uint8Array, at: number, j: number, rng: () => number): number {
  for (;;) {
    const t = Math.floor(rng() * TASTES);
    let taken = false;
    for (let k = 0; k < j; k++) taken ||= taste[at + k] === t;
    if (!taken) return t;
  }
}

/** Draws ids with probability proportional to weight, by binary search over the cumulative sum. */
export class WeightedPicker {
  private readonly ids: Int32Array;
  private readonly cumulative: Float64Array;
  /** `weights[i]` is the weight of `ids[i]`. */
  constructor(ids: Int32Array, weights: Float64Array) {
    this.ids = ids;
    this.cumulative = new Float64Array(ids.length);
    let sum = 0;
    for (let i = 0; i < ids.length; i++) this.cumulative[i] = sum += weights[i]!;
  }
  get size(): number {
    return this.ids.length;
  }
  get total(): number {
    return this.cumulative.length > 0 ? this.cumulative[this.cumulative.length - 1]! : 0;
  }
  pick(u: number): number {
    const c = this.cumulative;
    const target = u * c[c.length - 1]!;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return this.ids[lo]!;
  }
}

/** The samplers of watches: by taste, over the whole catalog, and of tastes. */
export class TasteCatalog {
  /** Per taste, its titles by appeal × weight in the taste. */
  readonly byTaste: WeightedPicker[];
  /** Every title by appeal: mainstream watching, outside any taste. */
  readonly mainstream: WeightedPicker;
  /** Tastes by their appeal mass, for drawing users' tastes. */
  readonly tastes: WeightedPicker;

  /** `popularity[id]` is title id's popularity_score (index 0 unused). */
  constructor(profiles: TitleTastes, popularity: Float64Array) {
    const n = popularity.length - 1;
    const appeal = popularity.map((p) => p ** POPULARITY_EXPONENT);
    this.mainstream = new WeightedPicker(Int32Array.from({ length: n }, (_, i) => i + 1), appeal.subarray(1));
    const sizes = new Int32Array(TASTES);
    for (let i = TASTES_PER_TITLE; i < profiles.taste.length; i++) if (profiles.weight[i]! > 0) sizes[profiles.taste[i]!]! += 1;
    const ids = Array.from(sizes, (size) => new Int32Array(size));
    const weights = Array.from(sizes, (size) => new Float64Array(size));
    const filled = new Int32Array(TASTES);
    for (let id = 1; id <= n; id++) {
      for (let j = 0; j < TASTES_PER_TITLE; j++) {
        const w = profiles.weight[id * TASTES_PER_TITLE + j]!;
        if (w === 0) continue;
        const t = profiles.taste[id * TASTES_PER_TITLE + j]!;
        ids[t]![filled[t]!] = id;
        weights[t]![filled[t]!++] = appeal[id]! * w;
      }
    }
    this.byTaste = ids.map((tasteIds, t) => new WeightedPicker(tasteIds, weights[t]!));
    this.tastes = new WeightedPicker(Int32Array.from({ length: TASTES }, (_, t) => t),
      Float64Array.from(this.byTaste, (p) => p.total));
  }
}

/**
 * One user's tastes at a time (reused across users, so nothing per user outlives them): one to three base
 * tastes with random shares, and a drift taste whose share grows over the user's events.
 */
export class UserTastes {
  private readonly base = new Int32Array(3);
  private readonly cumulative = new Float64Array(3);
  private count = 0;
  private drift = 0;

  constructor(private readonly catalog: TasteCatalog) {}

  draw(rng: () => number): void {
    const r = rng();
    this.count = r < 0.4 ? 1 : r < 0.8 ? 2 : 3;
    let sum = 0;
    for (let i = 0; i < this.count; i++) {
      this.base[i] = this.distinct(i, rng);
      this.cumulative[i] = sum += 0.2 + rng();
    }
    for (let i = 0; i < this.count; i++) this.cumulative[i]! /= sum;
    this.drift = this.distinct(this.count, rng);
  }

  /** The taste behind a watch at `progress` (0 first event … 1 last) through the user's timeline. */
  at(progress: number, rng: () => number): number {
    if (rng() < DRIFT_MAX * progress) return this.drift;
    const u = rng();
    let i = 0;
    while (i < this.count - 1 && this.cumulative[i]! <= u) i++;
    return this.base[i]!;
  }

  /** A taste by popularity mass, not among the first `n` base tastes if a few tries find one (a tiny catalog may not). */
  private distinct(n: number, rng: () => number): number {
    let t = 0;
    for (let attempt = 0; attempt < 16; attempt++) {
      t = this.catalog.tastes.pick(rng());
      let taken = false;
      for (let i = 0; i < n; i++) taken ||= this.base[i] === t;
      if (!taken) break;
    }
    return t;
  }
}
