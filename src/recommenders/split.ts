/**
 * The temporal hold-out of the evaluation protocol (docs/quality.md): per user, the chronologically last
 * `fraction` of events (at least one) are the test set and everything before them is training; users with
 * fewer than two events are not evaluated (their events stay in training). With `cutMs`, a global time
 * cut instead: events at or after it are the test set of users who have training events before it.
 *
 * Models only ever see `train`: the test events are cut out of the rows, not masked.
 */
import { itemCount, sliceUsers, userCount, type Interactions } from './interactions.js';

export interface SplitOptions {
  /** Share of each user's events held out (default 0.1). */
  fraction?: number;
  /** A global time cut, epoch ms (instead of the per-user fraction). */
  cutMs?: number;
}

export interface Split {
  train: Interactions;
  /** Per user index, the distinct held-out items the user had not watched in training (empty: not evaluated). */
  test: Int32Array[];
  /** User indices that are evaluated (a non-empty test set). */
  evaluated: Int32Array;
  /** Per user index, the time of their last training event (what a request at the cut would see). */
  trainEndMs: Float64Array;
}

export const DEFAULT_TEST_FRACTION = 0.1;

/** How many of a user's `n` events the per-user hold-out takes (0 below two events). */
export function heldOutCount(n: number, fraction: number): number {
  if (n < 2) return 0;
  return Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
}

export function temporalSplit(all: Interactions, opts: SplitOptions = {}): Split {
  const fraction = opts.fraction ?? DEFAULT_TEST_FRACTION;
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`fraction must be in (0, 1), got ${fraction}`);
  const users = userCount(all);
  const cutAt = new Int32Array(users);
  for (let u = 0; u < users; u++) {
    const from = all.userStart[u]!;
    const to = all.userStart[u + 1]!;
    if (opts.cutMs === undefined) {
      cutAt[u] = to - heldOutCount(to - from, fraction);
    } else {
      let c = from;
      while (c < to && all.times[c]! < opts.cutMs) c += 1;
      cutAt[u] = c;
    }
  }
  const train = sliceUsers(all, (u, from) => [from, cutAt[u]!]);
  const test: Int32Array[] = new Array(users);
  const evaluated: number[] = [];
  const trainEndMs = new Float64Array(users);
  const mark = new Int32Array(itemCount(all)).fill(-1);
  for (let u = 0; u < users; u++) {
    const from = all.userStart[u]!;
    const cut = cutAt[u]!;
    const to = all.userStart[u + 1]!;
    trainEndMs[u] = cut > from ? all.times[cut - 1]! : 0;
    for (let e = from; e < cut; e++) mark[all.items[e]!] = u;
    const held: number[] = [];
    // A re-watch of a training title cannot be recommended (watched titles never are): not a target.
    if (cut > from) {
      for (let e = cut; e < to; e++) {
        const i = all.items[e]!;
        if (mark[i] === u) continue;
        mark[i] = u;
        held.push(i);
      }
    }
    test[u] = Int32Array.from(held);
    if (held.length > 0) evaluated.push(u);
  }
  return { train, test, evaluated: Int32Array.from(evaluated), trainEndMs };
}
