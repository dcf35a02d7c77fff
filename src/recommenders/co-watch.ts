/**
 * Item-to-item co-watch similarity as a pure function over typed arrays (no I/O): for every title, the
 * titles most often watched by the same users, by cosine over users
 *
 *   sim(i, j) = co(i, j) / sqrt(n_i · n_j)
 *
 * where n_i is the number of users who watched i and co(i, j) the number who watched both. Cosine rather
 * than raw co-counts: a raw count ranks the most popular titles first for every title; dividing by both
 * audiences asks "how much more than chance do these audiences overlap".
 *
 * Bounded work whatever the data: a user counts with their `window` most recent events (a hub user who
 * watched everything adds at most `window` titles), and a title's co-counts come from at most
 * `usersPerTitle` of its watchers (a title everyone watched costs the same as one with that many
 * watchers). The sample is the watchers lowest in a fixed hash order of user ids: deterministic, not
 * biased towards old (low-id) accounts, and the same users across titles. From a sample of s of n_i
 * watchers, co(i, j) is estimated as co_sample · n_i / s (exact when s = n_i).
 */
import { HISTORY_WINDOW } from '../domain/constants.js';

/** Similar titles kept per title. */
export const SIMILAR_K = 50;

/**
 * Watchers sampled per title. The co-count work is at most titles × USERS_PER_TITLE × window increments:
 * 100k titles × 1000 × 50 = 5·10⁹ in the worst case (every title watched by 1000+ users, every one of them
 * with a full window) whatever the number of users and however popular a title is, and far less in
 * practice (docs/architecture.md "Similar titles"). 1000 keeps a popular title's real neighbours: a title co-watched by
 * 1 % of its audience still has ~10 co-watchers in the sample, well clear of MIN_CO_WATCHERS.
 */
export const USERS_PER_TITLE = 1000;

/**
 * Pairs seen in fewer users' histories than this are dropped: with one shared user, two titles that only
 * that user watched score 1.0, the best possible, on no evidence at all.
 */
export const MIN_CO_WATCHERS = 2;

/** Every user's watch events, newest first, as CSR arrays over dense title indices. */
export interface WatchLists {
  /** The content id of each title index (ties between equal scores go to the lower content id). */
  titleIds: Float64Array;
  /** The user id of each user index (it orders the per-title sample). */
  userIds: Float64Array;
  /** User u's events are userTitles[userStart[u] .. userStart[u + 1]); length users + 1. */
  userStart: Int32Array;
  /** Title indices, each user's newest first; re-watches allowed. */
  userTitles: Int32Array;
}

export interface SimilarityOptions {
  /** Similar titles kept per title (default SIMILAR_K). */
  k?: number;
  /** Most recent events per user that count (default HISTORY_WINDOW). */
  window?: number;
  /** Watchers sampled per title (default USERS_PER_TITLE). */
  usersPerTitle?: number;
  /** Fewest shared users (in the sample) for a pair to count (default MIN_CO_WATCHERS). */
  minCoWatchers?: number;
}

/**
 * Per title with at least one similar title (title indices ascending): its similar titles, best first
 * (score descending, then content id ascending), as CSR arrays. A score that rounds to 0 is left out.
 */
export interface SimilarLists {
  titles: Int32Array;
  /** Row r's similar titles are similar[start[r] .. start[r + 1]). */
  start: Int32Array;
  similar: Int32Array;
  /** Score × 1000 (the score rounded to 3 decimals is milli / 1000, exactly). */
  milli: Uint16Array;
  /** Distinct (user, title) pairs used: recent events after the window and re-watches. */
  events: number;
  /** Co-count increments made: the cost the bounds cap. */
  work: number;
}

/**
 * The top-k similar titles of every title. The lists are handed over: each user's events are compacted
 * in place to their first `window` distinct titles (no copy of the largest array).
 */
