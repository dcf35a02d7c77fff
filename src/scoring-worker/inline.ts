/**
 * SCORING_INLINE: the Piscina task function run on the calling thread's event loop instead of a scoring
 * thread. Same latency simulation, failures and scoring; it exists so a benchmark can show what the pool
 * keeps off the event loop (README, Performance). Not for production use.
 */
import { ModelError } from '../domain/errors.js';
import type { Recommendation, ScoringTask } from '../domain/types.js';
import score from './task.js';

export function createInlineScorer(): (task: ScoringTask) => Promise<Recommendation[]> {
  return async (task) => {
    try {
      return (await score(task)).items;
    } catch (err) {
      throw err instanceof ModelError ? err : new ModelError('failure', (err as Error).message);
    }
  };
}
