/**
 * Item-to-item neighbours for the `item-cf` model: each title's most similar titles by cosine over the
 * users who watched them (co-watch.ts, bounded work at any scale), in item-index space. A user's score for
 * a title is the sum of its similarities to their history, recent events weighing more (ranking.ts).
 */
import { coWatchSimilarity } from './co-watch.js';
import { itemCount, userCount, type Interactions } from './interactions.js';

export interface Neighbours {
  /** Item i's neighbours are item[start[i] .. start[i + 1]), best first; length items + 1. */
  start: Int32Array;
  item: Int32Array;
  sim: Float32Array;
}

export interface ItemCfParams {
  /** Neighbours kept per title. */
  k: number;
  /** Most recent distinct events per user that count. */
  window: number;
  /** Watchers sampled per title (co-watch.ts). */
  usersPerTitle: number;
}

export const DEFAULT_ITEM_CF: ItemCfParams = { k: 100, window: 500, usersPerTitle: 2000 };

export function trainItemCf(data: Interactions, params: Partial<ItemCfParams> = {}): Neighbours {
  const p = { ...DEFAULT_ITEM_CF, ...params };
  const users = userCount(data);
  const items = itemCount(data);
  // co-watch.ts reads each user's events newest first and compacts them in place: give it a reversed copy.
  const userTitles = new Int32Array(data.items.length);
  for (let u = 0; u < users; u++) {
    const from = data.userStart[u]!;
    const to = data.userStart[u + 1]!;
    for (let e = from; e < to; e++) userTitles[from + (to - 1 - e)] = data.items[e]!;
  }
  const lists = coWatchSimilarity(
    { titleIds: data.itemIds, userIds: data.userIds, userStart: data.userStart.slice(), userTitles },
    { k: p.k, window: p.window, usersPerTitle: p.usersPerTitle, minCoWatchers: 2 },
  );
  const start = new Int32Array(items + 1);
  for (let r = 0; r < lists.titles.length; r++) start[lists.titles[r]! + 1] = lists.start[r + 1]! - lists.start[r]!;
  for (let i = 0; i < items; i++) start[i + 1]! += start[i]!;
  const sim = new Float32Array(lists.milli.length);
  for (let e = 0; e < sim.length; e++) sim[e] = lists.milli[e]! / 1000;
  // Rows come out in ascending title order, so the CSR arrays are the lists' own.
  return { start, item: lists.similar, sim };
}