export function coWatchSimilarity(lists: WatchLists, opts: SimilarityOptions = {}): SimilarLists {
  const k = opts.k ?? SIMILAR_K;
  const window = opts.window ?? HISTORY_WINDOW;
  const perTitle = opts.usersPerTitle ?? USERS_PER_TITLE;
  const minCo = opts.minCoWatchers ?? MIN_CO_WATCHERS;
  const { titleIds, userIds, userStart, userTitles } = lists;
  const titles = titleIds.length;
  const users = userIds.length;
  if (userStart.length !== users + 1) throw new RangeError(`userStart needs ${users + 1} entries, has ${userStart.length}`);

  const events = keepRecentDistinct(userStart, userTitles, window, titles);
  const watchers = new Int32Array(titles);
  for (let e = 0; e < events; e++) watchers[userTitles[e]!]! += 1;

  // Each title's sample: its first `perTitle` watchers in hash order (item → users CSR).
  const sampleStart = new Int32Array(titles + 1);
  for (let t = 0; t < titles; t++) sampleStart[t + 1] = sampleStart[t]! + Math.min(watchers[t]!, perTitle);
  const sampled = new Int32Array(sampleStart[titles]!);
  const fill = sampleStart.slice(0, titles);
  const order = hashOrder(userIds);
  for (let p = 0; p < users; p++) {
    const u = order[p]!;
    for (let e = userStart[u]!, end = userStart[u + 1]!; e < end; e++) {
      const t = userTitles[e]!;
      if (fill[t]! < sampleStart[t + 1]!) sampled[fill[t]!++] = u;
    }
  }

  const co = new Int32Array(titles);
  const touched = new Int32Array(titles);
  const best = new TopK(k, titleIds);
  const outTitles = new Int32Array(titles);
  const outStart = new Int32Array(titles + 1);
  const outSimilar = new Int32Array(titles * Math.min(k, Math.max(0, titles - 1)));
  const outMilli = new Uint16Array(outSimilar.length);
  let rows = 0;
  let written = 0;
  let work = 0;
  for (let i = 0; i < titles; i++) {
    const from = sampleStart[i]!;
    const to = sampleStart[i + 1]!;
    if (to === from) continue;
    let nTouched = 0;
    for (let p = from; p < to; p++) {
      const u = sampled[p]!;
      const end = userStart[u + 1]!;
      work += end - userStart[u]!;
      for (let e = userStart[u]!; e < end; e++) {
        const j = userTitles[e]!;
        if (co[j]!++ === 0) touched[nTouched++] = j;
      }
    }
    const ni = watchers[i]!;
    // co(i, j) ≈ co_sample · n_i / s, so sim ≈ co_sample · (n_i / s) / sqrt(n_i · n_j).
    const scale = ni / (to - from) / Math.sqrt(ni);
    best.clear();
    for (let q = 0; q < nTouched; q++) {
      const j = touched[q]!;
      const c = co[j]!;
      co[j] = 0;
      if (j === i || c < minCo) continue;
      const milli = Math.round(Math.min(1, (c * scale) / Math.sqrt(watchers[j]!)) * 1000);
      if (milli > 0) best.offer(j, milli);
    }
    if (best.size === 0) continue;
    outTitles[rows] = i;
    written = best.drainInto(outSimilar, outMilli, written);
    outStart[++rows] = written;
  }
  return {
    titles: outTitles.slice(0, rows),
    start: outStart.slice(0, rows + 1),
    similar: outSimilar.slice(0, written),
    milli: outMilli.slice(0, written),
    events,
    work,
  };
}

/**
 * Keeps each user's first `window` events and drops re-watches among them, in place (a write never
 * overtakes its read). Returns the events kept; userStart is rewritten to match.
 */
function keepRecentDistinct(userStart: Int32Array, userTitles: Int32Array, window: number, titles: number): number {
  const users = userStart.length - 1;
  const lastUser = new Int32Array(titles); // user index + 1 that last kept the title
  let kept = 0;
  let from = userStart[0]!;
  for (let u = 0; u < users; u++) {
    const next = userStart[u + 1]!;
    if (next < from || next > userTitles.length) throw new RangeError(`userStart[${u + 1}] = ${next} is out of order or range`);
    const to = Math.min(next, from + window);
    userStart[u] = kept;
    for (let e = from; e < to; e++) {
      const t = userTitles[e]!;
      if (!(t >= 0 && t < titles)) throw new RangeError(`title index ${t} is outside 0..${titles - 1}`);
      if (lastUser[t] === u + 1) continue;
      lastUser[t] = u + 1;
      userTitles[kept++] = t;
    }
    from = next;
  }
  userStart[users] = kept;
  return kept;
}

