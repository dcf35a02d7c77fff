/**
 * The model as the service calls it: a simulated remote-model round trip (latency timer and failure draw
 * on the caller's event loop — a network wait holds no thread and no slot), then the real scoring, placed
 * inline or on the pool by the placement rule. Rejects only with ModelError.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelError } from '../domain/errors.js';
import type { Ranking, ScoringTask } from '../domain/types.js';
import { taskSize } from '../recommenders/heuristic.js';
import { rankTask } from '../recommenders/ranking.js';
import type { Placement } from './placement.js';
import type { ScoringPool } from './pool.js';

export interface RemoteModel {
  /** Simulated latency, uniform in [min, max] ms; 0/0 turns it off. */
  latencyMinMs: number;
  latencyMaxMs: number;
  /** Simulated failure probability in [0, 1]. */
  failureRate: number;
}

export function createScorer(model: RemoteModel, pool: Pick<ScoringPool, 'run'>, placement: Placement): (task: ScoringTask) => Promise<Ranking> {
  const lo = Math.max(0, Math.min(model.latencyMinMs, model.latencyMaxMs));
  const spread = Math.max(0, model.latencyMaxMs - lo);
  return async (task) => {
    if (model.latencyMaxMs > 0) await sleep(lo + Math.random() * spread);
    if (model.failureRate > 0 && Math.random() < model.failureRate) throw new ModelError('failure', 'model inference failed');
    if (placement.choose(task) === 'pool') {
      const inlineBefore = placement.inlineSeconds;
      const ranked = await pool.run(task);
      placement.timedPool(ranked.waitSeconds, placement.inlineSeconds - inlineBefore, { candidates: taskSize(task), seconds: ranked.runSeconds });
      const { waitSeconds: _wait, runSeconds: _run, ...ranking } = ranked;
      return ranking;
    }
    const started = performance.now();
    try {
      return rankTask(task);
    } catch (err) {
      throw new ModelError('failure', (err as Error).message);
    } finally {
      placement.timedInline(taskSize(task), performance.now() - started);
    }
  };
}
