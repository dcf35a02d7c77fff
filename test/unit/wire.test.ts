/** A packed scoring task ranks exactly like the task it was packed from, titles included. */
import { expect, it } from 'vitest';
import type { Candidate, ScoringTask } from '../../src/domain/types.js';
import { scoreCandidates } from '../../src/scoring-worker/model.js';
import score from '../../src/scoring-worker/task.js';
import { packTask, restoreTitles } from '../../src/scoring-worker/wire.js';

const GENRES = ['action', 'drama', 'comedy', 'sci-fi'];
const candidates: Candidate[] = Array.from({ length: 500 }, (_, i) => ({
  id: 10_000 - i * 7,
  title: `Title ${i}`,
  genre: GENRES[i % GENRES.length]!,
  popularity: ((i * 37) % 100) / 100,
  createdAtMs: Date.UTC(2025, 0, 1) - i * 86_400_000,
}));
const task: ScoringTask = {
  signals: { userId: 1, recentGenres: ['drama', 'drama', 'action'], candidates },
  keep: 50,
  nowMs: Date.UTC(2026, 0, 1),
  noise: false,
  latencyMinMs: 0,
  latencyMaxMs: 0,
  failureRate: 0,
};

it('ranks a packed task like the original and restores every title', async () => {
  const expected = scoreCandidates(task.signals, { keep: 50, nowMs: task.nowMs, noise: false });
  const { task: packed, transferList } = packTask(task);
  expect(transferList).toHaveLength(4);
  expect([...packed.packed.genres].sort()).toEqual([...GENRES].sort());
  expect('candidates' in packed.signals).toBe(false);
  const { items, indexOf } = await score(structuredClone(packed));
  expect(restoreTitles(items, indexOf!, candidates)).toEqual(expected);
});