/** murmur3's 32-bit finalizer: a bijection on 32-bit integers that spreads every input bit. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A fixed pseudo-random key of an id up to 2^53 (both 32-bit halves count). */
export function sampleKey(id: number): number {
  return mix32((id >>> 0) ^ mix32(Math.floor(id / 2 ** 32) + 0x9e3779b9));
}

/** User indices ordered by sampleKey of their id (ties keep index order): two stable 16-bit radix passes. */
function hashOrder(userIds: Float64Array): Int32Array {
  const n = userIds.length;
  const keys = new Uint32Array(n);
  for (let u = 0; u < n; u++) keys[u] = sampleKey(userIds[u]!);
  let order = new Int32Array(n);
  for (let u = 0; u < n; u++) order[u] = u;
  let next = new Int32Array(n);
  const counts = new Int32Array(65_537);
  for (const shift of [0, 16]) {
    counts.fill(0);
    for (let u = 0; u < n; u++) counts[((keys[u]! >>> shift) & 0xffff) + 1]! += 1;
    for (let d = 1; d <= 65_536; d++) counts[d]! += counts[d - 1]!;
    for (let p = 0; p < n; p++) {
      const u = order[p]!;
      next[counts[(keys[u]! >>> shift) & 0xffff]!++] = u;
    }
    [order, next] = [next, order];
  }
  return order;
}

/**
 * The best k (title, score) pairs seen: a binary heap with the worst kept pair at the root, so a worse
 * offer costs one comparison. Better = higher score, then lower content id.
 */
class TopK {
  private readonly title: Int32Array;
  private readonly milli: Int32Array;
  size = 0;

  constructor(
    private readonly k: number,
    private readonly ids: Float64Array,
  ) {
    this.title = new Int32Array(k);
    this.milli = new Int32Array(k);
  }

  clear(): void {
    this.size = 0;
  }

  offer(title: number, milli: number): void {
    if (this.size < this.k) {
      let at = this.size++;
      // Sift up while the new pair is worse than its parent.
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (!this.better(this.title[parent]!, this.milli[parent]!, title, milli)) break;
        this.title[at] = this.title[parent]!;
        this.milli[at] = this.milli[parent]!;
        at = parent;
      }
      this.title[at] = title;
      this.milli[at] = milli;
    } else if (this.k > 0 && this.better(title, milli, this.title[0]!, this.milli[0]!)) {
      this.replaceRoot(title, milli);
    }
  }

  /** Writes the kept pairs best first at `at`; returns the position after them. Empties the heap. */
  drainInto(similar: Int32Array, milli: Int32Array | Uint16Array, at: number): number {
    const end = at + this.size;
    // Popping yields the worst first: fill from the back.
    for (let p = end - 1; p >= at; p--) {
      similar[p] = this.title[0]!;
      milli[p] = this.milli[0]!;
      const last = --this.size;
      if (last > 0) this.replaceRoot(this.title[last]!, this.milli[last]!);
    }
    return end;
  }

  private replaceRoot(title: number, milli: number): void {
    const n = this.size;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= n) break;
      // Move towards the worse child.
      if (child + 1 < n && this.better(this.title[child]!, this.milli[child]!, this.title[child + 1]!, this.milli[child + 1]!)) child += 1;
      if (!this.better(title, milli, this.title[child]!, this.milli[child]!)) break;
      this.title[at] = this.title[child]!;
      this.milli[at] = this.milli[child]!;
      at = child;
    }
    this.title[at] = title;
    this.milli[at] = milli;
  }

  private better(a: number, aMilli: number, b: number, bMilli: number): boolean {
    return aMilli > bMilli || (aMilli === bMilli && this.ids[a]! < this.ids[b]!);
  }
}
