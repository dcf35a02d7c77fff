import { describe, expect, it } from 'vitest';
import { explanationJson, explanationsJson, fragmentsOf, itemJson, itemsJson } from '../../src/domain/recommendation-json.js';
import type { Recommendation, RecommendationList } from '../../src/domain/types.js';

const item = (over: Partial<Recommendation> = {}): Recommendation => ({
  content_id: 7,
  title: 'The "Quoted" Title \\ ü 🎬 \u2028',
  genre: 'sci-fi',
  popularity_score: 0.1234,
  score: 0.5,
  ...over,
});

describe('item JSON from cached per-title prefixes', () => {
  it('is exactly JSON.stringify of the item, escapes included', () => {
    for (const i of [item(), item({ score: 0 }), item({ score: 1, popularity_score: 1 }), item({ content_id: 2 ** 40, score: 0.001 })]) {
      expect(itemJson(i)).toBe(JSON.stringify(i));
      expect(JSON.parse(itemJson(i))).toEqual(i);
    }
  });

  it('follows a title renamed, re-genred or re-scored since its prefix was cached', () => {
    expect(itemJson(item({ content_id: 99, title: 'Old' }))).toBe(JSON.stringify(item({ content_id: 99, title: 'Old' })));
    for (const changed of [item({ content_id: 99, title: 'New' }), item({ content_id: 99, title: 'New', genre: 'drama' }), item({ content_id: 99, title: 'New', genre: 'drama', popularity_score: 0.9 })]) {
      expect(itemJson(changed)).toBe(JSON.stringify(changed));
    }
  });

  it('builds a list\'s fragments once and the whole items array from them', () => {
    const list: RecommendationList = { items: [item({ content_id: 1 }), item({ content_id: 2, score: 0.25 })], source: 'model', generatedAt: 'x', freshUntil: 0 };
    const first = fragmentsOf(list, 1);
    expect(first).toEqual([JSON.stringify(list.items[0])]);
    expect(fragmentsOf(list, 5)).toBe(first); // the same array, extended
    expect(itemsJson(list)).toBe(JSON.stringify(list.items));
  });
});

describe('explanation JSON', () => {
  it('is exactly JSON.stringify of the explanation, with an empty because left out', () => {
    const explained = { kind: 'similar_to_watched' as const, because: [3, 2 ** 40, 1] };
    expect(explanationJson(explained)).toBe(JSON.stringify(explained));
    expect(explanationJson({ kind: 'popular' })).toBe('{"kind":"popular"}');
    expect(explanationJson({ kind: 'fallback', because: [] })).toBe('{"kind":"fallback"}');
    expect(explanationsJson([explained, { kind: 'popular' }])).toBe(JSON.stringify([explained, { kind: 'popular' }]));
    expect(explanationsJson([])).toBe('[]');
  });
});
