#!/usr/bin/env node
/**
 * What `?explain=true` costs (docs/api.md "Explanations"), on one synthetic 50-item list through this
 * checkout's dist/: the body built per request against the plain body kept per list, the explanations'
 * share of a Redis value and their heap per cached list (as computed, and as parsed from Redis).
 *
 *   npm run build && node --expose-gc scripts/explain-cost.mjs
 *
 * A measurement of single calls in one process, not a load test.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { explainedRecommendationsBody, recommendationsBody } = await import(path.join(ROOT, 'dist/http/bodies.js'));
const { explanationsJson, itemsJson } = await import(path.join(ROOT, 'dist/domain/recommendation-json.js'));

const KINDS = ['similar_to_watched', 'latent_taste', 'popular_in_genre', 'popular'];
const explanationsFrom = (s) =>
  Array.from({ length: 50 }, (_, i) => (i % 4 === 3 ? { kind: 'popular' } : { kind: KINDS[i % 3], because: [s + i, s + 230 + i, s + 4 + i] }));
const items = Array.from({ length: 50 }, (_, i) => ({
  content_id: 1000 + i,
  title: `Title number ${i}`,
  genre: 'drama',
  popularity_score: 0.5 - i / 200,
  score: 0.9 - i / 100,
}));
const list = { items, explanations: explanationsFrom(0), source: 'model', generatedAt: new Date().toISOString(), freshUntil: Date.now() + 1e6, audience: { tier: 0, country: null }, checked: 1 };

function time(name, fn, n = 200_000) {
  for (let i = 0; i < 20_000; i++) fn();
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  console.log(`${name.padEnd(44)} ${(Number(process.hrtime.bigint() - started) / n / 1000).toFixed(2)} µs`);
}

for (const limit of [10, 50]) {
  time(`plain body, cache hit, limit=${limit}`, () => recommendationsBody(1, list, limit, true));
  time(`explain=true body, cache hit, limit=${limit}`, () => explainedRecommendationsBody(1, list, limit, true));
}
time('explanations of a Redis value (per miss)', () => explanationsJson(list.explanations));
console.log(
  `bytes: body limit=50 ${Buffer.byteLength(recommendationsBody(1, list, 50, true))}, explained ${Buffer.byteLength(explainedRecommendationsBody(1, list, 50, true))}; ` +
    `Redis items ${itemsJson(list).length}, explanations +${explanationsJson(list.explanations).length + 5}`,
);

if (typeof globalThis.gc === 'function') {
  const heap = () => {
    for (let i = 0; i < 4; i++) globalThis.gc();
    return process.memoryUsage().heapUsed;
  };
  for (const [name, build] of [
    ['as computed', (s) => explanationsFrom(s)],
    ['parsed from Redis', (s) => JSON.parse(explanationsJson(explanationsFrom(s)))],
  ]) {
    const kept = [];
    const before = heap();
    for (let s = 0; s < 10_000; s++) kept.push(build(s * 7));
    console.log(`heap of 50 explanations, ${name}: ${((heap() - before) / kept.length).toFixed(0)} B`);
  }
} else {
  console.log('(run with node --expose-gc for the heap figures)');
}
