/**
 * Watch events as compressed rows over dense indices: what every model trains on and the evaluation
 * splits. Each user's events are in time order (oldest first), so "the last n" is a slice.
 */

export interface Interactions {
  /** The user id of each user index. */
  userIds: Float64Array;
  /** The content id of each item index. */
  itemIds: Float64Array;
  /** User u's events are items[userStart[u] .. userStart[u + 1]); length users + 1. */
  userStart: Int32Array;
  /** Item index of each event, each user's oldest first. */
  items: Int32Array;
  /** Epoch ms of each event. */
  times: Float64Array;
}

export const userCount = (x: Interactions): number => x.userIds.length;
export const itemCount = (x: Interactions): number => x.itemIds.length;

/** One user's events as they arrive from the database: content ids and times, oldest first. */
export interface UserEvents {
  userId: number;
  contentIds: readonly number[];
  timesMs: readonly number[];
}

/**
 * Builds the rows from per-user event lists (any user order; each list oldest first). `itemIds` fixes
 * the item indices (e.g. the catalog's titles, so a title nobody watched still has one); content ids
 * outside it are added after.
 */
export function buildInteractions(users: Iterable<UserEvents>, itemIds: readonly number[] = []): Interactions {
  const indexOf = new Map<number, number>();
  const ids: number[] = [];
  for (const id of itemIds) {
    if (!indexOf.has(id)) {
      indexOf.set(id, ids.length);
      ids.push(id);
    }
  }
  const userIds: number[] = [];
  const starts: number[] = [0];
  let items = new Int32Array(1024);
  let times = new Float64Array(1024);
  let n = 0;
  for (const u of users) {
    if (n + u.contentIds.length > items.length) {
      const size = Math.max(items.length * 2, n + u.contentIds.length);
      const grownItems = new Int32Array(size);
      grownItems.set(items.subarray(0, n));
      const grownTimes = new Float64Array(size);
      grownTimes.set(times.subarray(0, n));
      items = grownItems;
      times = grownTimes;
    }
    for (let e = 0; e < u.contentIds.length; e++) {
      const id = u.contentIds[e]!;
      let at = indexOf.get(id);
      if (at === undefined) {
        at = ids.length;
        indexOf.set(id, at);
        ids.push(id);
      }
      items[n] = at;
      times[n++] = u.timesMs[e]!;
    }
    userIds.push(u.userId);
    starts.push(n);
  }
  return {
    userIds: Float64Array.from(userIds),
    itemIds: Float64Array.from(ids),
    userStart: Int32Array.from(starts),
    items: items.slice(0, n),
    times: times.slice(0, n),
  };
}

/** A subset of each user's events (same users and items): `keep(u, from, to)` returns the kept range's end. */
export function sliceUsers(x: Interactions, range: (u: number, from: number, to: number) => [number, number]): Interactions {
  const users = userCount(x);
  const userStart = new Int32Array(users + 1);
  let total = 0;
  const ranges = new Int32Array(2 * users);
  for (let u = 0; u < users; u++) {
    const [a, b] = range(u, x.userStart[u]!, x.userStart[u + 1]!);
    ranges[2 * u] = a;
    ranges[2 * u + 1] = b;
    total += b - a;
  }
  const items = new Int32Array(total);
  const times = new Float64Array(total);
  let n = 0;
  for (let u = 0; u < users; u++) {
    const a = ranges[2 * u]!;
    const b = ranges[2 * u + 1]!;
    items.set(x.items.subarray(a, b), n);
    times.set(x.times.subarray(a, b), n);
    n += b - a;
    userStart[u + 1] = n;
  }
  return { userIds: x.userIds, itemIds: x.itemIds, userStart, items, times };
}

/** Watch events per item (re-watches by one user count once). */
export function itemCounts(x: Interactions): Float64Array {
  const counts = new Float64Array(itemCount(x));
  const last = new Int32Array(itemCount(x)).fill(-1);
  for (let u = 0; u < userCount(x); u++) {
    for (let e = x.userStart[u]!; e < x.userStart[u + 1]!; e++) {
      const i = x.items[e]!;
      if (last[i] === u) continue;
      last[i] = u;
      counts[i]! += 1;
    }
  }
  return counts;
}

/** Each user's distinct items (the first occurrence order), as rows: what implicit-feedback models see. */
export function distinctRows(x: Interactions): { start: Int32Array; items: Int32Array } {
  const users = userCount(x);
  const start = new Int32Array(users + 1);
  const out = new Int32Array(x.items.length);
  const last = new Int32Array(itemCount(x)).fill(-1);
  let n = 0;
  for (let u = 0; u < users; u++) {
    for (let e = x.userStart[u]!; e < x.userStart[u + 1]!; e++) {
      const i = x.items[e]!;
      if (last[i] === u) continue;
      last[i] = u;
      out[n++] = i;
    }
    start[u + 1] = n;
  }
  return { start, items: out.slice(0, n) };
}

/**
 * A subset of the users (all items kept), a fixed pseudo-random choice holding at most `maxEvents` events:
 * what a model search trains on when the data is larger than the search needs.
 */
export function sampleUsersUpTo(x: Interactions, maxEvents: number, seed: number): Interactions {
  if (x.items.length <= maxEvents) return x;
  const users = userCount(x);
  const order = Array.from({ length: users }, (_, u) => u);
  let a = seed >>> 0;
  for (let i = users - 1; i > 0; i--) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const j = a % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const kept: number[] = [];
  let events = 0;
  for (const u of order) {
    const n = x.userStart[u + 1]! - x.userStart[u]!;
    if (events + n > maxEvents) continue;
    kept.push(u);
    events += n;
  }
  kept.sort((p, q) => p - q);
  const userStart = new Int32Array(kept.length + 1);
  const items = new Int32Array(events);
  const times = new Float64Array(events);
  let n = 0;
  kept.forEach((u, k) => {
    const from = x.userStart[u]!;
    const to = x.userStart[u + 1]!;
    items.set(x.items.subarray(from, to), n);
    times.set(x.times.subarray(from, to), n);
    n += to - from;
    userStart[k + 1] = n;
  });
  return { userIds: Float64Array.from(kept, (u) => x.userIds[u]!), itemIds: x.itemIds, userStart, items, times };
}
