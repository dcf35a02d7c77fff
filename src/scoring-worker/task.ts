/**
 * Piscina worker entry: scoring only, pure CPU. The catalog columns arrive as views of shared memory
 * (no copy); the task itself is the user's preference and watched positions, a few hundred bytes.
 */
import type { Ranking, ScoringTask } from '../domain/types.js';
import { rankCatalog } from './model.js';

/** The ranking and how long the task ran on this thread (the pool derives queue time from it). */
export interface ScoredTask extends Ranking {
  runMs: number;
}

export default function score(task: ScoringTask): ScoredTask {
  const started = performance.now();
  const { positions, scores } = rankCatalog(task);
  return { positions, scores, runMs: performance.now() - started };
}
