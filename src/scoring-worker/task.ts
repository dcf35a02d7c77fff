/**
 * Piscina worker entry: scoring only, pure CPU. The catalog columns arrive as views of shared memory
 * (no copy); the task itself is the user's preference and watched positions, a few hundred bytes.
 */
import { writeFileSync } from 'node:fs';
import type { Ranking, ScoringTask } from '../domain/types.js';
import { rankTask } from '../recommenders/ranking.js';

/** The OS name of a scoring thread (Linux: /proc/<pid>/task/<tid>/comm, 15 characters at most). */
const SCORING_THREAD_NAME = 'scoring';

// Named, so that `top -H`, `ps -L` and the bench tell the scoring threads from Node's own (all "node"),
// whatever their niceness. Where there is no /proc the name stays Node's: nothing depends on it.
try {
  writeFileSync('/proc/thread-self/comm', SCORING_THREAD_NAME);
} catch {
  // not Linux, or /proc not mounted
}

/** The ranking and how long the task ran on this thread (the pool derives queue time from it). */
export interface ScoredTask extends Ranking {
  runMs: number;
}

export default function score(task: ScoringTask): ScoredTask {
  const started = performance.now();
  const ranking = rankTask(task);
  return { ...ranking, runMs: performance.now() - started };
}
