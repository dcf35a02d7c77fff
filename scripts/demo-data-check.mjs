#!/usr/bin/env node
/**
 * A sanity check that the seeded demo data carries learnable structure (docs/demo-data.md): on whatever
 * DATABASE_URL holds, each user's chronologically last 10 % of events (at least 1; users with fewer than 2
 * skipped) are held out, and NDCG@10 over a full ranking of the titles the user has not watched in train is
 * printed for train-count popularity, item-kNN (cosine over users, summed over the whole train history) and
 * item-kNN over the last RECENT train events only, and the seed's formula (noise off, genre preference from the
 * last 50 train events, recency at the seed's epoch). Also how well popularity_score ranks the real watch counts.
 * Not the service's evaluation (`npm run evaluate` scores through the serving code): an independent check.
 *
 *   npm run build && DATABASE_URL=postgres://… node scripts/demo-data-check.mjs
 */
import postgres from 'postgres';

const HOLDOUT = 0.1;
const K = 10;
const RECENT = 10;

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is required');
  process.exit(2);
}
const sql = postgres(url, { max: 1, onnotice: () => {} });
const [{ n: nTitles }] = await sql`SELECT coalesce(max(id), 0)::int AS n FROM content`;
const rows = await sql`SELECT user_id, content_id FROM user_watch_history ORDER BY user_id, watched_at, id`.values();
const popularityScore = new Float64Array(nTitles + 1);
const genreOf = new Int32Array(nTitles + 1);
const recency = new Float64Array(nTitles + 1);
const genres = new Map();
const epochMs = Date.UTC(2026, 0, 1);
for (const [id, score, genre, created] of await sql`SELECT id, popularity_score, genre, created_at FROM content`.values()) {
  popularityScore[id] = score;
  if (!genres.has(genre)) genres.set(genre, genres.size);
  genreOf[id] = genres.get(genre);
  recency[id] = 1 / (1 + Math.max(0, (epochMs - created.getTime()) / 86_400_000) / 365);
}
await sql.end();

// Per user: [from, split, to) into `items`, the first part train, the rest test.
const items = Int32Array.from(rows, (r) => r[1]);
const users = [];
for (let from = 0; from < rows.length;) {
  let to = from;
  while (to < rows.length && rows[to][0] === rows[from][0]) to++;
  const n = to - from;
  if (n >= 2) users.push({ from, split: to - Math.max(1, Math.round(n * HOLDOUT)), to });
  from = to;
}

const trainCount = new Float64Array(nTitles + 1);
const allCount = new Float64Array(nTitles + 1);
for (const u of users) for (let i = u.from; i < u.split; i++) trainCount[items[i]]++;
for (const id of items) allCount[id]++;

// Item-item co-watch counts over train, dense (fine for a few thousand titles), then cosine.
const co = new Float32Array((nTitles + 1) * (nTitles + 1));
for (const u of users) {
  for (let i = u.from; i < u.split; i++) {
    const a = items[i] * (nTitles + 1);
    for (let j = u.from; j < u.split; j++) if (i !== j) co[a + items[j]]++;
  }
}
for (let a = 1; a <= nTitles; a++) {
  for (let b = 1; b <= nTitles; b++) {
    const d = Math.sqrt(trainCount[a] * trainCount[b]);
    co[a * (nTitles + 1) + b] = d > 0 ? co[a * (nTitles + 1) + b] / d : 0;
  }
}

const discount = Array.from({ length: K }, (_, i) => 1 / Math.log2(i + 2));
function ndcg(scores, u) {
  const seen = new Set();
  for (let i = u.from; i < u.split; i++) seen.add(items[i]);
  const top = []; // [score, id], kept sorted descending, at most K (ties: lower id first)
  for (let id = 1; id <= nTitles; id++) {
    if (seen.has(id)) continue;
    const s = scores[id];
    if (top.length === K && s <= top[K - 1][0]) continue;
    let at = top.length;
    while (at > 0 && top[at - 1][0] < s) at--;
    top.splice(at, 0, [s, id]);
    if (top.length > K) top.pop();
  }
  const test = new Set();
  for (let i = u.split; i < u.to; i++) test.add(items[i]);
  let dcg = 0;
  top.forEach(([, id], i) => { if (test.has(id)) dcg += discount[i]; });
  let ideal = 0;
  for (let i = 0; i < Math.min(K, test.size); i++) ideal += discount[i];
  return dcg / ideal;
}

const knnScores = new Float64Array(nTitles + 1);
function knn(u, from) {
  knnScores.fill(0);
  for (let i = from; i < u.split; i++) {
    const row = items[i] * (nTitles + 1);
    for (let b = 1; b <= nTitles; b++) knnScores[b] += co[row + b];
  }
  return knnScores;
}

const formulaScores = new Float64Array(nTitles + 1);
function formula(u) {
  const counts = new Float64Array(genres.size);
  const from = Math.max(u.from, u.split - 50);
  for (let i = from; i < u.split; i++) counts[genreOf[items[i]]]++;
  for (let id = 1; id <= nTitles; id++) {
    const pref = counts[genreOf[id]] > 0 ? counts[genreOf[id]] / (u.split - from) : 0.1;
    formulaScores[id] = 0.4 * popularityScore[id] + 0.35 * pref + 0.15 * recency[id] + 1e-9 * popularityScore[id];
  }
  return formulaScores;
}

const sums = { popularity: 0, formula: 0, itemKnn: 0, itemKnnRecent: 0 };
for (const u of users) {
  sums.popularity += ndcg(trainCount, u);
  sums.formula += ndcg(formula(u), u);
  sums.itemKnn += ndcg(knn(u, u.from), u);
  sums.itemKnnRecent += ndcg(knn(u, Math.max(u.from, u.split - RECENT)), u);
}

// Spearman rank correlation of popularity_score with the real watch counts (average ranks for ties).
function ranks(values) {
  const order = [...values.keys()].sort((a, b) => values[a] - values[b]);
  const r = new Float64Array(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    for (let k = i; k <= j; k++) r[order[k]] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}
const ra = ranks(Array.from(popularityScore.subarray(1)));
const rb = ranks(Array.from(allCount.subarray(1)));
const mean = (nTitles - 1) / 2;
let num = 0, da = 0, db = 0;
for (let i = 0; i < nTitles; i++) {
  num += (ra[i] - mean) * (rb[i] - mean);
  da += (ra[i] - mean) ** 2;
  db += (rb[i] - mean) ** 2;
}
const sorted = Array.from(allCount.subarray(1)).sort((a, b) => b - a);
const topShare = sorted.slice(0, Math.ceil(nTitles / 10)).reduce((s, c) => s + c, 0) / items.length;

const fixed = (x) => x.toFixed(4);
console.log(JSON.stringify({
  events: items.length,
  users: users.length,
  titles: nTitles,
  ndcg_at_10: {
    popularity: fixed(sums.popularity / users.length),
    seed_formula: fixed(sums.formula / users.length),
    item_knn: fixed(sums.itemKnn / users.length),
    [`item_knn_last_${RECENT}`]: fixed(sums.itemKnnRecent / users.length),
  },
  popularity_score_vs_watch_count_spearman: fixed(num / Math.sqrt(da * db)),
  top_10pct_titles_event_share: fixed(topShare),
}));
