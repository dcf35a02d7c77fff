/**
 * What a user may be recommended: availability rules (tier, countries), hidden titles, dismissals and the
 * genre filter, as the scoring model applies them over the catalog columns, and Visibility, which checks
 * titles on their way out of any cache tier.
 */
import { describe, expect, it } from 'vitest';
import { availableTo, catalogSnapshot, latestOrder } from '../../src/domain/catalog-columns.js';
import type { Audience, Candidate, UserSignals } from '../../src/domain/types.js';
import { popularityRanking, rankCatalog, scoringTask, toRecommendations } from '../../src/recommenders/heuristic.js';
import { Visibility } from '../../src/service/visibility.js';

const NOW = Date.UTC(2025, 0, 1);
const FREE_US: Audience = { tier: 0, country: 'US' };

function title(id: number, extra: Partial<Candidate> = {}): Candidate {
  return { id, title: `T${id}`, genre: id % 2 === 0 ? 'drama' : 'comedy', popularity: 1 - id / 100, createdAtMs: NOW - id * 86_400_000, ...extra };
}

const catalog = catalogSnapshot([
  title(1),
  title(2, { tier: 2 }), // premium
  title(3, { countries: ['DE', 'FR'] }),
  title(4, { hidden: true }),
  title(5, { tier: 1, countries: ['US'] }), // basic, US only
  title(6),
  title(7),
]);

function user(audience: Audience, extra: Partial<UserSignals> = {}): UserSignals {
  return { userId: 1, catalog, recent: [], watched: [], dismissed: [], audience, ...extra };
}

function ranked(signals: UserSignals, opts: { genre?: string; exclude?: Set<number> } = {}): number[] {
  const task = scoringTask(signals, { pool: 0, keep: 50, nowMs: NOW, noise: false, ...opts });
  return toRecommendations(rankCatalog(task), catalog).map((r) => r.content_id).sort((a, b) => a - b);
}

describe('availability rules in scoring', () => {
  it('gives a free user outside the listed countries only free, unrestricted, visible titles', () => {
    expect(ranked(user(FREE_US))).toEqual([1, 6, 7]);
  });

  it('admits a title of a lower or equal tier, and a country-restricted one only in its countries', () => {
    expect(ranked(user({ tier: 1, country: 'US' }))).toEqual([1, 5, 6, 7]);
    expect(ranked(user({ tier: 2, country: 'DE' }))).toEqual([1, 2, 3, 6, 7]);
    expect(ranked(user({ tier: 2, country: null }))).toEqual([1, 2, 6, 7]);
  });

  it('never ranks a hidden title, for any audience', () => {
    for (const tier of [0, 1, 2]) for (const country of ['US', 'DE', null]) expect(ranked(user({ tier, country }))).not.toContain(4);
  });

  it('leaves out dismissed titles and titles hidden since the snapshot (exclude)', () => {
    expect(ranked(user(FREE_US, { dismissed: [6] }))).toEqual([1, 7]);
    expect(ranked(user(FREE_US), { exclude: new Set([1]) })).toEqual([6, 7]);
  });

  it('ranks only the asked genre; an unknown genre has no candidates', () => {
    expect(ranked(user({ tier: 2, country: 'DE' }), { genre: 'drama' })).toEqual([2, 6]);
    expect(ranked(user(FREE_US), { genre: 'western' })).toEqual([]);
  });

  it('applies the same rules to the popularity fallback', () => {
    const task = scoringTask(user(FREE_US), { pool: 0, keep: 50, nowMs: NOW, noise: false, genre: 'comedy' });
    expect(popularityRanking(task).positions.map((p) => catalog.ids[p])).toEqual([1, 7]);
  });

  it('needs no availability filter when nothing is restricted, and builds one per audience otherwise', () => {
    const open = catalogSnapshot([title(1), title(2)]);
    expect(availableTo(open, FREE_US)).toBeUndefined();
    expect(availableTo(catalog, FREE_US)).toBe(availableTo(catalog, { tier: 0, country: 'US' }));
    expect(availableTo(catalog, FREE_US)!.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('orders the latest titles by created_at DESC, then id', () => {
    const s = catalogSnapshot([title(3), { ...title(9), createdAtMs: NOW }, { ...title(8), createdAtMs: NOW }, title(1)]);
    expect([...latestOrder(s)].map((p) => s.ids[p])).toEqual([8, 9, 1, 3]);
  });
});

describe('Visibility', () => {
  it('hides a title at once, whatever the snapshot says, until it is shown again', () => {
    const v = new Visibility();
    v.useSnapshot(catalog);
    const before = v.version;
    expect(v.allows(1, FREE_US)).toBe(true);
    v.hide([1]);
    expect(v.version).toBeGreaterThan(before);
    expect(v.allows(1, FREE_US)).toBe(false);
    expect(v.allows(1)).toBe(false);
    v.useSnapshot(catalogSnapshot([title(1), title(6)])); // a snapshot read before the hide committed
    expect(v.allows(1)).toBe(false);
    v.show([1]);
    expect(v.allows(1)).toBe(true);
  });

  it('applies the snapshot rules to an audience, and only "not hidden" without one', () => {
    const v = new Visibility();
    v.useSnapshot(catalog);
    expect(v.allows(2, FREE_US)).toBe(false);
    expect(v.allows(2)).toBe(true);
    expect(v.allows(4)).toBe(false);
    expect(v.allows(999, FREE_US)).toBe(true); // newer than the snapshot: its rules come with the next load
  });

  it('moves its version only when a snapshot brings other rules', () => {
    const v = new Visibility();
    v.useSnapshot(catalog);
    const at = v.version;
    v.useSnapshot(catalogSnapshot(catalog.items.map((c) => ({ ...c }))));
    expect(v.version).toBe(at);
    v.useSnapshot(catalogSnapshot(catalog.items.map((c) => (c.id === 1 ? { ...c, tier: 1 } : { ...c }))));
    expect(v.version).toBe(at + 1);
  });
});
